//! Domain events for other systems, and the port that publishes them.

use std::future::Future;

use crate::error::BoxError;

/// Something that happened, for other systems to subscribe to.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainEvent {
    /// `chat.created`, `message.received`, …
    pub detail_type: &'static str,
    pub detail: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("event bus unavailable")]
    Unavailable(#[source] BoxError),
    #[error("event bus refused {0} events")]
    Refused(usize),
}

/// The domain event bus (EventBridge).
pub trait EventPublisher: Send + Sync {
    fn publish(
        &self,
        events: &[DomainEvent],
    ) -> impl Future<Output = Result<(), PublishError>> + Send;
}
