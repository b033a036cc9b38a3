//! The dashboard WebSocket protocol (SPEC §5): frames in and out.
//!
//! Client → server: `{"event":"<name>","data":{...},"request_id":"<opt>"}`.
//! Server → client: `{"event":"<name>","data":{...},"request_id":"<echoed>"}`;
//! a reply carries the request's event name, an error is `event: "error"`.

pub mod chat_list;
mod connections;
pub mod fanout;
pub mod views;

pub use connections::*;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::chat_list::{
    AssigneeFilter, ChatFilters, ListSpec, ListStart, ProfileFilter, decode_cursor,
};
use crate::channel::Stakeholder;
use crate::chat::tags::TagName;
use crate::chat::{ChatId, ChatStatus};
pub use crate::protocol::chat_list::ChatListQuery;

/// API Gateway's limit for one WebSocket frame; replies are sized to fit.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// Longest `request_id` echoed back.
pub const MAX_REQUEST_ID: usize = 128;

/// Machine-readable error codes of `error` frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not JSON or not an object with a string `event`.
    BadRequest,
    /// The event name is not one this server answers.
    UnknownEvent,
    /// `data` is missing a field, has a wrong type or an invalid value.
    InvalidData,
    /// The chat (or other object) named does not exist.
    NotFound,
    /// The caller may not do this.
    Forbidden,
    /// The executive was disabled or their password changed since the
    /// socket opened: it is closed; log in again.
    Unauthorized,
    /// The frame is larger than the server accepts.
    TooLarge,
    /// A free-form message outside the 24-hour customer service window:
    /// `templates` lists what may be sent instead.
    WindowClosed,
    /// Something on our side failed; retrying later may work.
    Internal,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    /// Further fields of the error frame's `data` (e.g. `templates`).
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: serde_json::Map::new(),
        }
    }

    pub fn with_detail(mut self, name: &str, value: serde_json::Value) -> Self {
        self.details.insert(name.to_owned(), value);
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidData, message)
    }
}

/// The longest internal note.
pub const MAX_NOTE_CHARS: usize = 4096;

/// The events this server answers today.
pub const SUPPORTED_EVENTS: [&str; 17] = [
    "config",
    "add_note",
    "set_status",
    "assign_chat",
    "send_message",
    "fetch_context_history",
    "search_chat",
    "new_chat",
    "mark_seen",
    "fetch_all_chats",
    "fetch_chats_by_user",
    "join_chat",
    "join_chat_customer",
    "leave_chat",
    "update_chat_status",
    "apply_tag",
    "remove_tag",
];

/// A parsed client frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Incoming {
    pub event: ClientEvent,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    FetchAllChats(ChatListQuery),
    FetchChatsByUser(MessagePageQuery),
    JoinChat {
        chat_id: ChatId,
    },
    LeaveChat {
        chat_id: ChatId,
    },
    UpdateChatStatus {
        target: ChatTarget,
        status: ChatStatus,
    },
    Config,
    SearchChat {
        customer: crate::customer::SenderId,
    },
    NewChat {
        customer: crate::customer::SenderId,
        customer_type: Stakeholder,
    },
    MarkSeen {
        chat_id: ChatId,
        message_id: Option<String>,
    },
    /// An internal note for teammates (never sent to WhatsApp).
    AddNote {
        chat_id: ChatId,
        note: String,
    },
    FetchContextHistory {
        customer: crate::customer::SenderId,
    },
    SendMessage {
        chat_id: ChatId,
        send: SendRequest,
        /// `client_id`: the dashboard's id for this composed message; a
        /// resend under it stores and sends nothing new.
        key: Option<crate::chat::SendKey>,
    },
    /// `set_status {status: online|offline}`: the caller's presence.
    SetStatus {
        online: bool,
    },
    /// `assign_chat {chat_id, executive_id}` (admins).
    AssignChat {
        chat_id: ChatId,
        executive_id: crate::executive::ExecutiveId,
    },
    /// `apply_tag` (`applied`) or `remove_tag`.
    Tag {
        chat_id: ChatId,
        tag: TagName,
        applied: bool,
    },
}

/// What an agent sends with `send_message`: `type` text (the default),
/// image / video / document (`media` {id or link, filename}, `message` the
/// caption) or template (`template` {name, params}).
#[derive(Clone, Debug, PartialEq)]
pub enum SendRequest {
    Text(String),
    Media {
        kind: crate::outbound::MediaKind,
        source: crate::outbound::MediaSource,
        caption: Option<String>,
        filename: Option<String>,
    },
    Template {
        name: String,
        params: Vec<String>,
    },
}

fn send_request(data: &Value) -> Result<SendRequest, ProtocolError> {
    use crate::outbound::{MediaKind, MediaSource};
    let message = match data.get("message") {
        Some(Value::String(t)) if !t.trim().is_empty() => Some(t.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => None,
        Some(_) => return Err(ProtocolError::invalid("`message` must be a string")),
    };
    let kind = match opt_str(data, "type")? {
        None | Some("text") => {
            let text = message.ok_or_else(|| {
                ProtocolError::invalid("`message` is required and must not be blank")
            })?;
            if text.chars().count() > MAX_TEXT_CHARS {
                return Err(ProtocolError::invalid(format!(
                    "`message` is longer than WhatsApp's {MAX_TEXT_CHARS} characters"
                )));
            }
            return Ok(SendRequest::Text(text));
        }
        Some("template") => {
            let t = data
                .get("template")
                .filter(|t| t.is_object())
                .ok_or_else(|| ProtocolError::invalid("`template` {name, params} is required"))?;
            let name = opt_str(t, "name")?
                .ok_or_else(|| ProtocolError::invalid("`template.name` is required"))?;
            let params = match t.get("params") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(values)) => values
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| ProtocolError::invalid("`template.params` must be strings"))?,
                Some(_) => return Err(ProtocolError::invalid("`template.params` must be a list")),
            };
            return Ok(SendRequest::Template {
                name: name.to_owned(),
                params,
            });
        }
        Some("image") => MediaKind::Image,
        Some("video") => MediaKind::Video,
        Some("document") => MediaKind::Document,
        Some(other) => {
            return Err(ProtocolError::invalid(format!(
                "`type` {} is not one of text, image, video, document, template",
                other.chars().take(32).collect::<String>()
            )));
        }
    };
    let media = data
        .get("media")
        .filter(|m| m.is_object())
        .ok_or_else(|| ProtocolError::invalid("`media` {id or link} is required"))?;
    let source = match (opt_str(media, "id")?, opt_str(media, "link")?) {
        (Some(id), None) => MediaSource::Id(id.to_owned()),
        (None, Some(link)) => MediaSource::Link(link.to_owned()),
        _ => {
            return Err(ProtocolError::invalid(
                "`media` needs exactly one of `id` and `link`",
            ));
        }
    };
    Ok(SendRequest::Media {
        kind,
        source,
        caption: message,
        filename: opt_str(media, "filename")?.map(str::to_owned),
    })
}

/// WhatsApp's limit for a text message body, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// Which chat an event is about: its id, or (as the seeds' dashboard
/// sends it) the customer's number, with the team when it is ambiguous.
#[derive(Clone, Debug, PartialEq)]
pub enum ChatTarget {
    Id(ChatId),
    Customer {
        customer: crate::customer::SenderId,
        customer_type: Option<Stakeholder>,
    },
}

impl ClientEvent {
    pub fn name(&self) -> &'static str {
        match self {
            ClientEvent::FetchAllChats(_) => "fetch_all_chats",
            ClientEvent::FetchChatsByUser(_) => "fetch_chats_by_user",
            ClientEvent::JoinChat { .. } => "join_chat",
            ClientEvent::LeaveChat { .. } => "leave_chat",
            ClientEvent::UpdateChatStatus { .. } => "update_chat_status",
            ClientEvent::Config => "config",
            ClientEvent::SearchChat { .. } => "search_chat",
            ClientEvent::NewChat { .. } => "new_chat",
            ClientEvent::MarkSeen { .. } => "mark_seen",
            ClientEvent::AddNote { .. } => "add_note",
            ClientEvent::FetchContextHistory { .. } => "fetch_context_history",
            ClientEvent::SendMessage { .. } => "send_message",
            ClientEvent::SetStatus { .. } => "set_status",
            ClientEvent::AssignChat { .. } => "assign_chat",
            ClientEvent::Tag { applied: true, .. } => "apply_tag",
            ClientEvent::Tag { applied: false, .. } => "remove_tag",
        }
    }
}

/// `fetch_chats_by_user`: one page of a chat's messages, newest first,
/// from the top (`page`) or older than the message `before`.
#[derive(Clone, Debug, PartialEq)]
pub struct MessagePageQuery {
    pub chat_id: ChatId,
    pub page: u32,
    pub page_size: u32,
    pub before: Option<String>,
}

pub const DEFAULT_PAGE_SIZE: u32 = 10;
pub const MAX_PAGE_SIZE: u32 = 50;
/// Offset paging reads `page * page_size` items; past this depth it is
/// refused rather than made expensive.
pub const MAX_OFFSET_ITEMS: u32 = 1000;

/// The envelope, read leniently enough to echo `request_id` in errors.
#[derive(Deserialize)]
struct Envelope {
    event: Option<Value>,
    #[serde(default)]
    data: Value,
    request_id: Option<Value>,
}

/// Reads `request_id` from whatever arrived, so even an error about the
/// rest of the frame can be matched to its request.
pub fn request_id_of(text: &str) -> Option<String> {
    let env: Envelope = serde_json::from_str(text).ok()?;
    request_id_value(env.request_id.as_ref())
}

fn request_id_value(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.chars().take(MAX_REQUEST_ID).collect()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses a client frame into an event, or the `error` frame's contents.
pub fn parse_frame(text: &str) -> Result<Incoming, ProtocolError> {
    let env: Envelope = serde_json::from_str(text).map_err(|e| {
        ProtocolError::new(
            ErrorCode::BadRequest,
            format!("frame is not a JSON object: {e}"),
        )
    })?;
    let name = match env.event {
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(ProtocolError::new(
                ErrorCode::BadRequest,
                "`event` must be a string",
            ));
        }
        None => {
            return Err(ProtocolError::new(
                ErrorCode::BadRequest,
                "frame has no `event`",
            ));
        }
    };
    let data = match env.data {
        Value::Null => Value::Object(Default::default()),
        v @ Value::Object(_) => v,
        _ => return Err(ProtocolError::invalid("`data` must be an object")),
    };
    let event = match name.as_str() {
        "fetch_all_chats" => ClientEvent::FetchAllChats(chat_list_query(&data)?),
        "fetch_chats_by_user" => ClientEvent::FetchChatsByUser(message_page_query(&data)?),
        "join_chat" | "join_chat_customer" => ClientEvent::JoinChat {
            chat_id: chat_id(&data)?,
        },
        "leave_chat" => ClientEvent::LeaveChat {
            chat_id: chat_id(&data)?,
        },
        "config" => ClientEvent::Config,
        "send_message" => ClientEvent::SendMessage {
            chat_id: chat_id(&data)?,
            send: send_request(&data)?,
            key: opt_str(&data, "client_id")?
                .map(|k| {
                    crate::chat::SendKey::parse(k)
                        .map_err(|e| ProtocolError::invalid(format!("`client_id`: {e}")))
                })
                .transpose()?,
        },
        "fetch_context_history" => ClientEvent::FetchContextHistory {
            customer: customer_field(&data, "customer")?,
        },
        "search_chat" => ClientEvent::SearchChat {
            customer: customer_field(&data, "customer")?,
        },
        "new_chat" => {
            let customer = customer_field(&data, "sender")?;
            let customer_type = match opt_str(&data, "customer_type")? {
                Some(t) => match Stakeholder::parse(t) {
                    Ok(s) if !s.is_staffed() => {
                        return Err(ProtocolError::invalid(
                            "the Discount channel is automated; agents cannot open chats on it",
                        ));
                    }
                    Ok(s) => s,
                    Err(e) => return Err(ProtocolError::invalid(e.to_string())),
                },
                None => return Err(ProtocolError::invalid("`customer_type` is required")),
            };
            ClientEvent::NewChat {
                customer,
                customer_type,
            }
        }
        "add_note" => {
            let note = opt_str(&data, "note")?
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ProtocolError::invalid("`note` must be a non-empty string"))?;
            if note.chars().count() > MAX_NOTE_CHARS {
                return Err(ProtocolError::invalid(format!(
                    "`note` is longer than {MAX_NOTE_CHARS} characters"
                )));
            }
            ClientEvent::AddNote {
                chat_id: chat_id(&data)?,
                note: note.to_owned(),
            }
        }
        "mark_seen" => ClientEvent::MarkSeen {
            chat_id: chat_id(&data)?,
            message_id: opt_str(&data, "message_id")?
                .map(|m| {
                    if m.len() <= 300 {
                        Ok(m.to_owned())
                    } else {
                        Err(ProtocolError::invalid("`message_id` is too long"))
                    }
                })
                .transpose()?,
        },
        "apply_tag" | "remove_tag" => {
            let raw = opt_str(&data, "tag")?
                .ok_or_else(|| ProtocolError::invalid("`tag` is required"))?;
            ClientEvent::Tag {
                chat_id: chat_id(&data)?,
                tag: TagName::parse(raw)
                    .map_err(|e| ProtocolError::invalid(format!("`tag`: {e}")))?,
                applied: name == "apply_tag",
            }
        }
        "set_status" => ClientEvent::SetStatus {
            online: match opt_str(&data, "status")?.map(|v| v.trim().to_ascii_lowercase()) {
                Some(v) if v == "online" => true,
                Some(v) if v == "offline" => false,
                Some(_) => {
                    return Err(ProtocolError::invalid("`status` must be online or offline"));
                }
                None => {
                    return Err(ProtocolError::invalid(
                        "`status` (online or offline) is required",
                    ));
                }
            },
        },
        "assign_chat" => ClientEvent::AssignChat {
            chat_id: chat_id(&data)?,
            executive_id: match opt_str(&data, "executive_id")? {
                Some(e) => crate::executive::ExecutiveId::parse(e.trim())
                    .map_err(|e| ProtocolError::invalid(format!("`executive_id`: {e}")))?,
                None => return Err(ProtocolError::invalid("`executive_id` is required")),
            },
        },
        "update_chat_status" => {
            let status = match opt_str(&data, "status")? {
                Some(s) => ChatStatus::parse(s).map_err(ProtocolError::invalid)?,
                None => return Err(ProtocolError::invalid("`status` is required")),
            };
            ClientEvent::UpdateChatStatus {
                target: chat_target(&data)?,
                status,
            }
        }
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err(ProtocolError::new(
                ErrorCode::UnknownEvent,
                format!(
                    "unknown event `{shown}`; supported: {}",
                    SUPPORTED_EVENTS.join(", ")
                ),
            ));
        }
    };
    Ok(Incoming { event })
}

fn chat_id(data: &Value) -> Result<ChatId, ProtocolError> {
    match data.get("chat_id") {
        Some(Value::String(s)) => {
            ChatId::parse(s).map_err(|e| ProtocolError::invalid(format!("`chat_id`: {e}")))
        }
        Some(_) => Err(ProtocolError::invalid("`chat_id` must be a string")),
        None => Err(ProtocolError::invalid("`chat_id` is required")),
    }
}

/// A customer named by phone number (or WhatsApp user id), a leading `+`
/// and spaces tolerated.
fn customer_field(data: &Value, key: &str) -> Result<crate::customer::SenderId, ProtocolError> {
    let raw = opt_str(data, key)?
        .ok_or_else(|| ProtocolError::invalid(format!("`{key}` is required")))?;
    let cleaned: String = raw
        .trim()
        .trim_start_matches('+')
        .chars()
        .filter(|c| *c != ' ')
        .collect();
    crate::customer::SenderId::parse(&cleaned)
        .map_err(|e| ProtocolError::invalid(format!("`{key}`: {e}")))
}

fn chat_target(data: &Value) -> Result<ChatTarget, ProtocolError> {
    if data.get("chat_id").is_some() {
        return chat_id(data).map(ChatTarget::Id);
    }
    let Some(number) = opt_str(data, "customer_number")? else {
        return Err(ProtocolError::invalid(
            "`chat_id` or `customer_number` is required",
        ));
    };
    let customer = crate::customer::SenderId::parse(number)
        .map_err(|e| ProtocolError::invalid(format!("`customer_number`: {e}")))?;
    let customer_type = opt_str(data, "customer_type")?
        .map(Stakeholder::parse)
        .transpose()
        .map_err(|e| ProtocolError::invalid(e.to_string()))?;
    Ok(ChatTarget::Customer {
        customer,
        customer_type,
    })
}

fn opt_str<'a>(data: &'a Value, key: &str) -> Result<Option<&'a str>, ProtocolError> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ProtocolError::invalid(format!("`{key}` must be a string"))),
    }
}

/// A positive integer; numeric strings are accepted because the seeds'
/// dashboard sends them that way.
fn opt_count(data: &Value, key: &str) -> Result<Option<u32>, ProtocolError> {
    let bad = || ProtocolError::invalid(format!("`{key}` must be a positive integer"));
    let n = match data.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(bad)?,
        Some(Value::String(s)) => s.trim().parse::<u64>().map_err(|_| bad())?,
        Some(_) => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    u32::try_from(n).map(Some).map_err(|_| bad())
}

fn paging(data: &Value) -> Result<(u32, u32), ProtocolError> {
    let page = opt_count(data, "page")?.unwrap_or(1);
    let page_size = opt_count(data, "page_size")?.unwrap_or(DEFAULT_PAGE_SIZE);
    if page_size > MAX_PAGE_SIZE {
        return Err(ProtocolError::invalid(format!(
            "`page_size` must be at most {MAX_PAGE_SIZE}"
        )));
    }
    if page.saturating_mul(page_size) > MAX_OFFSET_ITEMS {
        return Err(ProtocolError::invalid(format!(
            "`page` × `page_size` must be at most {MAX_OFFSET_ITEMS}"
        )));
    }
    Ok((page, page_size))
}

/// The list fields present in `data`, each absent one taken from `base`.
fn list_spec_over(data: &Value, base: ListSpec) -> Result<ListSpec, ProtocolError> {
    let field = |key: &str| opt_str(data, key);
    fn invalid(key: &'static str) -> impl Fn(String) -> ProtocolError {
        move |e| ProtocolError::invalid(format!("`{key}`: {e}"))
    }
    Ok(ListSpec {
        status: match field("status")? {
            Some(s) => ChatStatus::parse(s).map_err(ProtocolError::invalid)?,
            None => base.status,
        },
        customer_type: match field("customer_type")? {
            Some(t) => {
                Some(Stakeholder::parse(t).map_err(|e| ProtocolError::invalid(e.to_string()))?)
            }
            None => base.customer_type,
        },
        filters: ChatFilters {
            search: match field("search")? {
                Some(q) => Some(ChatFilters::parse_search(q).map_err(invalid("search"))?),
                None => base.filters.search,
            },
            profile: match field("filter")? {
                Some(f) => Some(ProfileFilter::parse(f).map_err(invalid("filter"))?),
                None => base.filters.profile,
            },
            assigned_to: match field("assigned_to")? {
                Some(a) => Some(AssigneeFilter::parse(a).map_err(invalid("assigned_to"))?),
                None => base.filters.assigned_to,
            },
            tag: match field("tag")? {
                Some(t) => Some(TagName::parse(t).map_err(invalid("tag"))?),
                None => base.filters.tag,
            },
        },
        page_size: match opt_count(data, "page_size")? {
            Some(n) if n > MAX_PAGE_SIZE => {
                return Err(ProtocolError::invalid(format!(
                    "`page_size` must be at most {MAX_PAGE_SIZE}"
                )));
            }
            Some(n) => n,
            None => base.page_size,
        },
    })
}

fn chat_list_query(data: &Value) -> Result<ChatListQuery, ProtocolError> {
    let Some(cursor) = opt_str(data, "cursor")? else {
        let spec = list_spec_over(
            data,
            ListSpec {
                status: ChatStatus::Active,
                customer_type: None,
                filters: ChatFilters::default(),
                page_size: DEFAULT_PAGE_SIZE,
            },
        )?;
        let (page, _) = paging(data)?;
        return Ok(ChatListQuery {
            spec,
            start: ListStart::Page(page),
        });
    };
    let (base, after) = decode_cursor(cursor).map_err(ProtocolError::invalid)?;
    if opt_count(data, "page")?.is_some_and(|p| p != 1) {
        return Err(ProtocolError::invalid("send `page` or `cursor`, not both"));
    }
    // Fields sent beside a cursor must be the ones it was issued for.
    let spec = list_spec_over(data, base.clone())?;
    if spec != base {
        return Err(ProtocolError::invalid(
            "`cursor` belongs to a list with other filters; drop it to start from the top",
        ));
    }
    Ok(ChatListQuery {
        spec,
        start: ListStart::After(after),
    })
}

fn message_page_query(data: &Value) -> Result<MessagePageQuery, ProtocolError> {
    let chat_id = chat_id(data)?;
    let (page, page_size) = paging(data)?;
    let before = opt_str(data, "before")?
        .map(|m| {
            if m.len() <= 300 {
                Ok(m.to_owned())
            } else {
                Err(ProtocolError::invalid("`before` is too long"))
            }
        })
        .transpose()?;
    if before.is_some() && page != 1 {
        return Err(ProtocolError::invalid("send `page` or `before`, not both"));
    }
    Ok(MessagePageQuery {
        chat_id,
        page,
        page_size,
        before,
    })
}

/// A server frame.
#[derive(Serialize)]
pub struct Frame<'a, T: Serialize> {
    pub event: &'a str,
    pub data: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
}

/// Serialises a server frame.
pub fn frame<T: Serialize>(event: &str, data: T, request_id: Option<&str>) -> String {
    let f = Frame {
        event,
        data,
        request_id,
    };
    // Serialising our own plain data types cannot fail; fall back to an
    // error frame rather than panic if it ever does.
    serde_json::to_string(&f).unwrap_or_else(|e| {
        error_frame(
            &ProtocolError::new(
                ErrorCode::Internal,
                format!("reply could not be encoded: {e}"),
            ),
            request_id,
        )
    })
}

pub fn error_frame(err: &ProtocolError, request_id: Option<&str>) -> String {
    let mut data = err.details.clone();
    data.insert("code".into(), serde_json::json!(err.code));
    data.insert("message".into(), serde_json::json!(err.message));
    let data = serde_json::Value::Object(data);
    let f = Frame {
        event: "error",
        data,
        request_id,
    };
    serde_json::to_string(&f).unwrap_or_else(|_| {
        r#"{"event":"error","data":{"code":"internal","message":"error"}}"#.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_with_defaults() {
        let i = parse_frame(r#"{"event":"fetch_all_chats","data":{"customer_type":"Partner"}}"#)
            .unwrap();
        assert_eq!(
            i.event,
            ClientEvent::FetchAllChats(ChatListQuery {
                spec: ListSpec {
                    status: ChatStatus::Active,
                    customer_type: Some(Stakeholder::Partner),
                    filters: ChatFilters::default(),
                    page_size: 10
                },
                start: ListStart::Page(1),
            })
        );
    }

    #[test]
    fn a_send_carries_its_client_id_when_given_and_refuses_a_bad_one() {
        let chat = "01a1fd83-bbb1-77aa-8fa7-6a6bac181c20";
        let key_of = |data: &str| {
            parse_frame(&format!(r#"{{"event":"send_message","data":{data}}}"#))
                .map(|f| match f.event {
                    ClientEvent::SendMessage { key, .. } => key.map(String::from),
                    _ => None,
                })
                .map_err(|e| e.code)
        };
        assert_eq!(
            key_of(&format!(
                r#"{{"chat_id":"{chat}","message":"hi","client_id":"a-1_B"}}"#
            )),
            Ok(Some("a-1_B".to_owned()))
        );
        assert_eq!(
            key_of(&format!(r#"{{"chat_id":"{chat}","message":"hi"}}"#)),
            Ok(None)
        );
        for bad in [r#""a b""#, "7", &format!("\"{}\"", "x".repeat(65))] {
            assert_eq!(
                key_of(&format!(
                    r#"{{"chat_id":"{chat}","message":"hi","client_id":{bad}}}"#
                )),
                Err(ErrorCode::InvalidData),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_frames_get_precise_errors() {
        let code = |t: &str| parse_frame(t).map(|_| ()).unwrap_err().code;
        assert_eq!(code("not json"), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"data":{}}"#), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"event":7}"#), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"event":"dance"}"#), ErrorCode::UnknownEvent);
        assert_eq!(
            code(r#"{"event":"join_chat","data":{}}"#),
            ErrorCode::InvalidData
        );
        assert_eq!(
            code(r#"{"event":"join_chat","data":{"chat_id":5}}"#),
            ErrorCode::InvalidData
        );
        assert_eq!(
            code(r#"{"event":"fetch_all_chats","data":{"page_size":500}}"#),
            ErrorCode::InvalidData
        );
        assert_eq!(
            code(r#"{"event":"fetch_all_chats","data":{"page":0}}"#),
            ErrorCode::InvalidData
        );
        assert_eq!(
            code(r#"{"event":"fetch_all_chats","data":{"filter":"Asleep"}}"#),
            ErrorCode::InvalidData
        );
        assert_eq!(
            code(r#"{"event":"fetch_all_chats","data":{"cursor":"bm9wZQ"}}"#),
            ErrorCode::InvalidData
        );
        assert_eq!(
            code(
                r#"{"event":"apply_tag","data":{"chat_id":"01a1fd83-bbb1-77aa-8fa7-6a6bac181c20"}}"#
            ),
            ErrorCode::InvalidData
        );
        assert_eq!(
            code(
                r#"{"event":"update_chat_status","data":{"chat_id":"01a1fd83-bbb1-77aa-8fa7-6a6bac181c20"}}"#
            ),
            ErrorCode::InvalidData
        );
        assert_eq!(
            code(r#"{"event":"update_chat_status","data":{"status":"resolved"}}"#),
            ErrorCode::InvalidData
        );
        assert_eq!(
            code(
                r#"{"event":"update_chat_status","data":{"customer_number":"98 76","status":"resolved"}}"#
            ),
            ErrorCode::InvalidData
        );
    }

    #[test]
    fn request_ids_are_echoed_even_from_bad_frames() {
        assert_eq!(
            request_id_of(r#"{"event":9,"request_id":"r1"}"#).as_deref(),
            Some("r1")
        );
        assert_eq!(request_id_of(r#"{"request_id":42}"#).as_deref(), Some("42"));
        assert_eq!(request_id_of("nope"), None);
    }

    #[test]
    fn error_frames_have_code_and_message() {
        let f = error_frame(&ProtocolError::invalid("x"), Some("r"));
        let v: Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["event"], "error");
        assert_eq!(v["data"]["code"], "invalid_data");
        assert_eq!(v["request_id"], "r");
    }
}
