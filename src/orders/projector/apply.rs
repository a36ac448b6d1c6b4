//! Applying one record of either topic to the view.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::message::Message;
use uuid::Uuid;

use super::Projector;
use crate::orders::events::{OrderEvent, placed_order};
use crate::orders::status::OrderSnapshot;
use crate::orders::store::{Origin, Summary};
use crate::trace::TraceContext;
use crate::trace::spans;

/// How every `order_placed` record the service writes begins (serde writes an internally
/// tagged enum's tag first).
const PLACED_PREFIX: &[u8] = br#"{"type":"order_placed","#;

impl Projector {
    /// The exported span of a live status record applied to this instance's view: linked to
    /// the order's trace when that is sampled; none while replaying (a rebuild would make
    /// one per record).
    pub(super) fn apply_span(&self, message: &impl Message) -> spans::Span {
        if !spans::exporting() || message.topic() != self.status_topic || !self.is_caught_up() {
            return spans::Span::none();
        }
        let header = |name: &str| crate::kafka::header(message, name);
        spans::consume(
            spans::Consume::Apply,
            &spans::Consumed {
                topic: message.topic(),
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().and_then(|k| std::str::from_utf8(k).ok()),
                group: None,
                context: TraceContext::from_parts(
                    header(crate::trace::TRACEPARENT),
                    header(crate::trace::TRACESTATE),
                ),
            },
        )
    }

    pub(super) fn apply(&self, message: &impl Message, span: &mut spans::Span) {
        let Some(payload) = message.payload() else {
            return;
        };
        // Plain JSON or Confluent's wire format (`[schemas] wire_format`): the same JSON.
        let payload = crate::kafka::wire::json_payload(payload);
        // Records of orders the view holds at least as far along are not decoded again: an
        // order's final status is written once and nothing supersedes it, and an order
        // already known stays as it is when its `order_placed` record arrives. When the view
        // holds them as this instance's own local change, the record's arrival commits it.
        let id = message
            .key()
            .and_then(|key| std::str::from_utf8(key).ok())
            .and_then(|key| Uuid::parse_str(key).ok());
        if message.topic() == self.status_topic {
            let known = id.and_then(|id| self.store.known_for_status(&id).map(|k| (id, k)));
            // Whether the record needs nothing more: the view holds the order final, stored
            // or waiting for the writer, or as a local change now committed. False when the
            // cache dropped the order since `known` looked: the record is then applied like
            // any other.
            let settled = |(id, (_, uncommitted)): (Uuid, (Summary, bool))| {
                !uncommitted || self.store.commit_local(&id)
            };
            if let Some(known) = known.filter(|(_, (summary, _))| summary.status.is_final())
                && settled(known)
            {
                return;
            }
            match serde_json::from_slice::<OrderSnapshot>(payload) {
                Ok(snapshot) => {
                    let (id, status) = (snapshot.order.order_id, snapshot.status.as_str());
                    // What `known` found stands for the store's row (not read again), when
                    // the record's key names the order it carries.
                    let seen = known
                        .filter(|(key, _)| *key == id)
                        .map(|(_, (summary, _))| summary);
                    // The record's JSON is the row's (what an older version wrote, too: it
                    // decodes to this snapshot).
                    self.store
                        .apply_over(snapshot, Some(payload.to_vec()), Origin::Topic, seen);
                    span.live_event(&id, status);
                }
                Err(error) => tracing::warn!(%error, "undecodable status record skipped"),
            }
        } else {
            // An `order_placed` record needs nothing more when the view holds its order at
            // all (whatever its status), stored or waiting for the writer, or as a local
            // change now committed; asked only of those (a look has a side effect).
            let settled = |id: &Uuid| match self.store.held(id) {
                Some(uncommitted) => !uncommitted || self.store.commit_local(id),
                None => false,
            };
            // The service writes the tag first; anything else is decoded in full below.
            let placed = payload.starts_with(PLACED_PREFIX);
            if placed && id.as_ref().is_some_and(settled) {
                return;
            }
            // An order to hold as placed: its row's JSON is made around the order's JSON as
            // the record holds it, without encoding the order again.
            if placed && let Some((order, json)) = placed_order(payload) {
                match OrderSnapshot::pending_json(json, order.accepted_at) {
                    Some(row) => self.store.insert_read(order, row),
                    None => self.store.insert_unknown(order, Origin::Topic),
                }
                return;
            }
            // Undecodable order records are the processor's to dead-letter.
            match serde_json::from_slice::<OrderEvent>(payload) {
                Ok(OrderEvent::OrderPlaced { order }) => {
                    if placed || !id.as_ref().is_some_and(settled) {
                        self.store.insert_unknown(order, Origin::Topic);
                    }
                }
                Ok(OrderEvent::CancelRequested { order_id, .. }) => {
                    self.store.mark_cancel_requested(&order_id, Origin::Topic);
                }
                Err(_) => {}
            }
        }
    }

    /// How long a status record took to reach the view (live records only: a replay at start
    /// would measure the records' age).
    pub(super) fn observe_lag(&self, timestamp_ms: Option<i64>) {
        let Some(written) = timestamp_ms.and_then(|ms| u64::try_from(ms).ok()) else {
            return;
        };
        let written = UNIX_EPOCH + Duration::from_millis(written);
        let seconds = SystemTime::now()
            .duration_since(written)
            .unwrap_or_default()
            .as_secs_f64();
        self.metrics
            .order_stage
            .with_label_values(&["status_record_to_view"])
            .observe(seconds);
    }
}
