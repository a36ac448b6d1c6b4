//! Waiting for what happens in the background: "poll until", written once.

use std::future::Future;
use std::time::{Duration, Instant};

/// Asks `probe` every `every` until it answers `Ok`, for at most `within`; then fails the
/// test with `what` and the last thing `probe` saw (its `Err`).
pub async fn poll_until<T, F, Fut>(what: &str, within: Duration, every: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        let last = match probe().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        assert!(Instant::now() < deadline, "{what}: {last}");
        tokio::time::sleep(every).await;
    }
}

/// Waits until the service at `base` answers ready.
pub async fn wait_ready(client: &reqwest::Client, base: &str, within: Duration) {
    poll_until(
        "service not ready",
        within,
        Duration::from_millis(100),
        || async {
            match client.get(format!("{base}/health/ready")).send().await {
                Ok(r) if r.status() == 200 => Ok(()),
                Ok(r) => Err(format!(
                    "{} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                )),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await
}

/// Waits until the order reaches `status` (or another final one), and answers its view.
pub async fn wait_status(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    status: &str,
) -> serde_json::Value {
    let what = format!("order {id} never reached {status}");
    poll_until(
        &what,
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let url = format!("{base}/api/orders/{id}?wait_for={status}&timeout=2s");
            let response = client.get(url).send().await.expect("request sent");
            let code = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let current = body["status"].as_str().unwrap_or_default();
            let is_final = ["COMPLETED", "FAILED", "CANCELLED"].contains(&current);
            if code == 200 && (current == status || is_final) {
                Ok(body)
            } else {
                Err(format!("{code} {body}"))
            }
        },
    )
    .await
}
