//! `/api/templates`: list, look up, store and delete cluster templates.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clusters::ClustersState;
use crate::clusters::templates::{BrokerDefaults, Template, TemplateError, TopicDefaults};
use crate::http::audit::AuditDetails;
use crate::http::auth::{Scope, scoped};
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::JsonBody;
use crate::kafka::{validate_config_name, validate_config_value};
use axum::extract::FromRef;

/// The templates' routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    ClustersState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(scoped(Scope::AdminRead, routes!(list_templates)))
        .routes(scoped(Scope::AdminWrite, routes!(create_template)))
        .routes(scoped(Scope::AdminRead, routes!(get_template)))
        .routes(scoped(Scope::AdminWrite, routes!(delete_template)))
}

impl From<TemplateError> for ApiError {
    fn from(error: TemplateError) -> Self {
        match error {
            TemplateError::Taken(id) => ApiError::Conflict {
                code: "already_exists",
                detail: format!("template {id} exists already"),
            },
            TemplateError::NotFound(_) => ApiError::NotFound("template"),
            TemplateError::Builtin(id) => ApiError::Conflict {
                code: "conflict",
                detail: format!("template {id} is built in and cannot be deleted"),
            },
            TemplateError::Unavailable(cause) => {
                ApiError::write_outcome_unknown("templates", &cause)
            }
        }
    }
}

/// Body of `POST /api/templates`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemplate {
    /// 1 to 64 of `[a-z0-9-]`.
    #[schema(pattern = r"^[a-z0-9][a-z0-9-]{0,63}$")]
    pub id: String,
    /// A name for people, 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// What it is for, up to 1024 characters.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub description: String,
    /// Defaults of topics created on its clusters.
    pub topic_defaults: TopicDefaults,
    /// Settings of a local broker, for local clusters.
    #[serde(default)]
    pub broker: Option<BrokerDefaults>,
}

impl NewTemplate {
    fn parse(self) -> Result<Template, ApiError> {
        let mut errors = super::entry_errors(&self.id, &self.name, &self.description);
        let d = &self.topic_defaults;
        if !(1..=1000).contains(&d.partitions) {
            errors.push(FieldError::new("topic_defaults.partitions", "1 to 1000"));
        }
        if !(1..=32).contains(&d.replication_factor) {
            errors.push(FieldError::new(
                "topic_defaults.replication_factor",
                "1 to 32",
            ));
        }
        for (name, value) in &d.configs {
            if let Err(why) =
                validate_config_name(name).and_then(|()| validate_config_value(name, value))
            {
                errors.push(FieldError::new(
                    format!("topic_defaults.configs.{name}"),
                    why,
                ));
            }
        }
        if let Some(broker) = &self.broker
            && !["memory", "sqlite"].contains(&broker.storage.as_str())
        {
            errors.push(FieldError::new("broker.storage", "memory or sqlite"));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(Template {
            id: self.id,
            name: self.name,
            description: self.description,
            builtin: false,
            topic_defaults: self.topic_defaults,
            broker: self.broker,
        })
    }
}

/// List templates.
///
/// The built-in ones (`development`, `testing`, `production`) first, then the stored ones.
#[utoipa::path(get, path = "/api/templates", tag = "clusters",
    responses((status = 200, description = "Templates", body = Vec<Template>)))]
pub(super) async fn list_templates(State(state): State<ClustersState>) -> Json<Vec<Template>> {
    Json(state.templates.list())
}

/// Look up a template.
#[utoipa::path(get, path = "/api/templates/{template}", tag = "clusters",
    params(("template" = String, Path, description = "Template id")),
    responses((status = 200, description = "The template", body = Template),
        (status = 404, description = "No such template (`not_found`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_template(
    State(state): State<ClustersState>,
    Path(id): Path<String>,
) -> Result<Json<Template>, ApiError> {
    state
        .templates
        .get(&id)
        .map(Json)
        .ok_or(ApiError::NotFound("template"))
}

/// Store a template.
///
/// Kept on the templates topic, so every instance knows it.
#[utoipa::path(post, path = "/api/templates", tag = "clusters",
    request_body(content = NewTemplate, example = json!({"id": "batch", "name": "Batch", "topic_defaults": {"partitions": 12, "replication_factor": 3, "configs": {"retention.ms": "172800000", "compression.type": "zstd"}}})),
    responses(
        (status = 201, description = "Stored", body = Template, headers(("Location" = String, description = "The template's URL"))),
        (status = 409, description = "The id is taken (`already_exists`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid template (`validation_failed`, `invalid_body`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn create_template(
    State(state): State<ClustersState>,
    JsonBody(body): JsonBody<NewTemplate>,
) -> Result<Response, ApiError> {
    let template = body.parse()?;
    let details = Extension(AuditDetails(json!({ "id": template.id })));
    state.templates.create(template.clone()).await?;
    let location = format!("/api/templates/{}", template.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        details,
        Json(template),
    )
        .into_response())
}

/// Delete a stored template.
///
/// Built-in templates cannot be deleted (`409`).
#[utoipa::path(delete, path = "/api/templates/{template}", tag = "clusters",
    params(("template" = String, Path, description = "Template id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such template (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A built-in template (`conflict`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn delete_template(
    State(state): State<ClustersState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Extension<AuditDetails>), ApiError> {
    state.templates.remove(&id).await?;
    Ok((
        StatusCode::NO_CONTENT,
        Extension(AuditDetails(json!({ "id": id }))),
    ))
}
