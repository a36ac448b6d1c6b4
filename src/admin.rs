//! The Kafka management API under `/api/admin`, and the service catalog at `/api/catalog`:
//! thin handlers over [`KafkaAdmin`], which does the Kafka work. Kafka's answers map to
//! statuses: unknown topic or group 404, topic exists 409, invalid partitions, replication
//! or config 422, broker unreachable 503. The service's own topics refuse deletion unless
//! `force=true`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::AppState;
use crate::http::audit::AuditDetails;
use crate::http::auth::{AuthMode, Scope, scoped};
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::{JsonBody, QueryParams};
use crate::kafka::RawRecord;
use crate::kafka::admin::{
    AdminError, BrowsedRecord, ClusterInfo, GroupDetails, GroupSummary, PartitionLag, ResetTo,
    TopicDetails, TopicRequest, TopicSummary,
};
use crate::local_broker::{BrokerError, BrokerStatus};

/// Most records one browse request returns.
pub const MAX_BROWSE: usize = 500;
/// Most records one produce request carries.
pub const MAX_PRODUCE: usize = 1000;

/// The admin and catalog routes, each with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    use Scope::{AdminRead as Read, AdminWrite as Write};
    OpenApiRouter::new()
        .routes(scoped(Read, routes!(cluster)))
        .routes(scoped(Read, routes!(broker_status)))
        .routes(scoped(Write, routes!(broker_start)))
        .routes(scoped(Write, routes!(broker_stop)))
        .routes(scoped(Read, routes!(list_topics)))
        .routes(scoped(Write, routes!(create_topic)))
        .routes(scoped(Read, routes!(describe_topic)))
        .routes(scoped(Write, routes!(delete_topic)))
        .routes(scoped(Write, routes!(alter_configs)))
        .routes(scoped(Write, routes!(add_partitions)))
        .routes(scoped(Read, routes!(browse)))
        .routes(scoped(Write, routes!(produce)))
        .routes(scoped(Read, routes!(list_groups)))
        .routes(scoped(Read, routes!(describe_group)))
        .routes(scoped(Write, routes!(delete_group)))
        .routes(scoped(Write, routes!(reset_offsets)))
        .routes(scoped(Read, routes!(catalog)))
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::NotFound(what) => ApiError::KafkaNotFound(what),
            AdminError::AlreadyExists(what) => ApiError::Conflict {
                code: "already_exists",
                detail: format!("{what} already exists"),
            },
            AdminError::Invalid(why) => ApiError::KafkaInvalid(why),
            AdminError::Conflict(why) => ApiError::Conflict {
                code: "conflict",
                detail: why,
            },
            AdminError::Unsupported(why) => ApiError::KafkaUnsupported(why),
            AdminError::Unavailable(cause) => {
                tracing::warn!(cause, "admin request: kafka unavailable");
                ApiError::KafkaUnavailable {
                    retry_after: std::time::Duration::from_secs(1),
                    // Admin requests that time out may still take effect on the cluster.
                    outcome_unknown: true,
                }
            }
            AdminError::Kafka(cause) => {
                ApiError::Internal(anyhow::anyhow!("kafka admin error: {cause}"))
            }
        }
    }
}

impl From<BrokerError> for ApiError {
    fn from(error: BrokerError) -> Self {
        match error {
            BrokerError::NotConfigured => ApiError::Conflict {
                code: "local_broker_not_configured",
                detail: error.to_string(),
            },
            BrokerError::WrongState(detail) => ApiError::Conflict {
                code: "local_broker_state",
                detail,
            },
            BrokerError::Failed(cause) => {
                ApiError::Internal(anyhow::anyhow!("local broker: {cause}"))
            }
        }
    }
}

/// Local broker status.
///
/// Whether the configured local development broker (`[local_broker]`) runs, its pid, port
/// and uptime.
#[utoipa::path(get, path = "/api/admin/cluster/status", tag = "cluster",
    responses((status = 200, description = "Status", body = BrokerStatus), (status = 409, description = "No local broker configured (`local_broker_not_configured`) or it is not in a state for this (`local_broker_state`)", body = Problem, content_type = "application/problem+json")))]
async fn broker_status(State(state): State<AppState>) -> Result<Json<BrokerStatus>, ApiError> {
    Ok(Json(state.local_broker.status().await?))
}

/// Start the local broker.
#[utoipa::path(post, path = "/api/admin/cluster/start", tag = "cluster",
    responses((status = 200, description = "Started and accepting connections", body = BrokerStatus), (status = 409, description = "No local broker configured (`local_broker_not_configured`) or it is not in a state for this (`local_broker_state`)", body = Problem, content_type = "application/problem+json")))]
async fn broker_start(State(state): State<AppState>) -> Result<Json<BrokerStatus>, ApiError> {
    Ok(Json(state.local_broker.start().await?))
}

/// Stop the local broker.
#[utoipa::path(post, path = "/api/admin/cluster/stop", tag = "cluster",
    responses((status = 200, description = "Stopped", body = BrokerStatus), (status = 409, description = "No local broker configured (`local_broker_not_configured`) or it is not in a state for this (`local_broker_state`)", body = Problem, content_type = "application/problem+json")))]
async fn broker_stop(State(state): State<AppState>) -> Result<Json<BrokerStatus>, ApiError> {
    Ok(Json(state.local_broker.stop().await?))
}

/// Cluster overview.
///
/// Cluster id, controller, brokers, topic and partition counts, health, and the metadata
/// round-trip time.
#[utoipa::path(get, path = "/api/admin/cluster", tag = "cluster",
    responses((status = 200, description = "The cluster", body = ClusterInfo), (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
async fn cluster(State(state): State<AppState>) -> Result<Json<ClusterInfo>, ApiError> {
    Ok(Json(state.admin.cluster().await?))
}

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
#[utoipa::path(get, path = "/api/admin/topics", tag = "topics", params(TopicListQuery),
    responses((status = 200, description = "Topics with partition and message counts", body = Vec<TopicSummary>), (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
async fn list_topics(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<TopicListQuery>,
) -> Result<Json<Vec<TopicSummary>>, ApiError> {
    Ok(Json(
        state
            .admin
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
    /// At least 1; at most `admin.max_partitions_per_topic` (409 beyond it).
    #[serde(deserialize_with = "crate::http::extract::whole_number")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub partitions: i32,
    /// 1 to the number of brokers (default 1; 409 beyond the brokers).
    #[serde(
        default = "one",
        deserialize_with = "crate::http::extract::whole_number"
    )]
    #[schema(minimum = 1, maximum = 32767)]
    pub replication_factor: i32,
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

fn one() -> i32 {
    1
}

/// Create a topic.
#[utoipa::path(post, path = "/api/admin/topics", tag = "topics",
    request_body(content = CreateTopic, example = json!({"name": "payments", "partitions": 6, "replication_factor": 1, "configs": {"retention.ms": "604800000"}})),
    responses(
        (status = 201, description = "Created", body = TopicDetails),
        (status = 409, description = "Exists already (`already_exists`), or more partitions than `admin.max_partitions_per_topic` / `admin.max_partitions_per_request` or replicas than brokers (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`, `kafka_invalid_request`)", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
async fn create_topic(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateTopic>,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<TopicDetails>), ApiError> {
    let request = TopicRequest {
        name: body.name,
        partitions: body.partitions,
        replication_factor: body.replication_factor,
        configs: body.configs,
    };
    state.admin.create_topic(&request).await?;
    let details = audit_details(json!({
        "partitions": request.partitions,
        "replication_factor": request.replication_factor,
        "configs": request.configs,
    }));
    Ok((
        StatusCode::CREATED,
        details,
        Json(state.admin.describe_topic(&request.name).await?),
    ))
}

/// Describe a topic.
///
/// Partitions with leader, replicas, in-sync replicas and watermarks, and the configs.
#[utoipa::path(get, path = "/api/admin/topics/{name}", tag = "topics", params(("name" = String, Path, description = "Topic name")),
    responses((status = 200, description = "The topic", body = TopicDetails), (status = 404, description = "No such topic (`not_found`)", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
async fn describe_topic(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<TopicDetails>, ApiError> {
    Ok(Json(state.admin.describe_topic(&name).await?))
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
#[utoipa::path(patch, path = "/api/admin/topics/{name}/configs", tag = "topics", params(("name" = String, Path, description = "Topic name")),
    request_body(content = AlterConfigs, example = json!({"configs": {"retention.ms": "86400000", "cleanup.policy": null}})),
    responses(
        (status = 200, description = "The topic after the change", body = TopicDetails),
        (status = 404, description = "No such topic (`not_found`)", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`, `kafka_invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 501, description = "The cluster does not support it (`kafka_unsupported`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
async fn alter_configs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<AlterConfigs>,
) -> Result<(Extension<AuditDetails>, Json<TopicDetails>), ApiError> {
    state
        .admin
        .alter_topic_configs(&name, &body.configs)
        .await?;
    Ok((
        audit_details(json!({ "configs": body.configs })),
        Json(state.admin.describe_topic(&name).await?),
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
#[utoipa::path(post, path = "/api/admin/topics/{name}/partitions", tag = "topics", params(("name" = String, Path, description = "Topic name")),
    request_body(content = AddPartitions, example = json!({"count": 12})),
    responses(
        (status = 200, description = "The topic with its new partitions", body = TopicDetails),
        (status = 404, description = "No such topic (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not more than the topic has, or over `admin.max_partitions_per_topic` / `admin.max_partitions_per_request` (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`, `kafka_invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 501, description = "The cluster does not support it (`kafka_unsupported`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
async fn add_partitions(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<AddPartitions>,
) -> Result<(Extension<AuditDetails>, Json<TopicDetails>), ApiError> {
    state.admin.add_partitions(&name, body.count).await?;
    Ok((
        audit_details(json!({ "count": body.count })),
        Json(state.admin.describe_topic(&name).await?),
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
#[utoipa::path(delete, path = "/api/admin/topics/{name}", tag = "topics", params(("name" = String, Path, description = "Topic name"), DeleteQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such topic (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "One of the service's own topics, or an internal one without `force` (`topic_protected`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
async fn delete_topic(
    State(state): State<AppState>,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    if state.topic_names.contains(&name) {
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
    state.admin.describe_topic(&name).await?;
    state.admin.delete_topic(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List consumer groups.
#[utoipa::path(get, path = "/api/admin/consumer-groups", tag = "consumer-groups",
    responses((status = 200, description = "Groups with state and member count", body = Vec<GroupSummary>), (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
async fn list_groups(State(state): State<AppState>) -> Result<Json<Vec<GroupSummary>>, ApiError> {
    Ok(Json(state.admin.list_groups().await?))
}

/// Describe a consumer group.
///
/// Members with their assignments, and per partition the committed offset, the end offset
/// and the lag, with the total lag.
#[utoipa::path(get, path = "/api/admin/consumer-groups/{id}", tag = "consumer-groups", params(("id" = String, Path, description = "Consumer group id")),
    responses((status = 200, description = "The group", body = GroupDetails), (status = 404, description = "No such group (`not_found`)", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
async fn describe_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<GroupDetails>, ApiError> {
    Ok(Json(state.admin.describe_group(&id).await?))
}

/// Delete a consumer group.
///
/// Refused while it has members.
#[utoipa::path(delete, path = "/api/admin/consumer-groups/{id}", tag = "consumer-groups", params(("id" = String, Path, description = "Consumer group id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such group (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The group has active members (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
async fn delete_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.admin.delete_group(&id).await?;
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
#[utoipa::path(post, path = "/api/admin/consumer-groups/{id}/offsets", tag = "consumer-groups", params(("id" = String, Path, description = "Consumer group id")),
    request_body(content = ResetOffsets, example = json!({"topic": "orders", "to": "earliest"})),
    responses(
        (status = 200, description = "The new committed offsets and lag", body = Vec<PartitionLag>),
        (status = 404, description = "No such group (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The group has active members (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`, `kafka_invalid_request`)", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
async fn reset_offsets(
    State(state): State<AppState>,
    Path(id): Path<String>,
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
    let lag = state
        .admin
        .reset_group_offsets(&id, &body.topic, to)
        .await?;
    let details = audit_details(json!({
        "topic": body.topic,
        "to": body.to,
        "offset": body.offset,
    }));
    Ok((details, Json(lag)))
}

/// Query of `GET /api/admin/topics/{name}/messages`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BrowseQuery {
    /// Partition to read (default 0).
    #[serde(default)]
    #[param(minimum = 0)]
    pub partition: i32,
    /// First offset to read; without it (or with `from=end`) the last `limit` records.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// `end` to read the newest records.
    #[param(value_type = Option<BrowseFrom>, inline)]
    pub from: Option<String>,
    /// How many, 1 to 500 (default 20).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

/// Where a browse starts without an offset.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum BrowseFrom {
    /// The newest `limit` records.
    End,
}

/// Read records of a topic.
///
/// From one partition, starting at `offset` or the newest `limit` records; nothing is
/// committed, no group is joined.
#[utoipa::path(get, path = "/api/admin/topics/{name}/messages", tag = "messages", params(("name" = String, Path, description = "Topic name"), BrowseQuery),
    responses(
        (status = 200, description = "The records, oldest first", body = Vec<BrowsedRecord>),
        (status = 400, description = "Bad query (`invalid_query`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic (`not_found`)", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
async fn browse(
    State(state): State<AppState>,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<BrowseQuery>,
) -> Result<Json<Vec<BrowsedRecord>>, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if query.partition < 0 || query.offset.is_some_and(|o| o < 0) {
        return Err(ApiError::InvalidQuery(
            "partition and offset must not be negative".into(),
        ));
    }
    if !(1..=MAX_BROWSE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be 1 to {MAX_BROWSE}"
        )));
    }
    let offset = match query.from.as_deref() {
        Some("end") => None,
        Some(other) => {
            return Err(ApiError::InvalidQuery(format!(
                "from={other:?}: only \"end\" is known"
            )));
        }
        None => query.offset,
    };
    Ok(Json(
        state
            .admin
            .browse(&name, query.partition, offset, limit)
            .await?,
    ))
}

/// One record to produce.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceRecord {
    /// Record key.
    pub key: Option<String>,
    /// A JSON value; a JSON string is written as its plain text.
    pub value: Value,
    /// Headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Partition; by default Kafka's partitioner picks one from the key.
    #[serde(
        default,
        deserialize_with = "crate::http::extract::optional_whole_number"
    )]
    #[schema(minimum = 0)]
    pub partition: Option<i32>,
}

/// Body of `POST /api/admin/topics/{name}/messages`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceRequest {
    /// 1 to 1000 records, each a JSON object.
    #[serde(deserialize_with = "crate::http::extract::objects")]
    #[schema(min_items = 1, max_items = 1000)]
    pub records: Vec<ProduceRecord>,
}

/// Where one produced record landed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Produced {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// Query of `POST /api/admin/topics/{name}/messages`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProduceQuery {
    /// Needed to write to one of the service's own topics (a forged order or status is then
    /// a deliberate act).
    #[serde(default)]
    pub force: bool,
}

/// Write records to a topic.
///
/// Each record with its key, headers and optional partition; answered once Kafka has
/// acknowledged every record. The service's own topics are refused (409 `topic_protected`)
/// unless `force=true`.
#[utoipa::path(post, path = "/api/admin/topics/{name}/messages", tag = "messages", params(("name" = String, Path, description = "Topic name"), ProduceQuery),
    request_body(content = ProduceRequest, example = json!({"records": [{"key": "k1", "value": {"hello": "world"}, "headers": {"source": "docs"}}]})),
    responses(
        (status = 200, description = "Where each record landed, in request order", body = Vec<Produced>),
        (status = 404, description = "No such topic (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "One of the service's own topics, without `force` (`topic_protected`)", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`, `kafka_invalid_request`)", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
async fn produce(
    State(state): State<AppState>,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<ProduceQuery>,
    JsonBody(body): JsonBody<ProduceRequest>,
) -> Result<(Extension<AuditDetails>, Json<Vec<Produced>>), ApiError> {
    let protected = state.topic_names.contains(&name);
    if protected && !query.force {
        return Err(ApiError::Conflict {
            code: "topic_protected",
            detail: format!(
                "{name} is one of this service's own topics; add force=true to write to it anyway"
            ),
        });
    }
    if body.records.is_empty() || body.records.len() > MAX_PRODUCE {
        return Err(ApiError::Validation(vec![FieldError::new(
            "records",
            format!("1 to {MAX_PRODUCE} records"),
        )]));
    }
    let details = state.admin.describe_topic(&name).await?;
    let partitions = details.partitions.len() as i32;
    let producer = state.orders.producer.with_type::<Value>();
    type Prepared = (Option<String>, Vec<u8>, Vec<(String, String)>, Option<i32>);
    let prepared: Vec<Prepared> = body
        .records
        .into_iter()
        .map(|r| {
            let payload = match r.value {
                Value::String(s) => s.into_bytes(),
                other => serde_json::to_vec(&other).unwrap_or_default(),
            };
            (r.key, payload, r.headers.into_iter().collect(), r.partition)
        })
        .collect();
    if let Some(bad) = prepared
        .iter()
        .filter_map(|r| r.3)
        .find(|p| *p < 0 || *p >= partitions)
    {
        return Err(ApiError::KafkaNotFound(format!(
            "partition {bad} of {name} (the topic has {partitions})"
        )));
    }
    let sends = prepared.iter().map(|(key, payload, headers, partition)| {
        producer.send_raw(RawRecord {
            topic: &name,
            key: key.as_deref().map(str::as_bytes),
            payload: Some(payload),
            headers,
            partition: *partition,
        })
    });
    let mut answers = Vec::with_capacity(prepared.len());
    for result in futures::future::join_all(sends).await {
        let delivery = result.map_err(|e| state.orders.produce_error(e))?;
        answers.push(Produced {
            partition: delivery.partition,
            offset: delivery.offset,
        });
    }
    let partitions: std::collections::BTreeSet<i32> = answers.iter().map(|a| a.partition).collect();
    let details = audit_details(json!({
        "records": answers.len(),
        "partitions": partitions,
        "forced_write_to_own_topic": protected,
    }));
    Ok((details, Json(answers)))
}

/// Service catalog.
///
/// What runs and where: version, Kafka cluster and its health, the service's topics, the
/// processing group, the status view, and every endpoint. The page to read first.
#[utoipa::path(get, path = "/api/catalog", tag = "service",
    responses((status = 200, description = "The catalog", body = Object)))]
async fn catalog(State(state): State<AppState>) -> Json<Value> {
    let cluster = match state.admin.cluster().await {
        Ok(c) => json!(c),
        Err(e) => json!({ "health": "unreachable", "error": ApiError::from(e).problem().detail }),
    };
    let mut topics = Vec::new();
    for name in state.topic_names.iter() {
        let entry = match state.admin.describe_topic(name).await {
            Ok(d) => json!({
                "name": name,
                "state": "present",
                "partitions": d.partitions.len(),
                "messages": d.partitions.iter().map(|p| p.high_watermark - p.low_watermark).sum::<i64>(),
            }),
            Err(AdminError::NotFound(_)) => json!({ "name": name, "state": "missing" }),
            Err(_) => json!({ "name": name, "state": "unknown" }),
        };
        topics.push(entry);
    }
    let settings = &state.settings;
    Json(json!({
        "service": "orderflow",
        "version": env!("CARGO_PKG_VERSION"),
        "kafka": { "bootstrap_servers": settings.kafka.bootstrap_servers, "cluster": cluster },
        "topics": topics,
        "consumers": {
            "group_id": settings.processing.group_id,
            "tasks": settings.processing.consumers,
            "assignment_and_lag": format!("/api/admin/consumer-groups/{}", settings.processing.group_id),
        },
        "status_view": {
            "orders": state.store.len(),
            "caught_up": state.projector.is_caught_up(),
        },
        "access": access_summary(&state),
        "docs": crate::http::openapi::UI_PATH,
        "openapi": crate::http::openapi::DOCUMENT_PATH,
        "endpoints": crate::http::openapi::endpoints(),
    }))
}

/// What an admin change did, for its audit record.
fn audit_details(details: Value) -> Extension<AuditDetails> {
    Extension(AuditDetails(details))
}

/// How callers are let in, for the catalog: loud when anyone can call everything.
fn access_summary(state: &AppState) -> Value {
    let auth = &state.settings.auth;
    let limits = json!({
        "enabled": auth.rate_limit.enabled,
        "per_second": auth.rate_limit.per_second,
        "burst": auth.rate_limit.burst,
    });
    match state.access.mode() {
        AuthMode::Open => json!({
            "mode": "open",
            "warning": "auth.mode is \"open\": every route is reachable without an API key; \
                        set auth.mode = \"keys\" before exposing this service",
            "rate_limit": limits,
        }),
        AuthMode::Keys => json!({
            "mode": "keys",
            "keys": state.access.key_count(),
            "metrics_protected": auth.protect_metrics,
            "rate_limit": limits,
            "audit_topic": state.settings.topics.audit.name,
        }),
    }
}
