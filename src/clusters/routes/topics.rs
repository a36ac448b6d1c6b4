//! Topics: list, create, describe, change configs, add partitions, delete. The service's
//! own topics are never deleted through the API.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::audit_details;
use super::{Target, TopicPath};
use crate::clusters::ClustersState;
use crate::http::audit::AuditDetails;
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::{JsonBody, QueryParams};
use crate::kafka::admin::{TopicDetails, TopicRequest, TopicSummary};

/// Query of `GET /api/admin/topics`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TopicListQuery {
    /// Only topics whose names start with this.
    pub prefix: Option<String>,
    /// Include Kafka's internal topics (`__consumer_offsets`, …).
    #[serde(default)]
    pub internal: bool,
}

/// List topics.
#[utoipa::path(get, path = "/topics", tag = "topics", params(TopicListQuery),
    responses((status = 200, description = "Topics with partition and message counts", body = Vec<TopicSummary>)))]
pub(super) async fn list_topics(
    target: Target,
    QueryParams(query): QueryParams<TopicListQuery>,
) -> Result<Json<Vec<TopicSummary>>, ApiError> {
    Ok(Json(
        target
            .admin()
            .list_topics(query.prefix, query.internal)
            .await?,
    ))
}

/// Body of `POST /api/admin/topics`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    /// 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
    #[schema(pattern = r"^(?!\.{1,2}$)[a-zA-Z0-9._-]{1,249}$")]
    pub name: String,
    /// At least 1; at most `admin.max_partitions_per_topic` (409 beyond it). Needed unless
    /// the cluster has a template, whose default it is.
    #[serde(
        default,
        deserialize_with = "crate::http::extract::optional_whole_number"
    )]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub partitions: Option<i32>,
    /// 1 to the number of brokers (422 `kafka_invalid_request` beyond them); the cluster's
    /// template's default, or 1.
    #[serde(
        default,
        deserialize_with = "crate::http::extract::optional_whole_number"
    )]
    #[schema(minimum = 1, maximum = 32767)]
    pub replication_factor: Option<i32>,
    /// Topic configs, e.g. `{"cleanup.policy": "compact"}`.
    #[serde(default)]
    #[schema(schema_with = topic_configs_schema)]
    pub configs: BTreeMap<String, String>,
}

/// Kafka config names, as `kafka::validate_config_name` checks them.
const CONFIG_NAME_PATTERN: &str = r"^[a-zA-Z0-9._-]{1,255}$";
/// Config values, as `kafka::validate_config_value` checks them: no control characters.
const CONFIG_VALUE_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

/// A config value's schema.
fn config_value_schema(nullable: bool) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let kind = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(kind)
        .max_length(Some(8192))
        .pattern(Some(CONFIG_VALUE_PATTERN))
        .build()
}

/// A map of config names to values, with the names' rule in `propertyNames`.
fn config_map_schema(nullable_values: bool) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::Object)
        .property_names(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .pattern(Some(CONFIG_NAME_PATTERN)),
        ))
        .additional_properties(Some(utoipa::openapi::Schema::Object(config_value_schema(
            nullable_values,
        ))))
        .build()
}

fn topic_configs_schema() -> utoipa::openapi::Object {
    config_map_schema(false)
}

fn config_changes_schema() -> utoipa::openapi::Object {
    config_map_schema(true)
}

/// Create a topic.
#[utoipa::path(post, path = "/topics", tag = "topics",
    request_body(content = CreateTopic, example = json!({"name": "payments", "partitions": 6, "replication_factor": 1, "configs": {"retention.ms": "604800000"}})),
    responses(
        (status = 201, description = "Created", body = TopicDetails),
        (status = 409, description = "Exists already (`already_exists`), or more partitions than `admin.max_partitions_per_topic` / `admin.max_partitions_per_request` (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`), or one Kafka refuses, such as a replication factor above the cluster's broker count (`kafka_invalid_request`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn create_topic(
    State(state): State<ClustersState>,
    target: Target,
    JsonBody(body): JsonBody<CreateTopic>,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<TopicDetails>), ApiError> {
    // The cluster's template fills in what the request leaves out.
    let defaults = target
        .cluster
        .settings
        .template_id
        .as_deref()
        .and_then(|id| state.templates.get(id))
        .map(|t| t.topic_defaults);
    let Some(partitions) = body.partitions.or(defaults.as_ref().map(|d| d.partitions)) else {
        return Err(ApiError::Validation(vec![FieldError::new(
            "partitions",
            "needed: this cluster has no template to take it from",
        )]));
    };
    let mut configs = defaults
        .as_ref()
        .map(|d| d.configs.clone())
        .unwrap_or_default();
    configs.extend(body.configs);
    let request = TopicRequest {
        name: body.name,
        partitions,
        replication_factor: body
            .replication_factor
            .or(defaults.as_ref().map(|d| d.replication_factor))
            .unwrap_or(1),
        configs,
    };
    target.admin().create_topic(&request).await?;
    let details = audit_details(json!({
        "name": request.name,
        "partitions": request.partitions,
        "replication_factor": request.replication_factor,
        "configs": request.configs,
    }));
    Ok((
        StatusCode::CREATED,
        details,
        Json(target.admin().describe_topic(&request.name).await?),
    ))
}

/// Describe a topic.
///
/// Partitions with leader, replicas, in-sync replicas and watermarks, and the configs.
#[utoipa::path(get, path = "/topics/{name}", tag = "topics", params(("name" = String, Path, description = "Topic name")),
    responses((status = 200, description = "The topic", body = TopicDetails), (status = 404, description = "No such topic (`not_found`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn describe_topic(
    target: Target,
    Path(TopicPath { name }): Path<TopicPath>,
) -> Result<Json<TopicDetails>, ApiError> {
    Ok(Json(target.admin().describe_topic(&name).await?))
}

/// Body of `PATCH /api/admin/topics/{name}/configs`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlterConfigs {
    /// Configs to set; `null` removes an override.
    #[schema(schema_with = config_changes_schema)]
    pub configs: BTreeMap<String, Option<String>>,
}

/// Change topic configs.
///
/// Sets the given configs and removes those given as `null`; the others keep their values.
#[utoipa::path(patch, path = "/topics/{name}/configs", tag = "topics", params(("name" = String, Path, description = "Topic name")),
    request_body(content = AlterConfigs, example = json!({"configs": {"retention.ms": "86400000", "cleanup.policy": null}})),
    responses(
        (status = 200, description = "The topic after the change", body = TopicDetails),
        (status = 404, description = "No such topic (`not_found`)", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`, `kafka_invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 501, description = "The cluster does not support it (`kafka_unsupported`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn alter_configs(
    target: Target,
    Path(TopicPath { name }): Path<TopicPath>,
    JsonBody(body): JsonBody<AlterConfigs>,
) -> Result<(Extension<AuditDetails>, Json<TopicDetails>), ApiError> {
    target
        .admin()
        .alter_topic_configs(&name, &body.configs)
        .await?;
    Ok((
        audit_details(json!({ "configs": body.configs })),
        Json(target.admin().describe_topic(&name).await?),
    ))
}

/// Body of `POST /api/admin/topics/{name}/partitions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddPartitions {
    /// The new total partition count; must be larger than the current one (409 if not).
    #[serde(deserialize_with = "crate::http::extract::whole_number")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub count: usize,
}

/// Add partitions to a topic.
#[utoipa::path(post, path = "/topics/{name}/partitions", tag = "topics", params(("name" = String, Path, description = "Topic name")),
    request_body(content = AddPartitions, example = json!({"count": 12})),
    responses(
        (status = 200, description = "The topic with its new partitions", body = TopicDetails),
        (status = 404, description = "No such topic (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not more than the topic has, or over `admin.max_partitions_per_topic` / `admin.max_partitions_per_request` (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`, `kafka_invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 501, description = "The cluster does not support it (`kafka_unsupported`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn add_partitions(
    target: Target,
    Path(TopicPath { name }): Path<TopicPath>,
    JsonBody(body): JsonBody<AddPartitions>,
) -> Result<(Extension<AuditDetails>, Json<TopicDetails>), ApiError> {
    target.admin().add_partitions(&name, body.count).await?;
    Ok((
        audit_details(json!({ "count": body.count })),
        Json(target.admin().describe_topic(&name).await?),
    ))
}

/// Query of `DELETE /api/admin/topics/{name}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Needed to delete one of Kafka's internal topics (`__consumer_offsets`, …).
    #[serde(default)]
    pub force: bool,
}

/// Kafka's own topics (`__consumer_offsets`, `__transaction_state`, …).
fn is_internal_topic(name: &str) -> bool {
    name.starts_with("__")
}

/// Delete a topic.
///
/// The service's own topics are always refused (409 `topic_protected`); Kafka's internal
/// topics unless `force=true`.
#[utoipa::path(delete, path = "/topics/{name}", tag = "topics", params(("name" = String, Path, description = "Topic name"), DeleteQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such topic (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "One of the service's own topics, or an internal one without `force` (`topic_protected`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn delete_topic(
    State(state): State<ClustersState>,
    target: Target,
    Path(TopicPath { name }): Path<TopicPath>,
    QueryParams(query): QueryParams<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    if target.is_home() && state.topic_names.contains(&name) {
        // Deleting them under the running service loses every order and status in them;
        // `force` does not apply. Stop the service and delete them with Kafka's own tools.
        return Err(ApiError::Conflict {
            code: "topic_protected",
            detail: format!(
                "{name} is one of this service's own topics and cannot be deleted while it runs"
            ),
        });
    }
    if !query.force && is_internal_topic(&name) {
        return Err(ApiError::Conflict {
            code: "topic_protected",
            detail: format!("{name} is internal to Kafka; add force=true to delete it anyway"),
        });
    }
    target.admin().describe_topic(&name).await?;
    target.admin().delete_topic(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
