//! The cluster registry. The home cluster (`[kafka]`, id `kafka.cluster_id`) is always there
//! and cannot be removed; more come from `[clusters.<id>]`. A cluster's Kafka clients are
//! made on its first use and reused after. Secret librdkafka options may be given as
//! `${ENV_NAME}` references, resolved from this instance's environment when connecting, so
//! the secret itself need not sit in a file; a reference to a variable that is not set stops
//! the start, naming the option.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::config::clusters::{ClusterSettings, LocalCluster};

use super::health::CHECK_TIMEOUT;
use super::options::OptionPolicy;
use crate::config::resolve_references;
use crate::kafka::admin::{AdminError, AdminLimits, KafkaAdmin};
use crate::kafka::producer::ProducerOptions;
use crate::kafka::table::{Row, Table, TableReader};
use crate::kafka::{BaseProducer, ClientSettings, is_secret_option};
use crate::schemas::registry::{Registries, Registry};

/// One cluster of the registry, with its clients once made.
pub struct RegisteredCluster {
    /// Its id in paths (`/api/clusters/{id}/…`).
    pub id: String,
    /// What the registry knows of it.
    pub settings: ClusterSettings,
    /// Whether this is the cluster the service runs on.
    pub home: bool,
    /// Where the entry comes from.
    pub source: Source,
    clients: Mutex<Option<Clients>>,
    pub(super) status: Mutex<ClusterStatus>,
    /// The Kafka cluster id its brokers report, once learned: what the cluster *is*,
    /// whatever id it was registered under. A changed definition is a new entry, so this is
    /// never stale for the connection it was learned from.
    pub(super) identity: std::sync::OnceLock<String>,
}

/// Where a registry entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `[kafka]`: the cluster the service runs on.
    Home,
    /// `[clusters.<id>]` in config.
    Config,
    /// Registered at run time (`POST /api/clusters`), kept on the registry topic.
    Registered,
}

/// A run-time registration as the registry topic holds it (keyed by the cluster id; a
/// tombstone removes it). Secret options are `${ENV_NAME}` references, never values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredCluster {
    /// What was registered.
    pub settings: ClusterSettings,
    /// When it was registered or last changed.
    pub changed_at: chrono::DateTime<chrono::Utc>,
}

/// A cluster's health, from the periodic check.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ClusterStatus {
    /// Whether the last check got metadata with brokers back.
    pub reachable: bool,
    /// Brokers in the last metadata.
    pub brokers: usize,
    /// The controller's id, when known.
    pub controller_id: Option<i32>,
    /// Round trip of the last metadata request, in milliseconds.
    pub metadata_rtt_ms: Option<f64>,
    /// When it was checked; absent before the first check.
    pub checked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why it is unreachable, in words safe to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RegisteredCluster {
    fn new(id: &str, settings: ClusterSettings, source: Source, clients: Option<Clients>) -> Self {
        RegisteredCluster {
            id: id.to_string(),
            settings,
            home: source == Source::Home,
            source,
            clients: Mutex::new(clients),
            status: Mutex::new(ClusterStatus::default()),
            identity: std::sync::OnceLock::new(),
        }
    }

    /// Closes its clients (off the async runtime: closing blocks).
    fn close(&self) {
        let clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(clients) = clients
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn_blocking(move || drop(clients));
        }
    }

    /// The last health check's result.
    pub fn status(&self) -> ClusterStatus {
        self.status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Row for Arc<RegisteredCluster> {
    type Record = StoredCluster;

    fn from_record(id: &str, stored: StoredCluster) -> Option<Self> {
        if !valid_cluster_id(id) {
            tracing::warn!(cluster = id, "registry record with an unusable id ignored");
            return None;
        }
        Some(Arc::new(RegisteredCluster::new(
            id,
            stored.settings,
            Source::Registered,
            None,
        )))
    }

    fn retired(&self) {
        self.close();
    }
}

/// A cluster's clients.
#[derive(Clone)]
pub struct Clients {
    /// Management requests.
    pub admin: KafkaAdmin,
    /// Records written through the management API.
    pub producer: BaseProducer<Value>,
}

/// Every cluster this instance manages.
pub struct ClusterRegistry {
    home_id: String,
    /// The home cluster and those of config: fixed for the process's life.
    configured: BTreeMap<String, Arc<RegisteredCluster>>,
    /// Those registered at run time, from the registry topic.
    registered: Table<Arc<RegisteredCluster>>,
    client_id: String,
    timeout: Duration,
    limits: AdminLimits,
    delivery_timeout: Duration,
    policy: OptionPolicy,
    /// The service's schema registry and clients of the ones clusters name.
    schemas: Arc<Registries>,
}

/// Where run-time registrations live: a compacted topic on the home cluster, read by every
/// instance.
pub struct RegistryStore {
    /// The registry topic.
    pub topic: String,
    /// Reads it into the registry.
    pub reader: Arc<TableReader>,
    /// Writes registrations and removals.
    pub writer: BaseProducer<StoredCluster>,
}

/// Why a registry change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The id is taken.
    #[error("cluster {0:?} exists already")]
    Taken(String),
    /// No cluster has this id.
    #[error("no cluster {0:?} is registered")]
    NotFound(String),
    /// The entry comes from config (or is the home cluster) and cannot change here.
    #[error("{0}")]
    Configured(String),
    /// Kafka did not take the change.
    #[error("kafka unavailable: {0}")]
    Unavailable(String),
}

/// Whether `id` can name a cluster in a path: 1 to 64 of `[a-z0-9-]`, starting with a
/// letter or digit.
pub fn valid_cluster_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
}

/// Whether an option value is a reference rather than a literal secret.
pub fn is_reference(value: &str) -> bool {
    value.starts_with("${") && value.ends_with('}') && value.len() > 3
}

impl ClusterRegistry {
    /// The registry: the home cluster with its existing clients, and the configured ones.
    pub fn new(
        home_id: &str,
        home: (ClusterSettings, Clients),
        configured: &BTreeMap<String, ClusterSettings>,
        timeout: Duration,
        limits: AdminLimits,
        delivery_timeout: Duration,
        store: RegistryStore,
        policy: OptionPolicy,
        schemas: Arc<Registries>,
    ) -> Result<Self, String> {
        if !valid_cluster_id(home_id) {
            return Err(format!(
                "kafka.cluster_id {home_id:?} must be 1 to 64 of a-z, 0-9 and '-'"
            ));
        }
        let (home_settings, home_clients) = home;
        let mut clusters = BTreeMap::new();
        clusters.insert(
            home_id.to_string(),
            Arc::new(RegisteredCluster::new(
                home_id,
                home_settings,
                Source::Home,
                Some(home_clients),
            )),
        );
        for (id, settings) in configured {
            if !valid_cluster_id(id) {
                return Err(format!(
                    "clusters.{id}: an id is 1 to 64 of a-z, 0-9 and '-'"
                ));
            }
            if id == home_id {
                return Err(format!(
                    "clusters.{id}: {id} is the home cluster's id (kafka.cluster_id)"
                ));
            }
            resolve_references(&settings.librdkafka)
                .map_err(|why| format!("clusters.{id}.librdkafka: {why}"))?;
            clusters.insert(
                id.clone(),
                Arc::new(RegisteredCluster::new(
                    id,
                    settings.clone(),
                    Source::Config,
                    None,
                )),
            );
        }
        Ok(ClusterRegistry {
            home_id: home_id.to_string(),
            configured: clusters,
            registered: Table::new("cluster", store.topic, store.reader, store.writer, timeout),
            client_id: "orderflow".into(),
            timeout,
            limits,
            delivery_timeout,
            policy,
            schemas,
        })
    }

    /// The schema registry of a cluster's records: the one its definition names (held to
    /// the operator's policy when it came from the API), else, for the Kafka cluster the
    /// service runs on (`is_home`, judged by what the cluster is), the service's own; `None`
    /// when it has none. The error says why the named one cannot be used.
    pub fn schema_registry(
        &self,
        cluster: &RegisteredCluster,
        is_home: bool,
    ) -> Result<Option<Registry>, String> {
        match &cluster.settings.schema_registry {
            Some(endpoint) => {
                let limited = cluster.source == Source::Registered;
                let (url, credentials) = self.policy.registry(endpoint, limited)?;
                self.schemas.remote(&url, credentials).map(Some)
            }
            None if is_home => Ok(Some(self.schemas.home().clone())),
            None => Ok(None),
        }
    }

    /// Whether `cluster` reaches the Kafka cluster the service runs on.
    pub async fn is_home(&self, cluster: &RegisteredCluster) -> Result<bool, AdminError> {
        Ok(cluster.home || self.home_identity().await? == self.identity(cluster).await?)
    }

    /// Whether every run-time registration made before this instance started is known.
    pub fn is_caught_up(&self) -> bool {
        self.registered.is_caught_up()
    }

    /// Registers a cluster (or changes a registered one): writes it to the registry topic
    /// and waits until this instance has read it back.
    pub async fn register(
        &self,
        id: &str,
        settings: ClusterSettings,
        replace: bool,
    ) -> Result<(), RegistryError> {
        match (self.get(id), replace) {
            (Some(_), false) => return Err(RegistryError::Taken(id.into())),
            (None, true) => return Err(RegistryError::NotFound(id.into())),
            (Some(existing), true) if existing.source != Source::Registered => {
                return Err(RegistryError::Configured(configured(&existing)));
            }
            _ => {}
        }
        let stored = StoredCluster {
            settings,
            changed_at: chrono::Utc::now(),
        };
        self.registered
            .put(id, &stored)
            .await
            .map_err(|e| RegistryError::Unavailable(e.to_string()))
    }

    /// Removes a registered cluster: a tombstone on the registry topic.
    pub async fn remove(&self, id: &str) -> Result<(), RegistryError> {
        let existing = self
            .get(id)
            .ok_or_else(|| RegistryError::NotFound(id.into()))?;
        if existing.source != Source::Registered {
            return Err(RegistryError::Configured(configured(&existing)));
        }
        self.registered
            .delete(id)
            .await
            .map_err(|e| RegistryError::Unavailable(e.to_string()))
    }

    /// The home cluster's id.
    pub fn home_id(&self) -> &str {
        &self.home_id
    }

    /// The cluster with this id.
    pub fn get(&self, id: &str) -> Option<Arc<RegisteredCluster>> {
        self.configured
            .get(id)
            .cloned()
            .or_else(|| self.registered.get(id))
    }

    /// Every cluster, home first then by id.
    pub fn list(&self) -> Vec<Arc<RegisteredCluster>> {
        let mut list: Vec<_> = self
            .configured
            .values()
            .cloned()
            .chain(self.registered.rows())
            .collect();
        list.sort_by_key(|c| (!c.home, c.id.clone()));
        list
    }

    /// Applies one record of the registry topic: a registration, a change, or (`None`) a
    /// removal. Entries of the home cluster and of config are never replaced from Kafka.
    pub fn apply(&self, id: &str, value: Option<&[u8]>) {
        if self.configured.contains_key(id) {
            tracing::warn!(
                cluster = id,
                "registry record for a configured cluster ignored"
            );
            return;
        }
        self.registered.apply(id, value);
    }

    /// The cluster's clients, made on first use.
    pub fn clients(&self, cluster: &RegisteredCluster) -> Result<Clients, AdminError> {
        let mut slot = cluster
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(clients) = slot.as_ref() {
            return Ok(clients.clone());
        }
        // A reference this instance cannot resolve makes the cluster unreachable from here
        // (its status says why); it is not the request's fault, so not a 4xx.
        let librdkafka = self.options_for(cluster).map_err(|why| {
            AdminError::Unavailable(format!("cluster {}: {why} on this instance", cluster.id))
        })?;
        let client = ClientSettings {
            bootstrap_servers: cluster.settings.bootstrap_servers.clone(),
            client_id: self.client_id.clone(),
            librdkafka,
        };
        let failed = |e: rdkafka::error::KafkaError| {
            AdminError::Invalid(format!(
                "cluster {}: cannot make a client: {}",
                cluster.id,
                client.redact(&e.to_string())
            ))
        };
        let admin = KafkaAdmin::new(client.clone(), self.timeout, self.limits).map_err(failed)?;
        let producer = BaseProducer::new(
            &client,
            &ProducerOptions {
                delivery_timeout: self.delivery_timeout,
                queue_max_messages: 100_000,
                linger: Duration::from_millis(5),
                compression: "none".into(),
                statistics_interval: Duration::ZERO,
                metrics: None,
            },
        )
        .map_err(failed)?;
        let clients = Clients { admin, producer };
        *slot = Some(clients.clone());
        Ok(clients)
    }
}

impl ClusterRegistry {
    /// The options a cluster's clients are made with: a registered cluster's through the
    /// operator's [`OptionPolicy`] (checked again here, so an entry written to the registry
    /// topic by other means is held to it too), a configured one's as the operator wrote them.
    pub(super) fn options_for(
        &self,
        cluster: &RegisteredCluster,
    ) -> Result<BTreeMap<String, String>, String> {
        match cluster.source {
            Source::Registered => self.policy.apply(&cluster.settings.librdkafka),
            Source::Home | Source::Config => resolve_references(&cluster.settings.librdkafka),
        }
    }

    /// What a definition from the API may not set, with why.
    pub fn policy(&self) -> &OptionPolicy {
        &self.policy
    }

    /// The Kafka cluster id of a cluster, asked of its brokers once and kept.
    pub async fn identity(&self, cluster: &RegisteredCluster) -> Result<String, AdminError> {
        if let Some(id) = cluster.identity.get() {
            return Ok(id.clone());
        }
        let clients = self.clients(cluster)?;
        let id = clients.admin.cluster_id().await?;
        Ok(cluster.identity.get_or_init(|| id).clone())
    }

    /// The home cluster's Kafka cluster id.
    pub async fn home_identity(&self) -> Result<String, AdminError> {
        let home = self
            .get(&self.home_id)
            .ok_or_else(|| AdminError::Kafka("the home cluster is not in the registry".into()))?;
        self.identity(&home).await
    }

    /// The ids of the entries known to reach the Kafka cluster `identity` (the home cluster's
    /// is always known once asked; the others' from their health checks or their use).
    pub fn aliases(&self, identity: &str) -> Vec<String> {
        self.list()
            .iter()
            .filter(|c| c.identity.get().is_some_and(|i| i == identity))
            .map(|c| c.id.clone())
            .collect()
    }

    /// The Kafka cluster id behind `bootstrap_servers` with these options, asked with a
    /// client made for the purpose (for a definition not registered yet); `None` when its
    /// brokers do not answer in time.
    pub async fn probe_identity(
        &self,
        bootstrap_servers: &str,
        librdkafka: &BTreeMap<String, String>,
    ) -> Option<String> {
        let librdkafka = self.policy.apply(librdkafka).ok()?;
        let client = ClientSettings {
            bootstrap_servers: bootstrap_servers.to_string(),
            client_id: self.client_id.clone(),
            librdkafka,
        };
        let admin = KafkaAdmin::new(client, CHECK_TIMEOUT, self.limits).ok()?;
        let id = admin.cluster_id().await.ok();
        tokio::task::spawn_blocking(move || drop(admin)).await.ok();
        id
    }
}

fn configured(cluster: &RegisteredCluster) -> String {
    match cluster.source {
        Source::Home => format!(
            "{} is the home cluster, configured in [kafka]; it cannot be changed or removed here",
            cluster.id
        ),
        _ => format!(
            "{} is defined in config ([clusters.{}]); change it there",
            cluster.id, cluster.id
        ),
    }
}

/// Option names whose values must be references, never literals, when a cluster is
/// registered at run time.
pub fn literal_secrets(options: &BTreeMap<String, String>) -> Vec<String> {
    options
        .iter()
        .filter(|(name, value)| is_secret_option(name) && !is_reference(value))
        .map(|(name, _)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_from_the_environment_and_a_missing_one_is_named() {
        // SAFETY: a variable only this test reads.
        unsafe { std::env::set_var("ORDERFLOW_TEST_CLUSTER_SECRET", "s3cret") };
        let options = BTreeMap::from([
            (
                "sasl.password".to_string(),
                "${ORDERFLOW_TEST_CLUSTER_SECRET}".to_string(),
            ),
            ("security.protocol".to_string(), "SASL_SSL".to_string()),
        ]);
        let resolved = resolve_references(&options).unwrap();
        assert_eq!(resolved["sasl.password"], "s3cret");
        assert_eq!(resolved["security.protocol"], "SASL_SSL");
        let missing = BTreeMap::from([(
            "sasl.password".to_string(),
            "${NOT_SET_ANYWHERE_X}".to_string(),
        )]);
        assert!(
            resolve_references(&missing)
                .unwrap_err()
                .contains("NOT_SET_ANYWHERE_X")
        );
        assert!(literal_secrets(&options).is_empty());
        let literal = BTreeMap::from([("sasl.password".to_string(), "hunter2".to_string())]);
        assert_eq!(literal_secrets(&literal), vec!["sasl.password".to_string()]);
    }

    #[test]
    fn cluster_ids_are_path_safe() {
        assert!(valid_cluster_id("dev-1"));
        for bad in ["", "Dev", "a/b", "-x", "a b", &"x".repeat(65)] {
            assert!(!valid_cluster_id(bad), "{bad:?}");
        }
    }
}
