//! Assignment in DynamoDB.
//!
//! - Executives' routing records: `EXEC#{id}` / `ROUTING` in the
//!   executives table (online, changed_at, last_assigned_at, open_chats).
//! - Chats by owner and the waiting line: the chats table's sparse `gsi3`
//!   (`ASSIGNED#{executive}` / `UNASSIGNED#{team}`, sorted by time).
//! - The keys of the waiting customers' index and of service-metrics rows,
//!   which every status change writes (the SLA's reads are in `sla`).
//! - Counter repair's observations: `REPAIR` / `OBSERVATIONS`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::{
    DynamoStore, SkCond, any_condition_failed, build_err, chat_from, chat_pk, counters_key,
    is_condition_failure,
};
use crate::item::{Item, ItemExt, key, n, s, t, time_key, unavailable};
use domain::channel::Stakeholder;
use domain::chat::ChatStore;
use domain::chat::{Chat, ChatId, ChatStatus, DashboardCounts};
use domain::error::StoreError;
use domain::executive::ExecutiveId;
use domain::routing::assignment::{AssignmentClaim, Grant, Presence, RoutingStore};

/// Chats by owner / the waiting line.
pub const GSI3: &str = "gsi3";
/// Waiting customers.
pub const GSI4: &str = "gsi4";

pub(super) fn routing_key(id: &ExecutiveId) -> Item {
    key(format!("EXEC#{id}"), "ROUTING")
}

pub(super) fn line_keys(
    team: Stakeholder,
    since: DateTime<Utc>,
    chat: &ChatId,
) -> (String, String) {
    (
        format!("UNASSIGNED#{team}"),
        format!("{}#{chat}", time_key(since)),
    )
}

pub(super) fn owner_keys(exec: &ExecutiveId, at: DateTime<Utc>, chat: &ChatId) -> (String, String) {
    (
        format!("ASSIGNED#{exec}"),
        format!("{}#{chat}", time_key(at)),
    )
}

pub(super) fn waiting_keys(
    team: Stakeholder,
    since: DateTime<Utc>,
    chat: &ChatId,
) -> (String, String) {
    (
        format!("WAITING#{team}"),
        format!("{}#{chat}", time_key(since)),
    )
}

/// `ADD open_chats :by` on an executive's routing record.
pub(super) fn open_chats_write(
    table: &str,
    exec: &ExecutiveId,
    by: i64,
) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(routing_key(exec)))
        .update_expression("ADD open_chats :by")
        .expression_attribute_values(":by", AttributeValue::N(by.to_string()))
        .build()
        .map_err(build_err)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// The service-metrics rows `deltas` move: the team's, and the
/// executive's within the team when there is one.
pub(super) fn metrics_writes(
    table: &str,
    at: DateTime<Utc>,
    team: Stakeholder,
    executive: Option<&str>,
    deltas: &[(&str, i64)],
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let day = format!("METRICS#{}", at.format("%Y-%m-%d"));
    let mut rows = vec![team.as_str().to_owned()];
    if let Some(e) = executive {
        rows.push(format!("{team}#{e}"));
    }
    rows.into_iter()
        .filter_map(|row| {
            super::outbox::counter_write(table, key(day.clone(), row), deltas).transpose()
        })
        .collect()
}

fn presence_from(item: &Item) -> Result<Presence, StoreError> {
    Ok(Presence {
        online: item.bool_or("online", false),
        changed_at: item.time_opt("changed_at")?,
        last_assigned_at: item.time_opt("last_assigned_at")?,
        open_chats: u32::try_from(item.u64_or_zero("open_chats")?)
            .map_err(|_| StoreError::Corrupt("open_chats".into()))?,
    })
}

/// Which item of a cancelled transaction failed its condition.
pub(super) fn failed_item(
    err: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        impl std::fmt::Debug,
    >,
) -> Option<usize> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            e.cancellation_reasons().iter().position(|r| {
                matches!(
                    r.code(),
                    Some("ConditionalCheckFailed" | "TransactionConflict")
                )
            })
        }
        _ => None,
    }
}

impl DynamoStore {
    /// The header update giving a chat to `to`, conditional on the chat
    /// being active and still owned as read.
    fn claim_header(
        &self,
        chat: &Chat,
        to: &ExecutiveId,
        at: DateTime<Utc>,
    ) -> Result<TransactWriteItem, StoreError> {
        let (pk3, sk3) = owner_keys(to, at, &chat.chat_id);
        let mut update = Update::builder()
            .table_name(&self.tables.chats)
            .set_key(Some(key(chat_pk(&chat.chat_id), "META")))
            .update_expression(
                "SET assigned_to = :to, assigned_at = :at, gsi3pk = :pk3, gsi3sk = :sk3 ADD rev :one",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":at", t(at))
            .expression_attribute_values(":pk3", s(pk3))
            .expression_attribute_values(":sk3", s(sk3))
            .expression_attribute_values(":active", s(ChatStatus::Active.as_str()))
            // As read: the header after is then known without reading it.
            .expression_attribute_values(":rev", n(chat.revision));
        let as_read = super::chats::revision_as_read(":rev");
        update = match &chat.assigned_to {
            None => update.condition_expression(format!(
                "#status = :active AND attribute_not_exists(assigned_to) AND {as_read}"
            )),
            Some(from) => update
                .condition_expression(format!(
                    "#status = :active AND assigned_to = :from AND {as_read}"
                ))
                .expression_attribute_values(":from", s(from.as_str())),
        };
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(build_err)?)
            .build())
    }

    pub(super) fn query_index(
        &self,
        index: &'static str,
        pk: String,
        below: Option<String>,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<Vec<Item>, StoreError>> + Send + '_ {
        let (pk_name, sk_name) = match index {
            GSI3 => ("gsi3pk", "gsi3sk"),
            GSI4 => ("gsi4pk", "gsi4sk"),
            _ => ("gsi1pk", "gsi1sk"),
        };
        self.query(
            &self.tables.chats,
            Some(index),
            pk_name,
            pk,
            below.map(|b| SkCond::Below(sk_name, b)),
            limit,
            true,
        )
    }

    pub(super) async fn chats_in(
        &self,
        index: &'static str,
        pk: String,
        below: Option<String>,
        limit: usize,
    ) -> Result<Vec<Chat>, StoreError> {
        self.query_index(index, pk, below, limit)
            .await?
            .iter()
            .map(chat_from)
            .collect()
    }
}

impl RoutingStore for DynamoStore {
    async fn presence(
        &self,
        executives: &[ExecutiveId],
    ) -> Result<HashMap<ExecutiveId, Presence>, StoreError> {
        if executives.is_empty() {
            return Ok(HashMap::new());
        }
        let keys = executives.iter().map(routing_key).collect();
        let items = self.batch_get(&self.tables.executives, keys).await?;
        let mut found = HashMap::new();
        for item in &items {
            let id = item
                .str("pk")?
                .strip_prefix("EXEC#")
                .and_then(|i| ExecutiveId::parse(i).ok())
                .ok_or_else(|| StoreError::Corrupt("routing record key".into()))?;
            found.insert(id, presence_from(item)?);
        }
        Ok(found)
    }

    async fn set_online(
        &self,
        executive: &ExecutiveId,
        online: bool,
        at: DateTime<Utc>,
    ) -> Result<Presence, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.executives)
            .set_key(Some(routing_key(executive)))
            .update_expression("SET #online = :online, changed_at = :at, open_chats = if_not_exists(open_chats, :zero)")
            .expression_attribute_names("#online", "online")
            .expression_attribute_values(":online", AttributeValue::Bool(online))
            .expression_attribute_values(":at", t(at))
            .expression_attribute_values(":zero", n(0))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        match out.attributes {
            Some(old) if !old.is_empty() => presence_from(&old),
            _ => Ok(Presence::default()),
        }
    }

    async fn claim_chat(
        &self,
        chat: &Chat,
        to: &ExecutiveId,
        grant: &Grant,
        at: DateTime<Utc>,
    ) -> Result<AssignmentClaim, StoreError> {
        let execs = &self.tables.executives;
        let mut routing = Update::builder()
            .table_name(execs)
            .set_key(Some(routing_key(to)))
            .update_expression("SET last_assigned_at = :at ADD open_chats :one")
            .expression_attribute_values(":at", t(at))
            .expression_attribute_values(":one", n(1));
        if let Grant::RoundRobin(p) = grant {
            let mut cond = "#online = :yes AND open_chats = :open".to_owned();
            routing = routing
                .expression_attribute_names("#online", "online")
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .expression_attribute_values(":open", n(u64::from(p.open_chats)));
            match p.last_assigned_at {
                Some(last) => {
                    cond.push_str(" AND last_assigned_at = :last");
                    routing = routing.expression_attribute_values(":last", t(last));
                }
                None => cond.push_str(" AND attribute_not_exists(last_assigned_at)"),
            }
            routing = routing.condition_expression(cond);
        }
        let mut writes = vec![
            self.claim_header(chat, to, at)?,
            TransactWriteItem::builder()
                .update(routing.build().map_err(build_err)?)
                .build(),
        ];
        if let Some(from) = chat.assigned_to.as_ref().filter(|f| *f != to) {
            writes.push(open_chats_write(execs, from, -1)?);
        }
        writes.extend(super::events::event_writes(
            &self.tables.chats,
            vec![domain::events::chat_assigned(
                chat,
                Some(to),
                grant.reason(chat),
                at,
            )],
            at,
        )?);
        match self.transact_writes(writes).await {
            Ok(()) => {}
            Err(e) => {
                return match failed_item(&e) {
                    Some(0) => Ok(AssignmentClaim::ChatChanged),
                    Some(_) => Ok(AssignmentClaim::ExecutiveChanged),
                    None => Err(unavailable(e)),
                };
            }
        }
        let mut after = chat.clone();
        after.assigned_to = Some(to.clone());
        after.assigned_at = Some(at);
        Ok(AssignmentClaim::Assigned(Box::new(super::chats::written(
            chat, after,
        )?)))
    }

    async fn unassign(&self, chat: &Chat, at: DateTime<Utc>) -> Result<Option<Chat>, StoreError> {
        let Some(from) = &chat.assigned_to else {
            return Ok(Some(chat.clone()));
        };
        let (pk3, sk3) = line_keys(chat.customer_type, at, &chat.chat_id);
        let header = Update::builder()
            .table_name(&self.tables.chats)
            .set_key(Some(key(chat_pk(&chat.chat_id), "META")))
            .update_expression("SET gsi3pk = :pk3, gsi3sk = :sk3, last_assignee = :from REMOVE assigned_to, assigned_at ADD rev :one")
            .expression_attribute_values(":one", n(1))
            .condition_expression("#status = :active AND assigned_to = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pk3", s(pk3))
            .expression_attribute_values(":sk3", s(sk3))
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":active", s(ChatStatus::Active.as_str()))
            .build()
            .map_err(build_err)?;
        let mut writes = vec![
            TransactWriteItem::builder().update(header).build(),
            open_chats_write(&self.tables.executives, from, -1)?,
        ];
        writes.extend(super::events::event_writes(
            &self.tables.chats,
            vec![domain::events::chat_assigned(chat, None, "offline", at)],
            at,
        )?);
        match self.transact_writes(writes).await {
            Ok(()) => self.chat(&chat.chat_id).await,
            Err(e) if any_condition_failed(&e) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn unassigned_chats(
        &self,
        team: Stakeholder,
        limit: usize,
    ) -> Result<Vec<Chat>, StoreError> {
        self.chats_in(GSI3, format!("UNASSIGNED#{team}"), None, limit)
            .await
    }

    async fn assigned_chats(
        &self,
        executive: &ExecutiveId,
        limit: usize,
    ) -> Result<Vec<Chat>, StoreError> {
        self.chats_in(GSI3, format!("ASSIGNED#{executive}"), None, limit)
            .await
    }

    async fn repair_open_chats(
        &self,
        executive: &ExecutiveId,
        from: u32,
        to: u32,
    ) -> Result<bool, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.executives)
            .set_key(Some(routing_key(executive)))
            .update_expression("SET open_chats = :to")
            .condition_expression(
                "open_chats = :from OR (attribute_not_exists(open_chats) AND :from = :zero)",
            )
            .expression_attribute_values(":to", n(u64::from(to)))
            .expression_attribute_values(":from", n(u64::from(from)))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn repair_counts(
        &self,
        from: &DashboardCounts,
        to: &DashboardCounts,
    ) -> Result<bool, StoreError> {
        let num = |v: i64| AttributeValue::N(v.to_string());
        // Every counter set to `to`, on the condition that each is still
        // as read (a counter never written reads 0).
        let mut sets = Vec::new();
        let mut conds = Vec::new();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.chats)
            .set_key(Some(counters_key()));
        let old: HashMap<String, i64> = from.named().into_iter().collect();
        for (i, (name, value)) in to.named().into_iter().enumerate() {
            update = update
                .expression_attribute_names(format!("#c{i}"), super::counter_attr(&name))
                .expression_attribute_values(format!(":n{i}"), num(value));
            sets.push(format!("#c{i} = :n{i}"));
            let was = old.get(&name).copied().unwrap_or(0);
            update = update.expression_attribute_values(format!(":o{i}"), num(was));
            conds.push(if was == 0 {
                format!("(attribute_not_exists(#c{i}) OR #c{i} = :o{i})")
            } else {
                format!("#c{i} = :o{i}")
            });
        }
        let out = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(conds.join(" AND "))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn repair_observations(&self) -> Result<HashMap<String, (i64, i64)>, StoreError> {
        let Some(item) = self
            .get(&self.tables.chats, key("REPAIR", "OBSERVATIONS"))
            .await?
        else {
            return Ok(HashMap::new());
        };
        serde_json::from_str(item.str("seen")?)
            .map_err(|e| StoreError::Corrupt(format!("repair observations: {e}")))
    }

    async fn save_repair_observations(
        &self,
        seen: &HashMap<String, (i64, i64)>,
    ) -> Result<(), StoreError> {
        let mut item = key("REPAIR", "OBSERVATIONS");
        let json = serde_json::to_string(seen).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        item.insert("seen".into(), s(json));
        item.insert("at".into(), t(Utc::now()));
        self.put(&self.tables.chats, item).await
    }
}
