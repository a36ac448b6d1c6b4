//! The service as a process: graceful shutdown keeps every acknowledged order.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// Starts the real binary against `broker` with `settings`' topic names.
pub fn spawn_service(
    broker: &TestBroker,
    settings: &orderflow::config::Settings,
    port: u16,
) -> std::process::Child {
    service_command(broker, settings, port)
        .spawn()
        .expect("start orderflow")
}

/// The command that runs the real binary against `broker` with `settings`' topic names,
/// logs off.
pub fn service_command(
    broker: &TestBroker,
    settings: &orderflow::config::Settings,
    port: u16,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderflow"));
    command
        .env(
            "ORDERFLOW_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        )
        .env("ORDERFLOW__KAFKA__BOOTSTRAP_SERVERS", broker.bootstrap())
        .env("ORDERFLOW__HTTP__PORT", port.to_string())
        .env("ORDERFLOW__STATUS_VIEW__PATH", &settings.status_view.path)
        .env(
            "ORDERFLOW__TOPICS__ORDERS__NAME",
            &settings.topics.orders.name,
        )
        .env(
            "ORDERFLOW__TOPICS__STATUS__NAME",
            &settings.topics.status.name,
        )
        .env("ORDERFLOW__TOPICS__DLQ__NAME", &settings.topics.dlq.name)
        .env("ORDERFLOW__TOPICS__ORDERS__PARTITIONS", "3")
        .env("ORDERFLOW__TOPICS__STATUS__PARTITIONS", "3")
        .env(
            "ORDERFLOW__SHUTDOWN__GRACE_PERIOD_MS",
            settings.shutdown.grace_period.as_millis().to_string(),
        )
        .env(
            "ORDERFLOW__PROCESSING__GROUP_ID",
            &settings.processing.group_id,
        )
        .env(
            "ORDERFLOW__PROCESSING__SESSION_TIMEOUT_MS",
            settings.processing.session_timeout.as_millis().to_string(),
        )
        .env(
            "ORDERFLOW__PROCESSING__FETCH_WAIT_MAX_MS",
            settings.processing.fetch_wait_max.as_millis().to_string(),
        )
        .env(
            "ORDERFLOW__PROCESSING__COMMIT_INTERVAL_MS",
            settings.processing.commit_interval.as_millis().to_string(),
        )
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    kill_with_parent(&mut command);
    command
}

/// The real binary against `broker` with fresh test settings, once it says ready: its
/// settings, the process, its base URL and a client.
pub async fn start_service_process(
    broker: &TestBroker,
) -> (
    orderflow::config::Settings,
    std::process::Child,
    String,
    reqwest::Client,
) {
    let settings = test_settings(broker);
    let port = free_port();
    let child = spawn_service(broker, &settings, port);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    (settings, child, base, client)
}

pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{base}/health/ready")).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "service at {base} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_stream_of_orders_loses_no_acknowledged_order() {
    let broker = TestBroker::start(Engine::Memory).await;
    let (settings, mut child, base, client) = start_service_process(&broker).await;

    let senders = stream_orders(&client, &base, 8);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopped_at = Instant::now();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(stopped_at.elapsed() < settings.shutdown.grace_period + Duration::from_millis(2000));

    let accepted = collect_accepted(senders).await;
    assert!(
        accepted.len() > 10,
        "only {} orders accepted before SIGTERM",
        accepted.len()
    );
    let records = read_topic(
        &broker.bootstrap(),
        &settings.topics.orders.name,
        accepted.len(),
    )
    .await;
    let on_topic: std::collections::HashSet<_> =
        records.iter().filter_map(|r| r.key.clone()).collect();
    let missing: Vec<_> = accepted
        .iter()
        .filter(|id| !on_topic.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged orders missing from the topic",
        missing.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_orders_stream_in_then_restart_every_order_gets_one_outcome() {
    // sqlite: correct watermarks, so the restarted instance's view really reaches the end
    // of the status topic before it processes (see BROKER.md), and fetches from a committed
    // offset inside a batch are served (the memory engine answers them with nothing).
    let broker = TestBroker::start(Engine::Sqlite).await;
    let settings = test_settings(&broker);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut child = spawn_service(&broker, &settings, port);
    wait_ready(&client, &base).await;

    let senders = stream_orders(&client, &base, 4);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let accepted = collect_accepted(senders).await;
    assert!(
        accepted.len() > 10,
        "only {} orders accepted before the kill",
        accepted.len()
    );

    let mut child = spawn_service(&broker, &settings, port);
    wait_ready(&client, &base).await;
    for id in &accepted {
        let view = wait_status(&client, &base, id, "COMPLETED").await;
        assert_eq!(view["status"], "COMPLETED", "{view}");
    }
    let records = read_topic(
        &broker.bootstrap(),
        &settings.topics.status.name,
        accepted.len(),
    )
    .await;
    let mut finals: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for record in &records {
        if record.value["status"] == "COMPLETED" {
            *finals.entry(record.key.as_deref().unwrap()).or_default() += 1;
        }
    }
    for id in &accepted {
        assert_eq!(
            finals.get(id.as_str()),
            Some(&1),
            "order {id} has {:?} final records",
            finals.get(id.as_str())
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Starts `tasks` loops posting orders until the service stops answering (or 20 s pass);
/// each returns the ids it got 202 for.
fn stream_orders(
    client: &reqwest::Client,
    base: &str,
    tasks: usize,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    (0..tasks)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{base}/api/orders"));
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline {
                    // Connection refused: the service has stopped listening.
                    let Ok(response) = client.post(&url).json(&valid_order()).send().await else {
                        break;
                    };
                    if response.status() == 202 {
                        let body: serde_json::Value = response.json().await.unwrap();
                        accepted.push(body["order_id"].as_str().unwrap().to_string());
                    }
                }
                accepted
            })
        })
        .collect()
}

async fn collect_accepted(senders: Vec<tokio::task::JoinHandle<Vec<String>>>) -> Vec<String> {
    let mut accepted = Vec::new();
    for sender in senders {
        accepted.extend(sender.await.unwrap());
    }
    accepted
}
