//! Live status: `GET /api/orders/{id}/events`, an order's status changes as Server-Sent
//! Events, served from the status view of whichever instance takes the request (every
//! instance has every order).
//!
//! The stream sends the history so far (after `Last-Event-ID`), then each change as it
//! reaches the view, and ends after the final status. It is pulled: an event is made only
//! when the connection can take it, so a slow client holds one order's watch and nothing
//! queues up for it. Open streams are bounded per instance; past the bound the answer is
//! `503 overloaded` with `Retry-After`. Streams end at shutdown, inside the grace period.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::OrdersState;
use super::status::{OrderSnapshot, OrderStatus, StatusChange};
use super::store::{FeedEntry, FeedFilter, FeedSubscription, OrderWatch};
use crate::http::error::{ApiError, Problem};
use crate::metrics::Metrics;

/// The bound on open streams of this instance, and their keep-alive.
pub struct LiveStreams {
    permits: Arc<Semaphore>,
    pub(crate) keep_alive: Duration,
    retry_after: Duration,
}

impl LiveStreams {
    /// At most `max` streams open at once, each sending a keep-alive comment after
    /// `keep_alive` without events; refusals say `Retry-After: retry_after`.
    pub fn new(max: usize, keep_alive: Duration, retry_after: Duration) -> Self {
        LiveStreams {
            permits: Arc::new(Semaphore::new(max)),
            keep_alive,
            retry_after,
        }
    }

    /// A place for one more stream, or `503 overloaded` when all are taken.
    pub(crate) fn open(&self, metrics: &Arc<Metrics>) -> Result<OpenStream, ApiError> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok(OpenStream::new(permit, metrics.clone())),
            Err(_) => {
                metrics.live_streams_refused.inc();
                Err(ApiError::Overloaded {
                    retry_after: self.retry_after,
                })
            }
        }
    }

    /// The events as an SSE response with this instance's keep-alive.
    fn respond(
        &self,
        changes: impl futures::Stream<Item = Change> + Send + 'static,
        metrics: Arc<Metrics>,
    ) -> Response {
        use futures::StreamExt;
        let events = changes.map(move |change| {
            if matches!(change, Change::Event { .. }) {
                metrics.live_events.inc();
            }
            Ok::<_, Infallible>(change.sse())
        });
        Sse::new(events)
            .keep_alive(KeepAlive::new().interval(self.keep_alive))
            .into_response()
    }
}

/// One status change: the `data` of an event (the event's `event` is the status, its `id`
/// the change's position in the order's history, from 1).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatusEvent {
    /// The order.
    pub order_id: Uuid,
    /// Its customer.
    pub customer_id: String,
    /// The status entered.
    pub status: OrderStatus,
    /// Why, for `FAILED` and `CANCELLED`.
    pub reason: Option<String>,
    /// When.
    #[serde(serialize_with = "crate::orders::timestamp::serialize")]
    pub at: DateTime<Utc>,
    /// The order's total.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "39.98")]
    pub total: Decimal,
    /// ISO 4217 code of the total.
    pub currency: String,
}

/// One Server-Sent Event of a live stream, as the document describes it (comments, which
/// keep the connection open, are not events).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct LiveEvent {
    /// The change's position in the order's history, from 1; send it back as
    /// `Last-Event-ID` to resume after it.
    #[schema(example = "1")]
    id: String,
    /// The status entered.
    event: OrderStatus,
    /// A [`StatusEvent`] as JSON.
    data: String,
}

/// Follow an order's status.
///
/// Server-Sent Events: the order's status changes so far (after `Last-Event-ID`), then each
/// change as it happens, then the stream ends after the final status. Each event has `id`
/// (the change's position in the order's history, from 1), `event` (the status) and `data`
/// (a `StatusEvent` as JSON). Comments keep an idle connection open. A `Last-Event-ID`
/// request header (what `EventSource` sends on reconnect) resumes after that event. Any
/// instance serves any order: one this instance has not seen yet (accepted elsewhere a
/// moment ago) is waited for up to a second before the answer is 404.
#[utoipa::path(
    get, path = "/api/orders/{id}/events", tag = "orders",
    // `Last-Event-ID` is described above rather than declared: it is the protocol's own
    // header, and a declared header parameter makes fuzzers expect unknown headers refused.
    params(("id" = Uuid, Path, description = "The order id")),
    responses(
        (status = 200, description = "The order's status changes, one event each (`data` is a StatusEvent as JSON)", body = LiveEvent, content_type = "text/event-stream"),
        (status = 404, description = "No such order (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many open streams on this instance (`overloaded`); retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn order_events(
    State(state): State<OrdersState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = super::api::parse_id(&id)?;
    let after = last_event_id(&headers);
    let open = state.live.open(&state.metrics)?;
    let changes = follow_order(&state, id, after, Some(open))
        .await
        .ok_or(ApiError::NotFound("order"))?;
    Ok(state.live.respond(changes, state.metrics.clone()))
}

/// The changes of order `id` after the `after`-th, ending after its final status; `None`
/// when the view does not know the order (after waiting a moment for it).
pub(crate) async fn follow_order(
    state: &OrdersState,
    id: Uuid,
    after: usize,
    open: Option<OpenStream>,
) -> Option<impl futures::Stream<Item = Change> + Send + 'static> {
    // Watch before reading, so no change falls between the two.
    let mut watch = state.store.watch(id);
    let mut snapshot = watch.get();
    if snapshot.is_none() {
        // Accepted by another instance a moment ago: its record is on the way to this view.
        let _ = tokio::time::timeout(UNKNOWN_ORDER_WAIT, watch.changed()).await;
        snapshot = watch.get();
    }
    let follow = Follow {
        sent: after.min(snapshot?.history.len()),
        watch,
        pending: VecDeque::new(),
        finished: false,
        shutdown: state.shutdown.clone(),
        _open: open,
    };
    Some(futures::stream::unfold(follow, Follow::next))
}

/// Every later change `filter` wants (after the feed position `after`, from the replay).
pub(crate) fn follow_feed(
    state: &OrdersState,
    filter: FeedFilter,
    after: u64,
    open: Option<OpenStream>,
) -> impl futures::Stream<Item = Change> + Send + 'static {
    let mut subscription = state.store.follow(after, &filter);
    let feed = Feed {
        filter,
        replay: std::mem::take(&mut subscription.replay).into(),
        last: after,
        subscription,
        shutdown: state.shutdown.clone(),
        metrics: state.metrics.clone(),
        _open: open,
        dropped: false,
    };
    futures::stream::unfold(feed, Feed::next)
}

/// How long a stream of an order this view does not know yet waits for it before 404.
const UNKNOWN_ORDER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Query of `GET /api/orders/events`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FeedParams {
    /// Only this customer's orders.
    #[param(min_length = 1, max_length = 64)]
    pub customer_id: Option<String>,
    /// Only changes into this status.
    #[param(value_type = Option<crate::orders::OrderStatus>)]
    pub status: Option<String>,
}

/// Follow every order's status.
///
/// Server-Sent Events: every status change that reaches this instance's view from now on,
/// optionally only one customer's or only changes into one status. Each event has `id` (its
/// position on this instance's feed), `event` (the status) and `data` (a `StatusEvent` as
/// JSON). A `Last-Event-ID` request header first replays the recent changes after that id
/// that the instance still holds (the last 10,000). A client that falls 4,096 changes behind
/// gets a last event `dropped` and the stream ends; reconnect with `Last-Event-ID`.
#[utoipa::path(
    get, path = "/api/orders/events", tag = "orders",
    params(FeedParams),
    responses(
        (status = 200, description = "Status changes, one event each (`data` is a StatusEvent as JSON)", body = LiveEvent, content_type = "text/event-stream"),
        (status = 400, description = "Bad query (`invalid_query`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many open streams on this instance (`overloaded`); retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn order_feed(
    State(state): State<OrdersState>,
    crate::http::extract::QueryParams(params): crate::http::extract::QueryParams<FeedParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let status = params
        .status
        .as_deref()
        .map(super::api::parse_status)
        .transpose()?;
    // Without `Last-Event-ID` the feed starts now: a new follower is not sent the past.
    let after = match headers.get("last-event-id") {
        Some(_) => last_event_id(&headers) as u64,
        None => state.store.feed_position(),
    };
    let open = state.live.open(&state.metrics)?;
    let filter = FeedFilter {
        customer_id: params.customer_id,
        status,
    };
    let changes = follow_feed(&state, filter, after, Some(open));
    Ok(state.live.respond(changes, state.metrics.clone()))
}

fn last_event_id(headers: &HeaderMap) -> usize {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
}

/// A feed subscriber's filter and place.
struct Feed {
    filter: FeedFilter,
    replay: VecDeque<FeedEntry>,
    /// The last sequence number sent or skipped.
    last: u64,
    subscription: FeedSubscription,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
    /// The stream's place under the bound (a WebSocket holds one for all its subscriptions).
    _open: Option<OpenStream>,
    dropped: bool,
}

impl Feed {
    async fn next(mut self) -> Option<(Change, Feed)> {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            if self.dropped {
                return None;
            }
            let entry = match self.replay.pop_front() {
                Some(entry) => entry,
                None => tokio::select! {
                    () = self.shutdown.cancelled() => return None,
                    received = self.subscription.receiver.recv() => match received {
                        Ok(entry) => entry,
                        Err(RecvError::Lagged(_)) => {
                            self.dropped = true;
                            self.metrics.live_streams_dropped.inc();
                            let last = self.last;
                            return Some((Change::Dropped { last }, self));
                        }
                        Err(RecvError::Closed) => return None,
                    },
                },
            };
            if entry.seq <= self.last {
                continue;
            }
            self.last = entry.seq;
            if self.filter.wants(&entry.event) {
                let change = Change::Event {
                    id: entry.seq,
                    event: entry.event,
                };
                return Some((change, self));
            }
        }
    }
}

/// One stream's place in its order's history.
struct Follow {
    watch: OrderWatch,
    /// Changes sent (or skipped by `Last-Event-ID`), from the start of the history.
    sent: usize,
    pending: VecDeque<Change>,
    finished: bool,
    shutdown: CancellationToken,
    /// The stream's place under the bound (a WebSocket holds one for all its subscriptions).
    _open: Option<OpenStream>,
}

impl Follow {
    async fn next(mut self) -> Option<(Change, Follow)> {
        loop {
            if let Some(change) = self.pending.pop_front() {
                return Some((change, self));
            }
            if self.finished {
                return None;
            }
            // An order leaves the view only when evicted; the stream then ends.
            let snapshot = self.watch.get()?;
            for (index, change) in snapshot.history.iter().enumerate().skip(self.sent) {
                self.pending.push_back(Change::Event {
                    id: index as u64 + 1,
                    event: Arc::new(StatusEvent::of(&snapshot, change)),
                });
            }
            self.sent = self.sent.max(snapshot.history.len());
            self.finished = snapshot.status.is_final();
            if self.pending.is_empty() && !self.finished {
                tokio::select! {
                    () = self.shutdown.cancelled() => return None,
                    () = self.watch.changed() => {}
                }
            }
        }
    }
}

/// What a live stream sends: a status change, or the end of a feed that fell behind.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// A change; `id` is its position in the order's history (per-order streams) or on the
    /// instance's feed (feeds).
    Event { id: u64, event: Arc<StatusEvent> },
    /// The subscriber fell too far behind; changes after `last` were missed.
    Dropped { last: u64 },
}

impl Change {
    /// As a Server-Sent Event.
    fn sse(&self) -> Event {
        match self {
            Change::Event { id, event } => {
                let sse = Event::default()
                    .id(id.to_string())
                    .event(event.status.as_str());
                // Serializing this struct cannot fail; an empty event would still keep the order.
                sse.json_data(event)
                    .unwrap_or_else(|_| Event::default().id(id.to_string()))
            }
            Change::Dropped { last } => Event::default().event("dropped").data(format!(
                "too slow: changes after {last} were missed; reconnect with Last-Event-ID"
            )),
        }
    }
}

impl StatusEvent {
    /// `change` of the order in `snapshot`.
    pub fn of(snapshot: &OrderSnapshot, change: &StatusChange) -> Self {
        StatusEvent {
            order_id: snapshot.order.order_id,
            customer_id: snapshot.order.customer_id.clone(),
            status: change.status,
            reason: change.reason.clone(),
            at: change.at,
            total: snapshot.order.total,
            currency: snapshot.order.currency.code().to_string(),
        }
    }
}

/// Counts a stream as open while it lives, and holds its place under the bound.
pub(crate) struct OpenStream {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl OpenStream {
    fn new(permit: OwnedSemaphorePermit, metrics: Arc<Metrics>) -> Self {
        metrics.live_streams_open.inc();
        OpenStream {
            _permit: permit,
            metrics,
        }
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.metrics.live_streams_open.dec();
    }
}
