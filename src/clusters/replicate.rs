//! Replicate: a source's topic structure (partitions, and the configs set on each topic)
//! made on every target, the replication factor clamped to each target's broker count.

use std::collections::BTreeMap;

use tokio_util::sync::CancellationToken;

use super::ClusterRegistry;
use super::operations::{HEARTBEAT, Operation, Operations, Stop, TopicResult, admin_of, safe};
use crate::kafka::admin::{AdminError, ConfigValue, KafkaAdmin, TopicRequest};

pub(super) async fn replicate(
    operation: &mut Operation,
    registry: &ClusterRegistry,
    operations: &Operations,
    cancel: &CancellationToken,
) -> Result<(), Stop> {
    let source = admin_of(registry, &operation.source_cluster_id)?;
    let topics = topics_of(&source, operation).await?;
    let targets = operation.target_cluster_ids.clone();
    let total = (topics.len() * targets.len()).max(1);
    let mut last_beat = std::time::Instant::now();
    for target_id in &targets {
        let target = admin_of(registry, target_id)?;
        let brokers = target.cluster().await?.brokers.len().max(1);
        for topic in &topics {
            if cancel.is_cancelled() {
                return Err(Stop::Cancelled);
            }
            let result = replicate_topic(
                &source,
                &target,
                topic,
                topic,
                target_id,
                brokers,
                operation.overwrite_configs,
                operation.dry_run,
            )
            .await;
            operation.results.push(result);
            operation.progress_percent = operation.results.len() as f64 * 100.0 / total as f64;
            if last_beat.elapsed() >= HEARTBEAT {
                operations.beat(operation).await;
                last_beat = std::time::Instant::now();
            }
        }
    }
    Ok(())
}

/// The configs set on a topic (not the broker's defaults, which stay each cluster's own),
/// secrets left out.
fn set_on_topic(configs: BTreeMap<String, ConfigValue>) -> BTreeMap<String, String> {
    configs
        .into_iter()
        .filter(|(_, c)| (c.source == "topic" || !c.is_default) && !c.is_sensitive)
        .filter_map(|(name, c)| c.value.map(|v| (name, v)))
        .collect()
}

/// The topics an operation works on: those it names, or every topic of its source (Kafka's
/// internal ones left out).
pub(super) async fn topics_of(
    source: &KafkaAdmin,
    operation: &Operation,
) -> Result<Vec<String>, Stop> {
    if !operation.topics.is_empty() {
        return Ok(operation.topics.clone());
    }
    Ok(source
        .list_topics(None, false)
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect())
}

/// Makes one topic's structure on a target: created when missing, its configs changed to
/// the source's when it exists and `overwrite_configs`; with `dry_run`, only reported.
pub(super) async fn replicate_topic(
    source: &KafkaAdmin,
    target: &KafkaAdmin,
    topic: &str,
    target_topic: &str,
    target_id: &str,
    brokers: usize,
    overwrite_configs: bool,
    dry_run: bool,
) -> TopicResult {
    let mut result = TopicResult {
        topic: topic.to_string(),
        target: target_id.to_string(),
        outcome: "failed".into(),
        partitions: 0,
        replication_factor: 0,
        replication_clamped: false,
        configs: BTreeMap::new(),
        records: 0,
        error: None,
    };
    let described = match source.describe_topic(topic).await {
        Ok(d) => d,
        Err(error) => {
            result.error = Some(safe(&error));
            return result;
        }
    };
    let wanted = described
        .partitions
        .first()
        .map_or(1, |p| p.replicas.len().max(1));
    result.partitions = described.partitions.len();
    result.replication_factor = wanted.min(brokers);
    result.replication_clamped = wanted > brokers;
    result.configs = set_on_topic(described.configs);
    let exists = match target.describe_topic(target_topic).await {
        Ok(_) => true,
        Err(AdminError::NotFound(_)) => false,
        Err(error) => {
            result.error = Some(safe(&error));
            return result;
        }
    };
    let change = match (exists, overwrite_configs, dry_run) {
        (false, _, true) => {
            result.outcome = "would_create".into();
            return result;
        }
        (true, false, _) => {
            result.outcome = "exists".into();
            return result;
        }
        (true, true, true) => {
            result.outcome = "would_update".into();
            return result;
        }
        (true, true, false) => {
            let changes = result
                .configs
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect();
            target
                .alter_topic_configs(target_topic, &changes)
                .await
                .map(|()| "updated")
        }
        (false, _, false) => target
            .create_topic(&TopicRequest {
                name: target_topic.to_string(),
                partitions: result.partitions as i32,
                replication_factor: result.replication_factor as i32,
                configs: result.configs.clone(),
            })
            .await
            .map(|()| "created"),
    };
    match change {
        Ok(outcome) => result.outcome = outcome.into(),
        Err(error) => result.error = Some(safe(&error)),
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clusters::operations::OperationStatus;
    use chrono::Utc;

    fn config(value: &str, is_default: bool, source: &str, is_sensitive: bool) -> ConfigValue {
        ConfigValue {
            value: Some(value.into()),
            is_default,
            is_sensitive,
            source: source.into(),
        }
    }

    #[test]
    fn only_configs_set_on_the_topic_are_copied() {
        let configs = BTreeMap::from([
            (
                "retention.ms".to_string(),
                config("1000", false, "topic", false),
            ),
            (
                "cleanup.policy".to_string(),
                config("delete", true, "default", false),
            ),
            (
                "segment.bytes".to_string(),
                config("1024", true, "static_broker", false),
            ),
            (
                "some.password".to_string(),
                config("x", false, "topic", true),
            ),
        ]);
        assert_eq!(
            set_on_topic(configs),
            BTreeMap::from([("retention.ms".to_string(), "1000".to_string())])
        );
    }

    #[test]
    fn a_running_operation_without_a_beat_is_shown_interrupted() {
        let now = Utc::now();
        let mut operation = Operation::new(
            crate::clusters::operations::OperationKind::Replicate,
            "a".into(),
            vec!["b".into()],
        );
        operation.status = OperationStatus::Running;
        operation.heartbeat_at = now;
        assert_eq!(
            operation.clone().seen_now().status,
            OperationStatus::Running
        );
        operation.heartbeat_at = now - chrono::Duration::seconds(60);
        assert_eq!(
            operation.clone().seen_now().status,
            OperationStatus::Interrupted
        );
        operation.status = OperationStatus::Completed;
        assert_eq!(operation.seen_now().status, OperationStatus::Completed);
    }
}
