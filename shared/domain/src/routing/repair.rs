//! Counter repair and presence sweep, run every five minutes.
//!
//! The counters move in the same transactions as the chats, so they should
//! never drift; this job proves it and repairs what did (a manual edit, a
//! restore). Counting goes through indexes, which lag writes by a moment:
//! a difference is repaired only when the next run sees exactly the same
//! one, and the repair is a conditional write on the value as read, so a
//! change in between wins over the repair.
//!
//! The sweep also forgets the connection records of sockets API Gateway no
//! longer holds (their `$disconnect` was lost or failed: every record is
//! asked for with `GET @connections`), then puts offline the executives
//! marked online with no live connection left, handing their chats on.

use std::collections::HashMap;

use chrono::Utc;

use crate::chat::ChatStore;
use crate::error::StoreError;
use crate::executive::ExecutiveStore;
use crate::protocol::fanout::push_stats;
use crate::protocol::{ConnectionStore, Pusher};
use crate::routing::assignment;
use crate::routing::assignment::RoutingStore;

/// Most chats counted for one executive.
const OWNED_MAX: usize = 1000;

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Targets whose stored and counted values differ this run.
    pub drifting: Vec<String>,
    /// Targets repaired (the same difference seen twice).
    pub repaired: Vec<String>,
    /// Executives put offline for having no live connection.
    pub went_offline: usize,
    /// Connection records removed whose socket was gone.
    pub connections_closed: usize,
}

/// One run: recount, repair confirmed drift, sweep stale presence.
pub async fn run<S, P>(store: &S, pusher: &P) -> Result<RepairReport, StoreError>
where
    S: ChatStore + ConnectionStore + ExecutiveStore + RoutingStore,
    P: Pusher,
{
    let mut report = RepairReport::default();
    let previous = store.repair_observations().await?;
    let mut seen: HashMap<String, (i64, i64)> = HashMap::new();
    let confirmed =
        |target: &str, stored: i64, counted: i64| previous.get(target) == Some(&(stored, counted));

    let stored = store.counts().await?;
    let counted = store.recount().await?;
    let mut fixed = stored.clone();
    let counted_by_name: HashMap<String, i64> = counted.named().into_iter().collect();
    for (name, s) in stored.named() {
        let c = counted_by_name.get(&name).copied().unwrap_or(0);
        if s == c {
            continue;
        }
        let target = format!("counts.{name}");
        seen.insert(target.clone(), (s, c));
        report.drifting.push(target.clone());
        if confirmed(&target, s, c) {
            fixed.set(&name, c);
        }
    }
    if fixed != stored {
        if store.repair_counts(&stored, &fixed).await? {
            tracing::warn!(?stored, ?fixed, "dashboard counters drifted; repaired");
            let after: HashMap<String, i64> = fixed.named().into_iter().collect();
            for (name, s) in stored.named() {
                if after.get(&name) != Some(&s) {
                    let target = format!("counts.{name}");
                    seen.remove(&target);
                    report.repaired.push(target);
                }
            }
            push_stats(store, pusher).await;
        } else {
            tracing::info!("counters changed while being repaired; the next run looks again");
        }
    }

    let executives = store.executives().await?;
    // Everyone's records are looked at, online or not: a dashboard stays
    // connected while its agent is offline.
    let ids: Vec<_> = executives.iter().map(|e| e.executive_id.clone()).collect();
    let presence = store.presence(&ids).await?;
    for exec in &executives {
        let (closed, open) = forget_closed(store, pusher, &exec.executive_id).await?;
        report.connections_closed += closed;
        let Some(p) = presence.get(&exec.executive_id) else {
            continue;
        };
        let owned = store
            .assigned_chats(&exec.executive_id, OWNED_MAX)
            .await?
            .len();
        let owned = u32::try_from(owned).unwrap_or(u32::MAX);
        if owned != p.open_chats {
            let target = format!("open_chats.{}", exec.executive_id);
            let observation = (i64::from(p.open_chats), i64::from(owned));
            if confirmed(&target, observation.0, observation.1) {
                if store
                    .repair_open_chats(&exec.executive_id, p.open_chats, owned)
                    .await?
                {
                    tracing::warn!(executive_id = %exec.executive_id, stored = p.open_chats, counted = owned,
                        "open-chat count drifted; repaired");
                    report.repaired.push(target);
                }
            } else {
                seen.insert(target.clone(), observation);
                report.drifting.push(target);
            }
        }
        // Online with a dashboard still open: nothing to check again.
        let surely_online = open > 0 && !exec.disabled;
        if p.online
            && !surely_online
            && !assignment::offline_unless_connected(store, pusher, exec).await?
        {
            report.went_offline += 1;
        }
    }
    store.save_repair_observations(&seen).await?;
    if !report.drifting.is_empty() {
        tracing::info!(drifting = ?report.drifting, repaired = ?report.repaired, at = %Utc::now(), "counter check");
    }
    Ok(report)
}

/// Removes `executive`'s connection records whose socket API Gateway no
/// longer holds: how many, and how many are open (a record whose check
/// fails is counted open and stays for the next run).
async fn forget_closed<S, P>(
    store: &S,
    pusher: &P,
    executive: &crate::executive::ExecutiveId,
) -> Result<(usize, usize), StoreError>
where
    S: ConnectionStore,
    P: Pusher,
{
    let (mut closed, mut open) = (0, 0);
    for id in store.connections_of(executive).await? {
        match pusher.is_open(&id).await {
            Ok(true) => open += 1,
            Ok(false) => {
                tracing::info!(connection_id = %id, executive_id = %executive,
                    "connection record of a closed socket; removed");
                store.remove_connection(&id).await?;
                closed += 1;
            }
            Err(e) => {
                tracing::warn!(connection_id = %id, error = ?e, "could not check a connection; the next run looks again");
                open += 1;
            }
        }
    }
    Ok((closed, open))
}
