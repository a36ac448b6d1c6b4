//! Local clusters: a cluster registered with `"local": true` gets a Tansu broker of its own,
//! run by this service — a port from `[local_broker] cluster_port_min..=cluster_port_max`,
//! the folder `<data_dir>/clusters/<id>`, and the storage engine of the cluster's template —
//! started, stopped and looked at through `/api/clusters/{cluster}/start|stop|status`.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::broker::{BrokerError, BrokerStatus, LocalBroker};
use super::registry::{ClusterRegistry, LocalCluster, RegisteredCluster};
use super::templates::Template;
use crate::config::LocalBrokerSettings;

/// The brokers of local clusters, made on first use.
pub struct LocalClusters {
    settings: LocalBrokerSettings,
    brokers: Mutex<HashMap<String, Arc<LocalBroker>>>,
    /// Taken by a start, so that the count of running brokers holds until it is done.
    starting: Mutex<()>,
}

impl LocalClusters {
    /// Local clusters run with the `[local_broker]` command.
    pub fn new(settings: LocalBrokerSettings) -> Self {
        LocalClusters {
            settings,
            brokers: Mutex::new(HashMap::new()),
            starting: Mutex::new(()),
        }
    }

    /// A broker for a new local cluster: a free port of the range and the template's
    /// storage.
    pub fn provision(
        &self,
        registry: &ClusterRegistry,
        template: &Template,
    ) -> Result<LocalCluster, BrokerError> {
        if self.settings.command.trim().is_empty() {
            return Err(BrokerError::NotConfigured);
        }
        let storage = match template.broker.as_ref().map(|b| b.storage.as_str()) {
            Some("memory") => "memory://tansu/",
            Some("sqlite") => "sqlite://tansu.db",
            _ => return Err(BrokerError::NoBrokerTemplate(template.id.clone())),
        };
        let taken: Vec<u16> = registry
            .list()
            .iter()
            .filter_map(|c| c.settings.local.as_ref().map(|l| l.port))
            .collect();
        let port = (self.settings.cluster_port_min..=self.settings.cluster_port_max)
            .find(|p| !taken.contains(p) && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .ok_or(BrokerError::NoFreePort)?;
        Ok(LocalCluster {
            port,
            storage: storage.into(),
        })
    }

    /// The broker of a local cluster.
    pub async fn broker(
        &self,
        cluster: &RegisteredCluster,
    ) -> Result<Arc<LocalBroker>, BrokerError> {
        let Some(local) = &cluster.settings.local else {
            return Err(BrokerError::WrongState(format!(
                "cluster {} is not local: its broker is not run by this service",
                cluster.id
            )));
        };
        let mut brokers = self.brokers.lock().await;
        let broker = brokers.entry(cluster.id.clone()).or_insert_with(|| {
            Arc::new(LocalBroker::new(LocalBrokerSettings {
                port: local.port,
                storage: local.storage.clone(),
                data_dir: std::path::Path::new(&self.settings.data_dir)
                    .join("clusters")
                    .join(&cluster.id)
                    .display()
                    .to_string(),
                kafka_cluster_id: format!("orderflow-local-{}", cluster.id),
                ..self.settings.clone()
            }))
        });
        Ok(broker.clone())
    }

    /// Starts a local cluster's broker, unless `[local_broker] max_clusters` of them run
    /// here already.
    pub async fn start(&self, cluster: &RegisteredCluster) -> Result<BrokerStatus, BrokerError> {
        let broker = self.broker(cluster).await?;
        // Held across the start, so two starts at once cannot both take the last place.
        let _starting = self.starting.lock().await;
        let brokers: Vec<_> = self.brokers.lock().await.values().cloned().collect();
        let mut running = 0;
        for other in brokers {
            if other.status().await.is_ok_and(|s| s.state == "running") {
                running += 1;
            }
        }
        if running >= self.settings.max_clusters {
            return Err(BrokerError::WrongState(format!(
                "{running} local clusters' brokers run on this instance already, the most \
                 [local_broker] max_clusters allows; stop one first"
            )));
        }
        broker.start().await
    }

    /// Stops a removed cluster's broker, if this instance runs it.
    pub async fn forget(&self, id: &str) {
        let broker = self.brokers.lock().await.remove(id);
        if let Some(broker) = broker {
            let _ = broker.stop().await;
        }
    }
}
