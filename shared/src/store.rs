//! Ports: what the services need from storage, the push channel and the
//! queue. The AWS adapters in [`crate::aws`] implement them; nothing here
//! knows about AWS types.

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::Stakeholder;
use crate::chat::{Chat, ChatId, ChatStatus, Counts, Delivery, ListPosition, Message, MessageRef};
use crate::customer::CustomerProfile;
use crate::customer::{BookingEvent, ContextChange, ProfileUpdate};
use crate::executive::{Email, Executive, ExecutiveId, Role};
use crate::tags::TagName;
use crate::whatsapp::SenderId;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    /// The item changed since it was read (optimistic concurrency): read
    /// again and retry.
    #[error("changed concurrently: {0}")]
    Conflict(String),
}

/// What appending an inbound message did.
#[derive(Clone, Debug, PartialEq)]
pub enum Appended {
    /// Stored; the chat header as it is now.
    Stored(Box<Chat>),
    /// This WhatsApp message id was stored before: nothing changed.
    Duplicate,
}

pub trait ChatStore: Send + Sync {
    /// The customer's current chat with this stakeholder.
    fn current_chat(
        &self,
        stakeholder: Stakeholder,
        customer: &SenderId,
    ) -> impl Future<Output = Result<Option<Chat>, StoreError>> + Send;

    /// Creates `chat` as the customer's current chat, unless another one
    /// won the race: then that one is returned.
    fn create_chat(&self, chat: &Chat) -> impl Future<Output = Result<Chat, StoreError>> + Send;

    /// Stores an inbound message, its dedupe marker and the header update
    /// atomically; a resolved chat becomes active again.
    fn append_inbound(
        &self,
        chat: &Chat,
        message: &Message,
    ) -> impl Future<Output = Result<Appended, StoreError>> + Send;

    /// Stores an outbound message (agent or system) and moves the header.
    fn append_outbound(
        &self,
        chat: &Chat,
        message: &Message,
    ) -> impl Future<Output = Result<Chat, StoreError>> + Send;

    /// The customer message that carried this media id.
    fn media_ref(
        &self,
        media_id: &str,
    ) -> impl Future<Output = Result<Option<MessageRef>, StoreError>> + Send;

    /// The stored message a WhatsApp id names (inbound or outbound).
    fn message_ref(
        &self,
        wa_message_id: &str,
    ) -> impl Future<Output = Result<Option<MessageRef>, StoreError>> + Send;

    /// Applies a delivery status if it moves the message forward; returns
    /// whether it did.
    fn apply_delivery(
        &self,
        message: &MessageRef,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn chat(&self, id: &ChatId) -> impl Future<Output = Result<Option<Chat>, StoreError>> + Send;

    /// Moves `chat` (as read) to `to`, with the counters and a status log
    /// entry in the same transaction. `Conflict` if the chat changed since.
    fn set_status(
        &self,
        chat: &Chat,
        to: ChatStatus,
        by: &ExecutiveId,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Chat, StoreError>> + Send;

    /// The dashboard counters.
    fn counts(&self) -> impl Future<Output = Result<Counts, StoreError>> + Send;

    /// The counters counted from the chats themselves (by index, `COUNT`
    /// queries): what a repair compares `counts` against.
    fn recount(&self) -> impl Future<Output = Result<Counts, StoreError>> + Send;

    /// Up to `limit` chats of one status and stakeholder, latest activity
    /// first, positioned strictly before `before` when given; and whether
    /// more may follow.
    fn list_chats(
        &self,
        status: ChatStatus,
        stakeholder: Stakeholder,
        before: Option<&ListPosition>,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<Chat>, bool), StoreError>> + Send;

    /// Messages newest first, older than the message `before` when given:
    /// skips `skip`, returns up to `take` and whether more exist.
    fn messages(
        &self,
        chat: &ChatId,
        before: Option<&str>,
        skip: usize,
        take: usize,
    ) -> impl Future<Output = Result<(Vec<Message>, bool), StoreError>> + Send;

    /// Adds (`applied`) or removes a tag on a chat; the chat as it is now,
    /// `None` when there is no such chat. At most
    /// [`crate::tags::MAX_TAGS_PER_CHAT`] tags: adding one more is a
    /// `Conflict`.
    fn set_tag(
        &self,
        chat: &ChatId,
        tag: &TagName,
        applied: bool,
    ) -> impl Future<Output = Result<Option<Chat>, StoreError>> + Send;

    /// Every chat of a customer (all teams, all contexts), newest first.
    fn chats_of(
        &self,
        customer: &SenderId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Chat>, StoreError>> + Send;

    /// One message of a chat.
    fn message(
        &self,
        chat: &ChatId,
        message_id: &str,
    ) -> impl Future<Output = Result<Option<Message>, StoreError>> + Send;

    /// Read markers (customer messages seen) for chat × executive pairs;
    /// a pair with no marker is absent.
    fn seen_counts(
        &self,
        pairs: &[(ChatId, ExecutiveId)],
    ) -> impl Future<Output = Result<HashMap<(ChatId, ExecutiveId), u64>, StoreError>> + Send;

    /// Moves the executive's read marker forward to `seen` (never back).
    fn mark_seen(
        &self,
        chat: &ChatId,
        executive: &ExecutiveId,
        seen: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A dashboard room: who gets which pushes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Room {
    /// Everyone watching one chat.
    Chat(ChatId),
    /// Dashboards of one stakeholder (`room_update*`).
    Dashboard(Stakeholder),
    /// Every connected dashboard (`dashboard_stats`).
    Everyone,
}

impl Room {
    pub fn key(&self) -> String {
        match self {
            Room::Chat(id) => format!("chat#{id}"),
            Room::Dashboard(s) => format!("dashboard#{s}"),
            Room::Everyone => "dashboard".to_owned(),
        }
    }
}

/// A WebSocket connection id (API Gateway's, or the local gateway's).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConnectionId(pub String);

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub connection_id: ConnectionId,
    pub executive_id: ExecutiveId,
    pub role: Role,
    /// Whose dashboards this connection sees.
    pub stakeholders: Vec<Stakeholder>,
    pub connected_at: DateTime<Utc>,
    /// The executive's token generation the socket was opened with
    /// (`None` for an external token's bearer, who is no executive of ours).
    pub token_generation: Option<u64>,
}

impl Connection {
    /// Whether this connection may see chats of `team`: admins see all.
    pub fn sees(&self, team: Stakeholder) -> bool {
        self.role == Role::Admin || self.stakeholders.contains(&team)
    }
}

/// One connection in a room.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub connection_id: ConnectionId,
    pub executive_id: ExecutiveId,
}

/// Chat rooms one connection may follow at once (a dashboard watches the
/// chat it shows and a few others).
pub const MAX_JOINED_CHATS: u64 = 20;

pub trait ConnectionStore: Send + Sync {
    /// Records a new connection and its initial rooms.
    fn add_connection(
        &self,
        connection: &Connection,
        rooms: &[Room],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn connection(
        &self,
        id: &ConnectionId,
    ) -> impl Future<Output = Result<Option<Connection>, StoreError>> + Send;

    /// Deletes the connection and all its room memberships.
    fn remove_connection(
        &self,
        id: &ConnectionId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds the connection to a chat's room; false when it already follows
    /// [`MAX_JOINED_CHATS`] chats (every push to a room costs one request per
    /// member, so a connection's rooms are bounded).
    fn join(
        &self,
        connection: &Connection,
        room: &Room,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn leave(
        &self,
        id: &ConnectionId,
        room: &Room,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Everyone in a room, by index.
    fn members(&self, room: &Room) -> impl Future<Output = Result<Vec<Member>, StoreError>> + Send;

    /// The open connections of one executive, by index.
    fn connections_of(
        &self,
        executive: &ExecutiveId,
    ) -> impl Future<Output = Result<Vec<ConnectionId>, StoreError>> + Send;
}

pub trait ExecutiveStore: Send + Sync {
    fn executive(
        &self,
        id: &ExecutiveId,
    ) -> impl Future<Output = Result<Option<Executive>, StoreError>> + Send;

    fn executive_by_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<Executive>, StoreError>> + Send;

    /// The executive an address typed at login names, in exactly two reads
    /// whatever the address (known, unknown or malformed): the answer's
    /// cost says nothing about which addresses exist.
    fn executive_for_login(
        &self,
        address: &crate::login::LoginAddress,
    ) -> impl Future<Output = Result<Option<Executive>, StoreError>> + Send;

    /// Creates or replaces an executive, keeping e-mail addresses unique.
    fn put_executive(
        &self,
        executive: &Executive,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every executive, by e-mail address (an index, not a scan).
    fn executives(&self) -> impl Future<Output = Result<Vec<Executive>, StoreError>> + Send;

    /// Cheap reachability check for readiness probes.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Login budgets (`crate::login`): counters per key and window.
pub trait LoginGuardStore: Send + Sync {
    /// Adds one to each key's counter, atomically per key, and returns the
    /// counts after adding (in `keys` order). Counters are kept until
    /// `expires` (plus a margin) and then forgotten.
    fn spend(
        &self,
        keys: &[&str],
        expires: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<u32>, StoreError>> + Send;

    /// Gives one unit back.
    fn refund(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets the counter.
    fn clear_budget(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The predefined tags of each stakeholder.
pub trait TagStore: Send + Sync {
    /// The team's tags, or `None` when they were never seeded.
    fn team_tags(
        &self,
        team: Stakeholder,
    ) -> impl Future<Output = Result<Option<Vec<TagName>>, StoreError>> + Send;

    /// Seeds the team's tags unless that has happened already (by anyone).
    fn seed_team_tags(
        &self,
        team: Stakeholder,
        tags: &[TagName],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds a tag; `false` when the team has it already.
    fn add_team_tag(
        &self,
        team: Stakeholder,
        tag: &TagName,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes a tag; `false` when the team had no such tag.
    fn remove_team_tag(
        &self,
        team: Stakeholder,
        tag: &TagName,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The cache key of the automated reply to `message` (the seeds' format).
pub fn reply_cache_key(message: &str) -> String {
    format!("chat_response::{message}")
}

/// Cached automated replies (`chat_response::{message}`), dropped by ops
/// through the `ADMIN_TOKEN` routes.
pub trait ResponseCache: Send + Sync {
    fn cached(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    fn put_cached(
        &self,
        key: &str,
        body: &str,
        ttl: std::time::Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes one entry; whether it existed.
    fn delete_cached(&self, key: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes every entry; how many there were.
    fn clear_cached(&self) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

/// What other systems tell us about customers.
pub trait CustomerStore: Send + Sync {
    /// Sets the fields the update carries, leaves the others.
    fn upsert_profile(
        &self,
        update: &ProfileUpdate,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records the booking's latest state (one item per booking).
    fn put_ride(
        &self,
        booking: &BookingEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The profiles of these customers (those that have one).
    fn profiles(
        &self,
        customers: &[SenderId],
    ) -> impl Future<Output = Result<HashMap<SenderId, CustomerProfile>, StoreError>> + Send;

    /// Keeps a context change for the lifecycle that acts on it.
    fn record_context_change(
        &self,
        change: &ContextChange,
        received_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What a push to one connection did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    Delivered,
    /// The connection no longer exists (HTTP 410).
    Gone,
}

#[derive(Debug, thiserror::Error)]
#[error("push failed")]
pub struct PushError(#[source] pub BoxError);

/// The `@connections` management API.
pub trait Pusher: Send + Sync {
    fn push(
        &self,
        connection: &ConnectionId,
        frame: &str,
    ) -> impl Future<Output = Result<Pushed, PushError>> + Send;

    /// Closes a connection (a disabled executive's); gone already is fine.
    fn close(
        &self,
        connection: &ConnectionId,
    ) -> impl Future<Output = Result<(), PushError>> + Send;
}

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

/// One message for the inbound FIFO queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueEntry {
    pub group_id: String,
    pub dedup_id: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable")]
    Unavailable(#[source] BoxError),
    #[error("queue refused {0} of the messages")]
    Refused(usize),
}

/// The queue of raw webhook bodies for Communication Master.
pub trait ForwardQueue: Send + Sync {
    /// Returns only once the body is durably queued.
    fn forward(
        &self,
        channel: &str,
        body: &str,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// The queue of messages to send (references to stored `queued`
/// messages; the `outbound` function delivers them).
pub trait OutboundQueue: Send + Sync {
    /// Returns only once the reference is durably queued.
    fn enqueue(&self, message: &MessageRef) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// What claiming a queued message for sending found.
#[derive(Clone, Debug, PartialEq)]
pub enum SendClaim {
    /// Ours to send until the lease ends.
    Claimed(Box<Message>),
    /// Already past `queued` (sent, failed, …): nothing to do.
    Finished(crate::chat::DeliveryStatus),
    /// Another consumer holds it until then.
    Busy(DateTime<Utc>),
    /// No such message.
    Missing,
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

pub trait InboundQueue: Send + Sync {
    /// Returns only once every entry is durably queued.
    fn enqueue(
        &self,
        entries: &[QueueEntry],
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    fn ping(&self) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// An executive's availability for round robin (the routing record).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presence {
    pub online: bool,
    pub changed_at: Option<DateTime<Utc>>,
    /// When round robin (or an admin) last gave them a chat.
    pub last_assigned_at: Option<DateTime<Utc>>,
    /// Active chats they own.
    pub open_chats: u32,
}

/// Whom a chat is given to, and on what grounds.
#[derive(Clone, Debug, PartialEq)]
pub enum Grant {
    /// Round robin: only if their routing record is still as read (online,
    /// same last assignment, same open chats) — so two assigners racing
    /// for the same executive cannot both win.
    RoundRobin(Presence),
    /// An admin's choice: no conditions on the executive.
    Manual,
}

/// What a claim on a chat did.
#[derive(Clone, Debug, PartialEq)]
pub enum AssignmentClaim {
    /// The chat is theirs; the header as it is now.
    Assigned(Box<Chat>),
    /// The chat is no longer as read (assigned by someone else, resolved):
    /// read it again before deciding anything.
    ChatChanged,
    /// The executive's routing record moved on (another chat was given to
    /// them, they went offline): pick again.
    ExecutiveChanged,
}

/// Round robin's storage: presence, claims, the waiting line.
pub trait RoutingStore: Send + Sync {
    /// The routing records of these executives (strongly consistent); an
    /// executive never seen online has the default (offline) record.
    fn presence(
        &self,
        executives: &[ExecutiveId],
    ) -> impl Future<Output = Result<HashMap<ExecutiveId, Presence>, StoreError>> + Send;

    /// Sets online / offline; the record as it was before.
    fn set_online(
        &self,
        executive: &ExecutiveId,
        online: bool,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Presence, StoreError>> + Send;

    /// Gives `chat` (as read: unassigned, or owned by `chat.assigned_to`)
    /// to `to`, moving both executives' open-chat counts, atomically.
    fn claim_chat(
        &self,
        chat: &Chat,
        to: &ExecutiveId,
        grant: &Grant,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<AssignmentClaim, StoreError>> + Send;

    /// Takes `chat` (as read) from its owner and puts it back in the
    /// waiting line; `None` when it changed meanwhile.
    fn unassign(
        &self,
        chat: &Chat,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Chat>, StoreError>> + Send;

    /// Active chats of a team nobody owns, longest waiting first.
    fn unassigned_chats(
        &self,
        team: Stakeholder,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Chat>, StoreError>> + Send;

    /// Active chats an executive owns.
    fn assigned_chats(
        &self,
        executive: &ExecutiveId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Chat>, StoreError>> + Send;

    /// Sets an executive's open-chat count to `to` if it is still `from`
    /// (counter repair).
    fn repair_open_chats(
        &self,
        executive: &ExecutiveId,
        from: u32,
        to: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Sets the dashboard counters to `to` if they are still `from`.
    fn repair_counts(
        &self,
        from: &Counts,
        to: &Counts,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// What the previous counter repair run saw (target → stored, counted).
    fn repair_observations(
        &self,
    ) -> impl Future<Output = Result<HashMap<String, (i64, i64)>, StoreError>> + Send;

    fn save_repair_observations(
        &self,
        seen: &HashMap<String, (i64, i64)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// How far past its deadline a waiting customer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlaLevel {
    /// `SLA_ALERT_AFTER_SECS`: the team's alert group hears of it.
    Alert,
    /// `SLA_ESCALATE_AFTER_SECS`: the shift lead hears of it.
    Escalation,
}

impl SlaLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaLevel::Alert => "alert",
            SlaLevel::Escalation => "escalation",
        }
    }
}

/// A WhatsApp alert to staff, stored with the SLA mark that raised it and
/// sent through the send queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertJob {
    /// `{chat_id}#{episode}#{level}`: one per episode and level.
    pub alert_id: String,
    pub chat_id: ChatId,
    pub level: SlaLevel,
    /// The channel it is sent from (the chat's).
    pub channel: crate::channel::ChannelId,
    pub to: String,
    pub message: crate::outbound::Outbound,
}

/// What claiming an alert for sending found.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertClaim {
    Claimed(Box<AlertJob>),
    /// Sent or failed already.
    Finished,
    Busy(DateTime<Utc>),
    Missing,
}

/// What one attempt at sending an alert came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertOutcome<'a> {
    /// The provider took it: its message id.
    Sent(&'a str),
    /// Refused for good, or the last attempt failed.
    Failed(&'a str),
    /// Failed for now; the queue brings it back.
    Retry(&'a str),
}

/// The SLA's storage: waiting episodes, exactly-once marks, staff alerts.
pub trait SlaStore: Send + Sync {
    /// Active chats of a team whose customer has waited since at or before
    /// `started_by`, longest waiting first.
    fn waiting_since(
        &self,
        team: Stakeholder,
        started_by: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Chat>, StoreError>> + Send;

    /// Marks the chat's current episode (`chat.wait_started_at`) as alerted
    /// / escalated, stores `alert` and counts the breach, atomically —
    /// unless that episode was marked already or has ended: then `false`.
    fn mark_sla(
        &self,
        chat: &Chat,
        level: SlaLevel,
        alert: Option<&AlertJob>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn claim_alert(
        &self,
        alert_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<AlertClaim, StoreError>> + Send;

    /// What one send attempt came to; the lease ends.
    fn finish_alert(
        &self,
        alert_id: &str,
        outcome: AlertOutcome<'_>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Alerts still unsent that were stored before `before` (their queue
    /// entry may have been lost): ids, oldest first.
    fn unsent_alerts(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Service metrics of these days: per team, and per team × executive.
    fn service_stats(
        &self,
        days: &[chrono::NaiveDate],
    ) -> impl Future<Output = Result<Vec<crate::metrics::ServiceRow>, StoreError>> + Send;
}

/// The send queue's second kind of entry: staff alerts.
pub trait AlertQueue: Send + Sync {
    fn enqueue_alert(&self, alert_id: &str) -> impl Future<Output = Result<(), QueueError>> + Send;
}
