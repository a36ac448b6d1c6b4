//! The cluster: its brokers and health, and the local development broker's lifecycle.

use axum::Json;
use axum::extract::State;

use super::Target;
use crate::clusters::ClustersState;
use crate::clusters::broker::BrokerStatus;
use crate::http::error::{ApiError, Problem};
use crate::kafka::admin::ClusterInfo;

/// Local broker status.
///
/// Whether the configured local development broker (`[local_broker]`) runs, its pid, port
/// and uptime.
#[utoipa::path(get, path = "/api/admin/cluster/status", tag = "cluster",
    responses((status = 200, description = "Status", body = BrokerStatus), (status = 409, description = "No local broker configured (`local_broker_not_configured`) or it is not in a state for this (`local_broker_state`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn broker_status(
    State(state): State<ClustersState>,
) -> Result<Json<BrokerStatus>, ApiError> {
    Ok(Json(state.local_broker.status().await?))
}

/// Start the local broker.
#[utoipa::path(post, path = "/api/admin/cluster/start", tag = "cluster",
    responses((status = 200, description = "Started and accepting connections", body = BrokerStatus), (status = 409, description = "No local broker configured (`local_broker_not_configured`) or it is not in a state for this (`local_broker_state`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn broker_start(
    State(state): State<ClustersState>,
) -> Result<Json<BrokerStatus>, ApiError> {
    Ok(Json(state.local_broker.start().await?))
}

/// Stop the local broker.
#[utoipa::path(post, path = "/api/admin/cluster/stop", tag = "cluster",
    responses((status = 200, description = "Stopped", body = BrokerStatus), (status = 409, description = "No local broker configured (`local_broker_not_configured`) or it is not in a state for this (`local_broker_state`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn broker_stop(
    State(state): State<ClustersState>,
) -> Result<Json<BrokerStatus>, ApiError> {
    Ok(Json(state.local_broker.stop().await?))
}

/// Cluster overview.
///
/// Cluster id, controller, brokers, topic and partition counts, health, and the metadata
/// round-trip time.
#[utoipa::path(get, path = "/cluster", tag = "cluster",
    responses((status = 200, description = "The cluster", body = ClusterInfo)))]
pub(super) async fn cluster(target: Target) -> Result<Json<ClusterInfo>, ApiError> {
    Ok(Json(target.admin().cluster().await?))
}
