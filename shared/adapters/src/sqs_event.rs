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
