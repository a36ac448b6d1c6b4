//! What the orders' routes share: one `Arc`, taken from the application's state by
//! `FromRef`, so the handlers name nothing above their feature.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::live::LiveStreams;
use super::{Intake, OrderStore};
use crate::http::auth::AccessControl;
use crate::metrics::Metrics;

/// The orders' routes' state.
#[derive(Clone)]
pub struct OrdersState(Arc<OrdersParts>);

impl OrdersState {
    /// Shares `parts` with every orders handler.
    pub fn new(parts: OrdersParts) -> Self {
        OrdersState(Arc::new(parts))
    }
}

impl std::ops::Deref for OrdersState {
    type Target = OrdersParts;

    fn deref(&self) -> &OrdersParts {
        &self.0
    }
}

/// What [`OrdersState`] shares.
pub struct OrdersParts {
    /// Order intake.
    pub orders: Arc<Intake>,
    /// The status view.
    pub store: Arc<OrderStore>,
    /// Open live status streams, bounded.
    pub live: Arc<LiveStreams>,
    /// Metrics handles.
    pub metrics: Arc<Metrics>,
    /// Keys and buckets: a bulk pays for its orders beyond the first.
    pub access: Arc<AccessControl>,
    /// `status_view.max_wait_ms`: the longest `wait_for` of a lookup.
    pub max_wait: Duration,
    /// Cancelled when the service is stopping (live streams end).
    pub shutdown: CancellationToken,
}
