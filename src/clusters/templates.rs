//! Cluster templates: topic defaults (partitions, replication factor, retention, cleanup,
//! compression, `min.insync.replicas`) and, for local clusters, broker settings. Three are
//! built in — `development`, `testing`, `production` — and more can be stored on the
//! compacted `orderflow.templates` topic, read by every instance like the cluster registry.
//! A topic created on a cluster registered with a template takes the template's defaults for
//! whatever the request leaves out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::kafka::BaseProducer;
use crate::kafka::table::{Row, Table, TableReader};

/// What a topic gets when its request leaves it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicDefaults {
    /// Partitions, 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub partitions: i32,
    /// Replication factor, 1 to 32.
    #[schema(minimum = 1, maximum = 32)]
    pub replication_factor: i32,
    /// Topic configs (`retention.ms`, `cleanup.policy`, `compression.type`,
    /// `min.insync.replicas`, …); a request's own configs win.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// How a local broker for a cluster of this template runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrokerDefaults {
    /// Storage engine of the local broker: `memory` or `sqlite`.
    #[schema(pattern = "^(memory|sqlite)$")]
    pub storage: String,
}

/// A template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Template {
    /// Its id, 1 to 64 of `[a-z0-9-]`.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Whether it is built in (and so cannot be deleted).
    #[serde(default)]
    pub builtin: bool,
    /// Defaults of topics created on its clusters.
    pub topic_defaults: TopicDefaults,
    /// Settings of a local broker, for local clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerDefaults>,
}

fn builtin(
    id: &str,
    name: &str,
    description: &str,
    defaults: (i32, i32, &str, &str, &str),
    storage: Option<&str>,
) -> Template {
    let (partitions, replication_factor, retention_ms, compression, min_insync) = defaults;
    Template {
        id: id.into(),
        name: name.into(),
        description: description.into(),
        builtin: true,
        topic_defaults: TopicDefaults {
            partitions,
            replication_factor,
            configs: BTreeMap::from([
                ("retention.ms".to_string(), retention_ms.to_string()),
                ("cleanup.policy".to_string(), "delete".to_string()),
                ("compression.type".to_string(), compression.to_string()),
                ("min.insync.replicas".to_string(), min_insync.to_string()),
            ]),
        },
        broker: storage.map(|s| BrokerDefaults { storage: s.into() }),
    }
}

/// The built-in templates.
pub fn builtins() -> Vec<Template> {
    vec![
        builtin(
            "development",
            "Development",
            "One partition, one replica, a day of retention; a local broker in memory",
            (1, 1, "86400000", "producer", "1"),
            Some("memory"),
        ),
        builtin(
            "testing",
            "Testing",
            "Three partitions, one replica, three days of retention (lz4); a local broker on SQLite",
            (3, 1, "259200000", "lz4", "1"),
            Some("sqlite"),
        ),
        builtin(
            "production",
            "Production",
            "Six partitions, three replicas, a week of retention (zstd), two replicas in sync for a write",
            (6, 3, "604800000", "zstd", "2"),
            None,
        ),
    ]
}

/// Why a template change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The id is taken.
    #[error("template {0:?} exists already")]
    Taken(String),
    /// No template has this id.
    #[error("no template {0:?}")]
    NotFound(String),
    /// Built-in templates cannot be deleted.
    #[error("template {0:?} is built in and cannot be deleted")]
    Builtin(String),
    /// Kafka did not take the change.
    #[error("kafka unavailable: {0}")]
    Unavailable(String),
}

impl Row for Template {
    type Record = Template;

    fn from_record(id: &str, mut template: Template) -> Option<Template> {
        if builtins().iter().any(|b| b.id == id) {
            tracing::warn!(template = id, "record for a built-in template ignored");
            return None;
        }
        template.builtin = false;
        Some(template)
    }
}

/// The built-in templates and the stored ones.
pub struct Templates {
    stored: Table<Template>,
}

impl Templates {
    /// Templates stored on `topic`.
    pub fn new(
        topic: String,
        reader: Arc<TableReader>,
        writer: BaseProducer<Template>,
        timeout: Duration,
    ) -> Self {
        Templates {
            stored: Table::new("template", topic, reader, writer, timeout),
        }
    }

    /// Whether every template stored before this instance started is known.
    pub fn is_caught_up(&self) -> bool {
        self.stored.is_caught_up()
    }

    /// Applies one record of the templates topic.
    pub fn apply(&self, id: &str, value: Option<&[u8]>) {
        self.stored.apply(id, value);
    }

    /// Every template: built-in ones first, then the stored ones by id.
    pub fn list(&self) -> Vec<Template> {
        builtins().into_iter().chain(self.stored.rows()).collect()
    }

    /// The template with this id.
    pub fn get(&self, id: &str) -> Option<Template> {
        builtins()
            .into_iter()
            .find(|t| t.id == id)
            .or_else(|| self.stored.get(id))
    }

    /// Stores a new template and waits until this instance has read it back.
    pub async fn create(&self, template: Template) -> Result<(), TemplateError> {
        if self.get(&template.id).is_some() {
            return Err(TemplateError::Taken(template.id));
        }
        self.stored
            .put(&template.id, &template)
            .await
            .map_err(|e| TemplateError::Unavailable(e.to_string()))
    }

    /// Deletes a stored template (a tombstone).
    pub async fn remove(&self, id: &str) -> Result<(), TemplateError> {
        match self.get(id) {
            None => return Err(TemplateError::NotFound(id.into())),
            Some(t) if t.builtin => return Err(TemplateError::Builtin(id.into())),
            Some(_) => {}
        }
        self.stored
            .delete(id)
            .await
            .map_err(|e| TemplateError::Unavailable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtins_are_development_testing_and_production() {
        let ids: Vec<String> = builtins().into_iter().map(|t| t.id).collect();
        assert_eq!(ids, ["development", "testing", "production"]);
        let production = builtins().pop().unwrap();
        assert_eq!(production.topic_defaults.replication_factor, 3);
        assert_eq!(
            production.topic_defaults.configs["min.insync.replicas"],
            "2"
        );
        assert!(
            production.broker.is_none(),
            "production clusters are never local"
        );
    }
}
