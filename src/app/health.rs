//! Liveness, readiness and the metrics endpoint. Ready means: not shutting down, Kafka
//! answers a metadata request, the service's topics exist, the status view has caught up
//! with the end of the status topic as it was at start-up, the cluster registry has read
//! its topic likewise, and (when this instance
//! processes) its processors have received their first partition assignment.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::http::auth::{Scope, scoped};
use crate::kafka::topics::missing_topics;

/// The health and metrics routes, each with its OpenAPI description.
/// The probes' and the scrape's paths (as in their `#[utoipa::path]`s below).
pub const LIVE_PATH: &str = "/health/live";
/// See [`LIVE_PATH`].
pub const READY_PATH: &str = "/health/ready";
/// See [`LIVE_PATH`].
pub const METRICS_PATH: &str = "/metrics";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(scoped(Scope::MetricsRead, routes!(metrics)))
}

/// Liveness.
///
/// 200 while the process serves HTTP; nothing else is checked.
#[utoipa::path(get, path = "/health/live", tag = "service",
    responses((status = 200, description = "Live", body = Object, example = json!({"status": "live"}))))]
async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "live" }))
}

/// Readiness.
///
/// 200 when Kafka answers, the service's topics exist, the status view has caught up and
/// the processors have their partitions; 503 with the reason otherwise (also while shutting
/// down).
#[utoipa::path(get, path = "/health/ready", tag = "service",
    responses(
        (status = 200, description = "Ready", body = Object, example = json!({"status": "ready", "orders_in_view": 1200})),
        (status = 503, description = "Not ready, with the reason", body = Object, example = json!({"status": "not_ready", "reason": "kafka unreachable"})),
    ))]
async fn ready(State(state): State<AppState>) -> Response {
    if state.shutdown.is_cancelled() {
        return not_ready("shutting down");
    }
    let timeout = state
        .settings
        .kafka
        .admin_timeout
        .min(std::time::Duration::from_secs(2));
    match missing_topics(
        &state.orders.producer.metadata_handle(),
        &state.topic_names,
        timeout,
    )
    .await
    {
        Ok(missing) if missing.is_empty() && !state.projector.is_caught_up() => {
            not_ready("status view catching up")
        }
        Ok(missing) if missing.is_empty() && !state.store.has_list_indexes() => {
            not_ready("status view building its list indexes")
        }
        Ok(missing)
            if missing.is_empty()
                && !(state.clusters.is_caught_up()
                    && state.operations.is_caught_up()
                    && state.templates.is_caught_up()) =>
        {
            not_ready("cluster registry catching up")
        }
        Ok(missing)
            if missing.is_empty()
                && state.processing_assignments.members_assigned()
                    < state.settings.processing.consumers as u64 =>
        {
            not_ready("processors waiting for their partitions")
        }
        Ok(missing) if missing.is_empty() && state.processing_assignments.stalled() > 0 => {
            not_ready(
                "processing cannot advance: a position is past the end of its log and processing.offset_reset is \"error\"",
            )
        }
        Ok(missing) if missing.is_empty() && !state.store.is_writable() => {
            not_ready("the status view cannot write to its disk")
        }
        Ok(missing) if missing.is_empty() && !schemas_ready(&state) => {
            not_ready("the record schemas are not registered yet ([schemas] wire_format)")
        }
        Ok(missing) if missing.is_empty() => {
            if !state
                .said_ready
                .swap(true, std::sync::atomic::Ordering::AcqRel)
            {
                tracing::info!(orders_in_view = state.store.len(), "ready");
            }
            (
                StatusCode::OK,
                Json(json!({ "status": "ready", "orders_in_view": state.store.len() })),
            )
                .into_response()
        }
        Ok(missing) => not_ready(&format!("topics missing: {}", missing.join(", "))),
        Err(error) => {
            tracing::warn!(%error, "readiness: kafka metadata request failed");
            not_ready("kafka unreachable")
        }
    }
}

/// With `[schemas] wire_format`, whether the order and status records' schema ids are
/// known (until then records would be written as plain JSON).
fn schemas_ready(state: &AppState) -> bool {
    let t = &state.settings.topics;
    !state.settings.schemas.wire_format
        || (state.wire.id_for(&t.orders.name).is_some()
            && state.wire.id_for(&t.status.name).is_some())
}

fn not_ready(reason: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "not_ready", "reason": reason })),
    )
        .into_response()
}

/// Prometheus metrics.
///
/// The text exposition format (0.0.4) of the service's own registry: HTTP, orders, Kafka
/// producer and consumers, process, build info. See docs/operating.md.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Metrics", body = String, content_type = "text/plain; version=0.0.4")))]
async fn metrics(State(state): State<AppState>) -> Response {
    // The queue gauge is live at every scrape, not only at each statistics report.
    state
        .metrics
        .producer
        .queue_messages
        .set(i64::from(state.orders.producer.in_flight()));
    state.metrics.view_orders.set(state.store.len() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
