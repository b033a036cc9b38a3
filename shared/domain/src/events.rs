//! Domain events for other systems, and the port that publishes them.

use std::future::Future;

use crate::error::BoxError;

/// Something that happened, for other systems to subscribe to.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainEvent {
    /// `chat.created`, `message.received`, …
    pub detail_type: String,
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

/// Keeps what is published instead of sending it: a consumer publishes
/// the events of a whole batch in one go (one `PutEvents` per ten events
/// instead of one per message).
#[derive(Debug, Default)]
pub struct Collected(std::sync::Mutex<Vec<DomainEvent>>);

impl Collected {
    /// Everything published so far, leaving nothing.
    pub fn take(&self) -> Vec<DomainEvent> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

impl EventPublisher for Collected {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        match self.0.lock() {
            Ok(mut kept) => {
                kept.extend_from_slice(events);
                Ok(())
            }
            Err(_) => Err(PublishError::Refused(events.len())),
        }
    }
}

/// The events a chat transition publishes (kept in the store with it, see
/// [`PendingEvent`]): `chat.resolved` when it resolves the chat.
pub fn of_transition(t: &crate::chat::transition::Transition) -> Vec<DomainEvent> {
    match &t.status_change {
        Some(change) if change.to == crate::chat::ChatStatus::Resolved => vec![DomainEvent {
            detail_type: "chat.resolved".into(),
            detail: serde_json::json!({
                "chat": crate::protocol::views::ChatView::new(&t.after, 0),
                "from": change.from,
                "by": change.by,
                "reason": change.reason,
                "at": change.at,
                "resolution_secs": t.resolution_secs,
            }),
        }],
        _ => Vec::new(),
    }
}

/// `chat.assigned`: `chat` (as read) goes to `to`, or back to its team's
/// waiting line (`to` none); `reason` as in the `chat_assigned` /
/// `chat_reassigned` frames (`round_robin`, `offline`, `manual`).
pub fn chat_assigned(
    chat: &crate::chat::Chat,
    to: Option<&crate::executive::ExecutiveId>,
    reason: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> DomainEvent {
    DomainEvent {
        detail_type: "chat.assigned".into(),
        detail: serde_json::json!({
            "chat_id": chat.chat_id,
            "customer": chat.customer,
            "customer_type": chat.customer_type,
            "from": chat.assigned_to,
            "to": to,
            "reason": reason,
            "at": at,
        }),
    }
}

/// `context.changed`: another system told us a customer's context.
pub fn context_changed(
    change: &crate::customer::ContextChange,
    received_at: chrono::DateTime<chrono::Utc>,
) -> DomainEvent {
    DomainEvent {
        detail_type: "context.changed".into(),
        detail: serde_json::json!({
            "customer": change.customer,
            "customer_type": change.customer_type,
            "context": change.context,
            "received_at": received_at,
        }),
    }
}

/// An event kept in the store, written in the same transaction as the
/// change it describes, until it is on the bus (a transactional outbox):
/// a change is never committed without its event, and a crash before the
/// event is published leaves it pending, not lost. Its detail carries
/// `event_id` for subscribers to deduplicate (delivery is at least once).
#[derive(Clone, Debug, PartialEq)]
pub struct PendingEvent {
    pub event_id: String,
    pub event: DomainEvent,
}

impl PendingEvent {
    pub fn new(mut event: DomainEvent) -> Self {
        let event_id = uuid::Uuid::now_v7().simple().to_string();
        if let Some(detail) = event.detail.as_object_mut() {
            detail.insert("event_id".into(), serde_json::json!(event_id));
        }
        Self { event_id, event }
    }
}

/// The events written with changes and not yet on the bus.
pub trait EventOutbox: Send + Sync {
    /// The oldest pending events, at most `limit`.
    fn pending_events(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<PendingEvent>, crate::error::StoreError>> + Send;

    /// Forgets events that are on the bus.
    fn events_published(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<(), crate::error::StoreError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error(transparent)]
    Store(#[from] crate::error::StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// [`publish_pending`] right after a change; a failure is logged and left
/// to the minute sweep (the events stay pending).
pub async fn publish_pending_soon<S: EventOutbox, E: EventPublisher>(store: &S, bus: &E) {
    match publish_pending(store, bus).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(published = n, "domain events published"),
        Err(e) => {
            tracing::warn!(error = ?e, "domain events left pending; the minute sweep publishes them")
        }
    }
}

/// Events published per round of [`publish_pending`].
const DRAIN_BATCH: usize = 25;
/// Rounds per call: what is left waits for the next call (the SLA scan's
/// minute sweep at the latest).
const DRAIN_ROUNDS: usize = 8;

/// Puts pending events on the bus, oldest first, and forgets them; how
/// many. Run right after changes that write events, and every minute as a
/// sweep. Two runs at once may publish an event twice (subscribers
/// deduplicate on `event_id`).
pub async fn publish_pending<S: EventOutbox, E: EventPublisher>(
    store: &S,
    bus: &E,
) -> Result<usize, DrainError> {
    let mut published = 0;
    for _ in 0..DRAIN_ROUNDS {
        let pending = store.pending_events(DRAIN_BATCH).await?;
        if pending.is_empty() {
            break;
        }
        let events: Vec<DomainEvent> = pending.iter().map(|p| p.event.clone()).collect();
        bus.publish(&events).await?;
        let ids: Vec<String> = pending.iter().map(|p| p.event_id.clone()).collect();
        store.events_published(&ids).await?;
        published += ids.len();
        if ids.len() < DRAIN_BATCH {
            break;
        }
    }
    Ok(published)
}
