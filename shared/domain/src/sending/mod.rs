//! Sending WhatsApp messages: queueing a send, delivering it through the
//! provider with retries, the 24-hour customer service window, the approved
//! templates and predefined texts, and delivery statistics.
//!
//! The path of every outbound message: [`queue_send`] stores it `queued`
//! and puts its reference on the send queue; the `outbound` function calls
//! [`deliver`] for each reference, which claims the message, sends it and
//! records the provider's id (`accepted`), or schedules a retry, or marks
//! it `failed`. Status callbacks then move it to sent / delivered / read.

pub mod outbox;

pub use outbox::*;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::channel::{Channel, ChannelTable, Stakeholder};
use crate::chat::{Appended, ChatStore, SendKey};
use crate::chat::{Chat, ChatId, Delivery, DeliveryStatus, Message, MessageRef, SenderType};
use crate::error::{QueueError, StoreError};
use crate::outbound::{Invalid, Outbound, TemplateParams};
use crate::protocol::fanout::push_to_room;
use crate::protocol::frame;
use crate::protocol::{ConnectionStore, Pusher, Room};

// ---------------------------------------------------------------- provider

/// Why the provider did not take a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// 408 / 425 / 429 / 5xx, timeouts, connection failures: try again
    /// later (no sooner than `retry_after` when the provider said so).
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Any other refusal: sending again would be refused again.
    #[error("{0}")]
    Permanent(String),
    /// The request may have reached the provider (no answer in time after
    /// it was sent, an answer cut short, a success without an id):
    /// sending again could send it twice.
    #[error("{0}")]
    Ambiguous(String),
}

/// What every send carries in `biz_opaque_callback_data`: WhatsApp echoes
/// it in the message's status callbacks, so a callback names our message
/// even before (or without) the provider's id being recorded.
pub fn callback_data(r: &MessageRef) -> String {
    format!("sc1:{}:{}", r.chat_id, r.message_id)
}

/// The message a status callback's `biz_opaque_callback_data` names.
pub fn message_of_callback(data: &str) -> Option<MessageRef> {
    let (chat, message) = data.strip_prefix("sc1:")?.split_once(':')?;
    Some(MessageRef {
        chat_id: crate::chat::ChatId::parse(chat).ok()?,
        message_id: message.to_owned(),
    })
    .filter(|r| !r.message_id.is_empty() && r.message_id.len() <= 200)
}

/// `biz_opaque_callback_data` of a staff alert (callbacks are not tracked).
pub fn alert_callback_data(alert_id: &str) -> String {
    format!("sc1-alert:{alert_id}")
}

/// How long an `unconfirmed` send waits for a callback naming it before
/// it is sent again. WhatsApp's `sent` callback usually follows within
/// seconds; this is the double-send window's width (docs/decisions.md).
pub const CONFIRM_WAIT: Duration = Duration::from_secs(180);

/// A send still `queued` or `unconfirmed` this long after it was due (its
/// queue entry was never written, was lost, or its delivery failed on a
/// store error) is queued again by the minute schedule.
pub const STUCK_AFTER: chrono::Duration = chrono::Duration::minutes(2);

/// A message the schedule has queued again this many attempts in total is
/// marked `failed` instead (something keeps failing before the provider).
pub const MAX_TOTAL_ATTEMPTS: u64 = 24;

/// The provider port: sends one message on one channel with our
/// `callback` data, answering the provider's message id.
pub trait Sender: Send + Sync {
    fn send(
        &self,
        channel: &Channel,
        to: &str,
        message: &Outbound,
        callback: &str,
    ) -> impl Future<Output = Result<String, SendError>> + Send;
}

/// Sorts a provider's error answer into retryable and permanent, with the
/// provider's own words when its body has them.
pub fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> SendError {
    let said = provider_error(body);
    let reason = match said {
        Some(m) => format!("provider answered {status}: {m}"),
        None => format!("provider answered {status}"),
    };
    match status {
        408 | 425 | 429 | 500..=599 => SendError::Retryable {
            reason,
            retry_after,
        },
        _ => SendError::Permanent(reason),
    }
}

/// The message of a Cloud API (or Pinbot) error body, shortened.
fn provider_error(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let e = v.get("error").unwrap_or(&v);
    let text = e
        .pointer("/error_data/details")
        .or_else(|| e.get("message"))
        .or_else(|| e.get("error"))
        .and_then(|m| m.as_str())?;
    Some(text.chars().take(300).collect())
}

// ------------------------------------------------------------------ policy

/// Exponential backoff with jitter: attempt `n` waits between half and all
/// of `base · 2^(n-1)` (capped), never less than the provider asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_secs(5),
        cap: Duration::from_secs(900),
    };

    /// `jitter` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.cap);
        let jittered = exp.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        retry_after.map_or(jittered, |r| jittered.max(r.min(self.cap)))
    }
}

/// What one delivery attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Sent, or nothing (more) to do: the queue entry can go.
    Done,
    /// Try again after this long (the queue entry stays, hidden).
    RetryIn(Duration),
    /// The last attempt failed: the message is `failed`, the entry goes to
    /// the dead-letter queue.
    GaveUp,
}

impl AttemptOutcome {
    /// Another consumer holds the item until `until`: come back then (at
    /// least a second from now).
    pub(crate) fn after_lease(until: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        let wait = (until - now).to_std().unwrap_or_default();
        AttemptOutcome::RetryIn(wait.max(Duration::from_secs(1)))
    }
}

#[derive(Clone, Copy, Debug)]
pub struct DeliverySettings {
    /// Attempts before giving up (the queue's `maxReceiveCount`).
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// How long a claimed send is kept from other consumers.
    pub lease: Duration,
    /// How long an `unconfirmed` send waits for a callback ([`CONFIRM_WAIT`]).
    pub confirm_wait: Duration,
}

impl DeliverySettings {
    pub(crate) fn lease_length(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lease).unwrap_or_else(|_| chrono::Duration::seconds(60))
    }
}

// ------------------------------------------------------------------ window

/// WhatsApp's customer service window.
pub const SERVICE_WINDOW_HOURS: i64 = 24;

/// Free-form messages may be sent until 24 h after the customer last wrote.
pub fn window_open(last_inbound: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_inbound.is_some_and(|t| now < t + chrono::Duration::hours(SERVICE_WINDOW_HOURS))
}

// ------------------------------------------------------------------ config

/// A template approved on the provider account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedTemplate {
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub body_params: usize,
    #[serde(default)]
    pub description: String,
    /// Sent to staff by the system (SLA alerts), never offered to agents
    /// or sent to customers.
    #[serde(default)]
    pub internal: bool,
}

/// Approved templates and predefined texts (`config/messages.yaml`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageCatalog {
    pub templates: Vec<ApprovedTemplate>,
    pub texts: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MessageCatalogError {
    #[error("message catalog: {0}")]
    Parse(#[from] serde_yaml_ng::Error),
    #[error("message catalog: {0}")]
    Invalid(String),
}

const EMBEDDED: &str = include_str!("../../../config/messages.yaml");

/// The predefined texts SPEC §6 names; the catalog must have each.
pub const TEXT_KEYS: [&str; 5] = ["discount", "textMsg", "care_job", "unlock_diya", "default"];

impl MessageCatalog {
    pub fn from_yaml(text: &str) -> Result<Self, MessageCatalogError> {
        let catalog: MessageCatalog = serde_yaml_ng::from_str(text)?;
        for key in TEXT_KEYS {
            if !catalog.texts.contains_key(key) {
                return Err(MessageCatalogError::Invalid(format!("no text `{key}`")));
            }
        }
        for (key, body) in &catalog.texts {
            Outbound::text(body.clone())
                .map_err(|e| MessageCatalogError::Invalid(format!("text `{key}`: {e}")))?;
        }
        for t in &catalog.templates {
            template(t, Vec::new(), t.body_params)
                .validate()
                .map_err(|e| MessageCatalogError::Invalid(format!("template {}: {e}", t.name)))?;
        }
        Ok(catalog)
    }

    pub fn embedded() -> Result<Self, MessageCatalogError> {
        Self::from_yaml(EMBEDDED)
    }

    /// `MESSAGES_FILE` when set, else the embedded catalog.
    pub fn from_env(env: &crate::config::Env) -> Result<Self, crate::config::ConfigError> {
        env.config_file("MESSAGES_FILE", EMBEDDED, Self::from_yaml)
    }

    /// The templates agents may send to customers.
    pub fn customer_templates(&self) -> impl Iterator<Item = &ApprovedTemplate> {
        self.templates.iter().filter(|t| !t.internal)
    }

    pub fn template_names(&self) -> Vec<String> {
        self.customer_templates().map(|t| t.name.clone()).collect()
    }

    /// The predefined text for `key`, or the `default` one.
    pub fn text(&self, key: &str) -> &str {
        self.texts
            .get(key)
            .or_else(|| self.texts.get("default"))
            .map_or("", String::as_str)
    }

    /// An approved template with its body values; refuses unknown names
    /// and a wrong number of values, naming what is allowed.
    pub fn template(&self, name: &str, body: Vec<String>) -> Result<Outbound, Invalid> {
        self.build_template(name, body, false)
    }

    /// A staff-facing template (`internal: true`) with its body values.
    pub fn internal_template(&self, name: &str, body: Vec<String>) -> Result<Outbound, Invalid> {
        self.build_template(name, body, true)
    }

    fn build_template(
        &self,
        name: &str,
        body: Vec<String>,
        internal: bool,
    ) -> Result<Outbound, Invalid> {
        let found = self
            .templates
            .iter()
            .find(|t| t.name == name && t.internal == internal);
        let Some(t) = found else {
            return Err(Invalid::new(
                "template",
                format!(
                    "`{}` is not an approved template; approved: {}",
                    name.chars().take(64).collect::<String>(),
                    self.template_names().join(", ")
                ),
            ));
        };
        if body.len() != t.body_params {
            return Err(Invalid::new(
                "template.params",
                format!(
                    "template {} takes {} body values, got {}",
                    t.name,
                    t.body_params,
                    body.len()
                ),
            ));
        }
        let m = template(t, body, t.body_params);
        m.validate().map(|()| m)
    }
}

fn template(t: &ApprovedTemplate, mut body: Vec<String>, params: usize) -> Outbound {
    if body.is_empty() {
        body = (1..=params).map(|i| format!("value {i}")).collect();
    }
    Outbound::Template {
        name: t.name.clone(),
        language: t.language.clone(),
        params: TemplateParams {
            body,
            buttons: Vec::new(),
        },
    }
}

// ------------------------------------------------------------------- stats

/// The counters of a day's (and a team's) outbound messages. A message
/// counts towards every stage it has reached on the way to being read;
/// one that failed counts as failed only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStats {
    pub queued: i64,
    pub accepted: i64,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
    /// Sum and count of queued → sent times, for the average.
    pub to_sent_ms: i64,
    pub to_sent_count: i64,
}

/// The stage counters, by the attribute names they are stored under.
pub const STAGES: [&str; 5] = ["accepted", "sent", "delivered", "read", "failed"];

impl DeliveryStats {
    pub fn add(&mut self, other: &DeliveryStats) {
        self.queued += other.queued;
        self.accepted += other.accepted;
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.read += other.read;
        self.failed += other.failed;
        self.to_sent_ms += other.to_sent_ms;
        self.to_sent_count += other.to_sent_count;
    }

    pub fn set(&mut self, name: &str, value: i64) {
        match name {
            "queued" => self.queued = value,
            "accepted" => self.accepted = value,
            "sent" => self.sent = value,
            "delivered" => self.delivered = value,
            "read" => self.read = value,
            "failed" => self.failed = value,
            "to_sent_ms" => self.to_sent_ms = value,
            "to_sent_count" => self.to_sent_count = value,
            _ => {}
        }
    }

    pub fn avg_seconds_to_sent(&self) -> Option<f64> {
        (self.to_sent_count > 0)
            .then(|| self.to_sent_ms as f64 / self.to_sent_count as f64 / 1000.0)
    }

    pub fn view(&self) -> serde_json::Value {
        json!({
            "queued": self.queued,
            "accepted": self.accepted,
            "sent": self.sent,
            "delivered": self.delivered,
            "read": self.read,
            "failed": self.failed,
            "avg_seconds_to_sent": self.avg_seconds_to_sent(),
        })
    }
}

/// The stages a message in `status` counts towards.
pub fn stages(status: DeliveryStatus) -> &'static [&'static str] {
    match status {
        DeliveryStatus::Queued | DeliveryStatus::Unconfirmed => &[],
        DeliveryStatus::Accepted => &["accepted"],
        DeliveryStatus::Sent => &["accepted", "sent"],
        DeliveryStatus::Delivered => &["accepted", "sent", "delivered"],
        DeliveryStatus::Read => &["accepted", "sent", "delivered", "read"],
        DeliveryStatus::Failed => &["failed"],
    }
}

/// How the stage counters move when a message goes from `from` to `to`.
pub fn stage_delta(from: DeliveryStatus, to: DeliveryStatus) -> Vec<(&'static str, i64)> {
    let (a, b) = (stages(from), stages(to));
    STAGES
        .iter()
        .filter_map(|s| {
            let d = i64::from(b.contains(s)) - i64::from(a.contains(s));
            (d != 0).then_some((*s, d))
        })
        .collect()
}

/// Whether moving `from` → `to` makes the message count as sent for the
/// first time (+1) or no longer (-1): the queued → sent time follows it.
pub fn sent_change(from: DeliveryStatus, to: DeliveryStatus) -> i64 {
    i64::from(stages(to).contains(&"sent")) - i64::from(stages(from).contains(&"sent"))
}

/// The UTC days from `from` to `to`, at most `max` of them.
pub fn days(from: NaiveDate, to: NaiveDate, max: usize) -> Result<Vec<NaiveDate>, String> {
    if to < from {
        return Err("`to` is before `from`".into());
    }
    let n = usize::try_from((to - from).num_days()).unwrap_or(usize::MAX);
    if n >= max {
        return Err(format!("a period is at most {max} days"));
    }
    Ok(from.iter_days().take(n + 1).collect())
}

// --------------------------------------------------------------------- log

/// Which outbound messages to list: newest first, queued within
/// `[from, to]`, optionally one customer's and/or one state's.
#[derive(Clone, Debug, PartialEq)]
pub struct LogQuery {
    pub customer: Option<crate::customer::SenderId>,
    pub state: Option<DeliveryStatus>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub limit: usize,
    /// Continue after this entry (the previous page's `next_cursor`).
    pub after: Option<String>,
}

/// One outbound message as the log shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogEntry {
    pub chat_id: ChatId,
    pub message_id: String,
    pub customer: String,
    pub customer_type: Option<Stakeholder>,
    pub sender: String,
    pub sender_type: SenderType,
    pub kind: String,
    pub preview: String,
    pub state: DeliveryStatus,
    pub attempts: u64,
    pub errors: Vec<String>,
    pub last_error: Option<String>,
    pub wa_message_id: Option<String>,
    pub queued_at: DateTime<Utc>,
    pub state_at: Option<DateTime<Utc>>,
}

/// The log's opaque paging cursor (base64url of the last entry's position).
pub fn encode_log_cursor(position: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(position.as_bytes())
}

/// A cursor [`encode_log_cursor`] made; `None` for anything else.
pub fn decode_log_cursor(cursor: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .ok()?;
    String::from_utf8(bytes)
        .ok()
        .filter(|p| p.len() <= 300 && p.is_ascii())
}

/// The most a log page holds.
pub const MAX_LOG_PAGE: usize = 100;
/// The longest period one log or stats request covers.
pub const MAX_PERIOD_DAYS: usize = 92;

// ---------------------------------------------------------------- services

/// Why a send was not queued.
#[derive(Debug, thiserror::Error)]
pub enum NotQueued {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("{message}")]
    WindowClosed {
        message: String,
        templates: Vec<String>,
    },
    #[error("no such chat")]
    NoChat,
    #[error("the chat keeps changing")]
    KeepsChanging,
    /// The client id names a message of another chat.
    #[error("client id {0} was used for a message in another chat")]
    KeyReused(SendKey),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the send queue is unavailable")]
    Queue(#[source] QueueError),
}

/// Who a send is from: an executive (`Agent`) or an automation (`System`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    pub sender: String,
    pub sender_type: SenderType,
}

const CONFLICT_ATTEMPTS: usize = 5;

/// Stores `message` in `chat` as `queued` and puts it on the send queue.
/// Refuses at once what WhatsApp would refuse, and free-form messages
/// outside the customer service window (naming the templates that may be
/// sent instead). If the queue cannot take it, the stored message is
/// marked `failed` (it can be re-sent) and the caller hears so. Under a
/// `key` the sender used before, nothing new is stored: the message stored
/// then is returned (and queued again if it is still waiting).
pub async fn queue_send<S, Q>(
    store: &S,
    queue: &Q,
    templates: &MessageCatalog,
    chat: &Chat,
    message: &Outbound,
    from: &Author,
    key: Option<&SendKey>,
) -> Result<(Chat, Message), NotQueued>
where
    S: ChatStore,
    Q: OutboundQueue,
{
    let now = Utc::now();
    let id = SendId {
        at: now,
        message_id: Message::id_for(now, 0, &uuid::Uuid::now_v7().simple().to_string()),
    };
    let (after, stored) = match store_send(store, templates, chat, message, from, &id, key).await {
        Ok(Some(done)) => done,
        Ok(None) => match key {
            // Sent before under this key (its answer was lost): that one.
            Some(key) => return sent_before(store, queue, chat, from, key, &id.message_id).await,
            // The write may have gone through though its answer was lost
            // (a timeout or 500 after the commit, then a retry refused):
            // the id is fresh, so a message stored under it is this one.
            // Queue it rather than tell the agent it failed (they would
            // send it again).
            None => written_after_all(store, &chat.chat_id, &id.message_id)
                .await?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "send {} reported stored, not found",
                        id.message_id
                    ))
                })?,
        },
        Err(NotQueued::Store(e @ StoreError::Unavailable(_))) => {
            written_after_all(store, &chat.chat_id, &id.message_id)
                .await?
                .ok_or(e)?
        }
        Err(e) => return Err(e),
    };
    let reference = MessageRef {
        chat_id: stored.chat_id.clone(),
        message_id: stored.message_id.clone(),
    };
    enqueue_or_fail(store, queue, &reference).await?;
    tracing::info!(chat_id = %reference.chat_id, message_id = %reference.message_id,
        kind = message.kind(), sender = %from.sender, "message queued for sending");
    Ok((after, stored))
}

/// What a send under a key used before comes to: the message stored under
/// it (this very call's, if its write went through and the retry found the
/// key taken), queued again if still waiting for its queue entry.
async fn sent_before<S, Q>(
    store: &S,
    queue: &Q,
    chat: &Chat,
    from: &Author,
    key: &SendKey,
    fresh_id: &str,
) -> Result<(Chat, Message), NotQueued>
where
    S: ChatStore,
    Q: OutboundQueue,
{
    let earlier = store.sent_under(&from.sender, key).await?.ok_or_else(|| {
        StoreError::Corrupt(format!("client id {key} taken, its message not found"))
    })?;
    if earlier.chat_id != chat.chat_id {
        return Err(NotQueued::KeyReused(key.clone()));
    }
    let (after, stored) = message_and_chat(store, &earlier.chat_id, &earlier.message_id)
        .await?
        .ok_or_else(|| {
            StoreError::Corrupt(format!("message {} of client id {key}", earlier.message_id))
        })?;
    // Its first attempt may have stopped between the store and the queue;
    // a second queue entry is harmless (a send is claimed once).
    let waiting = stored.delivery.as_ref().map(|d| d.status) == Some(DeliveryStatus::Queued);
    if waiting {
        enqueue_or_fail(store, queue, &earlier).await?;
    }
    tracing::info!(chat_id = %earlier.chat_id, message_id = %earlier.message_id,
        client_id = %key, requeued = waiting, ours = earlier.message_id == fresh_id,
        "a send under a client id used before: the message stored then");
    Ok((after, stored))
}

/// The message stored under `message_id` and its chat as it is now, if
/// the write whose outcome was not known went through.
async fn written_after_all<S: ChatStore>(
    store: &S,
    chat_id: &ChatId,
    message_id: &str,
) -> Result<Option<(Chat, Message)>, StoreError> {
    let found = message_and_chat(store, chat_id, message_id).await?;
    if found.is_some() {
        tracing::warn!(%chat_id, %message_id,
            "a send's store write went through though its answer was lost; queuing it");
    }
    Ok(found)
}

/// The message stored under `message_id` and its chat as it is now.
async fn message_and_chat<S: ChatStore>(
    store: &S,
    chat_id: &ChatId,
    message_id: &str,
) -> Result<Option<(Chat, Message)>, StoreError> {
    let Some(message) = store.message(chat_id, message_id).await? else {
        return Ok(None);
    };
    let chat = store
        .chat(chat_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("chat {chat_id} of a stored message")))?;
    Ok(Some((chat, message)))
}

/// Where a send is stored: when, and under which message id. A fresh send
/// takes a new id; an automation's answer derives it from the message it
/// answers, so answering again after a retry stores it once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendId {
    pub at: DateTime<Utc>,
    pub message_id: String,
}

/// Stores `message` in `chat` as `queued` (not yet on the send queue), as
/// [`queue_send`] does; `None` when a message with this id (or, given a
/// key, under this key) was stored before (nothing written).
pub async fn store_send<S: ChatStore>(
    store: &S,
    templates: &MessageCatalog,
    chat: &Chat,
    message: &Outbound,
    from: &Author,
    id: &SendId,
    key: Option<&SendKey>,
) -> Result<Option<(Chat, Message)>, NotQueued> {
    message.validate()?;
    let now = id.at;
    let mut chat = chat.clone();
    if message.needs_open_window() && !window_open(chat.last_incoming_message, now) {
        let names = templates.template_names();
        let when = match chat.last_incoming_message {
            Some(t) => format!("the customer last wrote at {}", t.to_rfc3339()),
            None => "the customer has not written on this chat".to_owned(),
        };
        return Err(NotQueued::WindowClosed {
            message: format!(
                "the 24-hour customer service window is closed ({when}); \
                 only a template can be sent: {}",
                names.join(", ")
            ),
            templates: names,
        });
    }
    let mut stored = Message::ours(
        chat.chat_id.clone(),
        id.message_id.clone(),
        (from.sender.clone(), from.sender_type),
        crate::chat::Content::of_send(message),
        now,
        Some(Delivery {
            status: DeliveryStatus::Queued,
            at: Some(now),
            errors: Vec::new(),
        }),
    );
    for _ in 0..CONFLICT_ATTEMPTS {
        match store.append_outbound(&chat, &stored, key).await {
            Ok(Appended::Stored(after)) => {
                stored.inbound_seq = after.inbound_count;
                return Ok(Some((*after, stored)));
            }
            Ok(Appended::Duplicate) => return Ok(None),
            Err(StoreError::Conflict(_)) => {
                chat = store.chat(&chat.chat_id).await?.ok_or(NotQueued::NoChat)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(NotQueued::KeepsChanging)
}

/// Puts a stored `queued` message on the send queue; if the queue cannot
/// take it, marks the message `failed` (so it shows, and can be re-sent).
pub async fn enqueue_or_fail<S, Q>(
    store: &S,
    queue: &Q,
    reference: &MessageRef,
) -> Result<(), NotQueued>
where
    S: ChatStore,
    Q: OutboundQueue,
{
    let Err(e) = queue.enqueue(reference).await else {
        return Ok(());
    };
    tracing::error!(chat_id = %reference.chat_id, message_id = %reference.message_id, error = ?e,
        "the send queue refused a message; marking it failed so it can be re-sent");
    let failed = Delivery {
        status: DeliveryStatus::Failed,
        at: Some(Utc::now()),
        errors: vec!["the send queue was unavailable; re-send it".to_owned()],
    };
    store.apply_delivery(reference, &failed).await?;
    Err(NotQueued::Queue(e))
}

/// What the minute schedule did about sends that were overdue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StuckReport {
    /// Put on the send queue again.
    pub requeued: usize,
    /// Marked `failed` after [`MAX_TOTAL_ATTEMPTS`].
    pub failed: usize,
}

/// Queues again every send still `queued` / `unconfirmed` [`STUCK_AFTER`]
/// past its due time: its queue entry was never written (a crash between
/// storing and queueing), was dead-lettered after store errors, or its
/// consumer died mid-send. A redundant entry is harmless: the claim lets
/// one consumer send, and a sent message is finished for the others.
pub async fn requeue_stuck<S, Q, P>(
    store: &S,
    queue: &Q,
    pusher: &P,
    now: DateTime<Utc>,
) -> Result<StuckReport, StoreError>
where
    S: ChatStore + OutboxStore + ConnectionStore,
    Q: OutboundQueue,
    P: Pusher,
{
    let mut report = StuckReport::default();
    for (r, attempts) in store.unsent_sends(now - STUCK_AFTER, 100).await? {
        if attempts >= MAX_TOTAL_ATTEMPTS {
            let failed = Delivery {
                status: DeliveryStatus::Failed,
                at: Some(now),
                errors: vec![format!(
                    "gave up after {attempts} attempts that never reached the provider; re-send it"
                )],
            };
            if store.apply_delivery(&r, &failed).await? {
                tracing::error!(chat_id = %r.chat_id, message_id = %r.message_id, attempts, "stuck send marked failed");
                announce_delivery(store, pusher, &r, None, &failed).await;
                report.failed += 1;
            }
            continue;
        }
        match queue.enqueue(&r).await {
            Ok(()) => {
                tracing::warn!(chat_id = %r.chat_id, message_id = %r.message_id, attempts,
                    "overdue send queued again");
                report.requeued += 1;
            }
            Err(e) => {
                tracing::warn!(chat_id = %r.chat_id, message_id = %r.message_id, error = ?e,
                    "overdue send not queued now; the next run tries again");
            }
        }
    }
    Ok(report)
}

/// Tells a chat's watchers where one of its messages is (`message_status`).
pub async fn announce_delivery<S, P>(
    store: &S,
    pusher: &P,
    target: &MessageRef,
    wa_message_id: Option<&str>,
    delivery: &Delivery,
) where
    S: ConnectionStore,
    P: Pusher,
{
    let f = frame(
        "message_status",
        json!({
            "chat_id": target.chat_id,
            "message_id": target.message_id,
            "wa_message_id": wa_message_id,
            "status": delivery.status,
            "at": delivery.at,
            "errors": delivery.errors,
        }),
        None,
    );
    push_to_room(store, pusher, &Room::Chat(target.chat_id.clone()), &f).await;
}

/// What [`deliver`] needs: storage, the provider, the push channel and the
/// channel table.
pub struct SendWorker<'a, S, D, P> {
    pub store: &'a S,
    pub sender: &'a D,
    pub pusher: &'a P,
    pub channels: &'a ChannelTable,
    pub settings: DeliverySettings,
}

impl<S, D, P> SendWorker<'_, S, D, P>
where
    S: ChatStore + OutboxStore + ConnectionStore,
    D: Sender,
    P: Pusher,
{
    /// One attempt at sending a queued message. `attempt` counts from 1
    /// (the queue's receive count); `jitter` is in `[0, 1)`.
    pub async fn deliver(
        &self,
        job: &MessageRef,
        attempt: u32,
        jitter: f64,
    ) -> Result<AttemptOutcome, StoreError> {
        let now = Utc::now();
        let lease = self.settings.lease_length();
        let (message, to) = match self.store.claim_send(job, now, now + lease).await? {
            SendClaim::Claimed(m, to) => (m, to),
            SendClaim::Finished(status) => {
                tracing::info!(chat_id = %job.chat_id, message_id = %job.message_id, state = status.as_str(),
                    "send already handled; nothing to do");
                return Ok(AttemptOutcome::Done);
            }
            SendClaim::Busy(until) => return Ok(AttemptOutcome::after_lease(until, now)),
            SendClaim::Missing => {
                tracing::error!(chat_id = %job.chat_id, message_id = %job.message_id,
                    "queued send names no stored message; dropping the entry");
                return Ok(AttemptOutcome::Done);
            }
        };
        // Whom to: as the message records it, else from its chat.
        let to = match to {
            Some(to) => to,
            None => match self.store.chat(&job.chat_id).await? {
                Some(chat) => Recipient {
                    customer: chat.customer,
                    channel: chat.channel,
                    team: chat.customer_type,
                },
                None => return self.fail(job, "the chat no longer exists".into()).await,
            },
        };
        let channel = self
            .channels
            .get(to.channel.as_str())
            .or_else(|| self.channels.iter().find(|c| c.stakeholder == to.team));
        let Some(channel) = channel else {
            let reason = format!("no channel serves {}", to.team);
            return self.fail(job, reason).await;
        };
        let Some(outbound) = message.content.as_send() else {
            return self
                .fail(job, "stored content is not sendable".into())
                .await;
        };
        if let Err(e) = outbound.validate() {
            return self.fail(job, e.to_string()).await;
        }
        match self
            .sender
            .send(
                channel,
                to.customer.as_str(),
                &outbound,
                &callback_data(job),
            )
            .await
        {
            Ok(wa_id) => {
                let at = Utc::now();
                self.store.record_accepted(job, &wa_id, at).await?;
                tracing::info!(chat_id = %job.chat_id, message_id = %job.message_id, wa_message_id = %wa_id,
                    channel = %channel.id, attempt, "provider accepted the message");
                let accepted = Delivery {
                    status: DeliveryStatus::Accepted,
                    at: Some(at),
                    errors: Vec::new(),
                };
                announce_delivery(self.store, self.pusher, job, Some(&wa_id), &accepted).await;
                Ok(AttemptOutcome::Done)
            }
            Err(SendError::Permanent(reason)) => {
                tracing::warn!(chat_id = %job.chat_id, message_id = %job.message_id, reason = %reason,
                    attempt, "provider refused the message; not retrying");
                self.fail(job, reason).await
            }
            Err(SendError::Ambiguous(reason)) => {
                // Not sent again blindly: a status callback carrying our id
                // confirms it meanwhile (inbound), else it goes again then.
                let wait = self.settings.confirm_wait;
                let confirm_by = Utc::now()
                    + chrono::Duration::from_std(wait)
                        .unwrap_or_else(|_| chrono::Duration::minutes(3));
                tracing::warn!(chat_id = %job.chat_id, message_id = %job.message_id, reason = %reason,
                    attempt, confirm_by = %confirm_by, "send outcome unknown; waiting for a callback before any retry");
                if self
                    .store
                    .mark_unconfirmed(job, &reason, confirm_by)
                    .await?
                {
                    let unconfirmed = Delivery {
                        status: DeliveryStatus::Unconfirmed,
                        at: Some(Utc::now()),
                        errors: vec![reason],
                    };
                    announce_delivery(self.store, self.pusher, job, None, &unconfirmed).await;
                }
                Ok(AttemptOutcome::RetryIn(wait + Duration::from_secs(1)))
            }
            Err(SendError::Retryable {
                reason,
                retry_after,
            }) if attempt < self.settings.max_attempts => {
                let wait = self.settings.backoff.delay(attempt, jitter, retry_after);
                let retry_at = Utc::now()
                    + chrono::Duration::from_std(wait)
                        .unwrap_or_else(|_| chrono::Duration::hours(1));
                self.store.release_send(job, &reason, retry_at).await?;
                tracing::warn!(chat_id = %job.chat_id, message_id = %job.message_id, reason = %reason,
                    attempt, retry_in_ms = wait.as_millis() as u64, "send failed; will retry");
                Ok(AttemptOutcome::RetryIn(wait))
            }
            Err(SendError::Retryable { reason, .. }) => {
                tracing::error!(chat_id = %job.chat_id, message_id = %job.message_id, reason = %reason,
                    attempt, "send failed for the last time; marking it failed");
                let reason = format!("gave up after {attempt} attempts: {reason}");
                self.fail(job, reason).await?;
                Ok(AttemptOutcome::GaveUp)
            }
        }
    }

    async fn fail(&self, job: &MessageRef, reason: String) -> Result<AttemptOutcome, StoreError> {
        let failed = Delivery {
            status: DeliveryStatus::Failed,
            at: Some(Utc::now()),
            errors: vec![reason],
        };
        if self.store.apply_delivery(job, &failed).await? {
            announce_delivery(self.store, self.pusher, job, None, &failed).await;
        }
        Ok(AttemptOutcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_answers_sort_into_retryable_and_permanent() {
        for status in [408, 425, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(status, "", None), SendError::Retryable { .. }),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 422] {
            assert!(
                matches!(classify(status, "", None), SendError::Permanent(_)),
                "{status}"
            );
        }
        let body = r#"{"error":{"message":"(#131026) Message undeliverable","code":131026,
            "error_data":{"details":"Receiver is incapable of receiving this message"}}}"#;
        assert_eq!(
            classify(400, body, None),
            SendError::Permanent(
                "provider answered 400: Receiver is incapable of receiving this message".into()
            )
        );
        let limited = classify(
            429,
            r#"{"message":"slow down"}"#,
            Some(Duration::from_secs(7)),
        );
        assert_eq!(
            limited,
            SendError::Retryable {
                reason: "provider answered 429: slow down".into(),
                retry_after: Some(Duration::from_secs(7)),
            }
        );
    }

    #[test]
    fn callback_data_names_our_message_and_nothing_else() {
        let r = MessageRef {
            chat_id: crate::chat::ChatId::parse("01a2239e-15a4-7255-9249-c02e890e5543").unwrap(),
            message_id: "1795893892639-0000-01a2239e161f".into(),
        };
        let data = callback_data(&r);
        assert!(data.len() <= 512, "WhatsApp's limit");
        assert_eq!(message_of_callback(&data), Some(r));
        for other in [
            "",
            "sc1:",
            "sc1:not-a-chat:m",
            "campaign-42",
            &alert_callback_data("a1"),
        ] {
            assert_eq!(message_of_callback(other), None, "{other}");
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let b = Backoff {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(60),
        };
        assert_eq!(b.delay(1, 0.0, None), Duration::from_secs(1));
        assert_eq!(b.delay(1, 0.999_999, None).as_secs(), 1);
        assert_eq!(b.delay(3, 0.0, None), Duration::from_secs(4));
        assert_eq!(b.delay(3, 1.0, None), Duration::from_secs(8));
        assert_eq!(b.delay(30, 1.0, None), Duration::from_secs(60), "capped");
        assert_eq!(
            b.delay(1, 0.0, Some(Duration::from_secs(9))),
            Duration::from_secs(9)
        );
        assert_eq!(
            b.delay(1, 0.0, Some(Duration::from_secs(3600))),
            Duration::from_secs(60),
            "a provider's wait is capped too"
        );
    }

    #[test]
    fn the_window_is_24_hours_from_the_customers_last_message() {
        let now = Utc::now();
        assert!(window_open(Some(now - chrono::Duration::hours(23)), now));
        assert!(!window_open(Some(now - chrono::Duration::hours(24)), now));
        assert!(!window_open(None, now));
    }

    #[test]
    fn stage_counters_move_with_each_transition() {
        use DeliveryStatus::*;
        assert_eq!(stage_delta(Queued, Accepted), vec![("accepted", 1)]);
        assert_eq!(
            stage_delta(Accepted, Read),
            vec![("sent", 1), ("delivered", 1), ("read", 1)]
        );
        assert_eq!(
            stage_delta(Sent, Failed),
            vec![("accepted", -1), ("sent", -1), ("failed", 1)]
        );
        assert_eq!(stage_delta(Failed, Queued), vec![("failed", -1)], "re-send");
        assert_eq!(sent_change(Accepted, Delivered), 1);
        assert_eq!(sent_change(Sent, Failed), -1);
        assert_eq!(sent_change(Delivered, Read), 0);
    }

    #[test]
    fn the_catalog_has_every_predefined_text_and_checks_templates() {
        let c = MessageCatalog::embedded().expect("embedded catalog");
        for key in TEXT_KEYS {
            assert!(!c.text(key).is_empty(), "{key}");
        }
        assert!(c.text("unlock_diya").contains("PROMISE500"));
        assert_eq!(
            c.text("textMsg"),
            "Currently, we're supporting only text msg."
        );
        assert_eq!(c.text("no-such-key"), c.text("default"));
        assert_eq!(
            c.template("ask_issue_resolved", Vec::new()),
            Ok(Outbound::ask_issue_resolved())
        );
        let unknown = c.template("free_money", Vec::new()).unwrap_err();
        assert!(unknown.to_string().contains("approved: ask_issue_resolved"));
        assert!(c.template("ask_issue_resolved", vec!["x".into()]).is_err());
        let missing = "templates: []\ntexts:\n  default: hi\n";
        assert!(MessageCatalog::from_yaml(missing).is_err());
    }

    #[test]
    fn periods_are_bounded_days() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        assert_eq!(
            days(d("2026-02-27"), d("2026-03-01"), 92).map(|v| v.len()),
            Ok(3)
        );
        assert!(days(d("2026-03-02"), d("2026-03-01"), 92).is_err());
        assert!(days(d("2026-01-01"), d("2026-12-31"), 92).is_err());
    }
}
