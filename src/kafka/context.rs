//! The rdkafka client context shared by this service's clients: librdkafka's own log lines
//! and errors go to `tracing` instead of stderr.

use rdkafka::client::ClientContext as RdClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;

/// Routes librdkafka logs and client errors to `tracing`; a producer's context also turns
/// librdkafka statistics into its metrics.
#[derive(Clone, Default)]
pub struct ClientContext {
    pub(super) producer_metrics: Option<super::producer::ProducerMetrics>,
}

impl RdClientContext for ClientContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", fac, "{log_message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", fac, "{log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Broker-down and transport errors arrive here continuously while Kafka is away;
        // warn, since librdkafka retries them on its own.
        tracing::warn!(target: "librdkafka", %error, reason, "kafka client error");
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Some(metrics) = &self.producer_metrics {
            metrics.record_statistics(&statistics);
        }
    }
}

/// Plain consumers (watermark and metadata look-ups) need no rebalance hooks.
impl ConsumerContext for ClientContext {}
