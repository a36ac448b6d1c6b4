//! Request extractors whose rejections are [`ApiError`]s, so that a malformed body, a wrong
//! content type, an oversized or a late body is answered as problem+json like every other
//! error, in words that name the expected shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use std::time::Duration;

use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;
use crate::input::{ObjectOnly, plain_words};
pub use crate::input::{object_from_str, objects, optional_whole_number, whole_number};

/// `axum::Json` with problem+json rejections. The body must be a JSON object unless
/// `ARRAY` is set (serde would otherwise take a struct from an array of its field values).
pub struct JsonBody<T, const ARRAY: bool = false>(pub T);

impl<S, T, const ARRAY: bool> FromRequest<S> for JsonBody<T, ARRAY>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if ARRAY {
            read_json::<S, T>(req, state).await.map(JsonBody)
        } else {
            read_json::<S, ObjectOnly<T>>(req, state)
                .await
                .map(|o| JsonBody(o.0))
        }
    }
}

/// The body as `T`, in one pass, within the body deadline.
async fn read_json<S, T>(req: Request, state: &S) -> Result<T, ApiError>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    let deadline = req.extensions().get::<BodyReadTimeout>().map(|t| t.0);
    let read = axum::Json::<T>::from_request(req, state);
    let result = match deadline {
        Some(limit) => tokio::time::timeout(limit, read)
            .await
            .map_err(|_| ApiError::RequestTimeout)?,
        None => read.await,
    };
    result
        .map(|axum::Json(value)| value)
        .map_err(rejection_to_error)
}

/// How long a request may take to send its body (`http.body_read_timeout_ms`), set on
/// every request by the router; [`JsonBody`] answers 408 when the body is late.
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub Duration);

fn rejection_to_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        JsonRejection::JsonSyntaxError(e) => ApiError::MalformedJson(plain_words(&e.body_text())),
        JsonRejection::JsonDataError(e) => ApiError::InvalidBody(plain_words(&e.body_text())),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        other => ApiError::MalformedJson(plain_words(&other.body_text())),
    }
}

/// `axum::extract::Query` with problem+json rejections.
pub struct QueryParams<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|rejection| ApiError::InvalidQuery(rejection.body_text()))
    }
}

/// The value of the path parameter `name` of the matched route, if it has one (for the
/// guards and extractors that need one parameter before the handler's own extractors run).
pub async fn path_param(parts: &mut axum::http::request::Parts, name: &str) -> Option<String> {
    use axum::extract::{FromRequestParts, RawPathParams};
    RawPathParams::from_request_parts(parts, &())
        .await
        .ok()?
        .iter()
        .find(|(param, _)| *param == name)
        .map(|(_, value)| value.to_string())
}
