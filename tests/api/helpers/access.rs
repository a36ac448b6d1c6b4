//! API keys, their entries and headers, and clusters nobody answers for.

use super::broker::free_port;

use orderflow::config::Settings;

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
        schema_registry: None,
    }
}
