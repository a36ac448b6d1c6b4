//! A real Tansu broker per test (own port, own storage, its own Kafka cluster id), and the
//! proxy in front of it that cuts or holds the network on demand. Shared with the load
//! benchmark (`benches/load.rs`), so it names nothing of the service.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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

/// Two consecutive ports free now (a range for local clusters): a port next to a free one
/// may be another test's broker.
pub fn free_port_pair() -> u16 {
    loop {
        let first = StdListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && StdListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
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

    /// The broker process's id while it runs (the load benchmark reads its CPU time).
    #[allow(dead_code)]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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
