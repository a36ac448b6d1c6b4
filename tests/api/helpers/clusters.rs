//! Many clusters: a second broker registered beside the home one, and requests to the
//! management API.

use serde_json::Value;

use super::app::{TestApp, test_settings};
use super::broker::{Engine, TestBroker};
use orderflow::config::Settings;

/// A cluster's settings for the registry.
pub fn cluster(
    name: &str,
    environment: &str,
    bootstrap_servers: String,
) -> orderflow::clusters::ClusterSettings {
    orderflow::clusters::ClusterSettings {
        name: name.into(),
        description: String::new(),
        environment: environment.into(),
        tags: vec![],
        bootstrap_servers,
        librdkafka: Default::default(),
        template_id: None,
        local: None,
    }
}

pub async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Two brokers, the second registered as cluster `second` in the settings of an instance
/// on the first, which runs no processors (cluster tests place no orders).
pub async fn two_clusters() -> (TestBroker, TestBroker, Settings) {
    let home = TestBroker::start(Engine::Memory).await;
    let second = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    settings.clusters.insert(
        "second".into(),
        cluster("Second", "testing", second.bootstrap()),
    );
    (home, second, settings)
}

/// A home broker and a target registered as cluster `slow`, reached through a proxy whose
/// answers the test can hold back ([`TestBroker::hold_answers`]); admin calls give up after
/// 3 s.
pub async fn slow_target() -> (TestBroker, TestBroker, Settings) {
    let home = TestBroker::start(Engine::Memory).await;
    let target = TestBroker::start_behind_proxy(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    settings.kafka.admin_timeout = std::time::Duration::from_millis(3_000);
    settings.clusters.insert(
        "slow".into(),
        cluster("Slow", "testing", target.bootstrap()),
    );
    (home, target, settings)
}
