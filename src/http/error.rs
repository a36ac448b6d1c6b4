//! The HTTP boundary's error type. Every failure a client can see is an [`ApiError`], sent as
//! RFC 9457 `application/problem+json` with a stable machine `code` and the request id.
//! Internal causes are logged here and never put in a response.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

pub use crate::input::{FieldError, field_errors};

use crate::http::auth::limit::Refusal;

tokio::task_local! {
    /// The id of the request being handled, so that errors can name it.
    pub static REQUEST_ID: String;
    /// Whether the request being handled only reads (GET, HEAD): a failure's advice on a
    /// retry depends on it.
    pub static READS_ONLY: bool;
}

/// The OpenAPI schema of `Problem.code`: every code the service uses.
fn problem_code_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(PROBLEM_CODES.iter().copied()))
        .description(Some("Stable machine-readable code"))
        .examples([serde_json::json!("validation_failed")])
        .build()
}

/// The RFC 9457 body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`urn:orderflow:problem:<code>`).
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary, the same for every occurrence of the code.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong this time, in words safe to show.
    pub detail: String,
    /// Stable machine-readable code.
    #[schema(schema_with = problem_code_schema)]
    pub code: String,
    /// The request's id, as in the `x-request-id` response header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Per-field validation errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Schema registry routes: Confluent's error code (40401, 409, 42201, …), which
    /// registry clients read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// Schema registry routes: the message, as Confluent's clients show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Everything the API answers with other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The body is JSON but not of the expected shape (unknown field, wrong type).
    #[error("invalid body: {0}")]
    InvalidBody(String),
    /// `Content-Type` is not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The body is over `http.max_body_bytes`.
    #[error("payload too large")]
    PayloadTooLarge,
    /// Fields failed validation.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// A query string parameter is invalid.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// An idempotency key was reused with a different body; the detail says which and what
    /// to do.
    #[error("{0}")]
    IdempotencyConflict(&'static str),
    /// A bulk request carries more orders than allowed.
    #[error("bulk request of {count} orders is over the limit of {max}")]
    BulkTooLarge {
        /// Orders in the request.
        count: usize,
        /// `orders.max_bulk`.
        max: usize,
    },
    /// The record is larger than Kafka accepts.
    #[error("record too large for Kafka")]
    RecordTooLarge,
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No cluster of the registry has this id.
    #[error("no cluster {0:?} is registered")]
    ClusterNotFound(String),
    /// A Kafka topic, partition or group does not exist.
    #[error("{0} not found")]
    KafkaNotFound(String),
    /// Kafka refuses the request as invalid (partitions, replication, configs, name).
    #[error("{0}")]
    KafkaInvalid(String),
    /// The cluster does not implement the operation.
    #[error("{0}")]
    KafkaUnsupported(String),
    /// The request conflicts with the resource's state.
    #[error("{detail}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Safe description.
        detail: String,
    },
    /// Kafka cannot take the request now; the client should retry after the given time.
    #[error("kafka unavailable")]
    KafkaUnavailable {
        /// Sent as `Retry-After`.
        retry_after: Duration,
        /// Whether a write may have happened anyway: Kafka did not acknowledge it in time,
        /// which does not mean the broker did not store it.
        outcome_unknown: bool,
        /// Whether the request placed orders, whose retries are safe by their keys.
        orders: bool,
    },
    /// The request's body did not arrive within `http.body_read_timeout_ms`.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// Too many requests in flight; shed at once.
    #[error("overloaded")]
    Overloaded {
        /// Sent as `Retry-After`.
        retry_after: Duration,
    },
    /// No API key, an unknown one, or a malformed `Authorization` header.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The key's admin scopes do not reach this cluster.
    #[error("this API key's admin scopes do not reach the cluster {0:?}")]
    ClusterForbidden(String),
    /// The key's admin scopes are limited to some clusters, and the operation needs a key
    /// that reaches every cluster (what it would do is named here).
    #[error(
        "this API key is limited to some clusters and cannot {0}; that needs a key whose admin scopes reach every cluster"
    )]
    KeyRestricted(&'static str),
    /// The key lacks the scope the operation needs (named here).
    #[error("this API key lacks the scope \"{0}\" that this operation needs")]
    Forbidden(&'static str),
    /// The caller's token bucket cannot pay for the request now (or ever, for a bulk larger
    /// than its burst).
    #[error("{}", rate_limit_detail(.0))]
    RateLimited(Refusal),
    /// A schema registry answer: the problem, with Confluent's error code and message.
    #[error("{message}")]
    SchemaRegistry {
        /// The HTTP status.
        status: StatusCode,
        /// Stable code.
        code: &'static str,
        /// Confluent's error code.
        error_code: i64,
        /// What went wrong, in words safe to show.
        message: String,
        /// Sent as `Retry-After` (with 503).
        retry_after: Option<Duration>,
    },
    /// A bug or an unexpected failure; the cause is logged, not returned.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Every problem `code` this service answers with, for documentation and tests. Clients
/// may rely on these; a new one is an API change.
pub const PROBLEM_CODES: &[&str] = &[
    "malformed_json",
    "invalid_body",
    "unsupported_media_type",
    "payload_too_large",
    "validation_failed",
    "invalid_query",
    "invalid_request",
    "method_not_allowed",
    "idempotency_conflict",
    "bulk_too_large",
    "record_too_large",
    "not_found",
    "cluster_not_found",
    "order_final",
    "already_exists",
    "conflict",
    "topic_protected",
    "local_broker_not_configured",
    "local_broker_state",
    "kafka_invalid_request",
    "kafka_unsupported",
    "kafka_unavailable",
    "overloaded",
    "request_timeout",
    "unauthenticated",
    "forbidden",
    "rate_limited",
    "invalid_schema",
    "incompatible_schema",
    "schema_registry_external",
    "schema_registry_unavailable",
    "internal",
];

/// The problem code of an answer, in its extensions, for the audit trail.
#[derive(Debug, Clone)]
pub struct ProblemCode(pub String);

fn rate_limit_detail(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Wait { .. } => "rate limit reached; nothing was done. Retry after the \
                                 Retry-After delay"
            .to_string(),
        Refusal::OverBurst { cost, burst } => format!(
            "this request costs {cost} tokens (one per order) and this caller's bucket holds \
             at most {burst}; nothing was done. Send at most {burst} orders per request"
        ),
    }
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::InvalidQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidBody(_)
            | ApiError::Validation(_)
            | ApiError::IdempotencyConflict(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge
            | ApiError::BulkTooLarge { .. }
            | ApiError::RecordTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) | ApiError::KafkaNotFound(_) | ApiError::ClusterNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::KafkaInvalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::KafkaUnsupported(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::KafkaUnavailable { .. } | ApiError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::ClusterForbidden(_) | ApiError::KeyRestricted(_) => {
                StatusCode::FORBIDDEN
            }
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::SchemaRegistry { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine code and its title.
    pub fn code_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::MalformedJson(_) => ("malformed_json", "Malformed JSON"),
            ApiError::InvalidBody(_) => ("invalid_body", "Body does not match the schema"),
            ApiError::UnsupportedMediaType => (
                "unsupported_media_type",
                "Content-Type must be application/json",
            ),
            ApiError::PayloadTooLarge => ("payload_too_large", "Request body too large"),
            ApiError::Validation(_) => ("validation_failed", "Validation failed"),
            ApiError::InvalidQuery(_) => ("invalid_query", "Invalid query parameter"),
            ApiError::IdempotencyConflict(_) => (
                "idempotency_conflict",
                "Idempotency key or order id reused with another request",
            ),
            ApiError::BulkTooLarge { .. } => ("bulk_too_large", "Too many orders in one request"),
            ApiError::RecordTooLarge => ("record_too_large", "Record too large for Kafka"),
            ApiError::NotFound(_) | ApiError::KafkaNotFound(_) => ("not_found", "Not found"),
            ApiError::ClusterNotFound(_) => ("cluster_not_found", "No such cluster"),
            ApiError::KafkaInvalid(_) => (
                "kafka_invalid_request",
                "Kafka refused the request as invalid",
            ),
            ApiError::KafkaUnsupported(_) => (
                "kafka_unsupported",
                "The cluster does not support this operation",
            ),
            ApiError::Conflict { code, .. } => (code, "Conflict with the current state"),
            ApiError::KafkaUnavailable { .. } => ("kafka_unavailable", "Kafka is unavailable"),
            ApiError::Overloaded { .. } => ("overloaded", "Service overloaded"),
            ApiError::RequestTimeout => ("request_timeout", "Request body too slow"),
            ApiError::Unauthenticated(_) => ("unauthenticated", "API key missing or unknown"),
            ApiError::Forbidden(_) | ApiError::ClusterForbidden(_) | ApiError::KeyRestricted(_) => {
                ("forbidden", "API key lacks the scope")
            }
            ApiError::RateLimited(_) => ("rate_limited", "Rate limit reached"),
            ApiError::SchemaRegistry { code, .. } => (code, "Schema registry"),
            ApiError::Internal(_) => ("internal", "Internal error"),
        }
    }

    /// The problem body for this error, without sending it (bulk answers embed it).
    pub fn problem(&self) -> Problem {
        let (code, title) = self.code_and_title();
        let detail = match self {
            ApiError::Validation(_) => "one or more fields are invalid; see errors".to_string(),
            ApiError::KafkaUnavailable {
                outcome_unknown: true,
                orders: true,
                ..
            } => "Kafka did not answer in time, so the outcome of a write is unknown: it may \
                  have been stored. Retry after the Retry-After delay; resend an order with the \
                  same order_id or Idempotency-Key, and the retry never makes a second order"
                .to_string(),
            ApiError::KafkaUnavailable {
                outcome_unknown: true,
                ..
            } if READS_ONLY.try_with(|r| *r).unwrap_or(false) => "Kafka did not answer in time; \
                  this request only reads, so nothing changed. Retry after the Retry-After delay"
                .to_string(),
            ApiError::KafkaUnavailable {
                outcome_unknown: true,
                ..
            } => "Kafka did not answer in time, so whether this change took effect is unknown. \
                  Look at the resource before you repeat it, after the Retry-After delay"
                .to_string(),
            ApiError::KafkaUnavailable {
                outcome_unknown: false,
                ..
            } => "Kafka cannot take the request now and nothing was written; retry after the \
                  Retry-After delay"
                .to_string(),
            ApiError::Internal(_) => "an internal error occurred; quote the request_id".to_string(),
            other => other.to_string(),
        };
        let errors = match self {
            ApiError::Validation(errors) => errors.clone(),
            _ => Vec::new(),
        };
        let (error_code, message) = match self {
            ApiError::SchemaRegistry {
                error_code,
                message,
                ..
            } => (Some(*error_code), Some(message.clone())),
            _ => (None, None),
        };
        Problem {
            type_uri: format!("urn:orderflow:problem:{code}"),
            title: title.to_string(),
            status: self.status_code().as_u16(),
            detail,
            code: code.to_string(),
            request_id: REQUEST_ID.try_with(Clone::clone).ok(),
            errors,
            error_code,
            message,
        }
    }

    /// Kafka did not answer a management write in time: it may still take effect, so the
    /// outcome is unknown. The cause is logged here under `what`, never returned.
    pub fn write_outcome_unknown(what: &'static str, cause: &str) -> Self {
        tracing::warn!(cause, "{what}: kafka unavailable");
        ApiError::KafkaUnavailable {
            retry_after: Duration::from_secs(1),
            outcome_unknown: true,
            orders: false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::KafkaUnavailable { retry_after, .. }
            | ApiError::Overloaded { retry_after } => Some(*retry_after),
            ApiError::RateLimited(refusal) => refusal.retry_after(),
            ApiError::SchemaRegistry { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            // `{:#}` is the cause chain on one line; `{:?}` would add a backtrace.
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error")
            }
            ApiError::KafkaUnavailable { .. } => tracing::warn!("answered 503: kafka unavailable"),
            _ => tracing::debug!(error = %self, "request refused"),
        }
        let mut response = problem_response(self.problem(), self.retry_after());
        match &self {
            ApiError::Unauthenticated(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"orderflow\""),
                );
            }
            ApiError::RateLimited(refusal) => refusal.write_headers(response.headers_mut()),
            _ => {}
        }
        response
    }
}

/// Sends a problem body with its status, content type and optional `Retry-After`.
pub fn problem_response(problem: Problem, retry_after: Option<Duration>) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.extensions_mut().insert(ProblemCode(problem.code));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::REQUEST_TIMEOUT {
        // The rest of the body may still come; the connection cannot carry another request.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(after) = retry_after {
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(after.as_secs().max(1)),
        );
    }
    response
}
