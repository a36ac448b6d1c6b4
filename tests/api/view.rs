//! The status view on local disk: a restart resumes from the store's offsets, a deleted
//! store is rebuilt from the topics.

use std::collections::HashSet;

use serde_json::json;

use crate::helpers::*;

/// Places `count` orders in bulks; returns their ids.
async fn place_many(app: &TestApp, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        let n = (count - ids.len()).min(500);
        let body = json!({ "orders": vec![valid_order(); n] });
        let response = app.post_json("/api/orders/bulk", &body).await;
        assert_eq!(
            response.status(),
            202,
            "bulk answered {}",
            response.status()
        );
        let answer: serde_json::Value = response.json().await.unwrap();
        for result in answer["results"].as_array().unwrap() {
            assert_eq!(result["outcome"], "accepted", "{result}");
            ids.push(result["order_id"].as_str().unwrap().to_string());
        }
    }
    ids
}

async fn answered(app: &TestApp, ids: &[String]) -> HashSet<String> {
    let mut found = HashSet::new();
    for id in ids {
        let (status, view) = app.get_json(&format!("/api/orders/{id}")).await;
        if status == 200 {
            found.insert(view["order_id"].as_str().unwrap().to_string());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reads_only_what_arrived_while_down_and_a_deleted_store_is_rebuilt() {
    // sqlite: correct high watermarks, which the store's offsets are checked against (the
    // memory engine's are too low, so every restart there rebuilds; see BROKER.md).
    let broker = TestBroker::start(Engine::Sqlite).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    // 3,000 orders in quick bulks, more than the default burst: this test is about the
    // view, not the rate limit (whether they fit in it depends on how fast the bulks go).
    settings.auth.rate_limit.enabled = false;
    let mut app = TestApp::spawn(settings.clone()).await;
    let mut ids = place_many(&app, 3_000).await;
    // The view has read every record (not only written its own orders through).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while app.metric("orderflow_view_records_read_total", &[]).await < 3_000.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the view did not read the orders"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.stop().await;

    // While it is down, another instance takes a handful more.
    let mut other = TestApp::spawn(another_instance(&settings)).await;
    ids.extend(place_many(&other, 5).await);
    other.stop().await;

    let mut app = TestApp::spawn(settings.clone()).await;
    let read = app.metric("orderflow_view_records_read_total", &[]).await;
    assert!(
        (5.0..100.0).contains(&read),
        "a restart read {read} records; the handful written while it was down is 5"
    );
    assert_eq!(
        app.metric("orderflow_view_rebuilds_total", &[("reason", "missing")])
            .await,
        0.0
    );
    assert_eq!(answered(&app, &ids).await.len(), ids.len());
    app.stop().await;

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", settings.status_view.path));
    }
    let app = TestApp::spawn(settings.clone()).await;
    assert_eq!(
        app.metric("orderflow_view_rebuilds_total", &[("reason", "missing")])
            .await,
        1.0
    );
    let read = app.metric("orderflow_view_records_read_total", &[]).await;
    assert!(read >= ids.len() as f64, "a rebuild read {read} records");
    assert_eq!(answered(&app, &ids).await.len(), ids.len());
    let (_, ready) = app.get_json("/health/ready").await;
    assert_eq!(ready["orders_in_view"], ids.len());
}
