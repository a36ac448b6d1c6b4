//! Compatibility: tests of a schema, the registry's and subjects' levels, and the mode.

use axum::Extension;
use axum::extract::{FromRef, Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    ConfigQuery, NewSchema, SchemasState, SubjectPath, VerboseQuery, VersionPath, answer, checked,
};
use crate::http::audit::AuditDetails;
use crate::http::auth::{Scope, scoped};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{JsonBody, QueryParams};
use crate::schemas::Compatibility;
use crate::schemas::registry::VersionRef;

/// Its routes.
pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    SchemasState: FromRef<S>,
{
    let (read, write) = (Scope::AdminRead, Scope::AdminWrite);
    OpenApiRouter::new()
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

/// Test a schema against one version of a subject.
#[utoipa::path(post, path = "/schema-registry/compatibility/subjects/{subject}/versions/{version}", tag = "schemas",
    params(VersionPath, VerboseQuery),
    request_body(content = NewSchema, content_type = "application/vnd.schemaregistry.v1+json"),
    responses((status = 200, description = "Whether it is compatible", body = CompatibilityAnswer, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "No such subject (40401) or version (40402)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid schema (42201) or version (42202)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn test_against_version(
    State(state): State<SchemasState>,
    Path(VersionPath { subject, version }): Path<VersionPath>,
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
    params(SubjectPath, VerboseQuery),
    request_body(content = NewSchema, content_type = "application/vnd.schemaregistry.v1+json"),
    responses((status = 200, description = "Whether it is compatible", body = CompatibilityAnswer, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 422, description = "Invalid schema (42201)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn test_against_all(
    State(state): State<SchemasState>,
    Path(SubjectPath { subject }): Path<SubjectPath>,
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
    params(SubjectPath, ConfigQuery),
    responses((status = 200, description = "The level", body = ConfigAnswer, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "The subject has no level of its own (40408)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_subject_config(
    State(state): State<SchemasState>,
    Path(SubjectPath { subject }): Path<SubjectPath>,
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
    params(SubjectPath),
    request_body(content = ConfigUpdate, content_type = "application/vnd.schemaregistry.v1+json"),
    responses((status = 200, description = "The level set", body = ConfigUpdate, content_type = "application/vnd.schemaregistry.v1+json"),
))]
pub(super) async fn set_subject_config(
    State(state): State<SchemasState>,
    Path(SubjectPath { subject }): Path<SubjectPath>,
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
    params(SubjectPath),
    responses((status = 200, description = "The level it had", body = ConfigAnswer, content_type = "application/vnd.schemaregistry.v1+json"),
        (status = 404, description = "The subject has no level of its own (40408)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn delete_subject_config(
    State(state): State<SchemasState>,
    Path(SubjectPath { subject }): Path<SubjectPath>,
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
    params(SubjectPath),
    responses((status = 200, description = "`READWRITE`", body = ModeAnswer, content_type = "application/vnd.schemaregistry.v1+json")))]
pub(super) async fn get_subject_mode(
    State(state): State<SchemasState>,
    Path(SubjectPath { subject }): Path<SubjectPath>,
) -> Result<Response, ApiError> {
    checked(&state, &subject)?;
    state.store()?;
    Ok(answer(&ModeAnswer {
        mode: "READWRITE".into(),
    }))
}
