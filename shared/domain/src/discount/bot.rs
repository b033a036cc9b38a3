//! The discount bot's conversation (channel 9638120888, v1 BRD FR-2): what
//! it answers to each customer message, and the service that stores and
//! queues the answer once.
//!
//! - A message naming an offered route → the offer: one CTA URL message
//!   (header, body with the code and how to use it, footer, a button to the
//!   app).
//! - "Yes, Send Discount Code" (the campaign template's quick reply) → the
//!   code, as a CTA URL message.
//! - "I don't need discount" → reason buttons (Bad Service / Prices are
//!   High / Other Reason); the answer goes to the decline log.
//! - A keyword rule (`care_job`, `unlock_diya`, …) → its predefined text.
//! - Any other text → the default care text and the company's contact card;
//!   anything that is not text → `textMsg`; reactions and WhatsApp's own
//!   notices → nothing.
//!
//! Wording, keywords, the campaign's route and the flood guard are data
//! ([`BotSettings`], seeded from `automations.yaml`, changed by admins); the
//! predefined texts come from `messages.yaml`. What the bot answers to a
//! given text does not depend on who sends it, so it is read through the
//! reply cache (`chat_response::{message}`, 30 minutes): an admin's change
//! of routes or settings clears it.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{DiscountRoute, DiscountRouteStore, DiscountRoutes, normalize, routes_in_force};
use crate::chat::{Chat, ChatId, Content, Message, MessageRef, SenderType};
use crate::config::{ConfigError, Env};
use crate::customer::SenderId;
use crate::error::{QueueError, StoreError};
use crate::outbound::{ContactCard, Outbound, ReplyButton, limits};
use crate::replies::{ResponseCache, reply_cache_key};
use crate::sending::{Author, MessageCatalog, OutboundQueue, SendId, store_send};
use crate::settings::{Named, SettingsStore, in_force};

const EMBEDDED: &str = include_str!("../../../config/automations.yaml");

/// Who the bot's messages are from in the chat.
pub const BOT_ACTOR: &str = "discount-bot";

/// How long a cached answer lives (the seeds' `chat_response` TTL).
pub const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1800);

/// Why a customer said no to the discount (the seeds' `no_discount_log`
/// reason codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    BadService,
    PricesHigh,
    Other,
}

impl DeclineReason {
    pub const ALL: [DeclineReason; 3] = [
        DeclineReason::BadService,
        DeclineReason::PricesHigh,
        DeclineReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeclineReason::BadService => "bad_service",
            DeclineReason::PricesHigh => "prices_high",
            DeclineReason::Other => "other",
        }
    }

    /// The button's title (WhatsApp allows 20 characters).
    pub fn title(self) -> &'static str {
        match self {
            DeclineReason::BadService => "Bad Service",
            DeclineReason::PricesHigh => "Prices are High",
            DeclineReason::Other => "Other Reason",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Prefix of the reason buttons' ids: `no_discount:{reason}:{route_id}`.
const REASON_ID: &str = "no_discount";

/// A message's header, body and button, with `{route}`, `{price}` and
/// `{code}` filled from the route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wording {
    pub header: String,
    pub body: String,
    pub button: String,
}

/// A keyword rule: a message containing one of `words` (as whole words,
/// any case) is answered with the predefined text `text`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordRule {
    pub text: String,
    pub words: Vec<String>,
}

/// The bot's wording and rules: seeded from `automations.yaml`
/// (`AUTOMATIONS_FILE`); an admin's change is stored and wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotSettings {
    /// Where the buttons lead.
    pub app_url: String,
    pub footer: String,
    /// The route whose code answers the campaign template's "Yes, Send
    /// Discount Code" (its quick reply names no route).
    pub campaign_route: String,
    /// Flood guard: the most answers one sender gets in a minute.
    pub answers_per_minute: u32,
    pub offer: Wording,
    pub code: Wording,
    /// The question above the reason buttons.
    pub ask_reason: String,
    /// The answer to a reason.
    pub thanks: String,
    /// Checked in order; the first that matches answers.
    pub keywords: Vec<KeywordRule>,
}

#[derive(Deserialize)]
struct File {
    discount_bot: BotSettings,
}

/// `text`, cut to `max` characters (the last one "…") if longer.
fn shortened(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The most answers per minute an admin may allow one sender.
pub const MAX_ANSWERS_PER_MINUTE: u32 = 60;

impl BotSettings {
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let file: File = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        file.discount_bot.validated()
    }

    /// The settings shipped with the code, or `AUTOMATIONS_FILE`'s.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        env.config_file("AUTOMATIONS_FILE", EMBEDDED, Self::from_yaml)
    }

    /// Refuses what WhatsApp would refuse (checked on the longest route a
    /// route may be), a URL that is not https, a flood limit of nothing or
    /// more than [`MAX_ANSWERS_PER_MINUTE`], a keyword rule without words.
    pub fn validated(self) -> Result<Self, String> {
        if !self.app_url.starts_with("https://") || self.app_url.chars().count() > 2000 {
            return Err("discount_bot.app_url must be an https URL".into());
        }
        if !(1..=MAX_ANSWERS_PER_MINUTE).contains(&self.answers_per_minute) {
            return Err(format!(
                "discount_bot.answers_per_minute must be 1 to {MAX_ANSWERS_PER_MINUTE}"
            ));
        }
        let longest = DiscountRoute {
            from: "W".repeat(64),
            to: "W".repeat(64),
            price: 100_000,
            code: "C".repeat(32),
            placeholder: false,
            disabled: false,
        };
        for (name, wording) in [("offer", &self.offer), ("code", &self.code)] {
            self.cta(wording, &longest)
                .validate()
                .map_err(|e| format!("discount_bot.{name} (with the longest route): {e}"))?;
        }
        self.reason_buttons(&longest)
            .validate()
            .map_err(|e| format!("discount_bot.ask_reason: {e}"))?;
        Outbound::text(self.thanks.clone()).map_err(|e| format!("discount_bot.thanks: {e}"))?;
        for rule in &self.keywords {
            if rule.words.is_empty() || rule.words.iter().any(|w| normalize(w).is_empty()) {
                return Err(format!(
                    "discount_bot.keywords: the rule for `{}` needs words with letters or digits",
                    rule.text.chars().take(64).collect::<String>()
                ));
            }
        }
        Ok(self)
    }

    /// The predefined texts the keyword rules answer with.
    pub fn keyword_texts(&self) -> impl Iterator<Item = &str> {
        self.keywords.iter().map(|k| k.text.as_str())
    }

    /// The CTA URL message of `wording` for `route`. A header or button
    /// that a long route's name makes too long for WhatsApp is shortened
    /// (with "…"), so every route can be offered.
    fn cta(&self, wording: &Wording, route: &DiscountRoute) -> Outbound {
        let fill = |s: &str| {
            s.replace("{route}", &route.name())
                .replace("{price}", &route.price.to_string())
                .replace("{code}", &route.code)
        };
        Outbound::CtaUrl {
            header: Some(shortened(&fill(&wording.header), limits::HEADER_TEXT_CHARS))
                .filter(|h| !h.trim().is_empty()),
            body: fill(&wording.body),
            footer: Some(self.footer.clone()).filter(|f| !f.trim().is_empty()),
            display_text: shortened(&fill(&wording.button), limits::CTA_DISPLAY_CHARS),
            url: self.app_url.clone(),
        }
    }

    fn reason_buttons(&self, route: &DiscountRoute) -> Outbound {
        Outbound::Buttons {
            header: None,
            body: self.ask_reason.clone(),
            footer: Some(self.footer.clone()).filter(|f| !f.trim().is_empty()),
            buttons: DeclineReason::ALL
                .into_iter()
                .map(|r| ReplyButton {
                    id: format!("{REASON_ID}:{}:{}", r.as_str(), route.route_id()),
                    title: r.title().to_owned(),
                })
                .collect(),
        }
    }
}

impl Named for BotSettings {
    const NAME: &'static str = "DISCOUNT_BOT";
}

/// What the bot made of a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// A route was named: its offer.
    Offer { route: String },
    /// "Yes, Send Discount Code": the route's code.
    Code { route: String },
    /// "I don't need discount": asked why.
    AskReason { route: String },
    /// The reason, logged.
    Declined {
        route: String,
        reason: DeclineReason,
    },
    /// A keyword rule's predefined text.
    Keyword { text: String },
    /// Nothing recognised: the default care text and contact card.
    Care,
    /// Not text: `textMsg`.
    NotText,
    /// A reaction or a notice from WhatsApp: no answer.
    Silent,
}

impl Decision {
    /// The day's counters this decision adds one to (see [`BotStats`]).
    pub fn counters(&self) -> Vec<String> {
        match self {
            Decision::Offer { route } => vec!["offers".into(), format!("offers#{route}")],
            Decision::Code { route } => vec!["codes".into(), format!("codes#{route}")],
            Decision::AskReason { route } => {
                vec!["declines".into(), format!("declines#{route}")]
            }
            Decision::Declined { route, reason } => vec![
                format!("reasons#{}", reason.as_str()),
                format!("reasons#{}#{route}", reason.as_str()),
            ],
            Decision::Keyword { text } => vec![format!("keywords#{text}")],
            Decision::Care => vec!["care".into()],
            Decision::NotText => vec!["not_text".into()],
            Decision::Silent => Vec::new(),
        }
    }
}

/// What the bot answers: the decision and the messages that carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub decision: Decision,
    pub replies: Vec<Outbound>,
}

/// What a customer's message says, as far as the bot cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Said<'a> {
    Text(&'a str),
    /// A quick reply or reply button: its id or payload, and its title.
    Button {
        id: Option<&'a str>,
        title: &'a str,
    },
    NotText,
    Nothing,
}

impl<'a> Said<'a> {
    pub fn of(content: &'a Content) -> Self {
        match content {
            Content::Text { body } => Said::Text(body),
            Content::Button { payload, text } => Said::Button {
                id: payload.as_deref(),
                title: text,
            },
            Content::InteractiveReply {
                reply_id, title, ..
            } => Said::Button {
                id: Some(reply_id),
                title,
            },
            Content::Reaction { .. } | Content::System { .. } => Said::Nothing,
            _ => Said::NotText,
        }
    }

    /// The reply cache key of what was said (`None`: nothing to look up).
    pub fn cache_key(&self) -> Option<String> {
        match self {
            Said::Text(text) => Some(reply_cache_key(text)),
            Said::Button { id, title } => Some(reply_cache_key(&format!(
                "button {} {title}",
                id.unwrap_or("")
            ))),
            Said::NotText | Said::Nothing => None,
        }
    }
}

/// The campaign's quick replies, as their normalised words without spaces.
const YES: &str = "yessenddiscountcode";
const NO: &str = "idontneeddiscount";

fn squashed(text: &str) -> String {
    normalize(text).replace(' ', "")
}

/// What the bot answers to `said`, given the routes and settings in force
/// and the predefined texts.
pub fn decide(
    said: &Said<'_>,
    routes: &DiscountRoutes,
    settings: &BotSettings,
    texts: &MessageCatalog,
) -> Answer {
    let text = |key: &str| Outbound::Text {
        body: texts.text(key).to_owned(),
        preview_url: false,
    };
    let known = |id: &str| routes.routes.iter().find(|r| r.route_id() == id);
    let offered = |id: &str| known(id).filter(|r| r.offered());
    let care = || Answer {
        decision: Decision::Care,
        replies: vec![
            text("default"),
            Outbound::Contact(ContactCard::oneway_cab()),
        ],
    };
    let (words, id) = match said {
        Said::Nothing => {
            return Answer {
                decision: Decision::Silent,
                replies: Vec::new(),
            };
        }
        Said::NotText => {
            return Answer {
                decision: Decision::NotText,
                replies: vec![text("textMsg")],
            };
        }
        Said::Text(t) => (*t, None),
        Said::Button { id, title } => (*title, *id),
    };
    // Our reason buttons name the reason and the route (logged even if
    // the route was switched off since).
    if let Some(rest) = id.and_then(|i| i.strip_prefix(REASON_ID)) {
        let mut parts = rest.trim_start_matches(':').splitn(2, ':');
        if let (Some(reason), Some(route)) = (
            parts.next().and_then(DeclineReason::parse),
            parts.next().and_then(known),
        ) {
            return Answer {
                decision: Decision::Declined {
                    route: route.route_id(),
                    reason,
                },
                replies: vec![Outbound::Text {
                    body: settings.thanks.clone(),
                    preview_url: false,
                }],
            };
        }
    }
    let pressed = [Some(words), id].into_iter().flatten().map(squashed);
    for said in pressed {
        if said != YES && said != NO {
            continue;
        }
        let Some(route) = offered(&settings.campaign_route) else {
            return care();
        };
        return if said == YES {
            Answer {
                decision: Decision::Code {
                    route: route.route_id(),
                },
                replies: vec![settings.cta(&settings.code, route)],
            }
        } else {
            Answer {
                decision: Decision::AskReason {
                    route: route.route_id(),
                },
                replies: vec![settings.reason_buttons(route)],
            }
        };
    }
    let offering = DiscountRoutes {
        routes: routes
            .routes
            .iter()
            .filter(|r| r.offered())
            .cloned()
            .collect(),
    };
    if let Some(route) = offering.matching(words) {
        return Answer {
            decision: Decision::Offer {
                route: route.route_id(),
            },
            replies: vec![settings.cta(&settings.offer, route)],
        };
    }
    let padded = format!(" {} ", normalize(words));
    for rule in &settings.keywords {
        if rule
            .words
            .iter()
            .any(|w| padded.contains(&format!(" {} ", normalize(w))))
            && texts.texts.contains_key(&rule.text)
        {
            return Answer {
                decision: Decision::Keyword {
                    text: rule.text.clone(),
                },
                replies: vec![text(&rule.text)],
            };
        }
    }
    care()
}

/// One answer, as the bot's records keep it: counted once per customer
/// message, and a decline logged.
#[derive(Clone, Debug, PartialEq)]
pub struct AnswerRecord {
    /// The customer message answered (WhatsApp's id): what makes a
    /// record once-only.
    pub wa_message_id: String,
    pub customer: SenderId,
    pub chat_id: ChatId,
    pub at: DateTime<Utc>,
    pub decision: Decision,
}

/// One line of the decline log (the seeds' `no_discount_log`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decline {
    pub customer: String,
    pub chat_id: ChatId,
    pub route: String,
    pub reason: DeclineReason,
    pub at: DateTime<Utc>,
}

/// What the flood guard says about one more answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowance {
    Allowed,
    /// Over the limit; `first` for the first message over it this minute.
    Refused {
        first: bool,
    },
}

/// Where the bot keeps its records.
pub trait BotStore: Send + Sync {
    /// The flood guard: whether `customer` may have an answer to the
    /// message `message_id` in the minute starting at `minute`, when
    /// `limit` messages a minute are answered. Another delivery of a
    /// message already allowed is allowed again (it is not counted twice).
    fn allow_answer(
        &self,
        customer: &SenderId,
        minute: DateTime<Utc>,
        message_id: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Allowance, StoreError>> + Send;

    /// Records an answer (its counters, and the decline log line for a
    /// reason) unless this customer message was recorded before; whether
    /// this call recorded it.
    fn record_answer(
        &self,
        record: &AnswerRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The day's declines, newest first, at most `limit`.
    fn declines(
        &self,
        day: NaiveDate,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Decline>, StoreError>> + Send;

    /// The counters of each day (days without answers absent).
    fn bot_counters(
        &self,
        days: &[NaiveDate],
    ) -> impl Future<Output = Result<BTreeMap<NaiveDate, BTreeMap<String, u64>>, StoreError>> + Send;
}

/// The counters of a period, as admins read them: offers and codes sent,
/// declines with their reasons, per route and in all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BotStats {
    counters: BTreeMap<String, u64>,
}

impl BotStats {
    /// The sum of some days' counters.
    pub fn of<'a>(days: impl IntoIterator<Item = &'a BTreeMap<String, u64>>) -> Self {
        let mut stats = BotStats::default();
        for counters in days {
            stats.add(counters);
        }
        stats
    }

    pub fn add(&mut self, counters: &BTreeMap<String, u64>) {
        for (name, n) in counters {
            *self.counters.entry(name.clone()).or_default() += n;
        }
    }

    fn get(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    pub fn view(&self) -> serde_json::Value {
        let reasons = |route: Option<&str>| {
            let mut out = serde_json::Map::new();
            for r in DeclineReason::ALL {
                let name = match route {
                    Some(route) => format!("reasons#{}#{route}", r.as_str()),
                    None => format!("reasons#{}", r.as_str()),
                };
                out.insert(r.as_str().to_owned(), self.get(&name).into());
            }
            serde_json::Value::Object(out)
        };
        let mut routes = BTreeMap::new();
        let mut keywords = serde_json::Map::new();
        for name in self.counters.keys() {
            let mut parts = name.split('#');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("offers" | "codes" | "declines"), Some(route), None)
                | (Some("reasons"), Some(_), Some(route)) => {
                    routes.entry(route.to_owned()).or_insert(());
                }
                (Some("keywords"), Some(text), None) => {
                    keywords.insert(text.to_owned(), self.get(name).into());
                }
                _ => {}
            }
        }
        let per_route: serde_json::Map<String, serde_json::Value> = routes
            .into_keys()
            .map(|route| {
                let view = serde_json::json!({
                    "offers": self.get(&format!("offers#{route}")),
                    "codes": self.get(&format!("codes#{route}")),
                    "declines": self.get(&format!("declines#{route}")),
                    "reasons": reasons(Some(&route)),
                });
                (route, view)
            })
            .collect();
        serde_json::json!({
            "offers": self.get("offers"),
            "codes": self.get("codes"),
            "declines": self.get("declines"),
            "reasons": reasons(None),
            "keywords": keywords,
            "care": self.get("care"),
            "not_text": self.get("not_text"),
            "routes": per_route,
        })
    }
}

/// The bot's seeded data: routes and settings (the stored ones win).
#[derive(Clone, Debug)]
pub struct BotSeeds {
    pub routes: DiscountRoutes,
    pub settings: BotSettings,
}

impl BotSeeds {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            routes: DiscountRoutes::from_env(env)?,
            settings: BotSettings::from_env(env)?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Retried with the customer's message: the answer is stored, and goes
    /// on the queue again.
    #[error("the send queue is unavailable")]
    Queue(#[source] QueueError),
    #[error("the answer could not be stored: {0}")]
    NotStored(String),
}

/// What the bot did about one customer message.
#[derive(Clone, Debug, PartialEq)]
pub enum Answered {
    /// Nothing to answer.
    Silent,
    /// Over the flood guard: stored, not answered.
    Quiet,
    /// Answered: `replies` queued (on a retry, queued again); `stored`
    /// the replies this call stored (none on a retry), `chat` the chat
    /// after them.
    Sent {
        decision: Decision,
        replies: usize,
        stored: Vec<Message>,
        chat: Box<Chat>,
    },
}

/// The discount bot, answering customers on the automated channel.
pub struct DiscountBot<'a, S, Q> {
    pub store: &'a S,
    pub outbox: &'a Q,
    pub messages: &'a MessageCatalog,
    pub seeds: &'a BotSeeds,
}

impl<S, Q> DiscountBot<'_, S, Q>
where
    S: crate::chat::ChatStore + BotStore + DiscountRouteStore + SettingsStore + ResponseCache,
    Q: OutboundQueue,
{
    /// Answers `message` (as stored in `chat`, with its stored id) once: a
    /// second delivery of the same message finds its record and its stored
    /// replies, and only puts them on the send queue again (the send claim
    /// keeps that harmless).
    pub async fn answer(&self, chat: &Chat, message: &Message) -> Result<Answered, BotError> {
        let said = Said::of(&message.content);
        if said == Said::Nothing {
            return Ok(Answered::Silent);
        }
        let settings = in_force(self.store, &self.seeds.settings).await?;
        let wa_message_id = message
            .wa_message_id
            .clone()
            .unwrap_or_else(|| message.message_id.clone());
        let minute = minute_of(message.received_at);
        let limit = settings.answers_per_minute;
        match self
            .store
            .allow_answer(&chat.customer, minute, &wa_message_id, limit)
            .await?
        {
            Allowance::Allowed => {}
            Allowance::Refused { first } => {
                if first {
                    tracing::warn!(chat_id = %chat.chat_id, customer = %crate::telemetry::Masked(chat.customer.as_str()),
                        limit, "discount bot flood guard: this sender's messages are stored, not answered, until the minute ends");
                }
                return Ok(Answered::Quiet);
            }
        }
        let answer = self.answer_to(&said, &settings).await?;
        if answer.decision == Decision::Silent {
            return Ok(Answered::Silent);
        }
        let record = AnswerRecord {
            wa_message_id: wa_message_id.clone(),
            customer: chat.customer.clone(),
            chat_id: chat.chat_id.clone(),
            at: message.received_at,
            decision: answer.decision.clone(),
        };
        if self.store.record_answer(&record).await? {
            tracing::info!(chat_id = %chat.chat_id, decision = ?answer.decision, "discount bot answered");
        }
        let from = Author {
            sender: BOT_ACTOR.to_owned(),
            sender_type: SenderType::System,
        };
        let mut current = chat.clone();
        let mut queued = Vec::with_capacity(answer.replies.len());
        let mut stored = Vec::new();
        for (k, reply) in answer.replies.iter().enumerate() {
            // Right after the customer's message (ids sort by time), under
            // ids a second delivery of that message finds again.
            let id = SendId {
                at: Utc::now(),
                message_id: format!("{}-r{k}", message.message_id),
            };
            match store_send(self.store, self.messages, &current, reply, &from, &id, None).await {
                Ok(Some((after, message))) => {
                    current = after;
                    stored.push(message);
                }
                Ok(None) => {}
                Err(crate::sending::NotQueued::Store(e)) => return Err(e.into()),
                Err(e) => return Err(BotError::NotStored(e.to_string())),
            }
            queued.push(MessageRef {
                chat_id: chat.chat_id.clone(),
                message_id: id.message_id,
            });
        }
        for reference in &queued {
            self.outbox
                .enqueue(reference)
                .await
                .map_err(BotError::Queue)?;
        }
        Ok(Answered::Sent {
            decision: answer.decision,
            replies: queued.len(),
            stored,
            chat: Box::new(current),
        })
    }

    /// The answer to `said`: from the reply cache, else decided from the
    /// routes in force and cached.
    async fn answer_to(
        &self,
        said: &Said<'_>,
        settings: &BotSettings,
    ) -> Result<Answer, StoreError> {
        let key = said.cache_key();
        if let Some(key) = &key
            && let Some(json) = self.store.cached(key).await?
            && let Ok(answer) = serde_json::from_str::<Answer>(&json)
        {
            return Ok(answer);
        }
        let routes = match said {
            Said::Text(_) | Said::Button { .. } => {
                routes_in_force(self.store, &self.seeds.routes).await?
            }
            Said::NotText | Said::Nothing => DiscountRoutes { routes: Vec::new() },
        };
        let answer = decide(said, &routes, settings, self.messages);
        if let Some(key) = key {
            let json = serde_json::to_string(&answer)
                .map_err(|e| StoreError::Corrupt(format!("bot answer: {e}")))?;
            self.store.put_cached(&key, &json, CACHE_TTL).await?;
        }
        Ok(answer)
    }
}

/// The start of the minute `at` falls in.
fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let secs = at.timestamp() - at.timestamp().rem_euclid(60);
    DateTime::from_timestamp(secs, 0).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds() -> (DiscountRoutes, BotSettings, MessageCatalog) {
        let env = Env::default();
        (
            DiscountRoutes::from_env(&env).expect("shipped routes"),
            BotSettings::from_env(&env).expect("shipped bot settings"),
            MessageCatalog::from_env(&env).expect("shipped messages"),
        )
    }

    fn answer(said: Said<'_>) -> Answer {
        let (routes, settings, texts) = seeds();
        decide(&said, &routes, &settings, &texts)
    }

    #[test]
    fn the_shipped_keyword_rules_answer_with_texts_that_exist() {
        let (_, settings, texts) = seeds();
        for key in settings.keyword_texts() {
            assert!(texts.texts.contains_key(key), "{key}");
        }
        assert_eq!(settings.campaign_route, "pune-to-mumbai");
    }

    #[test]
    fn a_named_route_gets_its_offer_with_the_code_and_a_button_to_the_app() {
        let a = answer(Said::Text("Need Discount Code - Pune to Mumbai @ 2199"));
        assert_eq!(
            a.decision,
            Decision::Offer {
                route: "pune-to-mumbai".into()
            }
        );
        let [
            Outbound::CtaUrl {
                header,
                body,
                footer,
                url,
                ..
            },
        ] = a.replies.as_slice()
        else {
            panic!("{:?}", a.replies)
        };
        assert!(body.contains("TRUST4111"), "{body}");
        assert!(
            header
                .as_deref()
                .is_some_and(|h| h.contains("Pune to Mumbai"))
        );
        assert_eq!(footer.as_deref(), Some("Inter-City Experts"));
        assert_eq!(url, "https://oneway.cab/app");
    }

    #[test]
    fn a_placeholder_route_is_never_offered_and_the_offered_route_it_contains_is() {
        // Pune → Mumbai Airport is a placeholder; Pune → Mumbai is real.
        let a = answer(Said::Text(
            "Need Discount Code - Pune to Mumbai Airport @ 2199",
        ));
        assert_eq!(
            a.decision,
            Decision::Offer {
                route: "pune-to-mumbai".into()
            }
        );
        let a = answer(Said::Text("Nashik to Mumbai Airport"));
        assert_eq!(a.decision, Decision::Care);
    }

    #[test]
    fn the_campaign_buttons_send_the_code_or_ask_why() {
        for said in [
            Said::Button {
                id: Some("Yes, Send Discount Code"),
                title: "Yes, Send Discount Code",
            },
            Said::Button {
                id: None,
                title: "yes send discount code",
            },
            Said::Text("Yes, send discount code"),
        ] {
            let a = answer(said.clone());
            assert_eq!(
                a.decision,
                Decision::Code {
                    route: "pune-to-mumbai".into()
                },
                "{said:?}"
            );
            assert!(
                matches!(&a.replies[..], [Outbound::CtaUrl { body, .. }] if body.contains("TRUST4111"))
            );
        }
        let a = answer(Said::Button {
            id: Some("payload-1"),
            title: "I don't need discount",
        });
        assert_eq!(
            a.decision,
            Decision::AskReason {
                route: "pune-to-mumbai".into()
            }
        );
        let [Outbound::Buttons { buttons, .. }] = a.replies.as_slice() else {
            panic!("{:?}", a.replies)
        };
        let titles: Vec<&str> = buttons.iter().map(|b| b.title.as_str()).collect();
        assert_eq!(titles, ["Bad Service", "Prices are High", "Other Reason"]);
        // Pressing one is a logged decline.
        let a = answer(Said::Button {
            id: Some(&buttons[1].id),
            title: &buttons[1].title,
        });
        assert_eq!(
            a.decision,
            Decision::Declined {
                route: "pune-to-mumbai".into(),
                reason: DeclineReason::PricesHigh
            }
        );
        assert!(matches!(&a.replies[..], [Outbound::Text { .. }]));
    }

    #[test]
    fn without_an_offered_campaign_route_the_buttons_get_the_care_answer() {
        let (routes, mut settings, texts) = seeds();
        settings.campaign_route = "pune-to-shirdi".into(); // a placeholder
        let a = decide(
            &Said::Text("Yes, Send Discount Code"),
            &routes,
            &settings,
            &texts,
        );
        assert_eq!(a.decision, Decision::Care);
    }

    #[test]
    fn keywords_texts_and_everything_else() {
        let a = answer(Said::Text("Is there any JOB opening?"));
        assert_eq!(
            a.decision,
            Decision::Keyword {
                text: "care_job".into()
            }
        );
        let a = answer(Said::Text("unlock diya"));
        assert_eq!(
            a.decision,
            Decision::Keyword {
                text: "unlock_diya".into()
            }
        );
        let a = answer(Said::Text("discount please"));
        assert_eq!(
            a.decision,
            Decision::Keyword {
                text: "discount".into()
            }
        );
        let a = answer(Said::Text("hello"));
        assert_eq!(a.decision, Decision::Care);
        assert!(matches!(
            &a.replies[..],
            [Outbound::Text { .. }, Outbound::Contact(_)]
        ));
        let a = answer(Said::NotText);
        assert_eq!(a.decision, Decision::NotText);
        assert!(
            matches!(&a.replies[..], [Outbound::Text { body, .. }] if body.contains("only text"))
        );
        assert_eq!(answer(Said::Nothing).replies, Vec::new());
    }

    #[test]
    fn what_a_message_says() {
        let media = Content::Media {
            media_type: crate::chat::MediaType::Image,
            media_id: "m".into(),
            mime_type: None,
            caption: Some("Pune to Mumbai".into()),
            filename: None,
            voice: false,
        };
        assert_eq!(Said::of(&media), Said::NotText);
        let reaction = Content::Reaction {
            emoji: Some("👍".into()),
            message_id: "w".into(),
        };
        assert_eq!(Said::of(&reaction), Said::Nothing);
        assert_eq!(
            Said::Text("Pune  to MUMBAI").cache_key(),
            Said::Text("pune to mumbai").cache_key()
        );
    }

    #[test]
    fn settings_whatsapp_would_refuse_are_refused() {
        let (_, settings, _) = seeds();
        let mut long = settings.clone();
        long.footer = "Inter-City Experts ".repeat(4); // > 60
        assert!(long.validated().is_err());
        let mut long = settings.clone();
        long.offer.body = "{route} ".repeat(8); // > 1024 with the longest route
        assert!(long.validated().is_err());
        // A long route's name is shortened where WhatsApp's limits are tight.
        let mut wordy = settings.clone();
        wordy.offer.button = "Book {route} now".into();
        assert!(wordy.validated().is_ok());
        let mut http = settings.clone();
        http.app_url = "http://oneway.cab/app".into();
        assert!(http.validated().is_err());
        let mut none = settings.clone();
        none.answers_per_minute = 0;
        assert!(none.validated().is_err());
        let mut empty = settings;
        empty.keywords[0].words = vec!["!!".into()];
        assert!(empty.validated().is_err());
    }

    #[test]
    fn stats_read_per_route_and_reason() {
        let mut stats = BotStats::default();
        let mut day = BTreeMap::new();
        for d in [
            Decision::Offer {
                route: "pune-to-mumbai".into(),
            },
            Decision::Code {
                route: "pune-to-mumbai".into(),
            },
            Decision::AskReason {
                route: "pune-to-mumbai".into(),
            },
            Decision::Declined {
                route: "pune-to-mumbai".into(),
                reason: DeclineReason::BadService,
            },
            Decision::Care,
        ] {
            for c in d.counters() {
                *day.entry(c).or_default() += 1;
            }
        }
        stats.add(&day);
        stats.add(&day);
        let v = stats.view();
        assert_eq!(v["offers"], 2);
        assert_eq!(v["declines"], 2);
        assert_eq!(v["reasons"]["bad_service"], 2);
        assert_eq!(v["routes"]["pune-to-mumbai"]["codes"], 2);
        assert_eq!(v["routes"]["pune-to-mumbai"]["reasons"]["bad_service"], 2);
        assert_eq!(v["care"], 2);
    }

    #[test]
    fn minutes_start_on_the_minute() {
        let at = DateTime::parse_from_rfc3339("2026-11-29T10:15:42.5Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(minute_of(at).to_rfc3339(), "2026-11-29T10:15:00+00:00");
    }
}
