//! HTTP handlers for orders. Handlers only see validated input; every refusal is an
//! [`ApiError`].

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::OrdersState;
use super::error::{OrderError, Reused};
use super::intake::{Accepted, RequestContext};
use super::model::OrderRequest;
use super::status::OrderStatus;
use super::store::ListQuery;
pub use super::views::{CancelAccepted, GetQuery, ListParams, OrderPage, OrderView};
use crate::http::auth::{Principal, Scope, scoped};
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::{JsonBody, QueryParams};
use axum::extract::FromRef;

/// The order routes, each with its OpenAPI description.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    OrdersState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(scoped(Scope::OrdersWrite, routes!(create_order)))
        .routes(scoped(Scope::OrdersRead, routes!(list_orders)))
        .routes(scoped(Scope::OrdersWrite, routes!(create_orders_bulk)))
        .routes(scoped(Scope::OrdersRead, routes!(get_order)))
        .routes(scoped(
            Scope::OrdersRead,
            routes!(super::live::order_events),
        ))
        .routes(scoped(Scope::OrdersRead, routes!(super::live::order_feed)))
        .routes(scoped(
            Scope::OrdersRead,
            routes!(super::socket::order_socket),
        ))
        .routes(scoped(Scope::OrdersWrite, routes!(cancel_order)))
}

pub(crate) fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound("order"))
}

pub(crate) fn parse_status(text: &str) -> Result<OrderStatus, ApiError> {
    OrderStatus::parse(text).ok_or_else(|| {
        ApiError::InvalidQuery(format!(
            "unknown status {text:?}; use PENDING, PROCESSING, COMPLETED, FAILED or CANCELLED"
        ))
    })
}

fn parse_wait(text: &str) -> Result<Duration, ApiError> {
    let bad = || ApiError::InvalidQuery(format!("timeout {text:?} is not like 5s or 500ms"));
    let (number, unit) = match text.strip_suffix("ms") {
        Some(n) => (n, 1),
        None => (text.strip_suffix('s').unwrap_or(text), 1000),
    };
    if number.is_empty() || number.len() > 9 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let value: u64 = number.parse().map_err(|_| bad())?;
    Ok(Duration::from_millis(value.saturating_mul(unit)))
}

/// Look up an order.
///
/// The current status, the order and its history, from this instance's status view (every
/// instance has every order). With `wait_for`, waits until the order has that status or a
/// final one, up to `timeout`.
#[utoipa::path(
    get, path = "/api/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path, description = "The order id"), GetQuery),
    responses(
        (status = 200, description = "The order", body = OrderView, example = json!(crate::orders::examples::order_view())),
        (status = 400, description = "Bad query (`invalid_query`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order (`not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_order(
    State(state): State<OrdersState>,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<GetQuery>,
) -> Result<Json<OrderView>, ApiError> {
    let id = parse_id(&id)?;
    let max = state.max_wait;
    let wait = query
        .timeout
        .as_deref()
        .map(parse_wait)
        .transpose()?
        .unwrap_or(max)
        .min(max);
    let snapshot = match &query.wait_for {
        Some(status) => {
            let status = parse_status(status)?;
            state.store.wait_for(&id, status, wait).await
        }
        None => state.store.get(&id),
    };
    snapshot
        .map(|s| Json(s.into()))
        .ok_or(ApiError::NotFound("order"))
}

/// List orders.
///
/// A page of the orders in the status view, newest first, optionally filtered by status or
/// customer; follow `next_cursor` for the next page.
#[utoipa::path(
    get, path = "/api/orders", tag = "orders",
    params(ListParams),
    responses(
        (status = 200, description = "A page of orders", body = OrderPage),
        (status = 400, description = "Bad query (`invalid_query`)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_orders(
    State(state): State<OrdersState>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<OrderPage>, ApiError> {
    let limit = params.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::InvalidQuery("limit must be 1 to 100".into()));
    }
    if params
        .customer_id
        .as_deref()
        .is_some_and(|c| c.is_empty() || c.chars().count() > 64)
    {
        return Err(ApiError::InvalidQuery(
            "customer_id must be 1 to 64 characters".into(),
        ));
    }
    let cursor = params.cursor.as_deref().map(decode_cursor).transpose()?;
    let from = params
        .from
        .as_deref()
        .map(|t| parse_time("from", t))
        .transpose()?;
    let to = params
        .to
        .as_deref()
        .map(|t| parse_time("to", t))
        .transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(ApiError::InvalidQuery("from must be before to".into()));
    }
    let query = ListQuery {
        status: params.status.as_deref().map(parse_status).transpose()?,
        customer_id: params.customer_id,
        from,
        to,
        limit,
        cursor,
    };
    let store = state.store.clone();
    let (page, next) = tokio::task::spawn_blocking(move || store.list(&query))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::Internal)?;
    Ok(Json(OrderPage {
        orders: page.into_iter().map(OrderView::from).collect(),
        next_cursor: next
            .map(|(at, id)| format!("{}_{id}", at.timestamp_nanos_opt().unwrap_or_default())),
    }))
}

fn parse_time(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::InvalidQuery(format!(
                "{name} must be an RFC 3339 time such as 2026-11-29T10:00:00Z"
            ))
        })
}

fn decode_cursor(text: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || ApiError::InvalidQuery("cursor is not one this service gave out".into());
    let (nanos, id) = text.split_once('_').ok_or_else(bad)?;
    let nanos: i64 = nanos.parse().map_err(|_| bad())?;
    Ok((
        DateTime::from_timestamp_nanos(nanos),
        id.parse().map_err(|_| bad())?,
    ))
}

/// Cancel an order.
///
/// Writes a cancel request on the order's key, so the processor sees it in order with the
/// order: an order not yet completed ends `CANCELLED`; one completed meanwhile stays so.
#[utoipa::path(
    post, path = "/api/orders/{id}/cancel", tag = "orders",
    params(("id" = Uuid, Path, description = "The order id"), crate::http::openapi::TraceHeaders),
    responses(
        (status = 202, description = "The cancel is on its way", body = CancelAccepted),
        (status = 404, description = "No such order (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is already final (`order_final`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Kafka unavailable (`kafka_unavailable`); retry after `Retry-After`", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
async fn cancel_order(
    State(state): State<OrdersState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<CancelAccepted>), ApiError> {
    let order_id = parse_id(&id)?;
    let status = state
        .orders
        .request_cancel(order_id, &request_context(&headers))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CancelAccepted {
            order_id,
            status,
            cancel_requested: true,
        }),
    ))
}

/// A bulk submission: `{"orders": [...]}`, or the bare array of orders. Each order is kept
/// as its own JSON text and read once, by [`Intake::submit_bulk`] (reading the body
/// into a `serde_json::Value` first cost an allocation per field of every order).
#[derive(Debug, utoipa::ToSchema)]
pub struct BulkRequest {
    /// The orders, each validated and answered on its own.
    #[schema(value_type = Vec<OrderRequest>)]
    pub orders: Vec<Box<RawValue>>,
}

/// What a bulk body must look like, in the words a refusal uses.
const BULK_SHAPE: &str = "a bulk body is a JSON array of orders, or a JSON object {\"orders\": [...]} with no other field";

impl<'de> Deserialize<'de> for BulkRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> serde::de::Visitor<'de> for Shape {
            type Value = BulkRequest;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(BULK_SHAPE)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut items: A,
            ) -> Result<BulkRequest, A::Error> {
                let mut orders = Vec::with_capacity(items.size_hint().unwrap_or(0).min(1024));
                while let Some(order) = items.next_element()? {
                    orders.push(order);
                }
                Ok(BulkRequest { orders })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut fields: A,
            ) -> Result<BulkRequest, A::Error> {
                use serde::de::Error;
                if fields.next_key::<String>()?.as_deref() != Some("orders") {
                    return Err(A::Error::custom(BULK_SHAPE));
                }
                let orders: Vec<Box<RawValue>> = fields
                    .next_value()
                    .map_err(|_| A::Error::custom(BULK_SHAPE))?;
                if fields.next_key::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::custom(BULK_SHAPE));
                }
                Ok(BulkRequest { orders })
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

/// The `order_id` a refused bulk item carried, if it had a valid one.
fn given_order_id(text: &RawValue) -> Option<Uuid> {
    #[derive(Deserialize)]
    struct GivenId {
        order_id: Option<Uuid>,
    }
    serde_json::from_str::<GivenId>(text.get())
        .ok()
        .and_then(|given| given.order_id)
}

/// The OpenAPI shape of a bulk body: either form.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum BulkBody {
    /// `{"orders": [...]}`.
    Envelope(BulkRequest),
    /// The bare array.
    Orders(Vec<OrderRequest>),
}

/// The answer to a bulk submission.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BulkResponse {
    /// How many orders were accepted.
    pub accepted: usize,
    /// How many were refused.
    pub rejected: usize,
    /// One answer per order, in request order.
    pub results: Vec<BulkItem>,
}

/// One order's answer in a bulk response.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BulkItem {
    /// Position of the order in the request.
    pub index: usize,
    /// `accepted` or `rejected`.
    #[schema(example = "accepted")]
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
        trace: crate::trace::TraceContext::current(),
        own_traces: false,
    }
}

impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::Invalid(errors) => ApiError::Validation(errors),
            OrderError::NotAnOrder(words) => ApiError::InvalidBody(words),
            OrderError::Reused(Reused::IdempotencyKey) => ApiError::IdempotencyConflict(
                "this Idempotency-Key was used before with a different request; nothing was \
                 done. Send a new key for a new order",
            ),
            OrderError::Reused(Reused::OrderId) => ApiError::IdempotencyConflict(
                "this order_id was used before with a different request; nothing was done. \
                 Leave order_id out (the service makes one) or send a new one for a new order",
            ),
            OrderError::BulkTooLarge { count, max } => ApiError::BulkTooLarge { count, max },
            OrderError::NotFound => ApiError::NotFound("order"),
            OrderError::Final(status) => ApiError::Conflict {
                code: "order_final",
                detail: format!("the order is already {status}"),
            },
            OrderError::KafkaUnavailable {
                retry_after,
                outcome_unknown,
            } => ApiError::KafkaUnavailable {
                retry_after,
                outcome_unknown,
                orders: true,
            },
            OrderError::TooLarge => ApiError::RecordTooLarge,
            OrderError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

/// One submission's answer as the client sees it, counted in `orders_accepted_total`,
/// `orders_replayed_total` or `orders_rejected_total{code}`.
fn counted(
    state: &OrdersState,
    result: Result<(Accepted, bool), OrderError>,
) -> Result<(Accepted, bool), ApiError> {
    match result {
        Ok((answer, false)) => {
            state.metrics.orders_accepted.inc();
            Ok((answer, false))
        }
        Ok((answer, true)) => {
            state.metrics.orders_replayed.inc();
            Ok((answer, true))
        }
        Err(error) => Err(refused(state, error.into())),
    }
}

/// Counts a refused submission by its code (`orders_rejected_total`), whether the body, the
/// headers, the bulk envelope or intake refused it.
fn refused(state: &OrdersState, error: ApiError) -> ApiError {
    state
        .metrics
        .orders_rejected
        .with_label_values(&[error.code_and_title().0])
        .inc();
    error
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let visible = |key: &str| key.bytes().all(|b| (b'!'..=b'~').contains(&b));
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= 255 && visible(key) => Ok(Some(key)),
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
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Place an order.
///
/// Validated, then written to Kafka (`acks=all`, idempotent producer); 202 only once Kafka
/// has acknowledged it. A repeat with the same `order_id` or `Idempotency-Key` and the same
/// body gets the first answer (with `Idempotent-Replayed: true`) and writes nothing.
#[utoipa::path(
    post, path = "/api/orders", tag = "orders",
    request_body(content = OrderRequest, example = json!(crate::orders::examples::order_request())),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; a repeat of the same request gets the first answer", pattern = r"^[!-~]{1,255}$"),
        crate::http::openapi::TraceHeaders,
    ),
    responses(
        (status = 202, description = "Accepted: durable in Kafka, processing follows", body = Accepted,
            headers(("Location" = String, description = "Where to look the order up"), ("traceparent" = String, description = "The request's W3C trace context")),
            example = json!(crate::orders::examples::accepted())),
        (status = 400, description = "Malformed JSON (`malformed_json`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over `http.max_body_bytes` (`payload_too_large`) or record over Kafka's limit (`record_too_large`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json` (`unsupported_media_type`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid order (`validation_failed`, with per-field `errors`; `invalid_body`; `idempotency_conflict`)", body = Problem, content_type = "application/problem+json",
            example = json!(crate::orders::examples::validation_problem())),
        (status = 503, description = "Kafka unavailable (`kafka_unavailable`) or overloaded (`overloaded`); retry after `Retry-After` with the same id", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
async fn create_order(
    State(state): State<OrdersState>,
    headers: HeaderMap,
    body: Result<JsonBody<OrderRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonBody(request) = body.map_err(|e| refused(&state, e))?;
    let key = idempotency_key(&headers).map_err(|e| refused(&state, e))?;
    let submitted = state
        .orders
        .submit(request, key, &request_context(&headers))
        .await;
    let (answer, replayed) = counted(&state, submitted)?;
    Ok(accepted_response(&answer, replayed))
}

/// Place many orders.
///
/// Up to `orders.max_bulk` orders, each validated and written on its own and answered in
/// `results` by its index: 202 when all were accepted, 207 when some were, 422 when none
/// were, 503 when none were because Kafka is unavailable.
#[utoipa::path(
    post, path = "/api/orders/bulk", tag = "orders",
    request_body(content = BulkBody, description = "`{\"orders\": [...]}` or the bare array of orders", example = json!({"orders": [crate::orders::examples::order_request()]})),
    params(crate::http::openapi::TraceHeaders),
    responses(
        (status = 202, description = "Every order accepted", body = BulkResponse),
        (status = 207, description = "Some accepted, some refused; see each result", body = BulkResponse, example = json!(crate::orders::examples::bulk_response())),
        (status = 400, description = "Malformed JSON (`malformed_json`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "More orders than `orders.max_bulk` (`bulk_too_large`) or body too large (`payload_too_large`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json` (`unsupported_media_type`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No order accepted (a `BulkResponse`: each result says why), or the body itself refused (a problem: `validation_failed` for an empty list, `invalid_body` for another shape)",
            content((BulkResponse = "application/json"), (Problem = "application/problem+json"))),
        (status = 503, description = "Kafka unavailable for every order (a `BulkResponse`), or overloaded (a problem); retry after `Retry-After`",
            content((BulkResponse = "application/json"), (Problem = "application/problem+json")),
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
async fn create_orders_bulk(
    State(state): State<OrdersState>,
    caller: Option<Extension<Principal>>,
    headers: HeaderMap,
    body: Result<JsonBody<BulkRequest, true>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonBody(request) = body.map_err(|e| refused(&state, e))?;
    if request.orders.is_empty() {
        return Err(refused(
            &state,
            ApiError::Validation(vec![FieldError::new("orders", "must not be empty")]),
        ));
    }
    // The request paid one token at the guard; the rest of its orders pay here, before
    // anything is written (a bulk over `orders.max_bulk` is refused as such below).
    let allowance = match &caller {
        Some(Extension(caller)) if request.orders.len() <= state.orders.max_bulk => state
            .access
            .charge_orders(caller, request.orders.len())
            .map_err(|e| refused(&state, e))?,
        _ => None,
    };
    let results = state
        .orders
        .submit_bulk(&request.orders, &request_context(&headers))
        .await
        .map_err(|e| refused(&state, e.into()))?;
    let mut retryable = None;
    let results: Vec<BulkItem> = results
        .into_iter()
        .zip(&request.orders)
        .enumerate()
        .map(|(index, (result, text))| match counted(&state, result) {
            Ok((answer, _)) => BulkItem {
                index,
                outcome: "accepted".into(),
                order_id: Some(answer.order_id),
                accepted: Some(answer),
                problem: None,
            },
            Err(error) => {
                if let ApiError::KafkaUnavailable { retry_after, .. } = &error {
                    retryable = Some(*retry_after);
                }
                BulkItem {
                    index,
                    outcome: "rejected".into(),
                    order_id: given_order_id(text),
                    accepted: None,
                    problem: Some(error.problem()),
                }
            }
        })
        .collect();
    let accepted = results.iter().filter(|r| r.accepted.is_some()).count();
    let body = BulkResponse {
        accepted,
        rejected: results.len() - accepted,
        results,
    };
    let status = match (accepted, retryable) {
        (n, _) if n == body.results.len() => StatusCode::ACCEPTED,
        (0, Some(_)) => StatusCode::SERVICE_UNAVAILABLE,
        (0, None) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::MULTI_STATUS,
    };
    let mut response = (status, Json(body)).into_response();
    if let Some(allowance) = allowance {
        allowance.write_headers(response.headers_mut());
    }
    if let (StatusCode::SERVICE_UNAVAILABLE, Some(after)) = (status, retryable) {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(after.as_secs().max(1)),
        );
    }
    Ok(response)
}
