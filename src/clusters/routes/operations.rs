//! The HTTP side of tracked operations: start a replication, list, look up and cancel.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clusters::ClustersState;
use crate::clusters::operations::{MigrateRequest, Operation, ReplicateRequest, StartError};
use crate::clusters::routes::refuse_unreached;
use crate::http::audit::AuditDetails;
use crate::http::auth::Principal;
use crate::http::auth::{Scope, scoped};
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::{JsonBody, QueryParams};
use axum::extract::FromRef;

/// The operations' routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    ClustersState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(scoped(Scope::AdminWrite, routes!(replicate)))
        .routes(scoped(Scope::AdminWrite, routes!(migrate)))
        .routes(scoped(Scope::AdminRead, routes!(list_operations)))
        .routes(scoped(Scope::AdminRead, routes!(get_operation)))
        .routes(scoped(Scope::AdminWrite, routes!(cancel_operation)))
}

fn unavailable(cause: String) -> ApiError {
    ApiError::write_outcome_unknown("operations", &cause)
}

impl From<StartError> for ApiError {
    fn from(error: StartError) -> Self {
        match error {
            StartError::Busy => ApiError::Overloaded {
                retry_after: std::time::Duration::from_secs(5),
            },
            StartError::Unavailable(cause) => unavailable(cause),
        }
    }
}

/// Whether a caller may see an operation: a key limited to some clusters sees the ones
/// that touch only its clusters.
fn visible(caller: Option<&Extension<Principal>>, operation: &Operation) -> bool {
    caller.is_none_or(|Extension(c)| operation.clusters().all(|id| c.reaches(id)))
}

/// Replicate topic structure.
///
/// Creates the source's topics (partitions, and the configs set on each topic) on every
/// target, with the replication factor lowered to a target's broker count where needed
/// (reported per topic). Topics that exist on a target are left alone unless
/// `overwrite_configs`. Answers at once; the operation runs in the background.
#[utoipa::path(post, path = "/api/operations/replicate", tag = "operations",
    request_body(content = ReplicateRequest, example = json!({"source_cluster_id": "default", "target_cluster_ids": ["staging"], "topics": ["payments"], "dry_run": true})),
    responses(
        (status = 202, description = "Accepted; follow `Location`", body = Operation, headers(("Location" = String, description = "The operation's URL"))),
        (status = 404, description = "No such cluster (`cluster_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "This instance runs and queues as many operations as it may (`overloaded`), or Kafka is unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub(super) async fn replicate(
    State(state): State<ClustersState>,
    caller: Option<Extension<Principal>>,
    JsonBody(request): JsonBody<ReplicateRequest>,
) -> Result<Response, ApiError> {
    let clusters: Vec<String> = std::iter::once(&request.source_cluster_id)
        .chain(&request.target_cluster_ids)
        .cloned()
        .collect();
    known_clusters(&state, &clusters)?;
    refuse_unreached(&state.clusters, caller.as_deref(), &clusters).await?;
    let mut errors = topic_errors(&request.topics);
    if request.target_cluster_ids.is_empty() || request.target_cluster_ids.len() > 20 {
        errors.push(FieldError::new("target_cluster_ids", "1 to 20 clusters"));
    }
    if request
        .target_cluster_ids
        .contains(&request.source_cluster_id)
    {
        errors.push(FieldError::new(
            "target_cluster_ids",
            "must not hold the source",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let details = Extension(AuditDetails(json!({
        "source": request.source_cluster_id,
        "targets": request.target_cluster_ids,
        "topics": request.topics.len(),
        "dry_run": request.dry_run,
    })));
    let operation = state
        .operations
        .start_replicate(request, state.clusters.clone(), &state.shutdown)
        .await?;
    Ok(accepted(operation, details))
}

/// Migrate records.
///
/// Copies every record of the topics (all of the source's when `topics` is absent) up to
/// the ends the source had when the operation started: key, value, headers and, unless
/// `preserve_timestamps` is false, timestamp; into the same partition when both sides have
/// as many, by key otherwise. Missing topics are created first. With
/// `include_consumer_groups`, each group's committed offsets are translated to the copied
/// positions and committed on the target. A slice is replayed with `filter` (CEL, as in
/// message search), `from_time` / `until_time` and `target_topic` (one source topic). The
/// service's own topics on the cluster it runs on are never written. Answers at once; the
/// operation runs in the background with progress and records per second.
#[utoipa::path(post, path = "/api/operations/migrate", tag = "operations",
    request_body(content = MigrateRequest, example = json!({"source_cluster_id": "default", "target_cluster_id": "staging", "topics": ["orders"], "filter": "headers[\"event-type\"] == \"OrderFailed\"", "from_time": "2026-11-30T10:00:00Z", "until_time": "2026-11-30T10:15:00Z", "target_topic": "orders-replay"})),
    responses(
        (status = 202, description = "Accepted; follow `Location`", body = Operation, headers(("Location" = String, description = "The operation's URL"))),
        (status = 404, description = "No such cluster (`cluster_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A destination is one of the service's own topics (`topic_protected`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "This instance runs and queues as many operations as it may (`overloaded`), or Kafka is unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub(super) async fn migrate(
    State(state): State<ClustersState>,
    caller: Option<Extension<Principal>>,
    JsonBody(request): JsonBody<MigrateRequest>,
) -> Result<Response, ApiError> {
    let clusters = [
        request.source_cluster_id.clone(),
        request.target_cluster_id.clone(),
    ];
    known_clusters(&state, &clusters)?;
    refuse_unreached(&state.clusters, caller.as_deref(), &clusters).await?;
    let mut errors = topic_errors(&request.topics);
    errors.extend(slice_errors(&request));
    if request.target_cluster_id == request.source_cluster_id
        && request
            .target_topic
            .as_ref()
            .is_none_or(|t| request.topics.contains(t))
    {
        errors.push(FieldError::new(
            "target_cluster_id",
            "must not be the source (unless target_topic names another topic)",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    refuse_service_topics(&state, &request).await?;
    let details = Extension(AuditDetails(json!({
        "source": request.source_cluster_id,
        "target": request.target_cluster_id,
        "topics": request.topics.len(),
        "include_consumer_groups": request.include_consumer_groups,
        "include_schemas": request.include_schemas,
        "dry_run": request.dry_run,
        "filter": request.filter,
        "from_time": request.from_time,
        "until_time": request.until_time,
        "target_topic": request.target_topic,
    })));
    let operation = state
        .operations
        .start_migrate(request, state.clusters.clone(), &state.shutdown)
        .await?;
    Ok(accepted(operation, details))
}

/// A migrate into the cluster this service runs on (judged by the Kafka cluster id its
/// brokers report) never writes the service's own topics, and names the topics it copies.
async fn refuse_service_topics(
    state: &ClustersState,
    request: &MigrateRequest,
) -> Result<(), ApiError> {
    let registry = &state.clusters;
    let cluster = registry
        .get(&request.target_cluster_id)
        .ok_or_else(|| ApiError::ClusterNotFound(request.target_cluster_id.clone()))?;
    if !cluster.home && registry.identity(&cluster).await? != registry.home_identity().await? {
        return Ok(());
    }
    if request.topics.is_empty() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "topics",
            "name the topics to copy into the cluster this service runs on",
        )]));
    }
    let destinations = match &request.target_topic {
        Some(topic) => vec![topic],
        None => request.topics.iter().collect(),
    };
    match destinations
        .into_iter()
        .find(|t| state.topic_names.contains(t) || state.control_topics.contains(t))
    {
        Some(topic) => Err(ApiError::Conflict {
            code: "topic_protected",
            detail: format!(
                "{topic} is one of this service's own topics; a migrate never writes it"
            ),
        }),
        None => Ok(()),
    }
}

/// What is wrong with a migrate's slice: its filter, time window and target topic.
fn slice_errors(request: &MigrateRequest) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(filter) = &request.filter {
        if filter.len() > crate::clusters::filter::MAX_FILTER_LEN {
            errors.push(FieldError::new("filter", "at most 2000 characters"));
        } else if let Err(error) = crate::clusters::filter::RecordFilter::new(Some(filter), None) {
            errors.push(FieldError::new("filter", error.to_string()));
        }
    }
    if let (Some(from), Some(until)) = (request.from_time, request.until_time)
        && from > until
    {
        errors.push(FieldError::new("from_time", "must not be after until_time"));
    }
    if let Some(target) = &request.target_topic {
        if let Err(why) = crate::kafka::validate_topic_name(target) {
            errors.push(FieldError::new("target_topic", why));
        }
        if request.topics.len() != 1 {
            errors.push(FieldError::new(
                "target_topic",
                "needs exactly one topic in topics",
            ));
        }
    }
    let sliced = request.filter.is_some()
        || request.from_time.is_some()
        || request.until_time.is_some()
        || request.target_topic.is_some();
    if sliced && request.include_consumer_groups {
        errors.push(FieldError::new(
            "include_consumer_groups",
            "offsets cannot be translated for a slice (filter, time window or target_topic)",
        ));
    }
    errors
}

/// `404 cluster_not_found` for the first id the registry does not know.
fn known_clusters<'a>(
    state: &ClustersState,
    ids: impl IntoIterator<Item = &'a String>,
) -> Result<(), ApiError> {
    match ids.into_iter().find(|id| state.clusters.get(id).is_none()) {
        Some(id) => Err(ApiError::ClusterNotFound(id.clone())),
        None => Ok(()),
    }
}

/// What is wrong with the topics an operation names.
fn topic_errors(topics: &[String]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if topics.len() > 1000 {
        errors.push(FieldError::new("topics", "at most 1000"));
    }
    for (i, topic) in topics.iter().enumerate() {
        if let Err(why) = crate::kafka::validate_topic_name(topic) {
            errors.push(FieldError::new(format!("topics[{i}]"), why));
        }
    }
    errors
}

/// `202 Accepted` with the operation, and where to follow it.
fn accepted(operation: Operation, details: Extension<AuditDetails>) -> Response {
    let location = format!("/api/operations/{}", operation.id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        details,
        Json(operation),
    )
        .into_response()
}

/// Query of `GET /api/operations`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OperationsQuery {
    /// How many, newest first: 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
}

/// List operations.
///
/// The newest first, from any instance.
#[utoipa::path(get, path = "/api/operations", tag = "operations", params(OperationsQuery),
    responses((status = 200, description = "Operations", body = Vec<Operation>),
        (status = 400, description = "Bad query (`invalid_query`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn list_operations(
    State(state): State<ClustersState>,
    caller: Option<Extension<Principal>>,
    QueryParams(query): QueryParams<OperationsQuery>,
) -> Result<Json<Vec<Operation>>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::InvalidQuery("limit must be 1 to 200".into()));
    }
    Ok(Json(
        state
            .operations
            .recent(usize::MAX)
            .into_iter()
            .filter(|o| visible(caller.as_ref(), o))
            .take(limit)
            .collect(),
    ))
}

/// Look up an operation.
///
/// Status (`pending`, `running`, `completed`, `failed`, `cancelled`, `interrupted`),
/// progress, and the result of every topic on every target so far.
#[utoipa::path(get, path = "/api/operations/{id}", tag = "operations",
    params(("id" = String, Path, description = "Operation id")),
    responses((status = 200, description = "The operation", body = Operation),
        (status = 404, description = "No such operation (`not_found`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_operation(
    State(state): State<ClustersState>,
    caller: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> Result<Json<Operation>, ApiError> {
    state
        .operations
        .get(&id)
        .filter(|o| visible(caller.as_ref(), o))
        .map(Json)
        .ok_or(ApiError::NotFound("operation"))
}

/// Cancel an operation.
///
/// Stops it after the topic in hand; what was done stays done and is listed.
#[utoipa::path(delete, path = "/api/operations/{id}", tag = "operations",
    params(("id" = String, Path, description = "Operation id")),
    responses((status = 202, description = "Cancel requested", body = Operation),
        (status = 404, description = "No such operation (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It has finished already (`conflict`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn cancel_operation(
    State(state): State<ClustersState>,
    caller: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Operation>), ApiError> {
    if !state
        .operations
        .get(&id)
        .is_some_and(|o| visible(caller.as_ref(), &o))
    {
        return Err(ApiError::NotFound("operation"));
    }
    let operation = state
        .operations
        .cancel(&id)
        .await
        .map_err(unavailable)?
        .ok_or(ApiError::NotFound("operation"))?;
    if !operation.cancel_requested {
        return Err(ApiError::Conflict {
            code: "conflict",
            detail: format!(
                "operation {id} has finished already ({:?})",
                operation.status
            ),
        });
    }
    Ok((StatusCode::ACCEPTED, Json(operation)))
}
