//! The processing task group: `processing.consumers` tasks in the `order-processors` group,
//! on the service's [`TaskTracker`], each under a child of the workers' cancellation token.
//! A task that ends unexpectedly (an error or a panic) is logged, counted and restarted with
//! backoff; it never takes the process down silently.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::events::OrderEvent;
use super::processor::{OrderProcessor, ProcessingRules, ProcessorMetrics};
use super::projector::Projector;
use super::status::OrderSnapshot;
use super::store::OrderStore;
use crate::backoff::Backoff;
use crate::kafka::consumer::{AssignmentGeneration, Ended};
use crate::kafka::{BaseConsumer, BaseProducer, ClientSettings, ConsumerOptions};
use crate::metrics::Metrics;

/// What every processing task shares.
#[derive(Clone)]
pub struct ProcessingParts {
    /// Kafka connection settings.
    pub client: ClientSettings,
    /// Consumer behaviour.
    pub options: ConsumerOptions,
    /// Producer for status snapshots (shares the intake producer's connection).
    pub status: BaseProducer<OrderSnapshot>,
    /// Producer for dead letters (same connection).
    pub dead_letters: BaseProducer<serde_json::Value>,
    /// The `orders.status` topic.
    pub status_topic: String,
    /// The schema status records are written with, in the wire format.
    pub schemas: Arc<crate::kafka::wire::TopicSchemas>,
    /// The status view.
    pub store: Arc<OrderStore>,
    /// The view's reader.
    pub projector: Arc<Projector>,
    /// Business rules.
    pub rules: Arc<ProcessingRules>,
    /// Metrics handles.
    pub metrics: Arc<Metrics>,
    /// Advanced at every assignment any task of this instance receives: readiness waits
    /// for the first, so that an order placed when the instance says ready is processed.
    pub assignments: Arc<AssignmentGeneration>,
    /// True once the service's topics are there; the tasks subscribe only then.
    pub topics_ready: tokio::sync::watch::Receiver<bool>,
}

/// Spawns `count` supervised consumer tasks.
pub fn spawn_processors(
    tasks: &TaskTracker,
    count: usize,
    parts: ProcessingParts,
    shutdown: &CancellationToken,
) {
    for index in 0..count {
        tasks.spawn(supervise(index, parts.clone(), shutdown.child_token()));
    }
}

async fn supervise(index: usize, parts: ProcessingParts, shutdown: CancellationToken) {
    let mut topics = parts.topics_ready.clone();
    tokio::select! {
        () = shutdown.cancelled() => return,
        // An error: the topic task has ended (shutdown); starting is harmless then.
        _ = topics.wait_for(|there| *there) => {}
    }
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let outcome = match start(&parts) {
            Ok((consumer, processor)) => {
                let run = tokio::spawn(consumer.run(processor, shutdown.clone()));
                match run.await {
                    Ok(Ok(_)) if shutdown.is_cancelled() => return,
                    // Started again at once, not counted as a failure.
                    Ok(Ok(Ended::TopicsMadeAgain)) => continue,
                    Ok(Ok(Ended::Shutdown)) => "ended unexpectedly".to_string(),
                    Ok(Err(error)) => format!("failed: {error}"),
                    Err(join) if join.is_panic() => "panicked".to_string(),
                    Err(join) => format!("was aborted: {join}"),
                }
            }
            Err(error) => format!("could not start: {error}"),
        };
        tracing::error!(
            task = index,
            outcome,
            backoff = ?backoff.delay(),
            "consumer task stopped; restarting"
        );
        parts.metrics.consumer_restarts.inc();
        if !backoff.wait(&shutdown).await {
            return;
        }
    }
}

fn start(
    parts: &ProcessingParts,
) -> rdkafka::error::KafkaResult<(BaseConsumer<OrderEvent>, Arc<OrderProcessor>)> {
    let generation = Arc::new(AssignmentGeneration::child_of(parts.assignments.clone()));
    let consumer = BaseConsumer::new(
        &parts.client,
        parts.options.clone(),
        parts.dead_letters.clone(),
        Some(parts.metrics.consumer.clone()),
        generation.clone(),
    )?;
    let processor = Arc::new(OrderProcessor {
        store: parts.store.clone(),
        status: parts.status.clone(),
        status_topic: parts.status_topic.clone(),
        schemas: parts.schemas.clone(),
        rules: parts.rules.clone(),
        metrics: parts.metrics.clone(),
        observed: ProcessorMetrics::new(&parts.metrics),
        projector: parts.projector.clone(),
        generation,
        synced_generation: AtomicU64::new(0),
        sync_lock: tokio::sync::Mutex::new(()),
    });
    Ok((consumer, processor))
}
