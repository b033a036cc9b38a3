//! The WhatsApp Cloud API webhook format, as Pinbot relays it (SPEC §4.1).
//!
//! `parse_webhook` turns a raw body into typed [`InboundEvent`]s, or says
//! precisely why the body is not a WhatsApp payload. It never panics and
//! keeps nothing from the body but the fields it understands (plus each
//! message's own JSON object, bounded by the webhook's body limit).

use crate::chat::{Content, MediaType, OrderItem, Referral};
use crate::customer::{SenderId, hash_hex};

pub mod signature;

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a body is not a WhatsApp webhook at all. Only the envelope can be
/// wrong: anything inside a valid envelope is kept as what we can read
/// (see [`Skipped`] for the little that cannot be).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("not a WhatsApp webhook payload: {0}")]
    NotWhatsApp(&'static str),
}

/// What a valid envelope held.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedWebhook {
    /// Messages and statuses, in body order.
    pub events: Vec<InboundEvent>,
    /// Items that cannot be identified at all (a message with no sender,
    /// a status with no id): logged and counted, never stored.
    pub skipped: Vec<Skipped>,
    /// `request_welcome` messages: a customer opened the chat window
    /// without writing. Nothing is stored (docs/decisions.md).
    pub welcomes: usize,
}

/// One item of a body that was left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub change: usize,
    pub index: usize,
    pub item: &'static str,
    pub reason: String,
}

/// One thing a webhook told us.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InboundEvent {
    Message(InboundMessage),
    Status(StatusUpdate),
}

impl InboundEvent {
    /// FIFO message group: everything about one customer stays in order.
    pub fn group_key(&self) -> &str {
        match self {
            InboundEvent::Message(m) => m.from.as_str(),
            InboundEvent::Status(s) => s
                .recipient
                .as_ref()
                .map_or(s.wa_message_id.as_str(), SenderId::as_str),
        }
    }

    /// Queue deduplication key: the WhatsApp message id (per status for
    /// statuses, which repeat the id of the message they describe).
    pub fn dedup_key(&self) -> String {
        match self {
            InboundEvent::Message(m) => m.wa_message_id.clone(),
            InboundEvent::Status(s) => format!("{}:{}", s.wa_message_id, s.status),
        }
    }
}

/// A message a customer sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub wa_message_id: String,
    pub from: SenderId,
    /// The sender's phone number when WhatsApp gave one.
    pub phone: Option<String>,
    /// Profile name from `contacts`, matched on `wa_id == from`.
    pub profile_name: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The WhatsApp message this one replies to (`context.id`).
    pub reply_to: Option<String>,
    pub content: Content,
    /// The click-to-WhatsApp ad the customer came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<Box<Referral>>,
}

/// A delivery status callback for a message we sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub wa_message_id: String,
    pub status: String,
    /// Who the message went to (absent in a few relays' statuses).
    pub recipient: Option<SenderId>,
    /// Our message id, echoed from `biz_opaque_callback_data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_data: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub errors: Vec<String>,
}

/// Stored WhatsApp ids (message, media, quoted message) are DynamoDB key
/// parts: one longer than this is replaced by `h.{sha256}`, the same for
/// every retry of the same body.
pub const ID_MAX: usize = 200;

/// Free text is kept up to this many characters (WhatsApp's own limit is
/// 4096 for a text): a message item stays far below DynamoDB's 400 KB.
const TEXT_MAX: usize = 8192;
/// Names, titles, headlines, URLs and other short fields.
const SHORT_MAX: usize = 1024;
/// A Flows answer's JSON.
const FLOW_JSON_MAX: usize = 16 * 1024;
/// Lines of an order, contact cards of a message, errors of an item.
const LIST_MAX: usize = 50;

/// Parses a webhook body. Only a body that is not a WhatsApp envelope is
/// an error; inside one, every message and status is kept as what can be
/// read of it.
pub fn parse_webhook(body: &[u8]) -> Result<ParsedWebhook, WebhookError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::InvalidJson(e.to_string()))?;
    let root = root
        .as_object()
        .ok_or(WebhookError::NotWhatsApp("the body is not a JSON object"))?;
    match root.get("object") {
        None => {}
        Some(Value::String(o)) if o == "whatsapp_business_account" => {}
        Some(_) => {
            return Err(WebhookError::NotWhatsApp(
                "`object` is not `whatsapp_business_account`",
            ));
        }
    }
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .ok_or(WebhookError::NotWhatsApp("no `entry` array"))?;

    let mut values = Vec::new();
    for entry in entries {
        let changes = entry
            .get("changes")
            .and_then(Value::as_array)
            .ok_or(WebhookError::NotWhatsApp("an entry has no `changes` array"))?;
        for change in changes {
            let value = change
                .get("value")
                .filter(|v| v.is_object())
                .ok_or(WebhookError::NotWhatsApp("a change has no `value` object"))?;
            for key in ["messages", "statuses"] {
                if value.get(key).is_some_and(|v| !v.is_array()) {
                    return Err(WebhookError::NotWhatsApp(if key == "messages" {
                        "`messages` is not an array"
                    } else {
                        "`statuses` is not an array"
                    }));
                }
            }
            values.push(value);
        }
    }

    let mut parsed = ParsedWebhook::default();
    for (change, value) in values.into_iter().enumerate() {
        parse_value(value, change, &mut parsed);
    }
    Ok(parsed)
}

fn items<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn parse_value(value: &Value, change: usize, out: &mut ParsedWebhook) {
    // Names are joined on wa_id == from, never by position.
    let mut names: HashMap<&str, &str> = HashMap::new();
    for c in items(value, "contacts") {
        let name = c.pointer("/profile/name").and_then(Value::as_str);
        for key in ["wa_id", "user_id"] {
            if let (Some(id), Some(name)) = (c.get(key).and_then(Value::as_str), name) {
                names.insert(id, name);
            }
        }
    }
    for (index, m) in items(value, "messages").iter().enumerate() {
        if str_field(m, "type") == Some("request_welcome") {
            out.welcomes += 1;
            continue;
        }
        match parse_message(m, &names) {
            Ok(msg) => out.events.push(InboundEvent::Message(msg)),
            Err(reason) => out.skipped.push(Skipped {
                change,
                index,
                item: "message",
                reason,
            }),
        }
    }
    for (index, s) in items(value, "statuses").iter().enumerate() {
        match parse_status(s) {
            Ok(st) => out.events.push(InboundEvent::Status(st)),
            Err(reason) => out.skipped.push(Skipped {
                change,
                index,
                item: "status",
                reason,
            }),
        }
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A string field, cut to `max` characters; empty strings are absent.
fn text(v: &Value, key: &str, max: usize) -> Option<String> {
    str_field(v, key)
        .filter(|s| !s.is_empty())
        .map(|s| bounded(s, max))
}

fn short(v: &Value, key: &str) -> Option<String> {
    text(v, key, SHORT_MAX)
}

fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => s[..cut].to_owned(),
        None => s.to_owned(),
    }
}

/// An id as stored: as sent when it fits, else a hash of it.
pub fn bounded_id(raw: &str) -> String {
    if raw.len() <= ID_MAX && raw.chars().all(|c| !c.is_control()) {
        raw.to_owned()
    } else {
        format!("h.{}", hash_hex(raw))
    }
}

fn id_field(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(bounded_id(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

fn unix_time(v: &Value) -> Option<DateTime<Utc>> {
    let secs = match v.get("timestamp")? {
        Value::String(s) => s.parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    Utc.timestamp_opt(secs, 0).single()
}

/// The keys a message's content may sit under, for a message that does
/// not say its `type`.
const CONTENT_KEYS: [&str; 13] = [
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
    "system",
];

fn parse_message(m: &Value, names: &HashMap<&str, &str>) -> Result<InboundMessage, String> {
    if !m.is_object() {
        return Err("not an object".into());
    }
    let phone = str_field(m, "from").filter(|s| !s.is_empty());
    let user = str_field(m, "from_user_id")
        .or_else(|| str_field(m, "user_id"))
        .filter(|s| !s.is_empty());
    let (from_raw, from) = phone
        .into_iter()
        .chain(user)
        .find_map(|raw| SenderId::lenient(raw).map(|id| (raw, id)))
        .ok_or_else(|| "no sender: neither `from` nor `from_user_id` is usable".to_string())?;
    // Without an id, one is derived from the message itself: a retry of
    // the same body is still recognised as the same message.
    let wa_message_id =
        id_field(m, "id").unwrap_or_else(|| format!("h.{}", hash_hex(&m.to_string())));
    let profile_name = names
        .get(from_raw)
        .or_else(|| user.and_then(|u| names.get(u)))
        .map(|s| bounded(s, 256));
    let kind = str_field(m, "type")
        .filter(|t| !t.is_empty())
        .or_else(|| CONTENT_KEYS.into_iter().find(|k| m.get(*k).is_some()))
        .unwrap_or("unknown");
    let content = parse_content(kind, m).unwrap_or_else(|reason| Content::Unsupported {
        original_type: bounded(kind, 32),
        errors: vec![reason],
    });
    // A reply names its quoted message in `context`; a reaction names the
    // message it reacts to. Either way the message is linked.
    let reply_to = m
        .get("context")
        .and_then(|c| id_field(c, "id"))
        .or_else(|| match &content {
            Content::Reaction { message_id, .. } => Some(message_id.clone()),
            _ => None,
        });
    Ok(InboundMessage {
        wa_message_id,
        phone: phone.map(|p| bounded(p, 64)),
        from,
        profile_name,
        sent_at: unix_time(m),
        reply_to,
        content,
        referral: m.get("referral").and_then(parse_referral).map(Box::new),
    })
}

fn parse_referral(r: &Value) -> Option<Referral> {
    r.is_object().then(|| Referral {
        source_type: short(r, "source_type"),
        source_id: short(r, "source_id"),
        source_url: short(r, "source_url"),
        headline: short(r, "headline"),
        body: short(r, "body"),
        media_type: short(r, "media_type"),
        ctwa_clid: short(r, "ctwa_clid"),
    })
}

/// The content of a message of type `kind`; `Err` says why it cannot be
/// read as that type (the caller keeps it as `unsupported`).
fn parse_content(kind: &str, m: &Value) -> Result<Content, String> {
    let part = |key: &str| -> Result<&Value, String> {
        m.get(key)
            .filter(|v| v.is_object())
            .ok_or_else(|| format!("a `{kind}` message has no `{key}` object"))
    };
    let media = |media_type: MediaType| -> Result<Content, String> {
        let p = part(kind)?;
        Ok(Content::Media {
            media_type,
            media_id: id_field(p, "id").ok_or_else(|| format!("`{kind}.id` is missing"))?,
            mime_type: short(p, "mime_type"),
            caption: text(p, "caption", TEXT_MAX),
            filename: short(p, "filename"),
            voice: p.get("voice").and_then(Value::as_bool).unwrap_or(false),
        })
    };
    Ok(match kind {
        "text" => Content::Text {
            body: text(part("text")?, "body", TEXT_MAX).ok_or("`text.body` is missing")?,
        },
        "image" => media(MediaType::Image)?,
        "video" => media(MediaType::Video)?,
        "audio" => media(MediaType::Audio)?,
        "document" => media(MediaType::Document)?,
        "sticker" => media(MediaType::Sticker)?,
        "location" => {
            let p = part("location")?;
            let coord = |k: &str| {
                number(p, k).ok_or_else(|| format!("`location.{k}` is missing or not a number"))
            };
            Content::Location {
                latitude: coord("latitude")?,
                longitude: coord("longitude")?,
                name: short(p, "name"),
                address: short(p, "address"),
            }
        }
        "contacts" => {
            let list = m
                .get("contacts")
                .and_then(Value::as_array)
                .ok_or("a `contacts` message has no `contacts` array")?;
            Content::Contacts {
                names: list
                    .iter()
                    .filter_map(|c| c.pointer("/name/formatted_name").and_then(Value::as_str))
                    .take(LIST_MAX)
                    .map(|n| bounded(n, 256))
                    .collect(),
            }
        }
        "interactive" => interactive(part("interactive")?)?,
        "button" => {
            let p = part("button")?;
            let payload = short(p, "payload");
            Content::Button {
                text: short(p, "text")
                    .or_else(|| payload.clone())
                    .ok_or("`button.text` is missing")?,
                payload,
            }
        }
        "reaction" => {
            let p = part("reaction")?;
            Content::Reaction {
                emoji: short(p, "emoji"),
                message_id: id_field(p, "message_id").ok_or("`reaction.message_id` is missing")?,
            }
        }
        "order" => {
            let p = part("order")?;
            Content::Order {
                catalog_id: short(p, "catalog_id"),
                text: text(p, "text", TEXT_MAX),
                items: items(p, "product_items")
                    .iter()
                    .filter_map(order_item)
                    .take(LIST_MAX)
                    .collect(),
            }
        }
        "system" => {
            let p = part("system")?;
            Content::System {
                system_type: p
                    .get("type")
                    .and_then(Value::as_str)
                    .map_or_else(|| "notice".to_owned(), |t| bounded(t, 64)),
                body: text(p, "body", TEXT_MAX),
                new_wa_id: str_field(p, "new_wa_id")
                    .and_then(SenderId::lenient)
                    .map(String::from),
            }
        }
        other => Content::Unsupported {
            original_type: bounded(other, 32),
            errors: items(m, "errors")
                .iter()
                .take(10)
                .map(describe_error)
                .collect(),
        },
    })
}

/// `interactive`: a button or list choice, or a Flows answer.
fn interactive(p: &Value) -> Result<Content, String> {
    let reply_kind = str_field(p, "type").ok_or("`interactive.type` is missing")?;
    let reply = p
        .get(reply_kind)
        .filter(|v| v.is_object())
        .ok_or_else(|| format!("`interactive.{}` is missing", bounded(reply_kind, 32)))?;
    match reply_kind {
        "nfm_reply" => Ok(Content::FlowReply {
            name: short(reply, "name"),
            body: text(reply, "body", TEXT_MAX),
            response_json: match reply.get("response_json") {
                Some(Value::String(s)) => bounded(s, FLOW_JSON_MAX),
                Some(other) => bounded(&other.to_string(), FLOW_JSON_MAX),
                None => String::new(),
            },
        }),
        "button_reply" | "list_reply" => {
            let reply_id = id_field(reply, "id");
            let title = short(reply, "title")
                .or_else(|| short(reply, "description"))
                .or_else(|| reply_id.clone())
                .ok_or_else(|| format!("`interactive.{reply_kind}` has no id or title"))?;
            Ok(Content::InteractiveReply {
                reply_kind: reply_kind.to_owned(),
                reply_id: reply_id.unwrap_or_default(),
                title,
            })
        }
        other => Err(format!(
            "interactive type `{}` is not one Smart Chat reads",
            bounded(other, 32)
        )),
    }
}

fn order_item(i: &Value) -> Option<OrderItem> {
    let quantity = number(i, "quantity").map_or(1, |q| q.clamp(0.0, f64::from(u32::MAX)) as u32);
    Some(OrderItem {
        product_retailer_id: short(i, "product_retailer_id")?,
        quantity,
        item_price: number(i, "item_price"),
        currency: text(i, "currency", 8),
    })
}

fn describe_error(e: &Value) -> String {
    let code = e.get("code").map(|c| c.to_string()).unwrap_or_default();
    let title = str_field(e, "title")
        .or_else(|| str_field(e, "message"))
        .unwrap_or("unknown error");
    let detail = e
        .pointer("/error_data/details")
        .and_then(Value::as_str)
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    bounded(format!("{code} {title}{detail}").trim(), SHORT_MAX)
}

fn parse_status(s: &Value) -> Result<StatusUpdate, String> {
    if !s.is_object() {
        return Err("not an object".into());
    }
    let recipient = str_field(s, "recipient_id")
        .or_else(|| str_field(s, "recipient_user_id"))
        .and_then(SenderId::lenient);
    Ok(StatusUpdate {
        wa_message_id: id_field(s, "id").ok_or("`id` is missing")?,
        status: text(s, "status", 32).ok_or("`status` is missing")?,
        recipient,
        callback_data: text(s, "biz_opaque_callback_data", 512),
        at: unix_time(s),
        errors: items(s, "errors")
            .iter()
            .take(10)
            .map(describe_error)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::PREVIEW_CHARS;
    use serde_json::json;

    fn envelope(value: Value) -> Vec<u8> {
        json!({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":value}]}]})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn a_text_message_keeps_hindi_and_emoji_byte_exact() {
        let body = envelope(json!({
            "messaging_product":"whatsapp",
            "contacts":[{"profile":{"name":"रमेश"},"wa_id":"919812345678"}],
            "messages":[{"from":"919812345678","id":"wamid.A1","timestamp":"1763700000","type":"text","text":{"body":"नमस्ते 🚕 कैब चाहिए"}}]
        }));
        let events = parse_webhook(&body).expect("parses").events;
        let [InboundEvent::Message(m)] = events.as_slice() else {
            panic!("one message expected, got {events:?}")
        };
        assert_eq!(m.content.text(), Some("नमस्ते 🚕 कैब चाहिए"));
        assert_eq!(m.profile_name.as_deref(), Some("रमेश"));
        assert_eq!(m.from.as_str(), "919812345678");
        assert_eq!(m.sent_at.map(|t| t.timestamp()), Some(1_763_700_000));
    }

    #[test]
    fn names_are_joined_on_wa_id_not_position() {
        let body = envelope(json!({
            "contacts":[{"profile":{"name":"Second"},"wa_id":"222"},{"profile":{"name":"First"},"wa_id":"111"}],
            "messages":[
                {"from":"111","id":"a","type":"text","text":{"body":"x"}},
                {"from":"222","id":"b","type":"text","text":{"body":"y"}},
                {"from":"333","id":"c","type":"text","text":{"body":"z"}}
            ]
        }));
        let names: Vec<_> = parse_webhook(&body)
            .unwrap()
            .events
            .into_iter()
            .map(|e| match e {
                InboundEvent::Message(m) => m.profile_name,
                InboundEvent::Status(_) => None,
            })
            .collect();
        assert_eq!(
            names,
            vec![Some("First".into()), Some("Second".into()), None]
        );
    }

    #[test]
    fn bodies_that_are_not_whatsapp_are_refused_with_a_reason() {
        assert!(matches!(
            parse_webhook(b"{oops"),
            Err(WebhookError::InvalidJson(_))
        ));
        assert_eq!(
            parse_webhook(br#"{"hello":1}"#),
            Err(WebhookError::NotWhatsApp("no `entry` array"))
        );
        assert_eq!(
            parse_webhook(br#"{"object":"page","entry":[]}"#),
            Err(WebhookError::NotWhatsApp(
                "`object` is not `whatsapp_business_account`"
            ))
        );
        assert_eq!(
            parse_webhook(&envelope(json!({"messages":{}}))),
            Err(WebhookError::NotWhatsApp("`messages` is not an array"))
        );
    }

    #[test]
    fn media_and_unknown_types_get_kinds_and_previews() {
        let body = envelope(json!({"messages":[
            {"from":"1","id":"m1","type":"image","image":{"id":"media1","mime_type":"image/jpeg","caption":"meter"}},
            {"from":"1","id":"m2","type":"audio","audio":{"id":"media2","voice":true}},
            {"from":"1","id":"m3","type":"hologram","errors":[{"code":131051,"title":"Message type unknown"}]}
        ]}));
        let previews: Vec<_> = parse_webhook(&body)
            .unwrap()
            .events
            .into_iter()
            .filter_map(|e| match e {
                InboundEvent::Message(m) => {
                    Some((m.content.kind().to_owned(), m.content.preview()))
                }
                InboundEvent::Status(_) => None,
            })
            .collect();
        assert_eq!(
            previews,
            vec![
                ("image".into(), "📷 Photo: meter".into()),
                ("audio".into(), "🎤 Voice message".into()),
                (
                    "unsupported".into(),
                    "Unsupported message (hologram)".into()
                ),
            ]
        );
    }

    #[test]
    fn statuses_are_events_too() {
        let body = envelope(
            json!({"statuses":[{"id":"wamid.out","status":"delivered","timestamp":"1763700000","recipient_id":"919812345678"}]}),
        );
        let events = parse_webhook(&body).unwrap().events;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].dedup_key(), "wamid.out:delivered");
        assert_eq!(events[0].group_key(), "919812345678");
    }

    fn contents(value: Value) -> Vec<Content> {
        parse_webhook(&envelope(value))
            .unwrap()
            .events
            .into_iter()
            .filter_map(|e| match e {
                InboundEvent::Message(m) => Some(m.content),
                InboundEvent::Status(_) => None,
            })
            .collect()
    }

    #[test]
    fn what_cannot_be_read_as_its_type_is_kept_as_unsupported_with_the_reason() {
        let got = contents(json!({"messages":[
            {"from":"1","id":"a","type":"text","text":{}},
            {"from":"1","id":"b","type":"interactive","interactive":{"type":"carousel_reply","carousel_reply":{}}},
            {"from":"1","id":"c","type":"image","image":{"caption":"no id"}}
        ]}));
        assert_eq!(
            got,
            vec![
                Content::Unsupported {
                    original_type: "text".into(),
                    errors: vec!["`text.body` is missing".into()]
                },
                Content::Unsupported {
                    original_type: "interactive".into(),
                    errors: vec![
                        "interactive type `carousel_reply` is not one Smart Chat reads".into()
                    ]
                },
                Content::Unsupported {
                    original_type: "image".into(),
                    errors: vec!["`image.id` is missing".into()]
                },
            ]
        );
    }

    #[test]
    fn flows_orders_and_system_notices_have_readable_previews() {
        let got = contents(json!({"messages":[
            {"from":"1","id":"f","type":"interactive","interactive":{"type":"nfm_reply","nfm_reply":{"name":"flow","body":"Sent","response_json":"{\"rating\":\"5\"}"}}},
            {"from":"1","id":"o","type":"order","order":{"catalog_id":"cat1","text":"jaldi","product_items":[
                {"product_retailer_id":"sedan","quantity":2,"item_price":1500,"currency":"INR"},
                {"product_retailer_id":"toll","quantity":"1","item_price":"250.5","currency":"INR"}]}},
            {"from":"1","id":"s","type":"system","system":{"type":"user_changed_number","new_wa_id":"919811111111"}}
        ]}));
        let previews: Vec<_> = got.iter().map(Content::preview).collect();
        assert_eq!(
            previews,
            vec![
                "📝 Form reply: Sent",
                "🛒 Order: 3 items, INR 3250.50 · jaldi",
                "ℹ️ Customer changed their number to 919811111111",
            ]
        );
        assert!(
            matches!(&got[0], Content::FlowReply { response_json, .. } if response_json == r#"{"rating":"5"}"#)
        );
        assert_eq!(got[1].kind(), "order");
    }

    #[test]
    fn a_message_without_a_sender_is_skipped_and_the_rest_kept() {
        let parsed = parse_webhook(&envelope(json!({"messages":[
            {"id":"w1","type":"text","text":{"body":"who?"}},
            7,
            {"from":"91 98100/00001","type":"text","text":{"body":"no id"}},
            {"from":"1","id":"w","type":"request_welcome"}
        ], "statuses":[{"status":"read"}]})))
        .unwrap();
        assert_eq!(parsed.skipped.len(), 3, "{:?}", parsed.skipped);
        assert_eq!(parsed.welcomes, 1);
        let [InboundEvent::Message(m)] = parsed.events.as_slice() else {
            panic!("one message expected: {:?}", parsed.events)
        };
        assert_eq!(m.from.as_str(), "919810000001");
        assert!(m.wa_message_id.starts_with("h."));
        // The same body gives the same derived id.
        let again = parse_webhook(&envelope(json!({"messages":[
            {"from":"91 98100/00001","type":"text","text":{"body":"no id"}}]})))
        .unwrap();
        assert_eq!(again.events[0].dedup_key(), m.wa_message_id);
    }

    #[test]
    fn over_long_ids_and_fields_are_bounded() {
        let long = "x".repeat(TEXT_MAX + 10);
        let got = parse_webhook(&envelope(json!({"messages":[
            {"from":"1","id":long,"type":"text","text":{"body":long},"context":{"id":long},
             "referral":{"source_type":"ad","source_id":"120","headline":"Pune-Mumbai ₹999","ctwa_clid":"clid1"}}
        ]})))
        .unwrap();
        let InboundEvent::Message(m) = &got.events[0] else {
            panic!("a message")
        };
        assert!(m.wa_message_id.len() <= ID_MAX);
        assert_eq!(m.reply_to.as_deref(), Some(m.wa_message_id.as_str()));
        assert_eq!(m.content.text().map(str::len), Some(TEXT_MAX));
        let referral = m.referral.as_ref().expect("referral kept");
        assert_eq!(referral.ctwa_clid.as_deref(), Some("clid1"));
        assert_eq!(referral.label(), "Ad: Pune-Mumbai ₹999");
    }

    #[test]
    fn previews_cut_on_characters_not_bytes() {
        let long = "क".repeat(PREVIEW_CHARS + 5);
        let p = Content::Text { body: long }.preview();
        assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.ends_with('…'));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_webhook(&body);
        }

        #[test]
        fn never_panics_on_arbitrary_json_in_a_message(text in ".{0,64}", kind in "[a-z]{0,10}") {
            let body = envelope(json!({"messages":[{"from":"1","id":"x","type":kind,"text":{"body":text}}]}));
            let _ = parse_webhook(&body);
        }
    }
}
