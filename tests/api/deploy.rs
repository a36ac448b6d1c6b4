//! The deployment files, checked against the service itself: Docker cannot run here, so the
//! compose file, the Dockerfile, the Prometheus configuration and the Grafana provisioning
//! are parsed and checked for consistency with the service's config and metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_norway::Value as Yaml;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn yaml(path: &str) -> Yaml {
    let text = std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text<'a>(value: &'a Yaml, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

/// A service's `environment` as a map (compose allows a map or a list of `K=V`).
fn environment(service: &Yaml) -> BTreeMap<String, String> {
    match &service["environment"] {
        Yaml::Mapping(map) => map
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Yaml::String(s) => s.clone(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    other => panic!("unexpected env value {other:?}"),
                };
                (text(k, "env key").to_string(), value)
            })
            .collect(),
        Yaml::Sequence(list) => list
            .iter()
            .map(|e| {
                let (k, v) = text(e, "env entry").split_once('=').expect("K=V");
                (k.to_string(), v.to_string())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// `host:container` port mappings of a service.
fn ports(service: &Yaml) -> Vec<(u16, u16)> {
    service["ports"]
        .as_sequence()
        .map(|list| {
            list.iter()
                .map(|p| {
                    let (host, container) =
                        text(p, "port").split_once(':').expect("host:container");
                    (host.parse().unwrap(), container.parse().unwrap())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `./host/path:/container/path[:ro]` bind mounts of a service.
fn bind_mounts(service: &Yaml) -> Vec<(String, String)> {
    service["volumes"]
        .as_sequence()
        .map(|list| {
            list.iter()
                .filter_map(|v| {
                    let v = text(v, "volume");
                    let mut parts = v.split(':');
                    let (host, container) = (parts.next()?, parts.next()?);
                    host.starts_with("./").then(|| {
                        (
                            host.trim_start_matches("./").to_string(),
                            container.to_string(),
                        )
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn healthcheck(service: &Yaml) -> String {
    let test = &service["healthcheck"]["test"];
    let joined = match test {
        Yaml::Sequence(parts) => parts
            .iter()
            .map(|p| text(p, "healthcheck"))
            .collect::<Vec<_>>()
            .join(" "),
        other => text(other, "healthcheck").to_string(),
    };
    assert!(!joined.is_empty(), "no health check");
    joined
}

/// Listener names and ports of a Kafka `NAME://host:port,...` list.
fn listeners(list: &str) -> BTreeMap<String, String> {
    list.split(',')
        .map(|l| {
            let (name, address) = l.split_once("://").expect("NAME://host:port");
            (name.to_string(), address.to_string())
        })
        .collect()
}

#[test]
fn compose_runs_kafka_in_kraft_mode_with_consistent_listeners() {
    let compose = yaml("docker-compose.yml");
    let kafka = &compose["services"]["kafka"];
    assert!(text(&kafka["image"], "image").starts_with("apache/kafka:"));
    let env = environment(kafka);
    let roles: BTreeSet<&str> = env["KAFKA_PROCESS_ROLES"].split(',').collect();
    assert_eq!(roles, BTreeSet::from(["broker", "controller"]));
    let node_id = &env["KAFKA_NODE_ID"];
    let listeners_of = listeners(&env["KAFKA_LISTENERS"]);
    let advertised = listeners(&env["KAFKA_ADVERTISED_LISTENERS"]);
    let protocols: BTreeMap<&str, &str> = env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
        .split(',')
        .map(|p| p.split_once(':').unwrap())
        .collect();
    let controller = &env["KAFKA_CONTROLLER_LISTENER_NAMES"];
    // The voter is this node at the controller listener's port.
    let controller_port = listeners_of[controller].rsplit(':').next().unwrap();
    assert_eq!(
        env["KAFKA_CONTROLLER_QUORUM_VOTERS"],
        format!("{node_id}@kafka:{controller_port}")
    );
    for name in listeners_of.keys() {
        assert!(
            protocols.contains_key(name.as_str()),
            "{name} has no security protocol"
        );
    }
    assert!(
        !advertised.contains_key(controller),
        "the controller listener is not advertised"
    );
    for name in advertised.keys() {
        assert!(
            listeners_of.contains_key(name),
            "advertised {name} is not a listener"
        );
    }
    assert!(listeners_of.contains_key(&env["KAFKA_INTER_BROKER_LISTENER_NAME"]));
    // One broker: internal topics must not ask for more replicas.
    assert_eq!(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"], "1");
    assert_eq!(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"], "1");
    // The host listener is published on the same port it advertises.
    let host_port: u16 = advertised["HOST"]
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ports(kafka).contains(&(host_port, host_port)));
    assert!(healthcheck(kafka).contains("kafka-broker-api-versions.sh"));
}

#[test]
fn compose_puts_a_read_only_kafka_ui_beside_the_service_on_the_same_kafka() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    let ui = &services["kafka-ui"];
    assert!(text(&ui["image"], "image").starts_with("ghcr.io/kafbat/kafka-ui:v"));
    let env = environment(ui);
    let service_env = environment(&services["orderflow"]);
    assert_eq!(
        env["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"],
        service_env["ORDERFLOW__KAFKA__BOOTSTRAP_SERVERS"]
    );
    assert_eq!(env["KAFKA_CLUSTERS_0_READONLY"], "true");
    assert_eq!(
        text(&ui["depends_on"]["kafka"]["condition"], "condition"),
        "service_healthy"
    );
    // The schema registry is the service's own, on its port and path, reached once the
    // service is healthy, with a key as the Basic-auth password.
    let port = &service_env["ORDERFLOW__HTTP__PORT"];
    assert_eq!(
        env["KAFKA_CLUSTERS_0_SCHEMAREGISTRY"],
        format!("http://orderflow:{port}/schema-registry")
    );
    assert!(env["KAFKA_CLUSTERS_0_SCHEMAREGISTRYAUTH_PASSWORD"].contains("ORDERFLOW_REGISTRY_KEY"));
    assert_eq!(
        text(&ui["depends_on"]["orderflow"]["condition"], "condition"),
        "service_healthy"
    );
    assert!(healthcheck(ui).contains(":8080/actuator/health"));
    // Its published port collides with no other service's.
    let mut published = BTreeSet::new();
    for (name, service) in services.as_mapping().unwrap() {
        for (host, _) in ports(service) {
            assert!(published.insert(host), "host port {host} twice ({name:?})");
        }
    }
    assert!(ports(ui).iter().any(|(_, container)| *container == 8080));
}

#[test]
fn compose_wires_the_service_to_kafka_with_its_own_config() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    let service = &services["orderflow"];
    let env = environment(service);

    // The service reaches Kafka on the listener Kafka advertises to the compose network.
    let kafka_env = environment(&services["kafka"]);
    let inter_broker = &kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"];
    let advertised = listeners(&kafka_env["KAFKA_ADVERTISED_LISTENERS"]);
    assert_eq!(
        env["ORDERFLOW__KAFKA__BOOTSTRAP_SERVERS"],
        advertised[inter_broker]
    );
    assert_eq!(
        text(&service["depends_on"]["kafka"]["condition"], "condition"),
        "service_healthy"
    );

    // Every ORDERFLOW__ variable names an option that exists, and the environment file too.
    let defaults = config::Config::builder()
        .add_source(config::File::from(repo("config/default.toml")))
        .build()
        .unwrap();
    for key in env.keys().filter(|k| k.starts_with("ORDERFLOW__")) {
        let path = key["ORDERFLOW__".len()..].to_lowercase().replace("__", ".");
        assert!(
            defaults.get::<config::Value>(&path).is_ok(),
            "{key}: no option {path}"
        );
    }
    let environment_file = format!("config/{}.toml", env["ORDERFLOW_ENV"]);
    assert!(
        repo(&environment_file).exists(),
        "{environment_file} missing"
    );

    // API keys on: the environment file asks for keys, and the keys file is a compose
    // secret from a git-ignored folder.
    let production = config::Config::builder()
        .add_source(config::File::from(repo("config/default.toml")))
        .add_source(config::File::from(repo(&environment_file)))
        .build()
        .unwrap();
    assert_eq!(production.get::<String>("auth.mode").unwrap(), "keys");
    let keys_file = &env["ORDERFLOW__AUTH__KEYS_FILE"];
    let secret = keys_file
        .strip_prefix("/run/secrets/")
        .expect("the keys file is a compose secret");
    assert!(
        service["secrets"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|s| s.as_str() == Some(secret)),
        "the service does not mount the secret {secret}"
    );
    let secret_file = text(&compose["secrets"][secret]["file"], "secret file");
    let ignored = std::fs::read_to_string(repo(".gitignore")).unwrap();
    let folder = secret_file
        .trim_start_matches("./")
        .split('/')
        .next()
        .unwrap();
    assert!(
        ignored.lines().any(|l| l.trim_matches('/') == folder),
        "{secret_file} must be git-ignored"
    );

    // Published port, health check and HTTP port agree.
    let port: u16 = env["ORDERFLOW__HTTP__PORT"].parse().unwrap();
    assert!(
        ports(service)
            .iter()
            .any(|(_, container)| *container == port)
    );
    let check = healthcheck(service);
    assert!(check.contains(&format!(":{port}/health/ready")), "{check}");
    // The grace period outlasts the service's own shutdown grace period.
    let grace = text(&service["stop_grace_period"], "stop_grace_period");
    let grace_secs: u64 = grace.trim_end_matches('s').parse().unwrap();
    let shutdown_ms: u64 = defaults.get("shutdown.grace_period_ms").unwrap();
    assert!(
        grace_secs * 1000 > shutdown_ms,
        "stop_grace_period {grace} too short"
    );
}

#[test]
fn prometheus_scrapes_the_service_and_grafana_is_provisioned() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    let port = environment(&services["orderflow"])["ORDERFLOW__HTTP__PORT"].clone();

    // Every bind mount exists in the repository.
    for (name, service) in services.as_mapping().unwrap() {
        for (host, _) in bind_mounts(service) {
            assert!(
                repo(&host).exists(),
                "{name:?} mounts {host}, which does not exist"
            );
        }
    }

    let prometheus = &services["prometheus"];
    let mounted = bind_mounts(prometheus);
    let (config_file, _) = mounted
        .iter()
        .find(|(_, c)| c == "/etc/prometheus/prometheus.yml")
        .expect("prometheus.yml mounted");
    let scrape = &yaml(config_file)["scrape_configs"][0];
    assert_eq!(text(&scrape["metrics_path"], "metrics_path"), "/metrics");
    assert_eq!(text(&scrape["job_name"], "job_name"), "orderflow");
    assert_eq!(
        text(&scrape["static_configs"][0]["targets"][0], "target"),
        format!("orderflow:{port}")
    );
    assert!(healthcheck(prometheus).contains(":9090/-/ready"));

    let grafana = &services["grafana"];
    assert_eq!(
        text(
            &grafana["depends_on"]["prometheus"]["condition"],
            "condition"
        ),
        "service_healthy"
    );
    let mounts = bind_mounts(grafana);
    let host_of = |container: &str| {
        mounts
            .iter()
            .find(|(_, c)| c == container)
            .map(|(h, _)| h.clone())
            .unwrap_or_else(|| panic!("nothing mounted at {container}"))
    };
    let provisioning = host_of("/etc/grafana/provisioning");
    let datasource = yaml(&format!("{provisioning}/datasources/prometheus.yml"));
    let source = &datasource["datasources"][0];
    assert_eq!(text(&source["type"], "type"), "prometheus");
    assert_eq!(text(&source["url"], "url"), "http://prometheus:9090");
    let uid = text(&source["uid"], "uid").to_string();
    let providers = yaml(&format!("{provisioning}/dashboards/orderflow.yml"));
    let dashboards_in = text(&providers["providers"][0]["options"]["path"], "path").to_string();
    let dashboards = host_of(&dashboards_in);
    let home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].clone();
    let home_file = home
        .strip_prefix(&format!("{dashboards_in}/"))
        .expect("home in the dashboards");
    assert!(repo(&format!("{dashboards}/{home_file}")).exists());
    check_dashboard(&repo(&format!("{dashboards}/orderflow.json")), &uid);
}

/// Every query of the dashboard uses the provisioned data source and only metric families
/// the service exports; the panels cover what operators asked for.
fn check_dashboard(path: &Path, datasource_uid: &str) {
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let families: BTreeSet<String> = orderflow::metrics::Metrics::new()
        .unwrap()
        .families
        .into_iter()
        .collect();
    let mut used = BTreeSet::new();
    let mut titles = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        titles.push(panel["title"].as_str().unwrap().to_lowercase());
        for target in panel["targets"].as_array().into_iter().flatten() {
            assert_eq!(target["datasource"]["uid"], datasource_uid);
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("orderflow_") {
                    let family = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|s| word.strip_suffix(s))
                        .filter(|base| families.contains(*base))
                        .unwrap_or(word);
                    assert!(
                        families.contains(family),
                        "{word} in {expr:?} is not exported"
                    );
                    used.insert(family.to_string());
                }
            }
        }
    }
    for topic in ["intake", "processing", "latency", "lag", "errors", "memory"] {
        assert!(
            titles.iter().any(|t| t.contains(topic)),
            "no {topic} panel in {titles:?}"
        );
    }
    for family in [
        "orderflow_orders_accepted_total",
        "orderflow_orders_processed_total",
        "orderflow_order_accept_to_final_seconds",
        "orderflow_http_request_duration_seconds",
        "orderflow_kafka_consumer_lag_records",
        "orderflow_process_resident_memory_bytes",
    ] {
        assert!(used.contains(family), "dashboard does not show {family}");
    }
}

#[test]
fn the_image_is_multi_stage_non_root_and_health_checked() {
    let dockerfile = std::fs::read_to_string(repo("Dockerfile")).unwrap();
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let from: Vec<&&str> = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(from.len() >= 2, "multi-stage build");
    assert!(from[0].contains(" AS builder"));
    let runtime_image = from.last().unwrap();
    assert!(
        runtime_image.contains("-slim"),
        "small runtime image: {runtime_image}"
    );
    let user = instructions
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    assert!(user != "root" && user != "0", "runs as {user}");
    // The status view lives on a volume the service's user owns, and compose keeps it.
    let view = dockerfile
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ORDERFLOW__STATUS_VIEW__PATH="))
        .expect("the view's path is set in the image");
    let folder = view.rsplit_once('/').unwrap().0;
    assert!(instructions.contains(&format!("VOLUME {folder}").as_str()));
    assert!(dockerfile.contains(&format!("chown {user} {folder}")));
    let compose = yaml("docker-compose.yml");
    let volumes = compose["services"]["orderflow"]["volumes"]
        .as_sequence()
        .expect("orderflow volumes");
    assert!(
        volumes.iter().any(|v| v
            .as_str()
            .is_some_and(|v| v.ends_with(&format!(":{folder}")))),
        "compose keeps {folder}"
    );
    assert!(dockerfile.contains("HEALTHCHECK"));
    assert!(dockerfile.contains("/health/ready"));
    // Every file the build needs is copied into the builder.
    // The librdkafka fix is prepared before the first cargo build.
    let patch = instructions
        .iter()
        .position(|l| l.contains("scripts/patch-librdkafka.sh") && l.starts_with("RUN "))
        .expect("RUN scripts/patch-librdkafka.sh");
    let first_build = instructions
        .iter()
        .position(|l| l.starts_with("RUN cargo build"))
        .expect("cargo build");
    assert!(patch < first_build);
    for needed in [
        "patches",
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src",
        "benches",
        "tests",
    ] {
        assert!(
            instructions.iter().any(|l| l.starts_with("COPY ")
                && l.split_whitespace().any(|w| w == needed
                    || w == format!("{needed}/")
                    || w.starts_with(&format!("./{needed}")))),
            "{needed} not copied"
        );
    }
    let exposed = instructions
        .iter()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE");
    let compose = yaml("docker-compose.yml");
    let port = environment(&compose["services"]["orderflow"])["ORDERFLOW__HTTP__PORT"].clone();
    assert_eq!(exposed, port);
}

#[test]
fn compose_sends_the_services_traces_to_jaeger_over_otlp_http() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    let jaeger = &services["jaeger"];
    // Jaeger v2 (one image for every role); its UI and OTLP/HTTP receiver published.
    let image = text(&jaeger["image"], "image");
    assert!(image.contains("jaegertracing/jaeger:2."), "{image}");
    let ports = ports(jaeger);
    assert!(ports.contains(&(16686, 16686)), "{ports:?}");
    assert!(ports.contains(&(4318, 4318)), "{ports:?}");

    // The service exports there by the standard variables, which its own settings read.
    let service = &services["orderflow"];
    let env = environment(service);
    assert_eq!(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://jaeger:4318");
    let mut settings = orderflow::config::Settings::load_from(&repo("config"), None).unwrap();
    settings.telemetry.otlp.endpoint.clear();
    let resolved =
        orderflow::trace::export::resolve(&settings.telemetry.otlp, |name| env.get(name).cloned())
            .unwrap()
            .expect("export on");
    assert_eq!(resolved.endpoint, "http://jaeger:4318/v1/traces");
    assert_eq!(resolved.service_name, env["OTEL_SERVICE_NAME"]);
    assert_eq!(
        text(&service["depends_on"]["jaeger"]["condition"], "condition"),
        "service_started"
    );
}
