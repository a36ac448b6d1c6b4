//! Migrate: copy the records of topics from one cluster to another, up to the ends the
//! source's partitions had when the operation started — key, value, headers and (by
//! default) timestamp, into the same partition when both sides have as many, by key
//! otherwise — creating missing topics first (as replicate does). With
//! `include_consumer_groups`, every group's committed offset on a copied partition is
//! translated to the offset its next record got on the target and committed there, so a
//! consumer moved across resumes where it stopped.
//!
//! A slice can be replayed: only the records a CEL filter keeps (as in message search),
//! only those of a time window, into a topic of another name on the target.
//!
//! Up to [`IN_FLIGHT`] records are in flight to the target at once; progress, records per
//! second and a heartbeat are saved every few seconds.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use rdkafka::Offset;
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Message;
use tokio_util::sync::CancellationToken;

use super::ClusterRegistry;
use super::filter::RecordFilter;
use super::operations::{GroupResult, Operation, Operations, Stop, admin_of, safe};
use super::replicate::replicate_topic;
use super::schema_copy::SchemaCopy;
use crate::kafka::admin::{KafkaAdmin, record_view};
use crate::kafka::reader::{self, ReaderOptions};
use crate::kafka::{ClientContext, RawRecord, utf8_headers};

/// Most records sent to the target and not yet acknowledged.
const IN_FLIGHT: usize = 20_000;
/// How often progress is saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Committed offsets waiting for translation, per partition: `(offset, group)`, ascending.
type Wanted = HashMap<i32, VecDeque<(i64, String)>>;

pub(super) async fn migrate(
    operation: &mut Operation,
    registry: &ClusterRegistry,
    operations: &Operations,
    cancel: &CancellationToken,
) -> Result<(), Stop> {
    let source = admin_of(registry, &operation.source_cluster_id)?;
    let target_id = operation.target_cluster_ids[0].clone();
    let target = admin_of(registry, &target_id)?;
    let producer = {
        let cluster = registry
            .get(&target_id)
            .ok_or_else(|| Stop::Failed(format!("no cluster {target_id:?} is registered")))?;
        registry.clients(&cluster)?.producer
    };
    let topics = super::replicate::topics_of(&source, operation).await?;
    let filter = RecordFilter::new(operation.filter.as_deref(), None)
        .map_err(|e| Stop::Failed(e.to_string()))?;
    let mut ends = BTreeMap::new();
    for topic in &topics {
        let marks = window(&source, topic, operation).await?;
        operation.records_total += marks
            .iter()
            .map(|(_, low, high)| (high - low).max(0) as u64)
            .sum::<u64>();
        ends.insert(topic.clone(), marks);
    }
    let mut committed: BTreeMap<String, Wanted> = BTreeMap::new();
    if operation.include_consumer_groups {
        for group in source.list_groups().await? {
            let described = source.describe_group(&group.group_id).await?;
            for lag in described.offsets {
                if let (Some(offset), true) = (lag.committed_offset, ends.contains_key(&lag.topic))
                {
                    committed
                        .entry(lag.topic.clone())
                        .or_default()
                        .entry(lag.partition)
                        .or_default()
                        .push_back((offset, group.group_id.clone()));
                }
            }
        }
        for wanted in committed.values_mut().flat_map(|w| w.values_mut()) {
            wanted.make_contiguous().sort();
        }
    }
    let mut schemas = if operation.include_schemas && !operation.dry_run {
        let source_id = operation.source_cluster_id.clone();
        Some(SchemaCopy::between(registry, &source_id, &target_id).await?)
    } else {
        None
    };
    let brokers = target.cluster().await?.brokers.len().max(1);
    let started = Instant::now();
    let mut translated: BTreeMap<String, Vec<(String, i32, i64)>> = BTreeMap::new();
    let mut skipped_groups: BTreeMap<String, String> = BTreeMap::new();
    for topic in &topics {
        let marks = &ends[topic];
        let count: u64 = marks
            .iter()
            .map(|(_, low, high)| (high - low).max(0) as u64)
            .sum();
        // The topic is made on the target as replicate makes it (configs never overwritten).
        let target_topic = operation
            .target_topic
            .clone()
            .unwrap_or_else(|| topic.clone());
        let mut result = replicate_topic(
            &source,
            &target,
            topic,
            &target_topic,
            &target_id,
            brokers,
            false,
            operation.dry_run,
        )
        .await;
        if operation.dry_run && result.error.is_none() {
            result.outcome = format!("would_copy ({})", result.outcome);
        }
        result.records = count;
        if operation.dry_run || result.error.is_some() {
            operation.results.push(result);
            continue;
        }
        let target_partitions = target.describe_topic(&target_topic).await?.partitions.len();
        let same = target_partitions == marks.len();
        let mut wanted = committed.remove(topic).unwrap_or_default();
        if !same {
            for (_, groups) in wanted.drain() {
                for (_, group) in groups {
                    skipped_groups.insert(
                        group,
                        format!("{topic} has other partition counts on the two clusters"),
                    );
                }
            }
        }
        if let Some(schemas) = schemas.as_mut() {
            schemas.subjects(topic, &target_topic).await?;
        }
        let copy = Copy {
            topic,
            target_topic: &target_topic,
            filter: &filter,
            marks,
            same_partitions: same,
            preserve_timestamps: operation.preserve_timestamps,
        };
        copy.run(
            &source,
            &producer,
            schemas.as_mut(),
            &mut wanted,
            &mut translated,
            operation,
            operations,
            cancel,
            started,
        )
        .await?;
        // Offsets at or past the copied end resume at the target's end of the partition.
        if !wanted.values().all(VecDeque::is_empty) {
            let target_ends: HashMap<i32, i64> = target
                .watermarks(&target_topic)
                .await?
                .into_iter()
                .map(|(p, _, high)| (p, high))
                .collect();
            for (partition, groups) in wanted {
                for (_, group) in groups {
                    let end = target_ends.get(&partition).copied().unwrap_or(0);
                    translated.entry(group).or_default().push((
                        target_topic.clone(),
                        partition,
                        end,
                    ));
                }
            }
        }
        if let Some(schemas) = &schemas {
            operation.schemas = schemas.results.clone();
        }
        result.outcome = if result.outcome == "created" {
            "created_and_copied"
        } else {
            "copied"
        }
        .into();
        operation.results.push(result);
        operation.progress_percent = progress(operation);
    }
    for (group, offsets) in translated {
        if let Some(why) = skipped_groups.get(&group) {
            operation.groups.push(GroupResult {
                group,
                partitions: 0,
                outcome: "skipped".into(),
                error: Some(why.clone()),
            });
            continue;
        }
        let partitions = offsets.len();
        let outcome = target.commit_offsets(&group, offsets).await;
        operation.groups.push(GroupResult {
            group,
            partitions,
            outcome: if outcome.is_ok() {
                "committed"
            } else {
                "failed"
            }
            .into(),
            error: outcome.err().map(|e| safe(&e)),
        });
    }
    for (group, why) in skipped_groups {
        if operation.groups.iter().all(|g| g.group != group) {
            operation.groups.push(GroupResult {
                group,
                partitions: 0,
                outcome: "skipped".into(),
                error: Some(why),
            });
        }
    }
    Ok(())
}

fn progress(operation: &Operation) -> f64 {
    if operation.records_total == 0 {
        return 0.0;
    }
    // With a filter, not every record read is copied: the share read is the progress.
    let done = if operation.filter.is_some() {
        operation.records_read
    } else {
        operation.records_copied
    };
    (done as f64 * 100.0 / operation.records_total as f64).min(100.0)
}

/// Each partition's range to copy, `(partition, first, end)`: the whole log, or the part
/// within the operation's time window.
async fn window(
    source: &KafkaAdmin,
    topic: &str,
    operation: &Operation,
) -> Result<Vec<(i32, i64, i64)>, Stop> {
    let mut marks = source.watermarks(topic).await?;
    if let Some(from) = operation.from_time {
        let starts = source.offsets_at(topic, from.timestamp_millis()).await?;
        for (p, low, _) in &mut marks {
            *low = starts.get(p).copied().unwrap_or(*low).max(*low);
        }
    }
    if let Some(until) = operation.until_time {
        let ends = source
            .offsets_at(topic, until.timestamp_millis().saturating_add(1))
            .await?;
        for (p, _, high) in &mut marks {
            *high = ends.get(p).copied().unwrap_or(*high).min(*high);
        }
    }
    Ok(marks)
}

/// One topic's copy.
struct Copy<'a> {
    topic: &'a str,
    /// Where the records go on the target.
    target_topic: &'a str,
    /// Which records are copied.
    filter: &'a RecordFilter,
    marks: &'a [(i32, i64, i64)],
    same_partitions: bool,
    preserve_timestamps: bool,
}

impl Copy<'_> {
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        source: &KafkaAdmin,
        producer: &crate::kafka::BaseProducer<serde_json::Value>,
        schemas: Option<&mut SchemaCopy>,
        wanted: &mut Wanted,
        translated: &mut BTreeMap<String, Vec<(String, i32, i64)>>,
        operation: &mut Operation,
        operations: &Operations,
        cancel: &CancellationToken,
        started: Instant,
    ) -> Result<(), Stop> {
        let mut pending: HashMap<i32, i64> = self
            .marks
            .iter()
            .filter(|(_, low, high)| high > low)
            .map(|&(p, _, high)| (p, high))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let consumer: StreamConsumer<ClientContext> = source
            .client_settings()
            .reader(
                "migrate",
                &ReaderOptions {
                    fetch_wait_ms: Some(10),
                    // Running copies cost a known few MiB each.
                    read_ahead_kib: Some(8192),
                    offset_reset: None,
                    min_messages: None,
                    refill_soon: true,
                },
            )
            .map_err(|e| Stop::Failed(format!("cannot read the source: {e}")))?;
        reader::assign(
            &consumer,
            self.marks
                .iter()
                .filter(|(_, low, high)| high > low)
                .map(|&(partition, low, _)| (self.topic, partition, Offset::Offset(low))),
        )
        .map_err(|e| Stop::Failed(e.to_string()))?;
        let consumer = std::sync::Arc::new(consumer);
        let result = self
            .pump(
                &consumer,
                &mut pending,
                producer,
                schemas,
                wanted,
                translated,
                operation,
                operations,
                cancel,
                started,
            )
            .await;
        reader::close(consumer).await;
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn pump(
        &self,
        consumer: &StreamConsumer<ClientContext>,
        pending: &mut HashMap<i32, i64>,
        producer: &crate::kafka::BaseProducer<serde_json::Value>,
        mut schemas: Option<&mut SchemaCopy>,
        wanted: &mut Wanted,
        translated: &mut BTreeMap<String, Vec<(String, i32, i64)>>,
        operation: &mut Operation,
        operations: &Operations,
        cancel: &CancellationToken,
        started: Instant,
    ) -> Result<(), Stop> {
        let mut in_flight = FuturesOrdered::new();
        let mut last_save = Instant::now();
        while !pending.is_empty() || !in_flight.is_empty() {
            let reading = !pending.is_empty() && in_flight.len() < IN_FLIGHT;
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Stop::Cancelled),
                Some((partition, offset, sent)) = in_flight.next(), if !in_flight.is_empty() => {
                    let delivery: crate::kafka::Delivery = match sent {
                        Ok(d) => d,
                        Err(error) => return Err(Stop::Failed(format!("the target did not take a record: {error}"))),
                    };
                    operation.records_copied += 1;
                    if let Some(groups) = wanted.get_mut(&partition) {
                        while groups.front().is_some_and(|(c, _)| *c <= offset) {
                            if let Some((_, group)) = groups.pop_front() {
                                translated.entry(group).or_default().push((self.target_topic.to_string(), partition, delivery.offset));
                            }
                        }
                    }
                }
                received = consumer.recv(), if reading => {
                    let message = received.map_err(|e| Stop::Failed(format!("reading the source failed: {e}")))?;
                    let partition = message.partition();
                    let offset = message.offset();
                    let Some(&end) = pending.get(&partition) else { continue };
                    if offset + 1 >= end {
                        pending.remove(&partition);
                    }
                    if offset >= end {
                        continue;
                    }
                    operation.records_read += 1;
                    if !self.filter.keeps(&record_view(&message, self.filter.needs_headers())) {
                        continue;
                    }
                    let mut key = message.key().map(<[u8]>::to_vec);
                    let mut payload = message.payload().map(<[u8]>::to_vec);
                    if let Some(schemas) = schemas.as_deref_mut() {
                        for bytes in [key.as_mut(), payload.as_mut()].into_iter().flatten() {
                            schemas.rewrite(bytes, self.topic, self.target_topic).await?;
                        }
                    }
                    let headers = utf8_headers(&message);
                    let timestamp = if self.preserve_timestamps { message.timestamp().to_millis() } else { None };
                    let to_partition = self.same_partitions.then_some(partition);
                    let producer = producer.clone();
                    let topic = self.target_topic.to_string();
                    in_flight.push_back(async move {
                        let sent = producer
                            .send_raw(RawRecord {
                                topic: &topic,
                                key: key.as_deref(),
                                payload: payload.as_deref(),
                                headers: &headers,
                                partition: to_partition,
                                timestamp,
                            })
                            .await;
                        (partition, offset, sent)
                    });
                }
            }
            if last_save.elapsed() >= SAVE_EVERY {
                operation.progress_percent = progress(operation);
                operation.records_per_second =
                    operation.records_copied as f64 / started.elapsed().as_secs_f64().max(0.001);
                operations.beat(operation).await;
                last_save = Instant::now();
            }
        }
        operation.records_per_second =
            operation.records_copied as f64 / started.elapsed().as_secs_f64().max(0.001);
        Ok(())
    }
}
