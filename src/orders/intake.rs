//! Order intake: validated orders become `OrderPlaced` records on the `orders` topic, and a
//! client hears `accepted` only once Kafka has acknowledged the record. Repeats of a
//! submission (same `Idempotency-Key`, or same client `order_id`) get the first answer.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{OrderError, Reused};
use super::events::{OrderEvent, SCHEMA_VERSION, written_order_json};
use super::idempotency::{Claim, IdempotencyStore};
use super::model::{Order, OrderRequest, OrderRules};
use super::status::{OrderSnapshot, OrderStatus};
use super::store::OrderStore;
use crate::kafka::{BaseProducer, OutgoingRecord, ProduceError, wire};
use crate::metrics::Metrics;
use crate::trace::TraceContext;
use crate::trace::spans::{self, Parent};

/// Namespace for order ids derived from an `Idempotency-Key`, so that every instance derives
/// the same id from the same key.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7266_6c6f_7700_0000_0000_0001);

/// The answer to an accepted order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Accepted {
    /// The order's id.
    pub order_id: Uuid,
    /// Always `PENDING`: accepted and durable in Kafka, not processed yet.
    #[schema(example = "PENDING")]
    pub status: String,
    /// Exact order total.
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
    /// ISO 4217 code of the total.
    pub currency: String,
    /// Partition of the `orders` record.
    pub partition: i32,
    /// Offset of the `orders` record.
    pub offset: i64,
    /// When the order was accepted.
    #[serde(serialize_with = "crate::orders::timestamp::serialize")]
    pub accepted_at: DateTime<Utc>,
}

/// Per-request facts carried into record headers.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The HTTP request id.
    pub request_id: String,
    /// The request's trace context; each record it produces continues it.
    pub trace: TraceContext,
    /// Whether each order starts a trace of its own, linked to the request's (the orders
    /// of a bulk request, each followed on its own).
    pub own_traces: bool,
}

/// What intake needs; built once by the application.
pub struct Intake {
    /// Producer of `orders` records.
    pub producer: BaseProducer<OrderEvent>,
    /// The `orders` topic.
    pub orders_topic: String,
    /// Validation limits.
    pub rules: OrderRules,
    /// Most orders in one bulk request.
    pub max_bulk: usize,
    /// Metrics registry handles.
    pub metrics: Arc<Metrics>,
    /// Answered submissions by key.
    pub idempotency: IdempotencyStore<Accepted>,
    /// `Retry-After` for 503 answers.
    pub retry_after: Duration,
    /// The status view, written through so this instance answers at once for its orders.
    pub store: Arc<OrderStore>,
    /// The schema `orders` records are written with, in the wire format (`[schemas]`).
    pub schemas: Arc<crate::kafka::wire::TopicSchemas>,
}

impl Intake {
    /// Validates and submits one order. `idempotency_key` is the `Idempotency-Key` header.
    /// Returns the answer and whether it is a replay of an earlier one.
    #[tracing::instrument(level = "debug", skip_all, fields(order_id))]
    pub async fn submit(
        &self,
        request: OrderRequest,
        idempotency_key: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<(Accepted, bool), OrderError> {
        self.submit_inner(request, idempotency_key, ctx).await
    }

    async fn submit_inner(
        &self,
        mut request: OrderRequest,
        idempotency_key: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<(Accepted, bool), OrderError> {
        // Only a submission that names itself (a key, or an order id) is compared with an
        // earlier one: the hash is made for those alone.
        let fingerprint = if idempotency_key.is_some() || request.order_id.is_some() {
            fingerprint(&request)
        } else {
            0
        };
        let reused = if idempotency_key.is_some() {
            Reused::IdempotencyKey
        } else {
            Reused::OrderId
        };
        let dedupe_key = match (idempotency_key, request.order_id) {
            (Some(key), given) => {
                // Same key, same order id on every instance, so Kafka-side processing also
                // sees the repeat as the same order.
                request.order_id = Some(
                    given.unwrap_or_else(|| Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, key.as_bytes())),
                );
                Some(format!("key:{key}"))
            }
            (None, Some(id)) => Some(format!("order:{id}")),
            (None, None) => None,
        };
        let order = request
            .parse(&self.rules, Utc::now())
            .map_err(OrderError::Invalid)?;
        tracing::Span::current().record("order_id", tracing::field::display(order.order_id));
        let Some(key) = dedupe_key else {
            return self.produce(order, ctx).await.map(|a| (a, false));
        };
        match self.idempotency.claim(key, fingerprint).await {
            Claim::Replay(answer) => Ok((answer, true)),
            Claim::Conflict => Err(OrderError::Reused(reused)),
            Claim::New(guard) => {
                let answer = self.produce(order, ctx).await?;
                guard.complete(answer.clone());
                Ok((answer, false))
            }
        }
    }

    /// Validates and submits each element of a bulk request on its own, concurrently, and
    /// answers each in request order.
    pub async fn submit_bulk(
        &self,
        items: &[Box<serde_json::value::RawValue>],
        ctx: &RequestContext,
    ) -> Result<Vec<Result<(Accepted, bool), OrderError>>, OrderError> {
        if items.len() > self.max_bulk {
            return Err(OrderError::BulkTooLarge {
                count: items.len(),
                max: self.max_bulk,
            });
        }
        self.metrics.bulk_size.observe(items.len() as f64);
        let ctx = &RequestContext {
            own_traces: true,
            ..ctx.clone()
        };
        let submissions = items.iter().map(|item| async move {
            match crate::input::object_from_str::<OrderRequest>(item.get()) {
                Ok(request) => self.submit_inner(request, None, ctx).await,
                Err(e) => Err(OrderError::NotAnOrder(e)),
            }
        });
        Ok(futures::future::join_all(submissions).await)
    }

    async fn produce(
        &self,
        mut order: Order,
        ctx: &RequestContext,
    ) -> Result<Accepted, OrderError> {
        let key = order.order_id.to_string();
        let parent = if ctx.own_traces {
            Parent::Linked(&ctx.trace)
        } else {
            Parent::Within(&ctx.trace)
        };
        let (delivery, event, written) = self
            .publish(&key, parent, ctx, |trace| {
                order.trace_id = Some(trace.trace_id());
                OrderEvent::OrderPlaced { order }
            })
            .await?;
        tracing::debug!(
            order_id = %key,
            partition = delivery.partition,
            offset = delivery.offset,
            "order accepted (acknowledged by kafka)"
        );
        let OrderEvent::OrderPlaced { order } = event else {
            unreachable!("built above")
        };
        let answer = Accepted {
            order_id: order.order_id,
            status: "PENDING".into(),
            total: order.total,
            currency: order.currency.code().into(),
            partition: delivery.partition,
            offset: delivery.offset,
            accepted_at: order.accepted_at,
        };
        // The `PENDING` row's JSON around the order's JSON as just written, so that the
        // view's single writer does not encode the order again.
        let row = written_order_json(wire::json_payload(&written))
            .and_then(|json| OrderSnapshot::pending_json(json, order.accepted_at));
        self.store.insert_pending(order, row);
        Ok(answer)
    }

    /// Requests the cancel of an order that is not final yet: a `CancelRequested` record on
    /// the order's key, so the processor sees it in order with the order itself.
    pub async fn request_cancel(
        &self,
        order_id: Uuid,
        ctx: &RequestContext,
    ) -> Result<OrderStatus, OrderError> {
        let current = self.store.get(&order_id).ok_or(OrderError::NotFound)?;
        if current.status.is_final() {
            return Err(OrderError::Final(current.status.as_str()));
        }
        let key = order_id.to_string();
        self.publish(&key, Parent::Within(&ctx.trace), ctx, |_| {
            OrderEvent::CancelRequested {
                order_id,
                requested_at: Utc::now(),
            }
        })
        .await?;
        tracing::info!(order_id = %key, "cancel requested");
        self.store
            .mark_cancel_requested(&order_id, super::store::Origin::Local);
        self.metrics.cancels_requested.inc();
        Ok(current.status)
    }

    /// Writes the `orders` record `make` builds (given the trace context the record
    /// carries), keyed by its order id, with the standard headers, inside its producer span.
    async fn publish(
        &self,
        key: &str,
        parent: Parent<'_>,
        ctx: &RequestContext,
        make: impl FnOnce(&TraceContext) -> OrderEvent,
    ) -> Result<(crate::kafka::Delivery, OrderEvent, Vec<u8>), OrderError> {
        let mut span = spans::publish(&self.orders_topic, key, parent);
        let trace = span.context().unwrap_or_else(|| ctx.trace.clone());
        let event = make(&trace);
        let mut headers = vec![
            ("schema-version", SCHEMA_VERSION.to_string()),
            ("event-type", event.kind().to_string()),
            ("request-id", ctx.request_id.clone()),
        ];
        headers.extend(trace.record_headers());
        let record = OutgoingRecord {
            topic: &self.orders_topic,
            key,
            value: &event,
            headers,
            schema_id: self.schemas.id_for(&self.orders_topic),
        };
        let sent = match self.producer.queue_keeping(record) {
            Ok((queued, written)) => self
                .producer
                .acknowledged(queued)
                .await
                .map(|delivery| (delivery, written)),
            Err(error) => Err(error),
        };
        match sent {
            Ok((delivery, written)) => {
                span.record_delivery(delivery.partition, delivery.offset);
                Ok((delivery, event, written))
            }
            Err(error) => {
                span.record_error(error.reason());
                Err(self.produce_error(error))
            }
        }
    }

    /// What a producer failure means for the order; the cause is logged here.
    fn produce_error(&self, error: ProduceError) -> OrderError {
        if error.is_retryable() {
            tracing::warn!(%error, "order not acknowledged by kafka");
            OrderError::KafkaUnavailable {
                retry_after: self.retry_after,
                // A full local queue never reached Kafka; anything else may have.
                outcome_unknown: !matches!(error, ProduceError::QueueFull),
            }
        } else if matches!(error, ProduceError::TooLarge) {
            OrderError::TooLarge
        } else {
            OrderError::Internal(error.into())
        }
    }
}

/// A hash of everything the client sent, to tell a true repeat from a reused key.
fn fingerprint(request: &OrderRequest) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    request.order_id.hash(&mut hasher);
    request.customer_id.hash(&mut hasher);
    request.currency.hash(&mut hasher);
    for line in &request.items {
        (&line.product_id, line.quantity, &line.unit_price).hash(&mut hasher);
    }
    request.metadata.hash(&mut hasher);
    hasher.finish()
}
