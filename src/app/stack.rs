//! The HTTP service: the middleware stack around the routes, outermost first — CORS,
//! request id, trace context, the request span, security headers, problem+json for
//! framework errors, the backstop timeout, body limits, load shedding (not for the probes
//! and /metrics), then per-route metrics and access control.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderName;
use axum::middleware;
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::util::BoxCloneSyncService;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use super::{AppState, health};
use crate::http::error::ApiError;
use crate::http::extract::BodyReadTimeout;
use crate::http::serve::HttpService;

const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP surface with its middleware, built once as one service: a layer added
/// with `Router::layer` wraps every route on its own (and boxes it), so each request would
/// clone and box the whole stack again at every layer, and a limit made per layer would be
/// each route's own.
pub fn router(state: AppState) -> HttpService {
    let http = &state.settings.http;
    let retry_after = http.retry_after;
    let overloaded = move |error: tower::BoxError| async move {
        if !error.is::<tower::load_shed::error::Overloaded>()
            && !error.is::<tower::timeout::error::Elapsed>()
        {
            tracing::error!(%error, "unexpected middleware error");
        }
        ApiError::Overloaded { retry_after }.into_response()
    };
    // A backstop above the per-operation Kafka timeouts: no request outlives it.
    let backstop = state.settings.http.request_timeout + Duration::from_secs(1);

    let routes = super::routes::router()
        .route_layer(middleware::from_fn(crate::trace::name_server_span))
        .route_layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track_http,
        ))
        .fallback(|| async { ApiError::NotFound("route") })
        .with_state(state.clone());
    // At most `http.max_concurrent_requests` in flight on the whole instance, beyond it
    // `503` at once; the probes and /metrics answer outside that bound, so an overloaded
    // instance still says it is alive and can be watched.
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overloaded))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(
            http.max_concurrent_requests,
        ))
        .service(routes.clone());
    // The same routes for the probes, as a service (`route_service` refuses a `Router`).
    let unbounded = BoxCloneSyncService::new(routes);
    let dispatch = Router::new()
        .route_service(health::LIVE_PATH, unbounded.clone())
        .route_service(health::READY_PATH, unbounded.clone())
        .route_service(health::METRICS_PATH, unbounded)
        .fallback_service(shed);

    // Outermost first.
    let stack = ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        // A preflight is answered before any limit or handler; the settings were checked
        // at start-up, so an error here cannot happen.
        .option_layer(http.cors.layer().ok().flatten())
        .map_request(crate::http::middleware::sanitize_request_id)
        .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
        // Outside the request's span, which reads the trace context this sets.
        .layer(middleware::from_fn(crate::trace::propagate))
        .layer(
            TraceLayer::new_for_http()
                // 503s are answers (not ready, Kafka unavailable), logged where they arise.
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG))
                // One line per request with status and latency, in the request's span: at
                // info for server errors and slow answers, at debug for the rest (one line
                // per order at 15,000 orders/s is a large share of the intake's CPU;
                // /metrics counts every request).
                .on_response(log_response)
                .make_span_with(request_span),
        )
        .layer(middleware::from_fn(crate::http::middleware::answer))
        .layer(HandleErrorLayer::new(overloaded))
        .timeout(backstop)
        .layer(axum::Extension(BodyReadTimeout(http.body_read_timeout)))
        // Read by each route's access guard (`auth::scoped`).
        .layer(axum::Extension(state.access.clone()))
        .layer(middleware::from_fn_with_state(
            http.max_body_bytes,
            crate::http::middleware::refuse_declared_oversize,
        ))
        .layer(DefaultBodyLimit::max(http.max_body_bytes))
        .service(dispatch);
    BoxCloneSyncService::new(stack)
}

/// The request's span. The service's context for the request (set by `propagate`): the
/// exported server span's ids when spans are exported.
fn request_span(request: &Request<Body>) -> tracing::Span {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let trace = crate::trace::TraceContext::parse(header(crate::trace::TRACEPARENT));
    tracing::info_span!(
        "http",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = header(REQUEST_ID_HEADER.as_str()),
        trace_id = trace.as_ref().map(|t| t.trace_id()).unwrap_or_default(),
        span_id = trace.as_ref().map(|t| t.span_id()).unwrap_or_default(),
    )
}

/// Answers slower than this are logged at info.
const SLOW_REQUEST: Duration = Duration::from_secs(1);

fn log_response<B>(response: &axum::http::Response<B>, latency: Duration, _span: &tracing::Span) {
    let status = response.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if status >= 500 || latency >= SLOW_REQUEST {
        tracing::info!(status, latency_ms, "finished processing request");
    } else {
        tracing::debug!(status, latency_ms, "finished processing request");
    }
}
