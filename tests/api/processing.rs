//! Background processing: statuses, rules, dead letters, redelivery, cancel, and a second
//! instance's view.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use orderflow::kafka::{
    BaseConsumer, BaseProducer, ConsumerOptions, Handler, HandlerError, Received,
};
use serde_json::{Value, json};

use crate::helpers::*;

fn statuses(view: &Value) -> Vec<&str> {
    view["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_order_completes_and_each_rule_fails_its_order() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;

    let id = app.place(&valid_order()).await;
    let view = app.wait_status(&id, "COMPLETED").await;
    assert_eq!(view["status"], "COMPLETED");
    assert_eq!(statuses(&view), ["PENDING", "PROCESSING", "COMPLETED"]);
    assert_eq!(view["total"], "40.08");
    assert_eq!(view["items"][0]["unit_price"], "19.99");

    let mut over_total = valid_order();
    over_total["items"][0]["unit_price"] = json!("999.99");
    let mut over_quantity = valid_order();
    over_quantity["items"][0]["quantity"] = json!(11);
    let mut blocked = valid_order();
    blocked["customer_id"] = json!("blocked-customer");
    for (order, reason) in [
        (over_total, "order_total_over_limit"),
        (over_quantity, "quantity_over_limit"),
        (blocked, "customer_blocked"),
    ] {
        let id = app.place(&order).await;
        let view = app.wait_status(&id, "FAILED").await;
        assert_eq!(view["status"], "FAILED", "{reason}");
        assert!(
            view["reason"].as_str().unwrap().starts_with(reason),
            "{view}"
        );
        assert_eq!(statuses(&view), ["PENDING", "PROCESSING", "FAILED"]);
    }

    let (status, page) = app.get_json("/api/orders?status=FAILED&limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(page["orders"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get_json(&format!(
            "/api/orders?status=FAILED&limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(rest["orders"].as_array().unwrap().len(), 1);
    assert!(rest.get("next_cursor").is_none());
    let (status, _) = app.get_json("/api/orders?status=DONE").await;
    assert_eq!(status, 400);
    let (status, body) = app
        .get_json(&format!("/api/orders/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));

    assert_eq!(
        app.metric("orderflow_orders_processed_total", &[("status", "FAILED")])
            .await,
        3.0
    );
    assert_eq!(
        app.metric(
            "orderflow_orders_processed_total",
            &[("status", "COMPLETED")]
        )
        .await,
        1.0
    );
    assert_eq!(
        app.metric("orderflow_order_accept_to_final_seconds", &[])
            .await,
        4.0
    );
}

#[tokio::test]
async fn poison_records_are_dead_lettered_and_processing_goes_on() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;
    let orders = &app.settings.topics.orders.name;
    let not_an_order = br#"{"type":"order_placed","order":{"order_id":"nope"}}"#;
    produce_raw(
        &broker.bootstrap(),
        orders,
        &[(Some("k1"), b"not json at all"), (Some("k2"), not_an_order)],
    )
    .await;

    let id = app.place(&valid_order()).await;
    assert_eq!(
        app.wait_status(&id, "COMPLETED").await["status"],
        "COMPLETED"
    );

    let dead = read_topic(&broker.bootstrap(), &app.settings.topics.dlq.name, 2).await;
    assert_eq!(dead.len(), 2);
    let by_key: HashMap<_, _> = dead.iter().map(|r| (r.key.clone().unwrap(), r)).collect();
    let first = by_key["k1"];
    assert_eq!(first.value, json!("not json at all"));
    assert_eq!(first.header("dlq-source-topic"), Some(orders.as_str()));
    assert!(
        first
            .header("dlq-source-partition")
            .unwrap()
            .parse::<i32>()
            .is_ok()
    );
    assert!(
        first
            .header("dlq-source-offset")
            .unwrap()
            .parse::<i64>()
            .is_ok()
    );
    assert_eq!(first.header("dlq-reason"), Some("undecodable"));
    assert_eq!(first.header("dlq-attempts"), Some("0"));
    assert!(first.header("dlq-error").unwrap().contains("cannot decode"));
    assert_eq!(by_key["k2"].header("dlq-reason"), Some("undecodable"));
    let dead_lettered = app
        .metric(
            "orderflow_kafka_consumer_dead_lettered_total",
            &[("reason", "undecodable"), ("topic", orders)],
        )
        .await;
    assert_eq!(dead_lettered, 2.0);
}

/// Fails `fail_times` times for value n == 1, and always for n == 2.
struct Flaky {
    calls: AtomicU32,
    fail_times: u32,
    succeeded: AtomicU32,
}

impl Handler<Value> for Flaky {
    async fn handle(&self, message: &Received<Value>) -> Result<(), HandlerError> {
        match message.value["n"].as_u64() {
            Some(1) => {
                let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                if call <= self.fail_times {
                    return Err(HandlerError::Transient(anyhow::anyhow!(
                        "try again ({call})"
                    )));
                }
                self.succeeded.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            _ => Err(HandlerError::Transient(anyhow::anyhow!("always broken"))),
        }
    }
}

/// A topic of one partition beside the service's, and a generic consumer of it with the
/// service's options (`max_attempts` attempts, 10 ms backoff).
async fn generic_consumer(
    settings: &orderflow::config::Settings,
    name: &str,
    partitions: i32,
    max_attempts: u32,
) -> (String, BaseConsumer<Value>) {
    let topic = settings
        .topics
        .dlq
        .name
        .replace(".dlq", &format!(".{name}"));
    let client = orderflow::app::client_settings(settings);
    let specs = [orderflow::kafka::topics::TopicSpec {
        name: topic.clone(),
        partitions,
        replication: 1,
        configs: vec![],
    }];
    orderflow::kafka::topics::ensure_topics(&client, &specs, Duration::from_secs(5))
        .await
        .unwrap();
    let producer: BaseProducer<Value> = BaseProducer::new(
        &client,
        &orderflow::kafka::producer::ProducerOptions {
            delivery_timeout: Duration::from_secs(3),
            queue_max_messages: 1000,
            linger: Duration::from_millis(1),
            compression: "none".into(),
            statistics_interval: Duration::ZERO,
            metrics: None,
        },
    )
    .unwrap();
    let mut options = orderflow::app::consumer_options(settings);
    options.topics = vec![topic.clone()];
    options.group_id = format!("{}-{name}", settings.processing.group_id);
    options.max_attempts = max_attempts;
    let options = ConsumerOptions {
        retry_backoff: Duration::from_millis(10),
        ..options
    };
    let consumer = BaseConsumer::new(&client, options, producer, None, Default::default()).unwrap();
    (topic, consumer)
}

#[tokio::test]
async fn base_consumer_retries_transient_failures_then_dead_letters() {
    let broker = TestBroker::start(Engine::Memory).await;
    let settings = test_settings(&broker);
    // Let the service create the topics, then use the generic consumer on its own.
    let _app = TestApp::spawn(settings.clone()).await;
    let (topic, consumer) = generic_consumer(&settings, "flaky", 1, 3).await;
    produce_raw(
        &broker.bootstrap(),
        &topic,
        &[(Some("a"), br#"{"n":1}"#), (Some("b"), br#"{"n":2}"#)],
    )
    .await;

    let handler = Arc::new(Flaky {
        calls: AtomicU32::new(0),
        fail_times: 2,
        succeeded: AtomicU32::new(0),
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(consumer.run(handler.clone(), stop.clone()));

    let dead = read_topic(&broker.bootstrap(), &settings.topics.dlq.name, 1).await;
    stop.cancel();
    run.await.unwrap().unwrap();
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        3,
        "two failures, then success"
    );
    assert_eq!(handler.succeeded.load(Ordering::SeqCst), 1);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key.as_deref(), Some("b"));
    assert_eq!(dead[0].header("dlq-reason"), Some("exhausted"));
    assert_eq!(dead[0].header("dlq-attempts"), Some("3"));
    assert!(
        dead[0]
            .header("dlq-error")
            .unwrap()
            .contains("always broken")
    );
}

/// Writes `(key, value)` records to `topic` as they are.
async fn produce_keyed(bootstrap: &str, topic: &str, records: &[(String, Vec<u8>)]) {
    let records: Vec<(Option<&str>, &[u8])> = records
        .iter()
        .map(|(k, v)| (Some(k.as_str()), v.as_slice()))
        .collect();
    produce_raw(bootstrap, topic, &records).await;
}

/// How many messages a recording handler was handed, over all its calls.
fn handed_over(calls: &std::sync::Mutex<Vec<Vec<String>>>) -> usize {
    calls.lock().unwrap().iter().map(Vec::len).sum()
}

/// Runs `consumer` with `handler` until `enough` says so (or `within` passes), then stops it.
async fn run_until<H: Handler<Value>>(
    consumer: BaseConsumer<Value>,
    handler: Arc<H>,
    within: Duration,
    enough: impl Fn() -> bool,
) {
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(consumer.run(handler, stop.clone()));
    let deadline = std::time::Instant::now() + within;
    while !enough() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    run.await.unwrap().unwrap();
}

/// Records each batch it is given and, per key, the values in the order it finished them;
/// takes a while per batch, so that batches overlap.
#[derive(Default)]
struct Recorder {
    batches: std::sync::Mutex<Vec<Vec<String>>>,
    /// Keys being handled now.
    active: std::sync::Mutex<std::collections::HashSet<String>>,
    /// A key handled twice at once (or twice in a batch).
    overlapped: std::sync::atomic::AtomicBool,
    finished: std::sync::Mutex<HashMap<String, Vec<u64>>>,
}

impl Handler<Value> for Recorder {
    async fn handle(&self, message: &Received<Value>) -> Result<(), HandlerError> {
        self.handle_batch(std::slice::from_ref(message))
            .await
            .pop()
            .unwrap()
    }

    async fn handle_batch(&self, messages: &[Received<Value>]) -> Vec<Result<(), HandlerError>> {
        let keys: Vec<String> = messages.iter().map(|m| m.key.clone().unwrap()).collect();
        {
            let mut active = self.active.lock().unwrap();
            for key in &keys {
                if !active.insert(key.clone()) {
                    self.overlapped.store(true, Ordering::SeqCst);
                }
            }
        }
        self.batches.lock().unwrap().push(keys.clone());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut finished = self.finished.lock().unwrap();
        let mut active = self.active.lock().unwrap();
        for (key, message) in keys.iter().zip(messages) {
            active.remove(key);
            finished
                .entry(key.clone())
                .or_default()
                .push(message.value["n"].as_u64().unwrap());
        }
        messages.iter().map(|_| Ok(())).collect()
    }
}

#[tokio::test]
async fn base_consumer_hands_over_batches_and_keeps_each_keys_order() {
    let broker = TestBroker::start(Engine::Memory).await;
    let settings = test_settings(&broker);
    let _app = TestApp::spawn(settings.clone()).await;
    let (topic, consumer) = generic_consumer(&settings, "batches", 1, 1).await;
    // 3,000 records of ten keys in turn, each key's values rising: most polls hold every key
    // several times, and every batch has keys of the one before.
    let records: Vec<(String, Vec<u8>)> = (0..3_000u64)
        .map(|n| {
            (
                format!("k{}", n % 10),
                format!(r#"{{"n":{n}}}"#).into_bytes(),
            )
        })
        .collect();
    produce_keyed(&broker.bootstrap(), &topic, &records).await;

    let handler = Arc::new(Recorder::default());
    // The consumer finishes what it handed over before it stops.
    run_until(consumer, handler.clone(), Duration::from_secs(60), || {
        handed_over(&handler.batches) >= 3_000
    })
    .await;

    let finished = handler.finished.lock().unwrap();
    assert_eq!(finished.len(), 10);
    for (key, values) in finished.iter() {
        let k: u64 = key[1..].parse().unwrap();
        let expected: Vec<u64> = (0..300).map(|i| i * 10 + k).collect();
        assert_eq!(values, &expected, "{key}: every value once, in order");
    }
    assert!(
        !handler.overlapped.load(Ordering::SeqCst),
        "a key was handled twice at once"
    );
    let batches = handler.batches.lock().unwrap();
    for batch in batches.iter() {
        let distinct: std::collections::HashSet<&String> = batch.iter().collect();
        assert_eq!(distinct.len(), batch.len(), "a key twice in one batch");
    }
    // Handed over together, not one by one: ten keys in turn make batches of up to ten.
    let largest = batches.iter().map(Vec::len).max().unwrap();
    assert_eq!(largest, 10, "batches: {}", batches.len());
}

/// Fails every message the first time it sees it; records the keys of each call.
#[derive(Default)]
struct FailsFirst {
    calls: std::sync::Mutex<Vec<Vec<String>>>,
    seen: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Handler<Value> for FailsFirst {
    async fn handle(&self, message: &Received<Value>) -> Result<(), HandlerError> {
        self.handle_batch(std::slice::from_ref(message))
            .await
            .pop()
            .unwrap()
    }

    async fn handle_batch(&self, messages: &[Received<Value>]) -> Vec<Result<(), HandlerError>> {
        let keys: Vec<String> = messages.iter().map(|m| m.key.clone().unwrap()).collect();
        self.calls.lock().unwrap().push(keys.clone());
        let mut seen = self.seen.lock().unwrap();
        keys.into_iter()
            .map(|key| match seen.insert(key) {
                true => Err(HandlerError::Transient(anyhow::anyhow!("first time"))),
                false => Ok(()),
            })
            .collect()
    }
}

#[tokio::test]
async fn base_consumer_retries_a_batchs_failures_together() {
    let broker = TestBroker::start(Engine::Memory).await;
    let settings = test_settings(&broker);
    let _app = TestApp::spawn(settings.clone()).await;
    let (topic, consumer) = generic_consumer(&settings, "fails-first", 1, 3).await;
    let records: Vec<(String, Vec<u8>)> = (0..50)
        .map(|n| (format!("k{n}"), br#"{"n":0}"#.to_vec()))
        .collect();
    produce_keyed(&broker.bootstrap(), &topic, &records).await;

    let handler = Arc::new(FailsFirst::default());
    run_until(consumer, handler.clone(), Duration::from_secs(30), || {
        handed_over(&handler.calls) >= 100
    })
    .await;

    assert_eq!(handed_over(&handler.calls), 100, "each message twice");
    let calls = handler.calls.lock().unwrap();
    // Every call of failures is followed by one call with the same messages, together.
    for pair in calls.chunks(2) {
        assert_eq!(pair.len(), 2, "{calls:?}");
        assert_eq!(pair[0], pair[1], "the failures come back together");
    }
    assert!(calls[0].len() > 1, "handed over together: {calls:?}");
}

#[tokio::test]
async fn the_same_order_record_twice_gives_one_outcome() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;
    let id = uuid::Uuid::new_v4().to_string();
    let record = json!({
        "type": "order_placed",
        "order": {
            "order_id": id, "customer_id": "c-1", "currency": "EUR", "total": "2.00",
            "items": [{"product_id": "p", "quantity": 2, "unit_price": "1.00"}],
            "accepted_at": "2026-11-22T10:00:00Z"
        }
    });
    let bytes = serde_json::to_vec(&record).unwrap();
    let topic = &app.settings.topics.orders.name;
    produce_raw(
        &broker.bootstrap(),
        topic,
        &[(Some(&id), &bytes), (Some(&id), &bytes)],
    )
    .await;

    let view = app.wait_status(&id, "COMPLETED").await;
    assert_eq!(statuses(&view), ["PENDING", "PROCESSING", "COMPLETED"]);
    let status_records = read_topic(&broker.bootstrap(), &app.settings.topics.status.name, 1).await;
    let mine: Vec<&str> = status_records
        .iter()
        .filter(|r| r.key.as_deref() == Some(id.as_str()))
        .map(|r| r.value["status"].as_str().unwrap())
        .collect();
    // One record, written once although the order record came twice.
    assert_eq!(mine, ["COMPLETED"]);
    assert_eq!(
        app.metric("orderflow_orders_redelivered_skipped_total", &[])
            .await,
        1.0
    );
}

#[tokio::test]
async fn cancel_before_processing_after_completion_and_unknown() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut intake_only = test_settings(&broker);
    intake_only.processing.consumers = 0;
    let intake = TestApp::spawn(intake_only.clone()).await;

    let id = intake.place(&valid_order()).await;
    let response = intake.cancel(&id).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["status"].as_str(), body["cancel_requested"].as_bool()),
        (Some("PENDING"), Some(true))
    );

    // A processing instance starts only now: the cancel is ahead of processing.
    let mut processing = another_instance(&intake_only);
    processing.processing.consumers = 1;
    let worker = TestApp::spawn(processing).await;
    let view = worker.wait_status(&id, "CANCELLED").await;
    assert_eq!(view["status"], "CANCELLED");
    assert_eq!(statuses(&view), ["PENDING", "CANCELLED"]);
    assert_eq!(
        intake.wait_status(&id, "CANCELLED").await["status"],
        "CANCELLED"
    );

    let done = worker.place(&valid_order()).await;
    worker.wait_status(&done, "COMPLETED").await;
    let late = worker.cancel(&done).await;
    assert_eq!(late.status(), 409);
    assert_eq!(late.json::<Value>().await.unwrap()["code"], "order_final");

    let unknown = uuid::Uuid::new_v4();
    let response = worker.cancel(&unknown.to_string()).await;
    assert_eq!(response.status(), 404);
}

/// A processor reaches an order before its cancel record, so a cancel asked while the order
/// waited is known only from the view: after its assignment the processor must wait for the
/// view to have read `orders` too, not only the status topic, which a fresh view reads first
/// (here it holds 30,000 other orders' final statuses, so reading it takes a while).
#[tokio::test]
async fn a_cancel_asked_while_its_order_waited_wins_behind_a_long_status_topic() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let broker = TestBroker::start(Engine::Memory).await;
    let mut intake_only = test_settings(&broker);
    intake_only.processing.consumers = 0;
    let intake = TestApp::spawn(intake_only.clone()).await;

    let template: orderflow::orders::OrderRequest = serde_json::from_value(valid_order()).unwrap();
    let rules = orderflow::orders::OrderRules {
        max_items: 10,
        currencies: vec![],
    };
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "250000")
        .create()
        .unwrap();
    let records: Vec<(String, Vec<u8>)> = (0..30_000)
        .map(|_| {
            let mut order = template.clone().parse(&rules, chrono::Utc::now()).unwrap();
            order.order_id = uuid::Uuid::now_v7();
            let done = orderflow::orders::OrderSnapshot::pending(order).advance(
                orderflow::orders::OrderStatus::Completed,
                None,
                chrono::Utc::now(),
            );
            (
                done.order.order_id.to_string(),
                serde_json::to_vec(&done).unwrap(),
            )
        })
        .collect();
    let topic = &intake_only.topics.status.name;
    let sends = records.iter().map(|(key, value)| {
        producer.send(
            FutureRecord::to(topic).key(key).payload(value),
            Duration::from_secs(60),
        )
    });
    for sent in futures::future::join_all(sends).await {
        sent.map_err(|(e, _)| e).expect("status record written");
    }

    let id = intake.place(&valid_order()).await;
    let response = intake.cancel(&id).await;
    assert_eq!(response.status(), 202);

    let mut processing = another_instance(&intake_only);
    processing.processing.consumers = 1;
    let worker = TestApp::start(processing).await;
    let view = worker.wait_status(&id, "CANCELLED").await;
    assert_eq!(statuses(&view), ["PENDING", "CANCELLED"]);
}

#[tokio::test]
async fn a_fresh_instance_answers_for_every_processed_order() {
    // sqlite: the fresh instance is ready once it has read to the ends the broker reports;
    // the memory engine reports a partition's end inside its last batch when the batch holds
    // several records (BROKER.md), as the status records of orders processed together do.
    let broker = TestBroker::start(Engine::Sqlite).await;
    let settings = test_settings(&broker);
    let first = TestApp::spawn(settings.clone()).await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(first.place(&valid_order()).await);
    }
    for id in &ids {
        first.wait_status(id, "COMPLETED").await;
    }
    let mut reader_settings = another_instance(&settings);
    reader_settings.processing.consumers = 0;
    let fresh = TestApp::spawn(reader_settings).await;
    for id in &ids {
        let (status, view) = fresh.get_json(&format!("/api/orders/{id}")).await;
        assert_eq!((status, view["status"].as_str()), (200, Some("COMPLETED")));
        assert_eq!(statuses(&view), ["PENDING", "PROCESSING", "COMPLETED"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_partitions_and_hand_over_without_loss() {
    // sqlite: correct watermarks, which the hand-over's catch-up relies on (see BROKER.md).
    let broker = TestBroker::start(Engine::Sqlite).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 1;
    let mut a = TestApp::spawn(settings.clone()).await;
    let b = TestApp::spawn(another_instance(&settings)).await;

    // Wait until both members hold partitions.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let assign = (
        "orderflow_kafka_consumer_rebalances_total",
        &[("kind", "assign")][..],
    );
    while a.metric(assign.0, assign.1).await < 1.0 || b.metric(assign.0, assign.1).await < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "both instances never got partitions"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(a.place(&valid_order()).await);
    }
    for id in &ids {
        b.wait_status(id, "COMPLETED").await;
    }
    let topic = &settings.topics.orders.name;
    let consumed = (
        "orderflow_kafka_consumer_records_total",
        &[("topic", topic.as_str())][..],
    );
    let (on_a, on_b) = (
        a.metric(consumed.0, consumed.1).await,
        b.metric(consumed.0, consumed.1).await,
    );
    assert!(
        on_a > 0.0 && on_b > 0.0,
        "partitions not shared: a={on_a} b={on_b}"
    );
    assert!(on_a + on_b >= 30.0, "a={on_a} b={on_b}");

    a.stop().await;
    let mut more = Vec::new();
    for _ in 0..30 {
        more.push(b.place(&valid_order()).await);
    }
    for id in &more {
        assert_eq!(b.wait_status(id, "COMPLETED").await["status"], "COMPLETED");
    }
    // Stop before the broker goes: librdkafka's consumer close can wait without bound for
    // a coordinator that is gone, and the test runtime waits for that blocking call.
    let mut b = b;
    b.stop().await;
}
