//! Test harness: a real Tansu broker per test (own port, own storage), the service started
//! on port 0 against it with its own topics, and a plain rdkafka reader to see what landed.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Clients reach the broker through this proxy when it is set, so a test can cut the
    /// network without restarting the broker.
    proxy: Option<Proxy>,
    /// The Kafka cluster id it reports, its own (and the same across its restarts).
    pub cluster_id: String,
}

/// A TCP proxy in front of the broker; the broker advertises the proxy's port.
struct Proxy {
    port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
    /// While set, requests still reach the broker but its answers are held back: a write
    /// is stored and its acknowledgement never arrives in time.
    hold_answers: Arc<AtomicBool>,
    /// When set, clients speak TLS to the proxy, which speaks plain TCP to the broker (Tansu
    /// 0.6.0's own `--cert`/`--key` cannot be given together).
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Proxy {
    fn new(port: u16) -> Proxy {
        Proxy {
            port,
            task: None,
            hold_answers: Arc::new(AtomicBool::new(false)),
            tls: None,
        }
    }

    async fn open(&mut self, target: u16) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let hold = self.hold_answers.clone();
        let tls = self.tls.clone();
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                let hold = hold.clone();
                if let Some(tls) = tls.clone() {
                    connections.spawn(async move {
                        let (Ok(mut inbound), Ok(mut outbound)) = (
                            tls.accept(inbound).await,
                            tokio::net::TcpStream::connect(("127.0.0.1", target)).await,
                        ) else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    });
                    continue;
                }
                connections.spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    let (mut client_read, mut client_write) = inbound.into_split();
                    let (mut broker_read, mut broker_write) = outbound.into_split();
                    let requests = tokio::io::copy(&mut client_read, &mut broker_write);
                    let answers = async {
                        let mut buffer = vec![0u8; 64 * 1024];
                        loop {
                            let n = broker_read.read(&mut buffer).await?;
                            if n == 0 {
                                return Ok::<(), std::io::Error>(());
                            }
                            // An answer read while holding waits here until released.
                            while hold.load(Ordering::Acquire) {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            client_write.write_all(&buffer[..n]).await?;
                        }
                    };
                    tokio::select! {
                        _ = requests => {}
                        _ = answers => {}
                    }
                });
            }
        }));
    }

    /// Closes the listener and every connection through it.
    fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub fn tansu_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return path.into();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cached = home.join(".cargo/orderflow-tools/tansu-0.6.0/bin/tansu");
    assert!(
        cached.exists(),
        "tansu not found at {}; run scripts/install-tansu.sh or set TANSU_BIN",
        cached.display()
    );
    cached
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestBroker {
    fn new(port: u16, engine: Engine, storage: tempfile::TempDir, proxy: Option<Proxy>) -> Self {
        TestBroker {
            port,
            engine,
            storage,
            child: None,
            proxy,
            cluster_id: format!("test-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    pub async fn start(engine: Engine) -> TestBroker {
        let mut broker = TestBroker::new(free_port(), engine, tempfile::tempdir().unwrap(), None);
        broker.spawn().await;
        broker
    }

    /// A broker that clients reach only through a proxy the test can cut and restore.
    pub async fn start_behind_proxy(engine: Engine) -> TestBroker {
        let mut proxy = Proxy::new(free_port());
        let port = free_port();
        proxy.open(port).await;
        let mut broker = TestBroker::new(port, engine, tempfile::tempdir().unwrap(), Some(proxy));
        broker.spawn().await;
        broker
    }

    /// A broker that clients reach only over TLS, through a TLS-terminating proxy with a
    /// fresh self-signed certificate for 127.0.0.1; returns the broker and the PEM file of
    /// that certificate (the CA clients must trust).
    pub async fn start_behind_tls_proxy(engine: Engine) -> (TestBroker, PathBuf) {
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
            .expect("a self-signed certificate");
        let storage = tempfile::tempdir().unwrap();
        let ca = storage.path().join("ca.pem");
        std::fs::write(&ca, certified.cert.pem()).unwrap();
        let key = tokio_rustls::rustls::pki_types::PrivateKeyDer::try_from(
            certified.key_pair.serialize_der(),
        )
        .unwrap();
        let config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap();
        let mut proxy = Proxy::new(free_port());
        proxy.tls = Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)));
        let port = free_port();
        proxy.open(port).await;
        let mut broker = TestBroker::new(port, engine, storage, Some(proxy));
        broker.spawn().await;
        (broker, ca)
    }

    /// Makes the broker unreachable, as a network partition would.
    pub fn cut_network(&mut self) {
        self.proxy.as_mut().expect("started behind a proxy").cut();
    }

    /// Holds back (or, with `false`, releases) every answer of the broker, requests still
    /// reaching it.
    pub fn hold_answers(&self, hold: bool) {
        let proxy = self.proxy.as_ref().expect("started behind a proxy");
        proxy.hold_answers.store(hold, Ordering::Release);
    }

    /// Makes the broker reachable again.
    pub async fn restore_network(&mut self) {
        let port = self.port;
        self.proxy
            .as_mut()
            .expect("started behind a proxy")
            .open(port)
            .await;
    }

    fn advertised_port(&self) -> u16 {
        self.proxy.as_ref().map_or(self.port, |p| p.port)
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.advertised_port())
    }

    fn storage_url(&self) -> String {
        match self.engine {
            Engine::Memory => "memory://tansu/".into(),
            // Tansu resolves the path against its working directory, set to the storage dir.
            Engine::Sqlite => "sqlite://tansu.db".into(),
        }
    }

    /// Starts (or restarts) the process on the same port and storage, and waits until it
    /// accepts connections.
    pub async fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised_port());
        // Broker logs outlive the test's temporary storage, for post-mortems.
        let logs = log_dir();
        let log_path = logs.join(format!("{}.log", self.port));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap();
        let mut command = Command::new(tansu_bin());
        command
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(["--storage-engine", &self.storage_url()])
            // Every real cluster has an id of its own; Tansu's default is the same for all.
            .args(["--kafka-cluster-id", &self.cluster_id])
            .env("RUST_LOG", "warn")
            .current_dir(self.storage.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        kill_with_parent(&mut command);
        self.child = Some(command.spawn().expect("start tansu"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not start on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the broker process (memory storage loses everything; `spawn` starts it again).
    pub fn stop(&mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.kill();
        if let Some(proxy) = &mut self.proxy {
            proxy.cut();
        }
    }
}

/// Where process logs of tests go (under target/tmp); they outlive the test for
/// post-mortems.
pub fn log_dir() -> PathBuf {
    let logs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-logs");
    std::fs::create_dir_all(&logs).unwrap();
    logs
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

/// A status view file no other instance uses (under cargo's temporary folder for tests).
pub fn fresh_view_path() -> String {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("views")
        .join(format!("{}.db", uuid::Uuid::new_v4().simple()))
        .display()
        .to_string()
}

/// The same settings for a second instance running beside the first (its own view file).
pub fn another_instance(settings: &Settings) -> Settings {
    let mut settings = settings.clone();
    settings.status_view.path = fresh_view_path();
    settings
}

/// Settings for a test: the shipped defaults, this broker, port 0, and topic names no other
/// test uses.
pub fn test_settings(broker: &TestBroker) -> Settings {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = Settings::load_from(&dir, None).expect("default config loads");
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    settings.kafka.bootstrap_servers = broker.bootstrap();
    settings.http.port = 0;
    settings.status_view.path = fresh_view_path();
    settings.topics.orders.name = format!("{prefix}.orders");
    settings.topics.orders.partitions = 3;
    settings.topics.status.name = format!("{prefix}.orders.status");
    settings.topics.status.partitions = 3;
    settings.topics.dlq.name = format!("{prefix}.orders.dlq");
    settings.topics.audit.name = format!("{prefix}.audit");
    settings.topics.clusters.name = format!("{prefix}.clusters");
    settings.topics.operations.name = format!("{prefix}.operations");
    settings.topics.templates.name = format!("{prefix}.templates");
    settings.shutdown.grace_period = Duration::from_millis(5000);
    settings.processing.group_id = format!("{prefix}-processors");
    settings.processing.session_timeout = Duration::from_millis(6000);
    settings.processing.commit_interval = Duration::from_millis(200);
    settings.processing.retry_backoff = Duration::from_millis(20);
    settings.processing.rules.max_order_total = "1000".into();
    settings.processing.rules.max_quantity_per_line = 10;
    settings.processing.rules.blocked_customers = vec!["blocked-customer".into()];
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
    /// Starts the service and waits until it is ready.
    pub async fn spawn(settings: Settings) -> TestApp {
        let app = TestApp::start(settings).await;
        app.wait_ready().await;
        app
    }

    /// Starts the service without waiting for readiness.
    pub async fn start(settings: Settings) -> TestApp {
        // TEST_LOG=1 shows the service's logs (with RUST_LOG as the filter).
        if std::env::var_os("TEST_LOG").is_some() {
            orderflow::telemetry::init(&settings.telemetry);
        }
        let shutdown = CancellationToken::new();
        // A restarted instance waits for the one before it (same view file) to let go.
        let deadline = Instant::now() + Duration::from_secs(15);
        let app = loop {
            match Application::build(settings.clone(), shutdown.clone()).await {
                Ok(app) => break app,
                Err(error)
                    if format!("{error:#}").contains("in use by another process")
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(error) => panic!("app builds: {error:#}"),
            }
        };
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = Some(tokio::spawn(app.run()));
        TestApp {
            address,
            client: reqwest::Client::new(),
            settings,
            shutdown,
            handle,
        }
    }

    pub async fn wait_ready(&self) {
        // Generous: under the full suite on two cores a group's first rebalance has taken
        // over 30 s.
        let deadline = Instant::now() + Duration::from_secs(60);
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
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Posts an order and returns its id, asserting 202.
    pub async fn place(&self, order: &serde_json::Value) -> String {
        let response = self.post_json("/api/orders", order).await;
        assert_eq!(response.status(), 202);
        let body: serde_json::Value = response.json().await.unwrap();
        body["order_id"].as_str().unwrap().to_string()
    }

    /// Long-polls until the order has `status` (or another final one), for up to 30 s.
    pub async fn wait_status(&self, id: &str, status: &str) -> serde_json::Value {
        wait_status(&self.client, &self.address, id, status).await
    }

    /// The whole /metrics exposition.
    pub async fn metrics_text(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        response.text().await.unwrap()
    }

    /// /metrics parsed by a Prometheus exposition parser.
    pub async fn scrape(&self) -> Scrape {
        Scrape::parse(&self.metrics_text().await)
    }

    /// One sample's value: `name` with exactly these labels among its own (others ignored,
    /// matching samples summed); 0 when absent.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.scrape().await.value(name, labels)
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

/// The order the API documentation shows as its example (so the tests prove the example is
/// valid), without its fixed `order_id`: each use is a new order.
pub fn valid_order() -> serde_json::Value {
    let mut order = orderflow::orders::examples::order_request();
    order.as_object_mut().expect("an object").remove("order_id");
    order
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
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
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
        let metadata = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(5))
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        for p in metadata.topics()[0].partitions() {
            assignment
                .add_partition_offset(&topic, p.id(), Offset::Beginning)
                .unwrap();
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
                                    let value =
                                        h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                                    (h.key.to_string(), value.unwrap_or_default())
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let value = m
                        .payload()
                        .map(|p| {
                            serde_json::from_slice(p)
                                .unwrap_or_else(|_| String::from_utf8_lossy(p).into())
                        })
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

pub async fn wait_status(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    status: &str,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = format!("{base}/api/orders/{id}?wait_for={status}&timeout=2s");
        let response = client.get(url).send().await.expect("request sent");
        let code = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let current = body["status"].as_str().unwrap_or_default().to_string();
        let is_final = ["COMPLETED", "FAILED", "CANCELLED"].contains(&current.as_str());
        if code == 200 && (current == status || is_final) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "order {id} never reached {status}: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes raw records to a topic with a plain rdkafka producer.
pub async fn produce_raw(bootstrap: &str, topic: &str, records: &[(Option<&str>, &[u8])]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (key, payload) in records {
        let mut record = FutureRecord::<str, [u8]>::to(topic).payload(*payload);
        if let Some(key) = key {
            record = record.key(*key);
        }
        producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

/// A parsed /metrics exposition.
pub struct Scrape(prometheus_parse::Scrape);

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        Scrape(prometheus_parse::Scrape::parse(lines).expect("valid exposition"))
    }

    /// The sum of the samples named `name` whose labels include `labels`. Histograms count
    /// their observations (the `+Inf` bucket).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        use prometheus_parse::Value;
        self.samples(name, labels)
            .map(|s| match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                Value::Histogram(buckets) => buckets
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .map_or(0.0, |b| b.count),
                Value::Summary(_) => panic!("{name} is a summary"),
            })
            .sum()
    }

    pub fn samples<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a prometheus_parse::Sample> + 'a {
        self.0.samples.iter().filter(move |s| {
            s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
    }

    pub fn all(&self) -> &[prometheus_parse::Sample] {
        &self.0.samples
    }

    /// The HELP text of a family.
    pub fn help(&self, family: &str) -> Option<&str> {
        self.0.docs.get(family).map(String::as_str)
    }
}

/// A fresh key and its entry.
pub fn key(
    name: &str,
    scopes: &[orderflow::http::auth::Scope],
) -> (String, orderflow::http::auth::keys::KeyEntry) {
    let key = orderflow::http::auth::keys::generate().unwrap();
    let entry = orderflow::http::auth::keys::KeyEntry {
        name: name.into(),
        sha256: orderflow::http::auth::keys::hex(&orderflow::http::auth::keys::digest(&key)),
        scopes: scopes.to_vec(),
        rate_per_second: None,
        burst: None,
        clusters: vec![],
    };
    (key, entry)
}

pub fn bearer(key: &str) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "authorization",
        reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
    );
    headers
}

pub fn keys_mode(settings: &mut Settings, entries: Vec<orderflow::http::auth::keys::KeyEntry>) {
    settings.auth.mode = orderflow::http::auth::AuthMode::Keys;
    settings.auth.keys = entries;
}

/// A cluster definition whose brokers never answer (a free port nobody listens on).
pub fn unreachable_cluster() -> orderflow::clusters::ClusterSettings {
    orderflow::clusters::ClusterSettings {
        name: "Dark".into(),
        description: String::new(),
        environment: "testing".into(),
        tags: vec![],
        bootstrap_servers: format!("127.0.0.1:{}", free_port()),
        librdkafka: Default::default(),
        template_id: None,
        local: None,
    }
}
