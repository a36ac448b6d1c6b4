//! `cargo bench --bench load -- --view-orders N` (docs/benchmarks.md: 1,000,000): the status view at
//! scale, in one run against one Tansu broker (memory storage):
//!
//! - N orders with their final status written straight to the service's two topics (as N
//!   accepted and processed orders leave them), and the raw consume rate of both topics;
//! - a service started with an empty view: the rebuild's rate, and its resident memory as
//!   the view grows (sampled at quarters of the records);
//! - the filtered list (`status`, `customer_id`, a time range, a second page) and point
//!   reads past the cache: p50 / p99 over sequential requests;
//! - a graceful restart on the same store: start-to-ready and the records read after it;
//! - single POSTs with no stream open, then with 500 open (400 per-order streams of pending
//!   orders, 100 customer feeds), then the shutdown with those streams open.
//!
//! Tansu's memory engine reports a partition's end as its last batch's base offset + 1
//! (BROKER.md), which makes a checkpoint look past the end and the view rebuild on every
//! restart; the bench ends each partition with a one-record batch so the end it reports is
//! right. Apache Kafka needs nothing of the sort.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use orderflow::orders::{Order, OrderEvent, OrderRequest, OrderRules, OrderSnapshot, OrderStatus};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::broker::{Engine, TestBroker};
use super::{
    Access, create_topic, free_port, metrics, percentile, raw_consume, rss_bytes, sample,
    single_phase, spawn_service_with, wait_ready,
};

const PARTITIONS: i32 = 6;
const CUSTOMERS: usize = 1_000;

fn template() -> Order {
    let request: OrderRequest = serde_json::from_value(super::order_json()).unwrap();
    let rules = OrderRules {
        max_items: 100,
        currencies: vec![],
    };
    request.parse(&rules, Utc::now()).unwrap()
}

/// The two records of order `i`: its `order_placed` record and its final status snapshot.
fn records(template: &Order, i: usize) -> (String, Vec<u8>, Vec<u8>) {
    let mut order = template.clone();
    // As the service assigns them when a client gives none (time-ordered, UUID v7).
    order.order_id = uuid::Uuid::now_v7();
    order.customer_id = format!("customer-{}", i % CUSTOMERS);
    // One order a second, ending now: a time range of an hour holds 3,600.
    order.accepted_at = Utc.timestamp_opt(1_760_000_000 + i as i64, 0).unwrap();
    let placed = serde_json::to_vec(&OrderEvent::OrderPlaced {
        order: order.clone(),
    })
    .unwrap();
    let at = order.accepted_at + chrono::Duration::milliseconds(50);
    let processing = OrderSnapshot::pending(order).advance(OrderStatus::Processing, None, at);
    let done = if i.is_multiple_of(10) {
        processing.advance(OrderStatus::Failed, Some("credit limit".into()), at)
    } else {
        processing.advance(OrderStatus::Completed, None, at)
    };
    let key = done.order.order_id.to_string();
    (key, placed, serde_json::to_vec(&done).unwrap())
}

async fn write_orders(bootstrap: &str, count: usize) -> Vec<String> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .unwrap();
    let template = template();
    let mut sample_ids = Vec::new();
    let chunk = 20_000;
    for start in (0..count).step_by(chunk) {
        let batch: Vec<_> = (start..(start + chunk).min(count))
            .map(|i| (i, records(&template, i)))
            .collect();
        let sends = batch.iter().flat_map(|(i, (key, placed, done))| {
            let partition = (*i % PARTITIONS as usize) as i32;
            [
                producer.send(
                    FutureRecord::to("bench.orders")
                        .key(key)
                        .payload(placed)
                        .partition(partition),
                    Duration::from_secs(60),
                ),
                producer.send(
                    FutureRecord::to("bench.orders.status")
                        .key(key)
                        .payload(done)
                        .partition(partition),
                    Duration::from_secs(60),
                ),
            ]
        });
        for result in futures::future::join_all(sends).await {
            result.map_err(|(e, _)| e).expect("write orders");
        }
        sample_ids.extend(
            batch
                .iter()
                .step_by(997)
                .map(|(_, (key, _, _))| key.clone()),
        );
    }
    // One more order per partition, each in a batch of its own (see the module comment).
    for partition in 0..PARTITIONS {
        let (key, placed, done) = records(&template, count + partition as usize);
        for (topic, payload) in [("bench.orders", &placed), ("bench.orders.status", &done)] {
            producer
                .send(
                    FutureRecord::to(topic)
                        .key(&key)
                        .payload(payload)
                        .partition(partition),
                    Duration::from_secs(60),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("write the last orders");
            producer.flush(Duration::from_secs(10)).unwrap();
        }
    }
    sample_ids
}

struct Latencies(Vec<Duration>);

impl Latencies {
    fn line(&mut self, what: &str) {
        self.0.sort();
        println!(
            "| {what} | {} | {:.2} | {:.2} |",
            self.0.len(),
            percentile(&self.0, 0.50),
            percentile(&self.0, 0.99)
        );
    }
}

async fn timed_gets(client: &reqwest::Client, urls: &[String]) -> Latencies {
    let mut times = Vec::with_capacity(urls.len());
    for url in urls {
        let started = Instant::now();
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        response.bytes().await.unwrap();
        times.push(started.elapsed());
    }
    Latencies(times)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub async fn view_phase(count: usize) {
    let broker = TestBroker::start(Engine::Memory).await;
    let bootstrap = broker.bootstrap();
    println!(
        "status view at {count} orders: {} cores, tansu memory storage, {PARTITIONS} partitions per topic",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    create_topic(&bootstrap, "bench.orders", PARTITIONS).await;
    create_topic(&bootstrap, "bench.orders.status", PARTITIONS).await;
    let started = Instant::now();
    let ids = write_orders(&bootstrap, count).await;
    let records = 2 * (count + PARTITIONS as usize);
    println!(
        "wrote {records} records in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let raw_orders = raw_consume(&bootstrap, "bench.orders", records / 2).await;
    let raw_status = raw_consume(&bootstrap, "bench.orders.status", records / 2).await;

    let views = tempfile::tempdir().unwrap();
    let path = views.path().join("view.db").display().to_string();
    let env = [
        ("ORDERFLOW__STATUS_VIEW__PATH", path.as_str()),
        ("ORDERFLOW__TOPICS__ORDERS__PARTITIONS", "6"),
        ("ORDERFLOW__TOPICS__STATUS__PARTITIONS", "6"),
    ];
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let spawned = Instant::now();
    let service = spawn_service_with(&bootstrap, port, 0, Access::Open, &env);
    let pid = service.0.id();
    // Memory as the view grows: RSS at each quarter of the records read.
    let mut quarters = Vec::new();
    loop {
        // No answer yet: the process is still starting.
        let ready = client.get(format!("{base}/health/ready")).send().await;
        match ready {
            Ok(r) if r.status() == 200 => break,
            Ok(_) => {
                let text = metrics(&client, &base).await;
                let done = sample(&text, "orderflow_view_records_read_total") / records as f64;
                if done >= 0.25 * (quarters.len() + 1) as f64 && quarters.len() < 3 {
                    quarters.push((done, rss_bytes(pid)));
                }
            }
            Err(_) => {}
        }
        assert!(
            spawned.elapsed() < Duration::from_secs(1_200),
            "rebuild never ended"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let rebuild = spawned.elapsed();
    let text = metrics(&client, &base).await;
    let read = sample(&text, "orderflow_view_records_read_total");
    quarters.push((1.0, rss_bytes(pid)));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let settled = rss_bytes(pid);

    let mut list_urls = Vec::new();
    for i in 0..500 {
        let customer = format!("customer-{}", (i * 7) % CUSTOMERS);
        let from = Utc
            .timestamp_opt(1_760_000_000 + (i * 1_999 % count) as i64, 0)
            .unwrap();
        let to = from + chrono::Duration::hours(1);
        list_urls.push(format!("{base}/api/orders?status=FAILED&limit=50"));
        list_urls.push(format!("{base}/api/orders?customer_id={customer}&limit=20"));
        list_urls.push(format!(
            "{base}/api/orders?from={}&to={}&limit=50",
            from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
        list_urls.push(format!(
            "{base}/api/orders?status=COMPLETED&customer_id={customer}&limit=50"
        ));
    }
    let mut lists = timed_gets(&client, &list_urls).await;
    let get_urls: Vec<String> = ids
        .iter()
        .cycle()
        .take(2_000)
        .map(|id| format!("{base}/api/orders/{id}"))
        .collect();
    let mut gets = timed_gets(&client, &get_urls).await;

    // A graceful restart on the same store.
    let mut service = service;
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    service.0.wait().unwrap();
    let restarted_at = Instant::now();
    let service = spawn_service_with(&bootstrap, port, 0, Access::Open, &env);
    wait_ready(&client, &base).await;
    let restart = restarted_at.elapsed();
    let text = metrics(&client, &base).await;
    let read_after_restart = sample(&text, "orderflow_view_records_read_total");
    // The restarted instance after the same reads: its memory in steady use.
    timed_gets(&client, &list_urls).await;
    timed_gets(&client, &get_urls).await;
    let restarted_rss = rss_bytes(service.0.id());
    let rebuilds: f64 = ["missing", "unreadable", "other_source", "offsets_gone"]
        .iter()
        .map(|r| {
            sample(
                &text,
                &format!("orderflow_view_rebuilds_total{{reason=\"{r}\"}}"),
            )
        })
        .sum();

    println!();
    println!("| view | figure |");
    println!("|---|---|");
    println!(
        "| raw consume, orders / status topic | {raw_orders:.0} / {raw_status:.0} records/s |"
    );
    println!(
        "| rebuild from empty, start to ready | {read:.0} records in {:.1} s = {:.0} records/s ({:.0}% of raw consume) |",
        rebuild.as_secs_f64(),
        read / rebuild.as_secs_f64(),
        100.0 * (read / rebuild.as_secs_f64()) / ((raw_orders + raw_status) / 2.0)
    );
    for (done, rss) in &quarters {
        println!(
            "| RSS at {:.0}% of the rebuild | {:.0} MiB |",
            done.min(1.0) * 100.0,
            mib(*rss)
        );
    }
    println!(
        "| RSS 5 s after ready, {count} orders (aim < 200 MiB) | {:.0} MiB |",
        mib(settled)
    );
    println!(
        "| RSS of the restarted instance after the same reads | {:.0} MiB |",
        mib(restarted_rss)
    );
    println!(
        "| restart to ready on the same store (aim < 5 s) | {:.2} s, {read_after_restart:.0} records read, {rebuilds:.0} rebuilds |",
        restart.as_secs_f64()
    );
    println!();
    println!("| request | n | p50 ms | p99 ms (aim < 10 for lists) |");
    println!("|---|---|---|---|");
    lists.line("GET /api/orders, filtered (status / customer / hour / both)");
    gets.line("GET /api/orders/{id}, mostly past the cache");

    streams_phase(&client, &base, service).await;
    drop(broker);
}

/// Intake with no stream open, then with 500 open; then the shutdown with them open.
async fn streams_phase(client: &reqwest::Client, base: &str, mut service: super::Guard) {
    let headers = reqwest::header::HeaderMap::new();
    let (without, _, _) = single_phase(client, base, 20_000, 64, headers.clone()).await;
    // Pending orders to follow (this instance does not process).
    let mut pending = Vec::new();
    for _ in 0..400 {
        let response = client
            .post(format!("{base}/api/orders"))
            .json(&super::order_json())
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = response.json().await.unwrap();
        pending.push(body["order_id"].as_str().unwrap().to_string());
    }
    let streams = reqwest::Client::new();
    let urls = pending
        .iter()
        .map(|id| format!("{base}/api/orders/{id}/events"))
        .chain((0..100).map(|i| format!("{base}/api/orders/events?customer_id=customer-{i}")));
    let mut open = Vec::new();
    for url in urls {
        let response = streams.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        open.push(response);
    }
    let text = metrics(client, base).await;
    let gauge = sample(&text, "orderflow_live_streams_open");
    let (with, _, _) = single_phase(client, base, 20_000, 64, headers).await;

    // Shutdown with the streams open: each must end, and the process exit, in the grace period.
    let readers: Vec<_> = open
        .into_iter()
        .map(|mut response| {
            tokio::spawn(async move {
                while let Ok(Some(_)) = response.chunk().await {}
                Instant::now()
            })
        })
        .collect();
    let stopping = Instant::now();
    unsafe { libc::kill(service.0.id() as i32, libc::SIGTERM) };
    service.0.wait().unwrap();
    let exited = stopping.elapsed();
    let mut last_end = Duration::ZERO;
    for reader in readers {
        let ended = tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .expect("a stream outlived the service")
            .unwrap();
        last_end = last_end.max(ended.duration_since(stopping));
    }
    println!();
    println!("| intake with live streams | figure |");
    println!("|---|---|");
    println!("| single POSTs, no stream open | {without:.0} orders/s |");
    println!(
        "| single POSTs, {gauge:.0} streams open (aim: no more than 10% slower) | {with:.0} orders/s ({:+.1}%) |",
        100.0 * (with - without) / without
    );
    println!(
        "| shutdown with those streams open: last stream ended / process exited | {:.2} s / {:.2} s |",
        last_end.as_secs_f64(),
        exited.as_secs_f64()
    );
}
