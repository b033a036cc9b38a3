//! Chats (conversations) and their messages.

pub mod content;
pub mod context;
pub mod rating;
pub mod store;
pub mod tags;
pub mod transition;

pub use content::*;
pub use store::*;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::{ChannelId, Stakeholder};
use crate::customer::SenderId;
use crate::executive::ExecutiveId;

/// A chat id: a UUIDv7 (time ordered) in its hyphenated form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChatId(String);

crate::newtype::string_newtype!(ChatId, InvalidChatId);

impl ChatId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7().hyphenated().to_string())
    }

    pub fn parse(value: &str) -> Result<Self, InvalidChatId> {
        let id = uuid::Uuid::try_parse(value.trim()).map_err(|_| InvalidChatId)?;
        Ok(Self(id.hyphenated().to_string()))
    }
}

impl Default for ChatId {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("chat_id is not a valid chat id")]
pub struct InvalidChatId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatStatus {
    Active,
    Resolved,
}

impl ChatStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatStatus::Active => "active",
            ChatStatus::Resolved => "resolved",
        }
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "active" => Ok(ChatStatus::Active),
            "resolved" => Ok(ChatStatus::Resolved),
            other => Err(format!(
                "unknown status `{}` (expected active or resolved)",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
}

/// The chat header: everything a chat list shows, without the messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chat {
    pub chat_id: ChatId,
    pub customer: SenderId,
    pub customer_name: Option<String>,
    pub customer_type: Stakeholder,
    pub channel: ChannelId,
    pub status: ChatStatus,
    pub created_at: DateTime<Utc>,
    pub last_message: Option<String>,
    pub last_message_time: DateTime<Utc>,
    pub last_msg_by: Option<String>,
    /// When the customer last wrote (the SLA clock).
    pub last_incoming_message: Option<DateTime<Utc>>,
    /// How many customer messages the chat has had; read markers count
    /// against it, which makes unseen counts O(1) per chat.
    pub inbound_count: u64,
    pub message_count: u64,
    /// The customer wrote last and no agent has answered yet: what the
    /// dashboard's `pending` counts.
    pub awaiting_reply: bool,
    pub status_updated_by: Option<String>,
    pub status_updated_at: Option<DateTime<Utc>>,
    /// Tags applied to the chat, sorted (their display names).
    pub tags: Vec<String>,
    /// The executive who owns the chat, if any (cleared on resolving).
    pub assigned_to: Option<ExecutiveId>,
    pub assigned_at: Option<DateTime<Utc>>,
    /// When the chat was opened or last reopened (resolution time runs
    /// from here).
    pub opened_at: Option<DateTime<Utc>>,
    /// The start of the current waiting episode: the first customer
    /// message after the last agent reply. `None` while nobody waits.
    pub wait_started_at: Option<DateTime<Utc>>,
    /// The episode (its start) the SLA alert / escalation was raised for.
    pub sla_alerted_for: Option<DateTime<Utc>>,
    pub sla_escalated_for: Option<DateTime<Utc>>,
    /// The first agent reply (first-response time runs from `created_at`).
    pub first_response_at: Option<DateTime<Utc>>,
    /// Who owned the chat when it was last resolved (ratings credit them).
    #[serde(default)]
    pub last_assignee: Option<ExecutiveId>,
    /// When the customer was asked to rate the resolution; a 1–5 answer
    /// within the window is their rating. Cleared when the chat reopens.
    #[serde(default)]
    pub rating_asked_at: Option<DateTime<Utc>>,
    /// The customer's rating of the resolution, 1–5.
    #[serde(default)]
    pub rating: Option<u8>,
    /// The customer's context (what other systems told us) when the chat
    /// opened: a context change that starts a new conversation opens a new
    /// chat with the new one.
    #[serde(default)]
    pub context: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    /// When a context change ended this conversation: the customer's next
    /// message opens a new chat. Set in the same write that retires the
    /// customer's current-chat pointer, so a header read says whether a
    /// remembered pointer is still good.
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// Bumped by every write to the header: a change conditioned on the
    /// revision it read knows the header after it exactly, without
    /// reading it back.
    #[serde(default)]
    pub revision: u64,
}

/// Where a chat stands in a chat list: latest activity first, ties broken
/// by id. Lists are read and paged by this position (keyset paging).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ListPosition {
    pub at: DateTime<Utc>,
    pub chat_id: ChatId,
}

/// The dashboard's counters (SPEC §8): kept in the same transaction as
/// every status change, so they cannot drift.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub active: i64,
    pub resolved: i64,
    /// Active chats whose customer awaits an agent's reply.
    pub pending: i64,
}

impl Counts {
    /// How the counters move when a chat goes from `before` to `after`
    /// (status, awaiting reply).
    pub fn delta(before: Option<(ChatStatus, bool)>, after: (ChatStatus, bool)) -> Counts {
        let mut d = Counts::default();
        let mut count = |state: (ChatStatus, bool), sign: i64| {
            match state.0 {
                ChatStatus::Active => d.active += sign,
                ChatStatus::Resolved => d.resolved += sign,
            }
            if state.0 == ChatStatus::Active && state.1 {
                d.pending += sign;
            }
        };
        if let Some(b) = before {
            count(b, -1);
        }
        count(after, 1);
        d
    }

    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

/// The dashboard's counters in all and per team (each team's move in the
/// same transaction as the totals).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardCounts {
    #[serde(flatten)]
    pub total: Counts,
    /// Teams without any chat are absent.
    pub teams: std::collections::BTreeMap<crate::channel::Stakeholder, Counts>,
}

impl DashboardCounts {
    /// Every counter by name (`active`, `Partner.active`, …), for
    /// comparing stored and counted values one by one.
    pub fn named(&self) -> Vec<(String, i64)> {
        let one = |prefix: &str, c: &Counts| {
            [
                (format!("{prefix}active"), c.active),
                (format!("{prefix}resolved"), c.resolved),
                (format!("{prefix}pending"), c.pending),
            ]
        };
        let mut out: Vec<(String, i64)> = one("", &self.total).into();
        for team in crate::channel::Stakeholder::ALL {
            let c = self.teams.get(&team).copied().unwrap_or_default();
            out.extend(one(&format!("{team}."), &c));
        }
        out
    }

    /// Sets the counter `name` (as [`DashboardCounts::named`] spells it).
    pub fn set(&mut self, name: &str, value: i64) {
        let (c, field) = match name.split_once('.') {
            Some((team, field)) => match crate::channel::Stakeholder::parse(team) {
                Ok(t) => (self.teams.entry(t).or_default(), field),
                Err(_) => return,
            },
            None => (&mut self.total, name),
        };
        match field {
            "active" => c.active = value,
            "resolved" => c.resolved = value,
            "pending" => c.pending = value,
            _ => {}
        }
        self.teams.retain(|_, c| !c.is_zero());
    }
}

impl Chat {
    pub fn open(
        customer: SenderId,
        customer_name: Option<String>,
        customer_type: Stakeholder,
        channel: ChannelId,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            chat_id: ChatId::new(),
            customer,
            customer_name,
            customer_type,
            channel,
            status: ChatStatus::Active,
            created_at: now,
            last_message: None,
            last_message_time: now,
            last_msg_by: None,
            last_incoming_message: None,
            inbound_count: 0,
            message_count: 0,
            awaiting_reply: false,
            status_updated_by: None,
            status_updated_at: None,
            tags: Vec::new(),
            assigned_to: None,
            assigned_at: None,
            opened_at: Some(now),
            wait_started_at: None,
            sla_alerted_for: None,
            sla_escalated_for: None,
            first_response_at: None,
            last_assignee: None,
            rating_asked_at: None,
            rating: None,
            context: None,
            ended_at: None,
            revision: 0,
        }
    }

    pub fn position(&self) -> ListPosition {
        ListPosition {
            at: self.last_message_time,
            chat_id: self.chat_id.clone(),
        }
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.eq_ignore_ascii_case(tag))
    }

    /// Unseen customer messages for someone whose read marker is `seen`.
    pub fn unseen_for(&self, seen: u64) -> u64 {
        self.inbound_count.saturating_sub(seen)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// Who wrote a message, as the seeds name it (`type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SenderType {
    Customer,
    Agent,
    System,
}

/// One stored message (its own item, never part of an array on the chat).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub chat_id: ChatId,
    /// Our id for the message: `{received_ms:013}-{position:04}-{discriminator}`,
    /// so ids sort in arrival order within a chat.
    pub message_id: String,
    pub wa_message_id: Option<String>,
    pub direction: Direction,
    pub sender: String,
    pub sender_type: SenderType,
    pub content: Content,
    /// `content.preview()`, kept so lists need not recompute it.
    pub preview: String,
    pub sent_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    /// The WhatsApp id of the message this one replies to (`context.id`).
    pub reply_to: Option<String>,
    /// Our id of that message, when we have it.
    pub reply_to_message_id: Option<String>,
    /// Delivery state of an outbound message (statuses callbacks).
    pub delivery: Option<Delivery>,
    /// How many customer messages the chat had up to and including this
    /// one (set when stored): a read marker at this value has seen it.
    #[serde(default)]
    pub inbound_seq: u64,
    /// The click-to-WhatsApp ad an inbound message came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<crate::chat::Referral>,
}

/// Where an outbound message is on its way to the customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Queued,
    /// An attempt may or may not have reached the provider (a timeout
    /// after sending, a cut answer): waiting for a status callback that
    /// names it before any retry.
    Unconfirmed,
    /// The provider took it (its synchronous answer); WhatsApp's own
    /// `sent` follows by callback.
    Accepted,
    Sent,
    Failed,
    Delivered,
    Read,
}

impl DeliveryStatus {
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "queued" => DeliveryStatus::Queued,
            "unconfirmed" => DeliveryStatus::Unconfirmed,
            "accepted" => DeliveryStatus::Accepted,
            "sent" => DeliveryStatus::Sent,
            "failed" => DeliveryStatus::Failed,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Unconfirmed => "unconfirmed",
            DeliveryStatus::Accepted => "accepted",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
        }
    }

    /// Statuses only move forward; callbacks arrive out of order. A failure
    /// after `sent` counts, a late `failed` after `delivered` does not.
    pub fn rank(self) -> u64 {
        // Unconfirmed ranks above queued (an attempt was made) and below
        // accepted (a callback naming it confirms it).
        match self {
            DeliveryStatus::Queued => 0,
            DeliveryStatus::Unconfirmed => 2,
            DeliveryStatus::Accepted => 5,
            DeliveryStatus::Sent => 10,
            DeliveryStatus::Failed => 15,
            DeliveryStatus::Delivered => 20,
            DeliveryStatus::Read => 30,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub status: DeliveryStatus,
    pub at: Option<DateTime<Utc>>,
    /// The provider's errors, for `failed`.
    pub errors: Vec<String>,
}

/// Where a stored message lives, found from its WhatsApp id (and what
/// the send queue carries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    pub chat_id: ChatId,
    pub message_id: String,
}

impl Message {
    /// A message Smart Chat writes in a chat (a send, a note): outbound,
    /// by `sender`, at `at`, under `message_id`; `delivery` for sends.
    pub fn ours(
        chat_id: ChatId,
        message_id: String,
        sender: (String, SenderType),
        content: Content,
        at: DateTime<Utc>,
        delivery: Option<Delivery>,
    ) -> Self {
        Message {
            chat_id,
            message_id,
            wa_message_id: None,
            direction: Direction::Outbound,
            sender: sender.0,
            sender_type: sender.1,
            preview: content.preview(),
            content,
            sent_at: None,
            received_at: at,
            reply_to: None,
            reply_to_message_id: None,
            delivery,
            inbound_seq: 0,
            referral: None,
        }
    }

    /// A message id that sorts by arrival time; `discriminator` makes it
    /// unique (the WhatsApp id for inbound messages).
    pub fn id_for(received_at: DateTime<Utc>, position: u32, discriminator: &str) -> String {
        let millis = received_at.timestamp_millis().max(0);
        let short: String = discriminator
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '='))
            .take(200)
            .collect();
        format!("{millis:013}-{position:04}-{short}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn chat_ids_round_trip_and_refuse_garbage() {
        let id = ChatId::new();
        assert_eq!(ChatId::parse(id.as_str()), Ok(id));
        assert_eq!(ChatId::parse("not-a-chat"), Err(InvalidChatId));
    }

    #[test]
    fn message_ids_sort_by_arrival() {
        let a = Message::id_for(Utc.timestamp_millis_opt(999).unwrap(), 0, "wamid.Z");
        let b = Message::id_for(Utc.timestamp_millis_opt(1000).unwrap(), 0, "wamid.A");
        assert!(a < b, "{a} < {b}");
        let same_ms = Utc.timestamp_millis_opt(1000).unwrap();
        let first = Message::id_for(same_ms, 1, "wamid.Z");
        let second = Message::id_for(same_ms, 2, "wamid.A");
        assert!(first < second, "body order wins within one webhook");
    }

    #[test]
    fn delivery_only_moves_forward_except_failure_after_sent() {
        use DeliveryStatus::*;
        assert!(Sent.rank() < Delivered.rank() && Delivered.rank() < Read.rank());
        assert!(Sent.rank() < Failed.rank(), "failed after sent applies");
        assert!(
            Failed.rank() < Delivered.rank(),
            "a late failed after delivered is ignored"
        );
        assert_eq!(DeliveryStatus::parse("read"), Some(Read));
        assert_eq!(DeliveryStatus::parse("warning"), None);
    }

    #[test]
    fn counters_move_with_status_and_waiting() {
        use ChatStatus::*;
        assert_eq!(
            Counts::delta(None, (Active, false)),
            Counts {
                active: 1,
                resolved: 0,
                pending: 0
            }
        );
        assert_eq!(
            Counts::delta(Some((Active, false)), (Active, true)),
            Counts {
                active: 0,
                resolved: 0,
                pending: 1
            }
        );
        assert_eq!(
            Counts::delta(Some((Active, true)), (Resolved, false)),
            Counts {
                active: -1,
                resolved: 1,
                pending: -1
            }
        );
        assert_eq!(
            Counts::delta(Some((Resolved, false)), (Active, true)),
            Counts {
                active: 1,
                resolved: -1,
                pending: 1
            }
        );
        assert!(Counts::delta(Some((Active, true)), (Active, true)).is_zero());
    }

    #[test]
    fn unseen_never_goes_negative() {
        let now = Utc::now();
        let mut chat = Chat::open(
            SenderId::parse("919800000000").unwrap(),
            None,
            Stakeholder::Partner,
            ChannelId::parse("9099039188").unwrap(),
            now,
        );
        chat.inbound_count = 3;
        assert_eq!(chat.unseen_for(1), 2);
        assert_eq!(chat.unseen_for(5), 0);
    }
}
