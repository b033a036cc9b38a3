//! The WhatsApp Cloud API webhook format, as Pinbot relays it (SPEC §4.1).
//!
//! `parse_webhook` turns a raw body into typed [`InboundEvent`]s, or says
//! precisely why the body is not a WhatsApp payload. It never panics and
//! keeps nothing from the body but the fields it understands (plus each
//! message's own JSON object, bounded by the webhook's body limit).

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a body is not an acceptable WhatsApp webhook.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("not a WhatsApp webhook payload: {0}")]
    NotWhatsApp(&'static str),
    #[error("message {index} of change {change}: {reason}")]
    BadMessage {
        change: usize,
        index: usize,
        reason: String,
    },
    #[error("status {index} of change {change}: {reason}")]
    BadStatus {
        change: usize,
        index: usize,
        reason: String,
    },
}

/// Who wrote: a phone number (`wa_id`) or, for WhatsApp username users, a
/// user id. Letters, digits and `.`, `_`, `-`, `+`, at most 64.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SenderId(String);

crate::newtype::string_newtype!(SenderId, String);

impl SenderId {
    pub fn parse(value: &str) -> Result<Self, String> {
        let v = value.trim();
        if v.is_empty() || v.len() > 64 {
            return Err("sender id must be 1 to 64 characters".into());
        }
        if !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
        {
            return Err("sender id has characters other than letters, digits, . _ - +".into());
        }
        Ok(Self(v.to_owned()))
    }
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
            InboundEvent::Status(s) => s.recipient.as_str(),
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
}

/// What a message carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Text {
        body: String,
    },
    Media {
        media_type: MediaType,
        media_id: String,
        mime_type: Option<String>,
        caption: Option<String>,
        filename: Option<String>,
        voice: bool,
    },
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    Contacts {
        names: Vec<String>,
    },
    /// `interactive.button_reply` / `interactive.list_reply`.
    InteractiveReply {
        reply_kind: String,
        reply_id: String,
        title: String,
    },
    /// Legacy template quick-reply `button`.
    Button {
        payload: Option<String>,
        text: String,
    },
    Reaction {
        emoji: Option<String>,
        message_id: String,
    },
    Unsupported {
        original_type: String,
        errors: Vec<String>,
    },
    /// A message Smart Chat sent that is not plain text (template, buttons,
    /// list, CTA, contact card, media): kept whole, so the dashboard can
    /// show it and a failed send can be sent again.
    Sent {
        message: crate::outbound::Outbound,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaType {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl Content {
    /// The stored kind name (`text`, `image`, `location`, …).
    pub fn kind(&self) -> &str {
        match self {
            Content::Text { .. } => "text",
            Content::Media { media_type, .. } => match media_type {
                MediaType::Image => "image",
                MediaType::Video => "video",
                MediaType::Audio => "audio",
                MediaType::Document => "document",
                MediaType::Sticker => "sticker",
            },
            Content::Location { .. } => "location",
            Content::Contacts { .. } => "contacts",
            Content::InteractiveReply { .. } => "interactive",
            Content::Button { .. } => "button",
            Content::Reaction { .. } => "reaction",
            Content::Unsupported { .. } => "unsupported",
            Content::Sent { message } => message.kind(),
        }
    }

    /// The text an agent reads: the message body for text, the chosen
    /// title for replies, the caption for media.
    pub fn text(&self) -> Option<&str> {
        match self {
            Content::Text { body } => Some(body),
            Content::Media { caption, .. } => caption.as_deref(),
            Content::InteractiveReply { title, .. } => Some(title),
            Content::Button { text, .. } => Some(text),
            Content::Sent { message } => message.readable_text(),
            _ => None,
        }
    }

    /// A one-line human-readable preview for chat lists.
    pub fn preview(&self) -> String {
        fn with(label: &str, extra: Option<&str>) -> String {
            match extra.filter(|s| !s.is_empty()) {
                Some(e) => format!("{label}: {e}"),
                None => label.to_owned(),
            }
        }
        let full = match self {
            Content::Text { body } => body.clone(),
            Content::Media {
                media_type,
                caption,
                filename,
                voice,
                ..
            } => match media_type {
                MediaType::Image => with("📷 Photo", caption.as_deref()),
                MediaType::Video => with("🎥 Video", caption.as_deref()),
                MediaType::Audio if *voice => "🎤 Voice message".to_owned(),
                MediaType::Audio => "🎵 Audio".to_owned(),
                MediaType::Document => {
                    with("📄 Document", filename.as_deref().or(caption.as_deref()))
                }
                MediaType::Sticker => "🏷️ Sticker".to_owned(),
            },
            Content::Location { name, .. } => with("📍 Location", name.as_deref()),
            Content::Contacts { names } => with("👤 Contact", names.first().map(String::as_str)),
            Content::InteractiveReply { title, .. } => title.clone(),
            Content::Button { text, .. } => text.clone(),
            Content::Reaction { emoji, .. } => match emoji {
                Some(e) if !e.is_empty() => format!("Reacted {e}"),
                _ => "Removed a reaction".to_owned(),
            },
            Content::Unsupported { original_type, .. } => {
                format!("Unsupported message ({original_type})")
            }
            Content::Sent { message } => message.preview(),
        };
        truncate_chars(&full, PREVIEW_CHARS)
    }
}

/// Chat-list previews are cut to this many characters (not bytes: Hindi
/// and emoji stay whole).
pub const PREVIEW_CHARS: usize = 120;

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// A delivery status callback for a message we sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub wa_message_id: String,
    pub status: String,
    pub recipient: SenderId,
    pub at: Option<DateTime<Utc>>,
    pub errors: Vec<String>,
}

/// Parses a webhook body into its events, in body order.
pub fn parse_webhook(body: &[u8]) -> Result<Vec<InboundEvent>, WebhookError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::InvalidJson(e.to_string()))?;
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .ok_or(WebhookError::NotWhatsApp("no `entry` array"))?;

    let mut events = Vec::new();
    let mut change_no = 0usize;
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
            parse_value(value, change_no, &mut events)?;
            change_no += 1;
        }
    }
    Ok(events)
}

fn parse_value(
    value: &Value,
    change: usize,
    out: &mut Vec<InboundEvent>,
) -> Result<(), WebhookError> {
    // Names are joined on wa_id == from, never by position.
    let mut names: HashMap<&str, &str> = HashMap::new();
    if let Some(contacts) = value.get("contacts").and_then(Value::as_array) {
        for c in contacts {
            let name = c.pointer("/profile/name").and_then(Value::as_str);
            for key in ["wa_id", "user_id"] {
                if let (Some(id), Some(name)) = (c.get(key).and_then(Value::as_str), name) {
                    names.insert(id, name);
                }
            }
        }
    }

    if let Some(messages) = value.get("messages") {
        let messages = messages.as_array().ok_or(WebhookError::BadMessage {
            change,
            index: 0,
            reason: "`messages` is not an array".into(),
        })?;
        for (index, m) in messages.iter().enumerate() {
            let msg = parse_message(m, &names).map_err(|reason| WebhookError::BadMessage {
                change,
                index,
                reason,
            })?;
            out.push(InboundEvent::Message(msg));
        }
    }
    if let Some(statuses) = value.get("statuses") {
        let statuses = statuses.as_array().ok_or(WebhookError::BadStatus {
            change,
            index: 0,
            reason: "`statuses` is not an array".into(),
        })?;
        for (index, s) in statuses.iter().enumerate() {
            let st = parse_status(s).map_err(|reason| WebhookError::BadStatus {
                change,
                index,
                reason,
            })?;
            out.push(InboundEvent::Status(st));
        }
    }
    Ok(())
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn owned(v: &Value, key: &str) -> Option<String> {
    str_field(v, key).map(str::to_owned)
}

fn required<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a str, String> {
    match str_field(v, key) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(format!("`{what}` is missing or not a string")),
    }
}

fn unix_time(v: &Value) -> Option<DateTime<Utc>> {
    let secs = match v.get("timestamp")? {
        Value::String(s) => s.parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    Utc.timestamp_opt(secs, 0).single()
}

fn parse_message(m: &Value, names: &HashMap<&str, &str>) -> Result<InboundMessage, String> {
    if !m.is_object() {
        return Err("not an object".into());
    }
    let id = required(m, "id", "id")?;
    if id.len() > 256 {
        return Err("`id` is longer than 256 characters".into());
    }
    let phone = str_field(m, "from").filter(|s| !s.is_empty());
    let user = str_field(m, "from_user_id")
        .or_else(|| str_field(m, "user_id"))
        .filter(|s| !s.is_empty());
    let from_raw = phone
        .or(user)
        .ok_or_else(|| "neither `from` nor `from_user_id` is present".to_string())?;
    let from = SenderId::parse(from_raw).map_err(|e| format!("`from`: {e}"))?;
    let profile_name = names
        .get(from_raw)
        .or_else(|| user.and_then(|u| names.get(u)))
        .map(|s| (*s).to_owned());
    let kind = required(m, "type", "type")?;
    let content = parse_content(kind, m)?;
    // A reply names its quoted message in `context`; a reaction names the
    // message it reacts to. Either way the message is linked.
    let reply_to = m
        .pointer("/context/id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| match &content {
            Content::Reaction { message_id, .. } => Some(message_id.clone()),
            _ => None,
        });
    Ok(InboundMessage {
        wa_message_id: id.to_owned(),
        phone: phone.map(str::to_owned),
        from,
        profile_name,
        sent_at: unix_time(m),
        reply_to,
        content,
    })
}

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
            media_id: required(p, "id", &format!("{kind}.id"))?.to_owned(),
            mime_type: owned(p, "mime_type"),
            caption: owned(p, "caption"),
            filename: owned(p, "filename"),
            voice: p.get("voice").and_then(Value::as_bool).unwrap_or(false),
        })
    };
    Ok(match kind {
        "text" => Content::Text {
            body: required(part("text")?, "body", "text.body")?.to_owned(),
        },
        "image" => media(MediaType::Image)?,
        "video" => media(MediaType::Video)?,
        "audio" => media(MediaType::Audio)?,
        "document" => media(MediaType::Document)?,
        "sticker" => media(MediaType::Sticker)?,
        "location" => {
            let p = part("location")?;
            let coord = |k: &str| {
                p.get(k)
                    .and_then(Value::as_f64)
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| format!("`location.{k}` is missing or not a number"))
            };
            Content::Location {
                latitude: coord("latitude")?,
                longitude: coord("longitude")?,
                name: owned(p, "name"),
                address: owned(p, "address"),
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
                    .map(str::to_owned)
                    .collect(),
            }
        }
        "interactive" => {
            let p = part("interactive")?;
            let reply_kind = required(p, "type", "interactive.type")?;
            let reply = p
                .get(reply_kind)
                .filter(|v| v.is_object())
                .ok_or_else(|| format!("`interactive.{reply_kind}` is missing"))?;
            Content::InteractiveReply {
                reply_kind: reply_kind.to_owned(),
                reply_id: required(reply, "id", "interactive reply id")?.to_owned(),
                title: required(reply, "title", "interactive reply title")?.to_owned(),
            }
        }
        "button" => {
            let p = part("button")?;
            Content::Button {
                payload: owned(p, "payload"),
                text: required(p, "text", "button.text")?.to_owned(),
            }
        }
        "reaction" => {
            let p = part("reaction")?;
            Content::Reaction {
                emoji: owned(p, "emoji"),
                message_id: required(p, "message_id", "reaction.message_id")?.to_owned(),
            }
        }
        other => Content::Unsupported {
            original_type: other.chars().take(32).collect(),
            errors: m
                .get("errors")
                .and_then(Value::as_array)
                .map(|errs| errs.iter().take(10).map(describe_error).collect())
                .unwrap_or_default(),
        },
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
    format!("{code} {title}{detail}").trim().to_owned()
}

fn parse_status(s: &Value) -> Result<StatusUpdate, String> {
    if !s.is_object() {
        return Err("not an object".into());
    }
    let recipient = str_field(s, "recipient_id")
        .or_else(|| str_field(s, "recipient_user_id"))
        .ok_or("`recipient_id` is missing")?;
    Ok(StatusUpdate {
        wa_message_id: required(s, "id", "id")?.to_owned(),
        status: required(s, "status", "status")?.to_owned(),
        recipient: SenderId::parse(recipient).map_err(|e| format!("`recipient_id`: {e}"))?,
        at: unix_time(s),
        errors: s
            .get("errors")
            .and_then(Value::as_array)
            .map(|errs| errs.iter().take(10).map(describe_error).collect())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let events = parse_webhook(&body).expect("parses");
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
        let no_body = envelope(json!({"messages":[{"from":"1","id":"x","type":"text","text":{}}]}));
        assert!(matches!(
            parse_webhook(&no_body),
            Err(WebhookError::BadMessage { .. })
        ));
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
        let events = parse_webhook(&body).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].dedup_key(), "wamid.out:delivered");
        assert_eq!(events[0].group_key(), "919812345678");
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
