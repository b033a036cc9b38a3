//! What SQS consumers read from Lambda's SQS event records.

use aws_lambda_events::sqs::SqsMessage;

/// How many times this message has been received (1 on the first try).
pub fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse::<u32>().ok())
        .unwrap_or(1)
}

/// The FIFO message group (empty for standard queues).
pub fn group_id(record: &SqsMessage) -> String {
    record
        .attributes
        .get("MessageGroupId")
        .cloned()
        .unwrap_or_default()
}

/// The records of a batch by message group, groups in the order their
/// first record came, each group's records in batch order (FIFO order
/// holds within a group only).
pub fn by_group(records: Vec<SqsMessage>) -> Vec<(String, Vec<SqsMessage>)> {
    grouped(records, group_id)
}

/// `items` split by `key`, groups in the order their first item came, each
/// group's items in their order.
pub fn grouped<T>(items: Vec<T>, key: impl Fn(&T) -> String) -> Vec<(String, Vec<T>)> {
    let mut groups: Vec<(String, Vec<T>)> = Vec::new();
    for item in items {
        let k = key(&item);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, items)) => items.push(item),
            None => groups.push((k, vec![item])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, group: &str) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = Some(id.into());
        r.attributes.insert("MessageGroupId".into(), group.into());
        r
    }

    #[test]
    fn a_batch_splits_by_group_keeping_each_groups_order() {
        let batch = vec![
            record("1", "a"),
            record("2", "b"),
            record("3", "a"),
            record("4", "c"),
            record("5", "b"),
        ];
        let ids: Vec<(String, Vec<String>)> = by_group(batch)
            .into_iter()
            .map(|(g, rs)| (g, rs.into_iter().filter_map(|r| r.message_id).collect()))
            .collect();
        let want =
            |g: &str, ids: &[&str]| (g.to_owned(), ids.iter().map(|i| (*i).to_owned()).collect());
        assert_eq!(
            ids,
            vec![
                want("a", &["1", "3"]),
                want("b", &["2", "5"]),
                want("c", &["4"])
            ]
        );
    }
}
