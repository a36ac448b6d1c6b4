//! The application's state: one `Arc` of every part, with a substate per feature that is
//! itself one `Arc` ([`FromRef`]), so a handler asks only for what its feature uses and a
//! request clones one pointer.

use std::sync::Arc;

use axum::extract::FromRef;
use tokio_util::sync::CancellationToken;

use crate::clusters::broker::LocalBroker;
use crate::clusters::{ClusterRegistry, ClustersState};
use crate::config::Settings;
use crate::http::auth::AccessControl;
use crate::kafka::admin::KafkaAdmin;
use crate::kafka::consumer::AssignmentGeneration;
use crate::metrics::Metrics;
use crate::orders::projector::Projector;
use crate::orders::{Intake, OrderStore, OrdersState};
use crate::schemas::routes::SchemasState;

/// Shared state of the service's parts. Cloned for every request by the router and several
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
    pub orders: Arc<Intake>,
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
    /// What the orders' routes use.
    pub orders_routes: OrdersState,
    /// What the cluster management routes use.
    pub cluster_routes: ClustersState,
    /// What the schema registry routes use.
    pub schema_routes: SchemasState,
    /// The service's schema registry and clients of others.
    pub schemas: Arc<crate::schemas::registry::Registries>,
    /// The schemas the service's own records are written with (`[schemas] wire_format`).
    pub wire: Arc<crate::kafka::wire::TopicSchemas>,
}

impl FromRef<AppState> for SchemasState {
    fn from_ref(state: &AppState) -> Self {
        state.schema_routes.clone()
    }
}

impl FromRef<AppState> for OrdersState {
    fn from_ref(state: &AppState) -> Self {
        state.orders_routes.clone()
    }
}

impl FromRef<AppState> for ClustersState {
    fn from_ref(state: &AppState) -> Self {
        state.cluster_routes.clone()
    }
}
