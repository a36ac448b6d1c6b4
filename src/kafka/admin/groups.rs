//! Consumer groups: list, describe with lag, reset and commit offsets, delete.

use std::collections::BTreeMap;

use rdkafka::consumer::{BaseConsumer as RdBaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::*;
use crate::kafka::ClientContext;

impl KafkaAdmin {
    /// Consumer groups with state and member counts.
    pub async fn list_groups(&self) -> Result<Vec<GroupSummary>, AdminError> {
        self.blocking(|consumer, timeout| {
            let list = consumer.fetch_group_list(None, timeout)?;
            let mut groups: Vec<GroupSummary> = list.groups().iter().map(summary).collect();
            groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
            Ok(groups)
        })
        .await
    }

    /// Members with assignments, and per-partition committed offset, end offset and lag.
    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDetails, AdminError> {
        named_group(group_id)?;
        let id = group_id.to_string();
        let (group, members) = self
            .blocking(move |consumer, timeout| {
                let list = consumer.fetch_group_list(Some(&id), timeout)?;
                let Some(g) = list.groups().iter().find(|g| g.name() == id) else {
                    return Err(AdminError::NotFound(format!("consumer group {id}")));
                };
                let members = g
                    .members()
                    .iter()
                    .map(|m| MemberInfo {
                        member_id: m.id().to_string(),
                        client_id: m.client_id().to_string(),
                        host: m.client_host().to_string(),
                        assignment: m.assignment().map(decode_assignment).unwrap_or_default(),
                    })
                    .collect::<Vec<_>>();
                Ok((summary(g), members))
            })
            .await?;
        if group.state == "Dead" {
            return Err(AdminError::NotFound(format!("consumer group {group_id}")));
        }
        let offsets = self.group_offsets(group_id, &members).await?;
        let total_lag = offsets.iter().map(|o| o.lag).sum();
        Ok(GroupDetails {
            summary: group,
            member_details: members,
            offsets,
            total_lag,
        })
    }

    /// Committed offsets of the group over the topics its members are assigned (or, for an
    /// empty group, every topic it has committed on), with end offsets and lag.
    async fn group_offsets(
        &self,
        group_id: &str,
        members: &[MemberInfo],
    ) -> Result<Vec<PartitionLag>, AdminError> {
        let mut topics: Vec<String> = members
            .iter()
            .flat_map(|m| m.assignment.keys().cloned())
            .collect();
        topics.sort();
        topics.dedup();
        let group = self.group_client(group_id)?;
        self.blocking(move |consumer, timeout| {
            let metadata = consumer.fetch_metadata(None, timeout)?;
            let mut wanted = TopicPartitionList::new();
            for t in metadata.topics() {
                if (topics.is_empty() && !t.name().starts_with("__"))
                    || topics.iter().any(|n| n == t.name())
                {
                    for p in t.partitions() {
                        wanted.add_partition(t.name(), p.id());
                    }
                }
            }
            let committed = group.committed_offsets(wanted, timeout)?;
            let mut offsets = Vec::new();
            for e in committed.elements() {
                let committed_offset = match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                };
                // With no member assigned, only partitions the group committed on count.
                if topics.is_empty() && committed_offset.is_none() {
                    continue;
                }
                let (low, high) = consumer.fetch_watermarks(e.topic(), e.partition(), timeout)?;
                offsets.push(PartitionLag {
                    topic: e.topic().to_string(),
                    partition: e.partition(),
                    committed_offset,
                    end_offset: high,
                    lag: (high - committed_offset.unwrap_or(low)).max(0),
                });
            }
            offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            drop(group);
            Ok(offsets)
        })
        .await
    }

    /// A client carrying the group's id, for offset fetch and commit without joining it.
    fn group_client(&self, group_id: &str) -> Result<RdBaseConsumer<ClientContext>, AdminError> {
        Ok(self
            .client
            .client_config(&[
                ("group.id", group_id.to_string()),
                ("enable.auto.commit", "false".into()),
            ])
            .create_with_context(ClientContext::default())?)
    }

    /// Moves the group's committed offsets on `topic` (every partition, or those in
    /// `only`), each clamped to its partition's watermarks; with `dry_run`, only says where
    /// they would go. Refused while the group has members (unless a dry run): they would
    /// overwrite it at their next commit.
    pub async fn reset_group_offsets(
        &self,
        group_id: &str,
        topic: &str,
        to: ResetTo,
        only: Option<Vec<i32>>,
        dry_run: bool,
    ) -> Result<Vec<OffsetMove>, AdminError> {
        named_group(group_id)?;
        named_topic(topic)?;
        if let ResetTo::Group(other) = &to {
            named_group(other)?;
        }
        if !dry_run {
            self.refuse_active_group(group_id).await?;
        }
        let group = self.group_client(group_id)?;
        let source = match &to {
            ResetTo::Group(other) => Some(self.group_client(other)?),
            _ => None,
        };
        let topic = topic.to_string();
        self.blocking(move |consumer, timeout| {
            let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
            let t = existing_topic(&metadata, &topic)?;
            let partitions: Vec<i32> = t
                .partitions()
                .iter()
                .map(|p| p.id())
                .filter(|p| only.as_ref().is_none_or(|o| o.contains(p)))
                .collect();
            if let Some(missing) = only
                .iter()
                .flatten()
                .chain(match &to {
                    ResetTo::Explicit(offsets) => offsets.keys().collect::<Vec<_>>(),
                    _ => Vec::new(),
                })
                .find(|p| !t.partitions().iter().any(|q| q.id() == **p))
            {
                return Err(AdminError::NotFound(format!(
                    "partition {missing} of {topic}"
                )));
            }
            let committed =
                |client: &RdBaseConsumer<ClientContext>| -> Result<BTreeMap<i32, i64>, AdminError> {
                    let mut wanted = TopicPartitionList::new();
                    for p in &partitions {
                        wanted.add_partition(&topic, *p);
                    }
                    Ok(client
                        .committed_offsets(wanted, timeout)?
                        .elements()
                        .iter()
                        .filter_map(|e| match e.offset() {
                            Offset::Offset(o) => Some((e.partition(), o)),
                            _ => None,
                        })
                        .collect())
                };
            let previous = committed(&group)?;
            let copied = source.as_ref().map(committed).transpose()?;
            let times = match to {
                ResetTo::Timestamp(ms) => {
                    let mut list = TopicPartitionList::new();
                    for p in &partitions {
                        // No record is older than the epoch: before it means the start.
                        list.add_partition_offset(&topic, *p, Offset::Offset(ms.max(0)))?;
                    }
                    consumer
                        .offsets_for_times(list, timeout)?
                        .elements()
                        .iter()
                        .map(|e| (e.partition(), e.offset()))
                        .collect()
                }
                _ => BTreeMap::new(),
            };
            let mut target = TopicPartitionList::new();
            let mut moves = Vec::new();
            for p in partitions {
                let (low, high) = consumer.fetch_watermarks(&topic, p, timeout)?;
                let before = previous.get(&p).copied();
                let wanted = match &to {
                    ResetTo::Earliest => Some(low),
                    ResetTo::Latest => Some(high),
                    ResetTo::Offset(o) => Some(*o),
                    ResetTo::Timestamp(_) => Some(match times.get(&p) {
                        Some(Offset::Offset(o)) => *o,
                        // No record at or after the time: the end.
                        _ => high,
                    }),
                    ResetTo::Shift(by) => Some(before.unwrap_or(low).saturating_add(*by)),
                    ResetTo::Group(_) => copied.as_ref().and_then(|c| c.get(&p).copied()),
                    ResetTo::Explicit(offsets) => offsets.get(&p).copied().or(before),
                };
                let after = wanted.map(|o| o.clamp(low, high.max(low)));
                if let Some(offset) = after
                    && after != before
                {
                    target.add_partition_offset(&topic, p, Offset::Offset(offset))?;
                }
                moves.push(OffsetMove {
                    topic: topic.clone(),
                    partition: p,
                    previous_offset: before,
                    committed_offset: after.or(before),
                    end_offset: high,
                    lag: (high - after.or(before).unwrap_or(low)).max(0),
                });
            }
            if !dry_run && target.count() > 0 {
                group.commit(&target, CommitMode::Sync)?;
            }
            drop(group);
            drop(source);
            Ok(moves)
        })
        .await
    }

    /// Commits the given offsets for a group (`(topic, partition, offset)`); refused while
    /// the group has members.
    pub async fn commit_offsets(
        &self,
        group_id: &str,
        offsets: Vec<(String, i32, i64)>,
    ) -> Result<(), AdminError> {
        named_group(group_id)?;
        self.refuse_active_group(group_id).await?;
        let group = self.group_client(group_id)?;
        self.blocking(move |_, _| {
            let mut list = TopicPartitionList::new();
            for (topic, partition, offset) in &offsets {
                list.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
            }
            group.commit(&list, CommitMode::Sync)?;
            drop(group);
            Ok(())
        })
        .await
    }

    /// `Conflict` while the group has members: changing its offsets or deleting it under
    /// them would make them reprocess or overwrite. (Apache Kafka refuses a delete itself;
    /// some compatible brokers do not.)
    async fn refuse_active_group(&self, group_id: &str) -> Result<(), AdminError> {
        let id = group_id.to_string();
        let state = self
            .blocking(move |consumer, timeout| {
                let list = consumer.fetch_group_list(Some(&id), timeout)?;
                Ok(list
                    .groups()
                    .iter()
                    .find(|g| g.name() == id)
                    .map(|g| (g.state().to_string(), g.members().len())))
            })
            .await?;
        match state {
            Some((state, members)) if members > 0 => Err(AdminError::Conflict(format!(
                "consumer group {group_id} has {members} active members (state {state}); stop them first"
            ))),
            _ => Ok(()),
        }
    }

    /// Deletes a consumer group; refused while it has members.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), AdminError> {
        named_group(group_id)?;
        self.refuse_active_group(group_id).await?;
        for result in self
            .admin
            .delete_groups(&[group_id], &self.options())
            .await?
        {
            result.map_err(|(_, code)| {
                from_code(Some(code), format!("consumer group {group_id}: {code}"))
            })?;
        }
        Ok(())
    }
}

fn summary(g: &rdkafka::groups::GroupInfo) -> GroupSummary {
    GroupSummary {
        group_id: g.name().to_string(),
        state: g.state().to_string(),
        members: g.members().len(),
        protocol_type: g.protocol_type().to_string(),
        protocol: g.protocol().to_string(),
    }
}

/// Decodes the consumer protocol's member assignment: version (i16), then an array of
/// (topic string, array of i32 partitions), then user data (ignored).
fn decode_assignment(bytes: &[u8]) -> BTreeMap<String, Vec<i32>> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (bytes.get(..n)?, bytes.get(n..)?);
        *bytes = tail;
        Some(head)
    }
    fn parse(mut b: &[u8]) -> Option<BTreeMap<String, Vec<i32>>> {
        let b = &mut b;
        take(b, 2)?;
        let topics = i32::from_be_bytes(take(b, 4)?.try_into().ok()?);
        let mut out = BTreeMap::new();
        for _ in 0..topics.max(0) {
            let len = i16::from_be_bytes(take(b, 2)?.try_into().ok()?);
            let name = String::from_utf8_lossy(take(b, len.max(0) as usize)?).into_owned();
            let count = i32::from_be_bytes(take(b, 4)?.try_into().ok()?);
            let mut partitions = Vec::new();
            for _ in 0..count.max(0) {
                partitions.push(i32::from_be_bytes(take(b, 4)?.try_into().ok()?));
            }
            partitions.sort_unstable();
            out.insert(name, partitions);
        }
        Some(out)
    }
    parse(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_consumer_assignment() {
        let mut bytes = vec![0, 0, 0, 0, 0, 1, 0, 6];
        bytes.extend(b"orders");
        bytes.extend([0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0]);
        let assignment = decode_assignment(&bytes);
        assert_eq!(assignment["orders"], vec![1, 3]);
        assert!(decode_assignment(&[1, 2]).is_empty());
    }
}
