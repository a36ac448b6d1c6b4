//! `GET /api/clusters` and `GET /api/clusters/{cluster}`: the registry with each cluster's
//! live status. The management resources of a cluster are under
//! `/api/clusters/{cluster}/…` (see `admin`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ClusterPath, entry_errors, id_from};
use crate::clusters::ClustersState;
use crate::clusters::options::OptionPolicy;
use crate::clusters::registry::{
    ClusterSettings, ClusterStatus, LocalCluster, RegisteredCluster, RegistryError,
    literal_secrets, valid_cluster_id,
};
use crate::clusters::templates::Templates;
use crate::config::clusters::RegistryEndpoint;
use crate::http::audit::AuditDetails;
use crate::http::auth::Principal;
use crate::http::auth::{Scope, scoped};
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::{JsonBody, QueryParams};
use crate::kafka::{ClientSettings, is_secret_option, validate_config_name, validate_config_value};
use axum::extract::FromRef;

/// The registry's routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    ClustersState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(scoped(Scope::AdminRead, routes!(list_clusters)))
        .routes(scoped(Scope::AdminWrite, routes!(register_cluster)))
        .routes(scoped(Scope::AdminRead, routes!(describe_cluster)))
        .routes(scoped(Scope::AdminWrite, routes!(update_cluster)))
        .routes(scoped(Scope::AdminWrite, routes!(remove_cluster)))
}

/// Body of `POST /api/clusters` and `PUT /api/clusters/{cluster}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterCluster {
    /// 1 to 64 of `[a-z0-9-]`; made from `name` when absent (`POST` only).
    #[schema(pattern = r"^[a-z0-9][a-z0-9-]{0,63}$")]
    pub id: Option<String>,
    /// A name for people, 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// What it is for, up to 1024 characters.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub description: String,
    /// 1 to 32 of `[a-z0-9-]`: `development`, `testing`, `staging`, `production`, …
    #[schema(pattern = r"^[a-z0-9][a-z0-9-]{0,31}$")]
    pub environment: String,
    /// Up to 20 labels of 1 to 64 of `[a-zA-Z0-9._-]`.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub tags: Vec<String>,
    /// Comma-separated `host:port` list; needed unless `local` (then it is the broker this
    /// service runs).
    #[serde(default)]
    #[schema(
        max_length = 1024,
        pattern = r"^[A-Za-z0-9._\[\]:-]+:[0-9]{1,5}(,[A-Za-z0-9._\[\]:-]+:[0-9]{1,5})*$"
    )]
    pub bootstrap_servers: String,
    /// librdkafka options from the allow-list a connection needs (security protocol, SASL,
    /// TLS as inline PEM or files under the operator's `admin.cluster_files_dir`, timeouts,
    /// codecs); others are `422`. Secret ones (`*password*`, `*secret*`, tokens, keys) must be
    /// `${ENV_NAME}` references to variables the operator allows (`admin.secret_env_prefix`,
    /// `ORDERFLOW_SECRET_` by default), resolved from each instance's environment when
    /// connecting: no secret is ever written to Kafka.
    #[serde(default)]
    pub librdkafka: BTreeMap<String, String>,
    /// A template (`GET /api/templates`) whose topic defaults apply to topics created on
    /// this cluster without explicit values.
    pub template_id: Option<String>,
    /// Run a broker for it here, from the template's broker settings (`development` when no
    /// template is given); needs `[local_broker].command`. Cannot change later.
    #[serde(default)]
    pub local: bool,
    /// The schema registry its records' schema ids belong to: a URL under one the operator
    /// allows (`admin.schema_registry_urls`), the password as a `${ENV_NAME}` reference.
    #[serde(default)]
    pub schema_registry: Option<RegistryEndpoint>,
}

impl RegisterCluster {
    /// The id and settings, or every field that is wrong.
    fn parse(
        mut self,
        templates: &Templates,
        policy: &OptionPolicy,
        local: Option<LocalCluster>,
    ) -> Result<(String, ClusterSettings), ApiError> {
        let mut errors = Vec::new();
        if let Some(local) = &local {
            if !self.bootstrap_servers.is_empty() {
                errors.push(FieldError::new(
                    "bootstrap_servers",
                    "not for a local cluster: its broker is the one this service runs",
                ));
            }
            self.bootstrap_servers = format!("127.0.0.1:{}", local.port);
        }
        if let Some(template) = &self.template_id
            && templates.get(template).is_none()
        {
            errors.push(FieldError::new(
                "template_id",
                "no such template (GET /api/templates)",
            ));
        }
        let id = self.id.clone().unwrap_or_else(|| id_from(&self.name));
        errors.extend(entry_errors(&id, &self.name, &self.description));
        if !valid_cluster_id(&self.environment) || self.environment.len() > 32 {
            errors.push(FieldError::new(
                "environment",
                "1 to 32 of a-z, 0-9 and '-'",
            ));
        }
        let tag_ok = |t: &String| {
            !t.is_empty()
                && t.len() <= 64
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        if self.tags.len() > 20 || !self.tags.iter().all(tag_ok) {
            errors.push(FieldError::new(
                "tags",
                "up to 20 tags of 1 to 64 of a-z, A-Z, 0-9, '.', '_', '-'",
            ));
        }
        let server_ok = |s: &str| {
            s.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty()
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-_[]:".contains(&b))
                    && port.parse::<u16>().is_ok_and(|p| p > 0)
            })
        };
        if self.bootstrap_servers.len() > 1024
            || !self
                .bootstrap_servers
                .split(',')
                .map(str::trim)
                .all(server_ok)
        {
            errors.push(FieldError::new(
                "bootstrap_servers",
                "a comma-separated list of host:port",
            ));
        }
        for (name, value) in &self.librdkafka {
            let field = format!("librdkafka.{name}");
            if let Err(why) =
                validate_config_name(name).and_then(|()| validate_config_value(name, value))
            {
                errors.push(FieldError::new(field, why));
            } else if name == "bootstrap.servers" {
                errors.push(FieldError::new(field, "give it as bootstrap_servers"));
            } else if let Some(why) = policy.refusal(name, value) {
                errors.push(FieldError::new(field, why));
            }
        }
        for name in literal_secrets(&self.librdkafka) {
            errors.push(FieldError::new(
                format!("librdkafka.{name}"),
                "a secret option must be a reference to an environment variable, like ${NAME}; \
                 secrets are never written to Kafka",
            ));
        }
        if let Some(endpoint) = &self.schema_registry {
            for (field, why) in policy.registry_refusals(endpoint) {
                errors.push(FieldError::new(field, why));
            }
        }
        let settings = ClusterSettings {
            schema_registry: self.schema_registry,
            name: self.name,
            description: self.description,
            environment: self.environment,
            tags: self.tags,
            bootstrap_servers: self.bootstrap_servers,
            librdkafka: self.librdkafka,
            template_id: self.template_id,
            local,
        };
        if errors.is_empty() {
            // Only once every option passed the policy: librdkafka acts on some as soon as
            // they are set (a plugin is loaded, a file is opened).
            let client = ClientSettings {
                bootstrap_servers: settings.bootstrap_servers.clone(),
                client_id: "orderflow".into(),
                librdkafka: policy
                    .apply(&settings.librdkafka)
                    .unwrap_or_else(|_| settings.librdkafka.clone())
                    .into_iter()
                    .map(|(name, value)| {
                        // Secrets need not be set on this instance to check the rest.
                        let value = if is_secret_option(&name) {
                            "x".into()
                        } else {
                            value
                        };
                        (name, value)
                    })
                    .collect(),
            };
            if let Err(why) = client.check() {
                errors.push(FieldError::new("librdkafka", why));
            }
        }
        if errors.is_empty() {
            Ok((id, settings))
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Taken(id) => ApiError::Conflict {
                code: "already_exists",
                detail: format!("cluster {id} exists already"),
            },
            RegistryError::NotFound(id) => ApiError::ClusterNotFound(id),
            RegistryError::Configured(why) => ApiError::Conflict {
                code: "conflict",
                detail: why,
            },
            RegistryError::Unavailable(cause) => {
                ApiError::write_outcome_unknown("cluster registry", &cause)
            }
        }
    }
}

/// Refuses a definition whose brokers belong to a Kafka cluster registered under another id
/// (the home cluster among them): one cluster, one entry, so that what protects it and which
/// keys reach it cannot be side-stepped through a second name. A definition whose brokers do
/// not answer now is taken; what it reaches is judged again at each use.
async fn refuse_alias(
    state: &ClustersState,
    id: &str,
    settings: &ClusterSettings,
) -> Result<(), ApiError> {
    if settings.local.is_some() {
        return Ok(());
    }
    let registry = &state.clusters;
    let Some(identity) = registry
        .probe_identity(&settings.bootstrap_servers, &settings.librdkafka)
        .await
    else {
        return Ok(());
    };
    let home = registry.home_identity().await.ok();
    let mut aliases = registry.aliases(&identity);
    if home.as_deref() == Some(identity.as_str()) {
        aliases.push(registry.home_id().to_string());
    }
    match aliases.into_iter().find(|alias| alias != id) {
        Some(other) => Err(ApiError::Conflict {
            code: "already_exists",
            detail: format!(
                "these brokers belong to the Kafka cluster already registered as {other}; \
                 manage it through that id"
            ),
        }),
        None => Ok(()),
    }
}

/// The registry entry as the answer to a change, with a health check made now.
async fn checked_view(state: &ClustersState, id: &str) -> ClusterView {
    match state.clusters.get(id) {
        Some(cluster) => {
            state.clusters.check(&cluster).await;
            ClusterView::from(cluster.as_ref())
        }
        None => ClusterView {
            id: id.to_string(),
            name: String::new(),
            description: String::new(),
            environment: String::new(),
            tags: vec![],
            bootstrap_servers: String::new(),
            default: false,
            source: crate::clusters::registry::Source::Registered,
            local: false,
            template_id: None,
            status: ClusterStatus::default(),
        },
    }
}

/// What a registry change was, for its audit record: everything but option values.
fn audit(id: &str, settings: Option<&ClusterSettings>) -> Extension<AuditDetails> {
    Extension(AuditDetails(match settings {
        Some(s) => json!({
            "id": id,
            "environment": s.environment,
            "bootstrap_servers": s.bootstrap_servers,
            "librdkafka_options": s.librdkafka.keys().collect::<Vec<_>>(),
        }),
        None => json!({ "id": id }),
    }))
}

/// Register a cluster.
///
/// Stored on the registry topic, so every instance knows it and a restart keeps it. Its
/// reachability is checked at once and shown in `status` (an unreachable cluster may be
/// registered).
#[utoipa::path(post, path = "/api/clusters", tag = "clusters",
    request_body(content = RegisterCluster, example = json!({"id": "staging", "name": "Staging", "environment": "staging", "tags": ["eu"], "bootstrap_servers": "kafka-staging:9092", "librdkafka": {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "orderflow", "sasl.password": "${ORDERFLOW_SECRET_STAGING_KAFKA_PASSWORD}"}})),
    responses(
        (status = 201, description = "Registered", body = ClusterView, headers(("Location" = String, description = "The cluster's URL"))),
        (status = 409, description = "The id is taken, or the brokers belong to a cluster registered under another id (`already_exists`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid settings, an option a registered cluster may not set, a reference to a variable the operator does not allow, or a literal secret (`validation_failed`, `invalid_body`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn register_cluster(
    State(state): State<ClustersState>,
    JsonBody(mut body): JsonBody<RegisterCluster>,
) -> Result<Response, ApiError> {
    let local = if body.local {
        let template_id = body.template_id.get_or_insert_with(|| "development".into());
        let template = state.templates.get(template_id).ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "template_id",
                "no such template (GET /api/templates)",
            )])
        })?;
        Some(state.local_clusters.provision(&state.clusters, &template)?)
    } else {
        None
    };
    let (id, settings) = body.parse(&state.templates, state.clusters.policy(), local)?;
    refuse_alias(&state, &id, &settings).await?;
    let details = audit(&id, Some(&settings));
    state.clusters.register(&id, settings, false).await?;
    let view = checked_view(&state, &id).await;
    let location = format!("/api/clusters/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        details,
        Json(view),
    )
        .into_response())
}

/// Change a registered cluster.
///
/// Replaces its settings (its clients are made again on next use). The home cluster and
/// clusters from config are `409`.
#[utoipa::path(put, path = "/api/clusters/{cluster}", tag = "clusters",
    params(ClusterPath),
    request_body(content = RegisterCluster),
    responses(
        (status = 200, description = "Changed", body = ClusterView),
        (status = 404, description = "No such cluster (`cluster_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A key limited to some clusters may not change the connection (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The home cluster or one from config (`conflict`), or the brokers belong to a cluster registered under another id (`already_exists`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid settings, an option a registered cluster may not set, a reference to a variable the operator does not allow, a literal secret, or another id in the body (`validation_failed`, `invalid_body`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn update_cluster(
    State(state): State<ClustersState>,
    Path(ClusterPath { cluster: id }): Path<ClusterPath>,
    caller: Option<Extension<Principal>>,
    JsonBody(mut body): JsonBody<RegisterCluster>,
) -> Result<(Extension<AuditDetails>, Json<ClusterView>), ApiError> {
    if body.id.as_ref().is_some_and(|given| *given != id) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "id",
            "must be absent or the id in the path",
        )]));
    }
    body.id = Some(id.clone());
    let existing = state
        .clusters
        .get(&id)
        .ok_or_else(|| ApiError::ClusterNotFound(id.clone()))?;
    let local = existing.settings.local.clone();
    if body.local != local.is_some() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "local",
            "a cluster cannot become local or stop being local",
        )]));
    }
    if local.is_some() {
        body.bootstrap_servers.clear();
    }
    let (id, settings) = body.parse(&state.templates, state.clusters.policy(), local)?;
    let repointed = settings.bootstrap_servers != existing.settings.bootstrap_servers
        || settings.librdkafka != existing.settings.librdkafka;
    if repointed && caller.is_some_and(|Extension(c)| c.restricted) {
        return Err(ApiError::KeyRestricted(
            "change a cluster's connection (bootstrap_servers, librdkafka options)",
        ));
    }
    if repointed {
        refuse_alias(&state, &id, &settings).await?;
    }
    let details = audit(&id, Some(&settings));
    state.clusters.register(&id, settings, true).await?;
    Ok((details, Json(checked_view(&state, &id).await)))
}

/// Remove a registered cluster.
///
/// Its clients are closed. The home cluster and clusters from config are `409`.
#[utoipa::path(delete, path = "/api/clusters/{cluster}", tag = "clusters",
    params(ClusterPath),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such cluster (`cluster_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The home cluster or one from config (`conflict`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn remove_cluster(
    State(state): State<ClustersState>,
    Path(ClusterPath { cluster: id }): Path<ClusterPath>,
) -> Result<(StatusCode, Extension<AuditDetails>), ApiError> {
    state.clusters.remove(&id).await?;
    state.local_clusters.forget(&id).await;
    Ok((StatusCode::NO_CONTENT, audit(&id, None)))
}

/// A cluster as the registry shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClusterView {
    /// Its id in paths.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// `development`, `testing`, `staging`, `production`, …
    pub environment: String,
    /// Free labels.
    pub tags: Vec<String>,
    /// Where its brokers are.
    pub bootstrap_servers: String,
    /// Whether it is the home cluster (the service's own; it cannot be removed).
    pub default: bool,
    /// `home`, `config` or `registered` (only registered ones change through the API).
    pub source: crate::clusters::registry::Source,
    /// Whether the service runs its broker (local development clusters).
    pub local: bool,
    /// The template it was made from, if any.
    pub template_id: Option<String>,
    /// Its health from the last periodic check.
    pub status: ClusterStatus,
}

impl From<&RegisteredCluster> for ClusterView {
    fn from(c: &RegisteredCluster) -> Self {
        ClusterView {
            id: c.id.clone(),
            name: c.settings.name.clone(),
            description: c.settings.description.clone(),
            environment: c.settings.environment.clone(),
            tags: c.settings.tags.clone(),
            bootstrap_servers: c.settings.bootstrap_servers.clone(),
            default: c.home,
            source: c.source,
            local: c.settings.local.is_some(),
            template_id: c.settings.template_id.clone(),
            status: c.status(),
        }
    }
}

/// Filters of `GET /api/clusters`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ClusterFilter {
    /// Only clusters of this environment.
    pub environment: Option<String>,
    /// Only reachable (`healthy`) or unreachable (`unreachable`) clusters.
    #[param(value_type = Option<StatusFilter>, inline)]
    pub status: Option<String>,
    /// Only clusters with this tag.
    pub tag: Option<String>,
}

/// Status filter values.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum StatusFilter {
    /// Reachable at the last check.
    Healthy,
    /// Not reachable at the last check.
    Unreachable,
}

/// List clusters.
///
/// The home cluster first, then the others by id, each with its status from the last
/// periodic health check (every 15 s).
#[utoipa::path(get, path = "/api/clusters", tag = "clusters", params(ClusterFilter),
    responses((status = 200, description = "The clusters", body = Vec<ClusterView>),
        (status = 400, description = "Bad filter (`invalid_query`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn list_clusters(
    State(state): State<ClustersState>,
    caller: Option<Extension<Principal>>,
    QueryParams(filter): QueryParams<ClusterFilter>,
) -> Result<Json<Vec<ClusterView>>, ApiError> {
    let reachable = match filter.status.as_deref() {
        None => None,
        Some("healthy") => Some(true),
        Some("unreachable") => Some(false),
        Some(_) => {
            return Err(ApiError::InvalidQuery(
                "status must be healthy or unreachable".into(),
            ));
        }
    };
    let views = state
        .clusters
        .list()
        .iter()
        .filter(|c| {
            caller
                .as_ref()
                .is_none_or(|Extension(caller)| caller.reaches(&c.id))
        })
        .map(|c| ClusterView::from(c.as_ref()))
        .filter(|c| {
            filter
                .environment
                .as_ref()
                .is_none_or(|e| *e == c.environment)
        })
        .filter(|c| filter.tag.as_ref().is_none_or(|t| c.tags.contains(t)))
        .filter(|c| reachable.is_none_or(|r| r == c.status.reachable))
        .collect();
    Ok(Json(views))
}

/// Describe a cluster.
///
/// The registry's entry with a health check made now.
#[utoipa::path(get, path = "/api/clusters/{cluster}", tag = "clusters",
    params(ClusterPath),
    responses((status = 200, description = "The cluster", body = ClusterView),
        (status = 404, description = "No such cluster (`cluster_not_found`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn describe_cluster(
    State(state): State<ClustersState>,
    Path(ClusterPath { cluster: id }): Path<ClusterPath>,
) -> Result<Json<ClusterView>, ApiError> {
    let cluster = state
        .clusters
        .get(&id)
        .ok_or(ApiError::ClusterNotFound(id))?;
    state.clusters.check(&cluster).await;
    Ok(Json(ClusterView::from(cluster.as_ref())))
}
