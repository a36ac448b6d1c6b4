//! `[clusters.<id>]`: clusters managed beside the home one, as config (and the registry
//! topic) holds them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `[clusters.<id>]`: a cluster managed beside the home one.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// A name for people.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// `development`, `testing`, `staging`, `production`, or any word.
    pub environment: String,
    /// Free labels to filter by.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// Raw librdkafka options for this cluster's clients; secret ones as `${ENV_NAME}`.
    #[serde(default, deserialize_with = "super::option_values")]
    #[schema(value_type = BTreeMap<String, String>)]
    pub librdkafka: BTreeMap<String, String>,
    /// The template whose topic defaults apply to topics created here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    /// Set for a cluster whose broker this service runs (`"local": true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalCluster>,
}

/// The broker of a local cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalCluster {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its storage engine URL.
    pub storage: String,
}
