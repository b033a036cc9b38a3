//! Presence and round-robin assignment (SPEC §8).
//!
//! A chat that needs an owner goes to the online agent serving its team
//! who was given a chat least recently and is under their capacity. The
//! claim is one transaction on the chat (still unowned, or still the
//! previous owner's) and the executive's routing record (still as read:
//! online, same last assignment, same open chats), so concurrent assigners
//! cannot both win: the loser reads again and picks again.

use std::collections::HashMap;
use std::future::Future;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::channel::Stakeholder;
use crate::chat::ChatStore;
use crate::chat::{Chat, ChatStatus};
use crate::error::StoreError;
use crate::executive::ExecutiveStore;
use crate::executive::{Executive, ExecutiveId, Role};
use crate::protocol::fanout::{members_of, push_room_update_to, push_to_distinct, push_to_room};
use crate::protocol::frame;
use crate::protocol::views::ChatView;
use crate::protocol::{ConnectionStore, Pusher, Room};

/// How often one assignment re-reads and tries again after losing a race;
/// a chat still unowned after that waits for the next sweep.
const CLAIM_ATTEMPTS: u32 = 40;
/// Races lost in a row for the executive round robin chose before a claim
/// tries any executive with room instead ([`pick_spread`]): a few
/// concurrent claims keep strict turns; a burst of a hundred stops
/// queueing on one record.
const SPREAD_AFTER: u32 = 10;
/// Waiting chats examined per round of draining a team's line.
const DRAIN_BATCH: usize = 25;
/// Most chats one executive's hand-off moves in one go.
const HANDOFF_MAX: usize = 1000;

/// What one assignment did.
#[derive(Clone, Debug, PartialEq)]
pub enum Routed {
    /// The chat has a new owner (the header as it is now).
    Assigned(Box<Chat>),
    /// Nobody serving the team is online with room: the chat waits.
    NobodyAvailable,
    /// The chat needs no owner (resolved, owned already, automated team).
    NotNeeded,
}

/// The agents who may be given chats of `team`: enabled agents serving
/// the team (admins are never given chats by round robin).
pub async fn serving<S: ExecutiveStore>(
    store: &S,
    team: Stakeholder,
) -> Result<Vec<Executive>, StoreError> {
    Ok(store
        .executives()
        .await?
        .into_iter()
        .filter(|e| e.role == Role::Agent && !e.disabled && e.stakeholders.contains(&team))
        .collect())
}

/// `serving` with their routing records as they are now (strongly
/// consistent: what a claim's conditions will be checked against).
pub async fn with_presence<S: RoutingStore>(
    store: &S,
    serving: &[Executive],
) -> Result<Vec<(Executive, Presence)>, StoreError> {
    let ids: Vec<ExecutiveId> = serving.iter().map(|e| e.executive_id.clone()).collect();
    let mut presence = store.presence(&ids).await?;
    Ok(serving
        .iter()
        .map(|e| {
            let p = presence.remove(&e.executive_id).unwrap_or_default();
            (e.clone(), p)
        })
        .collect())
}

/// Round robin's choice: online, under capacity, not `except`; the one
/// given a chat least recently (never before first), ties by id.
pub fn pick<'a>(
    candidates: &'a [(Executive, Presence)],
    except: Option<&'a ExecutiveId>,
) -> Option<&'a (Executive, Presence)> {
    eligible(candidates, except).min_by(|(a, pa), (b, pb)| {
        pa.last_assigned_at
            .cmp(&pb.last_assigned_at)
            .then_with(|| a.executive_id.cmp(&b.executive_id))
    })
}

/// After losing races for an executive, any of those with room, at
/// random: racers that all chose the least recently given one spread over
/// the team instead of queueing on one record (turns are strict again as
/// soon as the burst is over).
pub fn pick_spread<'a>(
    candidates: &'a [(Executive, Presence)],
    except: Option<&'a ExecutiveId>,
) -> Option<&'a (Executive, Presence)> {
    fastrand::choice(eligible(candidates, except).collect::<Vec<_>>())
}

fn eligible<'a>(
    candidates: &'a [(Executive, Presence)],
    except: Option<&'a ExecutiveId>,
) -> impl Iterator<Item = &'a (Executive, Presence)> {
    candidates.iter().filter(move |(e, p)| {
        p.online && p.open_chats < e.capacity && Some(&e.executive_id) != except
    })
}

/// Whether `chat` (as read) needs round robin to find it an owner, given
/// that `leaving` is giving up their chats.
fn needs_owner(chat: &Chat, leaving: Option<&ExecutiveId>) -> bool {
    chat.status == ChatStatus::Active
        && chat.customer_type.is_staffed()
        && chat.assigned_to.as_ref() == leaving
}

/// A short random pause after losing a race, so racers spread out.
async fn back_off(attempt: u32) {
    let ms = 5 + fastrand::u64(0..(10 * u64::from(attempt.min(10)) + 10));
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Finds `chat` an owner by round robin; when `leaving` owns it, another
/// owner (or, with nobody available, the waiting line: `NobodyAvailable`).
/// Pushes `chat_assigned` / `chat_reassigned`.
pub async fn route<S, P>(
    store: &S,
    pusher: &P,
    mut chat: Chat,
    leaving: Option<&ExecutiveId>,
) -> Result<Routed, StoreError>
where
    S: ChatStore + ConnectionStore + ExecutiveStore + RoutingStore,
    P: Pusher,
{
    if !needs_owner(&chat, leaving) {
        return Ok(Routed::NotNeeded);
    }
    // Who serves the team does not change between attempts; their routing
    // records do, and are read afresh each time.
    let team = serving(store, chat.customer_type).await?;
    let mut lost = 0;
    for attempt in 0..CLAIM_ATTEMPTS {
        if !needs_owner(&chat, leaving) {
            return Ok(Routed::NotNeeded);
        }
        let found = with_presence(store, &team).await?;
        let chosen = if lost >= SPREAD_AFTER {
            pick_spread(&found, leaving)
        } else {
            pick(&found, leaving)
        };
        let Some((exec, presence)) = chosen else {
            if let Some(from) = leaving {
                match store.unassign(&chat, Utc::now()).await? {
                    Some(after) => {
                        announce(store, pusher, &after, Some(from), "offline").await;
                        return Ok(Routed::NobodyAvailable);
                    }
                    None => {
                        chat = reread(store, &chat).await?;
                        continue;
                    }
                }
            }
            return Ok(Routed::NobodyAvailable);
        };
        let grant = Grant::RoundRobin(presence.clone());
        match store
            .claim_chat(&chat, &exec.executive_id, &grant, Utc::now())
            .await?
        {
            AssignmentClaim::Assigned(after) => {
                tracing::info!(chat_id = %after.chat_id, executive_id = %exec.executive_id,
                    from = ?leaving.map(ExecutiveId::as_str), attempt, "chat assigned by round robin");
                // The same reason the stored `chat.assigned` event gives.
                announce(store, pusher, &after, leaving, grant.reason(&chat)).await;
                return Ok(Routed::Assigned(after));
            }
            AssignmentClaim::ChatChanged => chat = reread(store, &chat).await?,
            AssignmentClaim::ExecutiveChanged => lost += 1,
        }
        back_off(attempt).await;
    }
    tracing::warn!(chat_id = %chat.chat_id, "chat kept losing assignment races; the next sweep assigns it");
    Ok(Routed::NobodyAvailable)
}

async fn reread<S: ChatStore>(store: &S, chat: &Chat) -> Result<Chat, StoreError> {
    store
        .chat(&chat.chat_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("chat {} vanished", chat.chat_id)))
}

/// `chat_assigned` (a chat got its first owner) or `chat_reassigned` (it
/// changed hands, or went back to the waiting line: `to` null) to the
/// team's dashboards (the owner among them) and the chat's watchers; the
/// chat itself to the team's lists.
pub async fn announce<S, P>(
    store: &S,
    pusher: &P,
    chat: &Chat,
    from: Option<&ExecutiveId>,
    reason: &str,
) where
    S: ChatStore + ConnectionStore,
    P: Pusher,
{
    let body = json!({
        "chat_id": chat.chat_id,
        "customer_type": chat.customer_type,
        "executive_id": chat.assigned_to,
        "from": from,
        "to": chat.assigned_to,
        "reason": reason,
        "chat": ChatView::new(chat, 0),
    });
    let event = if from.is_some() {
        "chat_reassigned"
    } else {
        "chat_assigned"
    };
    // The team's dashboards hear both frames: read once.
    let team = members_of(store, &Room::Dashboard(chat.customer_type)).await;
    let watchers = members_of(store, &Room::Chat(chat.chat_id.clone())).await;
    let everyone = team.iter().cloned().chain(watchers).collect();
    push_to_distinct(store, pusher, everyone, &frame(event, body, None)).await;
    push_room_update_to(store, pusher, chat, team).await;
}

/// Gives waiting chats of `team` to whoever has room, longest waiting
/// first, until the line is empty or nobody has room. How many were given.
pub async fn drain<S, P>(store: &S, pusher: &P, team: Stakeholder) -> Result<usize, StoreError>
where
    S: ChatStore + ConnectionStore + ExecutiveStore + RoutingStore,
    P: Pusher,
{
    if !team.is_staffed() {
        return Ok(0);
    }
    let mut given = 0;
    loop {
        let waiting = store.unassigned_chats(team, DRAIN_BATCH).await?;
        let full = waiting.len() == DRAIN_BATCH;
        let mut progressed = false;
        for chat in waiting {
            match route(store, pusher, chat, None).await? {
                Routed::Assigned(_) => {
                    given += 1;
                    progressed = true;
                }
                Routed::NotNeeded => progressed = true,
                Routed::NobodyAvailable => return Ok(given),
            }
        }
        if !full || !progressed {
            return Ok(given);
        }
    }
}

/// `executive_status` to every dashboard.
async fn announce_presence<S, P>(
    store: &S,
    pusher: &P,
    exec: &Executive,
    online: bool,
    at: DateTime<Utc>,
) where
    S: ConnectionStore,
    P: Pusher,
{
    let body = json!({
        "executive_id": exec.executive_id,
        "name": exec.name,
        "status": if online { "online" } else { "offline" },
        "stakeholders": exec.stakeholders,
        "at": at,
    });
    push_to_room(
        store,
        pusher,
        &Room::Everyone,
        &frame("executive_status", body, None),
    )
    .await;
}

/// Puts an executive online or offline (see [`presence_changed`]).
/// Returns whether the status changed.
pub async fn set_presence<S, P>(
    store: &S,
    pusher: &P,
    exec: &Executive,
    online: bool,
) -> Result<bool, StoreError>
where
    S: ChatStore + ConnectionStore + ExecutiveStore + RoutingStore,
    P: Pusher,
{
    let at = Utc::now();
    let before = store.set_online(&exec.executive_id, online, at).await?;
    let changed = before.online != online;
    presence_changed(store, pusher, exec, online, changed, at).await?;
    Ok(changed)
}

/// What follows a presence change: `executive_status` to every dashboard
/// (when it changed); online, the waiting chats of their teams are given
/// out; offline, their open chats go to others (or back to the line).
pub async fn presence_changed<S, P>(
    store: &S,
    pusher: &P,
    exec: &Executive,
    online: bool,
    changed: bool,
    at: DateTime<Utc>,
) -> Result<(), StoreError>
where
    S: ChatStore + ConnectionStore + ExecutiveStore + RoutingStore,
    P: Pusher,
{
    if changed {
        tracing::info!(executive_id = %exec.executive_id, online, "executive status changed");
        announce_presence(store, pusher, exec, online, at).await;
    }
    if online {
        for team in &exec.stakeholders {
            drain(store, pusher, *team).await?;
        }
    } else {
        hand_off(store, pusher, &exec.executive_id).await?;
    }
    Ok(())
}

/// Puts `exec` offline (handing their chats on) if they are online with
/// no live dashboard connection: their last one closed, its `$disconnect`
/// was lost, or they are logging in afresh. Whether they are online now.
pub async fn offline_unless_connected<S, P>(
    store: &S,
    pusher: &P,
    exec: &Executive,
) -> Result<bool, StoreError>
where
    S: ChatStore + ConnectionStore + ExecutiveStore + RoutingStore,
    P: Pusher,
{
    let online = store
        .presence(std::slice::from_ref(&exec.executive_id))
        .await?
        .remove(&exec.executive_id)
        .is_some_and(|p| p.online);
    if !online {
        return Ok(false);
    }
    if !exec.disabled && !store.connections_of(&exec.executive_id).await?.is_empty() {
        return Ok(true);
    }
    tracing::info!(executive_id = %exec.executive_id, "online without a live connection; going offline");
    set_presence(store, pusher, exec, false).await?;
    Ok(false)
}

/// Moves every open chat of `from` to someone else (or the waiting line).
pub async fn hand_off<S, P>(store: &S, pusher: &P, from: &ExecutiveId) -> Result<usize, StoreError>
where
    S: ChatStore + ConnectionStore + ExecutiveStore + RoutingStore,
    P: Pusher,
{
    let owned = store.assigned_chats(from, HANDOFF_MAX).await?;
    let mut moved = 0;
    for chat in owned {
        if let Routed::Assigned(_) = route(store, pusher, chat, Some(from)).await? {
            moved += 1;
        }
    }
    Ok(moved)
}

/// Why an admin's assignment was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    #[error("no executive {0}")]
    NoExecutive(ExecutiveId),
    #[error("{0} is disabled")]
    Disabled(ExecutiveId),
    #[error("{0} does not serve {1} chats")]
    NotServing(ExecutiveId, Stakeholder),
    #[error("chat {0} is resolved; reopen it first")]
    Resolved(crate::chat::ChatId),
    #[error("{0} chats are answered automatically")]
    Automated(Stakeholder),
    #[error("the chat keeps changing; try again")]
    KeepsChanging,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An admin gives `chat` to `to` (capacity and presence are the admin's
/// call). Returns the chat as it is now and its previous owner when it
/// changed hands (`None`: unchanged); the caller announces it.
pub async fn assign_manually<S>(
    store: &S,
    mut chat: Chat,
    to: &ExecutiveId,
    by: &ExecutiveId,
) -> Result<(Chat, Option<Option<ExecutiveId>>), ManualError>
where
    S: ChatStore + ExecutiveStore + RoutingStore,
{
    let exec = store
        .executive(to)
        .await?
        .ok_or_else(|| ManualError::NoExecutive(to.clone()))?;
    if exec.disabled {
        return Err(ManualError::Disabled(to.clone()));
    }
    if !exec.dashboards().contains(&chat.customer_type) {
        return Err(ManualError::NotServing(to.clone(), chat.customer_type));
    }
    for _ in 0..4 {
        if !chat.customer_type.is_staffed() {
            return Err(ManualError::Automated(chat.customer_type));
        }
        if chat.status != ChatStatus::Active {
            return Err(ManualError::Resolved(chat.chat_id));
        }
        if chat.assigned_to.as_ref() == Some(to) {
            return Ok((chat, None));
        }
        let from = chat.assigned_to.clone();
        match store
            .claim_chat(&chat, to, &Grant::Manual, Utc::now())
            .await?
        {
            AssignmentClaim::Assigned(after) => {
                tracing::info!(chat_id = %after.chat_id, executive_id = %to, by = %by,
                    from = ?from.as_ref().map(ExecutiveId::as_str), "chat assigned by an admin");
                return Ok((*after, Some(from)));
            }
            AssignmentClaim::ChatChanged | AssignmentClaim::ExecutiveChanged => {
                chat = reread(store, &chat).await?;
            }
        }
    }
    Err(ManualError::KeepsChanging)
}

/// An executive's availability for round robin (the routing record).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presence {
    pub online: bool,
    pub changed_at: Option<DateTime<Utc>>,
    /// When round robin (or an admin) last gave them a chat.
    pub last_assigned_at: Option<DateTime<Utc>>,
    /// Active chats they own.
    pub open_chats: u32,
}

impl Grant {
    /// Why a chat (as read) changes hands under this grant.
    pub fn reason(&self, chat: &Chat) -> &'static str {
        match (self, &chat.assigned_to) {
            (Grant::Manual, _) => "manual",
            (Grant::RoundRobin(_), Some(_)) => "offline",
            (Grant::RoundRobin(_), None) => "round_robin",
        }
    }
}

/// Whom a chat is given to, and on what grounds.
#[derive(Clone, Debug, PartialEq)]
pub enum Grant {
    /// Round robin: only if their routing record is still as read (online,
    /// same last assignment, same open chats) — so two assigners racing
    /// for the same executive cannot both win.
    RoundRobin(Presence),
    /// An admin's choice: no conditions on the executive.
    Manual,
}

/// What a claim on a chat did.
#[derive(Clone, Debug, PartialEq)]
pub enum AssignmentClaim {
    /// The chat is theirs; the header as it is now.
    Assigned(Box<Chat>),
    /// The chat is no longer as read (assigned by someone else, resolved):
    /// read it again before deciding anything.
    ChatChanged,
    /// The executive's routing record moved on (another chat was given to
    /// them, they went offline): pick again.
    ExecutiveChanged,
}

/// Round robin's storage: presence, claims, the waiting line.
pub trait RoutingStore: Send + Sync {
    /// The routing records of these executives (strongly consistent); an
    /// executive never seen online has the default (offline) record.
    fn presence(
        &self,
        executives: &[ExecutiveId],
    ) -> impl Future<Output = Result<HashMap<ExecutiveId, Presence>, StoreError>> + Send;

    /// Sets online / offline; the record as it was before.
    fn set_online(
        &self,
        executive: &ExecutiveId,
        online: bool,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Presence, StoreError>> + Send;

    /// Gives `chat` (as read: unassigned, or owned by `chat.assigned_to`)
    /// to `to`, moving both executives' open-chat counts, atomically.
    fn claim_chat(
        &self,
        chat: &Chat,
        to: &ExecutiveId,
        grant: &Grant,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<AssignmentClaim, StoreError>> + Send;

    /// Takes `chat` (as read) from its owner and puts it back in the
    /// waiting line; `None` when it changed meanwhile.
    fn unassign(
        &self,
        chat: &Chat,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Chat>, StoreError>> + Send;

    /// Active chats of a team nobody owns, longest waiting first.
    fn unassigned_chats(
        &self,
        team: Stakeholder,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Chat>, StoreError>> + Send;

    /// Active chats an executive owns.
    fn assigned_chats(
        &self,
        executive: &ExecutiveId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Chat>, StoreError>> + Send;

    /// Sets an executive's open-chat count to `to` if it is still `from`
    /// (counter repair).
    fn repair_open_chats(
        &self,
        executive: &ExecutiveId,
        from: u32,
        to: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Sets the dashboard counters to `to` if they are still `from`.
    fn repair_counts(
        &self,
        from: &crate::chat::DashboardCounts,
        to: &crate::chat::DashboardCounts,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// What the previous counter repair run saw (target → stored, counted).
    fn repair_observations(
        &self,
    ) -> impl Future<Output = Result<HashMap<String, (i64, i64)>, StoreError>> + Send;

    fn save_repair_observations(
        &self,
        seen: &HashMap<String, (i64, i64)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn agent(id: &str, capacity: u32) -> Executive {
        Executive {
            executive_id: ExecutiveId::parse(id).unwrap(),
            name: id.into(),
            email: crate::executive::Email::parse(&format!("{id}@example.com")).unwrap(),
            password_hash: String::new(),
            role: Role::Agent,
            stakeholders: vec![Stakeholder::Partner],
            disabled: false,
            capacity,
            token_generation: 0,
        }
    }

    fn presence(online: bool, last: Option<i64>, open: u32) -> Presence {
        Presence {
            online,
            changed_at: None,
            last_assigned_at: last.map(|s| Utc.timestamp_opt(s, 0).unwrap()),
            open_chats: open,
        }
    }

    #[test]
    fn round_robin_picks_the_least_recently_assigned_online_agent_with_room() {
        let c = vec![
            (agent("a", 5), presence(true, Some(30), 1)),
            (agent("b", 5), presence(true, Some(10), 5)), // full
            (agent("c", 5), presence(false, None, 0)),    // offline
            (agent("d", 5), presence(true, Some(20), 4)),
        ];
        assert_eq!(pick(&c, None).unwrap().0.executive_id.as_str(), "d");
        let d = ExecutiveId::parse("d").unwrap();
        assert_eq!(pick(&c, Some(&d)).unwrap().0.executive_id.as_str(), "a");
        let never = vec![
            (agent("z", 5), presence(true, Some(1), 0)),
            (agent("y", 5), presence(true, None, 0)),
        ];
        assert_eq!(pick(&never, None).unwrap().0.executive_id.as_str(), "y");
        let nobody = vec![(agent("a", 1), presence(true, None, 1))];
        assert!(pick(&nobody, None).is_none());
    }

    #[test]
    fn after_a_lost_race_any_agent_with_room_may_be_chosen_and_only_those() {
        let c = vec![
            (agent("a", 5), presence(true, Some(30), 1)),
            (agent("b", 5), presence(true, Some(10), 5)), // full
            (agent("c", 5), presence(false, None, 0)),    // offline
            (agent("d", 5), presence(true, Some(20), 4)),
        ];
        let d = ExecutiveId::parse("d").unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(pick_spread(&c, None).unwrap().0.executive_id.to_string());
            assert_eq!(
                pick_spread(&c, Some(&d)).unwrap().0.executive_id.as_str(),
                "a"
            );
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "d"]);
        let nobody = vec![(agent("a", 1), presence(true, None, 1))];
        assert!(pick_spread(&nobody, None).is_none());
    }
}
