//! `GET /api/clusters` and `GET /api/clusters/{cluster}`: the registry with each cluster's
//! live status. The management resources of a cluster are under
//! `/api/clusters/{cluster}/…` (see `admin`).

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::registry::{ClusterStatus, RegisteredCluster};
use crate::http::AppState;
use crate::http::auth::{Scope, scoped};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::QueryParams;

/// The registry's routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(scoped(Scope::AdminRead, routes!(list_clusters)))
        .routes(scoped(Scope::AdminRead, routes!(describe_cluster)))
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
            local: false,
            template_id: None,
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
    State(state): State<AppState>,
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
    params(("cluster" = String, Path, description = "Cluster id", pattern = r"^[a-z0-9][a-z0-9-]{0,63}$")),
    responses((status = 200, description = "The cluster", body = ClusterView),
        (status = 404, description = "No such cluster (`cluster_not_found`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn describe_cluster(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ClusterView>, ApiError> {
    let cluster = state
        .clusters
        .get(&id)
        .ok_or(ApiError::ClusterNotFound(id))?;
    state.clusters.check(&cluster).await;
    Ok(Json(ClusterView::from(cluster.as_ref())))
}
