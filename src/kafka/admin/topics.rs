//! Topics: list, create, describe with configs, change configs, add partitions, delete,
//! watermarks.

use std::collections::BTreeMap;

use rdkafka::admin::{AlterConfig, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::Consumer;

use super::*;

impl KafkaAdmin {
    /// Topics with counts; internal topics only when asked.
    pub async fn list_topics(
        &self,
        prefix: Option<String>,
        include_internal: bool,
    ) -> Result<Vec<TopicSummary>, AdminError> {
        self.blocking(move |consumer, timeout| {
            let metadata = consumer.fetch_metadata(None, timeout)?;
            let mut topics = Vec::new();
            for topic in metadata.topics() {
                let internal = topic.name().starts_with("__");
                if (internal && !include_internal)
                    || prefix
                        .as_deref()
                        .is_some_and(|p| !topic.name().starts_with(p))
                {
                    continue;
                }
                let mut message_count = 0;
                for p in topic.partitions() {
                    let (low, high) = consumer.fetch_watermarks(topic.name(), p.id(), timeout)?;
                    message_count += (high - low).max(0);
                }
                topics.push(TopicSummary {
                    name: topic.name().to_string(),
                    partitions: topic.partitions().len(),
                    replication_factor: topic
                        .partitions()
                        .first()
                        .map_or(0, |p| p.replicas().len()),
                    internal,
                    message_count,
                });
            }
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(topics)
        })
        .await
    }

    /// Creates a topic after checking what Kafka would refuse anyway, with clearer words.
    pub async fn create_topic(&self, request: &TopicRequest) -> Result<(), AdminError> {
        crate::kafka::validate_topic_name(&request.name).map_err(AdminError::Invalid)?;
        if !(1..=MAX_PARTITIONS).contains(&request.partitions) {
            return Err(AdminError::Invalid(format!(
                "partitions must be 1 to {MAX_PARTITIONS}"
            )));
        }
        let most = self
            .limits
            .max_partitions_per_topic
            .min(self.limits.max_partitions_per_request);
        if request.partitions > most {
            return Err(AdminError::Conflict(format!(
                "at most {most} partitions here (admin.max_partitions_per_topic, admin.max_partitions_per_request)"
            )));
        }
        for (key, value) in &request.configs {
            crate::kafka::validate_config_name(key).map_err(AdminError::Invalid)?;
            crate::kafka::validate_config_value(key, value).map_err(AdminError::Invalid)?;
        }
        if request.replication_factor < 1 {
            return Err(AdminError::Invalid(
                "replication_factor must be at least 1".into(),
            ));
        }
        let brokers = self.cluster().await?.brokers.len() as i32;
        // Kafka answers INVALID_REPLICATION_FACTOR: a request that cannot be made on this
        // cluster as it is, whatever the cluster's state (422, not 409).
        if request.replication_factor > brokers {
            return Err(AdminError::Invalid(format!(
                "replication_factor {} is more than the cluster's {brokers} brokers",
                request.replication_factor
            )));
        }
        let topic = request.configs.iter().fold(
            NewTopic::new(
                &request.name,
                request.partitions,
                TopicReplication::Fixed(request.replication_factor),
            ),
            |t, (k, v)| t.set(k, v),
        );
        let results = self.admin.create_topics(&[topic], &self.options()).await?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(from_code(Some(code), format!("topic {name}: {code}")));
            }
        }
        Ok(())
    }

    /// Partitions with leaders and watermarks, and configs.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDetails, AdminError> {
        named_topic(name)?;
        let topic = name.to_string();
        let (internal, partitions) = self
            .blocking(move |consumer, timeout| {
                let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
                let t = existing_topic(&metadata, &topic)?;
                let mut partitions = Vec::new();
                for p in t.partitions() {
                    let (low, high) = consumer.fetch_watermarks(&topic, p.id(), timeout)?;
                    partitions.push(PartitionInfo {
                        partition: p.id(),
                        leader: p.leader(),
                        replicas: p.replicas().to_vec(),
                        isr: p.isr().to_vec(),
                        low_watermark: low,
                        high_watermark: high,
                    });
                }
                partitions.sort_by_key(|p| p.partition);
                Ok((topic.starts_with("__"), partitions))
            })
            .await?;
        let configs = self.topic_configs(name).await?;
        Ok(TopicDetails {
            name: name.to_string(),
            internal,
            partitions,
            configs,
        })
    }

    async fn topic_configs(&self, name: &str) -> Result<BTreeMap<String, ConfigValue>, AdminError> {
        let results = self
            .admin
            .describe_configs(&[ResourceSpecifier::Topic(name)], &self.options())
            .await?;
        let mut configs = BTreeMap::new();
        for result in results {
            let resource = result
                .map_err(|code| from_code(Some(code), format!("configs of {name}: {code}")))?;
            for entry in resource.entries {
                configs.insert(
                    entry.name.clone(),
                    ConfigValue {
                        value: if entry.is_sensitive {
                            None
                        } else {
                            entry.value.clone()
                        },
                        is_default: entry.is_default,
                        is_sensitive: entry.is_sensitive,
                        source: config_source(&entry.source).into(),
                    },
                );
            }
        }
        Ok(configs)
    }

    /// Sets (or, with `None`, removes) topic configs, keeping every other override set on
    /// the topic. AlterConfigs replaces the whole set, so the current overrides are read
    /// first. (Sensitive overrides cannot be read back and are not carried over.)
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<(), AdminError> {
        named_topic(name)?;
        for (key, value) in changes {
            crate::kafka::validate_config_name(key).map_err(AdminError::Invalid)?;
            if let Some(value) = value {
                crate::kafka::validate_config_value(key, value).map_err(AdminError::Invalid)?;
            }
        }
        let mut desired: BTreeMap<String, String> = self
            .topic_configs(name)
            .await?
            .into_iter()
            .filter(|(_, v)| v.source == "topic" && !v.is_sensitive)
            .filter_map(|(k, v)| v.value.map(|v| (k, v)))
            .collect();
        for (key, value) in changes {
            match value {
                Some(v) => desired.insert(key.clone(), v.clone()),
                None => desired.remove(key),
            };
        }
        let alter = desired.iter().fold(
            AlterConfig::new(ResourceSpecifier::Topic(name)),
            |a, (k, v)| a.set(k, v),
        );
        for result in self.admin.alter_configs(&[alter], &self.options()).await? {
            result.map_err(|(_, code)| {
                from_code(Some(code), format!("altering configs of {name}: {code}"))
            })?;
        }
        Ok(())
    }

    /// Raises the partition count (Kafka cannot lower it).
    pub async fn add_partitions(&self, name: &str, total: usize) -> Result<(), AdminError> {
        if !(1..=MAX_PARTITIONS as usize).contains(&total) {
            return Err(AdminError::Invalid(format!(
                "count must be 1 to {MAX_PARTITIONS}"
            )));
        }
        let current = self.describe_topic(name).await?.partitions.len();
        if total <= current {
            return Err(AdminError::Conflict(format!(
                "the topic has {current} partitions; the new count must be larger"
            )));
        }
        let most = usize::try_from(self.limits.max_partitions_per_topic).unwrap_or(0);
        if total > most {
            return Err(AdminError::Conflict(format!(
                "a topic may have at most {most} partitions (admin.max_partitions_per_topic)"
            )));
        }
        let step = usize::try_from(self.limits.max_partitions_per_request).unwrap_or(0);
        if total - current > step {
            return Err(AdminError::Conflict(format!(
                "one request may add at most {step} partitions (admin.max_partitions_per_request)"
            )));
        }
        let request = NewPartitions::new(name, total);
        for result in self
            .admin
            .create_partitions(&[request], &self.options())
            .await?
        {
            result.map_err(|(_, code)| {
                from_code(Some(code), format!("adding partitions to {name}: {code}"))
            })?;
        }
        Ok(())
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        named_topic(name)?;
        for result in self.admin.delete_topics(&[name], &self.options()).await? {
            result.map_err(|(_, code)| from_code(Some(code), format!("topic {name}: {code}")))?;
        }
        Ok(())
    }

    /// Low and high watermark of every partition of a topic.
    pub async fn watermarks(&self, topic: &str) -> Result<Vec<(i32, i64, i64)>, AdminError> {
        named_topic(topic)?;
        let topic = topic.to_string();
        self.blocking(move |consumer, timeout| {
            let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
            let t = existing_topic(&metadata, &topic)?;
            t.partitions()
                .iter()
                .map(|p| {
                    let (low, high) = consumer.fetch_watermarks(&topic, p.id(), timeout)?;
                    Ok((p.id(), low, high))
                })
                .collect()
        })
        .await
    }
}

fn config_source(source: &rdkafka::admin::ConfigSource) -> &'static str {
    use rdkafka::admin::ConfigSource as S;
    match source {
        S::DynamicTopic => "topic",
        S::DynamicBroker => "broker",
        S::DynamicDefaultBroker => "cluster",
        S::StaticBroker => "static_broker",
        S::Default => "default",
        S::Unknown => "unknown",
    }
}
