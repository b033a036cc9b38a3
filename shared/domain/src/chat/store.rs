//! The chat store: the port the chat services need from storage.

use crate::chat::tags::TagName;
use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};

use crate::channel::Stakeholder;
use crate::chat::{
    Chat, ChatId, ChatStatus, DashboardCounts, Delivery, ListPosition, Message, MessageRef,
};
use crate::customer::SenderId;
use crate::error::StoreError;
use crate::executive::ExecutiveId;
use serde::{Deserialize, Serialize};

/// The dashboard's own id for one message an agent composed
/// (`send_message`'s `client_id`). The dashboard sends it again under the
/// same key when the answer was lost (a socket dropped before it came):
/// the message is stored and sent once. 1–64 letters, digits, `-`, `_`;
/// one executive's keys are theirs alone, and remembered for a day.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SendKey(String);

crate::newtype::string_newtype!(SendKey, String);

impl SendKey {
    pub const MAX_LEN: usize = 64;

    pub fn parse(value: &str) -> Result<Self, String> {
        let ok = !value.is_empty()
            && value.len() <= Self::MAX_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!(
                "a client id is 1-{} letters, digits, '-' or '_'",
                Self::MAX_LEN
            ))
        }
    }
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

    /// The current chats of these (team, customer) pairs (those that have
    /// one), in no particular order.
    fn current_chats(
        &self,
        pairs: &[(Stakeholder, SenderId)],
    ) -> impl Future<Output = Result<Vec<Chat>, StoreError>> + Send;

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

    /// Ends the customer's conversation in `chat` because their context
    /// changed (see [`crate::chat::context`]): an active chat is resolved
    /// by the system, and their next message opens a new chat. `Conflict`
    /// if the chat changed or is no longer their current one.
    fn end_conversation(
        &self,
        chat: &Chat,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Chat, StoreError>> + Send;

    /// Stores the customer's rating answer (see [`crate::chat::rating`]):
    /// the message and the chat's rating, without reopening it.
    fn append_rating(
        &self,
        chat: &Chat,
        message: &Message,
        score: u8,
    ) -> impl Future<Output = Result<Appended, StoreError>> + Send;

    /// Stores an outbound message (agent or system) and moves the header;
    /// `Duplicate` if a message with its id is stored already or, given a
    /// `key`, its sender stored one under that key (see
    /// [`SendKey`]).
    fn append_outbound(
        &self,
        chat: &Chat,
        message: &Message,
        key: Option<&SendKey>,
    ) -> impl Future<Output = Result<Appended, StoreError>> + Send;

    /// The message `sender` stored under `key`, if any (within a day).
    fn sent_under(
        &self,
        sender: &str,
        key: &SendKey,
    ) -> impl Future<Output = Result<Option<MessageRef>, StoreError>> + Send;

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
    /// entry in the same transaction; resolving marks the chat as asked
    /// for a rating when `ask_rating`. `Conflict` if the chat changed since.
    fn set_status(
        &self,
        chat: &Chat,
        to: ChatStatus,
        by: &ExecutiveId,
        at: DateTime<Utc>,
        ask_rating: bool,
    ) -> impl Future<Output = Result<Chat, StoreError>> + Send;

    /// The dashboard counters, in all and per team.
    fn counts(&self) -> impl Future<Output = Result<DashboardCounts, StoreError>> + Send;

    /// The counters counted from the chats themselves (by index, `COUNT`
    /// queries): what a repair compares `counts` against.
    fn recount(&self) -> impl Future<Output = Result<DashboardCounts, StoreError>> + Send;

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
    /// [`crate::chat::tags::MAX_TAGS_PER_CHAT`] tags: adding one more is a
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
