//! The router: every route with the middleware stack around it, outermost last — CORS,
//! request id, trace context, the request span, security headers, problem+json for
//! framework errors, load shedding and the backstop timeout, body limits, then per-route
//! metrics and access control.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use super::AppState;
use crate::http::error::{ApiError, READS_ONLY, REQUEST_ID};
use crate::http::extract::BodyReadTimeout;

const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP surface with its middleware.
pub fn router(state: AppState) -> Router {
    let http = &state.settings.http;
    let retry_after = http.retry_after;
    // A backstop above the per-operation Kafka timeouts: no request outlives it.
    let backstop = state.settings.http.request_timeout + Duration::from_secs(1);
    let limits = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(
            move |error: tower::BoxError| async move {
                if !error.is::<tower::load_shed::error::Overloaded>()
                    && !error.is::<tower::timeout::error::Elapsed>()
                {
                    tracing::error!(%error, "unexpected middleware error");
                }
                ApiError::Overloaded { retry_after }.into_response()
            },
        ))
        .load_shed()
        .concurrency_limit(http.max_concurrent_requests)
        .timeout(backstop);

    super::routes::router()
        .route_layer(middleware::from_fn(crate::trace::name_server_span))
        .route_layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track_http,
        ))
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(DefaultBodyLimit::max(http.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            http.max_body_bytes,
            crate::http::middleware::refuse_declared_oversize,
        ))
        // Read by each route's access guard (`auth::scoped`).
        .layer(axum::Extension(state.access.clone()))
        .layer(axum::Extension(BodyReadTimeout(
            state.settings.http.body_read_timeout,
        )))
        .layer(limits)
        .layer(middleware::from_fn(
            crate::http::middleware::problem_for_bare_errors,
        ))
        .layer(middleware::from_fn(scope_request_id))
        .layer(middleware::from_fn(
            crate::http::middleware::security_headers,
        ))
        .layer(
            TraceLayer::new_for_http()
                // 503s are answers (not ready, Kafka unavailable), logged where they arise.
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG))
                // One line per request with status and latency, in the request's span: at
                // info for server errors and slow answers, at debug for the rest (one line
                // per order at 15,000 orders/s is a large share of the intake's CPU;
                // /metrics counts every request).
                .on_response(log_response)
                .make_span_with(|request: &Request<Body>| {
                    let header = |name: &str| {
                        request
                            .headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                    };
                    // The service's context for the request (set by `propagate`): the
                    // exported server span's ids when spans are exported.
                    let trace =
                        crate::trace::TraceContext::parse(header(crate::trace::TRACEPARENT));
                    tracing::info_span!(
                        "http",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = header(REQUEST_ID_HEADER.as_str()),
                        trace_id = trace.as_ref().map(|t| t.trace_id()).unwrap_or_default(),
                        span_id = trace.as_ref().map(|t| t.span_id()).unwrap_or_default(),
                    )
                }),
        )
        // Outside the span above, which reads the trace context this sets.
        .layer(middleware::from_fn(crate::trace::propagate))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
        .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeRequestUuid))
        .layer(middleware::from_fn(
            crate::http::middleware::sanitize_request_id,
        ))
        // Outermost, so a preflight is answered before any limit or handler; the settings
        // were checked at start-up, so an error here cannot happen.
        .layer(tower::util::option_layer(
            state.settings.http.cors.layer().ok().flatten(),
        ))
        .with_state(state)
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

/// Makes the request id available to error responses.
async fn scope_request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let reads_only = request.method().is_safe();
    REQUEST_ID
        .scope(id, READS_ONLY.scope(reads_only, next.run(request)))
        .await
}
