//! What a cluster definition that arrives through the API may ask of this process. Such a
//! definition is a stranger's input: its librdkafka options are an allow-list of what a
//! connection needs (security protocol, SASL, TLS material, timeouts, codecs), never a
//! plugin, an engine, a command or a file the operator did not allow; TLS files are named
//! relative to a folder the operator chose; and a `${NAME}` reference resolves only the
//! environment variables the operator allowed (a prefix, or names listed in config).
//! Clusters from the operator's own config file are not limited by any of this.

use crate::config::reference;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::clusters::RegistryEndpoint;
use crate::kafka::is_secret_option;

/// Options a registration may set, as they are.
const ALLOWED: &[&str] = &[
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.extensions",
    "sasl.oauthbearer.token.endpoint.url",
    "ssl.ca.pem",
    "ssl.certificate.pem",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
    "ssl.cipher.suites",
    "ssl.curves.list",
    "ssl.sigalgs.list",
    "socket.timeout.ms",
    "socket.connection.setup.timeout.ms",
    "socket.keepalive.enable",
    "request.timeout.ms",
    "metadata.max.age.ms",
    "topic.metadata.refresh.interval.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "connections.max.idle.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "compression.type",
    "compression.codec",
    "linger.ms",
    "batch.size",
    "batch.num.messages",
    "message.max.bytes",
    "receive.message.max.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.wait.max.ms",
    "client.rack",
    "client.dns.lookup",
    "broker.address.family",
    "api.version.request",
    "api.version.request.timeout.ms",
    "broker.version.fallback",
    "acks",
    "enable.idempotence",
    "max.in.flight.requests.per.connection",
    "queue.buffering.max.ms",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "retries",
    "message.send.max.retries",
];

/// Options that name a file: allowed only inside `[admin] cluster_files_dir`.
const FILE_OPTIONS: &[&str] = &[
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.crl.location",
    "ssl.keystore.location",
];

/// The operator's limits on definitions from the API (`[admin]` in config).
#[derive(Debug, Clone, Default)]
pub struct OptionPolicy {
    /// The folder TLS files may be named in; `None`: no file options.
    pub files_dir: Option<PathBuf>,
    /// Environment variables whose names start with this may be referenced.
    pub env_prefix: String,
    /// Further variables that may be referenced, by exact name.
    pub env_names: Vec<String>,
    /// URL prefixes a definition may name as its schema registry.
    pub registry_urls: Vec<String>,
}

impl From<&crate::config::AdminSettings> for OptionPolicy {
    fn from(admin: &crate::config::AdminSettings) -> Self {
        OptionPolicy {
            files_dir: (!admin.cluster_files_dir.trim().is_empty())
                .then(|| PathBuf::from(&admin.cluster_files_dir)),
            env_prefix: admin.secret_env_prefix.clone(),
            env_names: admin.secret_env_names.clone(),
            registry_urls: admin.schema_registry_urls.clone(),
        }
    }
}

impl OptionPolicy {
    /// Why `value` of option `name` may not come from the API; `None` when it may.
    pub fn refusal(&self, name: &str, value: &str) -> Option<String> {
        if let Some(variable) = reference(value) {
            if !is_secret_option(name) {
                return Some(
                    "only secret options (passwords, secrets, keys) may be ${NAME} references"
                        .into(),
                );
            }
            if !self.may_read(variable) {
                return Some(self.variable_refusal(variable));
            }
            return None;
        }
        if FILE_OPTIONS.contains(&name) {
            return self.file_refusal(value);
        }
        if ALLOWED.contains(&name) {
            return None;
        }
        Some(format!(
            "not an option a registered cluster may set; the allowed ones are the connection's \
             security, SASL, TLS (inline PEM{}), timeouts and codecs (see docs); others belong \
             in the operator's config file",
            if self.files_dir.is_some() {
                ", or files under the operator's cluster_files_dir"
            } else {
                ""
            }
        ))
    }

    /// Every refused option of a definition, with why.
    pub fn refusals(&self, options: &BTreeMap<String, String>) -> Vec<(String, String)> {
        options
            .iter()
            .filter_map(|(name, value)| self.refusal(name, value).map(|why| (name.clone(), why)))
            .collect()
    }

    /// Why a definition from the API may not name this schema registry: by field.
    pub fn registry_refusals(&self, endpoint: &RegistryEndpoint) -> Vec<(&'static str, String)> {
        let mut refusals = Vec::new();
        let url = endpoint.url.as_str();
        let parsed = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        match parsed {
            Some(parsed) if url.len() <= 1024 => {
                if !self
                    .registry_urls
                    .iter()
                    .any(|allowed| under(&parsed, allowed))
                {
                    refusals.push((
                        "schema_registry.url",
                        "not under a URL the operator allows (admin.schema_registry_urls)"
                            .to_string(),
                    ));
                }
            }
            _ => refusals.push((
                "schema_registry.url",
                "an http:// or https:// URL".to_string(),
            )),
        }
        if let Some(variable) = reference(&endpoint.username)
            && !self.may_read(variable)
        {
            refusals.push(("schema_registry.username", self.variable_refusal(variable)));
        }
        match reference(&endpoint.password) {
            Some(variable) if !self.may_read(variable) => {
                refusals.push(("schema_registry.password", self.variable_refusal(variable)));
            }
            None if !endpoint.password.is_empty() => refusals.push((
                "schema_registry.password",
                "must be a reference to an environment variable, like ${NAME}; secrets are \
                 never written to Kafka"
                    .to_string(),
            )),
            _ => {}
        }
        refusals
    }

    /// The registry's URL and credentials with references resolved (held to this policy
    /// when `limited`: a definition from the API), or why they cannot be used.
    pub fn registry(
        &self,
        endpoint: &RegistryEndpoint,
        limited: bool,
    ) -> Result<(String, Option<(String, String)>), String> {
        if limited && let Some((field, why)) = self.registry_refusals(endpoint).into_iter().next() {
            return Err(format!("{field}: {why}"));
        }
        let resolve = |field: &str, value: &str| match reference(value) {
            Some(variable) => std::env::var(variable)
                .map_err(|_| format!("{field} refers to ${{{variable}}}, which is not set")),
            None => Ok(value.to_string()),
        };
        let user = resolve("schema_registry.username", &endpoint.username)?;
        let password = resolve("schema_registry.password", &endpoint.password)?;
        let credentials = (!user.is_empty() || !password.is_empty()).then_some((user, password));
        Ok((endpoint.url.clone(), credentials))
    }

    /// Whether a `${variable}` reference may be resolved.
    pub fn may_read(&self, variable: &str) -> bool {
        (!self.env_prefix.is_empty()
            && variable.starts_with(&self.env_prefix)
            && variable.len() > self.env_prefix.len())
            || self.env_names.iter().any(|n| n == variable)
    }

    fn variable_refusal(&self, variable: &str) -> String {
        let variable: String = variable.chars().take(64).collect();
        if self.env_prefix.is_empty() {
            format!(
                "${{{variable}}} is not among the variables the operator allows (admin.secret_env_names)"
            )
        } else {
            format!(
                "${{{variable}}} is not a variable the operator allows: its name must start \
                 with {} (admin.secret_env_prefix) or be listed in admin.secret_env_names",
                self.env_prefix
            )
        }
    }

    /// Why a TLS file option's value is refused: outside the allowed folder, or not a file.
    fn file_refusal(&self, value: &str) -> Option<String> {
        // librdkafka's own search of the system's CA stores: no caller-chosen path.
        if value == "probe" {
            return None;
        }
        let Some(dir) = &self.files_dir else {
            return Some(
                "files cannot be named by a registered cluster here (no admin.cluster_files_dir); \
                 give the TLS material inline as PEM (ssl.ca.pem, ssl.certificate.pem, ssl.key.pem)"
                    .into(),
            );
        };
        let outside = || {
            Some(format!(
                "must name a file inside the operator's cluster_files_dir, relative to it ({})",
                dir.display()
            ))
        };
        let relative = Path::new(value);
        if value.is_empty()
            || relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return outside();
        }
        // Judged by what the path reaches (links followed), not by how it is spelled.
        let (Ok(root), Ok(file)) = (dir.canonicalize(), dir.join(relative).canonicalize()) else {
            return Some("no such file in the operator's cluster_files_dir".into());
        };
        if !file.starts_with(&root) || !file.is_file() {
            return outside();
        }
        None
    }

    /// The options with file names made absolute under the allowed folder and references
    /// resolved, or why they cannot be used.
    pub fn apply(
        &self,
        options: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, String> {
        if let Some((name, why)) = self.refusals(options).into_iter().next() {
            return Err(format!("{name}: {why}"));
        }
        options
            .iter()
            .map(|(name, value)| {
                let resolved = match reference(value) {
                    Some(variable) => std::env::var(variable).map_err(|_| {
                        format!("{name} refers to ${{{variable}}}, which is not set")
                    })?,
                    None if FILE_OPTIONS.contains(&name.as_str()) && value != "probe" => self
                        .files_dir
                        .as_ref()
                        .map(|dir| dir.join(value).display().to_string())
                        .unwrap_or_default(),
                    None => value.clone(),
                };
                Ok((name.clone(), resolved))
            })
            .collect()
    }
}

/// Whether `url` is under `allowed`: the same scheme, host and port, and a path that is
/// the allowed one or below it (judged on parsed URLs, so `…:8081.evil.example` is not
/// under `…:8081`), without credentials in the URL.
fn under(url: &reqwest::Url, allowed: &str) -> bool {
    let Ok(allowed) = reqwest::Url::parse(allowed) else {
        return false;
    };
    let base = allowed.path().trim_end_matches('/');
    url.scheme() == allowed.scheme()
        && url.host() == allowed.host()
        && url.port_or_known_default() == allowed.port_or_known_default()
        && url.username().is_empty()
        && url.password().is_none()
        && (url.path() == base || url.path().starts_with(&format!("{base}/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(dir: Option<PathBuf>) -> OptionPolicy {
        OptionPolicy {
            files_dir: dir,
            env_prefix: "ORDERFLOW_SECRET_".into(),
            env_names: vec!["KAFKA_PASSWORD".into()],
            registry_urls: vec!["https://registry.internal/".into()],
        }
    }

    #[test]
    fn a_registry_url_is_allowed_by_its_origin_and_path_not_by_its_text() {
        let p = policy(None);
        let refused = |url: &str| {
            let endpoint = RegistryEndpoint {
                url: url.into(),
                username: String::new(),
                password: String::new(),
            };
            !p.registry_refusals(&endpoint).is_empty()
        };
        assert!(!refused("https://registry.internal/"));
        assert!(!refused("https://registry.internal/sr/subjects"));
        assert!(!refused("https://registry.internal:443/x"));
        assert!(refused("https://registry.internal.evil.example/"));
        assert!(refused("https://registry.internal:8443/"));
        assert!(refused("http://registry.internal/"));
        assert!(refused("https://user@registry.internal/"));
        assert!(refused("file:///etc/passwd"));
        assert!(refused("https://169.254.169.254/latest/meta-data/"));
    }

    #[test]
    fn code_loading_engines_and_commands_are_refused_and_connection_options_pass() {
        let p = policy(None);
        for name in [
            "plugin.library.paths",
            "ssl.engine.location",
            "sasl.kerberos.kinit.cmd",
            "ssl_engine_id",
            "interceptors",
        ] {
            assert!(p.refusal(name, "/tmp/x.so").is_some(), "{name}");
        }
        for (name, value) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("ssl.ca.pem", "-----BEGIN CERTIFICATE-----"),
            ("socket.timeout.ms", "30000"),
            ("ssl.ca.location", "probe"),
        ] {
            assert_eq!(p.refusal(name, value), None, "{name}");
        }
    }

    #[test]
    fn references_resolve_only_allowed_variables_and_only_in_secret_options() {
        let p = policy(None);
        assert_eq!(
            p.refusal("sasl.password", "${ORDERFLOW_SECRET_STAGING}"),
            None
        );
        assert_eq!(p.refusal("sasl.password", "${KAFKA_PASSWORD}"), None);
        for variable in [
            "HOME",
            "PATH",
            "ORDERFLOW_SECRET_",
            "STAGING_KAFKA_PASSWORD",
        ] {
            let why = p
                .refusal("sasl.password", &format!("${{{variable}}}"))
                .unwrap();
            assert!(why.contains("ORDERFLOW_SECRET_"), "{why}");
        }
        assert!(
            p.refusal("sasl.username", "${ORDERFLOW_SECRET_X}")
                .is_some()
        );
        // A forged stored entry is refused at use, not only at registration.
        let forged = BTreeMap::from([("sasl.password".to_string(), "${HOME}".to_string())]);
        assert!(p.apply(&forged).unwrap_err().contains("sasl.password"));
    }

    #[test]
    fn files_are_judged_by_where_they_lead_inside_the_allowed_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "pem").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link.pem")).unwrap();
        let p = policy(Some(dir.path().to_path_buf()));
        assert_eq!(p.refusal("ssl.ca.location", "ca.pem"), None);
        for bad in ["/etc/shadow", "../ca.pem", "link.pem", "missing.pem", ""] {
            assert!(p.refusal("ssl.ca.location", bad).is_some(), "{bad}");
        }
        assert!(policy(None).refusal("ssl.ca.location", "ca.pem").is_some());
        let applied = p
            .apply(&BTreeMap::from([(
                "ssl.ca.location".into(),
                "ca.pem".into(),
            )]))
            .unwrap();
        assert_eq!(
            applied["ssl.ca.location"],
            dir.path().join("ca.pem").display().to_string()
        );
    }
}
