//! Schemas by id, where an id is registered, and the schema types.

use axum::extract::{FromRef, Path, State};
use axum::response::Response;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListQuery, SchemasState, answer, raw_schema, schema_id};
use crate::http::auth::{Scope, scoped};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::QueryParams;
use crate::schemas::Reference;
use std::sync::Arc;

use crate::schemas::registry::RegistryError;
use crate::schemas::{Schema, SchemaType};

/// Its routes.
pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    SchemasState: FromRef<S>,
{
    let read = Scope::AdminRead;
    OpenApiRouter::new()
        .routes(scoped(read, routes!(schema_by_id)))
        .routes(scoped(read, routes!(schema_text_by_id)))
        .routes(scoped(read, routes!(id_versions)))
        .routes(scoped(read, routes!(id_subjects)))
        .routes(scoped(read, routes!(schema_types)))
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

/// The schema `id` names (a path segment), or 404 (40403).
fn by_id(state: &SchemasState, id: &str) -> Result<Arc<Schema>, ApiError> {
    let store = state.store()?;
    schema_id(id)
        .and_then(|id| store.schema(id).ok_or(RegistryError::SchemaNotFound))
        .map_err(|e| state.error(e))
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
    let schema = by_id(&state, &id)?;
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
    Ok(raw_schema(&by_id(&state, &id)?.text))
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
    by_id(state, id)?;
    let id = schema_id(id).map_err(|e| state.error(e))?;
    Ok(state.store()?.uses(id, deleted))
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
