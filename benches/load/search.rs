//! `--search-records N`: message search and the live tail, in one run against one Tansu
//! broker (memory storage):
//! - a filtered search (0.1% of the records match) over every record of a 6-partition topic,
//!   streamed as SSE: records scanned per second beside a plain consumer's rate on the same
//!   topic, the service's CPU per record scanned, and its resident memory during the scan;
//! - the time to the first match of a newest-first search for a record in the newest 1%
//!   (of 100,000 records on a second broker with SQLite storage: the memory engine answers a
//!   fetch that starts inside a record batch with nothing, which is where a backward read
//!   starts);
//! - the live tail: produce acknowledgement → event at the client, p50/p99, beside the
//!   broker's raw acknowledgement → consume floor at the tail's `fetch.wait.max.ms` (10).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

use super::broker::{Engine, TestBroker};
use super::{
    Access, cpu_time, create_topic, free_port, percentile, raw_ack_to_consume, raw_consume,
    rss_bytes, spawn_service_with, wait_ready,
};

const TOPIC: &str = "bench.search";
const PARTITIONS: i32 = 6;

/// Record `n`: an order-like value whose `n` the filters pick.
fn record(n: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": "order_placed", "n": n,
        "order": {"customer_id": format!("cust-{}", n % 5_000), "currency": "EUR", "total": "44.98",
                  "items": [{"product_id": "sku-1", "quantity": 2, "unit_price": "19.99"}]}
    }))
    .unwrap()
}

/// Writes `count` records, batched, then one more per partition on its own (Tansu's memory
/// engine reports a partition's end as its last batch's start + 1).
async fn write(bootstrap: &str, count: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .unwrap();
    for chunk in (0..count).collect::<Vec<_>>().chunks(50_000) {
        let sends = chunk.iter().map(|&n| {
            let (key, payload) = (n.to_string(), record(n));
            let producer = producer.clone();
            async move {
                producer
                    .send(
                        FutureRecord::to(TOPIC).key(&key).payload(&payload),
                        Duration::from_secs(60),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .expect("record written")
            }
        });
        futures::future::join_all(sends).await;
    }
    for p in 0..PARTITIONS {
        producer
            .send(
                FutureRecord::to(TOPIC)
                    .key("end")
                    .payload(&record(usize::MAX))
                    .partition(p),
                Duration::from_secs(60),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("end record written");
    }
}

/// SSE events of a response, as (event, data), with when each arrived.
async fn events(
    response: reqwest::Response,
    mut on_event: impl FnMut(&str, &str, Instant) -> bool,
) {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    while let Some(Ok(chunk)) = body.next().await {
        let now = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = "";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    name = e.trim();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if !on_event(name, &data, now) {
                return;
            }
        }
    }
}

pub async fn search_phase(count: usize) {
    let broker = TestBroker::start(Engine::Memory).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, PARTITIONS).await;
    let started = Instant::now();
    write(&bootstrap, count).await;
    let total = count + PARTITIONS as usize;
    println!(
        "search benchmark: {total} records on {PARTITIONS} partitions written in {:.1} s, {} cores, tansu memory storage",
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let raw = raw_consume(&bootstrap, TOPIC, total).await;
    let sqlite = TestBroker::start(Engine::Sqlite).await;
    let small = 100_000;
    create_topic(&sqlite.bootstrap(), TOPIC, PARTITIONS).await;
    write(&sqlite.bootstrap(), small).await;

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let max_scan = (total * 2).to_string();
    let service = spawn_service_with(
        &bootstrap,
        port,
        0,
        Access::Open,
        &[
            ("ORDERFLOW__ADMIN__MAX_SCAN", &max_scan),
            ("ORDERFLOW__CLUSTERS__SQLITE__NAME", "sqlite"),
            ("ORDERFLOW__CLUSTERS__SQLITE__ENVIRONMENT", "bench"),
            (
                "ORDERFLOW__CLUSTERS__SQLITE__BOOTSTRAP_SERVERS",
                &sqlite.bootstrap(),
            ),
        ],
    );
    let pid = service.0.id();
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = rss_bytes(pid);

    // The filtered scan of everything, streamed: by a CEL expression, then by text.
    let cel = scan_all(
        &client,
        &base,
        pid,
        idle_rss,
        ("filter", "value.n % 1000 == 7"),
        &max_scan,
    )
    .await;
    let text = scan_all(
        &client,
        &base,
        pid,
        idle_rss,
        ("contains", "cust-4999"),
        &max_scan,
    )
    .await;

    // The first match of a newest-first search, for a record in the newest 1%, on the
    // SQLite broker once it has settled after the write: within about 10 s of it the same
    // search took 250-296 ms, 10 s later 188 ms (the scans above used to take long enough).
    tokio::time::sleep(Duration::from_secs(10)).await;
    let wanted = small - small / 200;
    let asked = Instant::now();
    let response = client
        .get(format!(
            "{base}/api/clusters/sqlite/topics/{TOPIC}/messages"
        ))
        .query(&[("filter", format!("value.n == {wanted}"))])
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut first_match = None;
    events(response, |event, _, at| {
        if event == "record" {
            first_match = Some(at - asked);
            return false;
        }
        event != "done"
    })
    .await;

    // The live tail at 500 records/s for 10 s.
    let (tail_p50, tail_p99, tailed) = tail_latency(&client, &base, &bootstrap, 500, 10).await;
    let (floor_p50, floor_p99) = raw_ack_to_consume(&bootstrap, 500, 10, 10).await;

    println!();
    println!("| measurement | records/s | p50 ms | p99 ms | notes |");
    println!("|---|---:|---:|---:|---|");
    println!(
        "| raw consume of the topic (rdkafka, one consumer) | {raw:.0} | | | {total} records |"
    );
    for (what, run) in [
        ("search, CEL filter matching 0.1%", &cel),
        ("search, `contains` matching 0.02%", &text),
    ] {
        println!(
            "| {what}, every partition (SSE) | {:.0} | | | {} scanned, {} matched, stopped {}, {:.1} s; {:.0}% of the raw consume; {:.2} µs service CPU per record scanned; resident memory {:.0} MiB idle, {:.0} MiB at most during the scan (+{:.0} MiB) |",
            run.rate,
            run.scanned,
            run.matched,
            run.stopped,
            run.elapsed.as_secs_f64(),
            run.rate / raw * 100.0,
            run.cpu.as_secs_f64() * 1e6 / run.scanned.max(1) as f64,
            idle_rss as f64 / 1048576.0,
            run.peak as f64 / 1048576.0,
            run.peak.saturating_sub(idle_rss) as f64 / 1048576.0,
        );
    }
    println!(
        "| first match, newest first, a record in the newest 1% | | {:.1} | | time from the request to the first `record` event; 100,000 records on a SQLite broker |",
        first_match.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    );
    println!(
        "| live tail at 500 records/s, acknowledgement → event | 500 | {tail_p50:.1} | {tail_p99:.1} | {tailed} events |"
    );
    println!(
        "| raw ack → consume at 500 records/s, `fetch.wait.max.ms=10` (the floor) | 500 | {floor_p50:.1} | {floor_p99:.1} | a plain consumer on the same broker |"
    );
}

/// What one scan of everything took.
struct ScanRun {
    rate: f64,
    scanned: u64,
    matched: u64,
    stopped: Value,
    elapsed: Duration,
    cpu: Duration,
    peak: u64,
}

/// A streamed search of every record of the topic with `filter` (a query pair), sampling
/// the service's resident memory every 100 ms.
async fn scan_all(
    client: &reqwest::Client,
    base: &str,
    pid: u32,
    idle_rss: u64,
    filter: (&str, &str),
    max_scan: &str,
) -> ScanRun {
    let peak = Arc::new(Mutex::new(idle_rss));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                let now = rss_bytes(pid);
                {
                    let mut peak = peak.lock().unwrap();
                    *peak = (*peak).max(now);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let cpu_before = cpu_time(pid);
    let started = Instant::now();
    let response = client
        .get(format!("{base}/api/admin/topics/{TOPIC}/messages"))
        .query(&[("from", "beginning"), filter, ("max_scan", max_scan)])
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut matched = 0u64;
    let mut done = Value::Null;
    events(response, |event, data, _| match event {
        "record" => {
            matched += 1;
            true
        }
        "done" | "error" => {
            done = serde_json::from_str(data).unwrap_or_default();
            false
        }
        _ => true,
    })
    .await;
    let elapsed = started.elapsed();
    let cpu = cpu_time(pid).saturating_sub(cpu_before);
    sampling.abort();
    let peak = *peak.lock().unwrap();
    let scanned = done["scanned"].as_u64().unwrap_or(0);
    // Freed C-library memory goes back every 10 s: the next scan starts from there.
    tokio::time::sleep(Duration::from_secs(12)).await;
    ScanRun {
        rate: scanned as f64 / elapsed.as_secs_f64(),
        scanned,
        matched,
        stopped: done["stopped"].clone(),
        elapsed,
        cpu,
        peak,
    }
}

/// Records paced at `rate`/s for `seconds` into a new topic while a live tail follows it:
/// each record's acknowledgement to its event at the client. p50, p99 (ms) and events seen.
async fn tail_latency(
    client: &reqwest::Client,
    base: &str,
    bootstrap: &str,
    rate: usize,
    seconds: u64,
) -> (f64, f64, usize) {
    use std::collections::HashMap;
    let topic = "bench.tail";
    create_topic(bootstrap, topic, PARTITIONS).await;
    let response = client
        .get(format!("{base}/api/admin/topics/{topic}/messages/live"))
        .send()
        .await
        .unwrap();
    let acked: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let total = rate * seconds as usize;
    let reader = {
        let arrived = arrived.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            events(response, |event, data, at| {
                if event == "record" {
                    let record: Value = serde_json::from_str(data).unwrap_or_default();
                    if let Some(key) = record["key"].as_str() {
                        arrived.lock().unwrap().insert(key.to_string(), at);
                    }
                    seen += 1;
                }
                seen < total
            })
            .await;
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "1")
        .create()
        .unwrap();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = tokio::time::Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..total {
        tokio::time::sleep_until(started + interval * i as u32).await;
        let (producer, acked) = (producer.clone(), acked.clone());
        sends.spawn(async move {
            let key = format!("t{i}");
            if producer
                .send(
                    FutureRecord::to(topic).key(&key).payload("{}"),
                    Duration::from_secs(10),
                )
                .await
                .is_ok()
            {
                acked.lock().unwrap().insert(key, Instant::now());
            }
        });
    }
    while sends.join_next().await.is_some() {}
    let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
    let (acked, arrived) = (acked.lock().unwrap(), arrived.lock().unwrap());
    let mut latencies: Vec<Duration> = arrived
        .iter()
        .filter_map(|(key, at)| {
            acked
                .get(key)
                .map(|sent| at.saturating_duration_since(*sent))
        })
        .collect();
    latencies.sort();
    (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len(),
    )
}
