//! The composition root: the only place that names every feature. It builds each part from
//! its own settings ([`parts`]), shares them in one [`AppState`], starts the background work
//! ([`tasks`]), serves HTTP, and shuts down in order — stop accepting, finish in-flight
//! requests, stop background tasks, flush the producer — within the grace period.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::http::serve::{HttpService, ServeOptions, serve};
use crate::metrics::Metrics;

mod catalog;
mod health;
mod parts;
mod routes;
mod stack;
mod state;
mod tasks;

pub use parts::{client_settings, consumer_options, topic_specs};
pub use routes::{api_router, document, endpoints};
pub use state::{AppParts, AppState};

/// A built service, bound to its port, ready to [`run`](Application::run).
pub struct Application {
    listener: TcpListener,
    service: HttpService,
    state: AppState,
    tasks: TaskTracker,
    /// Stops the background workers; cancelled only after HTTP has drained.
    workers: CancellationToken,
}

impl Application {
    /// Builds every part and binds the listener. Kafka need not be reachable yet: topics are
    /// ensured in the background and readiness waits for them.
    pub async fn build(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let metrics = Arc::new(Metrics::new().context("Failed to register metrics")?);
        let kafka = parts::Kafka::connect(&settings, &metrics)?;
        metrics.initialize(
            &settings.topics.orders.name,
            &kafka
                .topic_names
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        let orders = parts::Orders::build(&settings, &kafka, &metrics)?;
        let access = parts::access_control(&settings, &kafka, &metrics)?;
        let tables = parts::tables(&settings, &kafka);
        let schemas = parts::Schemas::build(&settings, &kafka, &tables)?;
        let clusters = parts::Clusters::build(&settings, &kafka, tables, &schemas)?;
        let state = AppState::new(AppParts {
            schema_routes: schemas.routes(&settings),
            schemas: schemas.registries.clone(),
            wire: kafka.wire.clone(),
            orders_routes: orders.routes(&settings, &metrics, &access, &shutdown),
            cluster_routes: clusters.routes(&settings, &kafka, &shutdown),
            settings: settings.clone(),
            orders: orders.intake.clone(),
            metrics: metrics.clone(),
            topic_names: kafka.topic_names.clone(),
            shutdown,
            store: orders.store.clone(),
            live: orders.live.clone(),
            projector: orders.projector.clone(),
            admin: kafka.admin.clone(),
            local_broker: clusters.local_broker.clone(),
            processing_assignments: Default::default(),
            access,
            clusters: clusters.registry.clone(),
            operations: clusters.operations.clone(),
            templates: clusters.templates.clone(),
            local_clusters: clusters.local_clusters.clone(),
            said_ready: Default::default(),
        });
        let workers = CancellationToken::new();
        let tasks = tasks::spawn(&state, &kafka, &orders, &clusters, &schemas, &workers)?;
        let address = format!("{}:{}", settings.http.host, settings.http.port);
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("Failed to bind {address} (http.host, http.port)"))?;
        Ok(Application {
            listener,
            service: stack::router(state.clone()),
            state,
            tasks,
            workers,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until the shutdown token is cancelled, then drains within the grace period.
    pub async fn run(self) -> anyhow::Result<()> {
        let Application {
            listener,
            service,
            state,
            tasks,
            workers,
        } = self;
        tracing::info!(address = %listener.local_addr()?, "orderflow listening");
        let shutdown = state.shutdown.clone();
        let options = ServeOptions {
            max_connections: state.settings.http.max_connections,
            header_read_timeout: state.settings.http.header_read_timeout,
        };
        let mut server = tokio::spawn(serve(listener, service, options, shutdown.clone()));
        tokio::select! {
            result = &mut server => {
                // The loop only ends by itself if its task panicked.
                shutdown.cancel();
                result.context("HTTP server task failed")?;
            }
            () = shutdown.cancelled() => {}
        }
        let grace = state.settings.shutdown.grace_period;
        let drain = async {
            if !server.is_finished() {
                let _ = server.await;
            }
            // HTTP has drained; now consumers finish the messages in hand and commit.
            workers.cancel();
            tasks.close();
            tasks.wait().await;
            // What the processors wrote through after the writer's last commit.
            let store = state.store.clone();
            if let Ok(Err(error)) = tokio::task::spawn_blocking(move || store.flush()).await {
                tracing::error!(error = %format!("{error:#}"), "status view's last write failed; the next start reads those records again");
            }
            let flush_timeout = state.settings.producer.flush_timeout;
            if let Err(error) = state.orders.producer.flush(flush_timeout).await {
                tracing::error!(%error, "producer flush failed; unacknowledged records were answered 503");
            }
        };
        match tokio::time::timeout(grace, drain).await {
            Ok(()) => tracing::info!("orderflow stopped cleanly"),
            Err(_) => tracing::warn!(?grace, "grace period over; exiting with work in flight"),
        }
        Ok(())
    }
}
