//! Test harness: a real Tansu broker per test (own port, own storage), the service started
//! on port 0 against it with its own topics, and a plain rdkafka reader to see what landed.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orderflow::app::Application;
use orderflow::config::Settings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

/// Which Tansu storage engine a test needs; see shared/BROKER.md for what each gets right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Fast; group APIs work; watermarks are wrong and nothing survives a restart.
    Memory,
    /// Correct watermarks and durable across broker restarts; group listing is broken.
    Sqlite,
}

/// A Tansu broker process owned by one test.
pub struct TestBroker {
    pub port: u16,
    engine: Engine,
    storage: tempfile::TempDir,
    child: Option<Child>,
}

pub fn tansu_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return path.into();
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let cached = home.join(".cargo/orderflow-tools/tansu-0.6.0/bin/tansu");
    assert!(
        cached.exists(),
        "tansu not found at {}; run scripts/install-tansu.sh or set TANSU_BIN",
        cached.display()
    );
    cached
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl TestBroker {
    pub async fn start(engine: Engine) -> TestBroker {
        let mut broker = TestBroker {
            port: free_port(),
            engine,
            storage: tempfile::tempdir().unwrap(),
            child: None,
        };
        broker.spawn().await;
        broker
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn storage_url(&self) -> String {
        match self.engine {
            Engine::Memory => "memory://tansu/".into(),
            Engine::Sqlite => format!("sqlite://{}/tansu.db", self.storage.path().display()),
        }
    }

    /// Starts (or restarts) the process on the same port and storage, and waits until it
    /// accepts connections.
    pub async fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::File::create(self.storage.path().join("broker.log")).unwrap();
        let mut command = Command::new(tansu_bin());
        command
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", &self.storage_url()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        kill_with_parent(&mut command);
        self.child = Some(command.spawn().expect("start tansu"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start on port {}", self.port);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the broker process, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Children die with the test process even when it panics or is killed.
pub fn kill_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Settings for a test: the shipped defaults, this broker, port 0, and topic names no other
/// test uses.
pub fn test_settings(broker: &TestBroker) -> Settings {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = Settings::load_from(&dir, None).expect("default config loads");
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    settings.kafka.bootstrap_servers = broker.bootstrap();
    settings.http.port = 0;
    settings.topics.orders.name = format!("{prefix}.orders");
    settings.topics.orders.partitions = 3;
    settings.topics.status.name = format!("{prefix}.orders.status");
    settings.topics.status.partitions = 3;
    settings.topics.dlq.name = format!("{prefix}.orders.dlq");
    settings.shutdown.grace_period_ms = 5000;
    settings
}

/// The service running in this test's runtime.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub shutdown: CancellationToken,
    pub handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn(settings: Settings) -> TestApp {
        let shutdown = CancellationToken::new();
        let app = Application::build(settings.clone(), shutdown.clone()).await.expect("app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = Some(tokio::spawn(app.run()));
        let test_app = TestApp { address, client: reqwest::Client::new(), settings, shutdown, handle };
        test_app.wait_ready().await;
        test_app
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let response = self.client.get(self.url("/health/ready")).send().await;
            if matches!(&response, Ok(r) if r.status() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "service not ready: {response:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request sent")
    }

    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn valid_order() -> serde_json::Value {
    serde_json::json!({
        "customer_id": "cust-42",
        "currency": "EUR",
        "items": [
            {"product_id": "sku-1", "quantity": 2, "unit_price": "19.99"},
            {"product_id": "sku-2", "quantity": 1, "unit_price": "0.10"}
        ],
        "metadata": {"channel": "web"}
    })
}

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: serde_json::Value,
    pub headers: Vec<(String, String)>,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Reads `topic` from the beginning of every partition without joining a group, until at
/// least `expected` records arrived and no more come for a moment (or 15 s pass).
pub async fn read_topic(bootstrap: &str, topic: &str, expected: usize) -> Vec<Record> {
    let bootstrap = bootstrap.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(5)).unwrap();
        let mut assignment = TopicPartitionList::new();
        for p in metadata.topics()[0].partitions() {
            assignment.add_partition_offset(&topic, p.id(), Offset::Beginning).unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut last_arrival = Instant::now();
        let mut records = Vec::new();
        while Instant::now() < deadline {
            let settled = last_arrival.elapsed() > Duration::from_millis(700);
            if records.len() >= expected && settled {
                break;
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    last_arrival = Instant::now();
                    let headers = m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                                    (h.key.to_string(), value.unwrap_or_default())
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let value = m
                        .payload()
                        .map(|p| serde_json::from_slice(p).unwrap_or_else(|_| String::from_utf8_lossy(p).into()))
                        .unwrap_or(serde_json::Value::Null);
                    records.push(Record {
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                        value,
                        headers,
                    });
                }
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
        records
    })
    .await
    .unwrap()
}
