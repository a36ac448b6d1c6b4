//! The service started on port 0 against a test's broker, with topic names no other test
//! uses, and the requests a test makes of it.

use super::broker::TestBroker;
use super::metrics::Scrape;
use super::polling::{wait_ready, wait_status};

use std::path::Path;
use std::time::{Duration, Instant};

use orderflow::app::Application;
use orderflow::config::Settings;
use tokio_util::sync::CancellationToken;

/// A status view file no other instance uses (under cargo's temporary folder for tests).
pub fn fresh_view_path() -> String {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("views")
        .join(format!("{}.db", uuid::Uuid::new_v4().simple()))
        .display()
        .to_string()
}

/// The same settings for a second instance running beside the first (its own view file).
pub fn another_instance(settings: &Settings) -> Settings {
    let mut settings = settings.clone();
    settings.status_view.path = fresh_view_path();
    settings
}

/// Settings for a test: the shipped defaults, this broker, port 0, and topic names no other
/// test uses.
pub fn test_settings(broker: &TestBroker) -> Settings {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = Settings::load_from(&dir, None).expect("default config loads");
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    settings.kafka.bootstrap_servers = broker.bootstrap();
    settings.http.port = 0;
    settings.status_view.path = fresh_view_path();
    settings.topics.orders.name = format!("{prefix}.orders");
    settings.topics.orders.partitions = 3;
    settings.topics.status.name = format!("{prefix}.orders.status");
    settings.topics.status.partitions = 3;
    settings.topics.dlq.name = format!("{prefix}.orders.dlq");
    settings.topics.audit.name = format!("{prefix}.audit");
    settings.topics.clusters.name = format!("{prefix}.clusters");
    settings.topics.operations.name = format!("{prefix}.operations");
    settings.topics.templates.name = format!("{prefix}.templates");
    settings.topics.schemas.name = format!("{prefix}.schemas");
    settings.shutdown.grace_period = Duration::from_millis(5000);
    settings.processing.group_id = format!("{prefix}-processors");
    settings.processing.session_timeout = Duration::from_millis(6000);
    settings.processing.commit_interval = Duration::from_millis(200);
    // Tansu holds every fetch for the full wait, even once records arrive (Kafka answers
    // at once): at the shipped 500 ms each order would take half a second more.
    settings.processing.fetch_wait_max = Duration::from_millis(50);
    settings.processing.retry_backoff = Duration::from_millis(20);
    settings.processing.rules.max_order_total = "1000".into();
    settings.processing.rules.max_quantity_per_line = 10;
    settings.processing.rules.blocked_customers = vec!["blocked-customer".into()];
    settings
}

/// The service running in this test's runtime.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub shutdown: CancellationToken,
    pub handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts the service and waits until it is ready.
    pub async fn spawn(settings: Settings) -> TestApp {
        let app = TestApp::start(settings).await;
        app.wait_ready().await;
        app
    }

    /// Starts the service without waiting for readiness.
    pub async fn start(settings: Settings) -> TestApp {
        // TEST_LOG=1 shows the service's logs (with RUST_LOG as the filter).
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = orderflow::telemetry::init(&settings.telemetry);
        }
        let shutdown = CancellationToken::new();
        // A restarted instance waits for the one before it (same view file) to let go.
        let deadline = Instant::now() + Duration::from_secs(15);
        let app = loop {
            match Application::build(settings.clone(), shutdown.clone()).await {
                Ok(app) => break app,
                Err(error)
                    if format!("{error:#}").contains("in use by another process")
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(error) => panic!("app builds: {error:#}"),
            }
        };
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = Some(tokio::spawn(app.run()));
        TestApp {
            address,
            client: reqwest::Client::new(),
            settings,
            shutdown,
            handle,
        }
    }

    pub async fn wait_ready(&self) {
        // Generous: under the full suite on two cores a group's first rebalance has taken
        // over 30 s.
        wait_ready(&self.client, &self.address, Duration::from_secs(60)).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Posts an order and returns its id, asserting 202.
    pub async fn place(&self, order: &serde_json::Value) -> String {
        let response = self.post_json("/api/orders", order).await;
        assert_eq!(response.status(), 202);
        let body: serde_json::Value = response.json().await.unwrap();
        body["order_id"].as_str().unwrap().to_string()
    }

    /// Asks to cancel order `id`; the answer as it came.
    pub async fn cancel(&self, id: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/orders/{id}/cancel")))
            .send()
            .await
            .unwrap()
    }

    /// Long-polls until the order has `status` (or another final one), for up to 30 s.
    pub async fn wait_status(&self, id: &str, status: &str) -> serde_json::Value {
        wait_status(&self.client, &self.address, id, status).await
    }

    /// The whole /metrics exposition.
    pub async fn metrics_text(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        response.text().await.unwrap()
    }

    /// /metrics parsed by a Prometheus exposition parser.
    pub async fn scrape(&self) -> Scrape {
        Scrape::parse(&self.metrics_text().await)
    }

    /// One sample's value: `name` with exactly these labels among its own (others ignored,
    /// matching samples summed); 0 when absent.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.scrape().await.value(name, labels)
    }

    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The `traceparent` the service answered with.
pub fn answered_traceparent(response: &reqwest::Response) -> String {
    response.headers()["traceparent"]
        .to_str()
        .expect("a visible-ASCII traceparent")
        .to_string()
}

/// The order the API documentation shows as its example (so the tests prove the example is
/// valid), without its fixed `order_id`: each use is a new order.
pub fn valid_order() -> serde_json::Value {
    let mut order = orderflow::orders::examples::order_request();
    order.as_object_mut().expect("an object").remove("order_id");
    order
}
