//! Topic helpers: create the topics a service needs, and check which are missing. Metadata
//! calls block inside librdkafka, so they run on tokio's blocking pool.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer as RdBaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer};

use super::{ClientContext, ClientSettings};

/// A topic to create when it is missing.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    /// Name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication: i32,
    /// Topic configs, e.g. `cleanup.policy=compact`.
    pub configs: Vec<(String, String)>,
}

/// Creates each topic that does not exist yet; existing topics are left as they are.
pub async fn ensure_topics(
    client: &ClientSettings,
    specs: &[TopicSpec],
    timeout: Duration,
) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client.client_config(&[]).create()?;
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .map(|spec| {
            spec.configs.iter().fold(
                NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(spec.replication),
                ),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    let outcome = admin
        .create_topics(&new_topics, &options)
        .await
        .and_then(|results| {
            for result in results {
                match result {
                    Ok(name) => tracing::info!(topic = %name, "created topic"),
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((name, code)) => {
                        tracing::error!(topic = %name, error = %code, "cannot create topic");
                        return Err(KafkaError::AdminOp(code));
                    }
                }
            }
            Ok(())
        });
    // The admin client's drop joins its polling thread; keep that off the async workers.
    tokio::task::spawn_blocking(move || drop(admin)).await.ok();
    outcome
}

/// The names among `wanted` that the cluster does not have, or an error when the cluster
/// cannot be asked.
pub async fn missing_topics(
    producer: &FutureProducer<ClientContext>,
    wanted: &[String],
    timeout: Duration,
) -> Result<Vec<String>, KafkaError> {
    let producer = producer.clone();
    let wanted = wanted.to_vec();
    tokio::task::spawn_blocking(move || {
        let metadata = producer.client().fetch_metadata(None, timeout)?;
        Ok(wanted
            .into_iter()
            .filter(|name| {
                !metadata
                    .topics()
                    .iter()
                    .any(|t| t.name() == name && t.error().is_none())
            })
            .collect())
    })
    .await
    .unwrap_or(Err(KafkaError::Canceled))
}

/// Low and high watermarks of every partition of `topic`, read with a throwaway consumer
/// client that joins no group.
pub async fn watermarks(
    client: &ClientSettings,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<(i32, i64, i64)>, KafkaError> {
    let consumer: RdBaseConsumer<ClientContext> = client
        .client_config(&[])
        .create_with_context(ClientContext::default())?;
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
        let partitions = metadata
            .topics()
            .first()
            .map(|t| t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>())
            .unwrap_or_default();
        partitions
            .into_iter()
            .map(|p| {
                consumer
                    .fetch_watermarks(&topic, p, timeout)
                    .map(|(lo, hi)| (p, lo, hi))
            })
            .collect()
    })
    .await
    .unwrap_or(Err(KafkaError::Canceled))
}
