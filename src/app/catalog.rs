//! The service catalog: what runs, where, and how it is doing.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use crate::http::auth::{AuthMode, Scope, scoped};
use crate::http::error::ApiError;
use crate::kafka::admin::AdminError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The catalog's route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(scoped(Scope::AdminRead, routes!(catalog)))
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
        "endpoints": super::routes::endpoints(),
    }))
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
