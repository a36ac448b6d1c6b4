//! The consumer's librdkafka context: logs and counts rebalances, commits and statistics,
//! commits what is stored when partitions are revoked, and advances the assignment
//! generation.

use std::sync::Arc;

use rdkafka::consumer::{
    BaseConsumer as RdBaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance,
};
use rdkafka::error::KafkaResult;
use rdkafka::{Statistics, TopicPartitionList};

use std::time::Duration;

use super::{AssignmentGeneration, ConsumerMetrics, ConsumerOptions};
use crate::kafka::ClientContext;
use crate::kafka::ClientSettings;

/// Logs and counts rebalances, commits and statistics.
pub struct GroupContext {
    pub(super) metrics: Option<ConsumerMetrics>,
    pub(super) generation: Arc<AssignmentGeneration>,
    pub(super) group_id: String,
}

impl rdkafka::ClientContext for GroupContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        rdkafka::ClientContext::log(&ClientContext::default(), level, fac, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        rdkafka::ClientContext::error(&ClientContext::default(), error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let Some(metrics) = &self.metrics else { return };
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                // -1 is librdkafka's "unknown" partition; lag -1 means not yet known.
                if *partition < 0 {
                    continue;
                }
                let labels = [topic.as_str(), &partition.to_string()];
                if p.consumer_lag >= 0 {
                    metrics.lag.with_label_values(&labels).set(p.consumer_lag);
                }
                // Offsets below 0 are librdkafka's "none yet".
                if p.committed_offset >= 0 {
                    metrics
                        .committed
                        .with_label_values(&labels)
                        .set(p.committed_offset);
                }
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &RdBaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            tracing::info!(group = %self.group_id, partitions = partitions.count(), "partitions revoked; committing stored offsets");
            self.count("revoke");
            // Commit what is stored before another member takes these partitions over. This
            // callback runs inside the async recv(), so the commit must not block.
            if let Err(error) = consumer.commit_consumer_state(CommitMode::Async) {
                tracing::debug!(%error, "commit on revoke (nothing stored is fine)");
            }
        }
    }

    fn post_rebalance(&self, _consumer: &RdBaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                self.generation.advance();
                let list: Vec<String> = partitions
                    .elements()
                    .iter()
                    .map(|e| format!("{}/{}", e.topic(), e.partition()))
                    .collect();
                tracing::info!(group = %self.group_id, partitions = ?list, "partitions assigned");
                self.count("assign");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(error) => {
                tracing::warn!(group = %self.group_id, %error, "rebalance error");
                self.count("error");
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let outcome = match &result {
            Ok(()) => "ok",
            // librdkafka reports "no offset to commit" as an error; it is not one.
            Err(e)
                if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::NoOffset) =>
            {
                return;
            }
            Err(error) => {
                tracing::warn!(group = %self.group_id, %error, "offset commit failed");
                "error"
            }
        };
        tracing::trace!(group = %self.group_id, count = offsets.count(), outcome, "offsets committed");
        if let Some(m) = &self.metrics {
            m.commits.with_label_values(&[outcome]).inc();
        }
    }
}

impl GroupContext {
    fn count(&self, kind: &str) {
        if let Some(m) = &self.metrics {
            m.rebalances.with_label_values(&[kind]).inc();
        }
    }
}

/// The librdkafka configuration of a group member with these options.
pub(super) fn group_config(
    client: &ClientSettings,
    options: &ConsumerOptions,
) -> rdkafka::ClientConfig {
    let millis = |d: Duration| d.as_millis().to_string();
    client.client_config(&[
        ("group.id", options.group_id.clone()),
        ("enable.auto.commit", "true".into()),
        ("enable.auto.offset.store", "false".into()),
        ("auto.offset.reset", options.offset_reset.clone()),
        ("auto.commit.interval.ms", millis(options.commit_interval)),
        ("session.timeout.ms", millis(options.session_timeout)),
        (
            "statistics.interval.ms",
            millis(options.statistics_interval),
        ),
        ("fetch.wait.max.ms", millis(options.fetch_wait_max)),
    ])
}
