//! Subjects and their versions: list, register, look up, get, delete.

use axum::Extension;
use axum::extract::{FromRef, Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    DeleteQuery, ListQuery, NewSchema, SchemasState, SubjectPath, VersionPath, answer, checked,
    raw_schema,
};
use crate::http::audit::AuditDetails;
use crate::http::auth::{Scope, scoped};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{JsonBody, QueryParams};
use crate::schemas::registry::{Version, VersionRef};
use crate::schemas::{Reference, SchemaType};

/// Its routes.
pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    SchemasState: FromRef<S>,
{
    let (read, write) = (Scope::AdminRead, Scope::AdminWrite);
    OpenApiRouter::new()
        .routes(scoped(read, routes!(list_subjects)))
        .routes(scoped(read, routes!(list_versions)))
        .routes(scoped(write, routes!(register)))
        .routes(scoped(read, routes!(get_version)))
        .routes(scoped(read, routes!(get_version_schema)))
        .routes(scoped(write, routes!(delete_version)))
        .routes(scoped(read, routes!(lookup)))
        .routes(scoped(write, routes!(delete_subject)))
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
    params(SubjectPath, ListQuery),
    responses((status = 200, description = "Version numbers", body = Vec<i32>, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such subject (40401)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn list_versions(
    State(state): State<SchemasState>,
    Path(SubjectPath { subject }): Path<SubjectPath>,
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
    params(SubjectPath),
    request_body(content = NewSchema, content_type = "application/vnd.schemaregistry.v1+json"),
    responses((status = 200, description = "Registered (or already there)", body = RegisteredId, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 409, description = "Incompatible with an earlier version (409)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid schema (42201)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn register(
    State(state): State<SchemasState>,
    Path(SubjectPath { subject }): Path<SubjectPath>,
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
    params(VersionPath, ListQuery),
    responses((status = 200, description = "The version", body = SubjectVersion, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such subject (40401) or version (40402)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a version (42202)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_version(
    State(state): State<SchemasState>,
    Path(VersionPath { subject, version }): Path<VersionPath>,
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
    params(VersionPath),
    responses((status = 200, description = "The schema document (JSON for Avro and JSON Schema, a string for Protobuf)", body = serde_json::Value, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such subject (40401) or version (40402)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a version (42202)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_version_schema(
    State(state): State<SchemasState>,
    Path(VersionPath { subject, version }): Path<VersionPath>,
) -> Result<Response, ApiError> {
    checked(&state, &subject)?;
    let store = state.store()?;
    let found = VersionRef::parse(&version)
        .and_then(|which| store.version(&subject, which, false))
        .map_err(|e| state.error(e))?;
    Ok(raw_schema(&found.schema.text))
}

/// Delete a subject's version.
///
/// Soft first (still readable with `deleted=true`); then `permanent=true` removes it.
#[utoipa::path(delete, path = "/schema-registry/subjects/{subject}/versions/{version}", tag = "schemas",
    params(VersionPath, DeleteQuery),
    responses((status = 200, description = "The version deleted", body = i32, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such subject or version (40401, 40402), already soft-deleted (40406), or not soft-deleted before a permanent delete (40407)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a version (42202)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn delete_version(
    State(state): State<SchemasState>,
    Path(VersionPath { subject, version }): Path<VersionPath>,
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
    params(SubjectPath, ListQuery),
    request_body(content = NewSchema, content_type = "application/vnd.schemaregistry.v1+json"),
    responses((status = 200, description = "The version", body = SubjectVersion, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such subject (40401) or schema under it (40403)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid schema (42201)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn lookup(
    State(state): State<SchemasState>,
    Path(SubjectPath { subject }): Path<SubjectPath>,
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
    params(SubjectPath, DeleteQuery),
    responses((status = 200, description = "The versions deleted", body = Vec<i32>, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such subject (40401), already soft-deleted (40404), or not soft-deleted before a permanent delete (40405)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn delete_subject(
    State(state): State<SchemasState>,
    Path(SubjectPath { subject }): Path<SubjectPath>,
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
