//! `--idle-seconds N`: what an instance with nothing to do costs, itself and the broker it
//! talks to. Each round on a fresh broker: the broker alone, then one instance at the
//! shipped settings (two consumer tasks, `fetch.wait.max.ms` 2,000), one at librdkafka's and
//! the Java client's default of 500 ms, and one at the 50 ms this benchmark and the tests use
//! on Tansu. CPU (user + system from `/proc`) over N seconds,
//! measured after the instance has been ready for five seconds.

use std::time::Duration;

use super::broker::{Engine, TestBroker, free_port};
use super::{Access, cpu_time, spawn_service_with, wait_ready};

/// Share of one core a process used over `seconds`, from two CPU-time samples.
fn share(before: Duration, after: Duration, seconds: u64) -> f64 {
    (after.saturating_sub(before)).as_secs_f64() / seconds as f64 * 100.0
}

pub async fn idle_phase(seconds: u64) {
    println!("| instance | fetch.wait.max.ms | service, % of a core | broker, % of a core |");
    println!("|---|---:|---:|---:|");
    let broker = TestBroker::start(Engine::Memory).await;
    let broker_pid = broker.pid().expect("the broker runs");
    let before = cpu_time(broker_pid);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    println!(
        "| none (the broker alone) | | | {:.2} |",
        share(before, cpu_time(broker_pid), seconds)
    );
    drop(broker);
    for (label, wait) in [
        ("shipped settings", "2000"),
        ("the clients' default wait", "500"),
        ("as on Tansu in the tests", "50"),
    ] {
        let broker = TestBroker::start(Engine::Memory).await;
        let broker_pid = broker.pid().expect("the broker runs");
        let port = free_port();
        let service = spawn_service_with(
            &broker.bootstrap(),
            port,
            2,
            Access::Shipped,
            &[("ORDERFLOW__PROCESSING__FETCH_WAIT_MAX_MS", wait)],
        );
        let client = reqwest::Client::new();
        wait_ready(&client, &format!("http://127.0.0.1:{port}")).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let pid = service.0.id();
        let (service_before, broker_before) = (cpu_time(pid), cpu_time(broker_pid));
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        println!(
            "| {label} | {wait} | {:.2} | {:.2} |",
            share(service_before, cpu_time(pid), seconds),
            share(broker_before, cpu_time(broker_pid), seconds)
        );
    }
}
