//! The Kafka clients' metrics: the processing consumers' and the service producer's.

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};

use super::{Registrar, seconds_buckets};
use crate::kafka::ConsumerMetrics;
use crate::kafka::producer::ProducerMetrics;

/// The processing consumers' metrics.
pub(super) fn consumer(r: &Registrar<'_>) -> Result<ConsumerMetrics, prometheus::Error> {
    Ok(ConsumerMetrics {
                    consumed: r.add(IntCounterVec::new(
                        Opts::new(
                            "kafka_consumer_records_total",
                            "Records received by the processing consumers, by topic",
                        ),
                        &["topic"],
                    )?)?,
                    retries: r.add(IntCounter::new(
                        "kafka_consumer_retries_total",
                        "Handler retries",
                    )?)?,
                    dead_lettered: r.add(IntCounterVec::new(
                        Opts::new(
                            "kafka_consumer_dead_lettered_total",
                            "Records written to the dead-letter topic, by source topic and reason",
                        ),
                        &["topic", "reason"],
                    )?)?,
                    rebalances: r.add(IntCounterVec::new(
                        Opts::new(
                            "kafka_consumer_rebalances_total",
                            "Consumer group rebalances, by kind (assign, revoke, error)",
                        ),
                        &["kind"],
                    )?)?,
                    lag: r.add(IntGaugeVec::new(
                        Opts::new(
                            "kafka_consumer_lag_records",
                            "Consumer lag in records, by topic and partition (librdkafka statistics)",
                        ),
                        &["topic", "partition"],
                    )?)?,
                    commits: r.add(IntCounterVec::new(
                        Opts::new(
                            "kafka_consumer_commits_total",
                            "Offset commits, by result (ok, error)",
                        ),
                        &["result"],
                    )?)?,
                    committed: r.add(IntGaugeVec::new(
                        Opts::new(
                            "kafka_consumer_committed_offset",
                            "Last committed offset, by topic and partition (librdkafka statistics)",
                        ),
                        &["topic", "partition"],
                    )?)?,
                    offset_resets: r.add(IntCounterVec::new(
                        Opts::new(
                            "kafka_consumer_offset_resets_total",
                            "Positions from before the broker lost records (past the end of an \
                             empty log, or abandoned when the service had to make its topics again), \
                             moved by the auto.offset.reset policy, by topic and policy",
                        ),
                        &["topic", "policy"],
                    )?)?,
                })
}

/// The service producer's metrics.
pub(super) fn producer(r: &Registrar<'_>) -> Result<ProducerMetrics, prometheus::Error> {
    Ok(ProducerMetrics {
                    sent: r.add(IntCounterVec::new(
                        Opts::new(
                            "kafka_producer_records_sent_total",
                            "Records acknowledged by Kafka, by topic",
                        ),
                        &["topic"],
                    )?)?,
                    failed: r.add(IntCounterVec::new(
                        Opts::new(
                            "kafka_producer_records_failed_total",
                            "Records Kafka did not acknowledge, by topic and reason",
                        ),
                        &["topic", "reason"],
                    )?)?,
                    delivery_seconds: r.add(HistogramVec::new(
                        HistogramOpts::new(
                            "kafka_producer_delivery_seconds",
                            "Seconds from send to Kafka's acknowledgement or failure, by topic",
                        )
                        .buckets(seconds_buckets()),
                        &["topic"],
                    )?)?,
                    bytes: r.add(IntCounterVec::new(
                        Opts::new(
                            "kafka_producer_bytes_total",
                            "Key and value bytes acknowledged by Kafka, by topic",
                        ),
                        &["topic"],
                    )?)?,
                    queue_messages: r.add(IntGauge::new(
                        "kafka_producer_queue_records",
                        "Records in the producer's local queue, not yet acknowledged",
                    )?)?,
                    queue_bytes: r.add(IntGauge::new(
                        "kafka_producer_queue_bytes",
                        "Bytes in the producer's local queue (librdkafka statistics)",
                    )?)?,
                    broker_rtt_seconds: r.add(GaugeVec::new(
                        Opts::new(
                            "kafka_producer_broker_rtt_seconds",
                            "Broker round-trip time in seconds over the last statistics window, by broker and statistic (avg, p99)",
                        ),
                        &["broker", "stat"],
                    )?)?,
                    broker_requests: r.add(IntGaugeVec::new(
                        Opts::new(
                            "kafka_producer_broker_requests",
                            "Requests sent to the broker since the client started (librdkafka tx); rate() is the request rate",
                        ),
                        &["broker"],
                    )?)?,
                    broker_request_errors: r.add(IntGaugeVec::new(
                        Opts::new(
                            "kafka_producer_broker_request_errors",
                            "Request errors towards the broker since the client started (librdkafka txerrs)",
                        ),
                        &["broker"],
                    )?)?,
                    broker_outbuf_requests: r.add(IntGaugeVec::new(
                        Opts::new(
                            "kafka_producer_broker_outbuf_requests",
                            "Requests waiting to be sent to the broker (librdkafka outbuf_cnt)",
                        ),
                        &["broker"],
                    )?)?,
                    broker_waitresp_requests: r.add(IntGaugeVec::new(
                        Opts::new(
                            "kafka_producer_broker_waitresp_requests",
                            "Requests sent and awaiting the broker's answer (librdkafka waitresp_cnt)",
                        ),
                        &["broker"],
                    )?)?,
                    topic_batch_bytes: r.add(GaugeVec::new(
                        Opts::new(
                            "kafka_producer_batch_size_bytes",
                            "Average produce batch size in bytes over the last statistics window, by topic",
                        ),
                        &["topic"],
                    )?)?,
                    topic_batch_records: r.add(GaugeVec::new(
                        Opts::new(
                            "kafka_producer_batch_records",
                            "Average records per produce batch over the last statistics window, by topic",
                        ),
                        &["topic"],
                    )?)?,
                })
}
