//! The service's background work, started once it is built and stopped (by `workers`) only
//! after HTTP has drained: the topics' upkeep, the projector and the view's writer, the
//! compacted tables, the clusters' health checks, processing, and housekeeping.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::AppState;
use super::parts::{Clusters, Kafka, Orders, Schemas, consumer_options, topic_specs};
use crate::backoff::{Backoff, sleep_unless_cancelled};
use crate::kafka::ClientSettings;
use crate::kafka::table::TableReader;
use crate::kafka::topics::{ensure_topics, missing_topics};
use crate::orders::OrderStore;
use crate::orders::group::{ProcessingParts, spawn_processors};

/// Starts every background task; `workers` stops them.
pub(super) fn spawn(
    state: &AppState,
    kafka: &Kafka,
    orders: &Orders,
    clusters: &Clusters,
    schemas: &Schemas,
    workers: &CancellationToken,
) -> anyhow::Result<TaskTracker> {
    let settings = &state.settings;
    let tasks = TaskTracker::new();
    // The processors subscribe once the service's topics are there: a consumer that joins
    // its group before its topic exists learns of the topic only at its next metadata
    // refresh (librdkafka's topic.metadata.refresh.interval.ms, five minutes).
    let (topics_there, topics_ready) = tokio::sync::watch::channel(!settings.topics.create);
    if settings.topics.create {
        tasks.spawn(keep_ensuring_topics(
            state.clone(),
            kafka.client.clone(),
            clusters.tables.clone(),
            topics_there,
        ));
    }
    tasks.spawn(orders.projector.clone().run(workers.clone()));
    tasks.spawn(
        orders
            .store
            .clone()
            .run_writer(settings.status_view.flush_interval, workers.clone()),
    );
    if settings.status_view.retain_final_days > 0 {
        tasks.spawn(remove_old_final_orders(
            orders.store.clone(),
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
    tasks.spawn(clusters.tables.clone().run(
        clusters.apply_tables(settings, schemas.store.clone()),
        workers.clone(),
    ));
    let t = &settings.topics;
    tasks.spawn(crate::schemas::own::register_own(
        schemas.registries.home().clone(),
        crate::schemas::own::own_schemas(&t.orders.name, &t.status.name),
        kafka.wire.clone(),
        settings.schemas.wire_format,
        workers.clone(),
    ));
    tasks.spawn(crate::clusters::health::keep_checking(
        state.clusters.clone(),
        state.shutdown.clone(),
    ));
    let parts = ProcessingParts {
        options: consumer_options(settings),
        client: kafka.client.clone(),
        status: kafka.producer.with_type(),
        dead_letters: kafka.producer.with_type(),
        status_topic: settings.topics.status.name.clone(),
        schemas: kafka.wire.clone(),
        store: orders.store.clone(),
        projector: orders.projector.clone(),
        rules: Arc::new(Orders::processing_rules(settings)?),
        metrics: state.metrics.clone(),
        assignments: state.processing_assignments.clone(),
        topics_ready,
    };
    spawn_processors(&tasks, settings.processing.consumers, parts, workers);
    Ok(tasks)
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

/// How often memory the C libraries freed is handed back to the operating system.
const RELEASE_FREED_MEMORY_EVERY: Duration = Duration::from_secs(10);

/// Hands back to the operating system, every few seconds, what librdkafka and SQLite freed.
/// They allocate through glibc's malloc (the Rust code uses mimalloc), whose per-thread
/// arenas keep freed memory: after a 120,000-order backlog the processing instance held
/// 320 MiB, of which `malloc_trim` returned 162 MiB (docs/benchmarks.md).
async fn release_freed_memory(shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RELEASE_FREED_MEMORY_EVERY) => {}
        }
        let _ = tokio::task::spawn_blocking(crate::memory::release_freed).await;
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
async fn keep_ensuring_topics(
    state: AppState,
    client: ClientSettings,
    tables: Arc<TableReader>,
    there: tokio::sync::watch::Sender<bool>,
) {
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
                there.send_replace(true);
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
                        there.send_replace(true);
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
