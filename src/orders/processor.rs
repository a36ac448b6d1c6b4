//! Order processing: the [`Handler`] the `order-processors` consumer group runs.
//!
//! `PENDING` → `PROCESSING` → `COMPLETED` or `FAILED` (business rules from config), or
//! `CANCELLED` when a cancel was requested first. Every change is written to `orders.status`
//! and acknowledged before the message counts as handled. Processing is idempotent: an order
//! the view already shows as final is skipped, so a redelivered record never produces a
//! second outcome. After every partition assignment the processor first waits for the status
//! view to catch up, so it sees what the partition's previous owner wrote.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use prometheus::{Histogram, IntCounter};
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use tracing::Instrument;

use super::events::{OrderEvent, placed_order_json};
use super::model::Order;
use super::projector::Projector;
use super::status::{OrderSnapshot, OrderStatus};
use super::store::{OrderStore, Origin, Summary};
use crate::kafka::consumer::AssignmentGeneration;
use crate::kafka::{BaseProducer, Handler, HandlerError, OutgoingRecord, Received};
use crate::metrics::Metrics;
use crate::trace::TraceContext;
use crate::trace::spans::{self, Parent};

/// Business rules deciding `COMPLETED` or `FAILED`; `[processing.rules]` in the config.
#[derive(Debug, Clone)]
pub struct ProcessingRules {
    /// Largest order total accepted, in the order's currency.
    pub max_order_total: Decimal,
    /// Largest quantity on one line.
    pub max_quantity_per_line: u32,
    /// Customers whose orders fail.
    pub blocked_customers: HashSet<String>,
}

impl ProcessingRules {
    /// `Ok` to complete the order, or the reason it fails.
    pub fn check(&self, order: &Order) -> Result<(), String> {
        let recomputed = order.items.iter().try_fold(Decimal::ZERO, |sum, line| {
            line.line_total().and_then(|t| sum.checked_add(t))
        });
        if recomputed != Some(order.total) {
            return Err(format!(
                "total_mismatch: lines add up to {recomputed:?}, order says {}",
                order.total
            ));
        }
        if order.total > self.max_order_total {
            return Err(format!(
                "order_total_over_limit: {} {} exceeds {}",
                order.total,
                order.currency.code(),
                self.max_order_total
            ));
        }
        if let Some((i, line)) = order
            .items
            .iter()
            .enumerate()
            .find(|(_, l)| l.quantity > self.max_quantity_per_line)
        {
            return Err(format!(
                "quantity_over_limit: items[{i}] quantity {} exceeds {}",
                line.quantity, self.max_quantity_per_line
            ));
        }
        if self.blocked_customers.contains(&order.customer_id) {
            return Err("customer_blocked".to_string());
        }
        Ok(())
    }
}

/// The processor's labelled metrics, looked up once: a lookup hashes the labels and takes a
/// lock, and an order is observed several times.
pub struct ProcessorMetrics {
    accepted_to_record: Histogram,
    record_to_received: Histogram,
    received_to_handler: Histogram,
    handler_to_acked: Histogram,
    /// `orders_processed_total` of `COMPLETED`, `FAILED` and `CANCELLED`.
    processed: [IntCounter; 3],
}

impl ProcessorMetrics {
    /// The handles of `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        let stage = |name: &str| metrics.order_stage.with_label_values(&[name]);
        let processed = |status: OrderStatus| {
            metrics
                .orders_processed
                .with_label_values(&[status.as_str()])
        };
        ProcessorMetrics {
            accepted_to_record: stage("accepted_to_record"),
            record_to_received: stage("record_to_received"),
            received_to_handler: stage("received_to_handler"),
            handler_to_acked: stage("handler_to_acked"),
            processed: [
                processed(OrderStatus::Completed),
                processed(OrderStatus::Failed),
                processed(OrderStatus::Cancelled),
            ],
        }
    }

    /// The counter of final status `status` (none for another).
    fn processed(&self, status: OrderStatus) -> Option<&IntCounter> {
        match status {
            OrderStatus::Completed => Some(&self.processed[0]),
            OrderStatus::Failed => Some(&self.processed[1]),
            OrderStatus::Cancelled => Some(&self.processed[2]),
            OrderStatus::Pending | OrderStatus::Processing => None,
        }
    }
}

/// The handler of one consumer task.
pub struct OrderProcessor {
    /// The status view (read for idempotency, written through after each change).
    pub store: Arc<OrderStore>,
    /// Producer of `orders.status` snapshots.
    pub status: BaseProducer<OrderSnapshot>,
    /// The `orders.status` topic.
    pub status_topic: String,
    /// The schema status records are written with, in the wire format (`[schemas]`).
    pub schemas: Arc<crate::kafka::wire::TopicSchemas>,
    /// Business rules.
    pub rules: Arc<ProcessingRules>,
    /// Metrics handles.
    pub metrics: Arc<Metrics>,
    /// The labelled ones it observes per order, looked up once.
    pub observed: ProcessorMetrics,
    /// Tells how far the status view has read.
    pub projector: Arc<Projector>,
    /// This task's consumer assignment generation.
    pub generation: Arc<AssignmentGeneration>,
    /// The generation the view was last caught up for.
    pub synced_generation: AtomicU64,
    /// Held while catching up, so concurrent messages wait for one catch-up instead of each
    /// starting their own.
    pub sync_lock: tokio::sync::Mutex<()>,
}

/// A new status to write for one order record, decided before anything is written.
struct Decision<'a> {
    snapshot: OrderSnapshot,
    /// The JSON the snapshot's order was read from, written as it is.
    order_json: Option<&'a RawValue>,
    /// What the view knew of the order (its update does not read it again).
    seen: Option<Summary>,
}

/// A status record in the producer's queue, waiting for its acknowledgement.
struct Unacknowledged {
    snapshot: OrderSnapshot,
    /// The record's value, also the view's row once acknowledged.
    encoded: Box<RawValue>,
    seen: Option<Summary>,
    record: crate::kafka::Queued,
    /// The record's exported publish span, if any.
    span: spans::Span,
}

impl Handler<OrderEvent> for OrderProcessor {
    async fn handle(&self, message: &Received<OrderEvent>) -> Result<(), HandlerError> {
        let mut results = self.handle_batch(std::slice::from_ref(message)).await;
        results.pop().unwrap_or(Ok(()))
    }

    /// Decides every order of the batch, queues every status record, then waits for their
    /// acknowledgements together and updates the view with each.
    async fn handle_batch(
        &self,
        messages: &[Received<OrderEvent>],
    ) -> Vec<Result<(), HandlerError>> {
        if let Err(error) = self.sync_after_rebalance().await {
            let error = format!("{error:#}");
            return messages
                .iter()
                .map(|_| Err(HandlerError::Transient(anyhow::anyhow!(error.clone()))))
                .collect();
        }
        let started = Instant::now();
        let mut results = Vec::with_capacity(messages.len());
        let mut queued = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            // Per-record lines and spans are at debug: at info they cost a large share of
            // the processing rate (docs/operating.md, "Logs"). Inside the consumer's span
            // (topic, partition, offset, trace_id).
            let span = tracing::debug_span!(
                parent: &message.span,
                "process",
                order_id = %message.value.order_id(),
                request_id = message.header("request-id").unwrap_or_default(),
            );
            // Nothing to write for a redelivery of a final order or a cancel that cannot apply.
            let result = span.in_scope(|| {
                self.decide(message)
                    .map(|decision| self.queue(decision, message))
                    .transpose()
            });
            match result {
                Ok(Some(record)) => {
                    queued.push((index, record, span));
                    results.push(Ok(()));
                }
                Ok(None) => results.push(Ok(())),
                Err(error) => results.push(Err(error)),
            }
        }
        for (index, record, span) in queued {
            results[index] = self.acknowledged(record, started).instrument(span).await;
        }
        results
    }
}

impl OrderProcessor {
    /// Observes the stages before the handler: intake to the record, the record to this
    /// consumer, and the wait inside the consumer.
    fn record_stages(&self, order: &Order, message: &Received<OrderEvent>) {
        let stage = |histogram: &Histogram, from: SystemTime, to: SystemTime| {
            histogram.observe(to.duration_since(from).unwrap_or_default().as_secs_f64());
        };
        let observed = &self.observed;
        if let Some(record) = message
            .timestamp_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
        {
            stage(
                &observed.accepted_to_record,
                order.accepted_at.into(),
                record,
            );
            stage(&observed.record_to_received, record, message.received_at);
        }
        stage(
            &observed.received_to_handler,
            message.received_at,
            SystemTime::now(),
        );
    }

    /// What to write for one order record, from the view.
    fn decide<'a>(&self, message: &'a Received<OrderEvent>) -> Option<Decision<'a>> {
        tracing::debug!(event = message.value.kind(), "order record received");
        match &message.value {
            OrderEvent::OrderPlaced { order } => {
                self.record_stages(order, message);
                let applied =
                    self.projector
                        .has_applied(&message.topic, message.partition, message.offset);
                self.process(order, &message.payload, applied)
            }
            OrderEvent::CancelRequested { order_id, .. } => {
                let Some(current) = self.store.get(order_id) else {
                    tracing::warn!(%order_id, "cancel for an order this service never saw; ignored");
                    return None;
                };
                if current.status.is_final() {
                    tracing::info!(
                        %order_id,
                        status = current.status.as_str(),
                        "cancel arrived after a final status; ignored"
                    );
                    return None;
                }
                let seen = Some(Summary::of(&current));
                let snapshot = current.advance(
                    OrderStatus::Cancelled,
                    Some("cancelled by request".into()),
                    Utc::now(),
                );
                Some(Decision {
                    snapshot,
                    order_json: None,
                    seen,
                })
            }
        }
    }

    fn process<'a>(&self, order: &Order, payload: &'a [u8], applied: bool) -> Option<Decision<'a>> {
        tracing::debug!(
            since_accepted_ms = (Utc::now() - order.accepted_at).num_milliseconds(),
            "processing starts"
        );
        // What the view knows of the order, read without decoding a stored snapshot: an
        // order the view holds as it was placed is the record's order, `PENDING` since it
        // was accepted (with the cancel request, if one came). Once the view has applied
        // this record (as it has for a backlog), an order it holds as placed is known so
        // without a read.
        let seen = if applied {
            self.store.summary_of_applied(&order.order_id)
        } else {
            self.store.summary(&order.order_id)
        };
        // The snapshot's order is this record's when the view holds the order as placed:
        // its JSON then goes into the status record as the record holds it.
        let mut from_record = true;
        let base = match seen {
            Some(current) if current.status.is_final() => {
                tracing::debug!(
                    status = current.status.as_str(),
                    "already final; redelivery skipped"
                );
                self.metrics.orders_redelivered.inc();
                return None;
            }
            None => OrderSnapshot::pending(order.clone()),
            Some(current) if current.status == OrderStatus::Pending && current.changes == 1 => {
                let mut pending = OrderSnapshot::pending(order.clone());
                pending.cancel_requested = current.cancel_requested;
                pending
            }
            // Further along than placed (a `PROCESSING` written by an earlier version): go
            // on from the view's snapshot.
            Some(_) => match self.store.get(&order.order_id) {
                Some(current) if current.status.is_final() => {
                    self.metrics.orders_redelivered.inc();
                    return None;
                }
                Some(current) => {
                    from_record = false;
                    current
                }
                None => OrderSnapshot::pending(order.clone()),
            },
        };
        let order_json = from_record
            .then(|| placed_order_json(crate::kafka::wire::json_payload(payload)))
            .flatten();
        if base.cancel_requested {
            let snapshot = base.advance(
                OrderStatus::Cancelled,
                Some("cancelled by request".into()),
                Utc::now(),
            );
            return Some(Decision {
                snapshot,
                order_json,
                seen,
            });
        }
        // One record per order: PROCESSING and the outcome would be written in the same
        // batch and acknowledged together, so the outcome's history carries both. (Records
        // written by earlier versions may leave an order at PROCESSING; it goes on from there.)
        let processing = if base.status == OrderStatus::Processing {
            base
        } else {
            base.advance(OrderStatus::Processing, None, Utc::now())
        };
        let snapshot = match self.rules.check(order) {
            Ok(()) => processing.advance(OrderStatus::Completed, None, Utc::now()),
            Err(reason) => processing.advance(OrderStatus::Failed, Some(reason), Utc::now()),
        };
        Some(Decision {
            snapshot,
            order_json,
            seen,
        })
    }

    /// Puts the snapshot's record in the producer's queue. The record carries the order's
    /// trace on (from its publish span when spans are exported), so its trace continues on
    /// `orders.status`. `order_json`, when given, is the JSON the snapshot's order was read
    /// from, written as it is.
    fn queue(
        &self,
        decision: Decision<'_>,
        message: &Received<OrderEvent>,
    ) -> Result<Unacknowledged, HandlerError> {
        let Decision {
            snapshot,
            order_json,
            seen,
        } = decision;
        // The order's trace: the processing's exported span when there is one, else the
        // record's own context.
        let trace = message.trace.clone().or_else(|| {
            TraceContext::from_parts(
                message.header(crate::trace::TRACEPARENT),
                message.header(crate::trace::TRACESTATE),
            )
        });
        let key = snapshot.order.order_id.to_string();
        let span = match &trace {
            Some(trace) => spans::publish(&self.status_topic, &key, Parent::Within(trace)),
            None => spans::Span::none(),
        };
        let mut headers = vec![("event-type", snapshot.status.event_type().to_string())];
        if let Some(trace) = span.context().as_ref().or(trace.as_ref()) {
            headers.extend(trace.record_headers());
        }
        // Encoded once: the record's value, and the view's row when the record comes back.
        let encoded = match order_json {
            Some(order) => snapshot.to_json_around(order),
            None => serde_json::value::to_raw_value(&snapshot),
        }
        .map_err(|error| HandlerError::Permanent(error.into()))?;
        let record = OutgoingRecord {
            topic: &self.status_topic,
            key: &key,
            value: &encoded,
            headers,
            schema_id: self.schemas.id_for(&self.status_topic),
        };
        let record = self
            .status
            .with_type::<Box<RawValue>>()
            .queue(record)
            .map_err(|error| HandlerError::Permanent(error.into()))?;
        Ok(Unacknowledged {
            snapshot,
            encoded,
            seen,
            record,
            span,
        })
    }

    /// Waits for a queued record's acknowledgement, then updates the view: read-your-writes
    /// here, committed when the projector reads the record back. The order's live
    /// subscribers on this instance hear of it now.
    async fn acknowledged(
        &self,
        queued: Unacknowledged,
        started: Instant,
    ) -> Result<(), HandlerError> {
        let Unacknowledged {
            snapshot,
            encoded,
            seen,
            record,
            mut span,
        } = queued;
        match self.status.acknowledged(record).await {
            Ok(delivery) => span.record_delivery(delivery.partition, delivery.offset),
            Err(error) => {
                span.record_error(error.reason());
                return Err(if error.is_retryable() {
                    HandlerError::Transient(error.into())
                } else {
                    HandlerError::Permanent(error.into())
                });
            }
        }
        let status = snapshot.status;
        let accepted_at = snapshot.order.accepted_at;
        tracing::debug!(
            status = status.as_str(),
            reason = snapshot.reason.as_deref().unwrap_or(""),
            "order status written to the status topic"
        );
        let order_id = snapshot.order.order_id;
        let encoded = Box::<str>::from(encoded).into_string().into_bytes();
        self.store
            .apply_over(snapshot, Some(encoded), Origin::Local, seen);
        span.live_event(&order_id, status.as_str());
        if status.is_final() {
            let elapsed = (Utc::now() - accepted_at).to_std().unwrap_or_default();
            if let Some(processed) = self.observed.processed(status) {
                processed.inc();
            }
            self.metrics.accept_to_final.observe(elapsed.as_secs_f64());
            self.observed
                .handler_to_acked
                .observe(started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    async fn sync_after_rebalance(&self) -> anyhow::Result<()> {
        let generation = self.generation.current();
        if self.synced_generation.load(Ordering::Acquire) == generation {
            return Ok(());
        }
        let _single_flight = self.sync_lock.lock().await;
        if self.synced_generation.load(Ordering::Acquire) == generation {
            return Ok(());
        }
        self.projector.catch_up().await?;
        self.synced_generation.store(generation, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::{OrderRequest, OrderRules};

    fn order(customer: &str, quantity: u32, price: &str) -> Order {
        let request: OrderRequest = serde_json::from_value(serde_json::json!({
            "customer_id": customer, "currency": "EUR",
            "items": [{"product_id": "p", "quantity": quantity, "unit_price": price}]
        }))
        .unwrap();
        request
            .parse(
                &OrderRules {
                    max_items: 10,
                    currencies: vec![],
                },
                Utc::now(),
            )
            .unwrap()
    }

    fn rules() -> ProcessingRules {
        ProcessingRules {
            max_order_total: Decimal::new(1000, 0),
            max_quantity_per_line: 10,
            blocked_customers: ["bad".to_string()].into(),
        }
    }

    #[test]
    fn each_rule_fails_with_its_reason() {
        assert_eq!(rules().check(&order("ok", 2, "5.00")), Ok(()));
        assert!(
            rules()
                .check(&order("ok", 1, "1000.01"))
                .unwrap_err()
                .starts_with("order_total_over_limit")
        );
        assert!(
            rules()
                .check(&order("ok", 11, "1.00"))
                .unwrap_err()
                .starts_with("quantity_over_limit")
        );
        assert_eq!(
            rules().check(&order("bad", 1, "1.00")),
            Err("customer_blocked".into())
        );
        let mut tampered = order("ok", 1, "1.00");
        tampered.total = Decimal::new(2, 0);
        assert!(
            rules()
                .check(&tampered)
                .unwrap_err()
                .starts_with("total_mismatch")
        );
    }
}
