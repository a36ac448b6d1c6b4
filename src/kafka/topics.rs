//! Topic helpers: create the topics a service needs, and check which are missing. Metadata
//! calls block inside librdkafka, so they run on tokio's blocking pool.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer as RdBaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};

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

/// What [`watermarks`] read: the cluster's id and every partition's (low, high) watermarks.
#[derive(Debug, Default)]
pub struct Watermarks {
    /// The cluster's id, when the cluster gives one.
    pub cluster_id: Option<String>,
    /// (topic, partition, low, high) of every partition of the topics asked for; none for a
    /// topic that does not exist.
    pub partitions: Vec<(String, i32, i64, i64)>,
}

/// Low and high watermarks of every partition of `topics`, and the cluster's id, read with
/// one throwaway consumer client that joins no group: one metadata request per topic, and
/// one offsets request per broker for each end (not two per partition). The id comes from
/// the metadata just read, so asking for it never waits for a refresh.
pub async fn watermarks(
    client: &ClientSettings,
    topics: &[&str],
    timeout: Duration,
) -> Result<Watermarks, KafkaError> {
    let consumer: RdBaseConsumer<ClientContext> = client
        .client_config(&[])
        .create_with_context(ClientContext::default())?;
    let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut ends = TopicPartitionList::new();
        for topic in &topics {
            let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
            for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
                ends.add_partition(topic, partition.id());
            }
        }
        // Cached from the metadata just read; asked again (waiting) only if it was not.
        let cluster_id = consumer
            .client()
            .fetch_cluster_id(Duration::ZERO)
            .or_else(|| consumer.client().fetch_cluster_id(timeout));
        if ends.count() == 0 {
            return Ok(Watermarks {
                cluster_id,
                partitions: Vec::new(),
            });
        }
        let at = |offset: Offset| -> Result<TopicPartitionList, KafkaError> {
            let mut asked = ends.clone();
            asked.set_all_offsets(offset)?;
            let answered = consumer.offsets_for_times(asked, timeout)?;
            match answered.elements().iter().find_map(|e| e.error().err()) {
                Some(error) => Err(error),
                None => Ok(answered),
            }
        };
        let (lows, highs) = (at(Offset::Beginning)?, at(Offset::End)?);
        let offset_of = |list: &TopicPartitionList, topic: &str, partition: i32| match list
            .find_partition(topic, partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(offset)) => Ok(offset),
            _ => Err(KafkaError::OffsetFetch(RDKafkaErrorCode::UnknownPartition)),
        };
        let partitions = ends
            .elements()
            .iter()
            .map(|e| {
                let (topic, partition) = (e.topic(), e.partition());
                Ok((
                    topic.to_string(),
                    partition,
                    offset_of(&lows, topic, partition)?,
                    offset_of(&highs, topic, partition)?,
                ))
            })
            .collect::<Result<_, KafkaError>>()?;
        Ok(Watermarks {
            cluster_id,
            partitions,
        })
    })
    .await
    .unwrap_or(Err(KafkaError::Canceled))
}
