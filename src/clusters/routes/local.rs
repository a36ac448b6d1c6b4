//! `/api/clusters/{cluster}/status|start|stop`: the brokers of local clusters.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRef, Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ClusterPath;
use crate::clusters::broker::BrokerStatus;
use crate::clusters::{ClustersState, RegisteredCluster};
use crate::http::auth::{Scope, scoped};
use crate::http::error::{ApiError, Problem};

/// The local clusters' routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    ClustersState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(scoped(Scope::AdminRead, routes!(local_status)))
        .routes(scoped(Scope::AdminWrite, routes!(local_start)))
        .routes(scoped(Scope::AdminWrite, routes!(local_stop)))
}

fn cluster(state: &ClustersState, id: String) -> Result<Arc<RegisteredCluster>, ApiError> {
    state.clusters.get(&id).ok_or(ApiError::ClusterNotFound(id))
}

/// A local cluster's broker.
///
/// Running or stopped, with pid, port, storage and uptime; `409` for a cluster that is not
/// local.
#[utoipa::path(get, path = "/api/clusters/{cluster}/status", tag = "clusters",
    params(ClusterPath),
    responses((status = 200, description = "Status", body = BrokerStatus),
        (status = 404, description = "No such cluster (`cluster_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a local cluster, or no local broker configured (`local_broker_state`, `local_broker_not_configured`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn local_status(
    State(state): State<ClustersState>,
    Path(ClusterPath { cluster: id }): Path<ClusterPath>,
) -> Result<Json<BrokerStatus>, ApiError> {
    let cluster = cluster(&state, id)?;
    Ok(Json(
        state
            .local_clusters
            .broker(&cluster)
            .await?
            .status()
            .await?,
    ))
}

/// Start a local cluster's broker.
///
/// Answers once its port accepts connections.
#[utoipa::path(post, path = "/api/clusters/{cluster}/start", tag = "clusters",
    params(ClusterPath),
    responses((status = 200, description = "Running", body = BrokerStatus),
        (status = 404, description = "No such cluster (`cluster_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a local cluster, already running, `[local_broker] max_clusters` brokers running already, or no local broker configured (`local_broker_state`, `local_broker_not_configured`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn local_start(
    State(state): State<ClustersState>,
    Path(ClusterPath { cluster: id }): Path<ClusterPath>,
) -> Result<Json<BrokerStatus>, ApiError> {
    let cluster = cluster(&state, id)?;
    let status = state.local_clusters.start(&cluster).await?;
    state.clusters.check(&cluster).await;
    Ok(Json(status))
}

/// Stop a local cluster's broker.
///
/// SIGTERM, then SIGKILL after five seconds.
#[utoipa::path(post, path = "/api/clusters/{cluster}/stop", tag = "clusters",
    params(ClusterPath),
    responses((status = 200, description = "Stopped", body = BrokerStatus),
        (status = 404, description = "No such cluster (`cluster_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a local cluster, not running, or no local broker configured (`local_broker_state`, `local_broker_not_configured`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn local_stop(
    State(state): State<ClustersState>,
    Path(ClusterPath { cluster: id }): Path<ClusterPath>,
) -> Result<Json<BrokerStatus>, ApiError> {
    let cluster = cluster(&state, id)?;
    Ok(Json(
        state.local_clusters.broker(&cluster).await?.stop().await?,
    ))
}
