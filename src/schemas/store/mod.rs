//! The built-in registry: subjects, versions, ids and compatibility settings on a compacted
//! topic of the home cluster (`_schemas`, one partition), read by every instance into its
//! own copy; a change is written, then read back before it is answered.
//!
//! Ids without a leader: a registration picks the next id from what this instance has read
//! and writes its claim; every instance judges claims in the topic's order with the same
//! rule, so they agree which one won. A claim is accepted when its subject and version are
//! free, its id names no other schema, and its schema has no other id; otherwise it is
//! rejected, and its writer (having read its own claim back) removes it and tries again.
//! A claim's key holds all four (subject, version, fingerprint, id), so two different
//! claims never share a key (compaction keeps both, in order, until the loser is removed),
//! and two identical ones are the same claim. Soft deletions are records of their own, so
//! an accepted claim's record never moves behind a rejected one.

mod state;
#[cfg(test)]
mod tests;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;

use super::compat::{self, Compatibility};
use super::registry::{RegistryError, Version, VersionRef};
use super::{Schema, SchemaText};
use crate::kafka::BaseProducer;
use crate::kafka::table::{TableReader, TableWriter};
use state::{ConfigRecord, Entry, Key, SchemaRecord, State};

/// How many times a registration tries again after losing to a concurrent one.
const ATTEMPTS: usize = 8;

/// The built-in registry.
pub struct SchemaStore {
    state: RwLock<State>,
    table: TableWriter<Value>,
    /// One change at a time from this instance (others are ordered by the topic).
    writing: tokio::sync::Mutex<()>,
}

impl SchemaStore {
    /// The registry on `topic`, read by `reader` (which must hand it its records through
    /// [`SchemaStore::apply`]) and written by `writer`; a change waits up to `timeout` to
    /// be read back.
    pub fn new(
        topic: String,
        reader: Arc<TableReader>,
        writer: BaseProducer<Value>,
        timeout: Duration,
    ) -> Self {
        SchemaStore {
            state: RwLock::new(State::default()),
            table: TableWriter::new(topic, reader, writer, timeout),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// Its topic.
    pub fn topic(&self) -> &str {
        self.table.topic()
    }

    /// Whether every record stored before this instance started has been read.
    pub fn is_caught_up(&self) -> bool {
        self.table.is_caught_up()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one record of the topic, in the topic's order.
    pub fn apply(&self, key: &str, value: Option<&[u8]>) {
        let Ok(parsed) = serde_json::from_str::<Key>(key) else {
            tracing::debug!(key, "registry record with an unknown key ignored");
            return;
        };
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        match (parsed, value) {
            (
                Key::Schema {
                    subject,
                    version,
                    fingerprint,
                    id,
                },
                Some(value),
            ) => match serde_json::from_slice::<SchemaRecord>(value) {
                Ok(record) => state.claim(key, subject, version, &fingerprint, id, record),
                Err(error) => tracing::warn!(key, %error, "undecodable schema record ignored"),
            },
            (
                Key::Schema {
                    subject, version, ..
                },
                None,
            ) => state.unclaim(key, &subject, version),
            (Key::Deleted { subject, version }, Some(_)) => {
                state.deleted.insert((subject, version));
            }
            (Key::Deleted { subject, version }, None) => {
                state.deleted.remove(&(subject, version));
            }
            (Key::Config { subject }, Some(value)) => {
                match serde_json::from_slice::<ConfigRecord>(value) {
                    Ok(record) => match subject {
                        Some(subject) => {
                            state
                                .subject_config
                                .insert(subject, record.compatibility_level);
                        }
                        None => state.config = Some(record.compatibility_level),
                    },
                    Err(error) => tracing::warn!(key, %error, "undecodable config record ignored"),
                }
            }
            (Key::Config { subject }, None) => match subject {
                Some(subject) => {
                    state.subject_config.remove(&subject);
                }
                None => state.config = None,
            },
        }
    }

    async fn write(&self, key: &Key, value: Option<&Value>) -> Result<(), RegistryError> {
        match self.table.write(&key.text(), value).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(RegistryError::Timeout),
            Err(error) => Err(RegistryError::Store(error.to_string())),
        }
    }

    fn ready(&self) -> Result<(), RegistryError> {
        if self.is_caught_up() {
            Ok(())
        } else {
            Err(RegistryError::Store(
                "the registry is still reading its topic".into(),
            ))
        }
    }

    /// Registers `text` under `subject` (or finds it there): its id and version.
    pub async fn register(
        &self,
        subject: &str,
        text: SchemaText,
    ) -> Result<Version, RegistryError> {
        valid_subject(subject)?;
        self.ready()?;
        let _one = self.writing.lock().await;
        for _ in 0..ATTEMPTS {
            let (claim, schema) = {
                let state = self.read();
                let referenced = state.resolve(&text.references)?;
                let schema = Schema::parse(text.clone(), &referenced)
                    .map_err(RegistryError::InvalidSchema)?;
                let live = state.live_versions(subject);
                if let Some((version, entry)) = live.iter().find(|(_, e)| {
                    state
                        .ids
                        .get(&e.id)
                        .is_some_and(|s| s.fingerprint == schema.fingerprint)
                }) {
                    return Ok(self.version_of(&state, subject, *version, entry));
                }
                let previous: Vec<&Schema> = live
                    .iter()
                    .filter_map(|(_, e)| state.ids.get(&e.id).map(|s| &**s))
                    .collect();
                let problems = compat::check(state.level(subject), &schema, &previous);
                if !problems.is_empty() {
                    return Err(RegistryError::Incompatible(problems));
                }
                let id = state
                    .by_fingerprint
                    .get(&schema.fingerprint)
                    .copied()
                    .unwrap_or(state.max_id + 1);
                let version = state.max_version.get(subject).copied().unwrap_or(0) + 1;
                (
                    Key::Schema {
                        subject: subject.to_string(),
                        version,
                        fingerprint: schema.fingerprint.clone(),
                        id,
                    },
                    schema,
                )
            };
            let record = serde_json::to_value(SchemaRecord {
                schema: schema.text.schema.clone(),
                schema_type: schema.text.schema_type,
                references: schema.text.references.clone(),
            })
            .expect("records serialize");
            self.write(&claim, Some(&record)).await?;
            let key = claim.text();
            {
                let state = self.read();
                if let Some((subject, version)) = state.accepted.get(&key)
                    && let Some(entry) = state.subjects.get(subject).and_then(|v| v.get(version))
                {
                    return Ok(self.version_of(&state, subject, *version, entry));
                }
            }
            // Lost to a concurrent registration: take the claim back and try again.
            self.write(&claim, None).await?;
        }
        Err(RegistryError::Store(
            "registration kept losing to concurrent ones; try again".into(),
        ))
    }

    fn version_of(&self, state: &State, subject: &str, version: i32, entry: &Entry) -> Version {
        Version {
            subject: subject.to_string(),
            version,
            id: entry.id,
            schema: state.ids[&entry.id].clone(),
            deleted: state.is_deleted(subject, version),
        }
    }

    /// Subjects, sorted; soft-deleted ones only with `deleted`.
    pub fn subjects(&self, deleted: bool) -> Vec<String> {
        let state = self.read();
        state
            .subjects
            .keys()
            .filter(|s| deleted || !state.live_versions(s).is_empty())
            .cloned()
            .collect()
    }

    /// A subject's versions; soft-deleted ones only with `deleted`.
    pub fn versions(&self, subject: &str, deleted: bool) -> Result<Vec<i32>, RegistryError> {
        let state = self.read();
        let versions: Vec<i32> = match state.subjects.get(subject) {
            Some(all) => all
                .keys()
                .filter(|v| deleted || !state.is_deleted(subject, **v))
                .copied()
                .collect(),
            None => vec![],
        };
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        Ok(versions)
    }

    /// One version of a subject; a soft-deleted one only with `deleted`.
    pub fn version(
        &self,
        subject: &str,
        which: VersionRef,
        deleted: bool,
    ) -> Result<Version, RegistryError> {
        let state = self.read();
        let all = state
            .subjects
            .get(subject)
            .filter(|all| deleted || all.keys().any(|v| !state.is_deleted(subject, *v)))
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        let found = match which {
            VersionRef::Latest => all
                .iter()
                .rev()
                .find(|(v, _)| deleted || !state.is_deleted(subject, **v)),
            VersionRef::Number(n) => all
                .get_key_value(&n)
                .filter(|(v, _)| deleted || !state.is_deleted(subject, **v)),
        };
        let (version, entry) =
            found.ok_or_else(|| RegistryError::VersionNotFound(subject.to_string()))?;
        Ok(self.version_of(&state, subject, *version, entry))
    }

    /// The schema of `id`.
    pub fn schema(&self, id: u32) -> Option<Arc<Schema>> {
        self.read().ids.get(&id).cloned()
    }

    /// Where `id` is registered: subject and version pairs.
    pub fn uses(&self, id: u32, deleted: bool) -> Vec<(String, i32)> {
        let state = self.read();
        state
            .subjects
            .iter()
            .flat_map(|(subject, versions)| {
                versions
                    .iter()
                    .filter(|(v, e)| e.id == id && (deleted || !state.is_deleted(subject, **v)))
                    .map(|(v, _)| (subject.clone(), *v))
            })
            .collect()
    }

    /// The version of `subject` that is `text`.
    pub fn lookup(
        &self,
        subject: &str,
        text: SchemaText,
        deleted: bool,
    ) -> Result<Version, RegistryError> {
        let state = self.read();
        if !state.subjects.contains_key(subject) {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        let referenced = state.resolve(&text.references)?;
        let schema = Schema::parse(text, &referenced).map_err(RegistryError::InvalidSchema)?;
        let versions = &state.subjects[subject];
        versions
            .iter()
            .find(|(v, e)| {
                (deleted || !state.is_deleted(subject, **v))
                    && state
                        .ids
                        .get(&e.id)
                        .is_some_and(|s| s.fingerprint == schema.fingerprint)
            })
            .map(|(v, e)| self.version_of(&state, subject, *v, e))
            .ok_or(RegistryError::SchemaNotFound)
    }

    /// Why `text` may not be registered under `subject` after `which` (every live version
    /// when `None`, per the level), at the subject's level.
    pub fn test(
        &self,
        subject: &str,
        which: Option<VersionRef>,
        text: SchemaText,
    ) -> Result<Vec<String>, RegistryError> {
        let state = self.read();
        let referenced = state.resolve(&text.references)?;
        let schema = Schema::parse(text, &referenced).map_err(RegistryError::InvalidSchema)?;
        let live = state.live_versions(subject);
        let level = state.level(subject);
        let against: Vec<&Schema> = match which {
            None => live
                .iter()
                .filter_map(|(_, e)| state.ids.get(&e.id).map(|s| &**s))
                .collect(),
            Some(which) => {
                if live.is_empty() {
                    return Err(RegistryError::SubjectNotFound(subject.to_string()));
                }
                let entry = match which {
                    VersionRef::Latest => live.last().map(|(_, e)| *e),
                    VersionRef::Number(n) => live.iter().find(|(v, _)| *v == n).map(|(_, e)| *e),
                }
                .ok_or_else(|| RegistryError::VersionNotFound(subject.to_string()))?;
                vec![&*state.ids[&entry.id]]
            }
        };
        // One version named: checked against it alone, transitive or not.
        Ok(compat::check(level, &schema, &against))
    }

    /// Deletes a subject: soft (its versions stay readable with `deleted=true`), or, once
    /// soft-deleted, `permanent`. The versions deleted.
    pub async fn delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<i32>, RegistryError> {
        self.ready()?;
        let _one = self.writing.lock().await;
        let (versions, live) = {
            let state = self.read();
            let all: Vec<i32> = state
                .subjects
                .get(subject)
                .map(|v| v.keys().copied().collect())
                .unwrap_or_default();
            if all.is_empty() {
                return Err(RegistryError::SubjectNotFound(subject.to_string()));
            }
            let live: Vec<i32> = state
                .live_versions(subject)
                .iter()
                .map(|(v, _)| *v)
                .collect();
            (all, live)
        };
        if permanent {
            if !live.is_empty() {
                return Err(RegistryError::SubjectNotSoftDeleted(subject.to_string()));
            }
            for version in &versions {
                self.remove_version(subject, *version).await?;
            }
            Ok(versions)
        } else {
            if live.is_empty() {
                return Err(RegistryError::SubjectSoftDeleted(subject.to_string()));
            }
            for version in &live {
                self.soft_delete(subject, *version).await?;
            }
            Ok(live)
        }
    }

    /// Deletes one version: soft, or, once soft-deleted, `permanent`.
    pub async fn delete_version(
        &self,
        subject: &str,
        which: VersionRef,
        permanent: bool,
    ) -> Result<i32, RegistryError> {
        self.ready()?;
        let _one = self.writing.lock().await;
        let found = self.version(subject, which, permanent)?;
        if permanent {
            if !found.deleted {
                return Err(RegistryError::VersionNotSoftDeleted(subject.to_string()));
            }
            self.remove_version(subject, found.version).await?;
        } else {
            if found.deleted {
                return Err(RegistryError::VersionSoftDeleted(subject.to_string()));
            }
            self.soft_delete(subject, found.version).await?;
        }
        Ok(found.version)
    }

    async fn soft_delete(&self, subject: &str, version: i32) -> Result<(), RegistryError> {
        let key = Key::Deleted {
            subject: subject.to_string(),
            version,
        };
        self.write(&key, Some(&serde_json::json!({}))).await
    }

    /// Tombstones a version's claim, the claims that lost to it, and its deletion mark.
    async fn remove_version(&self, subject: &str, version: i32) -> Result<(), RegistryError> {
        let keys: Vec<String> = {
            let state = self.read();
            let mut keys: Vec<String> = state
                .subjects
                .get(subject)
                .and_then(|v| v.get(&version))
                .map(|e| e.key.clone())
                .into_iter()
                .collect();
            if let Some(rejected) = state.rejected.get(&(subject.to_string(), version)) {
                keys.extend(rejected.iter().cloned());
            }
            keys
        };
        for key in keys {
            if let Ok(key) = serde_json::from_str::<Key>(&key) {
                self.write(&key, None).await?;
            }
        }
        let mark = Key::Deleted {
            subject: subject.to_string(),
            version,
        };
        self.write(&mark, None).await
    }

    /// The compatibility level of `subject` (its own, when `own`; else falling back to the
    /// registry's), or the registry's (`None`).
    pub fn compatibility(
        &self,
        subject: Option<&str>,
        own: bool,
    ) -> Result<Compatibility, RegistryError> {
        let state = self.read();
        match subject {
            None => Ok(state.config.unwrap_or_default()),
            Some(subject) => match state.subject_config.get(subject) {
                Some(level) => Ok(*level),
                None if own => Err(RegistryError::SubjectConfigNotFound(subject.to_string())),
                None => Ok(state.config.unwrap_or_default()),
            },
        }
    }

    /// Sets the compatibility level of `subject`, or the registry's.
    pub async fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: Compatibility,
    ) -> Result<(), RegistryError> {
        if let Some(subject) = subject {
            valid_subject(subject)?;
        }
        self.ready()?;
        let key = Key::Config {
            subject: subject.map(str::to_string),
        };
        let value = serde_json::to_value(ConfigRecord {
            compatibility_level: level,
        })
        .expect("records serialize");
        self.write(&key, Some(&value)).await
    }

    /// Removes `subject`'s own level (it follows the registry's again); the level it had.
    pub async fn clear_compatibility(&self, subject: &str) -> Result<Compatibility, RegistryError> {
        self.ready()?;
        let previous = self.compatibility(Some(subject), true)?;
        let key = Key::Config {
            subject: Some(subject.to_string()),
        };
        self.write(&key, None).await?;
        Ok(previous)
    }
}

/// A subject name: 1 to 255 characters, no control characters (C0, DEL or C1).
pub fn valid_subject(subject: &str) -> Result<(), RegistryError> {
    let length = subject.chars().count();
    if length == 0 || length > 255 || subject.chars().any(char::is_control) {
        return Err(RegistryError::InvalidSubject);
    }
    Ok(())
}
