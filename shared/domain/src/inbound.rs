//! Inbound processing (SPEC §4): one queued webhook event at a time, in
//! order per customer, idempotent.

use crate::error::QueueError;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::{ChannelId, ChannelTable};
use crate::chat::Content;
use crate::chat::rating::{RatingSettings, parse_rating};
use crate::chat::{Appended, ChatStore};
use crate::chat::{Chat, ChatId, Counts, Delivery, DeliveryStatus, Direction, Message, SenderType};
use crate::customer::ProfileUpdate;
use crate::discount::DiscountRouteStore;
use crate::discount::bot::{Answered, BotError, BotSeeds, BotStore, DiscountBot};
use crate::error::StoreError;
use crate::events::{DomainEvent, EventPublisher, PublishError};
use crate::protocol::fanout::{push_room_update, push_stats, push_to_room};
use crate::protocol::frame;
use crate::protocol::views::{ChatView, MessageView};
use crate::protocol::{ConnectionStore, Pusher, Room};
use crate::replies::ResponseCache;
use crate::sending::message_of_callback;
use crate::sending::{MessageCatalog, OutboundQueue};
use crate::settings::{SettingsStore, in_force};
use crate::whatsapp::{InboundEvent, InboundMessage, StatusUpdate};

/// What the webhook puts on the inbound queue: one WhatsApp event, the
/// channel it came in on and when we received it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueuedEvent {
    pub channel: ChannelId,
    pub received_at: DateTime<Utc>,
    /// Position in the webhook body: events of one body share
    /// `received_at`, and this keeps their order.
    #[serde(default)]
    pub position: u32,
    pub event: InboundEvent,
}

/// SQS limits group and deduplication ids to 128 characters.
const SQS_ID_MAX: usize = 128;

fn sqs_id(raw: &str) -> String {
    let clean: String = raw
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if clean.len() <= SQS_ID_MAX {
        clean
    } else {
        crate::customer::hash_hex(raw)
    }
}

impl QueuedEvent {
    pub fn to_entry(&self) -> Result<QueueEntry, serde_json::Error> {
        Ok(QueueEntry {
            group_id: sqs_id(self.event.group_key()),
            dedup_id: sqs_id(&format!("{}:{}", self.channel, self.event.dedup_key())),
            body: serde_json::to_string(self)?,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Stored {
        chat_id: ChatId,
        message_id: String,
        /// Processing it left domain events in the store's outbox (it
        /// assigned the chat): worth a drain.
        events_pending: bool,
    },
    Duplicate,
    /// A status moved an outbound message forward.
    StatusApplied {
        chat_id: ChatId,
        message_id: String,
    },
    /// A status for a message we did not send, an unknown status, or one
    /// older than what we know: acknowledged, nothing to change.
    StatusIgnored,
}

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// The channel was removed from the table after the message was queued:
    /// kept for the DLQ rather than dropped.
    #[error("channel {0} is not in the channel table")]
    UnknownChannel(ChannelId),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Retried: the event must reach the bus (subscribers see it at least
    /// once and deduplicate on its ids).
    #[error("domain event not published")]
    Publish(#[from] PublishError),
    /// Retried: the bot's answer is stored and queued once however often
    /// the message comes.
    #[error("the discount bot did not answer: {0}")]
    Bot(#[from] BotError),
}

pub struct Inbound<'a, S, P, E, Q> {
    pub store: &'a S,
    pub pusher: &'a P,
    pub events: &'a E,
    pub channels: &'a ChannelTable,
    /// Who is asked to rate a resolution (seeded; an admin's change wins).
    pub rating: &'a RatingSettings,
    /// The send queue, for the discount bot's answers.
    pub outbox: &'a Q,
    /// The predefined texts the bot answers with.
    pub messages: &'a MessageCatalog,
    /// The bot's routes and settings (seeded; the stored ones win).
    pub bot: &'a BotSeeds,
}

fn chat_created(chat: &Chat) -> DomainEvent {
    DomainEvent {
        detail_type: "chat.created".into(),
        detail: serde_json::json!(ChatView::new(chat, 0)),
    }
}

fn chat_rated(chat: &Chat, rating: u8) -> DomainEvent {
    DomainEvent {
        detail_type: "chat.rated".into(),
        detail: serde_json::json!({"chat": ChatView::new(chat, 0), "rating": rating}),
    }
}

fn message_received(chat: &Chat, message: &Message) -> DomainEvent {
    DomainEvent {
        detail_type: "message.received".into(),
        detail: serde_json::json!({
            "chat_id": chat.chat_id,
            "customer": chat.customer,
            "customer_type": chat.customer_type,
            "channel": chat.channel,
            "message": MessageView::new(message),
        }),
    }
}

impl<S, P, E, Q> Inbound<'_, S, P, E, Q>
where
    S: ChatStore
        + ConnectionStore
        + crate::executive::ExecutiveStore
        + crate::routing::assignment::RoutingStore
        + crate::customer::CustomerStore
        + crate::sending::OutboxStore
        + SettingsStore
        + BotStore
        + DiscountRouteStore
        + ResponseCache,
    P: Pusher,
    E: EventPublisher,
    Q: OutboundQueue,
{
    pub async fn process(&self, queued: &QueuedEvent) -> Result<Outcome, InboundError> {
        match &queued.event {
            InboundEvent::Message(m) => self.message(queued, m).await,
            InboundEvent::Status(s) => self.status(s).await,
        }
    }

    async fn message(
        &self,
        queued: &QueuedEvent,
        m: &InboundMessage,
    ) -> Result<Outcome, InboundError> {
        let channel = self
            .channels
            .get(queued.channel.as_str())
            .ok_or_else(|| InboundError::UnknownChannel(queued.channel.clone()))?;
        let stakeholder = channel.stakeholder;
        if let Content::System {
            system_type,
            new_wa_id: Some(new),
            ..
        } = &m.content
            && system_type == "user_changed_number"
        {
            // Before the message: a retry of the event repeats it harmlessly.
            for update in ProfileUpdate::number_changed(m.from.as_str(), new) {
                self.store.upsert_profile(&update).await?;
            }
            tracing::info!(customer = %crate::telemetry::Masked(m.from.as_str()), "customer changed their number");
        }
        let reply_to_message_id = match &m.reply_to {
            Some(quoted) => self.store.message_ref(quoted).await?.map(|r| r.message_id),
            None => None,
        };

        // Optimistic concurrency: if the chat changed between reading it and
        // appending (an agent resolved it, say), read it again and retry.
        let mut attempts = 0;
        let (before, created, chat, message, rated) = loop {
            let (mut chat, created) = self.find_or_open(queued, m, stakeholder).await?;
            let before = chat.clone();
            // WhatsApp sends the profile name with every message: keep the latest.
            if m.profile_name.is_some() {
                chat.customer_name = m.profile_name.clone();
            }
            let message = Message {
                chat_id: chat.chat_id.clone(),
                message_id: Message::id_for(queued.received_at, queued.position, &m.wa_message_id),
                wa_message_id: Some(m.wa_message_id.clone()),
                direction: Direction::Inbound,
                sender: m.from.to_string(),
                sender_type: SenderType::Customer,
                preview: m.content.preview(),
                content: m.content.clone(),
                sent_at: m.sent_at,
                received_at: queued.received_at,
                reply_to: m.reply_to.clone(),
                reply_to_message_id: reply_to_message_id.clone(),
                delivery: None,
                inbound_seq: 0,
                referral: m.referral.as_deref().cloned(),
            };
            // An answer to the rating question is the chat's rating and
            // leaves it resolved; anything else is a message as always.
            let score = match chat.rating_asked_at {
                Some(_) => self.rating_of(&chat, &message).await?,
                None => None,
            };
            let appended = match score {
                Some(score) => self.store.append_rating(&chat, &message, score).await,
                None => self.store.append_inbound(&chat, &message).await,
            };
            match appended {
                Ok(Appended::Stored(after)) => break (before, created, *after, message, score),
                Ok(Appended::Duplicate) => {
                    // Stored before; the event may not have reached the bus
                    // then, so it goes again (subscribers deduplicate). No
                    // second push: dashboards already have it.
                    tracing::info!(wa_message_id = %m.wa_message_id, "duplicate delivery; not stored again");
                    if let Some(stored) = self.store.message_ref(&m.wa_message_id).await? {
                        let mut again = message.clone();
                        again.message_id = stored.message_id;
                        self.events
                            .publish(&[message_received(&chat, &again)])
                            .await?;
                        // The answer may not have gone out either.
                        if !stakeholder.is_staffed() {
                            self.answer(&chat, &again).await?;
                        }
                    }
                    return Ok(Outcome::Duplicate);
                }
                Err(StoreError::Conflict(reason)) if attempts < 3 => {
                    attempts += 1;
                    tracing::info!(reason = %reason, attempt = attempts, "chat changed while appending; retrying");
                }
                Err(e) => return Err(e.into()),
            }
        };
        let mut events = vec![message_received(&chat, &message)];
        if let Some(score) = rated {
            events.push(chat_rated(&chat, score));
        }
        self.events.publish(&events).await?;
        tracing::info!(
            chat_id = %chat.chat_id,
            message_id = %message.message_id,
            wa_message_id = %m.wa_message_id,
            kind = message.content.kind(),
            "message stored"
        );

        self.announce(&chat, &message).await;
        if !stakeholder.is_staffed() {
            self.answer(&chat, &message).await?;
        }
        if let Some(score) = rated {
            tracing::info!(chat_id = %chat.chat_id, rating = score, "chat rated");
            let f = frame(
                "chat_rated",
                serde_json::json!({"chat": ChatView::new(&chat, 0), "rating": score}),
                None,
            );
            let rooms = [
                Room::Chat(chat.chat_id.clone()),
                Room::Dashboard(chat.customer_type),
            ];
            crate::protocol::fanout::push_to_rooms(self.store, self.pusher, &rooms, &f).await;
        }
        let moved = Counts::delta(
            Some((before.status, before.awaiting_reply)),
            (chat.status, chat.awaiting_reply),
        );
        if created || !moved.is_zero() {
            push_stats(self.store, self.pusher).await;
        }
        // A chat nobody owns gets an owner by round robin (or waits in its
        // team's line). The message is stored either way: a failure here is
        // left to the scheduled sweep rather than redelivering the message.
        let mut events_pending = false;
        if chat.assigned_to.is_none() {
            match crate::routing::assignment::route(self.store, self.pusher, chat.clone(), None)
                .await
            {
                Ok(routed) => {
                    events_pending =
                        matches!(routed, crate::routing::assignment::Routed::Assigned(_));
                }
                Err(e) => {
                    tracing::warn!(chat_id = %chat.chat_id, error = ?e, "chat not assigned now; the sweep will");
                }
            }
        }
        Ok(Outcome::Stored {
            chat_id: chat.chat_id,
            message_id: message.message_id,
            events_pending,
        })
    }

    /// The discount bot's answer to a customer on the automated channel.
    async fn answer(&self, chat: &Chat, message: &Message) -> Result<(), InboundError> {
        let bot = DiscountBot {
            store: self.store,
            outbox: self.outbox,
            messages: self.messages,
            seeds: self.bot,
        };
        if let Answered::Sent {
            decision,
            replies,
            stored,
            chat: after,
        } = bot.answer(chat, message).await?
        {
            tracing::info!(chat_id = %chat.chat_id, message_id = %message.message_id,
                decision = ?decision, replies, "discount bot answer queued");
            // Admins watching the automated channel see the answer live.
            for reply in &stored {
                self.announce(&after, reply).await;
            }
        }
        Ok(())
    }

    /// The rating `message` gives `chat`, if the chat awaits one (within
    /// the window of the settings in force) and the message is one.
    async fn rating_of(&self, chat: &Chat, message: &Message) -> Result<Option<u8>, InboundError> {
        let settings = in_force(self.store, self.rating).await?;
        Ok(settings
            .awaits_rating(chat, message.received_at)
            .then(|| parse_rating(&message.content))
            .flatten())
    }

    /// The customer's current chat for this stakeholder, opened if there is
    /// none; `true` when this call opened it.
    async fn find_or_open(
        &self,
        queued: &QueuedEvent,
        m: &InboundMessage,
        stakeholder: crate::channel::Stakeholder,
    ) -> Result<(Chat, bool), InboundError> {
        match self.store.current_chat(stakeholder, &m.from).await? {
            // Opened by an earlier attempt that failed before its first
            // message: announce it again (at least once).
            Some(chat) if chat.message_count == 0 => {
                self.events.publish(&[chat_created(&chat)]).await?;
                Ok((chat, false))
            }
            Some(chat) => Ok((chat, false)),
            None => {
                let mut fresh = Chat::open(
                    m.from.clone(),
                    m.profile_name.clone(),
                    stakeholder,
                    queued.channel.clone(),
                    queued.received_at,
                );
                // A new conversation carries the customer's context as it
                // is now (a context change may be why it is new).
                fresh.context = self.store.current_context(&m.from, stakeholder).await?;
                let chat = self.store.create_chat(&fresh).await?;
                let created = chat.chat_id == fresh.chat_id;
                if created {
                    tracing::info!(chat_id = %chat.chat_id, customer_type = %stakeholder, "chat created");
                }
                if chat.message_count == 0 {
                    self.events.publish(&[chat_created(&chat)]).await?;
                }
                Ok((chat, created))
            }
        }
    }

    async fn status(&self, s: &StatusUpdate) -> Result<Outcome, InboundError> {
        let Some(status) = DeliveryStatus::parse(&s.status) else {
            tracing::warn!(wa_message_id = %s.wa_message_id, status = %s.status, "unknown delivery status ignored");
            return Ok(Outcome::StatusIgnored);
        };
        let target = match self.store.message_ref(&s.wa_message_id).await? {
            Some(target) => target,
            // The provider id was never recorded (an answer lost on the way,
            // a crash after sending): our id in the callback data names the
            // message, and this confirms it before any retry.
            None => match s.callback_data.as_deref().and_then(message_of_callback) {
                Some(ours) => {
                    let at = s.at.unwrap_or_else(Utc::now);
                    if self
                        .store
                        .record_accepted(&ours, &s.wa_message_id, at)
                        .await?
                    {
                        tracing::info!(chat_id = %ours.chat_id, message_id = %ours.message_id,
                            wa_message_id = %s.wa_message_id, "send confirmed by its status callback");
                    } else if let Some(recorded) = self.store.message_ref(&s.wa_message_id).await? {
                        // The sender recorded this very id in between.
                        return self.apply_status(s, status, recorded).await;
                    } else {
                        tracing::warn!(chat_id = %ours.chat_id, message_id = %ours.message_id,
                            wa_message_id = %s.wa_message_id,
                            "callback for a send already recorded under another provider id: it went out twice");
                        crate::telemetry::count("DoubleSends", 1);
                        return Ok(Outcome::StatusIgnored);
                    }
                    ours
                }
                None => {
                    tracing::info!(wa_message_id = %s.wa_message_id, status = %s.status, "status for a message not sent through Smart Chat");
                    return Ok(Outcome::StatusIgnored);
                }
            },
        };
        self.apply_status(s, status, target).await
    }

    async fn apply_status(
        &self,
        s: &StatusUpdate,
        status: DeliveryStatus,
        target: crate::chat::MessageRef,
    ) -> Result<Outcome, InboundError> {
        let delivery = Delivery {
            status,
            at: s.at,
            errors: s.errors.clone(),
        };
        if !self.store.apply_delivery(&target, &delivery).await? {
            return Ok(Outcome::StatusIgnored);
        }
        tracing::info!(chat_id = %target.chat_id, message_id = %target.message_id, status = status.as_str(), "delivery status applied");
        crate::sending::announce_delivery(
            self.store,
            self.pusher,
            &target,
            Some(&s.wa_message_id),
            &delivery,
        )
        .await;
        Ok(Outcome::StatusApplied {
            chat_id: target.chat_id,
            message_id: target.message_id,
        })
    }

    /// `new_message` to the chat's watchers, `room_update*` (with each
    /// recipient's own unseen count) to the stakeholder's dashboards.
    async fn announce(&self, chat: &Chat, message: &Message) {
        let new_message = frame(
            "new_message",
            serde_json::json!({"chat_id": chat.chat_id, "message": MessageView::new(message)}),
            None,
        );
        push_to_room(
            self.store,
            self.pusher,
            &Room::Chat(chat.chat_id.clone()),
            &new_message,
        )
        .await;

        push_room_update(self.store, self.pusher, chat).await;
    }
}

/// One message for the inbound FIFO queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueEntry {
    pub group_id: String,
    pub dedup_id: String,
    pub body: String,
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

pub trait InboundQueue: Send + Sync {
    /// Returns only once every entry is durably queued.
    fn enqueue(
        &self,
        entries: &[QueueEntry],
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    fn ping(&self) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// What a context change did to the customer's conversation.
#[derive(Clone, Debug, PartialEq)]
pub enum ContextOutcome {
    /// No field of the change starts a new conversation: kept on the
    /// customer only.
    Kept,
    /// The conversation ended (the chat as it is now; resolved by the
    /// system if it was active); the next message opens a new chat.
    Ended(Box<Chat>),
    /// A field that starts a new conversation changed, but the customer
    /// had no chat with the team.
    NoChat,
}

/// A context change from another system (already recorded on the
/// customer): when it names a field that starts a new conversation, the
/// customer's current chat with the team ends (see
/// [`crate::chat::context`]) and dashboards hear of it.
pub async fn context_changed<S, P>(
    store: &S,
    pusher: &P,
    rules: &crate::chat::context::ContextRules,
    change: &crate::customer::ContextChange,
    at: DateTime<Utc>,
) -> Result<ContextOutcome, StoreError>
where
    S: ChatStore + ConnectionStore,
    P: Pusher,
{
    let fields = rules.new_conversation_fields(change);
    if fields.is_empty() {
        return Ok(ContextOutcome::Kept);
    }
    let Ok(customer) = crate::customer::SenderId::parse(&change.customer) else {
        return Ok(ContextOutcome::NoChat);
    };
    // The chat may change between our read and our write (a message, an
    // agent): read again and retry.
    for _ in 0..3 {
        let Some(chat) = store.current_chat(change.customer_type, &customer).await? else {
            return Ok(ContextOutcome::NoChat);
        };
        let after = match store.end_conversation(&chat, at).await {
            Ok(after) => after,
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        };
        tracing::info!(chat_id = %chat.chat_id, fields = ?fields, "context changed: conversation ended");
        if after.status != chat.status {
            let update = frame(
                "chat_status_updated",
                serde_json::json!({
                    "chat": ChatView::new(&after, 0),
                    "from": chat.status,
                    "to": after.status,
                    "by": crate::chat::transition::SYSTEM_ACTOR,
                    "reason": crate::chat::context::CONTEXT_CHANGE,
                }),
                None,
            );
            push_to_room(store, pusher, &Room::Chat(after.chat_id.clone()), &update).await;
            push_room_update(store, pusher, &after).await;
            push_stats(store, pusher).await;
        }
        return Ok(ContextOutcome::Ended(Box::new(after)));
    }
    Err(StoreError::Conflict(format!(
        "the chat of {} kept changing",
        crate::telemetry::Masked(&change.customer)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::SenderId;

    #[test]
    fn queue_entries_group_by_customer_and_dedupe_by_message_id() {
        let q = QueuedEvent {
            channel: ChannelId::parse("9099039188").unwrap(),
            received_at: Utc::now(),
            position: 0,
            event: InboundEvent::Message(InboundMessage {
                wa_message_id: "wamid.X".into(),
                from: SenderId::parse("919800000001").unwrap(),
                phone: Some("919800000001".into()),
                profile_name: None,
                sent_at: None,
                reply_to: None,
                content: Content::Text { body: "hi".into() },
                referral: None,
            }),
        };
        let e = q.to_entry().unwrap();
        assert_eq!(e.group_id, "919800000001");
        assert_eq!(e.dedup_id, "9099039188:wamid.X");
        let back: QueuedEvent = serde_json::from_str(&e.body).unwrap();
        assert_eq!(back, q);
    }

    #[test]
    fn over_long_ids_are_hashed_to_fit_sqs() {
        let long = "w".repeat(300);
        let id = sqs_id(&long);
        assert_eq!(id.len(), 64);
        assert_eq!(id, sqs_id(&long));
    }
}
