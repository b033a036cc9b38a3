//! The domain events' outbox in DynamoDB: each event an item written in
//! the transaction of the change it describes (`EVENT#{event_id}` /
//! `EVENT`), listed in `gsi1` (`EVENTQ` / `{at}#{event_id}`) until it is
//! on the bus, then deleted.

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};

use super::{DynamoStore, GSI1, put_write};
use crate::item::{Item, ItemExt, key, n, s, time_key};
use domain::error::StoreError;
use domain::events::{DomainEvent, EventOutbox, PendingEvent};

const PENDING: &str = "EVENTQ";

/// How long an event that never reached the bus is kept (then it expires):
/// longer than any outage the minute sweep could not ride out.
const KEPT_DAYS: i64 = 14;

fn event_key(id: &str) -> Item {
    key(format!("EVENT#{id}"), "EVENT")
}

/// The writes that keep `events` pending, for a change's transaction.
pub(super) fn event_writes(
    table: &str,
    events: Vec<DomainEvent>,
    at: DateTime<Utc>,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    events
        .into_iter()
        .map(|event| {
            let pending = PendingEvent::new(event);
            let mut item = event_key(&pending.event_id);
            item.insert("event_id".into(), s(&pending.event_id));
            item.insert("detail_type".into(), s(&pending.event.detail_type));
            item.insert("detail".into(), s(pending.event.detail.to_string()));
            item.insert("gsi1pk".into(), s(PENDING));
            item.insert(
                "gsi1sk".into(),
                s(format!("{}#{}", time_key(at), pending.event_id)),
            );
            let expires = at + chrono::Duration::days(KEPT_DAYS);
            item.insert(
                "expires_at".into(),
                n(u64::try_from(expires.timestamp()).unwrap_or(0)),
            );
            put_write(table, item, false)
        })
        .collect()
}

impl EventOutbox for DynamoStore {
    async fn pending_events(&self, limit: usize) -> Result<Vec<PendingEvent>, StoreError> {
        let items = self
            .query(
                &self.tables.chats,
                Some(GSI1),
                "gsi1pk",
                PENDING.to_owned(),
                None,
                limit,
                true,
            )
            .await?;
        items
            .iter()
            .map(|i| {
                let detail = serde_json::from_str(i.str("detail")?)
                    .map_err(|e| StoreError::Corrupt(format!("pending event: {e}")))?;
                Ok(PendingEvent {
                    event_id: i.str("event_id")?.to_owned(),
                    event: DomainEvent {
                        detail_type: i.str("detail_type")?.to_owned(),
                        detail,
                    },
                })
            })
            .collect()
    }

    async fn events_published(&self, ids: &[String]) -> Result<(), StoreError> {
        let keys = ids.iter().map(|id| event_key(id)).collect();
        self.batch_delete(&self.tables.chats, keys).await
    }
}
