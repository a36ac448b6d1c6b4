//! One handle for either registry (the built-in one or a remote one), what the rest of the
//! service asks of it, and the decoder scans use to show wire-format records as JSON.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::remote::RemoteRegistry;
use super::store::SchemaStore;
use super::{Schema, SchemaText};
use crate::kafka::wire::{self, Decoded, WireDecoder};

/// Why a registry request failed, with Confluent's error codes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// 40401.
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// 40402.
    #[error("Version not found.")]
    VersionNotFound(String),
    /// 40403.
    #[error("Schema not found")]
    SchemaNotFound,
    /// 40404.
    #[error("Subject '{0}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    /// 40405.
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    /// 40406.
    #[error("Subject '{0}' Version was soft deleted. Set permanent=true to delete permanently")]
    VersionSoftDeleted(String),
    /// 40407.
    #[error("Subject '{0}' Version was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted(String),
    /// 40408.
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectConfigNotFound(String),
    /// 42201.
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    /// 42202.
    #[error(
        "The specified version is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion,
    /// 42203.
    #[error(
        "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"
    )]
    InvalidCompatibility,
    /// 42204 (a subject name the registry refuses; Confluent answers such names 422 too).
    #[error("Invalid subject: 1 to 255 characters, no control characters")]
    InvalidSubject,
    /// 409.
    #[error("Schema being registered is incompatible with an earlier schema")]
    Incompatible(Vec<String>),
    /// 50001: the topic could not be written (Kafka trouble).
    #[error("Error in the backend data store")]
    Store(String),
    /// 50002: written, not read back in time.
    #[error("Operation timed out")]
    Timeout,
    /// A remote registry could not be reached or answered something unexpected.
    #[error("the schema registry could not be reached")]
    Unreachable(String),
    /// A remote registry refused the request (its status and message).
    #[error("the schema registry answered {status}: {message}")]
    Refused {
        /// Its HTTP status.
        status: u16,
        /// Its error code.
        error_code: i64,
        /// Its message.
        message: String,
    },
}

impl RegistryError {
    /// Confluent's error code for it.
    pub fn error_code(&self) -> i64 {
        match self {
            RegistryError::SubjectNotFound(_) => 40401,
            RegistryError::VersionNotFound(_) => 40402,
            RegistryError::SchemaNotFound => 40403,
            RegistryError::SubjectSoftDeleted(_) => 40404,
            RegistryError::SubjectNotSoftDeleted(_) => 40405,
            RegistryError::VersionSoftDeleted(_) => 40406,
            RegistryError::VersionNotSoftDeleted(_) => 40407,
            RegistryError::SubjectConfigNotFound(_) => 40408,
            RegistryError::InvalidSchema(_) => 42201,
            RegistryError::InvalidVersion => 42202,
            RegistryError::InvalidCompatibility => 42203,
            RegistryError::InvalidSubject => 42208,
            RegistryError::Incompatible(_) => 409,
            RegistryError::Store(_) => 50001,
            RegistryError::Timeout => 50002,
            RegistryError::Unreachable(_) => 50003,
            RegistryError::Refused { error_code, .. } => *error_code,
        }
    }
}

/// A subject's version, as registered.
#[derive(Debug, Clone)]
pub struct Version {
    /// The subject.
    pub subject: String,
    /// Its version number.
    pub version: i32,
    /// The schema's id.
    pub id: u32,
    /// The schema.
    pub schema: Arc<Schema>,
    /// Whether it is soft-deleted.
    pub deleted: bool,
}

/// A version number or `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef {
    /// The newest (live) version.
    Latest,
    /// This one.
    Number(i32),
}

impl VersionRef {
    /// From a path segment: `latest`, `-1` (Confluent's alias of it) or 1 to 2³¹−1.
    pub fn parse(text: &str) -> Result<VersionRef, RegistryError> {
        match text {
            "latest" | "-1" => Ok(VersionRef::Latest),
            n => match n.parse::<i32>() {
                Ok(n) if n >= 1 => Ok(VersionRef::Number(n)),
                _ => Err(RegistryError::InvalidVersion),
            },
        }
    }
}

/// Which schema a caller means: a subject's version, or an id.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum SchemaChoice {
    /// By id.
    Id {
        /// The schema id.
        id: u32,
    },
    /// A subject's version (`"latest"` or a number).
    Subject {
        /// The subject (`<topic>-value` by the topic-name strategy).
        subject: String,
        /// A version number or `"latest"` (the default).
        #[serde(default)]
        #[schema(value_type = Option<Object>, example = "latest")]
        version: Option<serde_json::Value>,
    },
}

/// The built-in registry, or a client of a remote one.
#[derive(Clone)]
pub enum Registry {
    /// Kept on the home cluster's `_schemas` topic.
    Builtin(Arc<SchemaStore>),
    /// A Confluent-compatible registry over HTTP.
    Remote(Arc<RemoteRegistry>),
}

impl Registry {
    /// The schema of `id`.
    pub async fn schema(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        match self {
            Registry::Builtin(store) => store.schema(id).ok_or(RegistryError::SchemaNotFound),
            Registry::Remote(remote) => remote.schema(id).await,
        }
    }

    /// A subject `id` is registered under, if any.
    pub async fn subject_of(&self, id: u32) -> Option<String> {
        match self {
            Registry::Builtin(store) => store.uses(id, false).into_iter().next().map(|u| u.0),
            Registry::Remote(remote) => remote.uses(id).await.ok()?.into_iter().next().map(|u| u.0),
        }
    }

    /// Registers `text` under `subject`: its id.
    pub async fn register(&self, subject: &str, text: SchemaText) -> Result<u32, RegistryError> {
        match self {
            Registry::Builtin(store) => store.register(subject, text).await.map(|v| v.id),
            Registry::Remote(remote) => remote.register(subject, &text).await,
        }
    }

    /// The live subjects.
    pub async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        match self {
            Registry::Builtin(store) => Ok(store.subjects(false)),
            Registry::Remote(remote) => remote.subjects().await,
        }
    }

    /// A subject's live versions, oldest first.
    pub async fn versions(&self, subject: &str) -> Result<Vec<Version>, RegistryError> {
        match self {
            Registry::Builtin(store) => store
                .versions(subject, false)?
                .into_iter()
                .map(|v| store.version(subject, VersionRef::Number(v), false))
                .collect(),
            Registry::Remote(remote) => remote.versions(subject).await,
        }
    }

    /// The id and schema a caller chose.
    pub async fn choose(&self, choice: &SchemaChoice) -> Result<(u32, Arc<Schema>), RegistryError> {
        match choice {
            SchemaChoice::Id { id } => Ok((*id, self.schema(*id).await?)),
            SchemaChoice::Subject { subject, version } => {
                let which = match version {
                    None => VersionRef::Latest,
                    Some(serde_json::Value::String(s)) => VersionRef::parse(s)?,
                    Some(serde_json::Value::Number(n)) => n
                        .as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .filter(|n| *n >= 1)
                        .map(VersionRef::Number)
                        .ok_or(RegistryError::InvalidVersion)?,
                    Some(_) => return Err(RegistryError::InvalidVersion),
                };
                let found = match self {
                    Registry::Builtin(store) => store.version(subject, which, false)?,
                    Registry::Remote(remote) => remote.version(subject, which).await?,
                };
                Ok((found.id, found.schema))
            }
        }
    }

    /// A decoder of wire-format records for scans, which run on blocking threads: it
    /// looks ids up through `runtime` and remembers them (and the ones it could not find)
    /// for its own life.
    pub fn decoder(&self, runtime: tokio::runtime::Handle) -> Arc<dyn WireDecoder> {
        Arc::new(RegistryDecoder {
            registry: self.clone(),
            runtime,
            known: Mutex::new(HashMap::new()),
        })
    }
}

/// The service's registry and clients of the registries other clusters name, made on first
/// use and reused.
pub struct Registries {
    home: Registry,
    timeout: std::time::Duration,
    remotes: Mutex<HashMap<RemoteKey, Registry>>,
}

/// A remote registry's URL and credentials.
type RemoteKey = (String, Option<(String, String)>);

impl Registries {
    /// `home` is the service's registry; clients of others wait up to `timeout` for an
    /// answer.
    pub fn new(home: Registry, timeout: std::time::Duration) -> Self {
        Registries {
            home,
            timeout,
            remotes: Mutex::new(HashMap::new()),
        }
    }

    /// The service's registry (the home cluster's).
    pub fn home(&self) -> &Registry {
        &self.home
    }

    /// A client of the registry at `url`, with basic-auth `credentials`.
    pub fn remote(
        &self,
        url: &str,
        credentials: Option<(String, String)>,
    ) -> Result<Registry, String> {
        let key = (url.to_string(), credentials.clone());
        let mut remotes = self.remotes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = remotes.get(&key) {
            return Ok(known.clone());
        }
        let registry = Registry::Remote(Arc::new(RemoteRegistry::new(
            url,
            credentials,
            self.timeout,
        )?));
        remotes.insert(key, registry.clone());
        Ok(registry)
    }
}

type Known = Result<(Arc<Schema>, Option<String>), String>;

struct RegistryDecoder {
    registry: Registry,
    runtime: tokio::runtime::Handle,
    known: Mutex<HashMap<u32, Known>>,
}

impl RegistryDecoder {
    fn lookup(&self, id: u32) -> Known {
        if let Some(known) = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return known.clone();
        }
        let registry = self.registry.clone();
        let found = self.runtime.block_on(async move {
            match registry.schema(id).await {
                Ok(schema) => Ok((schema, registry.subject_of(id).await)),
                Err(RegistryError::SchemaNotFound) => {
                    Err(format!("schema {id} is not in the registry"))
                }
                Err(error) => Err(format!("schema {id} could not be looked up: {error}")),
            }
        });
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, found.clone());
        found
    }
}

impl WireDecoder for RegistryDecoder {
    fn decode(&self, bytes: &[u8]) -> Decoded {
        let Some((id, data)) = wire::split(bytes) else {
            return Decoded::Plain;
        };
        match self.lookup(id) {
            Ok((schema, subject)) => match super::codec::decode(&schema, data) {
                Ok(json) => Decoded::Value { id, subject, json },
                Err(reason) => Decoded::Undecodable { id, reason },
            },
            Err(reason) => Decoded::Undecodable { id, reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_latest_or_a_positive_number() {
        assert_eq!(VersionRef::parse("latest").unwrap(), VersionRef::Latest);
        assert_eq!(VersionRef::parse("-1").unwrap(), VersionRef::Latest);
        assert_eq!(VersionRef::parse("3").unwrap(), VersionRef::Number(3));
        for bad in ["0", "-2", "x", "2147483648", ""] {
            assert!(VersionRef::parse(bad).is_err(), "{bad}");
        }
    }
}
