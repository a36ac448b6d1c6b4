//! Many clusters: a second broker registered beside the home one, and requests to the
//! management API.

use std::time::Duration;

use serde_json::Value;

use super::polling::poll_until;

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
        schema_registry: None,
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

/// Starts an operation of `kind` (`replicate`, `migrate`): 202, where to follow it, and the
/// operation as accepted.
pub async fn start_operation(app: &TestApp, kind: &str, request: &Value) -> (String, Value) {
    let response = app
        .client
        .post(app.url(&format!("/api/operations/{kind}")))
        .json(request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    (location, response.json().await.unwrap())
}

pub async fn wait_finished(app: &TestApp, location: &str) -> Value {
    poll_until(
        "operation never finished",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let (status, operation) = app.get_json(location).await;
            assert_eq!(status, 200, "{operation}");
            if ["pending", "running"].contains(&operation["status"].as_str().unwrap()) {
                Err(operation.to_string())
            } else {
                Ok(operation)
            }
        },
    )
    .await
}
