//! Request extractors whose rejections are [`ApiError`]s, so that a malformed body, a wrong
//! content type, an oversized or a late body is answered as problem+json like every other
//! error, in words that name the expected shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use std::time::Duration;

use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;

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

/// `T` read only from a JSON object: serde's derived structs also accept an array of their
/// field values, which no body of this API is.
struct ObjectOnly<T>(T);

/// `T` read from JSON text that must be an object (see [`ObjectOnly`]); errors in the JSON
/// words of [`plain_words`].
pub fn object_from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str::<ObjectOnly<T>>(text)
        .map(|o| o.0)
        .map_err(|e| plain_words(&e.to_string()))
}

/// Deserializes a list whose items must each be a JSON object (see [`ObjectOnly`]).
pub fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    use serde::Deserialize;
    let items = Vec::<ObjectOnly<T>>::deserialize(deserializer)?;
    Ok(items.into_iter().map(|o| o.0).collect())
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Object<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(Object(std::marker::PhantomData))
            .map(ObjectOnly)
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

/// Deserializes an integer field that may be written with a zero fraction (`12.0`): JSON
/// Schema, and so the OpenAPI document, counts such numbers as integers.
pub fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::Deserialize;
    let number = serde_json::Number::deserialize(deserializer)?;
    whole(&number)
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number in range")))
}

/// [`whole_number`] for an optional field.
pub fn optional_whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::Deserialize;
    match Option::<serde_json::Number>::deserialize(deserializer)? {
        None => Ok(None),
        Some(number) => whole(&number).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!("{number} is not a whole number in range"))
        }),
    }
}

fn whole<T: TryFrom<i64>>(number: &serde_json::Number) -> Option<T> {
    let value = match number.as_i64() {
        Some(i) => i,
        None => {
            let f = number.as_f64()?;
            // i64::MAX as f64 rounds up to 2^63, which is out of range.
            if f.fract() != 0.0 || f < i64::MIN as f64 || f >= i64::MAX as f64 {
                return None;
            }
            f as i64
        }
    };
    T::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::plain_words;

    #[test]
    fn object_bodies_refuse_an_array_of_field_values() {
        #[derive(serde::Deserialize)]
        struct Two {
            a: u32,
            b: Option<String>,
        }
        let parse = |json: &str| serde_json::from_str::<super::ObjectOnly<Two>>(json);
        let two = parse(r#"{"a": 1, "b": "x"}"#).unwrap().0;
        assert_eq!((two.a, two.b.as_deref()), (1, Some("x")));
        assert!(
            serde_json::from_str::<Two>("[1, null]").is_ok(),
            "serde's own leniency"
        );
        let error = parse("[1, null]").err().unwrap().to_string();
        assert!(error.contains("expected a JSON object"), "{error}");
    }

    #[test]
    fn whole_numbers_may_have_a_zero_fraction() {
        #[derive(serde::Deserialize)]
        struct N {
            #[serde(deserialize_with = "super::whole_number")]
            n: u32,
        }
        let parse = |json: &str| serde_json::from_str::<N>(json).map(|v| v.n);
        assert_eq!(parse(r#"{"n": 12}"#).unwrap(), 12);
        assert_eq!(parse(r#"{"n": 12.0}"#).unwrap(), 12);
        assert!(parse(r#"{"n": 12.5}"#).is_err());
        assert!(parse(r#"{"n": -1}"#).is_err());
        assert!(parse(r#"{"n": 1e30}"#).is_err());
        assert!(parse(r#"{"n": "12"}"#).is_err());
    }

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
