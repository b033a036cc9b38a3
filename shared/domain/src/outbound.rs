//! Outbound WhatsApp messages (SPEC §6): typed builders that refuse what
//! WhatsApp would refuse, before any network call, and the Cloud API body
//! each one becomes.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// WhatsApp's limits (Cloud API reference).
pub mod limits {
    pub const TEXT_CHARS: usize = 4096;
    pub const INTERACTIVE_BODY_CHARS: usize = 1024;
    pub const HEADER_TEXT_CHARS: usize = 60;
    pub const FOOTER_CHARS: usize = 60;
    pub const REPLY_BUTTONS: usize = 3;
    pub const BUTTON_TITLE_CHARS: usize = 20;
    pub const BUTTON_ID_CHARS: usize = 256;
    pub const LIST_ROWS: usize = 10;
    pub const LIST_SECTIONS: usize = 10;
    pub const ROW_TITLE_CHARS: usize = 24;
    pub const ROW_DESCRIPTION_CHARS: usize = 72;
    pub const SECTION_TITLE_CHARS: usize = 24;
    pub const LIST_BUTTON_CHARS: usize = 20;
    pub const CTA_DISPLAY_CHARS: usize = 20;
    pub const CAPTION_CHARS: usize = 1024;
    pub const TEMPLATE_NAME_CHARS: usize = 512;
    pub const TEMPLATE_PARAMETER_CHARS: usize = 1024;
}

/// Why a message cannot be sent as built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Invalid {
    pub field: String,
    pub problem: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Invalid {
    Invalid::new(field, problem)
}

/// `value` must be 1..=`max` characters (not blank).
fn bounded(field: &str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be blank"));
    }
    let n = value.chars().count();
    if n > max {
        return Err(invalid(
            field,
            format!("is {n} characters; WhatsApp allows {max}"),
        ));
    }
    Ok(())
}

fn optional(field: &str, value: Option<&str>, max: usize) -> Result<(), Invalid> {
    value.map_or(Ok(()), |v| bounded(field, v, max))
}

/// The header, body and footer every interactive message has.
fn interactive_text(header: Option<&str>, body: &str, footer: Option<&str>) -> Result<(), Invalid> {
    optional("header", header, limits::HEADER_TEXT_CHARS)?;
    bounded("body", body, limits::INTERACTIVE_BODY_CHARS)?;
    optional("footer", footer, limits::FOOTER_CHARS)
}

fn https(field: &str, url: &str) -> Result<(), Invalid> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| invalid(field, "must be an https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.len() > 2000 || url.chars().any(char::is_whitespace) {
        return Err(invalid(field, "is not a valid URL"));
    }
    Ok(())
}

/// A reply button: the id comes back in the customer's `button_reply`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub rows: Vec<ListRow>,
}

/// Where a media message's file comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaSource {
    /// A media id uploaded to the provider.
    Id(String),
    /// A public https URL the provider fetches.
    Link(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
    Document,
}

impl MediaKind {
    fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Document => "document",
        }
    }
}

/// A template's runtime values: body `{{1}}`, `{{2}}`, … and, per button
/// index, a URL suffix or quick-reply payload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateParams {
    #[serde(default)]
    pub body: Vec<String>,
    #[serde(default)]
    pub buttons: Vec<TemplateButton>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateButton {
    pub index: u8,
    /// `url` (dynamic URL suffix) or `quick_reply` (payload).
    pub sub_type: String,
    pub value: String,
}

/// A contact card (the company's, in the seeds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactCard {
    pub formatted_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl ContactCard {
    /// OneWay.Cab's card (SPEC §6).
    pub fn oneway_cab() -> Self {
        Self {
            formatted_name: "OneWay.Cab".into(),
            phone: None,
            email: Some("care@oneway.cab".into()),
            url: Some("https://oneway.cab/".into()),
        }
    }
}

/// Every message type Smart Chat sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outbound {
    Text {
        body: String,
        #[serde(default)]
        preview_url: bool,
    },
    Template {
        name: String,
        language: String,
        #[serde(default)]
        params: TemplateParams,
    },
    Buttons {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        buttons: Vec<ReplyButton>,
    },
    List {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        button: String,
        sections: Vec<ListSection>,
    },
    CtaUrl {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        display_text: String,
        url: String,
    },
    Contact(ContactCard),
    Media {
        kind: MediaKind,
        source: MediaSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
}

impl Outbound {
    pub fn text(body: impl Into<String>) -> Result<Self, Invalid> {
        let m = Outbound::Text {
            body: body.into(),
            preview_url: false,
        };
        m.validate().map(|()| m)
    }

    /// The seeds' `ask_issue_resolved` template, in Hindi.
    pub fn ask_issue_resolved() -> Self {
        Outbound::Template {
            name: "ask_issue_resolved".into(),
            language: "hi".into(),
            params: TemplateParams::default(),
        }
    }

    /// The message type's name, as logs and the message log show it.
    pub fn kind(&self) -> &'static str {
        match self {
            Outbound::Text { .. } => "text",
            Outbound::Template { .. } => "template",
            Outbound::Buttons { .. } => "buttons",
            Outbound::List { .. } => "list",
            Outbound::CtaUrl { .. } => "cta_url",
            Outbound::Contact(_) => "contact",
            Outbound::Media { kind, .. } => kind.as_str(),
        }
    }

    /// The text an agent reads in the chat: the body, or a media caption.
    pub fn readable_text(&self) -> Option<&str> {
        match self {
            Outbound::Text { body, .. }
            | Outbound::Buttons { body, .. }
            | Outbound::List { body, .. }
            | Outbound::CtaUrl { body, .. } => Some(body),
            Outbound::Media { caption, .. } => caption.as_deref(),
            Outbound::Template { .. } | Outbound::Contact(_) => None,
        }
    }

    /// A one-line label for chat lists (the caller shortens it).
    pub fn preview(&self) -> String {
        let labelled = |label: &str, extra: Option<&str>| match extra.filter(|e| !e.is_empty()) {
            Some(e) => format!("{label}: {e}"),
            None => label.to_owned(),
        };
        match self {
            Outbound::Text { body, .. }
            | Outbound::Buttons { body, .. }
            | Outbound::List { body, .. }
            | Outbound::CtaUrl { body, .. } => body.clone(),
            Outbound::Template { name, .. } => format!("📋 Template: {name}"),
            Outbound::Contact(card) => labelled("👤 Contact", Some(&card.formatted_name)),
            Outbound::Media {
                kind,
                caption,
                filename,
                ..
            } => match kind {
                MediaKind::Image => labelled("📷 Photo", caption.as_deref()),
                MediaKind::Video => labelled("🎥 Video", caption.as_deref()),
                MediaKind::Document => {
                    labelled("📄 Document", filename.as_deref().or(caption.as_deref()))
                }
            },
        }
    }

    /// Free-form messages may only be sent within 24 h of the customer's
    /// last message; templates may be sent any time.
    pub fn needs_open_window(&self) -> bool {
        !matches!(self, Outbound::Template { .. })
    }

    /// Checks every WhatsApp limit; the first problem found.
    pub fn validate(&self) -> Result<(), Invalid> {
        use limits::*;
        match self {
            Outbound::Text { body, .. } => bounded("body", body, TEXT_CHARS),
            Outbound::Template {
                name,
                language,
                params,
            } => {
                let name_ok = !name.is_empty()
                    && name.len() <= TEMPLATE_NAME_CHARS
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !name_ok {
                    return Err(invalid("name", "must be lower-case letters, digits and _"));
                }
                let lang_ok = (2..=8).contains(&language.len())
                    && language
                        .bytes()
                        .all(|b| b.is_ascii_alphabetic() || b == b'_');
                if !lang_ok {
                    return Err(invalid("language", "must be a code such as hi or en_US"));
                }
                for (i, p) in params.body.iter().enumerate() {
                    bounded(&format!("params.body[{i}]"), p, TEMPLATE_PARAMETER_CHARS)?;
                }
                for b in &params.buttons {
                    if !matches!(b.sub_type.as_str(), "url" | "quick_reply") {
                        return Err(invalid("params.buttons", "sub_type is url or quick_reply"));
                    }
                    if b.index > 9 {
                        return Err(invalid("params.buttons", "index is 0 to 9"));
                    }
                    bounded("params.buttons.value", &b.value, TEMPLATE_PARAMETER_CHARS)?;
                }
                Ok(())
            }
            Outbound::Buttons {
                header,
                body,
                footer,
                buttons,
            } => {
                interactive_text(header.as_deref(), body, footer.as_deref())?;
                if buttons.is_empty() || buttons.len() > REPLY_BUTTONS {
                    return Err(invalid(
                        "buttons",
                        format!("must be 1 to {REPLY_BUTTONS} buttons"),
                    ));
                }
                for (i, b) in buttons.iter().enumerate() {
                    bounded(&format!("buttons[{i}].title"), &b.title, BUTTON_TITLE_CHARS)?;
                    bounded(&format!("buttons[{i}].id"), &b.id, BUTTON_ID_CHARS)?;
                    if buttons[..i]
                        .iter()
                        .any(|o| o.id == b.id || o.title == b.title)
                    {
                        return Err(invalid(
                            format!("buttons[{i}]"),
                            "ids and titles must be unique",
                        ));
                    }
                }
                Ok(())
            }
            Outbound::List {
                header,
                body,
                footer,
                button,
                sections,
            } => {
                interactive_text(header.as_deref(), body, footer.as_deref())?;
                bounded("button", button, LIST_BUTTON_CHARS)?;
                if sections.is_empty() || sections.len() > LIST_SECTIONS {
                    return Err(invalid(
                        "sections",
                        format!("must be 1 to {LIST_SECTIONS} sections"),
                    ));
                }
                let rows: usize = sections.iter().map(|s| s.rows.len()).sum();
                if rows == 0 || rows > LIST_ROWS {
                    return Err(invalid(
                        "sections",
                        format!("must hold 1 to {LIST_ROWS} rows in all (has {rows})"),
                    ));
                }
                if sections.len() > 1 && sections.iter().any(|s| s.title.is_none()) {
                    return Err(invalid(
                        "sections",
                        "every section needs a title when there are several",
                    ));
                }
                let mut ids = std::collections::HashSet::new();
                for (si, s) in sections.iter().enumerate() {
                    optional(
                        &format!("sections[{si}].title"),
                        s.title.as_deref(),
                        SECTION_TITLE_CHARS,
                    )?;
                    for (ri, r) in s.rows.iter().enumerate() {
                        let at = format!("sections[{si}].rows[{ri}]");
                        bounded(&format!("{at}.title"), &r.title, ROW_TITLE_CHARS)?;
                        bounded(&format!("{at}.id"), &r.id, BUTTON_ID_CHARS)?;
                        optional(
                            &format!("{at}.description"),
                            r.description.as_deref(),
                            ROW_DESCRIPTION_CHARS,
                        )?;
                        if !ids.insert(r.id.as_str()) {
                            return Err(invalid(at, "row ids must be unique"));
                        }
                    }
                }
                Ok(())
            }
            Outbound::CtaUrl {
                header,
                body,
                footer,
                display_text,
                url,
            } => {
                interactive_text(header.as_deref(), body, footer.as_deref())?;
                bounded("display_text", display_text, CTA_DISPLAY_CHARS)?;
                https("url", url)
            }
            Outbound::Contact(card) => {
                bounded("formatted_name", &card.formatted_name, 256)?;
                if let Some(u) = &card.url {
                    https("url", u)?;
                }
                if card.email.as_deref().is_some_and(|e| !e.contains('@')) {
                    return Err(invalid("email", "is not an e-mail address"));
                }
                Ok(())
            }
            Outbound::Media {
                kind,
                source,
                caption,
                filename,
            } => {
                match source {
                    MediaSource::Id(id) => bounded("source.id", id, 128)?,
                    MediaSource::Link(url) => https("source.link", url)?,
                }
                optional("caption", caption.as_deref(), CAPTION_CHARS)?;
                if filename.is_some() && *kind != MediaKind::Document {
                    return Err(invalid("filename", "only documents have a file name"));
                }
                optional("filename", filename.as_deref(), 240)
            }
        }
    }

    /// The Cloud API message body sending this to `to` (digits).
    pub fn body(&self, to: &str) -> Value {
        let mut body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
        });
        let (kind, payload) = match self {
            Outbound::Text { body, preview_url } => {
                ("text", json!({"preview_url": preview_url, "body": body}))
            }
            Outbound::Template {
                name,
                language,
                params,
            } => {
                let mut components = Vec::new();
                if !params.body.is_empty() {
                    let parameters: Vec<Value> = params
                        .body
                        .iter()
                        .map(|p| json!({"type": "text", "text": p}))
                        .collect();
                    components.push(json!({"type": "body", "parameters": parameters}));
                }
                for b in &params.buttons {
                    let parameter = if b.sub_type == "url" {
                        json!({"type": "text", "text": b.value})
                    } else {
                        json!({"type": "payload", "payload": b.value})
                    };
                    components.push(json!({"type": "button", "sub_type": b.sub_type,
                        "index": b.index.to_string(), "parameters": [parameter]}));
                }
                let mut t = json!({"name": name, "language": {"code": language}});
                if !components.is_empty() {
                    t["components"] = Value::Array(components);
                }
                ("template", t)
            }
            Outbound::Buttons {
                header,
                body,
                footer,
                buttons,
            } => {
                let buttons: Vec<Value> = buttons
                    .iter()
                    .map(|b| json!({"type": "reply", "reply": {"id": b.id, "title": b.title}}))
                    .collect();
                let i = interactive(
                    "button",
                    header.as_deref(),
                    body,
                    footer.as_deref(),
                    json!({"buttons": buttons}),
                );
                ("interactive", i)
            }
            Outbound::List {
                header,
                body,
                footer,
                button,
                sections,
            } => (
                "interactive",
                interactive(
                    "list",
                    header.as_deref(),
                    body,
                    footer.as_deref(),
                    json!({"button": button, "sections": sections}),
                ),
            ),
            Outbound::CtaUrl {
                header,
                body,
                footer,
                display_text,
                url,
            } => (
                "interactive",
                interactive(
                    "cta_url",
                    header.as_deref(),
                    body,
                    footer.as_deref(),
                    json!({"name": "cta_url", "parameters": {"display_text": display_text, "url": url}}),
                ),
            ),
            Outbound::Contact(card) => {
                let mut c = json!({"name": {"formatted_name": card.formatted_name,
                    "first_name": card.formatted_name}});
                if let Some(p) = &card.phone {
                    c["phones"] = json!([{"phone": p, "type": "WORK"}]);
                }
                if let Some(e) = &card.email {
                    c["emails"] = json!([{"email": e, "type": "WORK"}]);
                }
                if let Some(u) = &card.url {
                    c["urls"] = json!([{"url": u, "type": "WORK"}]);
                }
                ("contacts", json!([c]))
            }
            Outbound::Media {
                kind,
                source,
                caption,
                filename,
            } => {
                let mut m = match source {
                    MediaSource::Id(id) => json!({"id": id}),
                    MediaSource::Link(link) => json!({"link": link}),
                };
                if let Some(c) = caption {
                    m["caption"] = json!(c);
                }
                if let Some(f) = filename {
                    m["filename"] = json!(f);
                }
                (kind.as_str(), m)
            }
        };
        body["type"] = json!(kind);
        body[kind] = payload;
        body
    }
}

fn interactive(
    kind: &str,
    header: Option<&str>,
    body: &str,
    footer: Option<&str>,
    action: Value,
) -> Value {
    let mut i = json!({"type": kind, "body": {"text": body}, "action": action});
    if let Some(h) = header {
        i["header"] = json!({"type": "text", "text": h});
    }
    if let Some(f) = footer {
        i["footer"] = json!({"text": f});
    }
    i
}

/// How one channel's messages reach the provider (SPEC §2): the v2 URL
/// names the sending number in a `wanumber` header, a v3 URL in its path;
/// every request carries the channel's key as `apikey`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub url: String,
    pub wanumber: Option<String>,
    /// The environment variable (or SSM-backed setting) holding the key.
    pub key_env: String,
    pub send_type: String,
}

impl Route {
    /// `base` (`PINBOT_BASE_URL`) replaces the provider URL's scheme and
    /// host, keeping its path.
    pub fn for_channel(channel: &crate::channel::Channel, base: Option<&str>) -> Self {
        let url = match base {
            Some(b) => rebase(&channel.provider_url, b),
            None => channel.provider_url.clone(),
        };
        let v3 = channel.provider_url.contains("/v3/");
        Route {
            url,
            wanumber: (!v3).then(|| channel.wa_number.clone()),
            key_env: channel.api_key_env.clone(),
            send_type: channel.send_type.clone(),
        }
    }
}

fn rebase(url: &str, base: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    format!("{}{path}", base.trim_end_matches('/'))
}

/// The body marking a customer's message read.
pub fn mark_read_body(wa_message_id: &str) -> Value {
    json!({"messaging_product": "whatsapp", "status": "read", "message_id": wa_message_id})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buttons(n: usize) -> Outbound {
        Outbound::Buttons {
            header: None,
            body: "Was your issue resolved?".into(),
            footer: None,
            buttons: (0..n)
                .map(|i| ReplyButton {
                    id: format!("b{i}"),
                    title: format!("Option {i}"),
                })
                .collect(),
        }
    }

    #[test]
    fn whatsapp_limits_are_refused_before_sending() {
        assert!(buttons(3).validate().is_ok());
        assert_eq!(buttons(4).validate().unwrap_err().field, "buttons");
        assert_eq!(buttons(0).validate().unwrap_err().field, "buttons");
        let long_title = Outbound::Buttons {
            header: None,
            body: "b".into(),
            footer: None,
            buttons: vec![ReplyButton {
                id: "x".into(),
                title: "t".repeat(21),
            }],
        };
        assert_eq!(long_title.validate().unwrap_err().field, "buttons[0].title");
        assert!(Outbound::text("x".repeat(4096)).is_ok());
        assert_eq!(Outbound::text("x".repeat(4097)).unwrap_err().field, "body");
        assert_eq!(Outbound::text("  ").unwrap_err().field, "body");
        let rows = |n: usize| Outbound::List {
            header: None,
            body: "Pick".into(),
            footer: None,
            button: "Routes".into(),
            sections: vec![ListSection {
                title: None,
                rows: (0..n)
                    .map(|i| ListRow {
                        id: format!("r{i}"),
                        title: format!("Row {i}"),
                        description: None,
                    })
                    .collect(),
            }],
        };
        assert!(rows(10).validate().is_ok());
        assert_eq!(rows(11).validate().unwrap_err().field, "sections");
        let cta = |url: &str| Outbound::CtaUrl {
            header: None,
            body: "Book now".into(),
            footer: Some("Inter-City Experts".into()),
            display_text: "Open app".into(),
            url: url.into(),
        };
        assert!(cta("https://oneway.cab/app").validate().is_ok());
        assert_eq!(
            cta("http://oneway.cab").validate().unwrap_err().field,
            "url"
        );
        let media = Outbound::Media {
            kind: MediaKind::Image,
            source: MediaSource::Id("123".into()),
            caption: None,
            filename: Some("x.pdf".into()),
        };
        assert_eq!(media.validate().unwrap_err().field, "filename");
        let template = Outbound::Template {
            name: "Ask Issue".into(),
            language: "hi".into(),
            params: TemplateParams::default(),
        };
        assert_eq!(template.validate().unwrap_err().field, "name");
    }

    #[test]
    fn bodies_follow_the_cloud_api() {
        let b = buttons(2).body("919812345678");
        assert_eq!(b["type"], "interactive");
        assert_eq!(b["to"], "919812345678");
        assert_eq!(b["interactive"]["type"], "button");
        assert_eq!(
            b["interactive"]["action"]["buttons"][1]["reply"]["id"],
            "b1"
        );
        let t = Outbound::Template {
            name: "booking_update".into(),
            language: "en".into(),
            params: TemplateParams {
                body: vec!["Ravi".into(), "BK123".into()],
                buttons: vec![TemplateButton {
                    index: 0,
                    sub_type: "url".into(),
                    value: "BK123".into(),
                }],
            },
        }
        .body("91");
        assert_eq!(
            t["template"]["components"][0]["parameters"][1]["text"],
            "BK123"
        );
        assert_eq!(t["template"]["components"][1]["index"], "0");
        let plain = Outbound::ask_issue_resolved().body("91");
        assert_eq!(plain["template"]["language"]["code"], "hi");
        assert!(plain["template"].get("components").is_none());
        let card = Outbound::Contact(ContactCard::oneway_cab()).body("91");
        assert_eq!(card["contacts"][0]["emails"][0]["email"], "care@oneway.cab");
        let doc = Outbound::Media {
            kind: MediaKind::Document,
            source: MediaSource::Link("https://oneway.cab/invoice.pdf".into()),
            caption: Some("Invoice".into()),
            filename: Some("invoice.pdf".into()),
        }
        .body("91");
        assert_eq!(doc["type"], "document");
        assert_eq!(doc["document"]["link"], "https://oneway.cab/invoice.pdf");
        assert_eq!(mark_read_body("wamid.X")["status"], "read");
    }

    #[test]
    fn each_channel_routes_by_its_own_url_number_and_key() {
        let table = crate::channel::ChannelTable::embedded().unwrap();
        let route = |id: &str| Route::for_channel(table.get(id).unwrap(), None);
        let partner = route("9099039188");
        assert_eq!(partner.url, "https://partners.pinbot.ai/v2/messages");
        assert_eq!(partner.wanumber.as_deref(), Some("919099039188"));
        assert_eq!(partner.send_type, "chat");
        let vendor = route("9726724247");
        assert_eq!(
            vendor.url,
            "https://partnersv1.pinbot.ai/v3/723917954136046/messages"
        );
        assert_eq!(vendor.wanumber, None, "v3 names the number in the path");
        assert_eq!(vendor.send_type, "vendor_chat");
        let local = Route::for_channel(
            table.get("9726724247").unwrap(),
            Some("http://127.0.0.1:3002/"),
        );
        assert_eq!(
            local.url,
            "http://127.0.0.1:3002/v3/723917954136046/messages"
        );
    }

    #[test]
    fn messages_round_trip_through_json_for_the_queue() {
        for m in [
            buttons(3),
            Outbound::ask_issue_resolved(),
            Outbound::Contact(ContactCard::oneway_cab()),
        ] {
            let text = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<Outbound>(&text).unwrap(), m);
        }
        assert!(!Outbound::ask_issue_resolved().needs_open_window());
        assert!(buttons(1).needs_open_window());
    }
}
