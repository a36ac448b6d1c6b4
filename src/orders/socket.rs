//! Live status over WebSocket: `GET /api/orders/ws`. The same changes as the SSE streams,
//! for clients that follow many orders over one connection.
//!
//! The client sends `{"subscribe": {"order_ids": ["…"], "customer_id": "…"}}` (either or
//! both, as often as it likes, within the bounds below). The server sends one JSON text
//! message per change: `{"type": "event", "subscription": "order:<id>" | "customer:<id>",
//! "id": n, "event": "<STATUS>", "data": {StatusEvent}}`; `{"type": "end", "subscription": …}`
//! after an order's final status; `{"type": "dropped", …, "last": n}` when a customer
//! subscription fell too far behind (its later changes are not sent); `{"type": "error",
//! "detail": …}` for a message it cannot take. The socket counts as one live stream under
//! `status_view.max_live_streams`, is pinged every `live_keep_alive_secs`, and is closed
//! (1001, going away) at shutdown.

use std::collections::HashSet;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use futures::stream::{BoxStream, SelectAll};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::OrdersState;
use super::live::{Change, OpenStream, follow_feed, follow_order};
use super::store::FeedFilter;
use crate::http::error::{ApiError, Problem};

/// Orders one socket may follow.
const MAX_ORDERS: usize = 100;
/// Customers one socket may follow.
const MAX_CUSTOMERS: usize = 10;
/// Largest message a client may send.
const MAX_MESSAGE: usize = 16 * 1024;

/// A client message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    subscribe: Subscribe,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscribe {
    #[serde(default)]
    order_ids: Vec<Uuid>,
    customer_id: Option<String>,
}

/// What the socket's subscriptions yield: a change of one, or its end.
enum Item {
    Change(String, Change),
    End(String),
}

/// Follow orders over WebSocket.
///
/// Upgrades to a WebSocket. Send `{"subscribe": {"order_ids": ["…"], "customer_id": "…"}}`
/// (up to 100 orders and 10 customers per socket); every status change of those arrives as
/// `{"type": "event", "subscription": "order:<id>" | "customer:<id>", "id": n, "event":
/// "<STATUS>", "data": {…StatusEvent}}`, the history so far first for an order, then
/// `{"type": "end"}` after its final status. A customer subscription that falls 4,096 changes
/// behind gets `{"type": "dropped"}` and ends. Counts as one live stream; closed at shutdown.
#[utoipa::path(
    get, path = "/api/orders/ws", tag = "orders",
    params(
        ("Connection" = String, Header, description = "`Upgrade`"),
        ("Upgrade" = String, Header, description = "`websocket`"),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`"),
        ("Sec-WebSocket-Key" = String, Header, description = "16 random bytes, base64 (RFC 6455)"),
    ),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade request (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many open streams on this instance (`overloaded`); retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn order_socket(
    State(state): State<OrdersState>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let open = state.live.open(&state.metrics)?;
    Ok(upgrade
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| serve(socket, state, open)))
}

async fn serve(socket: WebSocket, state: OrdersState, _open: OpenStream) {
    let (mut sink, mut incoming) = socket.split();
    let mut subscriptions: SelectAll<BoxStream<'static, Item>> = SelectAll::new();
    let mut orders = HashSet::new();
    let mut customers = HashSet::new();
    let mut ping = tokio::time::interval(state.live.keep_alive);
    ping.tick().await;
    loop {
        let outgoing = tokio::select! {
            () = state.shutdown.cancelled() => {
                let close = CloseFrame { code: close_code::AWAY, reason: "shutting down".into() };
                let _ = sink.send(Message::Close(Some(close))).await;
                return;
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let (added, refused) =
                        subscribe(&state, &text, &mut orders, &mut customers).await;
                    subscriptions.extend(added);
                    match refused {
                        Some(detail) => json!({ "type": "error", "detail": detail }),
                        None => continue,
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    json!({ "type": "error", "detail": "send JSON text messages" })
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return,
            },
            Some(item) = subscriptions.next(), if !subscriptions.is_empty() => match item {
                Item::Change(subscription, Change::Event { id, event }) => {
                    state.metrics.live_events.inc();
                    json!({ "type": "event", "subscription": subscription, "id": id,
                            "event": event.status, "data": *event })
                }
                Item::Change(subscription, Change::Dropped { last }) => {
                    json!({ "type": "dropped", "subscription": subscription, "last": last })
                }
                Item::End(subscription) => json!({ "type": "end", "subscription": subscription }),
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
                continue;
            }
        };
        if sink
            .send(Message::Text(outgoing.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Takes a subscribe message: the new subscriptions' streams, and what was refused.
async fn subscribe(
    state: &OrdersState,
    text: &str,
    orders: &mut HashSet<Uuid>,
    customers: &mut HashSet<String>,
) -> (Vec<BoxStream<'static, Item>>, Option<String>) {
    match checked(text, orders, customers) {
        Ok((new_orders, customer_id)) => {
            follow(state, new_orders, customer_id, orders, customers).await
        }
        Err(refused) => (Vec::new(), Some(refused)),
    }
}

/// The new order ids and customer of a subscribe message, within the socket's bounds.
fn checked(
    text: &str,
    orders: &HashSet<Uuid>,
    customers: &HashSet<String>,
) -> Result<(Vec<Uuid>, Option<String>), String> {
    let message: ClientMessage = serde_json::from_str(text).map_err(|e| {
        format!(r#"expected {{"subscribe": {{"order_ids": [...], "customer_id": "..."}}}}: {e}"#)
    })?;
    let Subscribe {
        order_ids,
        customer_id,
    } = message.subscribe;
    let new_orders: Vec<Uuid> = order_ids
        .into_iter()
        .filter(|id| !orders.contains(id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if orders.len() + new_orders.len() > MAX_ORDERS {
        return Err(format!("at most {MAX_ORDERS} orders per socket"));
    }
    if let Some(customer) = &customer_id {
        if customer.is_empty() || customer.chars().count() > 64 {
            return Err("customer_id must be 1 to 64 characters".into());
        }
        if !customers.contains(customer) && customers.len() == MAX_CUSTOMERS {
            return Err(format!("at most {MAX_CUSTOMERS} customers per socket"));
        }
    }
    Ok((new_orders, customer_id))
}

async fn follow(
    state: &OrdersState,
    new_orders: Vec<Uuid>,
    customer_id: Option<String>,
    orders: &mut HashSet<Uuid>,
    customers: &mut HashSet<String>,
) -> (Vec<BoxStream<'static, Item>>, Option<String>) {
    let mut added: Vec<BoxStream<'static, Item>> = Vec::new();
    let mut unknown = Vec::new();
    // Each unknown order is waited for a moment (it may be on its way): all at once.
    let found = futures::future::join_all(
        new_orders
            .iter()
            .map(|id| follow_order(state, *id, 0, None)),
    )
    .await;
    for (id, changes) in new_orders.into_iter().zip(found) {
        let name = format!("order:{id}");
        match changes {
            Some(changes) => {
                orders.insert(id);
                let end = futures::stream::once(std::future::ready(Item::End(name.clone())));
                added.push(
                    changes
                        .map(move |c| Item::Change(name.clone(), c))
                        .chain(end)
                        .boxed(),
                );
            }
            None => unknown.push(id.to_string()),
        }
    }
    if let Some(customer) = customer_id.filter(|c| customers.insert(c.clone())) {
        let name = format!("customer:{customer}");
        let filter = FeedFilter {
            customer_id: Some(customer),
            status: None,
        };
        // From now on: no replay.
        let now = state.store.feed_position();
        added.push(
            follow_feed(state, filter, now, None)
                .map(move |c| Item::Change(name.clone(), c))
                .boxed(),
        );
    }
    let refused = (!unknown.is_empty()).then(|| format!("no such orders: {}", unknown.join(", ")));
    (added, refused)
}
