//! HTTP handlers for orders. Handlers only see validated input; every refusal is an
//! [`ApiError`].

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::OrderRequest;
use super::service::{Accepted, RequestContext};
use crate::app::AppState;
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::JsonBody;

/// The order routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/orders", post(create_order))
        .route("/api/orders/bulk", post(create_orders_bulk))
}

/// A bulk submission.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// The orders, each validated and answered on its own.
    pub orders: Vec<serde_json::Value>,
}

/// The answer to a bulk submission.
#[derive(Debug, Serialize, Deserialize)]
pub struct BulkResponse {
    /// How many orders were accepted.
    pub accepted: usize,
    /// How many were refused.
    pub rejected: usize,
    /// One answer per order, in request order.
    pub results: Vec<BulkItem>,
}

/// One order's answer in a bulk response.
#[derive(Debug, Serialize, Deserialize)]
pub struct BulkItem {
    /// Position of the order in the request.
    pub index: usize,
    /// `accepted` or `rejected`.
    pub outcome: String,
    /// The order id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    /// The accepted order's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<Accepted>,
    /// Why the order was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

fn request_context(headers: &HeaderMap) -> RequestContext {
    RequestContext {
        request_id: headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= 255 => Ok(Some(key)),
        _ => Err(ApiError::Validation(vec![FieldError::new(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        )])),
    }
}

fn accepted_response(answer: &Accepted, replayed: bool) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(answer)).into_response();
    let location = format!("/api/orders/{}", answer.order_id);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// `POST /api/orders`: 202 once Kafka has the order.
async fn create_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<OrderRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let (answer, replayed) = state.orders.submit(request, key, &request_context(&headers)).await?;
    Ok(accepted_response(&answer, replayed))
}

/// `POST /api/orders/bulk`: each order answered on its own; 202 all, 207 some, 422 none.
async fn create_orders_bulk(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<BulkRequest>,
) -> Result<Response, ApiError> {
    if request.orders.is_empty() {
        return Err(ApiError::Validation(vec![FieldError::new("orders", "must not be empty")]));
    }
    let given_ids: Vec<Option<Uuid>> = request
        .orders
        .iter()
        .map(|o| o.get("order_id").and_then(|v| v.as_str()).and_then(|s| s.parse().ok()))
        .collect();
    let results = state.orders.submit_bulk(request.orders, &request_context(&headers)).await?;
    let mut retryable = None;
    let results: Vec<BulkItem> = results
        .into_iter()
        .zip(given_ids)
        .enumerate()
        .map(|(index, (result, given_id))| match result {
            Ok((answer, _)) => BulkItem {
                index,
                outcome: "accepted".into(),
                order_id: Some(answer.order_id),
                accepted: Some(answer),
                problem: None,
            },
            Err(error) => {
                if let ApiError::KafkaUnavailable { retry_after } = &error {
                    retryable = Some(*retry_after);
                }
                BulkItem {
                    index,
                    outcome: "rejected".into(),
                    order_id: given_id,
                    accepted: None,
                    problem: Some(error.problem()),
                }
            }
        })
        .collect();
    let accepted = results.iter().filter(|r| r.accepted.is_some()).count();
    let body = BulkResponse { accepted, rejected: results.len() - accepted, results };
    let status = match (accepted, retryable) {
        (n, _) if n == body.results.len() => StatusCode::ACCEPTED,
        (0, Some(_)) => StatusCode::SERVICE_UNAVAILABLE,
        (0, None) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::MULTI_STATUS,
    };
    let mut response = (status, Json(body)).into_response();
    if let (StatusCode::SERVICE_UNAVAILABLE, Some(after)) = (status, retryable) {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
    }
    Ok(response)
}
