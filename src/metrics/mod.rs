//! Prometheus metrics from a registry this service owns (never the crate's global default),
//! and the HTTP middleware that records requests by matched route, never by raw URI.

use std::time::Instant;

use axum::body::HttpBody as _;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::kafka::ConsumerMetrics;
use crate::kafka::producer::ProducerMetrics;

mod kafka;

/// The stages of `orderflow_order_stage_seconds`, in the order an order passes them.
pub const ORDER_STAGES: [&str; 5] = [
    "accepted_to_record",
    "record_to_received",
    "received_to_handler",
    "handler_to_acked",
    "status_record_to_view",
];

/// The codes an order submission can be refused with (`orders_rejected_total{code}`).
pub const ORDER_REFUSAL_CODES: &[&str] = &[
    "malformed_json",
    "invalid_body",
    "unsupported_media_type",
    "payload_too_large",
    "validation_failed",
    "idempotency_conflict",
    "bulk_too_large",
    "record_too_large",
    "kafka_unavailable",
    "request_timeout",
    "rate_limited",
    "internal",
];

/// Every metric the service exports, registered in [`Metrics::registry`].
pub struct Metrics {
    /// The owned registry `/metrics` renders.
    pub registry: Registry,
    /// HTTP requests by route, method and status.
    pub http_requests: IntCounterVec,
    /// HTTP request latency by route and method, in seconds.
    pub http_duration: HistogramVec,
    /// HTTP request body sizes by route, in bytes.
    pub http_request_size: HistogramVec,
    /// HTTP response body sizes by route, in bytes.
    pub http_response_size: HistogramVec,
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
    /// Seconds each stage of an order's way to its final status took, by stage (see
    /// [`ORDER_STAGES`]).
    pub order_stage: HistogramVec,
    /// Service topics found missing while running and created again.
    pub topics_recreated: IntCounter,
    /// Live status streams open now.
    pub live_streams_open: IntGauge,
    /// Live status events sent.
    pub live_events: IntCounter,
    /// Live status streams refused because the instance's bound was reached.
    pub live_streams_refused: IntCounter,
    /// Live feeds ended because their client fell too far behind.
    pub live_streams_dropped: IntCounter,
    /// Records the status view read from the topics since this process started.
    pub view_records_read: IntCounter,
    /// Times the status view started from the beginning of the topics, by reason.
    pub view_rebuilds: IntCounterVec,
    /// Records between the status view and the end the topics had when it started reading;
    /// 0 once caught up.
    pub view_catch_up_remaining: IntGauge,
    /// Orders in the status view.
    pub view_orders: IntGauge,
    /// Redelivered order records skipped because the order was already final.
    pub orders_redelivered: IntCounter,
    /// Cancel requests accepted.
    pub cancels_requested: IntCounter,
    /// Consumer tasks restarted after an unexpected end.
    pub consumer_restarts: IntCounter,
    /// Kafka consumer metrics of the processing group.
    pub consumer: ConsumerMetrics,
    /// Kafka producer metrics of the service's producer.
    pub producer: ProducerMetrics,
    /// Requests refused by access control, by key name and reason.
    pub access_refusals: IntCounterVec,
    /// Audit records, by outcome (written to Kafka, failed).
    pub audit_records: IntCounterVec,
    /// Version and commit of the running build.
    pub build_info: IntGaugeVec,
    /// The name of every metric family, as exported (with the `orderflow_` prefix).
    pub families: Vec<String>,
}

/// Registers collectors and hands them back, so each metric is declared in one place, and
/// remembers the family names.
pub(crate) struct Registrar<'a> {
    registry: &'a Registry,
    families: std::cell::RefCell<Vec<String>>,
}

impl Registrar<'_> {
    fn add<C: prometheus::core::Collector + Clone + 'static>(
        &self,
        collector: C,
    ) -> Result<C, prometheus::Error> {
        self.note(&collector);
        self.registry.register(Box::new(collector.clone()))?;
        Ok(collector)
    }

    fn note(&self, collector: &impl prometheus::core::Collector) {
        self.families
            .borrow_mut()
            .extend(collector.desc().iter().map(|d| d.fq_name.clone()));
    }
}

/// Latency buckets from half a millisecond to ten seconds.
fn seconds_buckets() -> Vec<f64> {
    vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
}

/// Fine enough below a second that a quantile is not an artefact of bucket widths.
fn latency_buckets() -> Vec<f64> {
    vec![
        0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.075, 0.1, 0.125,
        0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ]
}

/// 64 B to 16 MiB, by powers of four.
fn size_buckets() -> Result<Vec<f64>, prometheus::Error> {
    prometheus::exponential_buckets(64.0, 4.0, 10)
}

impl Metrics {
    /// Creates and registers every metric, including the process collector and build info.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("orderflow".into()), None)?;
        let r = Registrar {
            registry: &registry,
            families: Default::default(),
        };
        let build_info = r.add(IntGaugeVec::new(
            Opts::new(
                "build_info",
                "Always 1; the labels say which build is running",
            ),
            &["version", "commit"],
        )?)?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("ORDERFLOW_COMMIT")])
            .set(1);

        let metrics = Metrics {
            access_refusals: r.add(IntCounterVec::new(
                Opts::new(
                    "access_refusals_total",
                    "Requests refused by access control, by key name (anonymous, unknown, or \
                     the key's name) and reason (unauthenticated, forbidden, rate_limited)",
                ),
                &["key", "reason"],
            )?)?,
            audit_records: r.add(IntCounterVec::new(
                Opts::new(
                    "audit_records_total",
                    "Audit records by outcome: written to the audit topic, or failed (then \
                     only in the log under target audit)",
                ),
                &["outcome"],
            )?)?,
            http_requests: r.add(IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "HTTP requests by matched route, method and status",
                ),
                &["route", "method", "status"],
            )?)?,
            http_duration: r.add(HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "HTTP request latency in seconds, by matched route and method",
                )
                .buckets(seconds_buckets()),
                &["route", "method"],
            )?)?,
            http_request_size: r.add(HistogramVec::new(
                HistogramOpts::new(
                    "http_request_size_bytes",
                    "HTTP request body size in bytes (Content-Length), by matched route",
                )
                .buckets(size_buckets()?),
                &["route"],
            )?)?,
            http_response_size: r.add(HistogramVec::new(
                HistogramOpts::new(
                    "http_response_size_bytes",
                    "HTTP response body size in bytes, by matched route",
                )
                .buckets(size_buckets()?),
                &["route"],
            )?)?,
            http_in_flight: r.add(IntGauge::new(
                "http_requests_in_flight",
                "HTTP requests being handled now",
            )?)?,
            orders_accepted: r.add(IntCounter::new(
                "orders_accepted_total",
                "Orders acknowledged by Kafka and answered 202",
            )?)?,
            orders_replayed: r.add(IntCounter::new(
                "orders_replayed_total",
                "Repeated submissions answered with the first answer, writing nothing",
            )?)?,
            orders_rejected: r.add(IntCounterVec::new(
                Opts::new(
                    "orders_rejected_total",
                    "Order submissions refused, by problem code (a bulk request refused as a whole counts once)",
                ),
                &["code"],
            )?)?,
            bulk_size: r.add(Histogram::with_opts(
                HistogramOpts::new("orders_bulk_size", "Orders per bulk request")
                    .buckets(vec![1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0]),
            )?)?,
            orders_processed: r.add(IntCounterVec::new(
                Opts::new(
                    "orders_processed_total",
                    "Orders that reached a final status, by status (COMPLETED, FAILED, CANCELLED)",
                ),
                &["status"],
            )?)?,
            accept_to_final: r.add(Histogram::with_opts(
                HistogramOpts::new(
                    "order_accept_to_final_seconds",
                    "Seconds from acceptance to final status",
                )
                .buckets(latency_buckets()),
            )?)?,
            order_stage: r.add(HistogramVec::new(
                HistogramOpts::new(
                    "order_stage_seconds",
                    "Seconds each stage of an order's way to its final status took: \
                     accepted_to_record (intake to the orders record's timestamp), \
                     record_to_received (orders record to the processor's consumer: \
                     acknowledgement, broker, fetch), received_to_handler (waiting in the \
                     consumer), handler_to_acked (processing and the status write's \
                     acknowledgement), status_record_to_view (a status record to the status \
                     view of every instance)",
                )
                .buckets(latency_buckets()),
                &["stage"],
            )?)?,
            topics_recreated: r.add(IntCounter::new(
                "topics_recreated_total",
                "Service topics found missing while the service ran (deleted behind its back) and created again",
            )?)?,
            live_streams_open: r.add(IntGauge::new(
                "live_streams_open",
                "Live status streams (GET /api/orders/{id}/events) open now",
            )?)?,
            live_events: r.add(IntCounter::new(
                "live_events_total",
                "Live status events sent",
            )?)?,
            live_streams_refused: r.add(IntCounter::new(
                "live_streams_refused_total",
                "Live status streams refused with 503 because status_view.max_live_streams were open",
            )?)?,
            live_streams_dropped: r.add(IntCounter::new(
                "live_streams_dropped_total",
                "Live feeds (GET /api/orders/events) ended because their client fell too far behind",
            )?)?,
            view_records_read: r.add(IntCounter::new(
                "view_records_read_total",
                "Records the status view read from the orders and status topics since start (after a restart: only what arrived since its last commit)",
            )?)?,
            view_rebuilds: r.add(IntCounterVec::new(
                Opts::new(
                    "view_rebuilds_total",
                    "Times the status view was rebuilt from the beginning of the topics (missing, unreadable, other_source, offsets_gone)",
                ),
                &["reason"],
            )?)?,
            view_catch_up_remaining: r.add(IntGauge::new(
                "view_catch_up_remaining_records",
                "Records between the status view and the topics' end at its start; 0 when caught up",
            )?)?,
            view_orders: r.add(IntGauge::new(
                "view_orders",
                "Orders in the status view (stored and pending commit)",
            )?)?,
            orders_redelivered: r.add(IntCounter::new(
                "orders_redelivered_skipped_total",
                "Redelivered order records skipped because the order was already final",
            )?)?,
            cancels_requested: r.add(IntCounter::new(
                "orders_cancel_requested_total",
                "Cancel requests accepted",
            )?)?,
            consumer_restarts: r.add(IntCounter::new(
                "consumer_task_restarts_total",
                "Consumer tasks restarted after an unexpected end",
            )?)?,
            consumer: kafka::consumer(&r)?,
            producer: kafka::producer(&r)?,
            build_info,
            registry: registry.clone(),
            families: Vec::new(),
        };
        // Process-wide: the span export is one per process (crate::trace::export).
        r.add(crate::trace::export::SPANS_DROPPED.clone())?;
        r.add(crate::trace::export::SPANS_EXPORTED.clone())?;
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            r.note(&process);
            registry.register(Box::new(process))?;
        }
        // The registry's prefix applies when gathering; descriptors carry the bare names.
        let families = r
            .families
            .into_inner()
            .into_iter()
            .map(|name| format!("orderflow_{name}"))
            .collect();
        Ok(Metrics {
            families,
            ..metrics
        })
    }

    /// Creates the series whose labels are known in advance at zero, so dashboards and
    /// alerts see them (and `rate()` works) before the first event.
    pub fn initialize(&self, orders_topic: &str, own_topics: &[&str]) {
        for outcome in ["written", "failed"] {
            self.audit_records.with_label_values(&[outcome]);
        }
        for status in ["COMPLETED", "FAILED", "CANCELLED"] {
            self.orders_processed.with_label_values(&[status]);
        }
        for stage in ORDER_STAGES {
            self.order_stage.with_label_values(&[stage]);
        }
        for code in ORDER_REFUSAL_CODES {
            self.orders_rejected.with_label_values(&[code]);
        }
        let c = &self.consumer;
        c.consumed.with_label_values(&[orders_topic]);
        for reason in ["undecodable", "permanent", "exhausted"] {
            c.dead_lettered.with_label_values(&[orders_topic, reason]);
        }
        for kind in ["assign", "revoke", "error"] {
            c.rebalances.with_label_values(&[kind]);
        }
        for result in ["ok", "error"] {
            c.commits.with_label_values(&[result]);
        }
        let p = &self.producer;
        for topic in own_topics {
            p.sent.with_label_values(&[topic]);
            p.bytes.with_label_values(&[topic]);
            p.delivery_seconds.with_label_values(&[topic]);
            for reason in ["queue_full", "unavailable", "too_large", "kafka"] {
                p.failed.with_label_values(&[topic, reason]);
            }
        }
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

/// One request counted in `http_requests_in_flight` for as long as it is held.
struct InFlight<'a>(&'a IntGauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a IntGauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
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
    let request_size = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    let started = Instant::now();
    let response = {
        // Counted out when the request ends, also when its client leaves first (hyper then
        // drops this future) or the backstop timeout does.
        let _in_flight = InFlight::enter(&metrics.http_in_flight);
        next.run(request).await
    };
    let status = response.status().as_u16().to_string();
    metrics
        .http_requests
        .with_label_values(&[&route, &method, &status])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[&route, &method])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_request_size
        .with_label_values(&[&route])
        .observe(request_size);
    // Buffered bodies (every JSON answer) know their exact size; for a stream, its lower
    // bound is what is known.
    metrics
        .http_response_size
        .with_label_values(&[&route])
        .observe(response.body().size_hint().lower() as f64);
    response
}
