//! Consumer groups: list, describe with lag, reset offsets, delete.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::audit_details;
use super::{GroupPath, Target};
use crate::http::audit::AuditDetails;
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::JsonBody;
use crate::kafka::admin::{GroupDetails, GroupSummary, PartitionLag, ResetTo};

/// List consumer groups.
#[utoipa::path(get, path = "/consumer-groups", tag = "consumer-groups",
    responses((status = 200, description = "Groups with state and member count", body = Vec<GroupSummary>), (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub(super) async fn list_groups(target: Target) -> Result<Json<Vec<GroupSummary>>, ApiError> {
    Ok(Json(target.admin().list_groups().await?))
}

/// Describe a consumer group.
///
/// Members with their assignments, and per partition the committed offset, the end offset
/// and the lag, with the total lag.
#[utoipa::path(get, path = "/consumer-groups/{id}", tag = "consumer-groups", params(("id" = String, Path, description = "Consumer group id")),
    responses((status = 200, description = "The group", body = GroupDetails), (status = 404, description = "No such group (`not_found`)", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub(super) async fn describe_group(
    target: Target,
    Path(GroupPath { id }): Path<GroupPath>,
) -> Result<Json<GroupDetails>, ApiError> {
    Ok(Json(target.admin().describe_group(&id).await?))
}

/// Delete a consumer group.
///
/// Refused while it has members.
#[utoipa::path(delete, path = "/consumer-groups/{id}", tag = "consumer-groups", params(("id" = String, Path, description = "Consumer group id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such group (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The group has active members (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub(super) async fn delete_group(
    target: Target,
    Path(GroupPath { id }): Path<GroupPath>,
) -> Result<StatusCode, ApiError> {
    target.admin().delete_group(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/admin/consumer-groups/{id}/offsets`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetOffsets {
    /// The topic whose offsets move (every partition).
    pub topic: String,
    /// `earliest`, `latest`, or `offset` (then `offset` is required).
    pub to: String,
    /// The offset for `to = "offset"`, clamped to each partition's watermarks.
    #[serde(
        default,
        deserialize_with = "crate::http::extract::optional_whole_number"
    )]
    pub offset: Option<i64>,
}

impl utoipa::PartialSchema for ResetOffsets {
    /// Either `{"topic", "to": "earliest" | "latest"}` or `{"topic", "to": "offset",
    /// "offset"}`: the rule the handler applies, stated so that clients and fuzzers see it.
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let topic = json!({"type": "string", "description": "The topic whose offsets move (every partition)"});
        let schema = json!({
            "oneOf": [
                {
                    "type": "object",
                    "required": ["topic", "to"],
                    "properties": {
                        "topic": topic,
                        "to": {"type": "string", "enum": ["earliest", "latest"]}
                    },
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "required": ["topic", "to", "offset"],
                    "properties": {
                        "topic": topic,
                        "to": {"type": "string", "enum": ["offset"]},
                        "offset": {"type": "integer", "format": "int64", "minimum": 0,
                                   "description": "Clamped to each partition's watermarks"}
                    },
                    "additionalProperties": false
                }
            ]
        });
        serde_json::from_value(schema).unwrap_or_default()
    }
}

impl utoipa::ToSchema for ResetOffsets {}

/// Reset a group's offsets on a topic.
///
/// Moves every partition of the topic to the earliest or latest offset, or to a given one
/// (clamped to the watermarks). Refused while the group has members.
#[utoipa::path(post, path = "/consumer-groups/{id}/offsets", tag = "consumer-groups", params(("id" = String, Path, description = "Consumer group id")),
    request_body(content = ResetOffsets, example = json!({"topic": "orders", "to": "earliest"})),
    responses(
        (status = 200, description = "The new committed offsets and lag", body = Vec<PartitionLag>),
        (status = 404, description = "No such group (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The group has active members (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`, `kafka_invalid_request`)", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub(super) async fn reset_offsets(
    target: Target,
    Path(GroupPath { id }): Path<GroupPath>,
    JsonBody(body): JsonBody<ResetOffsets>,
) -> Result<(Extension<AuditDetails>, Json<Vec<PartitionLag>>), ApiError> {
    let to = match (body.to.as_str(), body.offset) {
        ("earliest", None) => ResetTo::Earliest,
        ("latest", None) => ResetTo::Latest,
        ("offset", Some(o)) if o >= 0 => ResetTo::Offset(o),
        _ => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "to",
                "must be \"earliest\", \"latest\", or \"offset\" with a non-negative offset",
            )]));
        }
    };
    let lag = target
        .admin()
        .reset_group_offsets(&id, &body.topic, to)
        .await?;
    let details = audit_details(json!({
        "topic": body.topic,
        "to": body.to,
        "offset": body.offset,
    }));
    Ok((details, Json(lag)))
}
