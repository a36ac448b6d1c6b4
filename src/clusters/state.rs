//! What the cluster management routes share (`/api/admin/…`, `/api/clusters/…`,
//! `/api/operations/…`, `/api/templates/…`): one `Arc`, taken from the application's state
//! by `FromRef`, so the handlers name nothing above their feature.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::ClusterRegistry;
use super::local::LocalClusters;
use super::operations::Operations;
use super::registry::RegisteredCluster;
use super::templates::Templates;
use crate::clusters::broker::LocalBroker;
use crate::http::error::ApiError;
use crate::schemas::registry::Registry;

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
    /// What message searches and streams may take.
    pub messages: MessageLimits,
}

impl ClustersState {
    /// The schema registry of a cluster's records: the one its definition names, else, for
    /// the Kafka cluster the service runs on, the service's own; `None` when it has none.
    pub fn schema_registry(
        &self,
        cluster: &RegisteredCluster,
        is_home: bool,
    ) -> Result<Option<Registry>, ApiError> {
        self.clusters
            .schema_registry(cluster, is_home)
            .map_err(|why| {
                ApiError::KafkaInvalid(format!(
                    "cluster {}'s schema registry cannot be used: {why}",
                    cluster.id
                ))
            })
    }
}

/// What message searches may read, and the bound on message streams (streamed searches,
/// exports, live tails) open at once on this instance.
pub struct MessageLimits {
    /// `admin.max_scan`.
    pub max_scan: u64,
    /// `admin.scan_budget_ms`.
    pub scan_budget: std::time::Duration,
    /// `admin.stream_budget_ms`.
    pub stream_budget: std::time::Duration,
    /// `[[admin.masking]]`.
    pub masking: super::masking::Masking,
    permits: Arc<tokio::sync::Semaphore>,
    retry_after: std::time::Duration,
}

impl MessageLimits {
    /// From `[admin]`; a refused stream says `Retry-After: retry_after`.
    pub fn new(settings: &crate::config::AdminSettings, retry_after: std::time::Duration) -> Self {
        MessageLimits {
            max_scan: settings.max_scan,
            scan_budget: settings.scan_budget,
            stream_budget: settings.stream_budget,
            masking: super::masking::Masking::new(&settings.masking),
            permits: Arc::new(tokio::sync::Semaphore::new(settings.max_message_streams)),
            retry_after,
        }
    }

    /// A place for one more stream, or `503 overloaded`.
    pub fn open(&self) -> Result<tokio::sync::OwnedSemaphorePermit, crate::http::error::ApiError> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            crate::http::error::ApiError::Overloaded {
                retry_after: self.retry_after,
            }
        })
    }
}
