//! Request extractors whose rejections are [`ApiError`]s, so that a malformed body, a wrong
//! content type, an oversized or a late body is answered as problem+json like every other
//! error, in words that name the expected shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use std::time::Duration;

use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::Json` with problem+json rejections.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let deadline = req.extensions().get::<BodyReadTimeout>().map(|t| t.0);
        let read = axum::Json::<T>::from_request(req, state);
        let result = match deadline {
            Some(limit) => tokio::time::timeout(limit, read)
                .await
                .map_err(|_| ApiError::RequestTimeout)?,
            None => read.await,
        };
        match result {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(rejection_to_error(rejection)),
        }
    }
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

/// serde's words for JSON shapes, in JSON's own: "sequence" is an array, "map" an object.
fn plain_words(text: &str) -> String {
    text.replace(
        "Failed to deserialize the JSON body into the target type: ",
        "the body does not have the expected shape: ",
    )
    .replace(
        "Failed to parse the request body as JSON: ",
        "the body is not valid JSON: ",
    )
    .replace("a sequence", "a JSON array")
    .replace("sequence", "JSON array")
    .replace("a map", "a JSON object")
    .replace("invalid type: map", "invalid type: JSON object")
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

#[cfg(test)]
mod tests {
    use super::plain_words;

    #[test]
    fn serde_shape_words_become_json_words() {
        let text = plain_words(
            "Failed to deserialize the JSON body into the target type: invalid type: map, \
             expected a sequence at line 1 column 1",
        );
        assert_eq!(
            text,
            "the body does not have the expected shape: invalid type: JSON object, expected a \
             JSON array at line 1 column 1"
        );
    }
}
