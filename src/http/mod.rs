//! The HTTP layer: the handlers' shared state, the router with its middleware stack
//! ([`router`]), the listener ([`serve`]), the error type sent as problem+json ([`error`]),
//! the extractors ([`extract`]), access control ([`auth`]), the OpenAPI document
//! ([`openapi`]) and the probes ([`health`]). Handlers live with their feature
//! (`orders::api`, `admin`) and take [`AppState`].

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::clusters::ClusterRegistry;
use crate::config::Settings;
use crate::http::auth::AccessControl;
use crate::kafka::admin::KafkaAdmin;
use crate::kafka::consumer::AssignmentGeneration;
use crate::local_broker::LocalBroker;
use crate::metrics::Metrics;
use crate::orders::projector::Projector;
use crate::orders::{OrderService, OrderStore};

pub mod audit;
pub mod auth;
pub mod error;
pub mod extract;
pub mod health;
pub mod middleware;
pub mod openapi;
pub mod router;
pub mod serve;

/// Shared state of the HTTP handlers. Cloned for every request by the router and several
/// layers, so it is one `Arc` (a clone is one atomic increment; a struct of many `Arc`s
/// measured about a tenth of the intake's CPU in clones and drops).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    /// Shares `parts` with every handler.
    pub fn new(parts: AppParts) -> Self {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct AppParts {
    /// The loaded settings.
    pub settings: Arc<Settings>,
    /// Order intake.
    pub orders: Arc<OrderService>,
    /// Metrics handles.
    pub metrics: Arc<Metrics>,
    /// Names of the service's own topics, for readiness.
    pub topic_names: Arc<Vec<String>>,
    /// Cancelled when the service is stopping.
    pub shutdown: CancellationToken,
    /// The order status view.
    pub store: Arc<OrderStore>,
    /// Open live status streams, bounded.
    pub live: Arc<crate::orders::live::LiveStreams>,
    /// The view's reader, for readiness.
    pub projector: Arc<Projector>,
    /// Kafka management.
    pub admin: KafkaAdmin,
    /// The local development broker's lifecycle.
    pub local_broker: Arc<LocalBroker>,
    /// Assignments received by this instance's processors, for readiness.
    pub processing_assignments: Arc<AssignmentGeneration>,
    /// API keys, rate limits and the audit log.
    pub access: Arc<AccessControl>,
    /// The clusters this instance manages, the home one first.
    pub clusters: Arc<ClusterRegistry>,
    /// Operations across clusters.
    pub operations: Arc<crate::clusters::operations::Operations>,
    /// Cluster templates.
    pub templates: Arc<crate::clusters::templates::Templates>,
    /// The brokers of local clusters.
    pub local_clusters: Arc<crate::clusters::local::LocalClusters>,
    /// Whether readiness was reported once (logged then).
    pub said_ready: std::sync::atomic::AtomicBool,
}
