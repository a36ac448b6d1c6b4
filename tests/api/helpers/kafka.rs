//! Plain rdkafka clients to see what landed on a topic, and to write what the service would
//! not.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: serde_json::Value,
    /// The value's bytes as they are.
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads `topic` from the beginning of every partition without joining a group, until at
/// least `expected` records arrived and no more come for a moment (or 15 s pass).
pub async fn read_topic(bootstrap: &str, topic: &str, expected: usize) -> Vec<Record> {
    let bootstrap = bootstrap.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let metadata = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(5))
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        for p in metadata.topics()[0].partitions() {
            assignment
                .add_partition_offset(&topic, p.id(), Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut last_arrival = Instant::now();
        let mut records = Vec::new();
        while Instant::now() < deadline {
            let settled = last_arrival.elapsed() > Duration::from_millis(700);
            if records.len() >= expected && settled {
                break;
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    last_arrival = Instant::now();
                    let headers = m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    let value =
                                        h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                                    (h.key.to_string(), value.unwrap_or_default())
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let value = m
                        .payload()
                        .map(|p| {
                            serde_json::from_slice(p)
                                .unwrap_or_else(|_| String::from_utf8_lossy(p).into())
                        })
                        .unwrap_or(serde_json::Value::Null);
                    records.push(Record {
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                        value,
                        payload: m.payload().map(<[u8]>::to_vec),
                        headers,
                    });
                }
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
        records
    })
    .await
    .unwrap()
}

/// Writes raw records to a topic with a plain rdkafka producer.
pub async fn produce_raw(bootstrap: &str, topic: &str, records: &[(Option<&str>, &[u8])]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (key, payload) in records {
        let mut record = FutureRecord::<str, [u8]>::to(topic).payload(*payload);
        if let Some(key) = key {
            record = record.key(*key);
        }
        producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}
