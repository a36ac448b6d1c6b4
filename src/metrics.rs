//! Prometheus metrics from a registry this service owns (never the crate's global default),
//! and the HTTP middleware that records requests by matched route, never by raw URI.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::kafka::ConsumerMetrics;

/// Every metric the service exports, registered in [`Metrics::registry`].
pub struct Metrics {
    /// The owned registry `/metrics` renders.
    pub registry: Registry,
    /// HTTP requests by route, method and status.
    pub http_requests: IntCounterVec,
    /// HTTP request latency by route and method, in seconds.
    pub http_duration: HistogramVec,
    /// HTTP requests being handled now.
    pub http_in_flight: IntGauge,
    /// Orders acknowledged by Kafka and answered 202.
    pub orders_accepted: IntCounter,
    /// Repeated submissions answered from the idempotency record.
    pub orders_replayed: IntCounter,
    /// Orders refused, by problem code.
    pub orders_rejected: IntCounterVec,
    /// Orders per bulk request.
    pub bulk_size: Histogram,
    /// Orders that reached a final status, by status.
    pub orders_processed: IntCounterVec,
    /// Seconds from acceptance to final status.
    pub accept_to_final: Histogram,
    /// Redelivered order records skipped because the order was already final.
    pub orders_redelivered: IntCounter,
    /// Cancel requests accepted.
    pub cancels_requested: IntCounter,
    /// Consumer tasks restarted after an unexpected end.
    pub consumer_restarts: IntCounter,
    /// Kafka consumer metrics of the processing group.
    pub consumer: ConsumerMetrics,
}

impl Metrics {
    /// Creates and registers every metric, including the process collector.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("orderflow".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by matched route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency in seconds",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["route", "method"],
        )?;
        let http_in_flight =
            IntGauge::new("http_requests_in_flight", "HTTP requests being handled now")?;
        let orders_accepted = IntCounter::new(
            "orders_accepted_total",
            "Orders acknowledged by Kafka and answered 202",
        )?;
        let orders_replayed = IntCounter::new(
            "orders_replayed_total",
            "Repeated submissions answered with the first answer, writing nothing",
        )?;
        let orders_rejected = IntCounterVec::new(
            Opts::new("orders_rejected_total", "Orders refused, by problem code"),
            &["code"],
        )?;
        let bulk_size = Histogram::with_opts(
            HistogramOpts::new("orders_bulk_size", "Orders per bulk request")
                .buckets(vec![1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0]),
        )?;
        let orders_processed = IntCounterVec::new(
            Opts::new(
                "orders_processed_total",
                "Orders that reached a final status, by status",
            ),
            &["status"],
        )?;
        let accept_to_final = Histogram::with_opts(
            HistogramOpts::new(
                "order_accept_to_final_seconds",
                "Seconds from acceptance to final status",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
        )?;
        let orders_redelivered = IntCounter::new(
            "orders_redelivered_skipped_total",
            "Redelivered order records skipped because the order was already final",
        )?;
        let cancels_requested =
            IntCounter::new("orders_cancel_requested_total", "Cancel requests accepted")?;
        let consumer_restarts = IntCounter::new(
            "consumer_task_restarts_total",
            "Consumer tasks restarted after an unexpected end",
        )?;
        let consumer = ConsumerMetrics {
            consumed: IntCounterVec::new(
                Opts::new(
                    "kafka_consumer_records_total",
                    "Records received by the processing consumers, by topic",
                ),
                &["topic"],
            )?,
            retries: IntCounter::new("kafka_consumer_retries_total", "Handler retries")?,
            dead_lettered: IntCounterVec::new(
                Opts::new(
                    "kafka_consumer_dead_lettered_total",
                    "Records written to the dead-letter topic, by source topic and reason",
                ),
                &["topic", "reason"],
            )?,
            rebalances: IntCounterVec::new(
                Opts::new(
                    "kafka_consumer_rebalances_total",
                    "Consumer group rebalances, by kind",
                ),
                &["kind"],
            )?,
            lag: IntGaugeVec::new(
                Opts::new(
                    "kafka_consumer_lag_records",
                    "Consumer lag in records, by topic and partition (librdkafka statistics)",
                ),
                &["topic", "partition"],
            )?,
            commits: IntCounterVec::new(
                Opts::new("kafka_consumer_commits_total", "Offset commits, by result"),
                &["result"],
            )?,
        };
        registry.register(Box::new(orders_processed.clone()))?;
        registry.register(Box::new(accept_to_final.clone()))?;
        registry.register(Box::new(orders_redelivered.clone()))?;
        registry.register(Box::new(cancels_requested.clone()))?;
        registry.register(Box::new(consumer_restarts.clone()))?;
        registry.register(Box::new(consumer.consumed.clone()))?;
        registry.register(Box::new(consumer.retries.clone()))?;
        registry.register(Box::new(consumer.dead_lettered.clone()))?;
        registry.register(Box::new(consumer.rebalances.clone()))?;
        registry.register(Box::new(consumer.lag.clone()))?;
        registry.register(Box::new(consumer.commits.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(http_in_flight.clone()))?;
        registry.register(Box::new(orders_accepted.clone()))?;
        registry.register(Box::new(orders_replayed.clone()))?;
        registry.register(Box::new(orders_rejected.clone()))?;
        registry.register(Box::new(bulk_size.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            http_in_flight,
            orders_accepted,
            orders_replayed,
            orders_rejected,
            bulk_size,
            orders_processed,
            accept_to_final,
            orders_redelivered,
            cancels_requested,
            consumer_restarts,
            consumer,
        })
    }

    /// The registry in Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Middleware: counts and times each request under its matched route template.
pub async fn track_http(
    State(metrics): State<std::sync::Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    metrics.http_in_flight.inc();
    let response = next.run(request).await;
    metrics.http_in_flight.dec();
    let status = response.status().as_u16().to_string();
    metrics
        .http_requests
        .with_label_values(&[&route, &method, &status])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[&route, &method])
        .observe(started.elapsed().as_secs_f64());
    response
}
