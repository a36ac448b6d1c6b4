//! `GET /api/operations/compare`: what differs between two clusters — topics on one side
//! only, topics on both whose partition count or configs differ (each differing config with
//! both values), consumer groups on one side only, and with `include_data` the message
//! count of every topic on each side.
//!
//! Configs are compared by their effective values, over every name either side reports: a
//! name one side does not report shows `null` there, and a broker default that differs
//! between the clusters shows as a difference too (it is one, for a topic moved across).

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clusters::ClustersState;
use crate::clusters::registry::Clients;
use crate::http::auth::{Scope, scoped};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::QueryParams;
use crate::kafka::admin::{KafkaAdmin, TopicDetails, TopicSummary};
use crate::schemas::Registry;
use crate::schemas::registry::RegistryError;
use axum::extract::FromRef;

/// The comparison's route.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    ClustersState: FromRef<S>,
{
    OpenApiRouter::new().routes(scoped(Scope::AdminRead, routes!(compare)))
}

/// Query of the comparison.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CompareQuery {
    /// The cluster taken as the reference.
    pub source_cluster: String,
    /// The cluster compared with it.
    pub target_cluster: String,
    /// Also count the messages of every topic on each side (from watermarks).
    #[serde(default)]
    pub include_data: bool,
}

/// One value on each side.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Sides<T> {
    /// In the source cluster.
    pub source: T,
    /// In the target cluster.
    pub target: T,
}

/// A config whose effective value differs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConfigDifference {
    /// Config name.
    pub name: String,
    /// Its value in the source cluster (`null`: not reported there).
    pub source: Option<String>,
    /// Its value in the target cluster (`null`: not reported there).
    pub target: Option<String>,
}

/// A topic on both sides that is not the same.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TopicDifference {
    /// Topic name.
    pub topic: String,
    /// Partition counts, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub partitions: Option<Sides<usize>>,
    /// Configs whose values differ.
    pub configs: Vec<ConfigDifference>,
}

/// Counts of the comparison.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CompareSummary {
    /// Topics in the source cluster (Kafka's internal ones left out).
    pub topics_in_source: usize,
    /// Topics in the target cluster.
    pub topics_in_target: usize,
    /// Topics on both sides.
    pub topics_in_both: usize,
    /// Of those, the ones that are the same.
    pub identical_topics: usize,
    /// Whether the clusters hold the same topics, alike, and the same groups.
    pub equal: bool,
}

/// What differs between two clusters.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Comparison {
    /// The reference cluster's id.
    pub source_cluster: String,
    /// The other cluster's id.
    pub target_cluster: String,
    /// Topics only the source has.
    pub topics_only_in_source: Vec<String>,
    /// Topics only the target has.
    pub topics_only_in_target: Vec<String>,
    /// Topics on both sides that differ.
    pub topics_with_different_config: Vec<TopicDifference>,
    /// Consumer groups only the source has.
    pub consumer_groups_only_in_source: Vec<String>,
    /// Consumer groups only the target has.
    pub consumer_groups_only_in_target: Vec<String>,
    /// With `include_data`: messages per topic on each side (`null` where it is absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub message_counts: Option<BTreeMap<String, Sides<Option<i64>>>>,
    /// Schema registry subjects, when both clusters have a registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schemas: Option<SchemaComparison>,
    /// Counts.
    pub summary: CompareSummary,
}

/// How two clusters' schema registries differ: subjects on one side only, and subjects on
/// both whose versions differ (a version on one side only, or another schema; ids are each
/// registry's own and not compared).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SchemaComparison {
    /// Subjects only the source's registry has.
    pub subjects_only_in_source: Vec<String>,
    /// Subjects only the target's registry has.
    pub subjects_only_in_target: Vec<String>,
    /// Subjects on both sides whose versions differ.
    pub subjects_that_differ: Vec<SubjectDifference>,
    /// Why the registries could not be compared, when they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A subject whose versions differ between the registries.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SubjectDifference {
    /// The subject.
    pub subject: String,
    /// Its versions on the source.
    pub source_versions: Vec<i32>,
    /// Its versions on the target.
    pub target_versions: Vec<i32>,
    /// Versions on one side only, or with another schema on each side.
    pub differing_versions: Vec<i32>,
}

/// Compare two clusters.
///
/// Topics on one side only, topics whose partitions or configs differ (by effective value,
/// each difference with both values), consumer groups on one side only, and with
/// `include_data=true` message counts per topic. Kafka's internal topics are left out.
/// When both clusters have a schema registry, its subjects on one side only and the
/// subjects whose versions differ.
#[utoipa::path(get, path = "/api/operations/compare", tag = "operations", params(CompareQuery),
    responses(
        (status = 200, description = "The differences", body = Comparison),
        (status = 400, description = "Bad query (`invalid_query`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such cluster (`cluster_not_found`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn compare(
    State(state): State<ClustersState>,
    QueryParams(query): QueryParams<CompareQuery>,
) -> Result<Json<Comparison>, ApiError> {
    let source = clients(&state, &query.source_cluster)?;
    let target = clients(&state, &query.target_cluster)?;
    let (source_side, target_side) =
        futures::future::try_join(Side::read(&source.admin), Side::read(&target.admin)).await?;
    let source_names: BTreeSet<&String> = source_side.topics.keys().collect();
    let target_names: BTreeSet<&String> = target_side.topics.keys().collect();
    let both: Vec<&String> = source_names.intersection(&target_names).copied().collect();
    let (source_details, target_details) = futures::future::try_join(
        describe_all(&source.admin, &both),
        describe_all(&target.admin, &both),
    )
    .await?;
    let differences: Vec<TopicDifference> = both
        .iter()
        .zip(source_details.iter().zip(&target_details))
        .filter_map(|(name, (s, t))| difference(name, s, t))
        .collect();
    let message_counts = query.include_data.then(|| {
        source_names
            .union(&target_names)
            .map(|name| {
                let count = |side: &Side| side.topics.get(*name).map(|t| t.message_count);
                (
                    (*name).clone(),
                    Sides {
                        source: count(&source_side),
                        target: count(&target_side),
                    },
                )
            })
            .collect()
    });
    let only = |a: &BTreeSet<&String>, b: &BTreeSet<&String>| -> Vec<String> {
        a.difference(b).map(|s| (*s).clone()).collect()
    };
    let groups_only = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> Vec<String> {
        a.difference(b).cloned().collect()
    };
    let schemas = compare_schemas(&state, &query.source_cluster, &query.target_cluster).await?;
    let comparison = Comparison {
        schemas,
        topics_only_in_source: only(&source_names, &target_names),
        topics_only_in_target: only(&target_names, &source_names),
        consumer_groups_only_in_source: groups_only(&source_side.groups, &target_side.groups),
        consumer_groups_only_in_target: groups_only(&target_side.groups, &source_side.groups),
        summary: CompareSummary {
            topics_in_source: source_names.len(),
            topics_in_target: target_names.len(),
            topics_in_both: both.len(),
            identical_topics: both.len() - differences.len(),
            equal: false,
        },
        topics_with_different_config: differences,
        message_counts,
        source_cluster: query.source_cluster,
        target_cluster: query.target_cluster,
    };
    let equal = comparison.topics_only_in_source.is_empty()
        && comparison.topics_only_in_target.is_empty()
        && comparison.topics_with_different_config.is_empty()
        && comparison.consumer_groups_only_in_source.is_empty()
        && comparison.consumer_groups_only_in_target.is_empty()
        && comparison.schemas.as_ref().is_none_or(|s| {
            s.subjects_only_in_source.is_empty()
                && s.subjects_only_in_target.is_empty()
                && s.subjects_that_differ.is_empty()
                && s.error.is_none()
        });
    Ok(Json(Comparison {
        summary: CompareSummary {
            equal,
            ..comparison.summary.clone()
        },
        ..comparison
    }))
}

/// The two clusters' registries compared, when both have one.
async fn compare_schemas(
    state: &ClustersState,
    source: &str,
    target: &str,
) -> Result<Option<SchemaComparison>, ApiError> {
    let mut sides = Vec::with_capacity(2);
    for id in [source, target] {
        let cluster = state
            .clusters
            .get(id)
            .ok_or_else(|| ApiError::ClusterNotFound(id.to_string()))?;
        let is_home = state.clusters.is_home(&cluster).await?;
        match state.schema_registry(&cluster, is_home)? {
            Some(registry) => sides.push(registry),
            None => return Ok(None),
        }
    }
    let read = |registry: Registry| async move {
        let mut subjects = BTreeMap::new();
        for subject in registry.subjects().await? {
            let versions: BTreeMap<i32, String> = registry
                .versions(&subject)
                .await?
                .into_iter()
                .map(|v| (v.version, v.schema.fingerprint.clone()))
                .collect();
            subjects.insert(subject, versions);
        }
        Ok::<_, RegistryError>(subjects)
    };
    let (source_side, target_side) =
        match futures::future::try_join(read(sides[0].clone()), read(sides[1].clone())).await {
            Ok(both) => both,
            Err(error) => {
                return Ok(Some(SchemaComparison {
                    error: Some(format!("a registry could not be read: {error}")),
                    ..SchemaComparison::default()
                }));
            }
        };
    let only = |a: &BTreeMap<String, BTreeMap<i32, String>>,
                b: &BTreeMap<String, BTreeMap<i32, String>>| {
        a.keys().filter(|k| !b.contains_key(*k)).cloned().collect()
    };
    let subjects_that_differ = source_side
        .iter()
        .filter_map(|(subject, s)| {
            let t = target_side.get(subject)?;
            let numbers: BTreeSet<i32> = s.keys().chain(t.keys()).copied().collect();
            let differing: Vec<i32> = numbers
                .into_iter()
                .filter(|v| s.get(v) != t.get(v))
                .collect();
            (!differing.is_empty()).then(|| SubjectDifference {
                subject: subject.clone(),
                source_versions: s.keys().copied().collect(),
                target_versions: t.keys().copied().collect(),
                differing_versions: differing,
            })
        })
        .collect();
    Ok(Some(SchemaComparison {
        subjects_only_in_source: only(&source_side, &target_side),
        subjects_only_in_target: only(&target_side, &source_side),
        subjects_that_differ,
        error: None,
    }))
}

/// The clients of a cluster named in the query.
fn clients(state: &ClustersState, id: &str) -> Result<Clients, ApiError> {
    let cluster = state
        .clusters
        .get(id)
        .ok_or_else(|| ApiError::ClusterNotFound(id.to_string()))?;
    Ok(state.clusters.clients(&cluster)?)
}

/// One cluster's topics and groups.
struct Side {
    topics: BTreeMap<String, TopicSummary>,
    groups: BTreeSet<String>,
}

impl Side {
    async fn read(admin: &KafkaAdmin) -> Result<Side, ApiError> {
        let (topics, groups) =
            futures::future::try_join(admin.list_topics(None, false), admin.list_groups()).await?;
        Ok(Side {
            topics: topics.into_iter().map(|t| (t.name.clone(), t)).collect(),
            groups: groups.into_iter().map(|g| g.group_id).collect(),
        })
    }
}

/// Describes topics, a few at a time.
async fn describe_all(
    admin: &KafkaAdmin,
    names: &[&String],
) -> Result<Vec<TopicDetails>, ApiError> {
    let mut details = Vec::with_capacity(names.len());
    for chunk in names.chunks(8) {
        let described =
            futures::future::try_join_all(chunk.iter().map(|name| admin.describe_topic(name)))
                .await?;
        details.extend(described);
    }
    Ok(details)
}

/// How a topic differs between the sides, if it does.
fn difference(name: &str, source: &TopicDetails, target: &TopicDetails) -> Option<TopicDifference> {
    let partitions = (source.partitions.len() != target.partitions.len()).then_some(Sides {
        source: source.partitions.len(),
        target: target.partitions.len(),
    });
    let names: BTreeSet<&String> = source.configs.keys().chain(target.configs.keys()).collect();
    let configs: Vec<ConfigDifference> = names
        .into_iter()
        .filter_map(|config| {
            let value = |d: &TopicDetails| d.configs.get(config).and_then(|c| c.value.clone());
            let (s, t) = (value(source), value(target));
            (s != t).then(|| ConfigDifference {
                name: config.clone(),
                source: s,
                target: t,
            })
        })
        .collect();
    (partitions.is_some() || !configs.is_empty()).then(|| TopicDifference {
        topic: name.to_string(),
        partitions,
        configs,
    })
}
