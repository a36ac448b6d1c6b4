//! `/schema-registry/…`: Confluent's schema registry REST API over the built-in registry,
//! so `SchemaRegistryClient({"url": "http://host:8080/schema-registry"})`, Kafbat UI and
//! Kafka Connect work against it unchanged. Answers are
//! `application/vnd.schemaregistry.v1+json`; errors are problem+json carrying Confluent's
//! `error_code` and `message`, which registry clients read. Reads need `admin:read`,
//! changes `admin:write` (and are audited); registry clients send the API key as the
//! Basic-auth password.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{FromRef, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::registry::{RegistryError, Version, VersionRef};
use super::store::SchemaStore;
use super::{Compatibility, Reference, SchemaText, SchemaType};
use crate::http::audit::AuditDetails;
use crate::http::auth::{Scope, scoped};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{JsonBody, QueryParams};

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

    fn store(&self) -> Result<&SchemaStore, ApiError> {
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

    fn error(&self, error: RegistryError) -> ApiError {
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
    let read = Scope::AdminRead;
    let write = Scope::AdminWrite;
    OpenApiRouter::new()
        .routes(scoped(read, routes!(list_subjects)))
        .routes(scoped(read, routes!(list_versions)))
        .routes(scoped(write, routes!(register)))
        .routes(scoped(read, routes!(get_version)))
        .routes(scoped(read, routes!(get_version_schema)))
        .routes(scoped(write, routes!(delete_version)))
        .routes(scoped(read, routes!(lookup)))
        .routes(scoped(write, routes!(delete_subject)))
        .routes(scoped(read, routes!(schema_by_id)))
        .routes(scoped(read, routes!(schema_text_by_id)))
        .routes(scoped(read, routes!(id_versions)))
        .routes(scoped(read, routes!(id_subjects)))
        .routes(scoped(read, routes!(schema_types)))
        .routes(scoped(read, routes!(test_against_version)))
        .routes(scoped(read, routes!(test_against_all)))
        .routes(scoped(read, routes!(get_config)))
        .routes(scoped(write, routes!(set_config)))
        .routes(scoped(read, routes!(get_subject_config)))
        .routes(scoped(write, routes!(set_subject_config)))
        .routes(scoped(write, routes!(delete_subject_config)))
        .routes(scoped(read, routes!(get_mode)))
        .routes(scoped(read, routes!(get_subject_mode)))
}

/// A registry answer.
fn answer<T: Serialize>(body: &T) -> Response {
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

/// A registered schema's id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegisteredId {
    /// The id (the same for the same schema under every subject).
    pub id: u32,
}

/// A subject's version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The schema's id.
    pub id: u32,
    /// The version.
    pub version: i32,
    /// The schema's type; absent for Avro.
    #[serde(rename = "schemaType", skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<SchemaType>,
    /// Schemas it refers to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// The schema.
    pub schema: String,
}

impl From<Version> for SubjectVersion {
    fn from(v: Version) -> Self {
        let text = &v.schema.text;
        SubjectVersion {
            subject: v.subject,
            id: v.id,
            version: v.version,
            schema_type: (text.schema_type != SchemaType::Avro).then_some(text.schema_type),
            references: text.references.clone(),
            schema: text.schema.clone(),
        }
    }
}

/// A schema by id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SchemaById {
    /// The schema's type; absent for Avro.
    #[serde(rename = "schemaType", skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<SchemaType>,
    /// Schemas it refers to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// The schema.
    pub schema: String,
}

/// Where a schema id is registered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubjectAndVersion {
    /// The subject.
    pub subject: String,
    /// The version.
    pub version: i32,
}

/// Whether a schema may be registered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CompatibilityAnswer {
    /// Whether it is compatible at the subject's level.
    pub is_compatible: bool,
    /// Why not (with `verbose=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<String>>,
}

/// A compatibility level, as `GET /config` answers it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConfigAnswer {
    /// The level.
    #[serde(rename = "compatibilityLevel")]
    pub compatibility_level: Compatibility,
}

/// Body of `PUT /config`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ConfigUpdate {
    /// The level: `NONE`, `BACKWARD`, `BACKWARD_TRANSITIVE`, `FORWARD`,
    /// `FORWARD_TRANSITIVE`, `FULL` or `FULL_TRANSITIVE`.
    pub compatibility: Compatibility,
}

/// The registry's mode.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModeAnswer {
    /// Always `READWRITE`: the registry takes changes (import modes are not offered).
    pub mode: String,
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
fn checked(state: &SchemasState, subject: &str) -> Result<(), ApiError> {
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

fn schema_id(text: &str) -> Result<u32, RegistryError> {
    text.parse::<u32>()
        .map_err(|_| RegistryError::SchemaNotFound)
}

/// List subjects.
#[utoipa::path(get, path = "/schema-registry/subjects", tag = "schemas",
    params(ListQuery),
    responses((status = 200, description = "Subject names", body = Vec<String>, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "An external registry is configured (`schema_registry_external`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn list_subjects(
    State(state): State<SchemasState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let mut subjects = state.store()?.subjects(query.deleted);
    if let Some(prefix) = &query.subject_prefix {
        subjects.retain(|s| s.starts_with(prefix.as_str()));
    }
    Ok(answer(&subjects))
}

/// List a subject's versions.
#[utoipa::path(get, path = "/schema-registry/subjects/{subject}/versions", tag = "schemas",
    params(("subject" = String, Path, description = "The subject", max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"), ListQuery),
    responses((status = 200, description = "Version numbers", body = Vec<i32>, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such subject (40401)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn list_versions(
    State(state): State<SchemasState>,
    Path(subject): Path<String>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    checked(&state, &subject)?;
    let versions = state
        .store()?
        .versions(&subject, query.deleted)
        .map_err(|e| state.error(e))?;
    Ok(answer(&versions))
}

/// Register a schema under a subject.
///
/// Answers the id; the same schema registered again (under any subject) keeps its id. A
/// new version must be compatible with the earlier ones at the subject's level (`409`).
#[utoipa::path(post, path = "/schema-registry/subjects/{subject}/versions", tag = "schemas",
    params(("subject" = String, Path, description = "The subject (`<topic>-value` by the topic-name strategy)", max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$")),
    request_body(content = NewSchema, content_type = "application/vnd.schemaregistry.v1+json"),
    responses((status = 200, description = "Registered (or already there)", body = RegisteredId, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 409, description = "Incompatible with an earlier version (409)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid schema (42201)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn register(
    State(state): State<SchemasState>,
    Path(subject): Path<String>,
    JsonBody(body): JsonBody<NewSchema>,
) -> Result<Response, ApiError> {
    checked(&state, &subject)?;
    let text = body.text();
    let schema_type = text.schema_type;
    let version = state
        .store()?
        .register(&subject, text)
        .await
        .map_err(|e| state.error(e))?;
    let details = AuditDetails(json!({
        "subject": subject, "version": version.version, "id": version.id, "schema_type": schema_type.as_str(),
    }));
    Ok((Extension(details), answer(&RegisteredId { id: version.id })).into_response())
}

/// Get a subject's version.
#[utoipa::path(get, path = "/schema-registry/subjects/{subject}/versions/{version}", tag = "schemas",
    params(("subject" = String, Path, description = "The subject", max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"),
        ("version" = String, Path, description = "A version number (1 or more) or `latest` (`-1` is the same)", pattern = r"^(latest|-1|[1-9][0-9]{0,8})$"), ListQuery),
    responses((status = 200, description = "The version", body = SubjectVersion, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such subject (40401) or version (40402)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a version (42202)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_version(
    State(state): State<SchemasState>,
    Path((subject, version)): Path<(String, String)>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    checked(&state, &subject)?;
    let store = state.store()?;
    let found = VersionRef::parse(&version)
        .and_then(|which| store.version(&subject, which, query.deleted))
        .map_err(|e| state.error(e))?;
    Ok(answer(&SubjectVersion::from(found)))
}

/// Get a subject's version's schema, as it is.
#[utoipa::path(get, path = "/schema-registry/subjects/{subject}/versions/{version}/schema", tag = "schemas",
    params(("subject" = String, Path, description = "The subject", max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"),
        ("version" = String, Path, description = "A version number (1 or more) or `latest` (`-1` is the same)", pattern = r"^(latest|-1|[1-9][0-9]{0,8})$")),
    responses((status = 200, description = "The schema document (JSON for Avro and JSON Schema, a string for Protobuf)", body = serde_json::Value, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such subject (40401) or version (40402)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a version (42202)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_version_schema(
    State(state): State<SchemasState>,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    checked(&state, &subject)?;
    let store = state.store()?;
    let found = VersionRef::parse(&version)
        .and_then(|which| store.version(&subject, which, false))
        .map_err(|e| state.error(e))?;
    Ok(raw_schema(&found.schema.text))
}

/// A schema's text as the answer itself: JSON documents as JSON, Protobuf as a string.
fn raw_schema(text: &SchemaText) -> Response {
    match serde_json::from_str::<serde_json::Value>(&text.schema) {
        Ok(document) => answer(&document),
        Err(_) => answer(&text.schema),
    }
}

/// Delete a subject's version.
///
/// Soft first (still readable with `deleted=true`); then `permanent=true` removes it.
#[utoipa::path(delete, path = "/schema-registry/subjects/{subject}/versions/{version}", tag = "schemas",
    params(("subject" = String, Path, description = "The subject", max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"),
        ("version" = String, Path, description = "A version number (1 or more) or `latest` (`-1` is the same)", pattern = r"^(latest|-1|[1-9][0-9]{0,8})$"), DeleteQuery),
    responses((status = 200, description = "The version deleted", body = i32, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such subject or version (40401, 40402), already soft-deleted (40406), or not soft-deleted before a permanent delete (40407)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a version (42202)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn delete_version(
    State(state): State<SchemasState>,
    Path((subject, version)): Path<(String, String)>,
    QueryParams(query): QueryParams<DeleteQuery>,
) -> Result<Response, ApiError> {
    checked(&state, &subject)?;
    let store = state.store()?;
    let which = VersionRef::parse(&version).map_err(|e| state.error(e))?;
    let deleted = store
        .delete_version(&subject, which, query.permanent)
        .await
        .map_err(|e| state.error(e))?;
    let details = AuditDetails(json!({
        "subject": subject, "version": deleted, "permanent": query.permanent,
    }));
    Ok((Extension(details), answer(&deleted)).into_response())
}

/// Find a schema under a subject.
///
/// Answers the version that is this schema (whitespace aside).
#[utoipa::path(post, path = "/schema-registry/subjects/{subject}", tag = "schemas",
    params(("subject" = String, Path, description = "The subject", max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"), ListQuery),
    request_body(content = NewSchema, content_type = "application/vnd.schemaregistry.v1+json"),
    responses((status = 200, description = "The version", body = SubjectVersion, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such subject (40401) or schema under it (40403)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid schema (42201)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn lookup(
    State(state): State<SchemasState>,
    Path(subject): Path<String>,
    QueryParams(query): QueryParams<ListQuery>,
    JsonBody(body): JsonBody<NewSchema>,
) -> Result<Response, ApiError> {
    checked(&state, &subject)?;
    let found = state
        .store()?
        .lookup(&subject, body.text(), query.deleted)
        .map_err(|e| state.error(e))?;
    Ok(answer(&SubjectVersion::from(found)))
}

/// Delete a subject.
///
/// Soft first (every version); then `permanent=true` removes them.
#[utoipa::path(delete, path = "/schema-registry/subjects/{subject}", tag = "schemas",
    params(("subject" = String, Path, description = "The subject", max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"), DeleteQuery),
    responses((status = 200, description = "The versions deleted", body = Vec<i32>, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such subject (40401), already soft-deleted (40404), or not soft-deleted before a permanent delete (40405)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn delete_subject(
    State(state): State<SchemasState>,
    Path(subject): Path<String>,
    QueryParams(query): QueryParams<DeleteQuery>,
) -> Result<Response, ApiError> {
    checked(&state, &subject)?;
    let versions = state
        .store()?
        .delete_subject(&subject, query.permanent)
        .await
        .map_err(|e| state.error(e))?;
    let details = AuditDetails(json!({
        "subject": subject, "versions": versions, "permanent": query.permanent,
    }));
    Ok((Extension(details), answer(&versions)).into_response())
}

/// Get a schema by id.
#[utoipa::path(get, path = "/schema-registry/schemas/ids/{id}", tag = "schemas",
    params(("id" = String, Path, description = "The schema id")),
    responses((status = 200, description = "The schema", body = SchemaById, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such schema (40403)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn schema_by_id(
    State(state): State<SchemasState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = state.store()?;
    let schema = schema_id(&id)
        .and_then(|id| store.schema(id).ok_or(RegistryError::SchemaNotFound))
        .map_err(|e| state.error(e))?;
    let text = &schema.text;
    Ok(answer(&SchemaById {
        schema_type: (text.schema_type != SchemaType::Avro).then_some(text.schema_type),
        references: text.references.clone(),
        schema: text.schema.clone(),
    }))
}

/// Get a schema by id, as it is.
#[utoipa::path(get, path = "/schema-registry/schemas/ids/{id}/schema", tag = "schemas",
    params(("id" = String, Path, description = "The schema id")),
    responses((status = 200, description = "The schema document (JSON for Avro and JSON Schema, a string for Protobuf)", body = serde_json::Value, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such schema (40403)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn schema_text_by_id(
    State(state): State<SchemasState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = state.store()?;
    let schema = schema_id(&id)
        .and_then(|id| store.schema(id).ok_or(RegistryError::SchemaNotFound))
        .map_err(|e| state.error(e))?;
    Ok(raw_schema(&schema.text))
}

/// Where a schema id is registered.
#[utoipa::path(get, path = "/schema-registry/schemas/ids/{id}/versions", tag = "schemas",
    params(("id" = String, Path, description = "The schema id"), ListQuery),
    responses((status = 200, description = "Subjects and versions", body = Vec<SubjectAndVersion>, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such schema (40403)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn id_versions(
    State(state): State<SchemasState>,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let uses = uses(&state, &id, query.deleted)?;
    let list: Vec<SubjectAndVersion> = uses
        .into_iter()
        .map(|(subject, version)| SubjectAndVersion { subject, version })
        .collect();
    Ok(answer(&list))
}

fn uses(state: &SchemasState, id: &str, deleted: bool) -> Result<Vec<(String, i32)>, ApiError> {
    let store = state.store()?;
    let id = schema_id(id).map_err(|e| state.error(e))?;
    if store.schema(id).is_none() {
        return Err(state.error(RegistryError::SchemaNotFound));
    }
    Ok(store.uses(id, deleted))
}

/// The subjects a schema id is registered under.
#[utoipa::path(get, path = "/schema-registry/schemas/ids/{id}/subjects", tag = "schemas",
    params(("id" = String, Path, description = "The schema id"), ListQuery),
    responses((status = 200, description = "Subjects", body = Vec<String>, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such schema (40403)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn id_subjects(
    State(state): State<SchemasState>,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let mut subjects: Vec<String> = uses(&state, &id, query.deleted)?
        .into_iter()
        .map(|(subject, _)| subject)
        .collect();
    subjects.dedup();
    Ok(answer(&subjects))
}

/// The schema types this registry takes.
#[utoipa::path(get, path = "/schema-registry/schemas/types", tag = "schemas",
    responses((status = 200, description = "Types", body = Vec<SchemaType>, content_type = "application/vnd.schemaregistry.v1+json")))]
pub(super) async fn schema_types(State(state): State<SchemasState>) -> Result<Response, ApiError> {
    state.store()?;
    Ok(answer(&[
        SchemaType::Json,
        SchemaType::Protobuf,
        SchemaType::Avro,
    ]))
}

/// Test a schema against one version of a subject.
#[utoipa::path(post, path = "/schema-registry/compatibility/subjects/{subject}/versions/{version}", tag = "schemas",
    params(("subject" = String, Path, description = "The subject", max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"),
        ("version" = String, Path, description = "A version number (1 or more) or `latest` (`-1` is the same)", pattern = r"^(latest|-1|[1-9][0-9]{0,8})$"), VerboseQuery),
    request_body(content = NewSchema, content_type = "application/vnd.schemaregistry.v1+json"),
    responses((status = 200, description = "Whether it is compatible", body = CompatibilityAnswer, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such subject (40401) or version (40402)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid schema (42201) or version (42202)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn test_against_version(
    State(state): State<SchemasState>,
    Path((subject, version)): Path<(String, String)>,
    QueryParams(query): QueryParams<VerboseQuery>,
    JsonBody(body): JsonBody<NewSchema>,
) -> Result<Response, ApiError> {
    checked(&state, &subject)?;
    let store = state.store()?;
    let problems = VersionRef::parse(&version)
        .and_then(|which| store.test(&subject, Some(which), body.text()))
        .map_err(|e| state.error(e))?;
    Ok(compatibility_answer(problems, query.verbose))
}

/// Test a schema against a subject's versions (as its level says).
#[utoipa::path(post, path = "/schema-registry/compatibility/subjects/{subject}/versions", tag = "schemas",
    params(("subject" = String, Path, description = "The subject", max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"), VerboseQuery),
    request_body(content = NewSchema, content_type = "application/vnd.schemaregistry.v1+json"),
    responses((status = 200, description = "Whether it is compatible", body = CompatibilityAnswer, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 422, description = "Invalid schema (42201)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn test_against_all(
    State(state): State<SchemasState>,
    Path(subject): Path<String>,
    QueryParams(query): QueryParams<VerboseQuery>,
    JsonBody(body): JsonBody<NewSchema>,
) -> Result<Response, ApiError> {
    checked(&state, &subject)?;
    let problems = state
        .store()?
        .test(&subject, None, body.text())
        .map_err(|e| state.error(e))?;
    Ok(compatibility_answer(problems, query.verbose))
}

fn compatibility_answer(problems: Vec<String>, verbose: bool) -> Response {
    answer(&CompatibilityAnswer {
        is_compatible: problems.is_empty(),
        messages: verbose.then_some(problems),
    })
}

/// The registry's compatibility level.
#[utoipa::path(get, path = "/schema-registry/config", tag = "schemas",
    responses((status = 200, description = "The level", body = ConfigAnswer, content_type = "application/vnd.schemaregistry.v1+json")))]
pub(super) async fn get_config(State(state): State<SchemasState>) -> Result<Response, ApiError> {
    let level = state
        .store()?
        .compatibility(None, false)
        .map_err(|e| state.error(e))?;
    Ok(answer(&ConfigAnswer {
        compatibility_level: level,
    }))
}

/// Set the registry's compatibility level.
#[utoipa::path(put, path = "/schema-registry/config", tag = "schemas",
    request_body(content = ConfigUpdate, content_type = "application/vnd.schemaregistry.v1+json"),
    responses((status = 200, description = "The level set", body = ConfigUpdate, content_type = "application/vnd.schemaregistry.v1+json")))]
pub(super) async fn set_config(
    State(state): State<SchemasState>,
    JsonBody(body): JsonBody<ConfigUpdate>,
) -> Result<Response, ApiError> {
    state
        .store()?
        .set_compatibility(None, body.compatibility)
        .await
        .map_err(|e| state.error(e))?;
    let details = AuditDetails(json!({ "compatibility": body.compatibility.as_str() }));
    Ok((Extension(details), answer(&body)).into_response())
}

/// A subject's compatibility level.
#[utoipa::path(get, path = "/schema-registry/config/{subject}", tag = "schemas",
    params(("subject" = String, Path, description = "The subject", max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"), ConfigQuery),
    responses((status = 200, description = "The level", body = ConfigAnswer, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "The subject has no level of its own (40408)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_subject_config(
    State(state): State<SchemasState>,
    Path(subject): Path<String>,
    QueryParams(query): QueryParams<ConfigQuery>,
) -> Result<Response, ApiError> {
    checked(&state, &subject)?;
    let level = state
        .store()?
        .compatibility(Some(&subject), !query.default_to_global)
        .map_err(|e| state.error(e))?;
    Ok(answer(&ConfigAnswer {
        compatibility_level: level,
    }))
}

/// Set a subject's compatibility level.
#[utoipa::path(put, path = "/schema-registry/config/{subject}", tag = "schemas",
    params(("subject" = String, Path, description = "The subject", max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$")),
    request_body(content = ConfigUpdate, content_type = "application/vnd.schemaregistry.v1+json"),
    responses((status = 200, description = "The level set", body = ConfigUpdate, content_type = "application/vnd.schemaregistry.v1+json"),
))]
pub(super) async fn set_subject_config(
    State(state): State<SchemasState>,
    Path(subject): Path<String>,
    JsonBody(body): JsonBody<ConfigUpdate>,
) -> Result<Response, ApiError> {
    checked(&state, &subject)?;
    state
        .store()?
        .set_compatibility(Some(&subject), body.compatibility)
        .await
        .map_err(|e| state.error(e))?;
    let details = AuditDetails(json!({
        "subject": subject, "compatibility": body.compatibility.as_str(),
    }));
    Ok((Extension(details), answer(&body)).into_response())
}

/// Remove a subject's own compatibility level (it follows the registry's again).
#[utoipa::path(delete, path = "/schema-registry/config/{subject}", tag = "schemas",
    params(("subject" = String, Path, description = "The subject", max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$")),
    responses((status = 200, description = "The level it had", body = ConfigAnswer, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "The subject has no level of its own (40408)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn delete_subject_config(
    State(state): State<SchemasState>,
    Path(subject): Path<String>,
) -> Result<Response, ApiError> {
    checked(&state, &subject)?;
    let previous = state
        .store()?
        .clear_compatibility(&subject)
        .await
        .map_err(|e| state.error(e))?;
    let details = AuditDetails(json!({ "subject": subject }));
    Ok((
        Extension(details),
        answer(&ConfigAnswer {
            compatibility_level: previous,
        }),
    )
        .into_response())
}

/// The registry's mode.
#[utoipa::path(get, path = "/schema-registry/mode", tag = "schemas",
    responses((status = 200, description = "`READWRITE`", body = ModeAnswer, content_type = "application/vnd.schemaregistry.v1+json")))]
pub(super) async fn get_mode(State(state): State<SchemasState>) -> Result<Response, ApiError> {
    state.store()?;
    Ok(answer(&ModeAnswer {
        mode: "READWRITE".into(),
    }))
}

/// A subject's mode (the registry's).
#[utoipa::path(get, path = "/schema-registry/mode/{subject}", tag = "schemas",
    params(("subject" = String, Path, description = "The subject", max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$")),
    responses((status = 200, description = "`READWRITE`", body = ModeAnswer, content_type = "application/vnd.schemaregistry.v1+json")))]
pub(super) async fn get_subject_mode(
    State(state): State<SchemasState>,
    Path(_subject): Path<String>,
) -> Result<Response, ApiError> {
    checked(&state, &_subject)?;
    state.store()?;
    Ok(answer(&ModeAnswer {
        mode: "READWRITE".into(),
    }))
}
