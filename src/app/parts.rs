//! The service's parts, each built from its own settings: the Kafka clients, the orders
//! (status view, projector, intake, live streams), access control, and cluster management
//! (registry, templates, operations, local clusters, and the reader of their compacted
//! topics).

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::clusters::broker::LocalBroker;
use crate::clusters::local::LocalClusters;
use crate::clusters::operations::Operations;
use crate::clusters::options::OptionPolicy;
use crate::clusters::registry::{Clients, RegistryStore};
use crate::clusters::templates::Templates;
use crate::clusters::{
    ClusterRegistry, ClusterSettings, ClustersParts, ClustersState, MessageLimits,
};
use crate::config::Settings;
use crate::config::reference;
use crate::http::audit::AuditLog;
use crate::http::auth::{AccessControl, AuthMode};
use crate::kafka::ConsumerOptions;
use crate::kafka::admin::KafkaAdmin;
use crate::kafka::producer::ProducerOptions;
use crate::kafka::table::TableReader;
use crate::kafka::topics::TopicSpec;
use crate::kafka::{BaseProducer, ClientSettings};
use crate::metrics::Metrics;
use crate::orders::OrderEvent;
use crate::orders::idempotency::IdempotencyStore;
use crate::orders::live::LiveStreams;
use crate::orders::processor::ProcessingRules;
use crate::orders::projector::Projector;
use crate::orders::{Intake, OrderRules, OrderStore, OrdersParts, OrdersState};
use crate::schemas::registry::{Registries, Registry};
use crate::schemas::remote::RemoteRegistry;
use crate::schemas::routes::{SchemasParts, SchemasState};
use crate::schemas::store::SchemaStore;

/// The home cluster's clients, shared by every part.
pub(super) struct Kafka {
    pub client: ClientSettings,
    /// One producer (one connection) for every record the service writes.
    pub producer: BaseProducer<OrderEvent>,
    pub admin: KafkaAdmin,
    /// The service's own topics, for readiness and their upkeep.
    pub topic_names: Arc<Vec<String>>,
    /// The schemas the service's records are written with, in the wire format.
    pub wire: Arc<crate::kafka::wire::TopicSchemas>,
}

impl Kafka {
    /// The clients of `[kafka]` and `[producer]`; a bad option is named.
    pub fn connect(settings: &Settings, metrics: &Arc<Metrics>) -> anyhow::Result<Kafka> {
        let client = client_settings(settings);
        client
            .check()
            .map_err(|reason| anyhow::anyhow!("Invalid [kafka.librdkafka] options: {reason}"))?;
        let p = &settings.producer;
        let producer = BaseProducer::new(
            &client,
            &ProducerOptions {
                delivery_timeout: p.delivery_timeout,
                queue_max_messages: p.queue_max_messages,
                linger: p.linger,
                compression: p.compression.clone(),
                statistics_interval: p.statistics_interval,
                metrics: Some(metrics.producer.clone()),
            },
        )
        .map_err(|e| {
            let reason = client.redact(&e.to_string());
            // Name the setting that is wrong: the producer's own, or the raw options.
            let setting = if reason.contains("compression") {
                "producer.compression (and any compression option in [kafka.librdkafka])"
            } else {
                "[kafka.librdkafka] and [producer]"
            };
            anyhow::anyhow!("Failed to create the Kafka producer (check {setting}): {reason}")
        })?;
        let admin = KafkaAdmin::new(
            client.clone(),
            settings.kafka.admin_timeout,
            settings.admin.limits(),
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "Failed to create the Kafka admin client: {}",
                client.redact(&e.to_string())
            )
        })?;
        let topic_names = Arc::new(topic_specs(settings).into_iter().map(|t| t.name).collect());
        Ok(Kafka {
            client,
            producer,
            admin,
            topic_names,
            wire: Arc::default(),
        })
    }
}

/// The orders' parts.
pub(super) struct Orders {
    pub store: Arc<OrderStore>,
    pub projector: Arc<Projector>,
    pub intake: Arc<Intake>,
    pub live: Arc<LiveStreams>,
}

impl Orders {
    /// The status view (opened from `[status_view]`), its projector, intake and the live
    /// streams.
    pub fn build(
        settings: &Settings,
        kafka: &Kafka,
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<Orders> {
        let rules = OrderRules::from_settings(&settings.orders)
            .map_err(|why| anyhow::anyhow!("invalid configuration: orders.currencies: {why}"))?;
        let store = OrderStore::open(&settings.status_view).with_context(|| {
            format!(
                "Failed to open the status view at {} (status_view.path)",
                settings.status_view.path
            )
        })?;
        let projector = Projector::new(
            settings,
            kafka.client.clone(),
            store.clone(),
            metrics.clone(),
        );
        let intake = Arc::new(Intake {
            producer: kafka.producer.clone(),
            store: store.clone(),
            orders_topic: settings.topics.orders.name.clone(),
            rules,
            max_bulk: settings.orders.max_bulk,
            idempotency: IdempotencyStore::new(settings.idempotency.capacity),
            metrics: metrics.clone(),
            retry_after: settings.http.retry_after,
            schemas: kafka.wire.clone(),
        });
        let live = Arc::new(LiveStreams::new(
            settings.status_view.max_live_streams,
            settings.status_view.live_keep_alive,
            settings.http.retry_after,
        ));
        Ok(Orders {
            store,
            projector,
            intake,
            live,
        })
    }

    /// What the orders' routes use.
    pub fn routes(
        &self,
        settings: &Settings,
        metrics: &Arc<Metrics>,
        access: &Arc<AccessControl>,
        shutdown: &CancellationToken,
    ) -> OrdersState {
        OrdersState::new(OrdersParts {
            orders: self.intake.clone(),
            store: self.store.clone(),
            live: self.live.clone(),
            metrics: metrics.clone(),
            access: access.clone(),
            max_wait: settings.status_view.max_wait,
            shutdown: shutdown.clone(),
        })
    }

    /// Processing's business rules (`[processing.rules]`).
    pub fn processing_rules(settings: &Settings) -> anyhow::Result<ProcessingRules> {
        let rules = &settings.processing.rules;
        Ok(ProcessingRules {
            max_order_total: settings
                .max_order_total()
                .context("processing.rules.max_order_total")?,
            max_quantity_per_line: rules.max_quantity_per_line,
            blocked_customers: rules.blocked_customers.iter().cloned().collect(),
        })
    }
}

/// API keys, rate limits and the audit log (`[auth]`).
pub(super) fn access_control(
    settings: &Settings,
    kafka: &Kafka,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Arc<AccessControl>> {
    let audit = AuditLog::new(
        kafka.producer.with_type(),
        settings.topics.audit.name.clone(),
        metrics.audit_records.clone(),
        settings.auth.audit_refusal_window,
    );
    let access = AccessControl::new(
        &settings.auth,
        audit,
        metrics.access_refusals.clone(),
        &settings.kafka.cluster_id,
    )
    .map_err(|reason| anyhow::anyhow!("Invalid access control settings: {reason}"))?;
    if access.mode() == AuthMode::Open {
        tracing::warn!(
            "auth.mode is \"open\": every route is reachable without an API key; set \
             auth.mode = \"keys\" before exposing this service"
        );
    } else {
        tracing::info!(keys = access.key_count(), "API keys required");
    }
    Ok(Arc::new(access))
}

/// Cluster management's parts.
pub(super) struct Clusters {
    /// Reads the service's compacted topics (registry, templates, operations) with one
    /// consumer.
    pub tables: Arc<TableReader>,
    pub registry: Arc<ClusterRegistry>,
    pub operations: Arc<Operations>,
    pub templates: Arc<Templates>,
    pub local_clusters: Arc<LocalClusters>,
    pub local_broker: Arc<LocalBroker>,
}

impl Clusters {
    /// The registry (the home cluster, `[clusters.*]` and the run-time entries), templates,
    /// operations and local clusters.
    pub fn build(
        settings: &Settings,
        kafka: &Kafka,
        tables: Arc<TableReader>,
        schemas: &Schemas,
    ) -> anyhow::Result<Clusters> {
        let t = &settings.topics;
        let timeout = settings.kafka.admin_timeout;
        let home = ClusterSettings {
            name: "home".into(),
            description: "the cluster this service runs its orders on".into(),
            environment: "home".into(),
            tags: vec![],
            bootstrap_servers: settings.kafka.bootstrap_servers.clone(),
            librdkafka: Default::default(),
            template_id: None,
            local: None,
            schema_registry: None,
        };
        let home_clients = Clients {
            admin: kafka.admin.clone(),
            producer: kafka.producer.with_type(),
        };
        let registry = ClusterRegistry::new(
            &settings.kafka.cluster_id,
            (home, home_clients),
            &settings.clusters,
            timeout,
            settings.admin.limits(),
            settings.producer.delivery_timeout,
            RegistryStore {
                topic: t.clusters.name.clone(),
                reader: tables.clone(),
                writer: kafka.producer.with_type(),
            },
            OptionPolicy::from(&settings.admin),
            schemas.registries.clone(),
        )
        .map_err(|reason| anyhow::anyhow!("Invalid cluster settings: {reason}"))?;
        let operations = Operations::new(
            t.operations.name.clone(),
            tables.clone(),
            kafka.producer.with_type(),
            timeout,
            (
                settings.admin.max_running_operations,
                settings.admin.max_pending_operations,
            ),
        );
        let templates = Templates::new(
            t.templates.name.clone(),
            tables.clone(),
            kafka.producer.with_type(),
            timeout,
        );
        Ok(Clusters {
            tables,
            registry: Arc::new(registry),
            operations: Arc::new(operations),
            templates: Arc::new(templates),
            local_clusters: Arc::new(LocalClusters::new(settings.local_broker.clone())),
            local_broker: Arc::new(LocalBroker::new(settings.local_broker.clone())),
        })
    }

    /// What the cluster management routes use.
    pub fn routes(
        &self,
        settings: &Settings,
        kafka: &Kafka,
        shutdown: &CancellationToken,
    ) -> ClustersState {
        let t = &settings.topics;
        ClustersState::new(ClustersParts {
            clusters: self.registry.clone(),
            operations: self.operations.clone(),
            templates: self.templates.clone(),
            local_clusters: self.local_clusters.clone(),
            local_broker: self.local_broker.clone(),
            topic_names: kafka.topic_names.clone(),
            control_topics: [
                &t.audit,
                &t.clusters,
                &t.operations,
                &t.templates,
                &t.schemas,
            ]
            .iter()
            .map(|topic| topic.name.clone())
            .collect(),
            shutdown: shutdown.clone(),
            messages: MessageLimits::new(&settings.admin, settings.http.retry_after),
        })
    }

    /// Hands each record of the compacted topics to its table (the schema registry's to
    /// the built-in registry, when it is the one in use).
    pub fn apply_tables(
        &self,
        settings: &Settings,
        schemas: Option<Arc<SchemaStore>>,
    ) -> Arc<crate::kafka::table::Apply> {
        let (registry, templates, operations) = (
            self.registry.clone(),
            self.templates.clone(),
            self.operations.clone(),
        );
        let t = &settings.topics;
        let (clusters_topic, templates_topic, operations_topic) = (
            t.clusters.name.clone(),
            t.templates.name.clone(),
            t.operations.name.clone(),
        );
        Arc::new(move |topic: &str, id: &str, value: Option<&[u8]>| {
            if topic == clusters_topic {
                registry.apply(id, value);
            } else if topic == templates_topic {
                templates.apply(id, value);
            } else if topic == operations_topic {
                operations.apply(id, value);
            } else if let Some(store) = &schemas {
                store.apply(id, value);
            }
        })
    }
}

/// The reader of the service's compacted topics (cluster registry, templates, operations,
/// schema registry): one consumer for all.
pub(super) fn tables(settings: &Settings, kafka: &Kafka) -> Arc<TableReader> {
    let t = &settings.topics;
    TableReader::new(
        kafka.client.clone(),
        vec![
            t.clusters.name.clone(),
            t.templates.name.clone(),
            t.operations.name.clone(),
            t.schemas.name.clone(),
        ],
        settings.kafka.admin_timeout,
        settings.processing.fetch_wait_max,
    )
}

/// The schema registry's parts.
pub(super) struct Schemas {
    /// The built-in registry, unless an external one is configured.
    pub store: Option<Arc<SchemaStore>>,
    /// The service's registry, and clients of the ones other clusters name.
    pub registries: Arc<Registries>,
}

impl Schemas {
    /// The built-in registry on `topics.schemas` (read by `tables`), or a client of
    /// `[schema_registry] url`.
    pub fn build(
        settings: &Settings,
        kafka: &Kafka,
        tables: &Arc<TableReader>,
    ) -> anyhow::Result<Schemas> {
        let r = &settings.schema_registry;
        let (store, home) = if r.url.is_empty() {
            let store = Arc::new(SchemaStore::new(
                settings.topics.schemas.name.clone(),
                tables.clone(),
                kafka.producer.with_type(),
                settings.kafka.admin_timeout,
            ));
            (Some(store.clone()), Registry::Builtin(store))
        } else {
            let secret = |option: &str, value: &str| -> anyhow::Result<String> {
                match reference(value) {
                    None => Ok(value.to_string()),
                    Some(name) => std::env::var(name).map_err(|_| {
                        anyhow::anyhow!("{option} names ${{{name}}}, which is not set")
                    }),
                }
            };
            let user = secret("schema_registry.username", &r.username)?;
            let password = secret("schema_registry.password", &r.password)?;
            let credentials =
                (!user.is_empty() || !password.is_empty()).then_some((user, password));
            let remote = RemoteRegistry::new(&r.url, credentials, r.request_timeout)
                .map_err(|why| anyhow::anyhow!("schema_registry.url: {why}"))?;
            (None, Registry::Remote(Arc::new(remote)))
        };
        Ok(Schemas {
            store,
            registries: Arc::new(Registries::new(home, r.request_timeout)),
        })
    }

    /// What the registry routes use.
    pub fn routes(&self, settings: &Settings) -> SchemasState {
        let url = &settings.schema_registry.url;
        SchemasState::new(SchemasParts {
            store: self.store.clone(),
            external: (!url.is_empty()).then(|| url.clone()),
            retry_after: settings.http.retry_after,
        })
    }
}

/// Client settings for every Kafka client of this service.
pub fn client_settings(settings: &Settings) -> ClientSettings {
    ClientSettings {
        bootstrap_servers: settings.kafka.bootstrap_servers.clone(),
        client_id: settings.kafka.client_id.clone(),
        librdkafka: settings.kafka.librdkafka.clone(),
    }
}

/// The service's own topics as configured: orders, status, dead letters and audit.
pub fn topic_specs(settings: &Settings) -> Vec<TopicSpec> {
    let t = &settings.topics;
    let spec = |topic: &crate::config::TopicSettings, mut configs: Vec<(String, String)>| {
        if let Some(retention) = topic.retention_ms {
            configs.push(("retention.ms".into(), retention.to_string()));
        }
        TopicSpec {
            name: topic.name.clone(),
            partitions: topic.partitions,
            replication: t.replication_factor,
            configs,
        }
    };
    vec![
        spec(&t.orders, vec![]),
        spec(&t.status, vec![("cleanup.policy".into(), "compact".into())]),
        spec(&t.dlq, vec![]),
        spec(&t.audit, vec![]),
        spec(&t.clusters, compacted()),
        spec(&t.operations, compacted()),
        spec(&t.templates, compacted()),
        spec(&t.schemas, compacted()),
    ]
}

fn compacted() -> Vec<(String, String)> {
    vec![("cleanup.policy".into(), "compact".into())]
}

/// The processing group's consumer options.
pub fn consumer_options(settings: &Settings) -> ConsumerOptions {
    let p = &settings.processing;
    ConsumerOptions {
        group_id: p.group_id.clone(),
        topics: vec![settings.topics.orders.name.clone()],
        dead_letter_topic: settings.topics.dlq.name.clone(),
        max_attempts: p.max_attempts,
        retry_backoff: p.retry_backoff,
        retry_backoff_max: p.retry_backoff_max,
        max_in_flight: p.max_in_flight,
        commit_interval: p.commit_interval,
        session_timeout: p.session_timeout,
        statistics_interval: p.statistics_interval,
        fetch_wait_max: p.fetch_wait_max,
        offset_reset: p.offset_reset.clone(),
    }
}
