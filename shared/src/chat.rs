//! Chats (conversations) and their messages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::{ChannelId, Stakeholder};
use crate::whatsapp::{Content, SenderId};

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
        }
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
    /// Our id for the message: `{received_at_millis:013}-{discriminator}`,
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
    pub reply_to: Option<String>,
}

impl Message {
    /// A message id that sorts by arrival time; `discriminator` makes it
    /// unique (the WhatsApp id for inbound messages).
    pub fn id_for(received_at: DateTime<Utc>, discriminator: &str) -> String {
        let millis = received_at.timestamp_millis().max(0);
        let short: String = discriminator
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '='))
            .take(200)
            .collect();
        format!("{millis:013}-{short}")
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
        let a = Message::id_for(Utc.timestamp_millis_opt(999).unwrap(), "wamid.Z");
        let b = Message::id_for(Utc.timestamp_millis_opt(1000).unwrap(), "wamid.A");
        assert!(a < b, "{a} < {b}");
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
