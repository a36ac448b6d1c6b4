//! Each cluster's health: checked every [`CHECK_INTERVAL`], and at once when a request asks
//! for one cluster; the Kafka cluster id learned on the way.

use std::sync::Arc;
use std::time::Duration;

use super::registry::{ClusterRegistry, ClusterStatus, RegisteredCluster};
use crate::kafka::admin::AdminError;

/// How long one health check may take.
pub(super) const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

impl ClusterRegistry {
    /// Checks one cluster now and keeps the result.
    pub async fn check(&self, cluster: &RegisteredCluster) -> ClusterStatus {
        let status = match self.options_for(cluster) {
            // A reference this instance cannot resolve: say which, without asking a broker.
            Err(why) => ClusterStatus {
                checked_at: Some(chrono::Utc::now()),
                error: Some(why),
                ..ClusterStatus::default()
            },
            Ok(_) => self.ask(cluster).await,
        };
        *cluster
            .status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = status.clone();
        status
    }

    /// Asks the cluster for its metadata, within [`CHECK_TIMEOUT`].
    async fn ask(&self, cluster: &RegisteredCluster) -> ClusterStatus {
        let checked = match self.clients(cluster) {
            Ok(clients) => tokio::time::timeout(CHECK_TIMEOUT, clients.admin.cluster()).await,
            Err(error) => Ok(Err(error)),
        };
        match checked {
            Ok(Ok(info)) => {
                if let Some(id) = info.cluster_id.clone() {
                    let _ = cluster.identity.set(id);
                }
                ClusterStatus {
                    reachable: !info.brokers.is_empty(),
                    brokers: info.brokers.len(),
                    controller_id: info.controller_id,
                    metadata_rtt_ms: Some(info.metadata_rtt_ms),
                    checked_at: Some(chrono::Utc::now()),
                    error: None,
                }
            }
            Ok(Err(error)) => ClusterStatus {
                checked_at: Some(chrono::Utc::now()),
                error: Some(match error {
                    AdminError::Invalid(why) => why,
                    _ => "no metadata from its brokers".into(),
                }),
                ..ClusterStatus::default()
            },
            Err(_) => ClusterStatus {
                checked_at: Some(chrono::Utc::now()),
                error: Some(format!("no answer within {CHECK_TIMEOUT:?}")),
                ..ClusterStatus::default()
            },
        }
    }

    /// Checks every cluster, at once.
    pub async fn check_all(&self) {
        let clusters = self.list();
        futures::future::join_all(clusters.iter().map(|c| self.check(c))).await;
    }
}

/// How often every cluster's health is checked.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(15);

/// Checks every cluster's health until shutdown.
pub async fn keep_checking(
    registry: Arc<ClusterRegistry>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        registry.check_all().await;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(CHECK_INTERVAL) => {}
        }
    }
}
