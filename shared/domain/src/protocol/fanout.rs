//! Pushing frames to everyone in a room, through the `@connections` API.

use futures_util::stream::{self, StreamExt};

use crate::chat::ChatStore;
use crate::protocol::{ConnectionId, ConnectionStore, Member, Pushed, Pusher, Room};

/// How many pushes to one room run at once.
const CONCURRENCY: usize = 16;

/// API Gateway answers 410 to a push for a connection whose `$connect` has
/// stored it but whose handshake has not completed yet. A connection
/// younger than this is kept when a push finds it gone; one that never
/// opened is removed by the next push after it, or expires.
pub const OPENING_GRACE: chrono::Duration = chrono::Duration::seconds(10);

/// Forgets a connection a push found gone, unless it is still opening.
async fn forget_gone<C: ConnectionStore>(connections: &C, id: &ConnectionId) {
    match connections.connection(id).await {
        Ok(Some(c)) if chrono::Utc::now() - c.connected_at < OPENING_GRACE => {
            tracing::info!(connection_id = %id, "push found a connection still opening; kept");
            return;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(connection_id = %id, error = %e, "could not read gone connection");
            return;
        }
    }
    tracing::info!(connection_id = %id, "connection gone; removing it");
    if let Err(e) = connections.remove_connection(id).await {
        tracing::warn!(connection_id = %id, error = %e, "could not remove gone connection");
    }
}

/// Sends each member of `room` the frame `make` builds for it. A connection
/// that has gone is deleted (unless it is still opening); other failures
/// are logged, never fatal: the data is stored and dashboards refetch on
/// reconnect. Returns how many
/// connections got the frame.
pub async fn push_to_members<C, P, F>(
    connections: &C,
    pusher: &P,
    members: Vec<Member>,
    make: F,
) -> usize
where
    C: ConnectionStore,
    P: Pusher,
    F: Fn(&Member) -> String,
{
    let frames: Vec<(Member, String)> = members
        .into_iter()
        .map(|m| {
            let f = make(&m);
            (m, f)
        })
        .collect();
    let results: Vec<bool> = stream::iter(frames)
        .map(|(member, frame)| async move {
            match pusher.push(&member.connection_id, &frame).await {
                Ok(Pushed::Posted) => true,
                Ok(Pushed::Gone) => {
                    forget_gone(connections, &member.connection_id).await;
                    false
                }
                Err(e) => {
                    tracing::warn!(connection_id = %member.connection_id, error = ?e, "push failed");
                    false
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().filter(|ok| *ok).count()
}

/// Pushes one frame to everyone in `room`.
pub async fn push_to_room<C, P>(connections: &C, pusher: &P, room: &Room, frame: &str) -> usize
where
    C: ConnectionStore,
    P: Pusher,
{
    push_to_rooms(connections, pusher, std::slice::from_ref(room), frame).await
}

/// Pushes one frame to everyone in any of `rooms`, once per connection.
pub async fn push_to_rooms<C, P>(connections: &C, pusher: &P, rooms: &[Room], frame: &str) -> usize
where
    C: ConnectionStore,
    P: Pusher,
{
    let mut members: Vec<Member> = Vec::new();
    for room in rooms {
        members.extend(members_of(connections, room).await);
    }
    push_to_distinct(connections, pusher, members, frame).await
}

/// Who is in `room` now; nobody (and a warning) when the store cannot say.
pub async fn members_of<C: ConnectionStore>(connections: &C, room: &Room) -> Vec<Member> {
    match connections.members(room).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(room = %room.key(), error = ?e, "could not list room members");
            Vec::new()
        }
    }
}

/// Pushes one frame to each of `members` once (a connection in several
/// rooms hears it once).
pub async fn push_to_distinct<C, P>(
    connections: &C,
    pusher: &P,
    mut members: Vec<Member>,
    frame: &str,
) -> usize
where
    C: ConnectionStore,
    P: Pusher,
{
    let mut seen = std::collections::HashSet::new();
    members.retain(|m| seen.insert(m.connection_id.clone()));
    push_to_members(connections, pusher, members, |_| frame.to_owned()).await
}

/// `dashboard_stats` to every dashboard, with the counters as stored.
pub async fn push_stats<S, P>(store: &S, pusher: &P)
where
    S: ChatStore + ConnectionStore,
    P: Pusher,
{
    match store.counts().await {
        Ok(counts) => {
            let frame = crate::protocol::frame("dashboard_stats", counts, None);
            push_to_room(store, pusher, &Room::Everyone, &frame).await;
        }
        Err(e) => tracing::warn!(error = ?e, "counters unavailable; dashboard_stats not pushed"),
    }
}

/// `room_update*` to the chat's stakeholder's dashboards, each with the
/// receiving executive's own unseen count.
pub async fn push_room_update<S, P>(store: &S, pusher: &P, chat: &crate::chat::Chat)
where
    S: ChatStore + ConnectionStore,
    P: Pusher,
{
    if chat.customer_type.room_event().is_none() {
        return;
    }
    let members = members_of(store, &Room::Dashboard(chat.customer_type)).await;
    push_room_update_to(store, pusher, chat, members).await;
}

/// `room_update*` of `chat` to `members` (its team's dashboards, as read
/// by the caller), each with the receiving executive's own unseen count.
pub async fn push_room_update_to<S, P>(
    store: &S,
    pusher: &P,
    chat: &crate::chat::Chat,
    members: Vec<Member>,
) where
    S: ChatStore + ConnectionStore,
    P: Pusher,
{
    let Some(event) = chat.customer_type.room_event() else {
        return;
    };
    if members.is_empty() {
        return;
    }
    let pairs: Vec<_> = members
        .iter()
        .map(|m| (chat.chat_id.clone(), m.executive_id.clone()))
        .collect();
    let seen = match store.seen_counts(&pairs).await {
        Ok(seen) => seen,
        Err(e) => {
            tracing::warn!(chat_id = %chat.chat_id, error = ?e, "read markers unavailable; pushing full unseen counts");
            Default::default()
        }
    };
    push_to_members(store, pusher, members, |member| {
        let marker = seen
            .get(&(chat.chat_id.clone(), member.executive_id.clone()))
            .copied()
            .unwrap_or(0);
        crate::protocol::frame(
            event,
            crate::protocol::views::ChatView::new(chat, chat.unseen_for(marker)),
            None,
        )
    })
    .await;
}
