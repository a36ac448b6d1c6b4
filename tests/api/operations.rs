//! Tracked operations across clusters: replicate and migrate, run in the background on the
//! instance that took them, seen from any instance, cancelled on request.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

const SECONDS_10: Duration = Duration::from_secs(10);
const TENTH: Duration = Duration::from_millis(100);

#[tokio::test]
async fn replicate_creates_the_topic_structure_on_the_targets_as_a_tracked_operation() {
    let (home, _second, settings) = two_clusters().await;
    let app = TestApp::spawn(settings.clone()).await;
    let other = TestApp::spawn(another_instance(&settings)).await;
    let post = reqwest::Method::POST;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (wide, narrow, later) = (
        format!("rep-w-{run}"),
        format!("rep-n-{run}"),
        format!("rep-l-{run}"),
    );
    for (name, partitions) in [(&wide, 3), (&narrow, 1), (&later, 2)] {
        let (status, _) = send(
            &app,
            post.clone(),
            "/api/admin/topics",
            Some(json!({"name": name, "partitions": partitions, "configs": {"retention.ms": "3600000"}})),
        )
        .await;
        assert_eq!(status, 201);
    }

    let request = json!({"source_cluster_id": "default", "target_cluster_ids": ["second"], "topics": [wide, narrow]});
    let (location, accepted) = start_operation(&app, "replicate", &request).await;
    assert_eq!(accepted["operation_type"], "replicate");
    assert!(["pending", "running", "completed"].contains(&accepted["status"].as_str().unwrap()));
    let done = wait_finished(&app, &location).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress_percent"], 100.0);
    let results = done["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert!(
        results
            .iter()
            .all(|r| r["outcome"] == "created" && r["target"] == "second"),
        "{done}"
    );
    let (status, copied) = app
        .get_json(&format!("/api/clusters/second/topics/{wide}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(copied["partitions"].as_array().unwrap().len(), 3);
    // Only configs set on the topic are copied, never the broker's defaults. Tansu 0.6.0
    // reports a topic's overrides as defaults (Apache Kafka says DYNAMIC_TOPIC_CONFIG), so
    // here the expected set is whatever the source reports as set on the topic.
    let wide_result = results
        .iter()
        .find(|r| r["topic"] == wide.as_str())
        .unwrap();
    let (_, source) = app.get_json(&format!("/api/admin/topics/{wide}")).await;
    let set_on_topic: serde_json::Map<String, Value> = source["configs"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, c)| c["source"] == "topic" || c["is_default"] == false)
        .map(|(name, c)| (name.clone(), c["value"].clone()))
        .collect();
    assert_eq!(wide_result["configs"].as_object().unwrap(), &set_on_topic);
    for (name, value) in &set_on_topic {
        assert_eq!(
            &copied["configs"][name]["value"], value,
            "config {name} copied"
        );
    }

    // Any instance answers for it; a second run finds the topics there; a dry run changes nothing.
    poll_until(
        "the other instance never saw it",
        SECONDS_10,
        TENTH,
        || async {
            match other.get_json(&location).await {
                (200, seen) if seen["status"] == "completed" => Ok(()),
                (status, seen) => Err(format!("{status} {seen}")),
            }
        },
    )
    .await;
    let again = app
        .client
        .post(app.url("/api/operations/replicate"))
        .json(&request)
        .send()
        .await
        .unwrap();
    let again = wait_finished(&app, again.headers()["location"].to_str().unwrap()).await;
    assert!(
        again["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "exists"),
        "{again}"
    );
    let dry = json!({"source_cluster_id": "default", "target_cluster_ids": ["second"], "topics": [later], "dry_run": true});
    let dry = app
        .client
        .post(app.url("/api/operations/replicate"))
        .json(&dry)
        .send()
        .await
        .unwrap();
    let dry = wait_finished(&app, dry.headers()["location"].to_str().unwrap()).await;
    assert_eq!(dry["results"][0]["outcome"], "would_create");
    let (status, _) = app
        .get_json(&format!("/api/clusters/second/topics/{later}"))
        .await;
    assert_eq!(status, 404, "a dry run creates nothing");

    let (_, listed) = app.get_json("/api/operations").await;
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let (status, problem) = send(&app, reqwest::Method::DELETE, &location, None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("conflict")),
        "a finished operation"
    );
    let (status, _) = app
        .get_json(&format!("/api/operations/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(status, 404);
    let bad = json!({"source_cluster_id": "default", "target_cluster_ids": ["default"]});
    let (status, _) = send(&app, post.clone(), "/api/operations/replicate", Some(bad)).await;
    assert_eq!(status, 422, "the source is not a target");
    let unknown = json!({"source_cluster_id": "default", "target_cluster_ids": ["nowhere"]});
    let (status, problem) = send(
        &app,
        post.clone(),
        "/api/operations/replicate",
        Some(unknown),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("cluster_not_found"))
    );

    // An operation whose instance died mid-way shows as interrupted, not running for ever.
    let orphan = json!({
        "id": "orphan", "operation_type": "replicate", "source_cluster_id": "default",
        "target_cluster_ids": ["second"], "topics": [], "overwrite_configs": false, "dry_run": false,
        "status": "running", "progress_percent": 40.0, "results": [],
        "created_at": "2026-01-01T00:00:00Z", "started_at": "2026-01-01T00:00:00Z", "finished_at": null,
        "heartbeat_at": "2026-01-01T00:00:05Z", "cancel_requested": false
    });
    produce_raw(
        &home.bootstrap(),
        &settings.topics.operations.name,
        &[(Some("orphan"), orphan.to_string().as_bytes())],
    )
    .await;
    let seen = poll_until(
        "the orphan record was never read",
        SECONDS_10,
        TENTH,
        || async {
            match app.get_json("/api/operations/orphan").await {
                (200, seen) => Ok(seen),
                (status, seen) => Err(format!("{status} {seen}")),
            }
        },
    )
    .await;
    assert_eq!(seen["status"], "interrupted");
}

#[tokio::test]
async fn a_cancelled_operation_stops_and_says_so() {
    // The target's broker takes requests but its answers are held back, so the operation
    // is still at work when the cancel arrives.
    let (_home, target, settings) = slow_target().await;
    let app = TestApp::spawn(settings).await;
    target.hold_answers(true);
    let request = json!({"source_cluster_id": "default", "target_cluster_ids": ["slow"]});
    let (location, _) = start_operation(&app, "replicate", &request).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, cancelling) = send(&app, reqwest::Method::DELETE, &location, None).await;
    assert_eq!(status, 202, "{cancelling}");
    assert_eq!(cancelling["cancel_requested"], true);
    let started = Instant::now();
    let stopped = wait_finished(&app, &location).await;
    assert_eq!(stopped["status"], "cancelled", "{stopped}");
    assert!(stopped["progress_percent"].as_f64().unwrap() < 100.0);
    assert!(stopped["finished_at"].is_string());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the cancel did not wait for the target"
    );
    target.hold_answers(false);
}

#[tokio::test]
async fn migrate_copies_every_record_and_translates_group_offsets() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let (home, second, settings) = two_clusters().await;
    let app = TestApp::spawn(settings).await;
    let post = reqwest::Method::POST;
    let topic = format!("mig-{}", uuid::Uuid::new_v4().simple());
    for cluster_id in ["default", "second"] {
        let (status, _) = send(
            &app,
            post.clone(),
            &format!("/api/clusters/{cluster_id}/topics"),
            Some(json!({"name": topic, "partitions": 3})),
        )
        .await;
        assert_eq!(status, 201);
    }
    // One record per send, awaited: Tansu's memory watermarks are right for single-record
    // batches (see BROKER.md), and the copy stops at the watermarks it read at the start.
    let producer = |bootstrap: String| -> FutureProducer {
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("linger.ms", "0")
            .create()
            .unwrap()
    };
    let source = producer(home.bootstrap());
    let records = 3000;
    for i in 0..records {
        let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
            key: "origin",
            value: Some("home"),
        });
        let (key, value) = (format!("k{i}"), format!("{{\"n\":{i}}}"));
        source
            .send(
                FutureRecord::to(&topic)
                    .key(&key)
                    .payload(&value)
                    .partition(i % 3)
                    .timestamp(1_700_000_000_000 + i64::from(i))
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    // The target already holds 10 records in each partition, so offsets really move.
    let target = producer(second.bootstrap());
    for i in 0..30 {
        target
            .send(
                FutureRecord::to(&topic)
                    .key("old")
                    .payload("old")
                    .partition(i % 3),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let (status, _) = send(
        &app,
        post.clone(),
        "/api/admin/consumer-groups/mig-readers/offsets",
        Some(json!({"topic": topic, "to": "offset", "offset": 100})),
    )
    .await;
    assert_eq!(status, 200);

    let request = json!({"source_cluster_id": "default", "target_cluster_id": "second",
        "topics": [topic], "include_consumer_groups": true});
    let (location, _) = start_operation(&app, "migrate", &request).await;
    let done = wait_finished(&app, &location).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["records_total"], records);
    assert_eq!(done["records_copied"], records);
    assert_eq!(done["progress_percent"], 100.0);
    assert_eq!(done["results"][0]["outcome"], "copied");
    assert_eq!(done["groups"][0]["group"], "mig-readers");
    assert_eq!(done["groups"][0]["outcome"], "committed", "{done}");

    // Every record is on the target, read back by a plain consumer.
    let copied = read_topic(&second.bootstrap(), &topic, records as usize + 30).await;
    assert_eq!(copied.len(), records as usize + 30);
    let mut numbers: Vec<i64> = copied
        .iter()
        .filter(|r| r.key.as_deref() != Some("old"))
        .map(|r| r.value["n"].as_i64().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, (0..i64::from(records)).collect::<Vec<_>>());
    // Same partition, key, value, headers and timestamp.
    let (_, first) = app
        .get_json(&format!(
            "/api/clusters/second/topics/{topic}/messages?partition=1&offset=10&limit=1"
        ))
        .await;
    let first = &first["records"][0];
    assert_eq!(first["key"], "k1");
    assert_eq!(first["value"], json!({"n": 1}));
    assert_eq!(first["headers"]["origin"], "home");
    assert_eq!(first["timestamp_ms"], 1_700_000_000_001_i64);
    // The group resumes where it stopped: source offset 100 is target offset 110.
    let (_, group) = app
        .get_json("/api/clusters/second/consumer-groups/mig-readers")
        .await;
    let offsets: Vec<i64> = group["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["committed_offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, [110, 110, 110], "{group}");
}

#[tokio::test]
async fn a_cancelled_migrate_stops_and_says_how_far_it_got() {
    let (home, target, settings) = slow_target().await;
    let app = TestApp::spawn(settings).await;
    let topic = format!("mig-cancel-{}", uuid::Uuid::new_v4().simple());
    for cluster_id in ["default", "slow"] {
        let (status, _) = send(
            &app,
            reqwest::Method::POST,
            &format!("/api/clusters/{cluster_id}/topics"),
            Some(json!({"name": topic, "partitions": 3})),
        )
        .await;
        assert_eq!(status, 201);
    }
    // Enough records that the copy is still running when it is cancelled.
    let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", home.bootstrap())
        .set("linger.ms", "20")
        .create()
        .unwrap();
    let sends = (0..300_000).map(|i| {
        let key = format!("k{i}");
        let producer = producer.clone();
        let topic = topic.clone();
        async move {
            producer
                .send(
                    rdkafka::producer::FutureRecord::to(&topic)
                        .key(&key)
                        .payload("v"),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
        }
    });
    for sent in futures::future::join_all(sends).await {
        sent.unwrap();
    }

    let request =
        json!({"source_cluster_id": "default", "target_cluster_id": "slow", "topics": [topic]});
    let (location, _) = start_operation(&app, "migrate", &request).await;
    // Once some records are across, the target stops answering and the migrate is cancelled.
    poll_until(
        "nothing was copied",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let (_, operation) = app.get_json(&location).await;
            if operation["records_copied"].as_u64().unwrap_or(0) > 0 {
                return Ok(());
            }
            assert!(
                ["pending", "running"].contains(&operation["status"].as_str().unwrap()),
                "{operation}"
            );
            Err(operation.to_string())
        },
    )
    .await;
    target.hold_answers(true);
    let (status, _) = send(&app, reqwest::Method::DELETE, &location, None).await;
    assert_eq!(status, 202);
    let stopped = wait_finished(&app, &location).await;
    target.hold_answers(false);
    assert_eq!(stopped["status"], "cancelled", "{stopped}");
    let (copied, total) = (
        stopped["records_copied"].as_u64().unwrap(),
        stopped["records_total"].as_u64().unwrap(),
    );
    assert!(
        copied > 0 && copied < total,
        "how far it got: {copied} of {total}"
    );
    assert!(stopped["progress_percent"].as_f64().unwrap() < 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_time_window_is_replayed_into_another_topic_and_never_into_the_services_own() {
    // The source is on SQLite: Tansu's memory engine answers offsets for times with 0.
    let home = TestBroker::start(Engine::Memory).await;
    let source = TestBroker::start(Engine::Sqlite).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    settings.clusters.insert(
        "second".into(),
        cluster("Second", "testing", source.bootstrap()),
    );
    let app = TestApp::spawn(settings).await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (topic, replay) = (format!("orders-{run}"), format!("orders-replay-{run}"));
    write_records(&app, "/api/clusters/second", &source.bootstrap(), &topic, 3).await;

    // The failed orders of 16:00:05-16:00:15 into the home cluster's replay topic.
    let request = json!({
        "source_cluster_id": "second", "target_cluster_id": "default", "topics": [topic],
        "filter": r#"headers["event-type"] == "OrderFailed""#,
        "from_time": "2025-11-24T16:00:05Z", "until_time": "2025-11-24T16:00:15Z",
        "target_topic": replay,
    });
    let (location, accepted) = start_operation(&app, "migrate", &request).await;
    assert_eq!(accepted["target_topic"], replay.as_str());
    let done = wait_finished(&app, &location).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["records_total"], 11, "{done}");
    assert_eq!(done["records_read"], 11);
    assert_eq!(done["records_copied"], 3);
    assert_eq!(done["progress_percent"], 100.0);
    let copied = search(&app, &replay, &[("from", "beginning")]).await;
    assert_eq!(keys(&copied), keys_of([5, 10, 15]), "{copied}");
    assert_eq!(copied["records"][0]["value"], value(5));
    assert_eq!(copied["records"][0]["headers"]["event-type"], "OrderFailed");

    // Never into the service's own topics on the cluster it runs on, and never every topic.
    let orders = app.settings.topics.orders.name.clone();
    let forged = json!({"source_cluster_id": "second", "target_cluster_id": "default",
        "topics": [topic], "target_topic": orders});
    let (status, problem) = send(
        &app,
        reqwest::Method::POST,
        "/api/operations/migrate",
        Some(forged),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("topic_protected")),
        "{problem}"
    );
    let everything = json!({"source_cluster_id": "second", "target_cluster_id": "default"});
    let (status, problem) = send(
        &app,
        reqwest::Method::POST,
        "/api/operations/migrate",
        Some(everything),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "topics");
    // A slice's options are checked before anything runs.
    for (body, field) in [
        (json!({"filter": "value >"}), "filter"),
        (
            json!({"target_topic": replay, "topics": [topic, "other"]}),
            "target_topic",
        ),
        (
            json!({"filter": "true", "include_consumer_groups": true}),
            "include_consumer_groups",
        ),
        (
            json!({"from_time": "2025-11-24T16:00:15Z", "until_time": "2025-11-24T16:00:05Z"}),
            "from_time",
        ),
    ] {
        let mut request = json!({"source_cluster_id": "default", "target_cluster_id": "second", "topics": [topic]});
        for (k, v) in body.as_object().unwrap() {
            request[k] = v.clone();
        }
        let (status, problem) = send(
            &app,
            reqwest::Method::POST,
            "/api/operations/migrate",
            Some(request),
        )
        .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
}
