//! Load benchmark: `cargo bench --bench load` (options after `--`, see `Options::parse`).
//!
//! Starts a local Tansu broker (memory storage) and the release service binary against it,
//! then measures, in one run on one machine:
//! - raw produce and raw consume rates of identical order records straight through rdkafka,
//!   and the raw consume rate of the service's own orders topic (the ceilings the service is
//!   measured against);
//! - single-order POSTs at a fixed concurrency: orders/s, p50/p99 latency;
//! - bulk POSTs of 500: orders/s, p50/p99 latency per request;
//! - processing of the accepted backlog by a fresh processing instance: orders reaching a
//!   final status per second;
//! - accept-to-final latency p50/p99 at a paced 2,000 orders/s (from the service's own
//!   histogram);
//! - the broker's latency floor beside it: records paced at the same rate, from the
//!   producer's acknowledgement to a plain consumer's receipt at the service's
//!   `fetch.wait.max.ms`;
//! - the cost of access control: single POSTs to an open instance and to one requiring API
//!   keys, in alternating rounds, with throughput, latency and CPU time per order.
//!
//! `--view-orders N` instead measures the status view at N orders (see `load/view.rs`).
//!
//! `--search-records N` instead measures message search and the live tail over N records
//! (see `load/search.rs`).
//!
//! `--wire-format-orders N` instead measures what Confluent's wire format costs intake and
//! processing, over N orders per round (see `load/variants.rs`).
//!
//! `--trace-orders N` instead measures what exporting spans costs intake and processing,
//! sampler at 1.0 and at 0.01 against export off, over N orders per round (see
//! `load/variants.rs`).
//!
//! `--migrate-records N` instead measures only `POST /api/operations/migrate` against a raw
//! rdkafka copy of the same N records between two brokers.
//!
//! Benchmarked instances raise the rate limits out of the way (they measure the service, not
//! the limit); `--quick-start` runs the service as shipped.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

#[path = "load/idle.rs"]
mod idle;
#[path = "load/search.rs"]
mod search;
#[path = "load/variants.rs"]
mod variants;
#[path = "load/view.rs"]
mod view;

/// The integration tests' broker harness: a Tansu process per broker, its own port, storage
/// and Kafka cluster id.
#[allow(dead_code)]
#[path = "../tests/api/helpers/broker.rs"]
mod broker;
/// The integration tests' "poll until" helpers.
#[allow(dead_code)]
#[path = "../tests/api/helpers/polling.rs"]
mod polling;

use broker::{Engine, TestBroker, free_port};

struct Options {
    single_orders: usize,
    concurrency: usize,
    bulk_orders: usize,
    bulk_concurrency: usize,
    raw_records: usize,
    paced_rate: usize,
    paced_seconds: u64,
    /// `--quick-start sqlite|memory`: only the quick start's steady single-order load on
    /// that storage (see `quick_start`).
    quick_start: Option<String>,
    /// `--access-only 1`: only the keys on/off comparison.
    access_only: bool,
    /// `--migrate-records N`: with it, only the migrate comparison, over N records.
    migrate_records: Option<usize>,
    /// `--view-orders N`: with it, only the status view at N orders (see `view`).
    view_orders: Option<usize>,
    /// `--search-records N`: with it, only message search and the live tail over N records
    /// (see `search`).
    search_records: Option<usize>,
    /// `--wire-format-orders N`: with it, only wire format off and on over N orders (see
    /// `wire`).
    wire_format_orders: Option<usize>,
    /// `--trace-orders N`: with it, only span export off and on over N orders (see
    /// `variants`).
    trace_orders: Option<usize>,
    /// `--idle-seconds N`: with it, only what an idle instance costs, over N seconds (see
    /// `idle`).
    idle_seconds: Option<u64>,
    /// `--consumers N`: consumer tasks of the processing instance (default 1; see
    /// [`Options::parse`]).
    consumers: usize,
}

impl Options {
    fn parse() -> Options {
        let mut o = Options {
            single_orders: 20_000,
            concurrency: 64,
            bulk_orders: 100_000,
            bulk_concurrency: 4,
            raw_records: 100_000,
            paced_rate: 2_000,
            paced_seconds: 10,
            quick_start: None,
            access_only: false,
            migrate_records: None,
            view_orders: None,
            search_records: None,
            wire_format_orders: None,
            trace_orders: None,
            idle_seconds: None,
            // One task, so the group never rebalances while the backlog is processed: Tansu's
            // memory engine answers a fetch that starts inside a record batch with nothing,
            // so a partition handed over at a committed offset mid-batch stalls for ever
            // (docs/known-limits.md). Apache Kafka serves such fetches.
            consumers: 1,
        };
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect();
        for pair in args.chunks(2) {
            let value = || {
                pair.get(1)
                    .and_then(|v| v.parse::<usize>().ok())
                    .expect("numeric option value")
            };
            if pair[0] == "--quick-start" {
                o.quick_start = pair.get(1).cloned();
                continue;
            }
            match pair[0].as_str() {
                "--single-orders" => o.single_orders = value(),
                "--concurrency" => o.concurrency = value(),
                "--bulk-orders" => o.bulk_orders = value(),
                "--bulk-concurrency" => o.bulk_concurrency = value(),
                "--raw-records" => o.raw_records = value(),
                "--paced-rate" => o.paced_rate = value(),
                "--paced-seconds" => o.paced_seconds = value() as u64,
                "--access-only" => o.access_only = value() != 0,
                "--migrate-records" => o.migrate_records = Some(value()),
                "--consumers" => o.consumers = value(),
                "--view-orders" => o.view_orders = Some(value()),
                "--search-records" => o.search_records = Some(value()),
                "--wire-format-orders" => o.wire_format_orders = Some(value()),
                "--trace-orders" => o.trace_orders = Some(value()),
                "--idle-seconds" => o.idle_seconds = Some(value() as u64),
                other => panic!("unknown option {other}"),
            }
        }
        o
    }
}

/// The services' `fetch.wait.max.ms` setting, as an environment variable.
const FETCH_WAIT_VAR: &str = "ORDERFLOW__PROCESSING__FETCH_WAIT_MAX_MS";

/// The fetch wait the services run with here (see [`spawn_service_with`]).
const TANSU_FETCH_WAIT_MS: u64 = 50;

/// A child process killed when dropped, and the status view file it was given, removed
/// then (a processing instance's is hundreds of MiB; a sitting of runs filled the disk).
struct Guard(Child, Option<std::path::PathBuf>);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(view) = &self.1 {
            for suffix in ["", "-wal", "-shm", ".lock"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", view.display()));
            }
        }
    }
}

fn order_json() -> Value {
    json!({
        "customer_id": "bench-customer",
        "currency": "EUR",
        "items": [
            {"product_id": "sku-1", "quantity": 2, "unit_price": "19.99"},
            {"product_id": "sku-2", "quantity": 1, "unit_price": "5.00"}
        ]
    })
}

/// The same record the service writes for one order, for the raw ceilings.
fn raw_record() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": "order_placed",
        "order": {
            "order_id": uuid::Uuid::new_v4(), "customer_id": "bench-customer", "currency": "EUR",
            "items": [
                {"product_id": "sku-1", "quantity": 2, "unit_price": "19.99"},
                {"product_id": "sku-2", "quantity": 1, "unit_price": "5.00"}
            ],
            "total": "44.98", "accepted_at": chrono::Utc::now()
        }
    }))
    .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap();
}

/// A plain producer with the service's settings: idempotent, `acks=all`, lz4, `linger.ms` 5.
fn service_like_producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "100000")
        .create()
        .unwrap()
}

async fn raw_produce(bootstrap: &str, topic: &str, count: usize) -> f64 {
    let producer = service_like_producer(bootstrap);
    let payloads: Vec<(String, Vec<u8>)> = (0..count)
        .map(|_| (uuid::Uuid::new_v4().to_string(), raw_record()))
        .collect();
    let started = Instant::now();
    let sends = payloads.iter().map(|(key, payload)| {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        producer.send(record, Duration::from_secs(30))
    });
    for result in futures::future::join_all(sends).await {
        result.map_err(|(e, _)| e).expect("raw produce");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

async fn raw_consume(bootstrap: &str, topic: &str, count: usize) -> f64 {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-raw-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut first = None;
    let mut received = 0;
    while received < count {
        consumer.recv().await.expect("raw consume");
        first.get_or_insert_with(Instant::now);
        received += 1;
    }
    count as f64 / first.unwrap().elapsed().as_secs_f64()
}

/// The fair ceiling for processing: what any consume→produce processor must do at least.
/// A plain rdkafka consumer in a group reads `count` records of `from` and, for each,
/// produces one record of the same key and size to `to` with the service's producer
/// settings (idempotent, `acks=all`, lz4, `linger.ms` 5) and its in-flight bound (1,000);
/// an input's offset is stored only once its output and every earlier one are acknowledged,
/// and stored offsets are committed every second and at the end (the service's
/// `commit_interval_ms`). Its fetches wait as the processors' do (`fetch.wait.max.ms` 50).
async fn raw_pipe(bootstrap: &str, from: &str, to: &str, count: usize) -> f64 {
    use futures::StreamExt;
    use rdkafka::consumer::CommitMode;
    use rdkafka::message::Message;
    create_topic(bootstrap, to, 6).await;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-pipe-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .unwrap();
    consumer.subscribe(&[from]).unwrap();
    let producer = service_like_producer(bootstrap);
    let mut in_flight = futures::stream::FuturesOrdered::new();
    let (mut received, mut acknowledged) = (0usize, 0usize);
    let mut first = None;
    while acknowledged < count {
        let reading = received < count && in_flight.len() < 1_000;
        tokio::select! {
            message = consumer.recv(), if reading => {
                let message = message.expect("pipe consume");
                first.get_or_insert_with(Instant::now);
                received += 1;
                let key = message.key().map(<[u8]>::to_vec).unwrap_or_default();
                let payload = message.payload().map(<[u8]>::to_vec).unwrap_or_default();
                let (partition, offset) = (message.partition(), message.offset());
                let producer = producer.clone();
                let to = to.to_string();
                in_flight.push_back(async move {
                    let record = FutureRecord::to(&to).key(&key).payload(&payload);
                    producer
                        .send(record, Duration::from_secs(30))
                        .await
                        .map_err(|(e, _)| e)
                        .expect("pipe produce");
                    (partition, offset)
                });
            }
            Some((partition, offset)) = in_flight.next(), if !in_flight.is_empty() => {
                // In submission order: every earlier input's output is acknowledged too.
                consumer
                    .store_offset(from, partition, offset)
                    .expect("offset stored");
                acknowledged += 1;
            }
        }
    }
    let rate = count as f64 / first.expect("records").elapsed().as_secs_f64();
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("committed");
    rate
}

/// How a benchmarked instance lets callers in.
#[derive(Clone, Copy)]
enum Access<'a> {
    /// As shipped (open mode, default limits): the quick start.
    Shipped,
    /// Open mode with limits too high to bind, so the phase measures the service.
    Open,
    /// Keys mode with this key file, limits too high to bind: the cost of checking keys.
    Keys(&'a std::path::Path),
}

fn spawn_service(bootstrap: &str, port: u16, consumers: usize, access: Access) -> Guard {
    spawn_service_with(bootstrap, port, consumers, access, &[])
}

fn spawn_service_with(
    bootstrap: &str,
    port: u16,
    consumers: usize,
    access: Access,
    extra_env: &[(&str, &str)],
) -> Guard {
    // BENCH_SERVICE_BIN runs another build of the service (say, the commit before a change)
    // under the same load, for a comparison in one sitting.
    let binary = std::env::var("BENCH_SERVICE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_orderflow").to_string());
    let mut command = Command::new(binary);
    // Each instance its own status view (a path in `extra_env` wins).
    let view = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("bench-views")
        .join(format!("{}.db", uuid::Uuid::new_v4().simple()));
    command.env("ORDERFLOW__STATUS_VIEW__PATH", &view);
    let own_view = !extra_env
        .iter()
        .any(|(name, _)| *name == "ORDERFLOW__STATUS_VIEW__PATH");
    // Tansu holds every fetch for its full wait, even once records arrive: the services wait
    // 50 ms here (as the tests do), not the shipped 500 (an environment setting wins).
    if std::env::var_os(FETCH_WAIT_VAR).is_none() {
        command.env(FETCH_WAIT_VAR, TANSU_FETCH_WAIT_MS.to_string());
    }
    command.envs(extra_env.iter().copied());
    match access {
        Access::Shipped => {}
        Access::Open | Access::Keys(_) => {
            command
                .env("ORDERFLOW__AUTH__RATE_LIMIT__PER_SECOND", "100000000")
                .env("ORDERFLOW__AUTH__RATE_LIMIT__BURST", "100000000");
        }
    }
    if let Access::Keys(file) = access {
        command
            .env("ORDERFLOW__AUTH__MODE", "keys")
            .env("ORDERFLOW__AUTH__KEYS_FILE", file);
    }
    // The services log at their shipped level (config/default.toml), as in production, to
    // /dev/null; BENCH_SERVICE_LOG=warn (a RUST_LOG filter) shows them instead.
    match std::env::var("BENCH_SERVICE_LOG") {
        Ok(filter) => command.env("RUST_LOG", filter).stdout(Stdio::inherit()),
        Err(_) => command.env_remove("RUST_LOG").stdout(Stdio::null()),
    };
    let child = command
        .env(
            "ORDERFLOW_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        )
        .env("ORDERFLOW__KAFKA__BOOTSTRAP_SERVERS", bootstrap)
        .env("ORDERFLOW__HTTP__PORT", port.to_string())
        .env("ORDERFLOW__TOPICS__ORDERS__NAME", "bench.orders")
        .env("ORDERFLOW__TOPICS__STATUS__NAME", "bench.orders.status")
        .env("ORDERFLOW__TOPICS__DLQ__NAME", "bench.orders.dlq")
        .env("ORDERFLOW__PROCESSING__CONSUMERS", consumers.to_string())
        .env("ORDERFLOW__IDEMPOTENCY__CAPACITY", "1000")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start orderflow");
    Guard(child, own_view.then_some(view))
}

/// Waits until the service at `base` is ready (a first start builds its topics and joins
/// its group).
async fn wait_ready(client: &reqwest::Client, base: &str) {
    polling::wait_ready(client, base, Duration::from_secs(120)).await
}

async fn metrics(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap_or(0.0))
}

/// The start of the bucket lines of histogram `name` with `labels` (`stage="x",` or "").
fn buckets_of(name: &str, labels: &str) -> String {
    format!("{name}_bucket{{{labels}le=\"")
}

/// histogram_quantile over the cumulative buckets starting with `series` (see
/// [`buckets_of`]), in milliseconds.
fn histogram_quantile(text: &str, series: &str, q: f64) -> f64 {
    let prefix = series;
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    let Some(&(_, total)) = buckets.last() else {
        return 0.0;
    };
    let rank = q * total;
    let mut previous = (0.0, 0.0);
    for &(le, count) in &buckets {
        if count >= rank {
            if le.is_infinite() {
                return previous.0 * 1000.0;
            }
            let share = if count > previous.1 {
                (rank - previous.1) / (count - previous.1)
            } else {
                0.0
            };
            return (previous.0 + (le - previous.0) * share) * 1000.0;
        }
        previous = (le, count);
    }
    0.0
}

async fn processed(client: &reqwest::Client, base: &str) -> f64 {
    processed_in(&metrics(client, base).await)
}

/// Orders processed so far, or `None` while the service does not answer yet.
async fn processed_if_up(client: &reqwest::Client, base: &str) -> Option<f64> {
    let response = client.get(format!("{base}/metrics")).send().await.ok()?;
    Some(processed_in(&response.text().await.ok()?))
}

/// Orders that reached a final status, from a `/metrics` text.
fn processed_in(text: &str) -> f64 {
    ["COMPLETED", "FAILED", "CANCELLED"]
        .iter()
        .map(|s| {
            sample(
                text,
                &format!("orderflow_orders_processed_total{{status=\"{s}\"}}"),
            )
        })
        .sum()
}

async fn single_phase(
    client: &reqwest::Client,
    base: &str,
    total: usize,
    concurrency: usize,
    headers: reqwest::header::HeaderMap,
) -> (f64, Vec<Duration>, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let body = serde_json::to_vec(&order_json()).unwrap();
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, next, body, headers) = (
                client.clone(),
                format!("{base}/api/orders"),
                next.clone(),
                body.clone(),
                headers.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failed = 0;
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .headers(headers.clone())
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status() == 202 => latencies.push(sent.elapsed()),
                        _ => failed += 1,
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for worker in workers {
        let (l, f) = worker.await.unwrap();
        latencies.extend(l);
        failed += f;
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies, failed)
}

async fn bulk_phase(
    client: &reqwest::Client,
    base: &str,
    total: usize,
    concurrency: usize,
) -> (f64, Vec<Duration>, usize) {
    let batches = total / 500;
    let body = serde_json::to_vec(&json!({ "orders": vec![order_json(); 500] })).unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, next, body) = (
                client.clone(),
                format!("{base}/api/orders/bulk"),
                next.clone(),
                body.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut accepted = 0;
                while next.fetch_add(1, Ordering::Relaxed) < batches {
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("bulk request");
                    let answer: Value = response.json().await.expect("bulk answer");
                    accepted += answer["accepted"].as_u64().unwrap_or(0) as usize;
                    latencies.push(sent.elapsed());
                }
                (latencies, accepted)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut accepted = 0;
    for worker in workers {
        let (l, a) = worker.await.unwrap();
        latencies.extend(l);
        accepted += a;
    }
    let rate = accepted as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies, accepted)
}

async fn paced_phase(client: &reqwest::Client, base: &str, rate: usize, seconds: u64) -> usize {
    let body = serde_json::to_vec(&order_json()).unwrap();
    let total = rate * seconds as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        tokio::time::sleep_until(started + interval * i as u32).await;
        let (client, url, body) = (client.clone(), format!("{base}/api/orders"), body.clone());
        tasks.spawn(async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .is_ok_and(|r| r.status() == 202)
        });
    }
    let mut accepted = 0;
    while let Some(ok) = tasks.join_next().await {
        accepted += usize::from(ok.unwrap_or(false));
    }
    accepted
}

/// The broker's own latency floor for the accept-to-final row: records paced at `rate`/s for
/// `seconds` (idempotent producer, `acks=all`) into a topic of 6 partitions, one plain
/// consumer assigned to every partition with the service's `fetch.wait.max.ms`; the time
/// from each record's acknowledgement to its arrival at the consumer. p50 and p99 in ms.
async fn raw_ack_to_consume(
    bootstrap: &str,
    rate: usize,
    seconds: u64,
    fetch_wait_ms: u64,
) -> (f64, f64) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    // Whichever of acknowledgement and arrival comes first waits here for the other.
    enum Seen {
        Acked(Instant),
        Arrived,
    }
    let topic = "bench.latency";
    create_topic(bootstrap, topic, 6).await;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("bench-latency-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        .create()
        .unwrap();
    let mut assignment = rdkafka::TopicPartitionList::new();
    for p in 0..6 {
        assignment
            .add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let seen: Arc<Mutex<HashMap<(i32, i64), Seen>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let total = rate * seconds as usize;
    let reader = {
        let (seen, latencies) = (seen.clone(), latencies.clone());
        tokio::spawn(async move {
            use rdkafka::message::Message;
            for _ in 0..total {
                let Ok(Ok(message)) =
                    tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await
                else {
                    return;
                };
                let now = Instant::now();
                let key = (message.partition(), message.offset());
                let mut seen = seen.lock().unwrap();
                match seen.remove(&key) {
                    Some(Seen::Acked(at)) => latencies.lock().unwrap().push(now - at),
                    _ => {
                        seen.insert(key, Seen::Arrived);
                    }
                }
            }
        })
    };
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .create()
        .unwrap();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = tokio::time::Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..total {
        tokio::time::sleep_until(started + interval * i as u32).await;
        let (producer, seen, latencies) = (producer.clone(), seen.clone(), latencies.clone());
        sends.spawn(async move {
            let key = i.to_string();
            let Ok(delivery) = producer
                .send(
                    FutureRecord::to(topic).key(&key).payload("x"),
                    Duration::from_secs(30),
                )
                .await
            else {
                return;
            };
            let now = Instant::now();
            let key = (delivery.partition, delivery.offset);
            let mut seen = seen.lock().unwrap();
            match seen.remove(&key) {
                // It arrived before its acknowledgement came back.
                Some(Seen::Arrived) => latencies.lock().unwrap().push(Duration::ZERO),
                _ => {
                    seen.insert(key, Seen::Acked(now));
                }
            }
        });
    }
    while sends.join_next().await.is_some() {}
    let _ = reader.await;
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    (percentile(&latencies, 0.50), percentile(&latencies, 0.99))
}

async fn wait_processed(client: &reqwest::Client, base: &str, target: f64) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if processed(client, base).await >= target {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "processing did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the view of the instance at `base` has read `target` records; when it had.
async fn wait_view_read(client: &reqwest::Client, base: &str, target: f64) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let text = metrics(client, base).await;
        if sample(&text, "orderflow_view_records_read_total") >= target {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "the view did not read the backlog back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The quick start's load: Tansu on `storage` (as `scripts/run-local.sh` starts it), one
/// service with two consumer tasks, single POSTs paced at `rate` for `seconds`; prints, per
/// 5-second window, orders answered 202 and 503 and the 202 latency percentiles.
async fn quick_start(storage_kind: &str, rate: usize, seconds: u64) {
    let engine = match storage_kind {
        "sqlite" => Engine::Sqlite,
        "memory" => Engine::Memory,
        other => panic!("--quick-start sqlite or memory, not {other}"),
    };
    let broker = TestBroker::start(engine).await;
    let bootstrap = broker.bootstrap();
    let client = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // The quick start as shipped: open mode, default rate limits.
    let _service = spawn_service(&bootstrap, port, 2, Access::Shipped);
    wait_ready(&client, &base).await;

    let body = serde_json::to_vec(&order_json()).unwrap();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..rate * seconds as usize {
        let at = started + interval * i as u32;
        tokio::time::sleep_until(at).await;
        let (client, url, body) = (client.clone(), format!("{base}/api/orders"), body.clone());
        tasks.spawn(async move {
            let sent = Instant::now();
            let status = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_or(0, |r| r.status().as_u16());
            (
                at.duration_since(started).as_secs() / 5,
                status,
                sent.elapsed(),
            )
        });
    }
    let mut windows: std::collections::BTreeMap<u64, (usize, usize, Vec<Duration>)> =
        Default::default();
    while let Some(Ok((window, status, latency))) = tasks.join_next().await {
        let entry = windows.entry(window).or_default();
        match status {
            202 => entry.2.push(latency),
            503 => entry.1 += 1,
            _ => entry.0 += 1,
        }
    }
    println!("quick start on tansu {storage_kind} storage, {rate} single orders/s for {seconds} s");
    println!("| seconds | accepted (202) | 503 | other | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (window, (other, unavailable, mut accepted)) in windows {
        accepted.sort();
        println!(
            "| {}–{} | {} | {unavailable} | {other} | {:.1} | {:.1} |",
            window * 5,
            window * 5 + 5,
            accepted.len(),
            percentile(&accepted, 0.50),
            percentile(&accepted, 0.99)
        );
    }
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    if let Some(records) = options.migrate_records {
        migrate_phase(records).await;
        return;
    }
    if let Some(records) = options.search_records {
        search::search_phase(records).await;
        return;
    }
    if let Some(orders) = options.wire_format_orders {
        variants::wire_phase(orders, options.concurrency).await;
        return;
    }
    if let Some(orders) = options.trace_orders {
        variants::trace_phase(orders, options.concurrency).await;
        return;
    }
    if let Some(seconds) = options.idle_seconds {
        idle::idle_phase(seconds).await;
        return;
    }
    if let Some(orders) = options.view_orders {
        view::view_phase(orders).await;
        return;
    }
    if let Some(storage) = &options.quick_start {
        quick_start(storage, options.paced_rate, options.paced_seconds).await;
        return;
    }
    let broker = TestBroker::start(Engine::Memory).await;
    let bootstrap = broker.bootstrap();
    let broker_pid = broker.pid().expect("the broker runs");
    if options.access_only {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .unwrap();
        let (mut open_side, mut keys_side) = access_cost_phase(
            &client,
            &bootstrap,
            options.single_orders,
            options.concurrency,
        )
        .await;
        print_access(&mut open_side, &mut keys_side, options.concurrency);
        return;
    }
    println!(
        "orderflow load benchmark: {} cores, tansu memory storage, orders topic with 6 partitions",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    create_topic(&bootstrap, "bench.raw", 6).await;
    let produce_rate = raw_produce(&bootstrap, "bench.raw", options.raw_records).await;
    let consume_rate = raw_consume(&bootstrap, "bench.raw", options.raw_records).await;

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    // Intake only: the backlog is processed later by a separate instance, measured alone.
    let intake_port = free_port();
    let intake_base = format!("http://127.0.0.1:{intake_port}");
    let intake = spawn_service(&bootstrap, intake_port, 0, Access::Open);
    wait_ready(&client, &intake_base).await;
    let intake_pid = intake.0.id();
    let idle_rss = rss_bytes(intake_pid);

    let machine = Machine {
        service: intake_pid,
        broker: broker_pid,
    };
    let cpu = machine.sample();
    let (single_rate, single_lat, single_failed) = single_phase(
        &client,
        &intake_base,
        options.single_orders,
        options.concurrency,
        Default::default(),
    )
    .await;
    let single_cpu = machine.per_order(cpu, single_lat.len());
    let cpu = machine.sample();
    let (bulk_rate, bulk_lat, bulk_accepted) = bulk_phase(
        &client,
        &intake_base,
        options.bulk_orders,
        options.bulk_concurrency,
    )
    .await;
    let bulk_cpu = machine.per_order(cpu, bulk_accepted);
    let backlog = single_lat.len() + bulk_accepted;
    // The ceilings below and the processing run with nothing else on the machine but the
    // broker: the intake instance would otherwise follow the status records of the whole
    // backlog into its own view while the processing instance is measured (a third to
    // four fifths of a core here), which the raw pipe's run does not have to share with.
    drop(intake);
    // The fair ceiling for processing: a plain consumer reading the very records the service
    // wrote (same batches, same broker), before the processors start.
    let orders_consume_rate = raw_consume(&bootstrap, "bench.orders", backlog).await;
    let pipe_rate = raw_pipe(&bootstrap, "bench.orders", "bench.pipe", backlog).await;

    let worker_port = free_port();
    let worker_base = format!("http://127.0.0.1:{worker_port}");
    let processing_started = Instant::now();
    let worker = spawn_service(&bootstrap, worker_port, options.consumers, Access::Open);
    let worker_pid = worker.0.id();
    // Timed from the process's start, not from readiness: the first final status, and when
    // the instance became ready (the view has read the topics and built its indexes).
    let ready = tokio::spawn({
        let (client, base) = (client.clone(), worker_base.clone());
        async move {
            wait_ready(&client, &base).await;
            Instant::now()
        }
    });
    let (first, first_count) = polling::poll_until(
        "no order processed",
        Duration::from_secs(120),
        Duration::from_millis(20),
        || async {
            match processed_if_up(&client, &worker_base).await {
                Some(count) if count >= 1.0 => Ok((Instant::now(), count)),
                seen => Err(format!("processed: {seen:?}")),
            }
        },
    )
    .await;
    let done = wait_processed(&client, &worker_base, backlog as f64).await;
    let ready = ready.await.expect("readiness wait") - processing_started;
    // After the start-up (process start, group join, the view reading the whole backlog
    // before the processors may start: see "Delivery guarantee").
    let steady_rate = (backlog as f64 - first_count) / (done - first).as_secs_f64();
    let startup = first - processing_started;
    let processing_rate = backlog as f64 / (done - processing_started).as_secs_f64();
    let processing_cpu = per_order_us(cpu_time(worker_pid), backlog);
    // Every order of the backlog is in the worker's view now, final.
    let held_rss = rss_bytes(worker_pid);
    // The view reads every order record and every status record back (one each per order
    // here): the paced phase starts once it has, so that its stages measure the paced
    // orders, not the backlog's status records read back late.
    let view_read = wait_view_read(&client, &worker_base, 2.0 * backlog as f64).await;
    let view_behind = view_read.saturating_duration_since(done);

    // Paced load on the processing instance: accept-to-final latency from its histogram.
    let before = metrics(&client, &worker_base).await;
    let cpu = cpu_time(worker_pid);
    let paced = paced_phase(
        &client,
        &worker_base,
        options.paced_rate,
        options.paced_seconds,
    )
    .await;
    wait_processed(&client, &worker_base, (backlog + paced) as f64).await;
    let paced_cpu = per_order_us(cpu_time(worker_pid) - cpu, paced);
    // Ten seconds later, under a steady load: what the process keeps, once the C libraries'
    // freed memory has been handed back (every 10 s) after the backlog.
    let paced_rss = rss_bytes(worker_pid);
    let after = metrics(&client, &worker_base).await;
    let final_series = buckets_of("orderflow_order_accept_to_final_seconds", "");
    let delta = subtract_histograms(&after, &before, &final_series);
    let stages: Vec<(&str, f64, f64)> = orderflow::metrics::ORDER_STAGES
        .iter()
        .map(|stage| {
            let series = buckets_of(
                "orderflow_order_stage_seconds",
                &format!("stage=\"{stage}\","),
            );
            let delta = subtract_histograms(&after, &before, &series);
            (
                *stage,
                histogram_quantile(&delta, &series, 0.50),
                histogram_quantile(&delta, &series, 0.99),
            )
        })
        .collect();
    drop(worker);
    let (mut open_side, mut keys_side) = access_cost_phase(
        &client,
        &bootstrap,
        options.single_orders,
        options.concurrency,
    )
    .await;
    // The broker's floor for the accept-to-final row, at the service's own fetch wait.
    let fetch_wait_ms = std::env::var(FETCH_WAIT_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(TANSU_FETCH_WAIT_MS);
    let (floor_p50, floor_p99) = raw_ack_to_consume(
        &bootstrap,
        options.paced_rate,
        options.paced_seconds,
        fetch_wait_ms,
    )
    .await;

    let final_p50 = histogram_quantile(&delta, &final_series, 0.50);
    let final_p99 = histogram_quantile(&delta, &final_series, 0.99);
    let met = |ok: bool| if ok { "met" } else { "missed" };
    println!();
    println!("| measurement | orders/s | p50 ms | p99 ms | notes |");
    println!("|---|---:|---:|---:|---|");
    println!(
        "| raw produce (rdkafka, idempotent, acks=all) | {produce_rate:.0} | | | {} records |",
        options.raw_records
    );
    println!(
        "| raw consume (rdkafka, one consumer) | {consume_rate:.0} | | | {} records of the raw produce |",
        options.raw_records
    );
    println!(
        "| raw consume of the service's orders topic (rdkafka, one consumer) | {orders_consume_rate:.0} | | | {backlog} records as the service batched them |"
    );
    println!(
        "| raw pipe: consume the service's orders topic, produce one record per input, commit after the acks (rdkafka) | {pipe_rate:.0} | | | {backlog} records; the service's producer settings and in-flight bound; the ceiling processing is measured against |"
    );
    let single_p99 = percentile(&single_lat, 0.99);
    println!(
        "| POST /api/orders, concurrency {} | {single_rate:.0} | {:.2} | {single_p99:.2} | {} accepted, {single_failed} failed; CPU per order: {single_cpu}; aim ≥ 15,000/s, p99 < 20 ms: {} |",
        options.concurrency,
        percentile(&single_lat, 0.50),
        single_lat.len(),
        met(single_rate >= 15_000.0 && single_p99 < 20.0),
    );
    println!(
        "| POST /api/orders/bulk (500 per request), concurrency {} | {bulk_rate:.0} | {:.1} | {:.1} | {bulk_accepted} accepted; {:.0}% of raw produce; CPU per order: {bulk_cpu}; aim ≥ 80%: {} |",
        options.bulk_concurrency,
        percentile(&bulk_lat, 0.50),
        percentile(&bulk_lat, 0.99),
        bulk_rate / produce_rate * 100.0,
        met(bulk_rate >= 0.8 * produce_rate),
    );
    println!(
        "| processing backlog to final status ({} consumer task(s)) | {processing_rate:.0} | | | {backlog} orders, start-up included; {:.0}% of the raw pipe ({:.0}% of the orders-topic raw consume); {processing_cpu:.1} µs CPU per order (start-up and view included); start-up to the first final status {:.2} s (ready after {:.2} s), then {steady_rate:.0}/s ({:.0}% of the raw pipe); its view had read the last status record back {:.2} s after the last final status; aim ≥ 50% of the raw pipe: {} |",
        options.consumers,
        processing_rate / pipe_rate * 100.0,
        processing_rate / orders_consume_rate * 100.0,
        startup.as_secs_f64(),
        ready.as_secs_f64(),
        steady_rate / pipe_rate * 100.0,
        view_behind.as_secs_f64(),
        met(processing_rate >= 0.5 * pipe_rate),
    );
    println!(
        "| accept-to-final at {} orders/s paced | {:.0} | {final_p50:.1} | {final_p99:.1} | {paced} orders; from the service's histogram; {paced_cpu:.1} µs CPU per order (intake and processing); aim p99 ≤ 2× the floor: {} |",
        options.paced_rate,
        paced as f64 / options.paced_seconds as f64,
        met(final_p99 <= 2.0 * floor_p99),
    );
    println!(
        "| raw ack→consume at {rate} records/s paced, fetch.wait.max.ms={fetch_wait_ms} (the broker's floor) | {rate} | {floor_p50:.1} | {floor_p99:.1} | accept-to-final p99 is {:.1}× this p99 |",
        final_p99 / floor_p99.max(0.001),
        rate = options.paced_rate,
    );
    for (stage, p50, p99) in &stages {
        println!(
            "| stage {stage} (paced) | | {p50:.1} | {p99:.1} | orderflow_order_stage_seconds |"
        );
    }
    println!(
        "| resident memory | | | | an idle instance {:.0} MiB; the processing instance {:.0} MiB right after processing {backlog} orders, {:.0} MiB at the end of the paced phase |",
        idle_rss as f64 / (1 << 20) as f64,
        held_rss as f64 / (1 << 20) as f64,
        paced_rss as f64 / (1 << 20) as f64,
    );
    print_access(&mut open_side, &mut keys_side, options.concurrency);
}

/// The processes sharing the machine during a phase: the service, the broker and this load
/// generator.
struct Machine {
    service: u32,
    broker: u32,
}

impl Machine {
    fn sample(&self) -> [Duration; 3] {
        [
            cpu_time(self.service),
            cpu_time(self.broker),
            cpu_time(std::process::id()),
        ]
    }

    /// CPU time per order of each process since `before`, and what two cores allow at that
    /// total.
    fn per_order(&self, before: [Duration; 3], orders: usize) -> String {
        let after = self.sample();
        let us: Vec<f64> = (0..3)
            .map(|i| per_order_us(after[i] - before[i], orders))
            .collect();
        let total: f64 = us.iter().sum();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        format!(
            "service {:.1} µs + broker {:.1} µs + load generator {:.1} µs = {total:.1} µs, so {cores:.0} cores allow {:.0}/s",
            us[0],
            us[1],
            us[2],
            cores * 1e6 / total.max(0.001)
        )
    }
}

/// CPU microseconds per order.
fn per_order_us(cpu: Duration, orders: usize) -> f64 {
    cpu.as_secs_f64() * 1e6 / orders.max(1) as f64
}

/// Resident set size of a process, in bytes (VmRSS).
fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The guard's own work per request, in-process: finding a key among `keys` entries
/// (SHA-256, then a constant-time comparison with each) and taking a token from its bucket.
fn guard_work_ns(keys: usize) -> f64 {
    use orderflow::http::auth::Scope;
    use orderflow::http::auth::keys::{self, KeyEntry, KeyRing};
    use orderflow::http::auth::limit::{KeyLimiter, RateLimitSettings};
    let made: Vec<String> = (0..keys).map(|_| keys::generate().unwrap()).collect();
    let entries: Vec<KeyEntry> = made
        .iter()
        .enumerate()
        .map(|(i, key)| KeyEntry {
            name: format!("key-{i}"),
            sha256: keys::hex(&keys::digest(key)),
            scopes: vec![Scope::OrdersWrite],
            rate_per_second: None,
            burst: None,
            clusters: vec![],
        })
        .collect();
    let limits = RateLimitSettings {
        enabled: true,
        per_second: 1_000_000_000,
        burst: 1_000_000_000,
        unauthenticated_per_second: 1,
        unauthenticated_burst: 1,
    };
    let ring = KeyRing::new(&entries, |_| {
        KeyLimiter::new(limits.quota(None, None).unwrap())
    })
    .unwrap();
    let presented = made.last().unwrap();
    let rounds = 200_000;
    let started = Instant::now();
    for _ in 0..rounds {
        let key = ring.find(std::hint::black_box(presented)).unwrap();
        std::hint::black_box(key.limiter.check(1).unwrap());
    }
    started.elapsed().as_nanos() as f64 / rounds as f64
}

fn print_access(open_side: &mut AccessSide, keys_side: &mut AccessSide, concurrency: usize) {
    println!("{}", open_side.row("open (no key)", concurrency));
    println!("{}", keys_side.row("API key required", concurrency));
    println!();
    println!(
        "keys on vs off: throughput {:+.1}%, CPU per order {:+.1}% (alternating rounds, same broker)",
        (keys_side.accepted as f64 / keys_side.elapsed.as_secs_f64())
            / (open_side.accepted as f64 / open_side.elapsed.as_secs_f64())
            * 100.0
            - 100.0,
        keys_side.cpu_per_order_us() / open_side.cpu_per_order_us() * 100.0 - 100.0
    );
    let (one, fifty) = (guard_work_ns(1), guard_work_ns(50));
    println!(
        "guard work per request, in-process: {one:.0} ns with 1 key, {fifty:.0} ns with 50 keys \
         ({:.2}% of the open instance's CPU per order)",
        fifty / 1000.0 / open_side.cpu_per_order_us() * 100.0
    );
}

/// Migrate against a raw copy: the same records (a topic of 6 partitions on one broker)
/// copied to a second broker, once by a plain rdkafka consumer and producer (the same
/// producer settings as the service's: idempotent, `acks=all`, `linger.ms=5`, at most 20,000
/// in flight), once by the service's `POST /api/operations/migrate`.
async fn migrate_phase(records: usize) {
    let source_broker = TestBroker::start(Engine::Memory).await;
    let target_broker = TestBroker::start(Engine::Memory).await;
    let (source, target) = (source_broker.bootstrap(), target_broker.bootstrap());
    let topic = "bench.migrate";
    create_topic(&source, topic, 6).await;
    create_topic(&target, "bench.rawcopy", 6).await;
    raw_produce(&source, topic, records).await;
    let marks: Vec<(i32, i64, i64)> = {
        let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &source)
            .create()
            .unwrap();
        (0..6)
            .map(|p| {
                let (low, high) = consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .unwrap();
                (p, low, high)
            })
            .collect()
    };
    let total: i64 = marks.iter().map(|(_, low, high)| high - low).sum();

    // The raw copy.
    let raw_started = Instant::now();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &source)
        .set("group.id", format!("bench-copy-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let mut assignment = rdkafka::TopicPartitionList::new();
    for &(p, low, _) in &marks {
        assignment
            .add_partition_offset(topic, p, rdkafka::Offset::Offset(low))
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &target)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "100000")
        .create()
        .unwrap();
    let ends: std::collections::HashMap<i32, i64> =
        marks.iter().map(|&(p, _, high)| (p, high)).collect();
    let mut in_flight = futures::stream::FuturesUnordered::new();
    let (mut read, mut acked) = (0i64, 0i64);
    use futures::StreamExt;
    use rdkafka::message::Message;
    while acked < total {
        if read < total && in_flight.len() < 20_000 {
            let message = consumer.recv().await.unwrap();
            if message.offset() >= ends[&message.partition()] {
                continue;
            }
            read += 1;
            let key = message.key().map(<[u8]>::to_vec);
            let payload = message.payload().map(<[u8]>::to_vec);
            let partition = message.partition();
            let producer = producer.clone();
            in_flight.push(async move {
                let mut record =
                    FutureRecord::<[u8], [u8]>::to("bench.rawcopy").partition(partition);
                if let Some(key) = &key {
                    record = record.key(key);
                }
                if let Some(payload) = &payload {
                    record = record.payload(payload);
                }
                producer
                    .send(record, Duration::from_secs(30))
                    .await
                    .map(drop)
                    .map_err(|(e, _)| e)
            });
        } else if let Some(sent) = in_flight.next().await {
            sent.expect("raw copy send");
            acked += 1;
        }
    }
    let raw_rate = total as f64 / raw_started.elapsed().as_secs_f64();

    // The service.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let service = spawn_service_with(
        &source,
        port,
        0,
        Access::Open,
        &[
            ("ORDERFLOW__CLUSTERS__TARGET__NAME", "target"),
            ("ORDERFLOW__CLUSTERS__TARGET__ENVIRONMENT", "bench"),
            ("ORDERFLOW__CLUSTERS__TARGET__BOOTSTRAP_SERVERS", &target),
        ],
    );
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    let cpu_before = cpu_time(service.0.id());
    let started = Instant::now();
    let accepted: Value = client
        .post(format!("{base}/api/operations/migrate"))
        .json(&json!({"source_cluster_id": "default", "target_cluster_id": "target", "topics": [topic]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let location = format!("{base}/api/operations/{}", accepted["id"].as_str().unwrap());
    let done = loop {
        let operation: Value = client
            .get(&location)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !["pending", "running"].contains(&operation["status"].as_str().unwrap_or("")) {
            break operation;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let elapsed = started.elapsed();
    let cpu = cpu_time(service.0.id()).saturating_sub(cpu_before);
    let copied = done["records_copied"].as_i64().unwrap_or(0);
    let rate = copied as f64 / elapsed.as_secs_f64();
    println!(
        "migrate benchmark: {records} records produced, {total} below the watermarks, 6 partitions, two tansu memory brokers"
    );
    println!();
    println!("| copy | records/s | records | notes |");
    println!("|---|---:|---:|---|");
    println!(
        "| raw rdkafka consumer → producer | {raw_rate:.0} | {total} | up to 20,000 in flight |"
    );
    println!(
        "| POST /api/operations/migrate | {rate:.0} | {copied} | status {}, {:.1} µs service CPU per record; {:.0}% of the raw copy |",
        done["status"],
        cpu.as_secs_f64() * 1e6 / copied.max(1) as f64,
        rate / raw_rate * 100.0
    );
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(vec![], |(_, rest)| rest.split(' ').collect());
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(ticks as f64 / per_second)
}

/// One side of the keys on/off comparison.
#[derive(Default)]
struct AccessSide {
    accepted: usize,
    failed: usize,
    elapsed: Duration,
    cpu: Duration,
    latencies: Vec<Duration>,
}

impl AccessSide {
    fn row(&mut self, name: &str, concurrency: usize) -> String {
        self.latencies.sort();
        format!(
            "| POST /api/orders, concurrency {concurrency}, {name} | {:.0} | {:.2} | {:.2} | {} accepted, {} failed; {:.1} µs CPU per order |",
            self.accepted as f64 / self.elapsed.as_secs_f64(),
            percentile(&self.latencies, 0.50),
            percentile(&self.latencies, 0.99),
            self.accepted,
            self.failed,
            self.cpu_per_order_us()
        )
    }

    fn cpu_per_order_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.accepted.max(1) as f64
    }
}

/// The cost of access control: two intake instances on the same broker, one open and one
/// requiring keys (both with limits too high to bind, so every request is still checked
/// against a bucket), loaded in alternating rounds of single POSTs so that the machine's
/// drift falls on both alike.
async fn access_cost_phase(
    client: &reqwest::Client,
    bootstrap: &str,
    orders: usize,
    concurrency: usize,
) -> (AccessSide, AccessSide) {
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("keys.toml");
    let made = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["keys", "new", "--name", "bench", "--scopes", "orders:write"])
        .output()
        .expect("orderflow keys new");
    std::fs::write(&key_file, &made.stdout).unwrap();
    let key = String::from_utf8_lossy(&made.stderr)
        .split_whitespace()
        .find(|w| w.starts_with("ofk_"))
        .expect("a key on stderr")
        .to_string();
    let mut with_key = reqwest::header::HeaderMap::new();
    with_key.insert("authorization", format!("Bearer {key}").parse().unwrap());

    let open_port = free_port();
    let keys_port = free_port();
    let open = spawn_service(bootstrap, open_port, 0, Access::Open);
    let keys = spawn_service(bootstrap, keys_port, 0, Access::Keys(&key_file));
    let sides = [
        (
            format!("http://127.0.0.1:{open_port}"),
            open.0.id(),
            Default::default(),
        ),
        (
            format!("http://127.0.0.1:{keys_port}"),
            keys.0.id(),
            with_key,
        ),
    ];
    for (base, _, _) in &sides {
        wait_ready(client, base).await;
    }
    let rounds = 4;
    let mut results = [AccessSide::default(), AccessSide::default()];
    // Rounds in the order A B B A A B B A: each side goes first as often as second.
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let (base, pid, headers) = &sides[side];
            let result = &mut results[side];
            let cpu_before = cpu_time(*pid);
            let started = Instant::now();
            let (_, latencies, failed) =
                single_phase(client, base, orders / rounds, concurrency, headers.clone()).await;
            result.elapsed += started.elapsed();
            result.cpu += cpu_time(*pid).saturating_sub(cpu_before);
            result.accepted += latencies.len();
            result.failed += failed;
            result.latencies.extend(latencies);
        }
    }
    let [open_side, keys_side] = results;
    (open_side, keys_side)
}

/// The bucket lines starting with `series` (see [`buckets_of`]) of `after` minus those of
/// `before`, as exposition text.
fn subtract_histograms(after: &str, before: &str, series: &str) -> String {
    let prefix = series;
    after
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let earlier = sample(before, &format!("{prefix}{le}\"}}"));
            Some(format!(
                "{prefix}{le}\"}} {}",
                count.trim().parse::<f64>().ok()? - earlier
            ))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
