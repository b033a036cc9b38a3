//! The JSON shapes the dashboard sees for chats and messages.

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use crate::channel::Stakeholder;
use crate::chat::Content;
use crate::chat::{Chat, ChatStatus, DeliveryStatus, Direction, Message, SenderType};

/// India Standard Time, for display strings (storage is UTC).
pub fn ist(t: DateTime<Utc>) -> String {
    // 5h30m east of UTC is always a valid offset.
    match FixedOffset::east_opt(5 * 3600 + 30 * 60) {
        Some(offset) => t
            .with_timezone(&offset)
            .format("%d %b %Y, %I:%M %p")
            .to_string(),
        None => t.to_rfc3339(),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatView<'a> {
    pub chat_id: &'a str,
    pub customer: &'a str,
    pub customer_name: Option<&'a str>,
    pub customer_type: Stakeholder,
    pub channel: &'a str,
    pub status: ChatStatus,
    pub created_at: DateTime<Utc>,
    pub last_message: Option<&'a str>,
    pub last_message_time: DateTime<Utc>,
    pub last_message_time_ist: String,
    pub last_msg_by: Option<&'a str>,
    pub last_incoming_message: Option<DateTime<Utc>>,
    pub message_count: u64,
    /// Customer messages the receiving executive has not seen.
    pub unseen_count: u64,
    /// The customer wrote last and awaits an agent's reply.
    pub awaiting_reply: bool,
    pub status_updated_by: Option<&'a str>,
    pub status_updated_at: Option<DateTime<Utc>>,
    pub tags: &'a [String],
    /// The executive who owns the chat (null while unassigned).
    pub assigned_to: Option<&'a str>,
    pub assigned_at: Option<DateTime<Utc>>,
    /// When the customer's current wait began (the SLA countdown's
    /// start); null while nobody waits.
    pub wait_started_at: Option<DateTime<Utc>>,
    pub first_response_at: Option<DateTime<Utc>>,
    /// The customer's rating of the resolution (1–5); absent until they
    /// give one (a chat-list page stays within a frame).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    /// The customer's context when the chat opened (absent when none was
    /// known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<&'a std::collections::BTreeMap<String, serde_json::Value>>,
}

impl<'a> ChatView<'a> {
    pub fn new(chat: &'a Chat, unseen_count: u64) -> Self {
        Self {
            chat_id: chat.chat_id.as_str(),
            customer: chat.customer.as_str(),
            customer_name: chat.customer_name.as_deref(),
            customer_type: chat.customer_type,
            channel: chat.channel.as_str(),
            status: chat.status,
            created_at: chat.created_at,
            last_message: chat.last_message.as_deref(),
            last_message_time: chat.last_message_time,
            last_message_time_ist: ist(chat.last_message_time),
            last_msg_by: chat.last_msg_by.as_deref(),
            last_incoming_message: chat.last_incoming_message,
            message_count: chat.message_count,
            unseen_count,
            awaiting_reply: chat.awaiting_reply,
            status_updated_by: chat.status_updated_by.as_deref(),
            status_updated_at: chat.status_updated_at,
            tags: &chat.tags,
            assigned_to: chat.assigned_to.as_ref().map(|a| a.as_str()),
            assigned_at: chat.assigned_at,
            wait_started_at: chat.wait_started_at,
            first_response_at: chat.first_response_at,
            rating: chat.rating,
            context: chat.context.as_ref(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MessageView<'a> {
    pub message_id: &'a str,
    pub chat_id: &'a str,
    pub wa_message_id: Option<&'a str>,
    pub direction: Direction,
    /// `Customer` or `Agent`, as the seeds call it.
    #[serde(rename = "type")]
    pub sender_type: SenderType,
    pub sender: &'a str,
    /// `text`, `image`, `location`, …
    pub kind: &'a str,
    /// The text an agent reads (body, caption or chosen reply), if any.
    pub message: Option<&'a str>,
    pub preview: &'a str,
    pub content: &'a Content,
    pub sent_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub datetime_ist: String,
    pub reply_to: Option<&'a str>,
    pub reply_to_message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_status: Option<DeliveryStatus>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub delivery_errors: &'a [String],
    /// The ad the customer came from, and its label ("Ad: {headline}").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<&'a crate::chat::Referral>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral_label: Option<String>,
}

impl<'a> MessageView<'a> {
    pub fn new(m: &'a Message) -> Self {
        Self {
            message_id: &m.message_id,
            chat_id: m.chat_id.as_str(),
            wa_message_id: m.wa_message_id.as_deref(),
            direction: m.direction,
            sender_type: m.sender_type,
            sender: &m.sender,
            kind: m.content.kind(),
            message: m.content.text(),
            preview: &m.preview,
            content: &m.content,
            sent_at: m.sent_at,
            received_at: m.received_at,
            datetime_ist: ist(m.sent_at.unwrap_or(m.received_at)),
            reply_to: m.reply_to.as_deref(),
            reply_to_message_id: m.reply_to_message_id.as_deref(),
            delivery_status: m.delivery.as_ref().map(|d| d.status),
            delivery_errors: m
                .delivery
                .as_ref()
                .map(|d| d.errors.as_slice())
                .unwrap_or(&[]),
            referral: m.referral.as_ref(),
            referral_label: m.referral.as_ref().map(crate::chat::Referral::label),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ist_is_five_and_a_half_hours_ahead() {
        let t = Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap();
        assert_eq!(ist(t), "21 Nov 2026, 03:30 PM");
    }
}
