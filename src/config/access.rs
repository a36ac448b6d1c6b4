//! `[auth]`: how callers are let in, the API key entries and their scopes, and the default
//! rate limits. The HTTP layer (`http::auth`) enforces them.

use std::num::NonZeroU32;
use std::path::Path;

use governor::Quota;
use serde::{Deserialize, Deserializer, Serialize};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Place, bulk-place and cancel orders.
    #[serde(rename = "orders:write")]
    OrdersWrite,
    /// Look up and list orders.
    #[serde(rename = "orders:read")]
    OrdersRead,
    /// Every `GET` under `/api/admin`, and the catalog.
    #[serde(rename = "admin:read")]
    AdminRead,
    /// Every other admin method (topics, messages, groups, broker lifecycle).
    #[serde(rename = "admin:write")]
    AdminWrite,
    /// `/metrics`, when `auth.protect_metrics` is on.
    #[serde(rename = "metrics:read")]
    MetricsRead,
    /// Record values unmasked in message search, export and tail (`[[admin.masking]]`).
    #[serde(rename = "admin:read-unmasked")]
    AdminReadUnmasked,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 6] = [
        Scope::OrdersWrite,
        Scope::OrdersRead,
        Scope::AdminRead,
        Scope::AdminWrite,
        Scope::MetricsRead,
        Scope::AdminReadUnmasked,
    ];

    /// The scope's name, as in config and in the OpenAPI document.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::OrdersWrite => "orders:write",
            Scope::OrdersRead => "orders:read",
            Scope::AdminRead => "admin:read",
            Scope::AdminWrite => "admin:write",
            Scope::MetricsRead => "metrics:read",
            Scope::AdminReadUnmasked => "admin:read-unmasked",
        }
    }

    /// The scope named `name`.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether every use of the scope is audited (admin mutations).
    pub fn audited(self) -> bool {
        self == Scope::AdminWrite
    }
}

/// How callers are let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No key needed (local use); warned at start and in `/api/catalog`.
    Open,
    /// A key with the route's scope is needed.
    Keys,
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `open` or `keys`. Default `open`; `keys` in `production.toml`.
    pub mode: AuthMode,
    /// Key entries (`[[auth.keys]]`), or as JSON text from `ORDERFLOW__AUTH__KEYS`.
    #[serde(default, deserialize_with = "entries_from_list_or_json")]
    pub keys: Vec<KeyEntry>,
    /// A TOML file of `[[keys]]` entries, read at start (for a mounted secret); empty for
    /// none.
    pub keys_file: String,
    /// Whether `/metrics` needs `metrics:read`. Default false.
    pub protect_metrics: bool,
    /// Default token buckets.
    pub rate_limit: RateLimitSettings,
    /// Refusals (401, 403) are audited per client and code once per window of this many
    /// seconds: the first at once, the rest as one count. Default 60.
    #[serde(
        rename = "audit_refusal_window_secs",
        deserialize_with = "super::seconds"
    )]
    pub audit_refusal_window: std::time::Duration,
}

impl AuthSettings {
    /// Every key entry: from config, then from the keys file.
    pub fn entries(&self) -> Result<Vec<KeyEntry>, String> {
        let mut entries = self.keys.clone();
        if !self.keys_file.is_empty() {
            entries.extend(
                read_keys_file(Path::new(&self.keys_file))
                    .map_err(|e| format!("auth.keys_file: {e}"))?,
            );
        }
        Ok(entries)
    }
}

/// One API key as configured: its name, the SHA-256 of the key, its scopes, and optionally
/// its own rate limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// Who holds the key (`ci`, `checkout-service`); in logs, metrics and audit records.
    pub name: String,
    /// SHA-256 of the key, 64 hex digits.
    pub sha256: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// Requests (orders, for a bulk) per second for this key; `auth.rate_limit.per_second`
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<u32>,
    /// Largest burst for this key; `auth.rate_limit.burst` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// The clusters its admin scopes reach, by id or pattern with `*` (`dev-*`); every
    /// cluster when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
}

impl KeyEntry {
    /// Checks the entry, naming what is wrong.
    pub fn check(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !name_ok {
            return Err(format!(
                "key name {:?} must be 1 to 64 letters, digits, '.', '_' or '-'",
                self.name
            ));
        }
        let digest = self.sha256.trim();
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "key {:?}: sha256 must be 64 hex digits (the SHA-256 of the key)",
                self.name
            ));
        }
        if self.scopes.is_empty() {
            return Err(format!("key {:?} has no scopes", self.name));
        }
        if let Some(bad) = self.clusters.iter().find(|p| {
            p.is_empty()
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-*".contains(&b))
        }) {
            return Err(format!(
                "key {:?}: cluster pattern {bad:?} must be of a-z, 0-9, '-' and '*'",
                self.name
            ));
        }
        if self.rate_per_second == Some(0) || self.burst == Some(0) {
            return Err(format!(
                "key {:?}: rate_per_second and burst must be at least 1",
                self.name
            ));
        }
        Ok(())
    }
}

/// Reads `keys` from config as a list of tables, or from an environment variable as a JSON
/// array of the same entries (`ORDERFLOW__AUTH__KEYS='[{"name": …}]'`).
pub fn entries_from_list_or_json<'de, D>(deserializer: D) -> Result<Vec<KeyEntry>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrJson {
        List(Vec<KeyEntry>),
        Json(String),
    }
    match ListOrJson::deserialize(deserializer)? {
        ListOrJson::List(entries) => Ok(entries),
        ListOrJson::Json(text) if text.trim().is_empty() => Ok(Vec::new()),
        ListOrJson::Json(text) => serde_json::from_str(&text)
            .map_err(|e| serde::de::Error::custom(format!("auth.keys as JSON: {e}"))),
    }
}

/// The keys file (`auth.keys_file`): `[[keys]]` tables of [`KeyEntry`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

/// Reads the entries of a keys file.
pub fn read_keys_file(path: &Path) -> Result<Vec<KeyEntry>, String> {
    if !path.is_file() {
        return Err(format!("{} is not a readable file", path.display()));
    }
    let file: KeysFile = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(file.keys)
}

/// `[auth.rate_limit]`: the default bucket of every key and every client address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Whether requests are limited at all. Default true.
    pub enabled: bool,
    /// Tokens (requests, or orders in a bulk) added per second. Default 1000.
    pub per_second: u32,
    /// Most tokens held, so the largest burst, and the largest bulk a caller may send.
    /// Default 2000.
    pub burst: u32,
    /// With `auth.mode = "keys"`: one bucket shared by every caller without a known key
    /// (whatever its address), so that many addresses cannot together make unlimited
    /// refused requests. Tokens per second; default 50.
    pub unauthenticated_per_second: u32,
    /// Most tokens that shared bucket holds. Default 100.
    pub unauthenticated_burst: u32,
}

impl RateLimitSettings {
    /// The quota for a key with optional overrides.
    pub fn quota(&self, per_second: Option<u32>, burst: Option<u32>) -> Option<Quota> {
        let rate = NonZeroU32::new(per_second.unwrap_or(self.per_second))?;
        let burst = NonZeroU32::new(burst.unwrap_or(self.burst))?;
        Some(Quota::per_second(rate).allow_burst(burst))
    }
}
