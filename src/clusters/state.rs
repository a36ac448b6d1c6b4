//! What the cluster management routes share (`/api/admin/…`, `/api/clusters/…`,
//! `/api/operations/…`, `/api/templates/…`): one `Arc`, taken from the application's state
//! by `FromRef`, so the handlers name nothing above their feature.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::ClusterRegistry;
use super::local::LocalClusters;
use super::operations::Operations;
use super::templates::Templates;
use crate::clusters::broker::LocalBroker;

/// The cluster management routes' state.
#[derive(Clone)]
pub struct ClustersState(Arc<ClustersParts>);

impl ClustersState {
    /// Shares `parts` with every cluster management handler.
    pub fn new(parts: ClustersParts) -> Self {
        ClustersState(Arc::new(parts))
    }
}

impl std::ops::Deref for ClustersState {
    type Target = ClustersParts;

    fn deref(&self) -> &ClustersParts {
        &self.0
    }
}

/// What [`ClustersState`] shares.
pub struct ClustersParts {
    /// The clusters this instance manages, the home one first.
    pub clusters: Arc<ClusterRegistry>,
    /// Operations across clusters.
    pub operations: Arc<Operations>,
    /// Cluster templates.
    pub templates: Arc<Templates>,
    /// The brokers of local clusters.
    pub local_clusters: Arc<LocalClusters>,
    /// The home cluster's local development broker.
    pub local_broker: Arc<LocalBroker>,
    /// The service's own topics on the home cluster: never deleted through the API, written
    /// only with `force`.
    pub topic_names: Arc<Vec<String>>,
    /// Of those, the ones only the service writes (audit, registry, templates, operations).
    pub control_topics: Vec<String>,
    /// Cancelled when the service is stopping (operations stop).
    pub shutdown: CancellationToken,
}
