//! Group-less readers: a consumer that reads the partitions it is given from the offsets it
//! is given, joins no group and commits nothing. The status view's projector, the compacted
//! tables, message browsing and migration's copy all read this way; each says only what is
//! its own (how long a fetch may wait, how far ahead to read, what to do past a log's end).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaResult;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::{ClientContext, ClientSettings};

/// How long a reader that follows its topics waits for a record before it looks at its
/// positions (records the client skips, such as control records, move them without
/// arriving as messages) ...
pub const IDLE_WAIT_FIRST: Duration = Duration::from_millis(250);
/// ... doubling while nothing arrives once it has caught up, up to this: asking the client
/// for its positions wakes librdkafka's main thread, a good part of an idle instance's CPU.
pub const IDLE_WAIT_MAX: Duration = Duration::from_secs(2);

/// The wait after `current` passed with nothing read.
pub fn longer_idle_wait(current: Duration, caught_up: bool) -> Duration {
    if caught_up {
        (current * 2).min(IDLE_WAIT_MAX)
    } else {
        IDLE_WAIT_FIRST
    }
}

/// `fetch.queue.backoff.ms` of a reader with a read-ahead bound: how long a partition whose
/// read-ahead is full waits before it is fetched again.
const READ_AHEAD_BACKOFF_MS: u64 = 10;

/// A group-less reader's own settings, on top of the client's.
#[derive(Debug, Clone, Default)]
pub struct ReaderOptions {
    /// `fetch.wait.max.ms`: how long the broker may hold a fetch that has nothing new.
    pub fetch_wait_ms: Option<u64>,
    /// `queued.max.messages.kbytes`: how far ahead librdkafka reads (its default is 64 MiB
    /// per reader).
    pub read_ahead_kib: Option<u32>,
    /// `auto.offset.reset` for a position outside the log (librdkafka's default:
    /// `latest`).
    pub offset_reset: Option<&'static str>,
    /// `queued.min.messages` with a read-ahead: how many records librdkafka tries to keep
    /// queued (10,000 unless set). With partition queues both bounds apply per partition.
    pub min_messages: Option<u32>,
    /// With a read-ahead: fetch a partition whose read-ahead was full again soon
    /// ([`READ_AHEAD_BACKOFF_MS`]) rather than after librdkafka's 1 s, for a reader that
    /// reads everything in order (a small read-ahead lasts far less than a second). A
    /// reader that reads a chunk and moves on (newest first) leaves it off: there the
    /// refetches would only read past the chunk.
    pub refill_soon: bool,
}

impl ClientSettings {
    /// A group-less reader named after its `purpose` (it appears in the broker's logs as
    /// `orderflow-<purpose>-<uuid>`; librdkafka needs a group id, the reader never joins it).
    pub fn reader<C>(&self, purpose: &str, options: &ReaderOptions) -> KafkaResult<C>
    where
        C: rdkafka::config::FromClientConfigAndContext<ClientContext>,
    {
        self.reader_config(purpose, options)
            .create_with_context(ClientContext::default())
    }

    fn reader_config(&self, purpose: &str, options: &ReaderOptions) -> ClientConfig {
        let mut overrides = vec![
            (
                "group.id",
                format!("orderflow-{purpose}-{}", uuid::Uuid::new_v4()),
            ),
            ("enable.auto.commit", "false".to_string()),
            ("enable.auto.offset.store", "false".to_string()),
        ];
        if let Some(wait) = options.fetch_wait_ms {
            overrides.push(("fetch.wait.max.ms", wait.to_string()));
        }
        if let Some(kib) = options.read_ahead_kib {
            overrides.push(("queued.max.messages.kbytes", kib.to_string()));
            let min = options.min_messages.unwrap_or(10_000);
            overrides.push(("queued.min.messages", min.to_string()));
            // When the read-ahead is full, librdkafka postpones a partition's next fetch by
            // this much (1 s unless set): longer than a small read-ahead lasts, so a reader
            // catching up would sit idle with records waiting on the broker.
            if options.refill_soon {
                overrides.push(("fetch.queue.backoff.ms", READ_AHEAD_BACKOFF_MS.to_string()));
            }
        }
        if let Some(reset) = options.offset_reset {
            overrides.push(("auto.offset.reset", reset.to_string()));
        }
        self.client_config(&overrides)
    }
}

/// Gives `reader` these partitions, each from its offset.
pub fn assign<'a, C: Consumer<ClientContext>>(
    reader: &C,
    starts: impl IntoIterator<Item = (&'a str, i32, Offset)>,
) -> KafkaResult<()> {
    let mut assignment = TopicPartitionList::new();
    for (topic, partition, offset) in starts {
        assignment.add_partition_offset(topic, partition, offset)?;
    }
    reader.assign(&assignment)
}

/// Closes a reader off the runtime's threads: closing a librdkafka client blocks.
pub async fn close<C: Send + Sync + 'static>(reader: Arc<C>) {
    tokio::task::spawn_blocking(move || drop(reader)).await.ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_never_commits_and_has_a_group_id_of_its_own() {
        let client = ClientSettings {
            bootstrap_servers: "localhost:9092".into(),
            client_id: "orderflow".into(),
            librdkafka: Default::default(),
        };
        let options = ReaderOptions {
            fetch_wait_ms: Some(50),
            read_ahead_kib: Some(8192),
            offset_reset: Some("error"),
            min_messages: None,
            refill_soon: true,
        };
        let one = client.reader_config("view", &options);
        let two = client.reader_config("view", &options);
        assert_eq!(one.get("enable.auto.commit"), Some("false"));
        assert_eq!(one.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(one.get("fetch.wait.max.ms"), Some("50"));
        assert_eq!(one.get("queued.max.messages.kbytes"), Some("8192"));
        assert_eq!(one.get("fetch.queue.backoff.ms"), Some("10"));
        assert_eq!(one.get("auto.offset.reset"), Some("error"));
        let group = one.get("group.id").unwrap();
        assert!(group.starts_with("orderflow-view-"), "{group}");
        assert_ne!(Some(group), two.get("group.id"));
        let plain = client.reader_config("browse", &ReaderOptions::default());
        assert_eq!(plain.get("fetch.wait.max.ms"), None);
        assert_eq!(plain.get("fetch.queue.backoff.ms"), None);
    }
}
