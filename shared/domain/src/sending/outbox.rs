//! The send pipeline's ports: the send queue and the outbound side of the
//! message store.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::channel::Stakeholder;
use crate::chat::{Message, MessageRef};
use crate::error::{QueueError, StoreError};

/// The queue of messages to send (references to stored `queued`
/// messages; the `outbound` function delivers them).
pub trait OutboundQueue: Send + Sync {
    /// Returns only once the reference is durably queued.
    fn enqueue(&self, message: &MessageRef) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// What claiming a queued message for sending found.
#[derive(Clone, Debug, PartialEq)]
pub enum SendClaim {
    /// Ours to send until the lease ends; whom to, when the message
    /// records it (messages stored before it did name only their chat).
    Claimed(Box<Message>, Option<Recipient>),
    /// Already past `queued` (sent, failed, …): nothing to do.
    Finished(crate::chat::DeliveryStatus),
    /// Another consumer holds it until then.
    Busy(DateTime<Utc>),
    /// No such message.
    Missing,
}

/// Whom a send goes to: what the sender would otherwise read the chat
/// for (a chat's customer and channel never change).
#[derive(Clone, Debug, PartialEq)]
pub struct Recipient {
    pub customer: crate::customer::SenderId,
    pub channel: crate::channel::ChannelId,
    pub team: Stakeholder,
}

/// The outbound side of the message store: the send pipeline's claims and
/// results, the message log and its statistics.
pub trait OutboxStore: Send + Sync {
    /// Claims a `queued` message for one send attempt (counting it), unless
    /// another consumer's lease runs.
    fn claim_send(
        &self,
        message: &MessageRef,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<SendClaim, StoreError>> + Send;

    /// The provider took the message: its id (and the marker status
    /// callbacks find it by) and state `accepted`, atomically.
    fn record_accepted(
        &self,
        message: &MessageRef,
        wa_message_id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// An attempt failed and will be retried at `retry_at`: the lease
    /// ends, the reason is kept, the send is due then.
    fn release_send(
        &self,
        message: &MessageRef,
        reason: &str,
        retry_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// An attempt's outcome is unknown: `unconfirmed`, and nobody claims it
    /// before `confirm_by` (a callback naming it may confirm it first).
    /// False if it was no longer `queued`.
    fn mark_unconfirmed(
        &self,
        message: &MessageRef,
        reason: &str,
        confirm_by: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Sends still `queued` or `unconfirmed` that were due before `before`
    /// (their queue entry lost, their delivery failed before the provider),
    /// oldest first, with the attempts each has had.
    fn unsent_sends(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(MessageRef, u64)>, StoreError>> + Send;

    /// When an unsent message is due (`None`: it is not waiting to be sent).
    fn send_due(
        &self,
        message: &MessageRef,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;

    /// A `failed` message back to `queued` (re-send); false if it was not
    /// failed.
    fn requeue_failed(
        &self,
        message: &MessageRef,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One page of the outbound message log and the cursor of the next.
    fn outbound_log(
        &self,
        query: &crate::sending::LogQuery,
    ) -> impl Future<Output = Result<(Vec<crate::sending::LogEntry>, Option<String>), StoreError>> + Send;

    /// The delivery counters of these days, per team.
    fn outbound_stats(
        &self,
        days: &[chrono::NaiveDate],
    ) -> impl Future<
        Output = Result<
            std::collections::BTreeMap<Stakeholder, crate::sending::DeliveryStats>,
            StoreError,
        >,
    > + Send;
}
