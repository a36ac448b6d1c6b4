//! Consumer groups: list, describe with lag, reset offsets, delete.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::audit_details;
use super::{GroupPath, Target};
use crate::http::audit::AuditDetails;
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::JsonBody;
use crate::kafka::admin::{GroupDetails, GroupSummary, OffsetMove, ResetTo};

/// List consumer groups.
#[utoipa::path(get, path = "/consumer-groups", tag = "consumer-groups",
    responses((status = 200, description = "Groups with state and member count", body = Vec<GroupSummary>)))]
pub(super) async fn list_groups(target: Target) -> Result<Json<Vec<GroupSummary>>, ApiError> {
    Ok(Json(target.admin().list_groups().await?))
}

/// Describe a consumer group.
///
/// Members with their assignments, and per partition the committed offset, the end offset
/// and the lag, with the total lag.
#[utoipa::path(get, path = "/consumer-groups/{id}", tag = "consumer-groups", params(("id" = String, Path, description = "Consumer group id")),
    responses((status = 200, description = "The group", body = GroupDetails), (status = 404, description = "No such group (`not_found`)", body = Problem, content_type = "application/problem+json")))]
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
        (status = 409, description = "The group has active members (`conflict`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn delete_group(
    target: Target,
    Path(GroupPath { id }): Path<GroupPath>,
) -> Result<StatusCode, ApiError> {
    target.admin().delete_group(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST …/consumer-groups/{id}/offsets`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetOffsets {
    /// The topic whose offsets move.
    pub topic: String,
    /// `earliest`, `latest`, `offset`, `timestamp`, `shift` or `group`; absent with explicit
    /// per-partition offsets.
    #[serde(default, deserialize_with = "a_string")]
    pub to: Option<String>,
    /// For `to = "offset"`: this offset on every partition.
    #[serde(default, deserialize_with = "a_whole_number")]
    pub offset: Option<i64>,
    /// For `to = "timestamp"` (RFC 3339): each partition to its first record at or after it.
    #[serde(default, deserialize_with = "a_string")]
    pub timestamp: Option<String>,
    /// For `to = "shift"`: move each committed offset by this many (±).
    #[serde(default, deserialize_with = "a_whole_number")]
    pub by: Option<i64>,
    /// For `to = "group"`: copy this group's committed offsets.
    #[serde(default, deserialize_with = "a_string")]
    pub group: Option<String>,
    /// Only these partitions (numbers), or explicit offsets (`{"partition", "offset"}`).
    #[serde(default, deserialize_with = "a_list")]
    pub partitions: Option<Vec<PartitionChoice>>,
    /// Say where the offsets would go; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

// Present fields are never `null` here: the documented shapes have no nullable field.

/// A string when present.
fn a_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    String::deserialize(deserializer).map(Some)
}

/// A whole number when present.
fn a_whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    crate::http::extract::whole_number(deserializer).map(Some)
}

/// A list when present.
fn a_list<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<PartitionChoice>>, D::Error> {
    Vec::deserialize(deserializer).map(Some)
}

/// A partition of `partitions`: its number, or its number and an offset.
#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum PartitionChoice {
    /// Only this partition.
    Number(i32),
    /// This partition to this offset.
    Offset {
        /// Partition.
        partition: i32,
        /// Offset (clamped to the partition's watermarks).
        offset: i64,
    },
}

impl utoipa::PartialSchema for ResetOffsets {
    /// One shape per way to move the offsets: the rule the handler applies, stated so that
    /// clients and fuzzers see it.
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let topic = json!({"type": "string", "description": "The topic whose offsets move"});
        let only = json!({"type": "array", "description": "Only these partitions",
            "items": {"type": "integer", "format": "int32", "minimum": 0}});
        let dry_run = json!({"type": "boolean", "description": "Say where the offsets would go; change nothing"});
        let shape = |to: Value, required: &[&str], extra: Value| {
            let mut properties = json!({"topic": topic, "partitions": only, "dry_run": dry_run});
            if !to.is_null() {
                properties["to"] = to;
            }
            for (name, schema) in extra.as_object().into_iter().flatten() {
                properties[name] = schema.clone();
            }
            json!({"type": "object", "required": required, "properties": properties,
                   "additionalProperties": false})
        };
        let explicit = json!({"type": "object", "required": ["topic", "partitions"],
            "properties": {
                "topic": topic, "dry_run": dry_run,
                "partitions": {"type": "array", "minItems": 1, "description": "Each partition to its offset",
                    "items": {"type": "object", "required": ["partition", "offset"], "additionalProperties": false,
                        "properties": {"partition": {"type": "integer", "format": "int32", "minimum": 0},
                                       "offset": {"type": "integer", "format": "int64", "minimum": 0}}}}
            },
            "additionalProperties": false});
        let schema = json!({
            "oneOf": [
                shape(json!({"type": "string", "enum": ["earliest", "latest"]}), &["topic", "to"], json!({})),
                shape(json!({"type": "string", "enum": ["offset"]}), &["topic", "to", "offset"],
                    json!({"offset": {"type": "integer", "format": "int64", "minimum": 0,
                                      "description": "Clamped to each partition's watermarks"}})),
                shape(json!({"type": "string", "enum": ["timestamp"]}), &["topic", "to", "timestamp"],
                    json!({"timestamp": {"type": "string", "format": "date-time",
                                         "description": "Each partition to its first record at or after it"}})),
                shape(json!({"type": "string", "enum": ["shift"]}), &["topic", "to", "by"],
                    json!({"by": {"type": "integer", "format": "int64",
                                  "description": "Moves each committed offset by this many, clamped to the log"}})),
                shape(json!({"type": "string", "enum": ["group"]}), &["topic", "to", "group"],
                    json!({"group": {"type": "string", "minLength": 1, "maxLength": 255,
                                     "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
                                     "description": "The group whose committed offsets are copied (at most 255 bytes, no control characters)"}})),
                explicit,
            ]
        });
        serde_json::from_value(schema).unwrap_or_default()
    }
}

impl utoipa::ToSchema for ResetOffsets {}

/// Reset a group's offsets on a topic.
///
/// Moves the partitions of the topic (all, or `partitions`) to the earliest or latest
/// offset, a given offset, the first record at or after a time, the committed offset
/// shifted by ±N, or another group's committed offsets; or each partition to its own
/// offset. Every new offset is clamped to its partition's watermarks. `dry_run` answers
/// each partition's current and new offset and changes nothing. Refused while the group has
/// members (a dry run is not).
#[utoipa::path(post, path = "/consumer-groups/{id}/offsets", tag = "consumer-groups", params(("id" = String, Path, description = "Consumer group id")),
    request_body(content = ResetOffsets, example = json!({"topic": "orders", "to": "timestamp", "timestamp": "2026-11-30T10:00:00Z", "dry_run": true})),
    responses(
        (status = 200, description = "Each partition's previous and new committed offset, and lag", body = Vec<OffsetMove>),
        (status = 404, description = "No such group, topic or partition (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The group has active members (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`, `kafka_invalid_request`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn reset_offsets(
    target: Target,
    Path(GroupPath { id }): Path<GroupPath>,
    JsonBody(body): JsonBody<ResetOffsets>,
) -> Result<(Extension<AuditDetails>, Json<Vec<OffsetMove>>), ApiError> {
    let (to, only) = reset_plan(&body)?;
    let moves = target
        .admin()
        .reset_group_offsets(&id, &body.topic, to, only, body.dry_run)
        .await?;
    let details = audit_details(json!({
        "topic": body.topic,
        "to": body.to.as_deref().unwrap_or("offsets"),
        "dry_run": body.dry_run,
        "moved": moves.iter().filter(|m| m.previous_offset != m.committed_offset).count(),
    }));
    Ok((details, Json(moves)))
}

/// What a reset asks for, or which field is wrong.
fn reset_plan(body: &ResetOffsets) -> Result<(ResetTo, Option<Vec<i32>>), ApiError> {
    let refuse = |field: &str, why: &str| ApiError::Validation(vec![FieldError::new(field, why)]);
    let mut numbers = Vec::new();
    let mut explicit = BTreeMap::new();
    for choice in body.partitions.iter().flatten() {
        match *choice {
            PartitionChoice::Number(p) if p >= 0 => numbers.push(p),
            PartitionChoice::Offset { partition, offset } if partition >= 0 && offset >= 0 => {
                explicit.insert(partition, offset);
            }
            _ => {
                return Err(refuse(
                    "partitions",
                    "partitions and offsets must not be negative",
                ));
            }
        }
    }
    if !numbers.is_empty() && !explicit.is_empty() {
        return Err(refuse(
            "partitions",
            "either partition numbers (which to move) or {partition, offset} objects (where to), not both",
        ));
    }
    let given = [
        ("offset", body.offset.is_some()),
        ("timestamp", body.timestamp.is_some()),
        ("by", body.by.is_some()),
        ("group", body.group.is_some()),
    ];
    let needs = match body.to.as_deref() {
        None | Some("earliest" | "latest") => None,
        Some("offset") => Some("offset"),
        Some("timestamp") => Some("timestamp"),
        Some("shift") => Some("by"),
        Some("group") => Some("group"),
        Some(_) => {
            return Err(refuse(
                "to",
                "must be earliest, latest, offset, timestamp, shift or group (or absent with {partition, offset} objects)",
            ));
        }
    };
    for (field, present) in given {
        if present && needs != Some(field) {
            return Err(refuse(field, "does not go with this \"to\""));
        }
        if !present && needs == Some(field) {
            return Err(refuse(field, "is required with this \"to\""));
        }
    }
    let to = match body.to.as_deref() {
        None if explicit.is_empty() => {
            return Err(refuse(
                "to",
                "is required unless partitions gives {partition, offset} objects",
            ));
        }
        None => ResetTo::Explicit(explicit),
        Some(_) if !explicit.is_empty() => {
            return Err(refuse(
                "partitions",
                "{partition, offset} objects go without \"to\"",
            ));
        }
        Some("earliest") => ResetTo::Earliest,
        Some("latest") => ResetTo::Latest,
        Some("offset") => match body.offset {
            Some(o) if o >= 0 => ResetTo::Offset(o),
            _ => return Err(refuse("offset", "must not be negative")),
        },
        Some("timestamp") => {
            let text = body.timestamp.as_deref().unwrap_or_default();
            let at = chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| refuse("timestamp", "must be an RFC 3339 time"))?;
            ResetTo::Timestamp(at.timestamp_millis())
        }
        Some("shift") => ResetTo::Shift(body.by.unwrap_or_default()),
        Some(_) => {
            let group = body.group.clone().unwrap_or_default();
            crate::kafka::validate_group_id(&group).map_err(|why| refuse("group", &why))?;
            ResetTo::Group(group)
        }
    };
    Ok((to, (!numbers.is_empty()).then_some(numbers)))
}
