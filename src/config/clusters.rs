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
    /// The schema registry its wire-format records' ids belong to (Kafbat's per-cluster
    /// registry): records decode through it, and a migrate with `include_schemas` registers
    /// schemas there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_registry: Option<RegistryEndpoint>,
}

/// A Confluent-compatible schema registry a cluster's records use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryEndpoint {
    /// Its URL (`http://registry:8081`, or the path its API is served under, such as another
    /// orderflow's `http://host:8080/schema-registry`).
    pub url: String,
    /// Basic-auth user name (or a `${ENV_NAME}` reference).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Basic-auth password: a `${ENV_NAME}` reference (never the secret itself).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
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
