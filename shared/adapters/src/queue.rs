//! The inbound FIFO queue on SQS.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName, SendMessageBatchRequestEntry};

use domain::error::QueueError;
use domain::inbound::{ForwardQueue, InboundQueue, QueueEntry};

/// SendMessageBatch takes at most ten entries.
const BATCH_MAX: usize = 10;

#[derive(Clone, Debug)]
pub struct SqsInboundQueue {
    client: Client,
    url: String,
}

impl SqsInboundQueue {
    pub fn new(client: Client, url: String) -> Self {
        Self { client, url }
    }
}

impl InboundQueue for SqsInboundQueue {
    async fn enqueue(&self, entries: &[QueueEntry]) -> Result<(), QueueError> {
        for chunk in entries.chunks(BATCH_MAX) {
            let mut batch = Vec::with_capacity(chunk.len());
            for (i, e) in chunk.iter().enumerate() {
                batch.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&e.body)
                        .message_group_id(&e.group_id)
                        .message_deduplication_id(&e.dedup_id)
                        .build()
                        .map_err(|err| QueueError::Unavailable(Box::new(err)))?,
                );
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(batch))
                .send()
                .await
                .map_err(|err| QueueError::Unavailable(Box::new(err)))?;
            if !out.failed.is_empty() {
                return Err(QueueError::Refused(out.failed.len()));
            }
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), QueueError> {
        self.client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|err| QueueError::Unavailable(Box::new(err)))?;
        Ok(())
    }
}

/// The standard queue of raw bodies for Communication Master.
#[derive(Clone, Debug)]
pub struct SqsForwardQueue {
    client: Client,
    url: String,
}

impl SqsForwardQueue {
    pub fn new(client: Client, url: String) -> Self {
        Self { client, url }
    }
}

/// Message attribute naming the channel a forwarded body came in on.
pub const CHANNEL_ATTRIBUTE: &str = "channel";

impl ForwardQueue for SqsForwardQueue {
    async fn forward(&self, channel: &str, body: &str) -> Result<(), QueueError> {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(channel)
            .build()
            .map_err(|err| QueueError::Unavailable(Box::new(err)))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_attributes(CHANNEL_ATTRIBUTE, attribute)
            .send()
            .await
            .map_err(|err| QueueError::Unavailable(Box::new(err)))?;
        Ok(())
    }
}

/// The standard queue of messages to send (references to stored messages).
#[derive(Clone, Debug)]
pub struct SqsOutboundQueue {
    client: Client,
    url: String,
}

/// SQS hides a message for at most 12 hours.
const MAX_VISIBILITY_SECS: u64 = 12 * 60 * 60;

impl SqsOutboundQueue {
    pub fn new(client: Client, url: String) -> Self {
        Self { client, url }
    }

    /// Hides a received entry for `delay` (the retry's backoff), so it
    /// comes back no sooner.
    pub async fn retry_in(
        &self,
        receipt_handle: &str,
        delay: std::time::Duration,
    ) -> Result<(), QueueError> {
        let secs = delay.as_secs_f64().ceil() as u64;
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(secs.min(MAX_VISIBILITY_SECS)).unwrap_or(0))
            .send()
            .await
            .map_err(|err| QueueError::Unavailable(Box::new(err)))?;
        Ok(())
    }
}

impl SqsOutboundQueue {
    async fn send(&self, body: String) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|err| QueueError::Unavailable(Box::new(err)))?;
        Ok(())
    }
}

impl domain::sending::OutboundQueue for SqsOutboundQueue {
    async fn enqueue(&self, message: &domain::chat::MessageRef) -> Result<(), QueueError> {
        let body =
            serde_json::to_string(message).map_err(|err| QueueError::Unavailable(Box::new(err)))?;
        self.send(body).await
    }
}

/// Staff alerts share the send queue: `{"alert_id": …}` entries.
impl domain::routing::sla::AlertQueue for SqsOutboundQueue {
    async fn enqueue_alert(&self, alert_id: &str) -> Result<(), QueueError> {
        self.send(serde_json::json!({ "alert_id": alert_id }).to_string())
            .await
    }
}
