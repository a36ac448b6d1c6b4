//! `/schema-registry/…`: Confluent's schema registry REST API over the built-in registry,
//! so `SchemaRegistryClient({"url": "http://host:8080/schema-registry"})`, Kafbat UI and
//! Kafka Connect work against it unchanged. Answers are
//! `application/vnd.schemaregistry.v1+json`; errors are problem+json carrying Confluent's
//! `error_code` and `message`, which registry clients read. Reads need `admin:read`,
//! changes `admin:write` (and are audited); registry clients send the API key as the
//! Basic-auth password.

mod config;
mod ids;
mod subjects;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;

use super::registry::RegistryError;
use super::store::SchemaStore;
use super::{Reference, SchemaText, SchemaType};
use crate::http::error::ApiError;

/// The media type of the registry API's answers.
pub const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Where the API is served.
pub const PREFIX: &str = "/schema-registry";

/// What the registry routes use.
#[derive(Clone)]
pub struct SchemasState(Arc<SchemasParts>);

/// What [`SchemasState`] shares.
pub struct SchemasParts {
    /// The built-in registry; `None` when an external one is configured.
    pub store: Option<Arc<SchemaStore>>,
    /// The external registry's URL, when one is configured.
    pub external: Option<String>,
    /// `Retry-After` of 503 answers.
    pub retry_after: Duration,
}

impl SchemasState {
    /// Shares `parts` with the registry handlers.
    pub fn new(parts: SchemasParts) -> Self {
        SchemasState(Arc::new(parts))
    }

    pub(super) fn store(&self) -> Result<&SchemaStore, ApiError> {
        match (&self.0.store, &self.0.external) {
            (Some(store), _) => Ok(store),
            (None, url) => Err(ApiError::SchemaRegistry {
                status: StatusCode::NOT_FOUND,
                code: "schema_registry_external",
                error_code: 40401,
                message: format!(
                    "this service uses the schema registry at {}; ask it there",
                    url.as_deref().unwrap_or("(none)")
                ),
                retry_after: None,
            }),
        }
    }

    pub(super) fn error(&self, error: RegistryError) -> ApiError {
        let (status, code, retry) = match &error {
            RegistryError::SubjectNotFound(_)
            | RegistryError::VersionNotFound(_)
            | RegistryError::SchemaNotFound
            | RegistryError::SubjectSoftDeleted(_)
            | RegistryError::SubjectNotSoftDeleted(_)
            | RegistryError::VersionSoftDeleted(_)
            | RegistryError::VersionNotSoftDeleted(_)
            | RegistryError::SubjectConfigNotFound(_) => {
                (StatusCode::NOT_FOUND, "not_found", false)
            }
            RegistryError::InvalidSchema(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_schema", false)
            }
            RegistryError::InvalidVersion
            | RegistryError::InvalidCompatibility
            | RegistryError::InvalidSubject => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", false)
            }
            RegistryError::Incompatible(_) => (StatusCode::CONFLICT, "incompatible_schema", false),
            RegistryError::Store(cause) => {
                tracing::warn!(cause, "schema registry change not stored");
                (StatusCode::SERVICE_UNAVAILABLE, "kafka_unavailable", true)
            }
            RegistryError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "kafka_unavailable", true),
            RegistryError::Unreachable(_) | RegistryError::Refused { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "schema_registry_unavailable",
                true,
            ),
        };
        let message = match &error {
            RegistryError::Incompatible(problems) => {
                format!("{error}; {}", problems.join("; "))
            }
            RegistryError::Timeout => "Operation timed out: the change was written and may yet \
                                       take effect; look before you repeat it"
                .to_string(),
            other => other.to_string(),
        };
        ApiError::SchemaRegistry {
            status,
            code,
            error_code: error.error_code(),
            message,
            retry_after: retry.then_some(self.0.retry_after),
        }
    }
}

/// The registry's routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    SchemasState: FromRef<S>,
{
    OpenApiRouter::new()
        .merge(subjects::router())
        .merge(ids::router())
        .merge(config::router())
}

/// A registry answer.
pub(super) fn answer<T: Serialize>(body: &T) -> Response {
    (
        [(header::CONTENT_TYPE, MEDIA_TYPE)],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response()
}

/// A schema to register, look up or test.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewSchema {
    /// The schema, as text (an Avro or JSON Schema document is JSON in a string).
    #[schema(
        example = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}"#
    )]
    pub schema: String,
    /// `AVRO` (the default), `JSON` or `PROTOBUF`.
    #[serde(rename = "schemaType", default)]
    pub schema_type: Option<SchemaType>,
    /// Schemas it refers to (Avro named types from other subjects).
    #[serde(default)]
    pub references: Option<Vec<Reference>>,
}

impl NewSchema {
    fn text(self) -> SchemaText {
        SchemaText {
            schema: self.schema,
            schema_type: self.schema_type.unwrap_or_default(),
            references: self.references.unwrap_or_default(),
        }
    }
}

/// A subject in the path.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SubjectPath {
    /// The subject (`<topic>-value` by the topic-name strategy): 1 to 255 characters, no
    /// control characters.
    #[param(max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$")]
    pub subject: String,
}

/// A subject's version in the path.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VersionPath {
    /// The subject: 1 to 255 characters, no control characters.
    #[param(max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$")]
    pub subject: String,
    /// A version number (1 or more) or `latest` (`-1` is the same).
    #[param(pattern = r"^(latest|-1|[1-9][0-9]{0,8})$")]
    pub version: String,
}

/// `?deleted=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Include soft-deleted subjects or versions.
    #[serde(default, deserialize_with = "crate::input::flag")]
    #[param(value_type = bool)]
    pub deleted: bool,
    /// Only subjects starting with this (listing subjects).
    #[serde(default, rename = "subjectPrefix")]
    #[param(rename = "subjectPrefix")]
    pub subject_prefix: Option<String>,
}

/// `?permanent=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Delete for good (only what was soft-deleted before).
    #[serde(default, deserialize_with = "crate::input::flag")]
    #[param(value_type = bool)]
    pub permanent: bool,
}

/// `?verbose=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerboseQuery {
    /// Say why not.
    #[serde(default, deserialize_with = "crate::input::flag")]
    #[param(value_type = bool)]
    pub verbose: bool,
}

/// `?defaultToGlobal=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfigQuery {
    /// Answer the registry's level when the subject has none of its own.
    #[serde(
        default,
        rename = "defaultToGlobal",
        deserialize_with = "crate::input::flag"
    )]
    #[param(rename = "defaultToGlobal")]
    pub default_to_global: bool,
}

/// Refuses a subject name the registry never holds (`400`, as a path that cannot be
/// decoded), before anything else.
pub(super) fn checked(state: &SchemasState, subject: &str) -> Result<(), ApiError> {
    super::store::valid_subject(subject).map_err(|error| match state.error(error) {
        ApiError::SchemaRegistry {
            error_code,
            message,
            ..
        } => ApiError::SchemaRegistry {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            error_code,
            message,
            retry_after: None,
        },
        other => other,
    })
}

pub(super) fn schema_id(text: &str) -> Result<u32, RegistryError> {
    text.parse::<u32>()
        .map_err(|_| RegistryError::SchemaNotFound)
}

/// A schema's text as the answer itself: JSON documents as JSON, Protobuf as a string.
pub(super) fn raw_schema(text: &SchemaText) -> Response {
    match serde_json::from_str::<serde_json::Value>(&text.schema) {
        Ok(document) => answer(&document),
        Err(_) => answer(&text.schema),
    }
}
