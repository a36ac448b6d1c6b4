//! `--wire-format-orders N`: what Confluent's wire format (`[schemas] wire_format`) costs
//! intake and processing. Rounds alternate off, on, off, on, each on a fresh broker: an
//! intake instance takes N single POSTs at the benchmark's concurrency, then a fresh
//! processing instance takes the backlog to final statuses; each row gives the rate and the
//! service's CPU time per order (the only ratio this machine keeps between runs).

use std::time::Instant;

use super::broker::{Engine, TestBroker, free_port};
use super::{
    Access, cpu_time, per_order_us, processed, single_phase, spawn_service_with, wait_processed,
    wait_ready,
};

struct Round {
    wire_format: bool,
    single_rate: f64,
    single_cpu_us: f64,
    processing_rate: f64,
    processing_cpu_us: f64,
}

async fn round(wire_format: bool, orders: usize, concurrency: usize) -> Round {
    let broker = TestBroker::start(Engine::Memory).await;
    let bootstrap = broker.bootstrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let flag = if wire_format { "true" } else { "false" };
    let env = [("ORDERFLOW__SCHEMAS__WIRE_FORMAT", flag)];

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let intake = spawn_service_with(&bootstrap, port, 0, Access::Open, &env);
    wait_ready(&client, &base).await;
    let pid = intake.0.id();
    let before = cpu_time(pid);
    let (single_rate, accepted, _) =
        single_phase(&client, &base, orders, concurrency, Default::default()).await;
    let single_cpu_us = per_order_us(cpu_time(pid) - before, accepted.len());
    drop(intake);

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let worker = spawn_service_with(&bootstrap, port, 1, Access::Open, &env);
    wait_ready(&client, &base).await;
    let done = wait_processed(&client, &base, accepted.len() as f64).await;
    assert!(processed(&client, &base).await >= accepted.len() as f64);
    let processing_rate = accepted.len() as f64 / (done - started).as_secs_f64();
    let processing_cpu_us = per_order_us(cpu_time(worker.0.id()), accepted.len());
    Round {
        wire_format,
        single_rate,
        single_cpu_us,
        processing_rate,
        processing_cpu_us,
    }
}

pub async fn wire_phase(orders: usize, concurrency: usize) {
    let mut rounds = Vec::new();
    for wire_format in [false, true, false, true] {
        rounds.push(round(wire_format, orders, concurrency).await);
    }
    println!(
        "wire format off and on, interleaved; {orders} single POSTs at concurrency {concurrency}, then the backlog processed by one consumer task"
    );
    println!(
        "| round | wire_format | single POST orders/s | service CPU per order, single | processing orders/s | service CPU per order, processing |"
    );
    println!("|---:|---|---:|---:|---:|---:|");
    for (i, r) in rounds.iter().enumerate() {
        println!(
            "| {} | {} | {:.0} | {:.1} µs | {:.0} | {:.1} µs |",
            i + 1,
            r.wire_format,
            r.single_rate,
            r.single_cpu_us,
            r.processing_rate,
            r.processing_cpu_us
        );
    }
    let mean = |on: bool, f: fn(&Round) -> f64| {
        let picked: Vec<f64> = rounds
            .iter()
            .filter(|r| r.wire_format == on)
            .map(f)
            .collect();
        picked.iter().sum::<f64>() / picked.len() as f64
    };
    println!(
        "on/off: single CPU per order {:.2}×, processing CPU per order {:.2}×",
        mean(true, |r| r.single_cpu_us) / mean(false, |r| r.single_cpu_us),
        mean(true, |r| r.processing_cpu_us) / mean(false, |r| r.processing_cpu_us)
    );
}
