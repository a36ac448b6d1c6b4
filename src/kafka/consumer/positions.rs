//! Positions past the end of a partition's log (the broker lost records), and the reset by
//! the `auto.offset.reset` policy.

use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::Consumer;
use serde::de::DeserializeOwned;

use super::BaseConsumer;

impl<T: DeserializeOwned + Send + Sync + 'static> BaseConsumer<T> {
    /// Moves every assigned partition whose position (or committed offset, before the first
    /// fetch) is from before the broker lost its records by the `auto.offset.reset` policy,
    /// with a warning and a count: past the end of an empty log, or, for a while after the
    /// service made its topics again, anywhere but the start (`earliest`; past the end for
    /// `latest` and `error`). Apache Kafka answers a fetch past the end with
    /// `OFFSET_OUT_OF_RANGE` and the client resets by itself, but a broker that lost its
    /// data and does not (Tansu) would leave the partition unread for ever. Returns the
    /// partitions left past the end (policy `error`). Blocking: runs on the blocking pool.
    pub(super) fn reset_out_of_range(&self) -> u64 {
        let client = self.client();
        let timeout = Duration::from_secs(5);
        let Ok(assignment) = client.assignment() else {
            return 0;
        };
        if assignment.count() == 0 {
            return 0;
        }
        let committed = client.committed_offsets(assignment.clone(), timeout).ok();
        let positions = client.position().ok();
        let offset_of = |list: &Option<TopicPartitionList>, topic: &str, partition: i32| {
            list.as_ref()
                .and_then(|l| l.find_partition(topic, partition))
                .and_then(|e| match e.offset() {
                    rdkafka::Offset::Offset(o) => Some(o),
                    _ => None,
                })
        };
        let policy = self.options.offset_reset.as_str();
        let recovering = self.generation.recovering();
        let mut stalled = 0;
        for element in assignment.elements() {
            let (topic, partition) = (element.topic(), element.partition());
            let at = offset_of(&positions, topic, partition)
                .or_else(|| offset_of(&committed, topic, partition));
            let Some(at) = at else { continue };
            let Ok((low, high)) = client.fetch_watermarks(topic, partition, timeout) else {
                continue;
            };
            // Past the end of a log that holds nothing, or, while the topics are known to
            // have been made again, anywhere but at the start. A position past the end of a
            // log that holds records is left to the broker: Apache Kafka answers such a fetch
            // with OFFSET_OUT_OF_RANGE and the client resets by itself, and a broker that
            // under-reports its ends (Tansu's memory engine) would make it look lost when
            // it is not.
            let empty = high <= low;
            let lost = (empty && at > high)
                || (recovering && (at > high || (policy == "earliest" && at != low)));
            if !lost {
                continue;
            }
            let to = match policy {
                "latest" | "largest" | "end" => Some(high),
                "error" => None,
                _ => Some(low),
            };
            tracing::warn!(
                group = %self.options.group_id,
                topic,
                partition,
                position = at,
                log_end = high,
                policy,
                "position from before the broker lost records; resetting"
            );
            if let Some(m) = &self.metrics {
                m.offset_resets.with_label_values(&[topic, policy]).inc();
            }
            let Some(to) = to else {
                stalled += 1;
                continue;
            };
            let mut list = TopicPartitionList::new();
            if list
                .add_partition_offset(topic, partition, rdkafka::Offset::Offset(to))
                .is_err()
            {
                continue;
            }
            // Stored too, so the next commit moves the group's offset as well (a later
            // assignment would otherwise find the old one past the end again).
            if let Err(error) = client
                .store_offsets(&list)
                .and_then(|()| client.seek_partitions(list, timeout).map(drop))
            {
                tracing::warn!(%error, topic, partition, "cannot reset the position");
            }
        }
        stalled
    }
}
