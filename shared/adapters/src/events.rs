//! Domain events on an EventBridge bus.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use domain::events::{DomainEvent, EventPublisher, PublishError};

/// Every event's `source`.
pub const SOURCE: &str = "smartchat";
/// PutEvents takes at most ten entries.
const BATCH_MAX: usize = 10;

#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus: String) -> Self {
        Self { client, bus }
    }
}

impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        for chunk in events.chunks(BATCH_MAX) {
            let entries = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(SOURCE)
                        .detail_type(&e.detail_type)
                        .detail(e.detail.to_string())
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|err| PublishError::Unavailable(Box::new(err)))?;
            let failed = usize::try_from(out.failed_entry_count).unwrap_or(0);
            if failed > 0 {
                return Err(PublishError::Refused(failed));
            }
        }
        Ok(())
    }
}
