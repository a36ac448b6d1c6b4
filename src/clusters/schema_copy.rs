//! Schema ids across clusters (migrate with `include_schemas`): a wire-format record names
//! its schema by an id of the source cluster's registry, which means nothing — or another
//! schema — on the target's. Before a topic is copied, every version of its subjects
//! (`<topic>-key`, `<topic>-value`; renamed with the topic) is registered on the target's
//! registry in order; as records are copied, the id inside each one is replaced by the id
//! its schema has on the target (a schema a record names but no subject of the topic holds
//! is registered under the subject it has on the source).

use std::collections::HashMap;

use super::ClusterRegistry;
use super::operations::{SchemaResult, Stop};
use crate::kafka::wire;
use crate::schemas::Registry;
use crate::schemas::registry::RegistryError;

/// The two registries and the ids carried so far.
pub(super) struct SchemaCopy {
    source: Registry,
    target: Registry,
    ids: HashMap<u32, u32>,
    /// What was registered on the target, in order.
    pub results: Vec<SchemaResult>,
}

fn failed(side: &str, error: RegistryError) -> Stop {
    Stop::Failed(format!("include_schemas: the {side} registry: {error}"))
}

impl SchemaCopy {
    /// The registries of the source and target clusters; both must have one.
    pub async fn between(
        registry: &ClusterRegistry,
        source_id: &str,
        target_id: &str,
    ) -> Result<SchemaCopy, Stop> {
        let mut sides = Vec::with_capacity(2);
        for (side, id) in [("source", source_id), ("target", target_id)] {
            let cluster = registry
                .get(id)
                .ok_or_else(|| Stop::Failed(format!("no cluster {id:?} is registered")))?;
            let is_home = registry.is_home(&cluster).await?;
            let found = registry
                .schema_registry(&cluster, is_home)
                .map_err(|why| {
                    Stop::Failed(format!(
                        "include_schemas: the {side} cluster's registry: {why}"
                    ))
                })?
                .ok_or_else(|| {
                    Stop::Failed(format!(
                        "include_schemas: the {side} cluster {id} has no schema registry \
                         (its definition's schema_registry)"
                    ))
                })?;
            sides.push(found);
        }
        let target = sides.pop().expect("two sides");
        let source = sides.pop().expect("two sides");
        Ok(SchemaCopy {
            source,
            target,
            ids: HashMap::new(),
            results: Vec::new(),
        })
    }

    /// Registers every version of `topic`'s subjects on the target, under `target_topic`'s.
    pub async fn subjects(&mut self, topic: &str, target_topic: &str) -> Result<(), Stop> {
        for part in ["key", "value"] {
            let subject = format!("{topic}-{part}");
            let versions = match self.source.versions(&subject).await {
                Ok(versions) => versions,
                Err(RegistryError::SubjectNotFound(_)) => continue,
                Err(error) => return Err(failed("source", error)),
            };
            let renamed = format!("{target_topic}-{part}");
            for version in versions {
                self.carry(version.id, &renamed).await?;
            }
        }
        Ok(())
    }

    /// Rewrites the schema id of a wire-format key or value (`bytes`) to the target's;
    /// anything else is left as it is.
    pub async fn rewrite(
        &mut self,
        bytes: &mut [u8],
        topic: &str,
        target_topic: &str,
    ) -> Result<(), Stop> {
        let Some((id, _)) = wire::split(bytes) else {
            return Ok(());
        };
        let target_id = match self.ids.get(&id) {
            Some(known) => *known,
            None => {
                let subject = match self.source.subject_of(id).await {
                    Some(subject) => rename(&subject, topic, target_topic),
                    None => {
                        return Err(Stop::Failed(format!(
                            "include_schemas: a record of {topic} names schema {id}, which the \
                             source's registry does not know"
                        )));
                    }
                };
                self.carry(id, &subject).await?
            }
        };
        bytes[1..wire::HEADER_LEN].copy_from_slice(&target_id.to_be_bytes());
        Ok(())
    }

    /// Registers the source's schema `id` under `subject` on the target: its id there.
    async fn carry(&mut self, id: u32, subject: &str) -> Result<u32, Stop> {
        if let Some(known) = self.ids.get(&id) {
            return Ok(*known);
        }
        let schema = self
            .source
            .schema(id)
            .await
            .map_err(|e| failed("source", e))?;
        if !schema.text.references.is_empty() {
            return Err(Stop::Failed(format!(
                "include_schemas: schema {id} refers to other schemas, which are not carried \
                 across clusters"
            )));
        }
        let target_id = self
            .target
            .register(subject, schema.text.clone())
            .await
            .map_err(|e| failed("target", e))?;
        self.ids.insert(id, target_id);
        self.results.push(SchemaResult {
            subject: subject.to_string(),
            source_id: id,
            target_id,
        });
        Ok(target_id)
    }
}

/// A topic's subject, renamed with the topic.
fn rename(subject: &str, topic: &str, target_topic: &str) -> String {
    for part in ["key", "value"] {
        if subject == format!("{topic}-{part}") {
            return format!("{target_topic}-{part}");
        }
    }
    subject.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_s_subjects_follow_the_topic_and_others_keep_their_names() {
        assert_eq!(rename("users-value", "users", "people"), "people-value");
        assert_eq!(rename("users-key", "users", "people"), "people-key");
        assert_eq!(rename("shared-type", "users", "people"), "shared-type");
    }
}
