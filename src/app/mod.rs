//! Wiring: builds every part from [`Settings`], serves HTTP, and shuts down in order —
//! stop accepting, finish in-flight requests, stop background tasks, flush the producer —
//! within the configured grace period.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use axum::Router;

use crate::backoff::{Backoff, sleep_unless_cancelled};
use crate::clusters::operations::Operations;
use crate::clusters::options::OptionPolicy;
use crate::clusters::registry::{Clients, RegistryStore};
use crate::clusters::templates::Templates;
use crate::clusters::{ClusterRegistry, ClusterSettings, ClustersParts, ClustersState};
use crate::config::Settings;
use crate::http::audit::AuditLog;
use crate::http::auth::{AccessControl, AuthMode};
use crate::http::serve::{ServeOptions, serve};
mod catalog;
mod health;
mod routes;
mod stack;
mod state;

use crate::clusters::broker::LocalBroker;
use crate::kafka::ConsumerOptions;
use crate::kafka::admin::KafkaAdmin;
use crate::kafka::consumer::AssignmentGeneration;
use crate::kafka::producer::ProducerOptions;
use crate::kafka::table::TableReader;
use crate::kafka::topics::{TopicSpec, ensure_topics, missing_topics};
use crate::kafka::{BaseProducer, ClientSettings};
use crate::metrics::Metrics;
use crate::orders::group::{ProcessingParts, spawn_processors};
use crate::orders::idempotency::IdempotencyStore;
use crate::orders::processor::ProcessingRules;
use crate::orders::projector::Projector;
use crate::orders::{Intake, OrderRules, OrderStore, OrdersParts, OrdersState};
pub use routes::{api_router, document, endpoints};
pub use state::{AppParts, AppState};

/// A built service, bound to its port, ready to [`run`](Application::run).
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    tasks: TaskTracker,
    /// Stops the background workers; cancelled only after HTTP has drained.
    workers: CancellationToken,
}

impl Application {
    /// Builds every part and binds the listener. Kafka need not be reachable yet: topics are
    /// ensured in the background and readiness waits for them.
    pub async fn build(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let metrics = Arc::new(Metrics::new().context("Failed to register metrics")?);
        let client = client_settings(&settings);
        client
            .check()
            .map_err(|reason| anyhow::anyhow!("Invalid [kafka.librdkafka] options: {reason}"))?;
        let producer = BaseProducer::new(
            &client,
            &ProducerOptions {
                delivery_timeout: settings.producer.delivery_timeout,
                queue_max_messages: settings.producer.queue_max_messages,
                linger: settings.producer.linger,
                compression: settings.producer.compression.clone(),
                statistics_interval: settings.producer.statistics_interval,
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
        let retry_after = settings.http.retry_after;
        let rules = OrderRules::from_settings(&settings.orders)
            .map_err(|why| anyhow::anyhow!("invalid configuration: orders.currencies: {why}"))?;
        let store = OrderStore::open(&settings.status_view).with_context(|| {
            format!(
                "Failed to open the status view at {} (status_view.path)",
                settings.status_view.path
            )
        })?;
        let projector = Projector::new(
            client.clone(),
            settings.topics.orders.name.clone(),
            settings.topics.status.name.clone(),
            store.clone(),
            settings.kafka.admin_timeout,
            settings.processing.fetch_wait_max,
            metrics.clone(),
        );
        let orders = Arc::new(Intake {
            producer: producer.clone(),
            store: store.clone(),
            orders_topic: settings.topics.orders.name.clone(),
            rules,
            max_bulk: settings.orders.max_bulk,
            idempotency: IdempotencyStore::new(settings.idempotency.capacity),
            metrics: metrics.clone(),
            retry_after,
        });
        let topic_names = Arc::new(
            topic_specs(&settings)
                .into_iter()
                .map(|t| t.name)
                .collect::<Vec<_>>(),
        );
        metrics.initialize(
            &settings.topics.orders.name,
            &topic_names.iter().map(String::as_str).collect::<Vec<_>>(),
        );
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
        let audit = AuditLog::new(
            producer.with_type(),
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
        // The service's compacted topics, read by one consumer.
        let tables = TableReader::new(
            client.clone(),
            vec![
                settings.topics.clusters.name.clone(),
                settings.topics.templates.name.clone(),
                settings.topics.operations.name.clone(),
            ],
            settings.kafka.admin_timeout,
        );
        let home = ClusterSettings {
            name: "home".into(),
            description: "the cluster this service runs its orders on".into(),
            environment: "home".into(),
            tags: vec![],
            bootstrap_servers: settings.kafka.bootstrap_servers.clone(),
            librdkafka: Default::default(),
            template_id: None,
            local: None,
        };
        let clusters = ClusterRegistry::new(
            &settings.kafka.cluster_id,
            (
                home,
                Clients {
                    admin: admin.clone(),
                    producer: producer.with_type(),
                },
            ),
            &settings.clusters,
            settings.kafka.admin_timeout,
            settings.admin.limits(),
            settings.producer.delivery_timeout,
            RegistryStore {
                topic: settings.topics.clusters.name.clone(),
                reader: tables.clone(),
                writer: producer.with_type(),
            },
            OptionPolicy::from(&settings.admin),
        )
        .map_err(|reason| anyhow::anyhow!("Invalid cluster settings: {reason}"))?;
        let clusters = Arc::new(clusters);
        let operations = Arc::new(Operations::new(
            settings.topics.operations.name.clone(),
            tables.clone(),
            producer.with_type(),
            settings.kafka.admin_timeout,
            (
                settings.admin.max_running_operations,
                settings.admin.max_pending_operations,
            ),
        ));
        let templates = Arc::new(Templates::new(
            settings.topics.templates.name.clone(),
            tables.clone(),
            producer.with_type(),
            settings.kafka.admin_timeout,
        ));
        let access = Arc::new(access);
        let local_broker = Arc::new(LocalBroker::new(settings.local_broker.clone()));
        let local_clusters = Arc::new(crate::clusters::local::LocalClusters::new(
            settings.local_broker.clone(),
        ));
        let live = Arc::new(crate::orders::live::LiveStreams::new(
            settings.status_view.max_live_streams,
            settings.status_view.live_keep_alive,
            retry_after,
        ));
        let orders_routes = OrdersState::new(OrdersParts {
            orders: orders.clone(),
            store: store.clone(),
            live: live.clone(),
            metrics: metrics.clone(),
            access: access.clone(),
            max_wait: settings.status_view.max_wait,
            shutdown: shutdown.clone(),
        });
        let t = &settings.topics;
        let cluster_routes = ClustersState::new(ClustersParts {
            clusters: clusters.clone(),
            operations: operations.clone(),
            templates: templates.clone(),
            local_clusters: local_clusters.clone(),
            local_broker: local_broker.clone(),
            topic_names: topic_names.clone(),
            control_topics: [&t.audit, &t.clusters, &t.operations, &t.templates]
                .iter()
                .map(|topic| topic.name.clone())
                .collect(),
            shutdown: shutdown.clone(),
        });
        let state = AppState::new(AppParts {
            local_clusters,
            templates: templates.clone(),
            operations: operations.clone(),
            clusters: clusters.clone(),
            access,
            admin,
            local_broker,
            settings: settings.clone(),
            orders,
            metrics: metrics.clone(),
            topic_names,
            shutdown,
            store: store.clone(),
            live,
            projector: projector.clone(),
            processing_assignments: Arc::new(AssignmentGeneration::default()),
            said_ready: Default::default(),
            orders_routes,
            cluster_routes,
        });

        let tasks = TaskTracker::new();
        let workers = CancellationToken::new();
        if settings.topics.create {
            tasks.spawn(keep_ensuring_topics(
                state.clone(),
                client.clone(),
                tables.clone(),
            ));
        }
        tasks.spawn(projector.clone().run(workers.clone()));
        tasks.spawn(
            store
                .clone()
                .run_writer(settings.status_view.flush_interval, workers.clone()),
        );
        if settings.status_view.retain_final_days > 0 {
            tasks.spawn(remove_old_final_orders(
                store.clone(),
                Duration::from_secs(settings.status_view.retain_final_days * 86_400),
                workers.clone(),
            ));
        }
        tasks.spawn(forget_idle_callers(state.clone()));
        tasks.spawn(
            state
                .access
                .audit
                .clone()
                .write_refusal_counts(workers.clone()),
        );
        tasks.spawn(release_freed_memory(workers.clone()));
        let registry = clusters.clone();
        let (clusters_topic, templates_topic) = (
            settings.topics.clusters.name.clone(),
            settings.topics.templates.name.clone(),
        );
        tasks.spawn(tables.run(
            Arc::new(move |topic: &str, id: &str, value: Option<&[u8]>| {
                if topic == clusters_topic {
                    registry.apply(id, value);
                } else if topic == templates_topic {
                    templates.apply(id, value);
                } else {
                    operations.apply(id, value);
                }
            }),
            workers.clone(),
        ));
        tasks.spawn(crate::clusters::health::keep_checking(
            state.clusters.clone(),
            state.shutdown.clone(),
        ));
        let parts = ProcessingParts {
            options: consumer_options(&settings),
            client,
            status: producer.with_type(),
            dead_letters: producer.with_type(),
            status_topic: settings.topics.status.name.clone(),
            store,
            projector,
            rules: Arc::new(ProcessingRules {
                max_order_total: settings
                    .max_order_total()
                    .context("processing.rules.max_order_total")?,
                max_quantity_per_line: settings.processing.rules.max_quantity_per_line,
                blocked_customers: settings
                    .processing
                    .rules
                    .blocked_customers
                    .iter()
                    .cloned()
                    .collect(),
            }),
            metrics,
            assignments: state.processing_assignments.clone(),
        };
        spawn_processors(&tasks, settings.processing.consumers, parts, &workers);

        let address = format!("{}:{}", settings.http.host, settings.http.port);
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("Failed to bind {address} (http.host, http.port)"))?;
        let router = stack::router(state.clone());
        Ok(Application {
            listener,
            router,
            state,
            tasks,
            workers,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until the shutdown token is cancelled, then drains within the grace period.
    pub async fn run(self) -> anyhow::Result<()> {
        let Application {
            listener,
            router,
            state,
            tasks,
            workers,
        } = self;
        tracing::info!(address = %listener.local_addr()?, "orderflow listening");
        let shutdown = state.shutdown.clone();
        let options = ServeOptions {
            max_connections: state.settings.http.max_connections,
            header_read_timeout: state.settings.http.header_read_timeout,
        };
        let mut server = tokio::spawn(serve(listener, router, options, shutdown.clone()));
        tokio::select! {
            result = &mut server => {
                // The loop only ends by itself if its task panicked.
                shutdown.cancel();
                result.context("HTTP server task failed")?;
            }
            () = shutdown.cancelled() => {}
        }
        let grace = state.settings.shutdown.grace_period;
        let drain = async {
            if !server.is_finished() {
                let _ = server.await;
            }
            // HTTP has drained; now consumers finish the messages in hand and commit.
            workers.cancel();
            tasks.close();
            tasks.wait().await;
            // What the processors wrote through after the writer's last commit.
            let store = state.store.clone();
            if let Ok(Err(error)) = tokio::task::spawn_blocking(move || store.flush()).await {
                tracing::error!(error = %format!("{error:#}"), "status view's last write failed; the next start reads those records again");
            }
            let flush_timeout = state.settings.producer.flush_timeout;
            if let Err(error) = state.orders.producer.flush(flush_timeout).await {
                tracing::error!(%error, "producer flush failed; unacknowledged records were answered 503");
            }
        };
        match tokio::time::timeout(grace, drain).await {
            Ok(()) => tracing::info!("orderflow stopped cleanly"),
            Err(_) => tracing::warn!(?grace, "grace period over; exiting with work in flight"),
        }
        Ok(())
    }
}

/// Removes final orders older than `age` from the view, at start and every ten minutes.
async fn remove_old_final_orders(
    store: Arc<OrderStore>,
    age: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let view = store.clone();
        match tokio::task::spawn_blocking(move || view.remove_final_older_than(age)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::info!(
                removed,
                "removed final orders past status_view.retain_final_days"
            ),
            Ok(Err(error)) => {
                tracing::warn!(error = %format!("{error:#}"), "removing old final orders failed")
            }
            Err(error) => tracing::error!(%error, "removing old final orders panicked"),
        }
        if !sleep_unless_cancelled(Duration::from_secs(600), &shutdown).await {
            return;
        }
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

/// How often memory the C libraries freed is handed back to the operating system.
const RELEASE_FREED_MEMORY_EVERY: Duration = Duration::from_secs(10);

/// Hands back to the operating system, every few seconds, what librdkafka and SQLite freed.
/// They allocate through glibc's malloc (the Rust code uses mimalloc), whose per-thread
/// arenas keep freed memory: after a 120,000-order backlog the processing instance held
/// 320 MiB, of which `malloc_trim` returned 162 MiB (docs/benchmarks.md). A no-op on
/// other C libraries.
async fn release_freed_memory(shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RELEASE_FREED_MEMORY_EVERY) => {}
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free pages of glibc's own heaps; it has no
        // preconditions and is safe to call from any thread at any time.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    }
}

/// Drops the rate-limit buckets of client addresses that went quiet, every minute, so their
/// memory follows recent callers.
async fn forget_idle_callers(state: AppState) {
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => state.access.forget_idle_addresses(),
        }
    }
}

/// How often the service checks that its topics still exist once they do.
const TOPIC_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Keeps the service's topics in place until shutdown: creates them (retrying with backoff)
/// at start-up, then checks every few seconds and recreates any that vanished (deleted
/// behind the service's back, or a broker that restarted empty). Readiness reports them
/// missing meanwhile.
async fn keep_ensuring_topics(state: AppState, client: ClientSettings, tables: Arc<TableReader>) {
    let specs = topic_specs(&state.settings);
    let timeout = state.settings.kafka.admin_timeout;
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let mut present = false;
    loop {
        let missing = missing_topics(
            &state.orders.producer.metadata_handle(),
            &state.topic_names,
            timeout,
        )
        .await;
        let wait = match missing {
            Ok(missing) if missing.is_empty() => {
                if !present {
                    tracing::info!("service topics present");
                }
                present = true;
                backoff.reset();
                TOPIC_CHECK_INTERVAL
            }
            Ok(missing) => {
                // Missing after they were there: deleted behind the service's back.
                let recreating = std::mem::replace(&mut present, false);
                tracing::warn!(?missing, "service topics missing; creating them");
                match ensure_topics(&client, &specs, timeout).await {
                    Ok(()) => {
                        if recreating {
                            state.metrics.topics_recreated.inc_by(missing.len() as u64);
                            // Offsets from before may be past the new logs' ends.
                            state.processing_assignments.request_offset_check();
                            state.projector.request_offset_check();
                            tables.request_offset_check();
                        }
                        // There now: missing at the next check means deleted again.
                        present = true;
                    }
                    Err(error) => tracing::warn!(%error, "cannot create the service topics yet"),
                }
                backoff.advance()
            }
            Err(error) => {
                tracing::warn!(%error, "cannot check the service topics");
                backoff.advance()
            }
        };
        if !sleep_unless_cancelled(wait, &state.shutdown).await {
            return;
        }
    }
}
