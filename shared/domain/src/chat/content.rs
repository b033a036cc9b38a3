//! What a stored message says: the kinds of content a chat holds, its
//! preview, and the ad a conversation came from.

use serde::{Deserialize, Serialize};

use crate::outbound::Outbound;

/// A click-to-WhatsApp ad (or post) a message came from: what marketing
/// attributes conversations with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    /// `ad` or `post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    /// The ad id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Click id for conversion reporting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctwa_clid: Option<String>,
}

impl Referral {
    /// "Ad: {headline}" for agents.
    pub fn label(&self) -> String {
        let what = if self.source_type.as_deref() == Some("post") {
            "Post"
        } else {
            "Ad"
        };
        match self.headline.as_deref().or(self.source_id.as_deref()) {
            Some(h) => format!("{what}: {h}"),
            None => what.to_owned(),
        }
    }
}

/// One line of a catalog order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_retailer_id: String,
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
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
    /// A WhatsApp Flows answer (`interactive.nfm_reply`): the form's
    /// answers as the JSON string WhatsApp sent.
    FlowReply {
        name: Option<String>,
        body: Option<String>,
        response_json: String,
    },
    /// A catalog order.
    Order {
        catalog_id: Option<String>,
        text: Option<String>,
        items: Vec<OrderItem>,
    },
    /// A notice from WhatsApp about the customer (`user_changed_number`, …).
    System {
        system_type: String,
        body: Option<String>,
        /// For `user_changed_number`: the customer's new number.
        new_wa_id: Option<String>,
    },
    /// A type we do not know (or a known one we could not read): the
    /// original type and why are kept.
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
    /// An internal note an executive left on the chat for teammates: shown
    /// in the conversation, never sent to WhatsApp.
    Note {
        body: String,
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
            Content::FlowReply { .. } => "flow_reply",
            Content::Order { .. } => "order",
            Content::System { .. } => "system",
            Content::Unsupported { .. } => "unsupported",
            Content::Sent { message } => message.kind(),
            Content::Note { .. } => "note",
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
            Content::FlowReply { body, .. } => body.as_deref(),
            Content::Order { text, .. } => text.as_deref(),
            Content::System { body, .. } => body.as_deref(),
            Content::Sent { message } => message.readable_text(),
            Content::Note { body } => Some(body),
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
            Content::FlowReply { name, body, .. } => {
                with("📝 Form reply", body.as_deref().or(name.as_deref()))
            }
            Content::Order { items, text, .. } => {
                let mut line = order_summary(items);
                if let Some(t) = text.as_deref().filter(|t| !t.is_empty()) {
                    line = format!("{line} · {t}");
                }
                line
            }
            Content::System {
                system_type,
                body,
                new_wa_id,
            } => match (body.as_deref(), new_wa_id.as_deref()) {
                (Some(b), _) if !b.is_empty() => format!("ℹ️ {b}"),
                (_, Some(n)) if system_type == "user_changed_number" => {
                    format!("ℹ️ Customer changed their number to {n}")
                }
                _ => format!("ℹ️ WhatsApp notice ({system_type})"),
            },
            Content::Unsupported { original_type, .. } => {
                format!("Unsupported message ({original_type})")
            }
            Content::Sent { message } => message.preview(),
            Content::Note { body } => format!("📝 {body}"),
        };
        truncate_chars(&full, PREVIEW_CHARS)
    }
}

/// "🛒 Order: 3 items, INR 1250": item count, and the total when every
/// line has a price in one currency.
fn order_summary(items: &[OrderItem]) -> String {
    let count: u64 = items.iter().map(|i| u64::from(i.quantity)).sum();
    let noun = if count == 1 { "item" } else { "items" };
    let currency = items.first().and_then(|i| i.currency.as_deref());
    let total = items.iter().try_fold(0.0_f64, |sum, i| {
        (i.currency.as_deref() == currency)
            .then_some(())
            .and(i.item_price)
            .map(|p| sum + p * f64::from(i.quantity))
    });
    match (total, currency) {
        (Some(t), Some(c)) if !items.is_empty() => {
            format!("🛒 Order: {count} {noun}, {c} {}", money(t))
        }
        _ => format!("🛒 Order: {count} {noun}"),
    }
}

/// Whole amounts without decimals, others with two.
fn money(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
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

impl Content {
    /// How a message we send is stored in its chat: text as text (as agents have
    /// always seen it), everything else whole.
    pub fn of_send(message: &Outbound) -> Self {
        match message {
            Outbound::Text { body, .. } => Content::Text { body: body.clone() },
            other => Content::Sent {
                message: other.clone(),
            },
        }
    }

    /// The message to send again from this stored content; `None` for
    /// content Smart Chat did not send.
    pub fn as_send(&self) -> Option<Outbound> {
        match self {
            Content::Text { body } => Some(Outbound::Text {
                body: body.clone(),
                preview_url: false,
            }),
            Content::Sent { message } => Some(message.clone()),
            _ => None,
        }
    }
}
