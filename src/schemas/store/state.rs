//! The registry's state as the topic's records make it, and the rule that judges claims in
//! the topic's order (see the parent module).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::schemas::compat::Compatibility;
use crate::schemas::registry::RegistryError;
use crate::schemas::{Reference, Schema, SchemaText, SchemaType};

/// A record's key on the topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "keytype", rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum Key {
    /// A claim: this schema is this subject's version, with this id.
    Schema {
        subject: String,
        version: i32,
        fingerprint: String,
        id: u32,
    },
    /// The subject's version is soft-deleted (a tombstone undoes it).
    Deleted { subject: String, version: i32 },
    /// A compatibility level: the registry's (no subject) or a subject's.
    Config { subject: Option<String> },
}

impl Key {
    pub(super) fn text(&self) -> String {
        serde_json::to_string(self).expect("keys serialize")
    }
}

/// A claim's value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SchemaRecord {
    pub(super) schema: String,
    #[serde(rename = "schemaType", default)]
    pub(super) schema_type: SchemaType,
    #[serde(default)]
    pub(super) references: Vec<Reference>,
}

/// A compatibility record's value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ConfigRecord {
    #[serde(rename = "compatibilityLevel")]
    pub(super) compatibility_level: Compatibility,
}

/// One accepted version.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) id: u32,
    pub(super) key: String,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) subjects: BTreeMap<String, BTreeMap<i32, Entry>>,
    pub(super) ids: BTreeMap<u32, Arc<Schema>>,
    pub(super) by_fingerprint: HashMap<String, u32>,
    /// Accepted claims' keys.
    pub(super) accepted: HashMap<String, (String, i32)>,
    /// Rejected claims' keys, by the subject version they claimed.
    pub(super) rejected: HashMap<(String, i32), BTreeSet<String>>,
    pub(super) deleted: BTreeSet<(String, i32)>,
    pub(super) max_id: u32,
    pub(super) max_version: HashMap<String, i32>,
    pub(super) config: Option<Compatibility>,
    pub(super) subject_config: BTreeMap<String, Compatibility>,
}

impl State {
    pub(super) fn is_deleted(&self, subject: &str, version: i32) -> bool {
        self.deleted.contains(&(subject.to_string(), version))
    }

    pub(super) fn live_versions(&self, subject: &str) -> Vec<(i32, &Entry)> {
        self.subjects
            .get(subject)
            .map(|versions| {
                versions
                    .iter()
                    .filter(|(v, _)| !self.is_deleted(subject, **v))
                    .map(|(v, e)| (*v, e))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn level(&self, subject: &str) -> Compatibility {
        self.subject_config
            .get(subject)
            .copied()
            .or(self.config)
            .unwrap_or_default()
    }

    pub(super) fn resolve(
        &self,
        references: &[Reference],
    ) -> Result<Vec<Arc<Schema>>, RegistryError> {
        references
            .iter()
            .map(|r| {
                self.subjects
                    .get(&r.subject)
                    .and_then(|versions| versions.get(&r.version))
                    .and_then(|entry| self.ids.get(&entry.id).cloned())
                    .ok_or_else(|| {
                        RegistryError::InvalidSchema(format!(
                            "reference {:?}: subject {:?} has no version {}",
                            r.name, r.subject, r.version
                        ))
                    })
            })
            .collect()
    }

    /// Judges a claim read from the topic, in the topic's order.
    pub(super) fn claim(
        &mut self,
        key: &str,
        subject: String,
        version: i32,
        fingerprint: &str,
        id: u32,
        record: SchemaRecord,
    ) {
        if self.accepted.contains_key(key) {
            return;
        }
        let taken = self
            .subjects
            .get(&subject)
            .is_some_and(|versions| versions.contains_key(&version));
        let id_elsewhere = self
            .ids
            .get(&id)
            .is_some_and(|s| s.fingerprint != fingerprint);
        let other_id = self
            .by_fingerprint
            .get(fingerprint)
            .is_some_and(|&known| known != id);
        let duplicate = self.live_versions(&subject).iter().any(|(_, e)| {
            self.ids
                .get(&e.id)
                .is_some_and(|s| s.fingerprint == fingerprint)
        });
        let schema = match self.ids.get(&id) {
            Some(known) if !id_elsewhere => Ok(known.clone()),
            _ => self.resolve(&record.references).and_then(|referenced| {
                let text = SchemaText {
                    schema: record.schema,
                    schema_type: record.schema_type,
                    references: record.references,
                };
                Schema::parse(text, &referenced)
                    .map(Arc::new)
                    .map_err(RegistryError::InvalidSchema)
            }),
        };
        let schema = match schema {
            Ok(schema) if schema.fingerprint == fingerprint => Some(schema),
            _ => None,
        };
        match schema {
            Some(schema) if !(taken || id_elsewhere || other_id || duplicate) => {
                self.ids.insert(id, schema);
                self.by_fingerprint.insert(fingerprint.to_string(), id);
                self.max_id = self.max_id.max(id);
                let max = self.max_version.entry(subject.clone()).or_default();
                *max = (*max).max(version);
                self.accepted
                    .insert(key.to_string(), (subject.clone(), version));
                self.subjects.entry(subject).or_default().insert(
                    version,
                    Entry {
                        id,
                        key: key.to_string(),
                    },
                );
            }
            _ => {
                tracing::debug!(
                    subject,
                    version,
                    id,
                    "schema claim rejected (another came first)"
                );
                self.rejected
                    .entry((subject, version))
                    .or_default()
                    .insert(key.to_string());
            }
        }
    }

    pub(super) fn unclaim(&mut self, key: &str, subject: &str, version: i32) {
        if let Some(set) = self.rejected.get_mut(&(subject.to_string(), version)) {
            set.remove(key);
        }
        if self.accepted.remove(key).is_none() {
            return;
        }
        if let Some(versions) = self.subjects.get_mut(subject) {
            versions.remove(&version);
            if versions.is_empty() {
                self.subjects.remove(subject);
            }
        }
    }
}
