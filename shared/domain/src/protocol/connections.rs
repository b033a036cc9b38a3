//! Dashboard connections and rooms, and the ports that keep them
//! (`ConnectionStore`) and push to them (`Pusher`).

use crate::executive::Role;
use chrono::{DateTime, Utc};
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::channel::Stakeholder;
use crate::chat::ChatId;
use crate::error::{BoxError, StoreError};
use crate::executive::ExecutiveId;

/// A dashboard room: who gets which pushes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Room {
    /// Everyone watching one chat.
    Chat(ChatId),
    /// Dashboards of one stakeholder (`room_update*`).
    Dashboard(Stakeholder),
    /// Every connected dashboard (`dashboard_stats`).
    Everyone,
}

impl Room {
    pub fn key(&self) -> String {
        match self {
            Room::Chat(id) => format!("chat#{id}"),
            Room::Dashboard(s) => format!("dashboard#{s}"),
            Room::Everyone => "dashboard".to_owned(),
        }
    }
}

/// A WebSocket connection id (API Gateway's, or the local gateway's).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConnectionId(pub String);

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub connection_id: ConnectionId,
    pub executive_id: ExecutiveId,
    pub role: Role,
    /// Whose dashboards this connection sees.
    pub stakeholders: Vec<Stakeholder>,
    pub connected_at: DateTime<Utc>,
    /// The executive's token generation the socket was opened with
    /// (`None` for an external token's bearer, who is no executive of ours).
    pub token_generation: Option<u64>,
}

impl Connection {
    /// Whether this connection may see chats of `team`: admins see all.
    pub fn sees(&self, team: Stakeholder) -> bool {
        self.role == Role::Admin || self.stakeholders.contains(&team)
    }
}

/// One connection in a room.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub connection_id: ConnectionId,
    pub executive_id: ExecutiveId,
}

/// Chat rooms one connection may follow at once (a dashboard watches the
/// chat it shows and a few others).
pub const MAX_JOINED_CHATS: u64 = 20;

pub trait ConnectionStore: Send + Sync {
    /// Records a new connection and its initial rooms.
    fn add_connection(
        &self,
        connection: &Connection,
        rooms: &[Room],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn connection(
        &self,
        id: &ConnectionId,
    ) -> impl Future<Output = Result<Option<Connection>, StoreError>> + Send;

    /// Deletes the connection and all its room memberships.
    fn remove_connection(
        &self,
        id: &ConnectionId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds the connection to a chat's room; false when it already follows
    /// [`MAX_JOINED_CHATS`] chats (every push to a room costs one request per
    /// member, so a connection's rooms are bounded).
    fn join(
        &self,
        connection: &Connection,
        room: &Room,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn leave(
        &self,
        id: &ConnectionId,
        room: &Room,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Everyone in a room, by index.
    fn members(&self, room: &Room) -> impl Future<Output = Result<Vec<Member>, StoreError>> + Send;

    /// The open connections of one executive, by index.
    fn connections_of(
        &self,
        executive: &ExecutiveId,
    ) -> impl Future<Output = Result<Vec<ConnectionId>, StoreError>> + Send;
}

/// What a push to one connection did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// API Gateway took the frame for the connection.
    Posted,
    /// The connection no longer exists (HTTP 410).
    Gone,
}

#[derive(Debug, thiserror::Error)]
#[error("push failed")]
pub struct PushError(#[source] pub BoxError);

/// The `@connections` management API.
pub trait Pusher: Send + Sync {
    fn push(
        &self,
        connection: &ConnectionId,
        frame: &str,
    ) -> impl Future<Output = Result<Pushed, PushError>> + Send;

    /// Whether API Gateway still holds the connection open (`GET
    /// @connections/{id}`): false once the socket is gone.
    fn is_open(
        &self,
        connection: &ConnectionId,
    ) -> impl Future<Output = Result<bool, PushError>> + Send;

    /// Closes a connection (a disabled executive's); gone already is fine.
    fn close(
        &self,
        connection: &ConnectionId,
    ) -> impl Future<Output = Result<(), PushError>> + Send;
}
