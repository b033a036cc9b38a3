//! Pushing frames to everyone in a room, through the `@connections` API.

use futures_util::stream::{self, StreamExt};

use crate::store::{ConnectionStore, Member, Pushed, Pusher, Room};

/// How many pushes to one room run at once.
const CONCURRENCY: usize = 16;

/// Sends each member of `room` the frame `make` builds for it. A connection
/// that has gone is deleted; other failures are logged, never fatal: the
/// data is stored and dashboards refetch on reconnect. Returns how many
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
                Ok(Pushed::Delivered) => true,
                Ok(Pushed::Gone) => {
                    tracing::info!(connection_id = %member.connection_id, "connection gone; removing it");
                    if let Err(e) = connections.remove_connection(&member.connection_id).await {
                        tracing::warn!(connection_id = %member.connection_id, error = %e, "could not remove gone connection");
                    }
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
    match connections.members(room).await {
        Ok(members) => push_to_members(connections, pusher, members, |_| frame.to_owned()).await,
        Err(e) => {
            tracing::warn!(room = %room.key(), error = ?e, "could not list room members");
            0
        }
    }
}
