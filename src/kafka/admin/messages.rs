//! Messages: browse a partition without a group.

use std::time::Instant;

use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer as RdBaseConsumer, Consumer};
use rdkafka::message::Message;

use super::*;
use crate::kafka::ClientContext;
use crate::kafka::reader::ReaderOptions;

impl KafkaAdmin {
    /// Reads up to `limit` records of one partition from `offset` (or the last `limit`
    /// records when `offset` is `None`), without joining a group or committing.
    pub async fn browse(
        &self,
        topic: &str,
        partition: i32,
        offset: Option<i64>,
        limit: usize,
    ) -> Result<Vec<BrowsedRecord>, AdminError> {
        named_topic(topic)?;
        if partition < 0 || offset.is_some_and(|o| o < 0) {
            return Err(AdminError::Invalid(
                "partition and offset must not be negative".into(),
            ));
        }
        let reader: RdBaseConsumer<ClientContext> =
            self.client.reader("browse", &ReaderOptions::default())?;
        let topic = topic.to_string();
        self.blocking(move |consumer, timeout| {
            let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
            let exists = metadata.topics().first().is_some_and(|t| {
                t.error().is_none() && t.partitions().iter().any(|p| p.id() == partition)
            });
            if !exists {
                return Err(AdminError::NotFound(format!(
                    "topic {topic} partition {partition}"
                )));
            }
            let (low, high) = consumer.fetch_watermarks(&topic, partition, timeout)?;
            let start = offset
                .unwrap_or(high - limit as i64)
                .clamp(low, high.max(low));
            let mut records = Vec::new();
            if start < high && limit > 0 {
                crate::kafka::reader::assign(
                    &reader,
                    [(topic.as_str(), partition, Offset::Offset(start))],
                )?;
                let deadline = Instant::now() + timeout;
                while records.len() < limit && Instant::now() < deadline {
                    match reader.poll(Duration::from_millis(200)) {
                        Some(Ok(m)) => {
                            records.push(browsed(&m));
                            if m.offset() + 1 >= high {
                                break;
                            }
                        }
                        Some(Err(e)) => return Err(e.into()),
                        None => {}
                    }
                }
            }
            drop(reader);
            Ok(records)
        })
        .await
    }
}

fn browsed(m: &rdkafka::message::BorrowedMessage<'_>) -> BrowsedRecord {
    let value = m.payload().map_or(serde_json::Value::Null, |p| {
        serde_json::from_slice(p)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(p).into_owned()))
    });
    let headers = crate::kafka::utf8_headers(m).into_iter().collect();
    BrowsedRecord {
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms: m.timestamp().to_millis(),
        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        value,
        headers,
    }
}
