//! The cluster management routes, one file per resource: the registry (`/api/clusters`),
//! each cluster's resources under `/api/clusters/{cluster}/…` and, for the home cluster,
//! `/api/admin/…` (one set of handlers; [`Target`] resolves the cluster), compare,
//! operations, templates, and the brokers this service runs. The handlers are thin over
//! [`KafkaAdmin`](crate::kafka::admin::KafkaAdmin), which does the Kafka work. Kafka's answers map to statuses: unknown topic or group 404,
//! topic exists 409, invalid partitions, replication or config 422, broker unreachable 503.
//! The service's own topics are protected (see [`topics`] and [`messages`]).

use std::sync::Arc;

use axum::Extension;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clusters::ClustersState;
use crate::clusters::RegisteredCluster;
use crate::clusters::broker::BrokerError;
use crate::clusters::registry::Clients;
use crate::clusters::registry::valid_cluster_id;
use crate::http::audit::AuditDetails;
use crate::http::auth::{Principal, Scope, scoped};
use crate::http::error::{ApiError, FieldError};
use crate::kafka::admin::{AdminError, KafkaAdmin};
use axum::extract::FromRef;

pub mod broker;
pub mod compare;
pub mod groups;
pub mod local;
pub mod messages;
pub mod operations;
pub mod registry;
pub mod search;
pub mod templates;
pub mod topics;

use broker::*;
use groups::*;
use messages::*;
use search::*;
use topics::*;

/// Most records one produce request carries.
pub const MAX_PRODUCE: usize = 1000;

/// Every cluster management route, each with its OpenAPI description.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    ClustersState: FromRef<S>,
{
    use Scope::{AdminRead as Read, AdminWrite as Write};
    OpenApiRouter::new()
        .nest("/api/admin", resources())
        .nest(CLUSTER_PREFIX, resources())
        .routes(scoped(Read, routes!(broker_status)))
        .routes(scoped(Write, routes!(broker_start)))
        .routes(scoped(Write, routes!(broker_stop)))
        .merge(registry::router())
        .merge(compare::router())
        .merge(operations::router())
        .merge(templates::router())
        .merge(local::router())
}

/// Where a registered cluster's management resources live.
pub const CLUSTER_PREFIX: &str = "/api/clusters/{cluster}";

/// The management resources of one cluster, with paths relative to its prefix.
fn resources<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    ClustersState: FromRef<S>,
{
    use Scope::{AdminRead as Read, AdminWrite as Write};
    OpenApiRouter::new()
        .routes(scoped(Read, routes!(cluster)))
        .routes(scoped(Read, routes!(list_topics)))
        .routes(scoped(Write, routes!(create_topic)))
        .routes(scoped(Read, routes!(describe_topic)))
        .routes(scoped(Write, routes!(delete_topic)))
        .routes(scoped(Write, routes!(alter_configs)))
        .routes(scoped(Write, routes!(add_partitions)))
        .routes(scoped(Read, routes!(search)))
        .routes(scoped(Read, routes!(tail)))
        .routes(scoped(Write, routes!(produce)))
        .routes(scoped(Write, routes!(copy)))
        .routes(scoped(Read, routes!(list_groups)))
        .routes(scoped(Read, routes!(describe_group)))
        .routes(scoped(Write, routes!(delete_group)))
        .routes(scoped(Write, routes!(reset_offsets)))
}

/// The cluster a management request is about: `{cluster}` of `/api/clusters/{cluster}/…`,
/// or the home cluster under `/api/admin/…`; an unknown id is `404 cluster_not_found`.
pub struct Target {
    /// The registry's entry.
    pub cluster: Arc<RegisteredCluster>,
    /// Its clients (made on its first use).
    pub clients: Clients,
    /// Whether the Kafka cluster it reaches is the one the service runs on, judged by the
    /// cluster id its brokers report, not by the id it was reached through.
    holds_service_topics: bool,
}

impl Target {
    /// The cluster's management client.
    pub fn admin(&self) -> &KafkaAdmin {
        &self.clients.admin
    }

    /// Whether it is the cluster the service runs on (whose own topics are protected),
    /// under whatever registry id it was reached.
    pub fn is_home(&self) -> bool {
        self.holds_service_topics
    }
}

impl<S> FromRequestParts<S> for Target
where
    S: Send + Sync,
    ClustersState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = ClustersState::from_ref(state);
        let id = crate::http::extract::path_param(parts, "cluster")
            .await
            .unwrap_or_else(|| state.clusters.home_id().to_string());
        let registry = &state.clusters;
        let cluster = registry.get(&id).ok_or(ApiError::ClusterNotFound(id))?;
        let clients = registry.clients(&cluster)?;
        // What the entry reaches decides protection and key restrictions: an entry pointed
        // at the home cluster (or at a cluster the key does not reach) under another id is
        // that cluster.
        let identity = registry.identity(&cluster).await?;
        let holds_service_topics = cluster.home || registry.home_identity().await? == identity;
        if let Some(caller) = parts.extensions.get::<Principal>() {
            refuse_unreached_aliases(registry, caller, &identity, holds_service_topics)?;
        }
        Ok(Target {
            cluster,
            clients,
            holds_service_topics,
        })
    }
}

/// Refuses a caller whose key is limited to some clusters a Kafka cluster (`identity`) that
/// is also registered under an id the key does not reach: a key is judged by what the entry
/// reaches, not by the name it was reached through.
pub fn refuse_unreached_aliases(
    registry: &crate::clusters::ClusterRegistry,
    caller: &Principal,
    identity: &str,
    is_home: bool,
) -> Result<(), ApiError> {
    if !caller.restricted {
        return Ok(());
    }
    let mut aliases = registry.aliases(identity);
    if is_home {
        aliases.push(registry.home_id().to_string());
    }
    match aliases.into_iter().find(|alias| !caller.reaches(alias)) {
        Some(other) => Err(ApiError::ClusterForbidden(other)),
        None => Ok(()),
    }
}

/// Refuses a caller whose key does not reach one of the clusters `ids` (by id, and by the
/// Kafka cluster behind each id when its brokers tell).
pub async fn refuse_unreached(
    registry: &crate::clusters::ClusterRegistry,
    caller: Option<&Principal>,
    ids: impl IntoIterator<Item = &String>,
) -> Result<(), ApiError> {
    let Some(caller) = caller.filter(|c| c.restricted) else {
        return Ok(());
    };
    for id in ids {
        if !caller.reaches(id) {
            return Err(ApiError::ClusterForbidden(id.clone()));
        }
        let Some(cluster) = registry.get(id) else {
            continue;
        };
        if let Ok(identity) = registry.identity(&cluster).await {
            let is_home = cluster.home
                || registry.home_identity().await.ok().as_deref() == Some(identity.as_str());
            refuse_unreached_aliases(registry, caller, &identity, is_home)?;
        }
    }
    Ok(())
}

/// The cluster named in a path (`/api/clusters/{cluster}`): the one place its pattern is
/// written for the document (the registry checks ids with `valid_cluster_id`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ClusterPath {
    /// A cluster's id in the registry (`GET /api/clusters`); the home cluster's is
    /// `kafka.cluster_id`.
    #[param(pattern = r"^[a-z0-9][a-z0-9-]{0,63}$", example = "default")]
    pub cluster: String,
}

/// The topic named in a path.
#[derive(Debug, Deserialize)]
pub struct TopicPath {
    /// Topic name.
    pub name: String,
}

/// The consumer group named in a path.
#[derive(Debug, Deserialize)]
pub struct GroupPath {
    /// Group id.
    pub id: String,
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::NotFound(what) => ApiError::KafkaNotFound(what),
            AdminError::AlreadyExists(what) => ApiError::Conflict {
                code: "already_exists",
                detail: format!("{what} already exists"),
            },
            AdminError::Invalid(why) => ApiError::KafkaInvalid(why),
            AdminError::Conflict(why) => ApiError::Conflict {
                code: "conflict",
                detail: why,
            },
            AdminError::Unsupported(why) => ApiError::KafkaUnsupported(why),
            AdminError::Unavailable(cause) => {
                // Admin requests that time out may still take effect on the cluster.
                ApiError::write_outcome_unknown("admin request", &cause)
            }
            AdminError::Kafka(cause) => {
                ApiError::Internal(anyhow::anyhow!("kafka admin error: {cause}"))
            }
        }
    }
}

impl From<BrokerError> for ApiError {
    fn from(error: BrokerError) -> Self {
        match error {
            BrokerError::NotConfigured => ApiError::Conflict {
                code: "local_broker_not_configured",
                detail: error.to_string(),
            },
            BrokerError::NoBrokerTemplate(_) => {
                ApiError::Validation(vec![FieldError::new("template_id", error.to_string())])
            }
            BrokerError::NoFreePort => ApiError::Conflict {
                code: "conflict",
                detail: error.to_string(),
            },
            BrokerError::WrongState(detail) => ApiError::Conflict {
                code: "local_broker_state",
                detail,
            },
            BrokerError::Failed(cause) => {
                ApiError::Internal(anyhow::anyhow!("local broker: {cause}"))
            }
        }
    }
}

/// What an admin change did, for its audit record.
fn audit_details(details: Value) -> Extension<AuditDetails> {
    Extension(AuditDetails(details))
}

/// What is wrong with the id, name and description of a registry entry (a cluster or a
/// template).
pub(super) fn entry_errors(id: &str, name: &str, description: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !valid_cluster_id(id) {
        errors.push(FieldError::new(
            "id",
            "1 to 64 of a-z, 0-9 and '-', not starting with '-'",
        ));
    }
    let text_ok =
        |t: &str, max: usize| t.chars().count() <= max && !t.chars().any(char::is_control);
    if name.trim().is_empty() || !text_ok(name, 128) {
        errors.push(FieldError::new(
            "name",
            "1 to 128 characters, no control characters",
        ));
    }
    if !text_ok(description, 1024) {
        errors.push(FieldError::new(
            "description",
            "up to 1024 characters, no control characters",
        ));
    }
    errors
}

/// An id from a name: lower case, runs of other characters as one '-'.
pub(super) fn id_from(name: &str) -> String {
    let mut id = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            id.push(c);
        } else if !id.ends_with('-') && !id.is_empty() {
            id.push('-');
        }
    }
    id.trim_end_matches('-')
        .chars()
        .take(64)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}
