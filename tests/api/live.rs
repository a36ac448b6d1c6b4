//! Live status over Server-Sent Events: `GET /api/orders/{id}/events`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

/// One parsed event: (id, event, data).
type SseEvent = (String, String, Value);

/// Reads events until the stream ends (or `limit` passes, which fails the test).
async fn read_to_end(mut response: reqwest::Response, limit: Duration) -> Vec<SseEvent> {
    let deadline = Instant::now() + limit;
    let mut text = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) => break,
            Ok(Err(error)) => panic!("stream broke: {error}"),
            Err(_) => panic!("the stream did not end within {limit:?}; got {text:?}"),
        }
    }
    parse(&text)
}

fn parse(text: &str) -> Vec<SseEvent> {
    text.split("\n\n")
        .filter_map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .map(str::to_string)
            };
            let data = field("data")?;
            Some((
                field("id").unwrap_or_default(),
                field("event").unwrap_or_default(),
                serde_json::from_str(&data).expect("data is JSON"),
            ))
        })
        .collect()
}

async fn open(app: &TestApp, id: &str, last: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(app.url(&format!("/api/orders/{id}/events")));
    if let Some(last) = last {
        request = request.header("last-event-id", last);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_followed_from_post_to_completed_and_resumed_after_an_event() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;
    let id = app.place(&valid_order()).await;

    let response = open(&app, &id, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = read_to_end(response, Duration::from_secs(20)).await;
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|(id, event, _)| (id.as_str(), event.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [("1", "PENDING"), ("2", "PROCESSING"), ("3", "COMPLETED")]
    );
    let order = valid_order();
    for (_, event, data) in &events {
        assert_eq!(data["order_id"], id.as_str());
        assert_eq!(data["status"], event.as_str());
        assert_eq!(data["customer_id"], order["customer_id"]);
        assert_eq!(data["currency"], order["currency"]);
        assert!(
            data["total"].as_str().is_some() && data["at"].as_str().is_some(),
            "{data}"
        );
    }

    // A client that saw event 2 gets only what came after it.
    let events = read_to_end(open(&app, &id, Some("2")).await, Duration::from_secs(5)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].0.as_str(), events[0].1.as_str()),
        ("3", "COMPLETED")
    );

    let response = open(&app, &uuid::Uuid::new_v4().to_string(), None).await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        app.metric("orderflow_live_events_total", &[]).await,
        4.0,
        "three events, then one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_bounded_and_end_at_shutdown() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    // Intake only: the order stays PENDING, so its stream stays open.
    settings.processing.consumers = 0;
    settings.status_view.max_live_streams = 1;
    settings.status_view.live_keep_alive = Duration::from_secs(1);
    let mut app = TestApp::spawn(settings).await;
    let id = app.place(&valid_order()).await;

    let mut first = open(&app, &id, None).await;
    assert_eq!(first.status(), 200);
    let head = tokio::time::timeout(Duration::from_secs(5), first.chunk())
        .await
        .expect("the current status comes at once")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&head).contains("event: PENDING"));
    // Idle: keep-alive comments, no events.
    let idle = tokio::time::timeout(Duration::from_secs(5), first.chunk())
        .await
        .expect("a keep-alive within its interval")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&idle).starts_with(':'), "{idle:?}");
    assert_eq!(app.metric("orderflow_live_streams_open", &[]).await, 1.0);

    let refused = open(&app, &id, None).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "overloaded");
    assert_eq!(
        app.metric("orderflow_live_streams_refused_total", &[])
            .await,
        1.0
    );

    // Shutdown ends the open stream well inside the grace period.
    let stopping = Instant::now();
    let ended = tokio::spawn(async move {
        loop {
            match first.chunk().await {
                Ok(Some(_)) => continue,
                _ => return Instant::now(),
            }
        }
    });
    app.stop().await;
    let ended_at = tokio::time::timeout(Duration::from_secs(10), ended)
        .await
        .expect("the stream ended")
        .unwrap();
    assert!(ended_at - stopping < Duration::from_secs(5));
}

/// Reads events from a stream that does not end until `count` have come.
async fn read_events(response: &mut reqwest::Response, count: usize) -> Vec<SseEvent> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    loop {
        let events = parse(&text);
        if events.len() >= count {
            return events;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("{count} events did not come: {other:?}; got {text:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_shows_only_its_customer_and_replays_after_last_event_id() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;
    let client = reqwest::Client::new();
    let feed = |query: &str, last: Option<&str>| {
        let mut request = client.get(app.url(&format!("/api/orders/events?{query}")));
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        request.send()
    };
    let mut mine = feed("customer_id=feed-a", None).await.unwrap();
    assert_eq!(mine.status(), 200);

    let mut other = valid_order();
    other["customer_id"] = "feed-b".into();
    let other_id = app.place(&other).await;
    let mut order = valid_order();
    order["customer_id"] = "feed-a".into();
    let id = app.place(&order).await;
    app.wait_status(&other_id, "COMPLETED").await;
    app.wait_status(&id, "COMPLETED").await;

    // feed-b's changes came first; none of them is on this feed.
    let events = read_events(&mut mine, 3).await;
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|(_, event, data)| (data["order_id"].as_str().unwrap(), event.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (id.as_str(), "PENDING"),
            (id.as_str(), "PROCESSING"),
            (id.as_str(), "COMPLETED")
        ]
    );
    assert!(events.iter().all(|(_, _, d)| d["customer_id"] == "feed-a"));

    // A reconnect from before the first of them gets the same three again, from the replay.
    let first: u64 = events[0].0.parse().unwrap();
    let mut again = feed("customer_id=feed-a", Some(&(first - 1).to_string()))
        .await
        .unwrap();
    let replayed = read_events(&mut again, 3).await;
    let ids = |e: &[SseEvent]| e.iter().map(|(id, _, _)| id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&replayed), ids(&events));

    // By status: only the final ones.
    let mut completed = feed("status=COMPLETED", Some("0")).await.unwrap();
    let finals = read_events(&mut completed, 2).await;
    assert!(
        finals.iter().all(|(_, event, _)| event == "COMPLETED"),
        "{finals:?}"
    );
    let response = feed("status=DONE", None).await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_on_a_second_instance_follow_an_order_accepted_by_the_first() {
    let broker = TestBroker::start(Engine::Memory).await;
    let settings = test_settings(&broker);
    let first = TestApp::spawn(settings.clone()).await;
    let mut reader = another_instance(&settings);
    reader.processing.consumers = 0;
    let second = TestApp::spawn(reader).await;

    let mut feed = reqwest::Client::new()
        .get(second.url("/api/orders/events?customer_id=elsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let mut order = valid_order();
    order["customer_id"] = "elsewhere".into();
    let id = first.place(&order).await;

    // The per-order stream on the second instance, opened before the order reached its view
    // or after: either way it ends with the final status.
    let stream = open(&second, &id, None).await;
    let (status, events) = (
        stream.status(),
        read_to_end(stream, Duration::from_secs(20)).await,
    );
    assert_eq!(status, 200);
    let names: Vec<&str> = events.iter().map(|(_, e, _)| e.as_str()).collect();
    assert_eq!(names, ["PENDING", "PROCESSING", "COMPLETED"]);

    let changes = read_events(&mut feed, 3).await;
    assert!(changes.iter().all(|(_, _, d)| d["order_id"] == id.as_str()));
    assert_eq!(changes[2].1, "COMPLETED");
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON text message (pings and pongs skipped).
async fn next_json(socket: &mut Socket) -> Value {
    use futures::StreamExt;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn send_json(socket: &mut Socket, body: Value) {
    use futures::SinkExt;
    let message = tokio_tungstenite::tungstenite::Message::Text(body.to_string().into());
    socket.send(message).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_follows_orders_and_a_customer_and_closes_at_shutdown() {
    use futures::StreamExt;
    use serde_json::json;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let broker = TestBroker::start(Engine::Memory).await;
    let mut app = TestApp::spawn(test_settings(&broker)).await;
    let earlier = app.place(&valid_order()).await;
    app.wait_status(&earlier, "COMPLETED").await;
    let url = app.url("/api/orders/ws").replace("http://", "ws://");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    // A finished order: its history, then the end.
    send_json(&mut socket, json!({"subscribe": {"order_ids": [earlier]}})).await;
    let mut received = vec![next_json(&mut socket).await];
    while received.last().unwrap()["type"] != "end" {
        received.push(next_json(&mut socket).await);
    }
    let events: Vec<&str> = received
        .iter()
        .filter(|m| m["type"] == "event")
        .map(|m| m["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["PENDING", "PROCESSING", "COMPLETED"]);
    assert!(
        received
            .iter()
            .all(|m| m["subscription"] == format!("order:{earlier}"))
    );
    assert_eq!(received[2]["data"]["order_id"], earlier.as_str());

    // A customer from now on: another customer's order is not sent.
    send_json(&mut socket, json!({"subscribe": {"customer_id": "ws-a"}})).await;
    // The subscription is taken before the next message is read; a round trip proves it.
    send_json(&mut socket, json!({"subscribe": 1})).await;
    assert_eq!(next_json(&mut socket).await["type"], "error");
    let mut other = valid_order();
    other["customer_id"] = "ws-b".into();
    app.place(&other).await;
    let mut order = valid_order();
    order["customer_id"] = "ws-a".into();
    let id = app.place(&order).await;
    let mut feed = Vec::new();
    while feed.len() < 3 {
        feed.push(next_json(&mut socket).await);
    }
    assert!(
        feed.iter()
            .all(|m| m["subscription"] == "customer:ws-a" && m["data"]["order_id"] == id.as_str()),
        "{feed:?}"
    );
    assert_eq!(feed[2]["event"], "COMPLETED");
    assert_eq!(app.metric("orderflow_live_streams_open", &[]).await, 1.0);

    // Shutdown closes it with "going away".
    app.stop().await;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(close.unwrap().code, CloseCode::Away);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_outlast_a_cut_to_kafka_and_carry_the_next_order_after_it() {
    // Behind a proxy: the network to the broker is cut and restored, the broker keeping its
    // topics (a restarted memory engine would lose them, a different fault).
    let mut broker = TestBroker::start_behind_proxy(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.http.request_timeout = Duration::from_millis(3000);
    settings.producer.delivery_timeout = Duration::from_millis(2000);
    settings.status_view.live_keep_alive = Duration::from_millis(500);
    let app = TestApp::spawn(settings).await;
    let url = app.url("/api/orders/ws").replace("http://", "ws://");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    send_json(
        &mut socket,
        serde_json::json!({"subscribe": {"customer_id": "cut-a"}}),
    )
    .await;
    let mut feed = reqwest::Client::new()
        .get(app.url("/api/orders/events?customer_id=cut-a"))
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let mut order = valid_order();
    order["customer_id"] = "cut-a".into();
    let before = app.place(&order).await;
    app.wait_status(&before, "COMPLETED").await;

    broker.cut_network();
    let cut = Instant::now();
    // While Kafka is away: intake answers 503, and both streams stay open and alive (the
    // feed sends keep-alives, the socket still answers).
    let refused = app.post_json("/api/orders", &order).await;
    assert_eq!(refused.status(), 503);
    while cut.elapsed() < Duration::from_secs(3) {
        let chunk = tokio::time::timeout(Duration::from_secs(2), feed.chunk()).await;
        assert!(
            matches!(chunk, Ok(Ok(Some(_)))),
            "the feed went quiet or ended during the cut: {chunk:?}"
        );
    }
    send_json(&mut socket, serde_json::json!({"subscribe": 1})).await;
    let mut answer = next_json(&mut socket).await;
    while answer["type"] == "event" {
        answer = next_json(&mut socket).await;
    }
    assert_eq!(answer["type"], "error", "{answer}");

    broker.restore_network().await;
    let deadline = Instant::now() + Duration::from_secs(45);
    let after = loop {
        let response = app.post_json("/api/orders", &order).await;
        if response.status() == 202 {
            let body: Value = response.json().await.unwrap();
            break body["order_id"].as_str().unwrap().to_string();
        }
        assert_eq!(response.status(), 503);
        assert!(Instant::now() < deadline, "intake never came back");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    app.wait_status(&after, "COMPLETED").await;

    // The same socket and the same feed carry the new order to its end.
    let mut on_socket = Vec::new();
    while on_socket.last().map(String::as_str) != Some("COMPLETED") {
        let message = next_json(&mut socket).await;
        if message["type"] == "event" && message["data"]["order_id"] == after.as_str() {
            on_socket.push(message["event"].as_str().unwrap().to_string());
        }
        assert!(Instant::now() < deadline + Duration::from_secs(20));
    }
    assert_eq!(on_socket, ["PENDING", "PROCESSING", "COMPLETED"]);
    let mut text = String::new();
    loop {
        let events: Vec<SseEvent> = parse(&text)
            .into_iter()
            .filter(|(_, _, data)| data["order_id"] == after.as_str())
            .collect();
        if events.iter().any(|(_, event, _)| event == "COMPLETED") {
            let names: Vec<&str> = events.iter().map(|(_, e, _)| e.as_str()).collect();
            assert_eq!(names, ["PENDING", "PROCESSING", "COMPLETED"]);
            break;
        }
        match tokio::time::timeout(Duration::from_secs(20), feed.chunk()).await {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("the feed ended before the new order completed: {other:?}"),
        }
    }
}
