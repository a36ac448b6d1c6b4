//! Tracked operations across clusters. `POST /api/operations/replicate` answers `202` at
//! once with the operation, which then runs in the background on the instance that took it;
//! every change of its state is written to a compacted topic (`orderflow.operations`) that
//! every instance reads, so any instance answers `GET /api/operations/{id}`. A running
//! operation beats every few seconds; one whose beat stopped (its instance died) is shown as
//! `interrupted`, never as running for ever. `DELETE` cancels: at once on the instance that
//! runs it, through the topic from any other.
//!
//! Replicate copies topic structure: partitions and the configs set on the topic, with the
//! replication factor clamped to each target's broker count (and reported).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::ClusterRegistry;
use crate::kafka::BaseProducer;
use crate::kafka::admin::{AdminError, KafkaAdmin};
use crate::kafka::table::{Row, Table, TableReader};
use crate::trace::spans;

/// How often a running operation says it is alive.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(3);
/// A running operation silent for longer is shown as interrupted.
const HEARTBEAT_LIMIT: Duration = Duration::from_secs(20);

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OperationStatus {
    /// Accepted, not started.
    Pending,
    /// Running.
    Running,
    /// Done; see the per-topic results.
    Completed,
    /// Stopped by an error.
    Failed,
    /// Stopped on request.
    Cancelled,
    /// Its instance stopped before it finished.
    Interrupted,
}

impl OperationStatus {
    fn finished(self) -> bool {
        !matches!(self, OperationStatus::Pending | OperationStatus::Running)
    }
}

/// What happened to one topic on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopicResult {
    /// Topic name.
    pub topic: String,
    /// Target cluster id.
    pub target: String,
    /// `created`, `exists`, `updated`, `would_create`, `would_update`, `failed`.
    pub outcome: String,
    /// Partitions on the source.
    pub partitions: usize,
    /// Replication factor used on the target.
    pub replication_factor: usize,
    /// Whether the source's replication factor was lowered to the target's broker count.
    pub replication_clamped: bool,
    /// Configs copied (set on the source topic).
    pub configs: BTreeMap<String, String>,
    /// Records copied (migrate).
    #[serde(default)]
    pub records: u64,
    /// Why it failed, in words safe to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    /// Copies topic structure (partitions, configs) to the targets.
    Replicate,
    /// Copies topics with their records, and optionally consumer group offsets.
    Migrate,
}

/// A tracked operation: the design's `CrossClusterOperation`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Operation {
    /// Its id.
    pub id: String,
    /// What it does.
    pub operation_type: OperationKind,
    /// Where topics come from.
    pub source_cluster_id: String,
    /// Where they go.
    pub target_cluster_ids: Vec<String>,
    /// Topics asked for; empty for every topic of the source (Kafka's internal ones left
    /// out).
    pub topics: Vec<String>,
    /// Whether configs of topics that exist on a target are changed to the source's.
    pub overwrite_configs: bool,
    /// Whether nothing is changed, only reported.
    pub dry_run: bool,
    /// Where it is.
    pub status: OperationStatus,
    /// Share of the work done, 0 to 100.
    pub progress_percent: f64,
    /// One entry per topic and target, as they are done.
    pub results: Vec<TopicResult>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// The running instance's last sign of life.
    pub heartbeat_at: DateTime<Utc>,
    /// Whether someone asked to cancel it.
    #[serde(default)]
    pub cancel_requested: bool,
    /// Migrate: records to copy (the sources' ends when it started).
    #[serde(default)]
    pub records_total: u64,
    /// Migrate: records copied and acknowledged by the target.
    #[serde(default)]
    pub records_copied: u64,
    /// Migrate: records copied per second so far.
    #[serde(default)]
    pub records_per_second: f64,
    /// Migrate: whether consumer groups' offsets are translated to the target.
    #[serde(default)]
    pub include_consumer_groups: bool,
    /// Migrate: whether records keep their timestamps.
    #[serde(default)]
    pub preserve_timestamps: bool,
    /// Migrate: the groups whose offsets were committed on the target.
    #[serde(default)]
    pub groups: Vec<GroupResult>,
    /// Migrate: records read from the source (copied or not, by the filter).
    #[serde(default)]
    pub records_read: u64,
    /// Migrate: only records this CEL expression keeps are copied (see message search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Migrate: only records at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_time: Option<DateTime<Utc>>,
    /// Migrate: only records at or before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_time: Option<DateTime<Utc>>,
    /// Migrate: the topic the records go to on the target (one source topic only); the
    /// source topic's name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_topic: Option<String>,
    /// Migrate: whether schemas are registered on the target's registry and the schema ids
    /// of wire-format records rewritten to the target's.
    #[serde(default)]
    pub include_schemas: bool,
    /// Migrate with `include_schemas`: each schema registered on the target, with the id
    /// it has on each side.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schemas: Vec<SchemaResult>,
}

/// A schema carried to the target's registry (migrate with `include_schemas`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SchemaResult {
    /// The subject it is registered under on the target.
    pub subject: String,
    /// Its id on the source's registry.
    pub source_id: u32,
    /// Its id on the target's registry (what copied records now carry).
    pub target_id: u32,
}

/// A consumer group's offsets, translated to the target (migrate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupResult {
    /// Group id.
    pub group: String,
    /// Partitions whose offset was committed on the target.
    pub partitions: usize,
    /// `committed`, `skipped`, `failed`.
    pub outcome: String,
    /// Why it was skipped or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Body of `POST /api/operations/migrate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrateRequest {
    /// Where the records come from.
    pub source_cluster_id: String,
    /// Where they go.
    pub target_cluster_id: String,
    /// Only these topics; every topic of the source when absent.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub topics: Vec<String>,
    /// Commit each consumer group's offsets on the target, translated to the copied records.
    #[serde(default)]
    pub include_consumer_groups: bool,
    /// Keep each record's timestamp (default true).
    #[serde(default = "yes")]
    pub preserve_timestamps: bool,
    /// Report what would be copied; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Copy only the records this CEL expression keeps (as in message search), e.g.
    /// `headers["event-type"] == "OrderFailed"`.
    #[schema(max_length = 2000)]
    pub filter: Option<String>,
    /// Copy only records at or after this time.
    pub from_time: Option<DateTime<Utc>>,
    /// Copy only records at or before this time.
    pub until_time: Option<DateTime<Utc>>,
    /// Write to this topic on the target (with exactly one source topic; not with
    /// `include_consumer_groups`), made like the source's when missing.
    pub target_topic: Option<String>,
    /// Register the copied topics' schemas (subjects `<topic>-key` and `<topic>-value`, and
    /// any schema a copied record names) on the target cluster's registry, and rewrite the
    /// schema id inside every wire-format record to the target's, so the copies decode
    /// there. Both clusters need a schema registry.
    #[serde(default)]
    pub include_schemas: bool,
}

fn yes() -> bool {
    true
}

impl Operation {
    /// The operation as a reader should see it: running without a recent beat means its
    /// instance is gone.
    pub(super) fn seen_now(mut self) -> Self {
        let silent = Utc::now() - self.heartbeat_at;
        if !self.status.finished() && silent.to_std().is_ok_and(|s| s > HEARTBEAT_LIMIT) {
            self.status = OperationStatus::Interrupted;
        }
        self
    }
}

/// Body of `POST /api/operations/replicate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicateRequest {
    /// Where the topics come from.
    pub source_cluster_id: String,
    /// Where to create them (1 to 20 clusters).
    #[schema(min_items = 1, max_items = 20)]
    pub target_cluster_ids: Vec<String>,
    /// Only these topics; every topic of the source when absent.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub topics: Vec<String>,
    /// Change configs of topics that exist on a target to the source's.
    #[serde(default)]
    pub overwrite_configs: bool,
    /// Report what would change; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Operations known to this instance (all of them, from the topic) and the ones it runs.
pub struct Operations {
    known: Table<Operation>,
    running: Mutex<BTreeMap<String, CancellationToken>>,
    /// One permit per operation that may run at once on this instance.
    slots: Arc<tokio::sync::Semaphore>,
    /// Operations this instance took that wait for a slot.
    waiting: std::sync::atomic::AtomicUsize,
    max_waiting: usize,
}

impl Row for Operation {
    type Record = Operation;

    fn from_record(_id: &str, operation: Operation) -> Option<Operation> {
        Some(operation)
    }
}

impl Operations {
    /// Operations stored on `topic`.
    pub fn new(
        topic: String,
        reader: Arc<TableReader>,
        writer: BaseProducer<Operation>,
        timeout: Duration,
        limits: (usize, usize),
    ) -> Self {
        let (max_running, max_waiting) = limits;
        Operations {
            known: Table::new("operation", topic, reader, writer, timeout),
            running: Mutex::new(BTreeMap::new()),
            slots: Arc::new(tokio::sync::Semaphore::new(max_running.max(1))),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// Whether every operation stored before this instance started is known.
    pub fn is_caught_up(&self) -> bool {
        self.known.is_caught_up()
    }

    /// Applies one record of the operations topic; a cancel asked through it stops the
    /// operation if this instance runs it.
    pub fn apply(&self, id: &str, value: Option<&[u8]>) {
        if let Some(operation) = self.known.apply(id, value)
            && operation.cancel_requested
            && let Some(token) = self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(id)
        {
            token.cancel();
        }
    }

    /// One operation as it stands.
    pub fn get(&self, id: &str) -> Option<Operation> {
        self.known.get(id).map(Operation::seen_now)
    }

    /// The newest `limit` operations, newest first.
    pub fn recent(&self, limit: usize) -> Vec<Operation> {
        let mut all: Vec<Operation> = self
            .known
            .rows()
            .into_iter()
            .map(Operation::seen_now)
            .collect();
        all.sort_by_key(|o| std::cmp::Reverse(o.created_at));
        all.truncate(limit);
        all
    }

    /// Writes the operation's state and waits until this instance has read it back.
    async fn save(&self, operation: &Operation) -> Result<(), String> {
        self.known
            .put(&operation.id, operation)
            .await
            .map_err(|e| e.to_string())
    }

    /// Asks an operation to stop: at once if this instance runs it, through the topic
    /// otherwise. `None` when unknown; the operation as it was when already finished.
    pub async fn cancel(&self, id: &str) -> Result<Option<Operation>, String> {
        let Some(mut operation) = self.get(id) else {
            return Ok(None);
        };
        if operation.status.finished() {
            return Ok(Some(operation));
        }
        if let Some(token) = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            token.cancel();
        }
        operation.cancel_requested = true;
        self.save(&operation).await?;
        Ok(Some(operation))
    }

    /// Accepts a replication and starts it in the background.
    pub async fn start_replicate(
        self: &Arc<Self>,
        request: ReplicateRequest,
        registry: Arc<ClusterRegistry>,
        shutdown: &CancellationToken,
    ) -> Result<Operation, StartError> {
        let mut operation = Operation::new(
            OperationKind::Replicate,
            request.source_cluster_id,
            request.target_cluster_ids,
        );
        operation.topics = request.topics;
        operation.overwrite_configs = request.overwrite_configs;
        operation.dry_run = request.dry_run;
        self.start(operation, registry, shutdown).await
    }

    /// Accepts a migration and starts it in the background.
    pub async fn start_migrate(
        self: &Arc<Self>,
        request: MigrateRequest,
        registry: Arc<ClusterRegistry>,
        shutdown: &CancellationToken,
    ) -> Result<Operation, StartError> {
        let mut operation = Operation::new(
            OperationKind::Migrate,
            request.source_cluster_id,
            vec![request.target_cluster_id],
        );
        operation.topics = request.topics;
        operation.include_consumer_groups = request.include_consumer_groups;
        operation.preserve_timestamps = request.preserve_timestamps;
        operation.filter = request.filter;
        operation.from_time = request.from_time;
        operation.until_time = request.until_time;
        operation.target_topic = request.target_topic;
        operation.include_schemas = request.include_schemas;
        operation.dry_run = request.dry_run;
        self.start(operation, registry, shutdown).await
    }

    async fn start(
        self: &Arc<Self>,
        operation: Operation,
        registry: Arc<ClusterRegistry>,
        shutdown: &CancellationToken,
    ) -> Result<Operation, StartError> {
        use std::sync::atomic::Ordering;
        let queued = self.waiting.fetch_add(1, Ordering::AcqRel);
        if queued >= self.max_waiting && self.slots.available_permits() == 0 {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(StartError::Busy);
        }
        if let Err(why) = self.save(&operation).await {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(StartError::Unavailable(why));
        }
        let token = shutdown.child_token();
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(operation.id.clone(), token.clone());
        let operations = self.clone();
        let started = operation.clone();
        // A span of its own (when spans are exported), in the trace of the request that
        // started it.
        let kind = match operation.operation_type {
            OperationKind::Replicate => "replicate",
            OperationKind::Migrate => "migrate",
        };
        let mut span = spans::operation(
            kind,
            &operation.id,
            crate::trace::TraceContext::in_scope().as_ref(),
        );
        tokio::spawn(async move {
            let id = started.id.clone();
            // Waits as `pending` (beating, so it is not taken for interrupted) until a slot
            // is free: a burst of operations runs a few at a time, not all at once.
            let slot = operations.wait_for_slot(started.clone(), &token).await;
            operations.waiting.fetch_sub(1, Ordering::AcqRel);
            match slot {
                Some(_slot) => {
                    if operations.run(started, registry, token).await == OperationStatus::Failed {
                        span.record_error("operation_failed");
                    }
                }
                None => operations.end_unstarted(started).await,
            }
            operations
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        });
        Ok(operation)
    }

    async fn wait_for_slot(
        &self,
        mut operation: Operation,
        cancel: &CancellationToken,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let acquire = self.slots.clone().acquire_owned();
        tokio::pin!(acquire);
        loop {
            tokio::select! {
                permit = &mut acquire => return permit.ok(),
                () = cancel.cancelled() => return None,
                () = tokio::time::sleep(HEARTBEAT) => self.beat(&mut operation).await,
            }
        }
    }

    /// An operation cancelled (or stopped by shutdown) before it had a slot.
    async fn end_unstarted(&self, mut operation: Operation) {
        operation.status = OperationStatus::Cancelled;
        operation.finished_at = Some(Utc::now());
        self.beat(&mut operation).await;
    }

    async fn run(
        &self,
        mut operation: Operation,
        registry: Arc<ClusterRegistry>,
        cancel: CancellationToken,
    ) -> OperationStatus {
        operation.status = OperationStatus::Running;
        operation.started_at = Some(Utc::now());
        self.beat(&mut operation).await;
        let outcome = match operation.operation_type {
            OperationKind::Migrate => tokio::select! {
                result = super::migrate::migrate(&mut operation, &registry, self, &cancel) => result,
                () = cancel.cancelled() => Err(Stop::Cancelled),
            },
            OperationKind::Replicate => tokio::select! {
                result = super::replicate::replicate(&mut operation, &registry, self, &cancel) => result,
                () = cancel.cancelled() => Err(Stop::Cancelled),
            },
        };
        match outcome {
            Ok(()) => {
                operation.status = OperationStatus::Completed;
                operation.progress_percent = 100.0;
            }
            Err(Stop::Cancelled) => {
                operation.status = OperationStatus::Cancelled;
            }
            Err(Stop::Failed(why)) => {
                operation.status = OperationStatus::Failed;
                operation.error = Some(why);
            }
        }
        operation.finished_at = Some(Utc::now());
        self.beat(&mut operation).await;
        operation.status
    }

    /// Saves progress (and says it is alive); a failed save is logged, not fatal.
    pub(super) async fn beat(&self, operation: &mut Operation) {
        operation.heartbeat_at = Utc::now();
        if let Some(current) = self.get(&operation.id) {
            operation.cancel_requested |= current.cancel_requested;
        }
        if let Err(error) = self.save(operation).await {
            tracing::warn!(operation = operation.id, %error, "operation state not saved");
        }
    }
}

impl Operation {
    pub(super) fn new(kind: OperationKind, source: String, targets: Vec<String>) -> Self {
        let now = Utc::now();
        Operation {
            id: uuid::Uuid::new_v4().to_string(),
            operation_type: kind,
            source_cluster_id: source,
            target_cluster_ids: targets,
            topics: vec![],
            overwrite_configs: false,
            dry_run: false,
            status: OperationStatus::Pending,
            progress_percent: 0.0,
            results: vec![],
            error: None,
            created_at: now,
            started_at: None,
            finished_at: None,
            heartbeat_at: now,
            cancel_requested: false,
            records_total: 0,
            records_copied: 0,
            records_per_second: 0.0,
            include_consumer_groups: false,
            preserve_timestamps: false,
            groups: vec![],
            records_read: 0,
            filter: None,
            from_time: None,
            until_time: None,
            target_topic: None,
            include_schemas: false,
            schemas: vec![],
        }
    }
}

/// Why an operation was not accepted.
#[derive(Debug)]
pub enum StartError {
    /// This instance runs and queues as many as it may (`admin.max_running_operations`,
    /// `admin.max_pending_operations`).
    Busy,
    /// Kafka did not take the operation's record.
    Unavailable(String),
}

impl Operation {
    /// Every cluster it touches: the source, then the targets.
    pub fn clusters(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.source_cluster_id).chain(&self.target_cluster_ids)
    }
}

/// Why an operation stopped early.
pub(super) enum Stop {
    Cancelled,
    Failed(String),
}

impl From<AdminError> for Stop {
    fn from(error: AdminError) -> Self {
        Stop::Failed(safe(&error))
    }
}

/// An admin error in words safe to show.
pub(super) fn safe(error: &AdminError) -> String {
    match error {
        AdminError::NotFound(what) => format!("{what} not found"),
        AdminError::AlreadyExists(what) => format!("{what} already exists"),
        AdminError::Invalid(why) | AdminError::Conflict(why) | AdminError::Unsupported(why) => {
            why.clone()
        }
        AdminError::Unavailable(_) => "the cluster did not answer in time".into(),
        AdminError::Kafka(_) => "kafka refused the request".into(),
    }
}

/// The clients' admin of a registered cluster.
pub(super) fn admin_of(registry: &ClusterRegistry, id: &str) -> Result<KafkaAdmin, Stop> {
    let cluster = registry
        .get(id)
        .ok_or_else(|| Stop::Failed(format!("no cluster {id:?} is registered")))?;
    Ok(registry.clients(&cluster)?.admin)
}
