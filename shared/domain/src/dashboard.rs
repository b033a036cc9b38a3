//! The dashboard side of the WebSocket API: connecting, disconnecting and
//! answering client events (SPEC §5).

use chrono::Utc;
use serde_json::json;

use crate::auth::{AuthError, JwtKeys, Refused, authenticate};
use crate::channel::ChannelTable;
use crate::channel::Stakeholder;
use crate::chat::ChatStatus;
use crate::chat::ChatStore;
use crate::chat::rating::RatingSettings;
use crate::chat::tags::TagStore;
use crate::chat::tags::{
    AWAITING_CUSTOMER_RESPONSE, MAX_TAGS_PER_CHAT, TagCatalog, TagName, team_tags,
};
use crate::chat::{Chat, ChatId, SenderType};
use crate::customer::CustomerStore;
use crate::customer::SenderId;
use crate::error::StoreError;
use crate::executive::ExecutiveStore;
use crate::protocol::chat_list::{ListStart, encode_cursor, list_page};
use crate::protocol::fanout::{push_room_update, push_stats, push_to_room, push_to_rooms};
use crate::protocol::views::{ChatView, MessageView};
use crate::protocol::{
    self, ChatListQuery, ChatTarget, ClientEvent, ErrorCode, MessagePageQuery, ProtocolError, frame,
};
use crate::protocol::{Connection, ConnectionId, ConnectionStore, PushError, Pusher, Room};
use crate::rides::{RideSettings, RideStore, riding_soon};
use crate::routing::assignment;
use crate::routing::assignment::RoutingStore;
use crate::sending::{Author, OutboundQueue, queue_send};
use crate::settings::{SettingsStore, in_force};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("unauthorized: {0}")]
    Unauthorized(AuthError),
    #[error("executive is disabled")]
    Disabled,
    #[error("chat_id: {0}")]
    BadChat(String),
    /// The executive has [`MAX_CONNECTIONS_PER_EXECUTIVE`] open already.
    #[error("too many open connections")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Open dashboard connections one executive may hold (tabs, devices):
/// every broadcast costs one push per connection, so they are bounded.
pub const MAX_CONNECTIONS_PER_EXECUTIVE: usize = 10;

/// `$connect`: checks the token (authority from the store, see
/// `crate::auth::authenticate`), records the connection and its rooms.
pub async fn connect<S>(
    store: &S,
    keys: &JwtKeys,
    connection_id: ConnectionId,
    token: Option<&str>,
    chat_id: Option<&str>,
) -> Result<Connection, ConnectError>
where
    S: ChatStore + ConnectionStore + ExecutiveStore,
{
    let (caller, executive) = authenticate(store, keys, token.unwrap_or(""))
        .await
        .map_err(|e| match e {
            Refused::Token(e) => ConnectError::Unauthorized(e),
            Refused::Disabled => ConnectError::Disabled,
            Refused::Store(e) => ConnectError::Store(e),
        })?;
    if store.connections_of(&caller.executive_id).await?.len() >= MAX_CONNECTIONS_PER_EXECUTIVE {
        return Err(ConnectError::TooMany);
    }
    // Role and teams as stored now, never as the token remembers them.
    let connection = Connection {
        connection_id,
        executive_id: caller.executive_id,
        role: caller.role,
        stakeholders: caller.stakeholders,
        connected_at: Utc::now(),
        token_generation: executive.map(|e| e.token_generation),
    };
    let mut rooms = vec![Room::Everyone];
    rooms.extend(connection.stakeholders.iter().map(|s| Room::Dashboard(*s)));
    if let Some(raw) = chat_id.filter(|c| !c.is_empty()) {
        let id = ChatId::parse(raw).map_err(|e| ConnectError::BadChat(e.to_string()))?;
        let chat = store
            .chat(&id)
            .await?
            .ok_or_else(|| ConnectError::BadChat("no such chat".into()))?;
        if !connection.sees(chat.customer_type) {
            return Err(ConnectError::BadChat("no such chat".into()));
        }
        rooms.push(Room::Chat(id));
    }
    store.add_connection(&connection, &rooms).await?;
    tracing::info!(connection_id = %connection.connection_id, executive_id = %connection.executive_id, "dashboard connected");
    Ok(connection)
}

/// How often closing a socket through `@connections` is tried before it is
/// left to API Gateway's idle timeout (10 minutes; the socket is out of
/// every room and its frames are refused meanwhile).
const CLOSE_ATTEMPTS: u32 = 4;

/// Forgets a connection and closes its socket, retrying a close that
/// fails (a gone socket counts as closed).
pub async fn close_connection<S, P>(store: &S, pusher: &P, id: &ConnectionId)
where
    S: ConnectionStore,
    P: Pusher,
{
    if let Err(e) = store.remove_connection(id).await {
        tracing::warn!(connection_id = %id, error = ?e, "could not forget connection; its frames are refused anyway");
    }
    close_with_retries(pusher, id).await;
}

/// `@connections` DELETE, tried [`CLOSE_ATTEMPTS`] times with growing
/// waits; whether it went through.
async fn close_with_retries<P: Pusher>(pusher: &P, id: &ConnectionId) -> bool {
    let mut wait = std::time::Duration::from_millis(100);
    for attempt in 1..=CLOSE_ATTEMPTS {
        match pusher.close(id).await {
            Ok(()) => return true,
            Err(e) if attempt == CLOSE_ATTEMPTS => {
                tracing::error!(connection_id = %id, error = ?e, attempts = attempt,
                    "could not close connection; its frames are refused until it idles out");
            }
            Err(e) => {
                tracing::warn!(connection_id = %id, error = ?e, attempt, "close failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 4;
            }
        }
    }
    false
}

/// `$disconnect`: forgets the connection and its rooms. An executive
/// whose last connection this was goes offline (their chats handed on).
pub async fn disconnect<S, P>(store: &S, pusher: &P, id: &ConnectionId) -> Result<(), StoreError>
where
    S: ChatStore + ConnectionStore + ExecutiveStore + RoutingStore,
    P: Pusher,
{
    let gone = store.connection(id).await?;
    store.remove_connection(id).await?;
    tracing::info!(connection_id = %id, "dashboard disconnected");
    if let Some(c) = gone
        && let Some(exec) = store.executive(&c.executive_id).await?
    {
        assignment::offline_unless_connected(store, pusher, &exec).await?;
    }
    Ok(())
}

/// What the dashboard answers from configuration: the channel table and
/// the tags each team starts with. Loaded once per cold start.
#[derive(Clone, Debug)]
pub struct Catalogs {
    pub channels: ChannelTable,
    pub tags: TagCatalog,
    /// Approved templates and predefined texts.
    pub messages: crate::sending::MessageCatalog,
    /// Who is asked to rate a resolution (the seeded settings; an admin's
    /// stored change wins).
    pub rating: RatingSettings,
    /// Which rides count as soon in chat lists (seeded; an admin's stored
    /// change wins).
    pub rides: RideSettings,
}

impl Catalogs {
    /// `CHANNELS_FILE` / `TAGS_FILE` / `MESSAGES_FILE` when set, else the
    /// embedded files.
    pub fn from_env(env: &crate::config::Env) -> Result<Self, crate::config::ConfigError> {
        Ok(Self {
            channels: ChannelTable::from_env(env)?,
            tags: TagCatalog::from_env(env)?,
            messages: crate::sending::MessageCatalog::from_env(env)?,
            rating: RatingSettings::from_env(env)?,
            rides: RideSettings::from_env(env)?,
        })
    }
}

/// Whether a client frame may change a chat's status or owner (and so
/// leave domain events to publish): `update_chat_status`, `assign_chat`,
/// `set_status`, `new_chat`.
pub fn may_emit_events(frame_text: &str) -> bool {
    /// Only the frame's event name, borrowed: nothing else is built.
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        event: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Named>(frame_text).is_ok_and(|f| {
        matches!(
            f.event.as_deref(),
            Some("update_chat_status" | "assign_chat" | "set_status" | "new_chat")
        )
    })
}

/// Everything a dashboard frame may need from the store.
pub trait DashboardStore:
    ChatStore
    + ConnectionStore
    + CustomerStore
    + TagStore
    + ExecutiveStore
    + RoutingStore
    + SettingsStore
    + RideStore
{
}

impl<T> DashboardStore for T where
    T: ChatStore
        + ConnectionStore
        + CustomerStore
        + TagStore
        + ExecutiveStore
        + RoutingStore
        + SettingsStore
        + RideStore
{
}

/// Answers one client frame on `connection_id`: the reply (or `error`
/// frame) is pushed back to the same connection.
pub async fn handle_frame<S, P, Q>(
    store: &S,
    pusher: &P,
    outbox: &Q,
    catalogs: &Catalogs,
    connection_id: &ConnectionId,
    text: &str,
) -> Result<(), PushError>
where
    S: DashboardStore,
    P: Pusher,
    Q: OutboundQueue,
{
    let request_id = protocol::request_id_of(text);
    let rid = request_id.as_deref();
    if text.len() > protocol::MAX_FRAME_BYTES {
        tracing::info!(connection_id = %connection_id, bytes = text.len(), "frame too large");
        let e = ProtocolError::new(
            ErrorCode::TooLarge,
            format!(
                "frame is {} bytes; the limit is {} bytes (32 KB)",
                text.len(),
                protocol::MAX_FRAME_BYTES
            ),
        );
        return pusher
            .push(connection_id, &protocol::error_frame(&e, rid))
            .await
            .map(|_| ());
    }
    let mut then = Vec::new();
    let answered = answer(store, outbox, catalogs, connection_id, text, &mut then).await;
    let revoked = matches!(&answered, Err(e) if e.code == ErrorCode::Unauthorized);
    let reply = match answered {
        Ok((event, data)) => {
            let f = frame(event, data, rid);
            if f.len() > protocol::MAX_FRAME_BYTES {
                protocol::error_frame(
                    &ProtocolError::new(
                        ErrorCode::InvalidData,
                        "the reply would exceed the 32 KB frame limit; ask for a smaller page_size",
                    ),
                    rid,
                )
            } else {
                f
            }
        }
        Err(e) => protocol::error_frame(&e, rid),
    };
    let pushed = pusher.push(connection_id, &reply).await.map(|_| ());
    if revoked {
        // A socket that outlived its authority (its close after the change
        // failed, or came too late): closed now.
        close_connection(store, pusher, connection_id).await;
    }
    // Others hear about it after the requester has its answer.
    for f in then {
        f.announce(store, pusher).await;
    }
    pushed
}

/// `connection` with its executive's role and teams as stored now; an
/// `unauthorized` error when they were disabled, their tokens revoked or
/// their record removed since the socket opened.
async fn with_current_authority<S: ExecutiveStore>(
    store: &S,
    mut connection: Connection,
) -> Result<Connection, ProtocolError> {
    let revoked = || {
        ProtocolError::new(
            ErrorCode::Unauthorized,
            "your access changed since this connection opened; log in again",
        )
    };
    match store
        .executive(&connection.executive_id)
        .await
        .map_err(internal)?
    {
        Some(e) => {
            // A connection recorded without a generation predates them.
            let generation = connection.token_generation.unwrap_or(e.token_generation);
            let now = crate::auth::authority(&e, generation).map_err(|_| revoked())?;
            connection.role = now.role;
            connection.stakeholders = now.stakeholders;
            Ok(connection)
        }
        // An external token's bearer keeps what the token gave.
        None if connection.token_generation.is_none() => Ok(connection),
        None => Err(revoked()),
    }
}

/// What the rest of the dashboard hears after a request is answered.
enum Followup {
    /// An agent opened a chat: its team's dashboards and the counters.
    ChatOpened(Chat),
    /// An agent wrote: the chat's watchers, its team, and the counters
    /// when the customer's wait ended.
    MessageSent {
        chat: Chat,
        message: Box<crate::chat::Message>,
        wait_ended: bool,
    },
    StatusChanged {
        chat: Chat,
        from: ChatStatus,
        by: crate::executive::ExecutiveId,
    },
    /// An executive went online / offline: everyone hears, and chats are
    /// given out or handed on.
    Presence {
        executive: Box<crate::executive::Executive>,
        online: bool,
        changed: bool,
        at: chrono::DateTime<Utc>,
    },
    /// An admin gave a chat to someone.
    Assigned {
        chat: Chat,
        from: Option<crate::executive::ExecutiveId>,
    },
    /// A note was added: the chat's watchers.
    NoteAdded(Box<crate::chat::Message>),
    /// A tag was applied or removed: the chat's watchers and its team.
    Tagged {
        chat: Chat,
        tag: TagName,
        applied: bool,
        by: crate::executive::ExecutiveId,
    },
}

impl Followup {
    async fn announce<S, P>(self, store: &S, pusher: &P)
    where
        S: ChatStore + ConnectionStore + ExecutiveStore + RoutingStore,
        P: Pusher,
    {
        match self {
            Followup::NoteAdded(note) => {
                let f = frame(
                    "new_message",
                    json!({"chat_id": note.chat_id, "message": MessageView::new(&note)}),
                    None,
                );
                push_to_room(store, pusher, &Room::Chat(note.chat_id.clone()), &f).await;
            }
            Followup::Presence {
                executive,
                online,
                changed,
                at,
            } => {
                if let Err(e) =
                    assignment::presence_changed(store, pusher, &executive, online, changed, at)
                        .await
                {
                    tracing::error!(executive_id = %executive.executive_id, error = ?e,
                        "chats not given out / handed on; the scheduled sweep will");
                }
            }
            Followup::Assigned { chat, from } => {
                assignment::announce(store, pusher, &chat, from.as_ref(), "manual").await;
            }
            Followup::ChatOpened(chat) => {
                push_room_update(store, pusher, &chat).await;
                push_stats(store, pusher).await;
            }
            Followup::MessageSent {
                chat,
                message,
                wait_ended,
            } => {
                let f = frame(
                    "new_message",
                    json!({"chat_id": chat.chat_id, "message": crate::protocol::views::MessageView::new(&message)}),
                    None,
                );
                push_to_room(store, pusher, &Room::Chat(chat.chat_id.clone()), &f).await;
                push_room_update(store, pusher, &chat).await;
                if wait_ended {
                    push_stats(store, pusher).await;
                }
            }
            Followup::StatusChanged { chat, from, by } => {
                let update = frame(
                    "chat_status_updated",
                    json!({"chat": ChatView::new(&chat, 0), "from": from, "to": chat.status, "by": by}),
                    None,
                );
                push_to_room(store, pusher, &Room::Chat(chat.chat_id.clone()), &update).await;
                push_room_update(store, pusher, &chat).await;
                push_stats(store, pusher).await;
                // Resolving frees its owner's capacity for a waiting chat;
                // reopening needs an owner.
                let routed = match chat.status {
                    ChatStatus::Resolved => assignment::drain(store, pusher, chat.customer_type)
                        .await
                        .map(|_| ()),
                    ChatStatus::Active => assignment::route(store, pusher, chat.clone(), None)
                        .await
                        .map(|_| ()),
                };
                if let Err(e) = routed {
                    tracing::error!(chat_id = %chat.chat_id, error = ?e, "assignment after a status change failed; the sweep retries");
                }
            }
            Followup::Tagged {
                chat,
                tag,
                applied,
                by,
            } => {
                let f = frame(
                    "tag_updated",
                    tag_update(&chat, &tag, applied, Some(&by)),
                    None,
                );
                let rooms = [
                    Room::Chat(chat.chat_id.clone()),
                    Room::Dashboard(chat.customer_type),
                ];
                push_to_rooms(store, pusher, &rooms, &f).await;
            }
        }
    }
}

fn internal(e: StoreError) -> ProtocolError {
    tracing::error!(error = ?e, "storage failed while answering a frame");
    ProtocolError::new(ErrorCode::Internal, "storage is unavailable; try again")
}

/// The body of `tag_updated` (also the reply to `apply_tag` / `remove_tag`).
pub fn tag_update(
    chat: &Chat,
    tag: &TagName,
    applied: bool,
    by: Option<&crate::executive::ExecutiveId>,
) -> serde_json::Value {
    json!({
        "chat_id": chat.chat_id,
        "customer_type": chat.customer_type,
        "tag": tag.as_str(),
        "action": if applied { "applied" } else { "removed" },
        "tags": chat.tags,
        "by": by,
    })
}

async fn answer<S, Q>(
    store: &S,
    outbox: &Q,
    catalogs: &Catalogs,
    connection_id: &ConnectionId,
    text: &str,
    then: &mut Vec<Followup>,
) -> Result<(&'static str, serde_json::Value), ProtocolError>
where
    S: DashboardStore,
    Q: OutboundQueue,
{
    let channels = &catalogs.channels;
    let incoming = protocol::parse_frame(text)?;
    let connection = store
        .connection(connection_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            ProtocolError::new(
                ErrorCode::Forbidden,
                "connection is not registered; reconnect",
            )
        })?;
    let connection = with_current_authority(store, connection).await?;
    let name = incoming.event.name();
    let data = match incoming.event {
        ClientEvent::FetchAllChats(q) => fetch_all_chats(store, catalogs, &connection, &q).await?,
        ClientEvent::FetchChatsByUser(q) => fetch_chats_by_user(store, &connection, &q).await?,
        ClientEvent::JoinChat { chat_id } => {
            visible_chat(store, &connection, &chat_id).await?;
            let joined = store
                .join(&connection, &Room::Chat(chat_id.clone()))
                .await
                .map_err(internal)?;
            if !joined {
                return Err(ProtocolError::new(
                    ErrorCode::InvalidData,
                    format!(
                        "this connection follows {} chats already; leave one first",
                        crate::protocol::MAX_JOINED_CHATS
                    ),
                ));
            }
            json!({"chat_id": chat_id, "joined": true})
        }
        ClientEvent::UpdateChatStatus { target, status } => {
            update_chat_status(store, outbox, catalogs, &connection, &target, status, then).await?
        }
        ClientEvent::Config => config(store, catalogs, &connection).await?,
        ClientEvent::Tag {
            chat_id,
            tag,
            applied,
        } => tag_chat(store, catalogs, &connection, &chat_id, tag, applied, then).await?,
        ClientEvent::SendMessage { chat_id, send, key } => {
            let send = (send, key.as_ref());
            send_message(store, outbox, catalogs, &connection, &chat_id, send, then).await?
        }
        ClientEvent::FetchContextHistory { customer } => {
            context_history(store, &connection, &customer).await?
        }
        ClientEvent::SearchChat { customer } => search_chat(store, &connection, &customer).await?,
        ClientEvent::NewChat {
            customer,
            customer_type,
        } => new_chat(store, channels, &connection, customer, customer_type, then).await?,
        ClientEvent::MarkSeen {
            chat_id,
            message_id,
        } => mark_seen(store, &connection, &chat_id, message_id.as_deref()).await?,
        ClientEvent::AddNote { chat_id, note } => {
            add_note(store, &connection, &chat_id, note, then).await?
        }
        ClientEvent::SetStatus { online } => set_status(store, &connection, online, then).await?,
        ClientEvent::AssignChat {
            chat_id,
            executive_id,
        } => assign_chat(store, &connection, &chat_id, &executive_id, then).await?,
        ClientEvent::LeaveChat { chat_id } => {
            store
                .leave(connection_id, &Room::Chat(chat_id.clone()))
                .await
                .map_err(internal)?;
            json!({"chat_id": chat_id, "left": true})
        }
    };
    Ok((name, data))
}

/// The chat, if it exists and the caller may see it; "not found" either
/// way so ids of other teams' chats reveal nothing.
async fn visible_chat<S: ChatStore>(
    store: &S,
    connection: &Connection,
    chat_id: &ChatId,
) -> Result<Chat, ProtocolError> {
    match store.chat(chat_id).await.map_err(internal)? {
        Some(chat) if connection.sees(chat.customer_type) => Ok(chat),
        _ => Err(ProtocolError::new(
            ErrorCode::NotFound,
            format!("no chat {chat_id}"),
        )),
    }
}

async fn fetch_all_chats<S>(
    store: &S,
    catalogs: &Catalogs,
    connection: &Connection,
    q: &ChatListQuery,
) -> Result<serde_json::Value, ProtocolError>
where
    S: ChatStore + CustomerStore + RideStore + SettingsStore,
{
    let teams: Vec<Stakeholder> = match q.spec.customer_type {
        Some(s) if connection.sees(s) => vec![s],
        Some(s) => {
            return Err(ProtocolError::new(
                ErrorCode::Forbidden,
                format!("you do not serve {s} chats"),
            ));
        }
        None => connection.stakeholders.clone(),
    };
    let now = Utc::now();
    // Active lists put the customers riding soon first.
    let soon = if q.spec.status == ChatStatus::Active {
        let rides = in_force(store, &catalogs.rides).await.map_err(internal)?;
        riding_soon(
            store,
            &teams,
            &q.spec,
            &connection.executive_id,
            rides.soon_window(now),
        )
        .await
        .map_err(internal)?
    } else {
        Vec::new()
    };
    let page = list_page(store, &teams, q, &connection.executive_id, soon)
        .await
        .map_err(internal)?;
    let mut views = views_for(store, connection, &page.chats).await?;
    add_next_rides(store, &page.chats, &mut views, now).await?;
    let page_number = match q.start {
        ListStart::Page(p) => Some(p),
        ListStart::After(_) => None,
    };
    // The reply with the first `n` chats. A page that would not fit in one
    // frame comes back shorter, with a cursor continuing right after its
    // last chat: never cut silently.
    let reply = |n: usize| {
        let cut = n < page.chats.len();
        let has_more = page.has_more || cut;
        let next = if cut {
            n.checked_sub(1).and_then(|i| page.cursors.get(i)).cloned()
        } else {
            page.next.clone()
        };
        json!({
            "chats": &views[..n],
            "page": page_number,
            "page_size": q.spec.page_size,
            "has_more": has_more,
            "next_cursor": next.filter(|_| has_more).map(|p| encode_cursor(&q.spec, &p)),
        })
    };
    Ok(reply(fit_in_frame(&views, reply)))
}

/// Adds each chat's customer's next ride (`next_ride`) to its view.
async fn add_next_rides<S: RideStore>(
    store: &S,
    chats: &[Chat],
    views: &mut [serde_json::Value],
    now: chrono::DateTime<Utc>,
) -> Result<(), ProtocolError> {
    if chats.is_empty() {
        return Ok(());
    }
    let customers: Vec<SenderId> = chats.iter().map(|c| c.customer.clone()).collect();
    let rides = store.rides_of(&customers).await.map_err(internal)?;
    for (chat, view) in chats.iter().zip(views.iter_mut()) {
        if let Some(ride) = rides
            .get(&chat.customer)
            .and_then(|r| crate::rides::next_ride(r, now))
        {
            view["next_ride"] = json!({
                "booking_id": ride.booking_id,
                "ride_datetime": ride.ride_datetime,
                "ride_datetime_ist": crate::protocol::views::ist(ride.ride_datetime),
                "ride_status": ride.ride_status,
            });
        }
    }
    Ok(())
}

/// Room left in a frame for the envelope around `data` (event name,
/// request id).
const ENVELOPE_BYTES: usize = 64 + protocol::MAX_REQUEST_ID;

/// Room kept for what changes with `n` besides the items (the cursor).
const CURSOR_ALLOWANCE: usize = 512;

/// The most of `items` whose reply (built by `make`) fits in a frame: each
/// item is measured once and summed (linear in the page), then the chosen
/// reply is built to confirm it, dropping an item only in the rare case the
/// allowance was short.
fn fit_in_frame<T: serde::Serialize>(
    items: &[T],
    make: impl Fn(usize) -> serde_json::Value,
) -> usize {
    let limit = protocol::MAX_FRAME_BYTES - ENVELOPE_BYTES;
    let mut used = make(0).to_string().len() + CURSOR_ALLOWANCE;
    let mut n = 0;
    for item in items {
        // The item and the comma before it.
        let size = serde_json::to_string(item).map_or(usize::MAX, |s| s.len() + 1);
        if used.saturating_add(size) > limit {
            break;
        }
        used += size;
        n += 1;
    }
    while n > 0 && make(n).to_string().len() > limit {
        n -= 1;
    }
    n
}

async fn fetch_chats_by_user<S: ChatStore>(
    store: &S,
    connection: &Connection,
    q: &MessagePageQuery,
) -> Result<serde_json::Value, ProtocolError> {
    let chat = visible_chat(store, connection, &q.chat_id).await?;
    let page_size = q.page_size as usize;
    let skip = (q.page as usize - 1) * page_size;
    let (messages, has_more) = store
        .messages(&chat.chat_id, q.before.as_deref(), skip, page_size)
        .await
        .map_err(internal)?;
    // Opening a chat (its newest page) marks everything in it seen by the
    // caller; older pages are read in a chat already open.
    if q.before.is_none() && q.page == 1 {
        store
            .mark_seen(&chat.chat_id, &connection.executive_id, chat.inbound_count)
            .await
            .map_err(internal)?;
    }
    let views: Vec<MessageView> = messages.iter().map(MessageView::new).collect();
    let body = |n: usize| {
        let more = has_more || n < views.len();
        json!({
            "chat": ChatView::new(&chat, 0),
            "messages": &views[..n],
            "page": q.page,
            "page_size": q.page_size,
            "has_more": more,
            // Older messages continue before this one.
            "next_before": views[..n].last().filter(|_| more).map(|m| m.message_id),
        })
    };
    // Long messages can make a page larger than a frame: fewer come back,
    // and `next_before` continues exactly after the last one.
    Ok(body(fit_in_frame(&views, body)))
}

/// How often a write that lost a race to another writer of the same chat
/// re-reads and tries again before the caller is told to retry.
const CONFLICT_ATTEMPTS: usize = 4;

fn keeps_changing() -> ProtocolError {
    ProtocolError::new(ErrorCode::Internal, "the chat keeps changing; try again")
}

/// The chat a target names, among the chats the caller may see.
async fn target_chat<S: ChatStore>(
    store: &S,
    connection: &Connection,
    target: &ChatTarget,
) -> Result<Chat, ProtocolError> {
    let (customer, customer_type) = match target {
        ChatTarget::Id(id) => return visible_chat(store, connection, id).await,
        ChatTarget::Customer {
            customer,
            customer_type,
        } => (customer, customer_type),
    };
    let teams: Vec<Stakeholder> = match customer_type {
        Some(s) => vec![*s],
        None => connection.stakeholders.clone(),
    };
    let mut found = Vec::new();
    for team in teams {
        if let Some(chat) = store.current_chat(team, customer).await.map_err(internal)?
            && connection.sees(chat.customer_type)
        {
            found.push(chat);
        }
    }
    match found.len() {
        0 => Err(ProtocolError::new(
            ErrorCode::NotFound,
            format!("no chat with {customer}"),
        )),
        1 => Ok(found.remove(0)),
        _ => Err(ProtocolError::invalid(format!(
            "{customer} has chats with several teams; send chat_id or customer_type"
        ))),
    }
}

/// `update_chat_status`: active ↔ resolved, counters and the status log in
/// the same transaction; `chat_status_updated` to the chat's room, the
/// chat to its dashboards, `dashboard_stats` to everyone.
async fn update_chat_status<S, Q>(
    store: &S,
    outbox: &Q,
    catalogs: &Catalogs,
    connection: &Connection,
    target: &ChatTarget,
    to: ChatStatus,
    then: &mut Vec<Followup>,
) -> Result<serde_json::Value, ProtocolError>
where
    S: ChatStore + SettingsStore,
    Q: OutboundQueue,
{
    // Only a resolve may ask for a rating: only a resolve reads the settings.
    let rating = match to {
        ChatStatus::Resolved => Some(in_force(store, &catalogs.rating).await.map_err(internal)?),
        ChatStatus::Active => None,
    };
    // Someone else may change the chat between our read and our write:
    // read again and retry a few times before giving up.
    for _ in 0..CONFLICT_ATTEMPTS {
        let chat = target_chat(store, connection, target).await?;
        if chat.status == to {
            return Ok(json!({"chat": ChatView::new(&chat, 0), "changed": false}));
        }
        let asking = rating.as_ref().filter(|r| r.asks(chat.customer_type));
        let ask_rating = asking.is_some();
        let after = match store
            .set_status(&chat, to, &connection.executive_id, Utc::now(), ask_rating)
            .await
        {
            Ok(after) => after,
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(internal(e)),
        };
        tracing::info!(chat_id = %after.chat_id, from = chat.status.as_str(), to = to.as_str(),
            executive_id = %connection.executive_id, "chat status updated");
        // The resolution message asks for the rating: a template, so it is
        // delivered even after the 24-hour window. The resolve stands if it
        // cannot be queued (the log says so).
        let after = match asking {
            Some(rating) => ask_for_rating(store, outbox, catalogs, rating, after).await,
            None => after,
        };
        let reply = json!({"chat": ChatView::new(&after, 0), "changed": true});
        then.push(Followup::StatusChanged {
            chat: after,
            from: chat.status,
            by: connection.executive_id.clone(),
        });
        return Ok(reply);
    }
    Err(keeps_changing())
}

/// Queues the resolution template to the customer of a chat just resolved;
/// the chat as it is after (its last message is the question).
async fn ask_for_rating<S: ChatStore, Q: OutboundQueue>(
    store: &S,
    outbox: &Q,
    catalogs: &Catalogs,
    rating: &RatingSettings,
    chat: Chat,
) -> Chat {
    let message = match catalogs.messages.template(&rating.template, Vec::new()) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(chat_id = %chat.chat_id, template = %rating.template, error = %e, "the rating template is not approved; no rating asked");
            return chat;
        }
    };
    let system = Author {
        sender: crate::chat::transition::SYSTEM_ACTOR.to_owned(),
        sender_type: SenderType::System,
    };
    match queue_send(
        store,
        outbox,
        &catalogs.messages,
        &chat,
        &message,
        &system,
        None,
    )
    .await
    {
        Ok((after, _)) => after,
        Err(e) => {
            tracing::error!(chat_id = %chat.chat_id, error = ?e, "the rating question was not queued");
            chat
        }
    }
}

/// `config`: who the caller is and what this server offers them.
async fn config<S: TagStore>(
    store: &S,
    catalogs: &Catalogs,
    connection: &Connection,
) -> Result<serde_json::Value, ProtocolError> {
    let channels: Vec<_> = catalogs
        .channels
        .iter()
        .filter(|c| connection.sees(c.stakeholder))
        .map(|c| json!({"id": c.id, "stakeholder": c.stakeholder, "wa_number": c.wa_number}))
        .collect();
    let mut tags = serde_json::Map::new();
    for team in Stakeholder::SERVED
        .into_iter()
        .filter(|t| connection.sees(*t))
    {
        let names: Vec<String> = team_tags(store, &catalogs.tags, team)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        tags.insert(team.as_str().to_owned(), json!(names));
    }
    Ok(json!({
        "executive_id": connection.executive_id,
        "role": connection.role,
        "stakeholders": connection.stakeholders,
        "events": protocol::SUPPORTED_EVENTS,
        "page_size": {"default": protocol::DEFAULT_PAGE_SIZE, "max": protocol::MAX_PAGE_SIZE},
        "channels": channels,
        "tags": tags,
        "system_tags": [AWAITING_CUSTOMER_RESPONSE],
        "templates": catalogs.messages.customer_templates().collect::<Vec<_>>(),
        "texts": catalogs.messages.texts,
    }))
}

/// `apply_tag` / `remove_tag`: only the team's predefined tags, never the
/// system tag; `tag_updated` to the chat's watchers and its team.
async fn tag_chat<S: ChatStore + TagStore>(
    store: &S,
    catalogs: &Catalogs,
    connection: &Connection,
    chat_id: &ChatId,
    tag: TagName,
    applied: bool,
    then: &mut Vec<Followup>,
) -> Result<serde_json::Value, ProtocolError> {
    let chat = visible_chat(store, connection, chat_id).await?;
    if tag.is_system() {
        return Err(ProtocolError::new(
            ErrorCode::Forbidden,
            format!("{AWAITING_CUSTOMER_RESPONSE} is set and cleared automatically"),
        ));
    }
    let unchanged = |chat: &Chat, tag: &TagName| {
        let mut reply = tag_update(chat, tag, applied, Some(&connection.executive_id));
        reply["changed"] = json!(false);
        Ok(reply)
    };
    // The stored spelling of the tag: the team's for applying, the chat's
    // for removing.
    let tag = if applied {
        let known = team_tags(store, &catalogs.tags, chat.customer_type)
            .await
            .map_err(internal)?;
        let Some(found) = known.into_iter().find(|t| t.key() == tag.key()) else {
            return Err(ProtocolError::new(
                ErrorCode::NotFound,
                format!(
                    "{} chats have no tag `{tag}`; config lists the tags",
                    chat.customer_type
                ),
            ));
        };
        if chat.has_tag(found.as_str()) {
            return unchanged(&chat, &found);
        }
        if chat.tags.len() >= MAX_TAGS_PER_CHAT {
            return Err(ProtocolError::invalid(format!(
                "a chat carries at most {MAX_TAGS_PER_CHAT} tags; remove one first"
            )));
        }
        found
    } else {
        match chat
            .tags
            .iter()
            .find(|t| t.eq_ignore_ascii_case(tag.as_str()))
            .and_then(|t| TagName::parse(t).ok())
        {
            Some(stored) => stored,
            None => return unchanged(&chat, &tag),
        }
    };
    let after = match store.set_tag(&chat.chat_id, &tag, applied).await {
        Ok(Some(after)) => after,
        Ok(None) => {
            return Err(ProtocolError::new(
                ErrorCode::NotFound,
                format!("no chat {chat_id}"),
            ));
        }
        Err(StoreError::Conflict(_)) => {
            return Err(ProtocolError::invalid(format!(
                "a chat carries at most {MAX_TAGS_PER_CHAT} tags; remove one first"
            )));
        }
        Err(e) => return Err(internal(e)),
    };
    tracing::info!(chat_id = %chat_id, tag = %tag, applied, executive_id = %connection.executive_id, "chat tags changed");
    let mut reply = tag_update(&after, &tag, applied, Some(&connection.executive_id));
    reply["changed"] = json!(true);
    then.push(Followup::Tagged {
        chat: after,
        tag,
        applied,
        by: connection.executive_id.clone(),
    });
    Ok(reply)
}

/// The caller's read markers for `chats`, as views with unseen counts.
async fn views_for<S: ChatStore>(
    store: &S,
    connection: &Connection,
    chats: &[Chat],
) -> Result<Vec<serde_json::Value>, ProtocolError> {
    let pairs: Vec<_> = chats
        .iter()
        .map(|c| (c.chat_id.clone(), connection.executive_id.clone()))
        .collect();
    let seen = store.seen_counts(&pairs).await.map_err(internal)?;
    Ok(chats
        .iter()
        .map(|c| {
            let marker = seen
                .get(&(c.chat_id.clone(), connection.executive_id.clone()))
                .copied()
                .unwrap_or(0);
            json!(ChatView::new(c, c.unseen_for(marker)))
        })
        .collect())
}

/// `search_chat`: the customer's current chat with each team the caller
/// serves.
async fn search_chat<S: ChatStore>(
    store: &S,
    connection: &Connection,
    customer: &SenderId,
) -> Result<serde_json::Value, ProtocolError> {
    let mut found = Vec::new();
    for team in &connection.stakeholders {
        if let Some(chat) = store
            .current_chat(*team, customer)
            .await
            .map_err(internal)?
        {
            found.push(chat);
        }
    }
    Ok(json!({"customer": customer, "chats": views_for(store, connection, &found).await?}))
}

/// `new_chat`: the customer's current chat with that team, opened (on the
/// team's first channel) if there is none.
async fn new_chat<S: ChatStore + CustomerStore>(
    store: &S,
    channels: &ChannelTable,
    connection: &Connection,
    customer: SenderId,
    team: Stakeholder,
    then: &mut Vec<Followup>,
) -> Result<serde_json::Value, ProtocolError> {
    if !connection.sees(team) {
        return Err(ProtocolError::new(
            ErrorCode::Forbidden,
            format!("you do not serve {team} chats"),
        ));
    }
    if let Some(chat) = store
        .current_chat(team, &customer)
        .await
        .map_err(internal)?
    {
        let views = views_for(store, connection, std::slice::from_ref(&chat)).await?;
        return Ok(json!({"chat": views[0], "created": false}));
    }
    let channel = channels
        .iter()
        .find(|c| c.stakeholder == team)
        .ok_or_else(|| {
            ProtocolError::new(ErrorCode::NotFound, format!("no channel serves {team}"))
        })?;
    let mut fresh = Chat::open(customer, None, team, channel.id.clone(), Utc::now());
    fresh.context = store
        .current_context(&fresh.customer, team)
        .await
        .map_err(internal)?;
    let chat = store.create_chat(&fresh).await.map_err(internal)?;
    let created = chat.chat_id == fresh.chat_id;
    if created {
        tracing::info!(chat_id = %chat.chat_id, executive_id = %connection.executive_id, "chat opened by an agent");
        then.push(Followup::ChatOpened(chat.clone()));
    }
    Ok(json!({"chat": ChatView::new(&chat, 0), "created": created}))
}

/// `mark_seen`: the caller has seen the chat up to `message_id` (or all of
/// it). Markers never move back.
async fn mark_seen<S: ChatStore>(
    store: &S,
    connection: &Connection,
    chat_id: &ChatId,
    message_id: Option<&str>,
) -> Result<serde_json::Value, ProtocolError> {
    let chat = visible_chat(store, connection, chat_id).await?;
    let seen = match message_id {
        Some(id) => {
            store
                .message(&chat.chat_id, id)
                .await
                .map_err(internal)?
                .ok_or_else(|| {
                    ProtocolError::new(ErrorCode::NotFound, format!("no message {id} in this chat"))
                })?
                .inbound_seq
        }
        None => chat.inbound_count,
    };
    store
        .mark_seen(&chat.chat_id, &connection.executive_id, seen)
        .await
        .map_err(internal)?;
    let views = views_for(store, connection, std::slice::from_ref(&chat)).await?;
    Ok(json!({"chat_id": chat.chat_id, "unseen_count": views[0]["unseen_count"]}))
}

/// Most chats one context history lists; a customer with more is very
/// unusual, and the reply says when the list was cut.
const CONTEXT_HISTORY_MAX: usize = 50;

/// `fetch_context_history`: every chat of the customer the caller may see,
/// newest first (each context change opens a new chat).
async fn context_history<S: ChatStore>(
    store: &S,
    connection: &Connection,
    customer: &SenderId,
) -> Result<serde_json::Value, ProtocolError> {
    let chats = store
        .chats_of(customer, CONTEXT_HISTORY_MAX + 1)
        .await
        .map_err(internal)?;
    let has_more = chats.len() > CONTEXT_HISTORY_MAX;
    let visible_chats: Vec<Chat> = chats
        .into_iter()
        .take(CONTEXT_HISTORY_MAX)
        .filter(|c| connection.sees(c.customer_type))
        .collect();
    Ok(json!({
        "customer": customer,
        "chats": views_for(store, connection, &visible_chats).await?,
        "has_more": has_more,
    }))
}

/// `send_message`: checked as WhatsApp would check it (and against the
/// 24-hour window), stored at once as an agent message in state `queued`,
/// shown to the chat's watchers and put on the send queue.
async fn send_message<S: ChatStore, Q: OutboundQueue>(
    store: &S,
    outbox: &Q,
    catalogs: &Catalogs,
    connection: &Connection,
    chat_id: &ChatId,
    (send, key): (protocol::SendRequest, Option<&crate::chat::SendKey>),
    then: &mut Vec<Followup>,
) -> Result<serde_json::Value, ProtocolError> {
    use crate::outbound::Outbound;
    use crate::sending::{Author, NotQueued, queue_send};
    let message = match send {
        protocol::SendRequest::Text(body) => Outbound::Text {
            body,
            preview_url: false,
        },
        protocol::SendRequest::Media {
            kind,
            source,
            caption,
            filename,
        } => Outbound::Media {
            kind,
            source,
            caption,
            filename,
        },
        protocol::SendRequest::Template { name, params } => catalogs
            .messages
            .template(&name, params)
            .map_err(|e| ProtocolError::invalid(e.to_string()))?,
    };
    let chat = visible_chat(store, connection, chat_id).await?;
    if !chat.customer_type.is_staffed() {
        return Err(ProtocolError::new(
            ErrorCode::Forbidden,
            "the Discount channel is automated; agents do not write on it",
        ));
    }
    let author = Author {
        sender: connection.executive_id.to_string(),
        sender_type: crate::chat::SenderType::Agent,
    };
    match queue_send(
        store,
        outbox,
        &catalogs.messages,
        &chat,
        &message,
        &author,
        key,
    )
    .await
    {
        Ok((after, stored)) => {
            tracing::info!(chat_id = %chat_id, message_id = %stored.message_id,
                executive_id = %connection.executive_id, kind = message.kind(), "agent message queued");
            let reply = json!({"message": crate::protocol::views::MessageView::new(&stored)});
            then.push(Followup::MessageSent {
                wait_ended: chat.awaiting_reply && !after.awaiting_reply,
                chat: after,
                message: Box::new(stored),
            });
            Ok(reply)
        }
        Err(NotQueued::Invalid(e)) => Err(ProtocolError::invalid(e.to_string())),
        Err(NotQueued::WindowClosed { message, templates }) => {
            Err(ProtocolError::new(ErrorCode::WindowClosed, message)
                .with_detail("templates", json!(templates)))
        }
        Err(NotQueued::NoChat) => Err(ProtocolError::new(
            ErrorCode::NotFound,
            format!("no chat {chat_id}"),
        )),
        Err(NotQueued::KeepsChanging) => Err(keeps_changing()),
        Err(e @ NotQueued::KeyReused(_)) => Err(ProtocolError::invalid(e.to_string())),
        Err(NotQueued::Store(e)) => Err(internal(e)),
        Err(NotQueued::Queue(_)) => Err(ProtocolError::new(
            ErrorCode::Internal,
            "the send queue is unavailable; the message is marked failed and can be re-sent",
        )),
    }
}

/// `add_note {chat_id, note}`: an internal note on a chat the caller sees,
/// stored as a message of its own kind and pushed to the chat's watchers;
/// never sent to WhatsApp, and it moves neither the chat nor anyone's wait.
async fn add_note<S: ChatStore>(
    store: &S,
    connection: &Connection,
    chat_id: &ChatId,
    note: String,
    then: &mut Vec<Followup>,
) -> Result<serde_json::Value, ProtocolError> {
    use crate::chat::{Appended, Content, Message, SenderType};
    let mut chat = visible_chat(store, connection, chat_id).await?;
    let now = Utc::now();
    let content = Content::Note { body: note };
    let message = Message::ours(
        chat_id.clone(),
        Message::id_for(now, 0, &uuid::Uuid::now_v7().simple().to_string()),
        (connection.executive_id.to_string(), SenderType::Agent),
        content,
        now,
        None,
    );
    for _ in 0..5 {
        match store.append_outbound(&chat, &message, None).await {
            Ok(Appended::Stored(_) | Appended::Duplicate) => {
                tracing::info!(chat_id = %chat_id, message_id = %message.message_id,
                    executive_id = %connection.executive_id, "note added");
                let reply = json!({"message": MessageView::new(&message)});
                then.push(Followup::NoteAdded(Box::new(message)));
                return Ok(reply);
            }
            Err(StoreError::Conflict(_)) => chat = visible_chat(store, connection, chat_id).await?,
            Err(e) => return Err(internal(e)),
        }
    }
    Err(keeps_changing())
}

/// `set_status {status}`: the caller online or offline. The reply says
/// what they are now; `executive_status` and the chats given out or handed
/// on follow.
async fn set_status<S: ExecutiveStore + RoutingStore>(
    store: &S,
    connection: &Connection,
    online: bool,
    then: &mut Vec<Followup>,
) -> Result<serde_json::Value, ProtocolError> {
    let Some(executive) = store
        .executive(&connection.executive_id)
        .await
        .map_err(internal)?
    else {
        return Err(ProtocolError::new(
            ErrorCode::Forbidden,
            "only executives registered here have a status",
        ));
    };
    if executive.disabled {
        return Err(ProtocolError::new(
            ErrorCode::Forbidden,
            "executive is disabled",
        ));
    }
    let at = Utc::now();
    let before = store
        .set_online(&executive.executive_id, online, at)
        .await
        .map_err(internal)?;
    let changed = before.online != online;
    let reply = json!({
        "executive_id": executive.executive_id,
        "status": if online { "online" } else { "offline" },
        "changed": changed,
        "at": at,
    });
    then.push(Followup::Presence {
        executive: Box::new(executive),
        online,
        changed,
        at,
    });
    Ok(reply)
}

/// `assign_chat {chat_id, executive_id}`: an admin gives a chat to an
/// executive serving its team (capacity and presence are the admin's
/// call); `chat_assigned` / `chat_reassigned` follow.
async fn assign_chat<S>(
    store: &S,
    connection: &Connection,
    chat_id: &ChatId,
    to: &crate::executive::ExecutiveId,
    then: &mut Vec<Followup>,
) -> Result<serde_json::Value, ProtocolError>
where
    S: ChatStore + ExecutiveStore + RoutingStore,
{
    use assignment::ManualError;
    if connection.role != crate::executive::Role::Admin {
        return Err(ProtocolError::new(
            ErrorCode::Forbidden,
            "only admins assign chats by hand",
        ));
    }
    let chat = visible_chat(store, connection, chat_id).await?;
    match assignment::assign_manually(store, chat, to, &connection.executive_id).await {
        Ok((chat, None)) => Ok(json!({"chat": ChatView::new(&chat, 0), "changed": false})),
        Ok((chat, Some(from))) => {
            let reply = json!({"chat": ChatView::new(&chat, 0), "changed": true, "from": from});
            then.push(Followup::Assigned { chat, from });
            Ok(reply)
        }
        Err(ManualError::NoExecutive(_)) => Err(ProtocolError::new(
            ErrorCode::NotFound,
            format!("no executive {to}"),
        )),
        Err(ManualError::Store(e)) => Err(internal(e)),
        Err(ManualError::KeepsChanging) => Err(keeps_changing()),
        Err(e) => Err(ProtocolError::invalid(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FlakyPusher {
        failures_left: std::sync::atomic::AtomicU32,
        closes: std::sync::atomic::AtomicU32,
    }

    impl Pusher for FlakyPusher {
        async fn push(
            &self,
            _: &ConnectionId,
            _: &str,
        ) -> Result<crate::protocol::Pushed, PushError> {
            Ok(crate::protocol::Pushed::Posted)
        }

        async fn is_open(&self, _: &ConnectionId) -> Result<bool, PushError> {
            Ok(true)
        }

        async fn close(&self, _: &ConnectionId) -> Result<(), PushError> {
            use std::sync::atomic::Ordering::SeqCst;
            self.closes.fetch_add(1, SeqCst);
            let left = self.failures_left.load(SeqCst);
            if left == 0 {
                return Ok(());
            }
            self.failures_left.store(left - 1, SeqCst);
            Err(PushError("503 from @connections".into()))
        }
    }

    #[test]
    fn fitting_a_reply_measures_each_item_once() {
        let items: Vec<String> = (0..200).map(|i| format!("{i:0>400}")).collect();
        let builds = std::cell::Cell::new(0);
        let make = |n: usize| {
            builds.set(builds.get() + 1);
            json!({"items": &items[..n], "next_cursor": "c".repeat(100)})
        };
        let n = fit_in_frame(&items, make);
        assert!(make(n).to_string().len() + ENVELOPE_BYTES <= protocol::MAX_FRAME_BYTES);
        assert!(
            make(n + 1).to_string().len() + ENVELOPE_BYTES
                > protocol::MAX_FRAME_BYTES - CURSOR_ALLOWANCE
        );
        assert!(n > 70 && n < 200, "{n}");
        // Two builds while fitting (empty, then the chosen reply), plus the
        // two above: not one per dropped item.
        assert_eq!(builds.get(), 4);
    }

    #[tokio::test]
    async fn a_close_that_fails_is_tried_again() {
        use std::sync::atomic::Ordering::SeqCst;
        let id = ConnectionId("c1".into());
        let flaky = FlakyPusher {
            failures_left: 2.into(),
            closes: 0.into(),
        };
        assert!(close_with_retries(&flaky, &id).await);
        assert_eq!(flaky.closes.load(SeqCst), 3);
        let down = FlakyPusher {
            failures_left: 100.into(),
            closes: 0.into(),
        };
        assert!(!close_with_retries(&down, &id).await);
        assert_eq!(down.closes.load(SeqCst), CLOSE_ATTEMPTS);
    }

    #[test]
    fn only_frames_that_change_chats_or_presence_may_emit_events() {
        for yes in [
            r#"{"event":"update_chat_status","data":{}}"#,
            r#"{"data":{"x":1},"event":"assign_chat"}"#,
            r#"{"event":"set\u005fstatus"}"#,
            r#"{"event":"new_chat","request_id":"r1"}"#,
        ] {
            assert!(may_emit_events(yes), "{yes}");
        }
        for no in [
            r#"{"event":"fetch_all_chats","data":{}}"#,
            r#"{"data":{}}"#,
            r#"{"event":5}"#,
            "not json",
        ] {
            assert!(!may_emit_events(no), "{no}");
        }
    }
}
