//! Liveness, readiness and the metrics endpoint. Ready means: not shutting down, Kafka
//! answers a metadata request, the service's topics exist, and the status view has caught
//! up with the end of the status topic as it was at start-up.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;
use crate::kafka::topics::missing_topics;

/// The health and metrics routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
}

async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "live" }))
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.shutdown.is_cancelled() {
        return not_ready("shutting down");
    }
    let timeout = state
        .settings
        .admin_timeout()
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
        Ok(missing) if missing.is_empty() => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "orders_in_view": state.store.len() })),
        )
            .into_response(),
        Ok(missing) => not_ready(&format!("topics missing: {}", missing.join(", "))),
        Err(error) => {
            tracing::warn!(%error, "readiness: kafka metadata request failed");
            not_ready("kafka unreachable")
        }
    }
}

fn not_ready(reason: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "not_ready", "reason": reason })),
    )
        .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    // The queue gauge is live at every scrape, not only at each statistics report.
    state.orders.producer.in_flight();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
