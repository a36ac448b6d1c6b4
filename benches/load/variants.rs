//! Variants of the service compared in interleaved rounds, each on a fresh broker: an
//! intake instance takes N single POSTs at the benchmark's concurrency, then a fresh
//! processing instance takes the backlog to final statuses; each row gives the rate and the
//! service's CPU time per order (the only ratio this machine keeps between runs).
//!
//! - `--wire-format-orders N`: Confluent's wire format (`[schemas] wire_format`) off and on.
//! - `--trace-orders N`: span export off, and on with the sampler at 1.0 and at 0.01, to an
//!   OTLP receiver in this process (it reads each request whole and answers 200).

use std::time::Instant;

use super::broker::{Engine, TestBroker, free_port};
use super::{
    Access, cpu_time, metrics, per_order_us, processed, sample, single_phase, spawn_service_with,
    wait_processed, wait_ready,
};

/// One configuration of the service: its name in the table and its environment.
pub struct Variant {
    pub label: String,
    pub env: Vec<(String, String)>,
}

struct Round {
    variant: usize,
    single_rate: f64,
    single_cpu_us: f64,
    processing_rate: f64,
    processing_cpu_us: f64,
    /// The same from the moment the instance was ready (start-up left out), over the orders
    /// processed after it.
    steady_rate: f64,
    steady_cpu_us: f64,
    /// Spans exported and dropped per order, intake and processing together.
    spans_exported: f64,
    spans_dropped: f64,
}

async fn round(
    variant: usize,
    env: &[(String, String)],
    orders: usize,
    concurrency: usize,
) -> Round {
    let broker = TestBroker::start(Engine::Memory).await;
    let bootstrap = broker.bootstrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let spans = |text: &str| {
        (
            sample(text, "orderflow_trace_spans_exported_total"),
            sample(text, "orderflow_trace_spans_dropped_total"),
        )
    };

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let intake = spawn_service_with(&bootstrap, port, 0, Access::Open, &env);
    wait_ready(&client, &base).await;
    let pid = intake.0.id();
    let before = cpu_time(pid);
    let (single_rate, accepted, _) =
        single_phase(&client, &base, orders, concurrency, Default::default()).await;
    let single_cpu_us = per_order_us(cpu_time(pid) - before, accepted.len());
    // The last batch of spans goes out within the schedule delay.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (intake_exported, intake_dropped) = spans(&metrics(&client, &base).await);
    drop(intake);

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let worker = spawn_service_with(&bootstrap, port, 1, Access::Open, &env);
    wait_ready(&client, &base).await;
    let (ready_at, ready_cpu) = (Instant::now(), cpu_time(worker.0.id()));
    let before_ready = processed(&client, &base).await as usize;
    let done = wait_processed(&client, &base, accepted.len() as f64).await;
    let cpu = cpu_time(worker.0.id());
    assert!(processed(&client, &base).await >= accepted.len() as f64);
    let processing_rate = accepted.len() as f64 / (done - started).as_secs_f64();
    let processing_cpu_us = per_order_us(cpu, accepted.len());
    let steady = accepted.len().saturating_sub(before_ready).max(1);
    let steady_rate = steady as f64 / (done - ready_at).as_secs_f64();
    let steady_cpu_us = per_order_us(cpu - ready_cpu, steady);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (exported, dropped) = spans(&metrics(&client, &base).await);
    let n = accepted.len() as f64;
    Round {
        variant,
        single_rate,
        single_cpu_us,
        processing_rate,
        processing_cpu_us,
        steady_rate,
        steady_cpu_us,
        spans_exported: (intake_exported + exported) / n,
        spans_dropped: (intake_dropped + dropped) / n,
    }
}

/// Runs `repeats` rounds of every variant, interleaved, and prints the table and each
/// variant's CPU per order against the first.
pub async fn compare(
    title: &str,
    variants: &[Variant],
    repeats: usize,
    orders: usize,
    concurrency: usize,
) {
    let mut rounds = Vec::new();
    for _ in 0..repeats {
        for (i, variant) in variants.iter().enumerate() {
            rounds.push(round(i, &variant.env, orders, concurrency).await);
        }
    }
    println!(
        "{title}, interleaved; {orders} single POSTs at concurrency {concurrency}, then the backlog processed by one consumer task"
    );
    println!(
        "| round | variant | single POST orders/s | service CPU per order, single | processing orders/s | service CPU per order, processing | once ready: orders/s | once ready: CPU per order | spans exported / dropped per order |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for (i, r) in rounds.iter().enumerate() {
        println!(
            "| {} | {} | {:.0} | {:.1} µs | {:.0} | {:.1} µs | {:.0} | {:.1} µs | {:.1} / {:.1} |",
            i + 1,
            variants[r.variant].label,
            r.single_rate,
            r.single_cpu_us,
            r.processing_rate,
            r.processing_cpu_us,
            r.steady_rate,
            r.steady_cpu_us,
            r.spans_exported,
            r.spans_dropped,
        );
    }
    let mean = |variant: usize, f: fn(&Round) -> f64| {
        let picked: Vec<f64> = rounds
            .iter()
            .filter(|r| r.variant == variant)
            .map(f)
            .collect();
        picked.iter().sum::<f64>() / picked.len() as f64
    };
    for (i, variant) in variants.iter().enumerate().skip(1) {
        println!(
            "{} / {}: single CPU per order {:.2}×, processing CPU per order {:.2}× ({:.2}× once ready)",
            variant.label,
            variants[0].label,
            mean(i, |r| r.single_cpu_us) / mean(0, |r| r.single_cpu_us),
            mean(i, |r| r.processing_cpu_us) / mean(0, |r| r.processing_cpu_us),
            mean(i, |r| r.steady_cpu_us) / mean(0, |r| r.steady_cpu_us)
        );
    }
}

fn variant(label: &str, env: &[(&str, &str)]) -> Variant {
    Variant {
        label: label.to_string(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// `--wire-format-orders N`.
pub async fn wire_phase(orders: usize, concurrency: usize) {
    let variants = [
        variant(
            "wire format off",
            &[("ORDERFLOW__SCHEMAS__WIRE_FORMAT", "false")],
        ),
        variant(
            "wire format on",
            &[("ORDERFLOW__SCHEMAS__WIRE_FORMAT", "true")],
        ),
    ];
    compare("wire format off and on", &variants, 2, orders, concurrency).await;
}

/// `--trace-orders N`.
pub async fn trace_phase(orders: usize, concurrency: usize) {
    let endpoint = otlp_sink().await;
    let on = |ratio: &str| {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
            (
                "OTEL_TRACES_SAMPLER",
                "parentbased_traceidratio".to_string(),
            ),
            ("OTEL_TRACES_SAMPLER_ARG", ratio.to_string()),
        ]
    };
    let owned = |label: &str, env: Vec<(&str, String)>| Variant {
        label: label.to_string(),
        env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    };
    let variants = [
        variant("export off", &[]),
        owned("export on, sampler 1.0", on("1.0")),
        owned("export on, sampler 0.01", on("0.01")),
    ];
    compare("span export off and on", &variants, 3, orders, concurrency).await;
}

/// An OTLP/HTTP endpoint that reads every export request and answers 200 with an empty
/// (valid) protobuf answer; its base URL.
async fn otlp_sink() -> String {
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(|body: axum::body::Bytes| async move {
            std::hint::black_box(body.len());
            (
                [("content-type", "application/x-protobuf")],
                Vec::<u8>::new(),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}
