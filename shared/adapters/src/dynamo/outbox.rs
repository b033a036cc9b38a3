//! The outbound side of the chats table: send claims, provider ids,
//! delivery states with their daily counters, and the message log.
//!
//! Every outbound message Smart Chat sends is also in two log partitions
//! of the overloaded indexes: `gsi1` `OUTLOG#{day}` (all messages of a UTC
//! day) and `gsi2` `OUTLOG#{customer}`, both sorted by queue time. Counters
//! per day and team (`OUTSTATS#{day}` / `{team}`) move in the same
//! transaction as the message's state, so they cannot drift.
//!
//! A message waiting to be sent (`queued` or `unconfirmed`) is also in
//! `gsi3` `UNSENT`, sorted by when it is due (queued, retry time, lease or
//! confirmation deadline): the minute schedule queues again what is
//! overdue, so a lost queue entry cannot leave a message unsent.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, NaiveDate, Utc};

use super::{
    DynamoStore, GSI1, GSI2, GSI3, SkCond, any_condition_failed, build_err, chat_pk,
    is_condition_failure, message_from, message_ref_of, put_write, wa_marker,
};
use crate::item::{Item, ItemExt, key, n, s, t, time_key, unavailable};
use domain::channel::Stakeholder;
use domain::chat::{Chat, Delivery, DeliveryStatus, Message, MessageRef};
use domain::error::StoreError;
use domain::sending::{DeliveryStats, LogEntry, LogQuery, sent_change, stage_delta};
use domain::sending::{OutboxStore, SendClaim};

/// How many log items one request may read while filtering by state.
const LOG_EXAMINE_BUDGET: usize = 1000;
/// Optimistic retries when a message's state moves under us.
const MOVE_ATTEMPTS: usize = 5;

fn day(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

fn log_sk(at: DateTime<Utc>, message_id: &str) -> String {
    format!("{}#{message_id}", time_key(at))
}

/// Message items this process claimed for sending, by message id, until
/// the delivery move that follows uses them. Bounded: a claim whose move
/// never comes (a crash) is forgotten when the map fills.
pub(super) type Written = std::sync::Arc<super::Remembered<String, Item>>;

/// Room for the claims of one batch and more.
pub(super) const WRITTEN_MAX: usize = 256;

/// The recipient a send's item records (`None` for items stored before
/// it did).
fn recipient(item: &Item) -> Option<domain::sending::Recipient> {
    Some(domain::sending::Recipient {
        customer: domain::customer::SenderId::parse(item.str_opt("customer")?).ok()?,
        channel: domain::channel::ChannelId::parse(item.str_opt("channel")?).ok()?,
        team: Stakeholder::parse(item.str_opt("stakeholder")?).ok()?,
    })
}

fn message_key(r: &MessageRef) -> Item {
    key(chat_pk(&r.chat_id), format!("MSG#{}", r.message_id))
}

/// The `gsi3` partition of messages waiting to be sent.
const UNSENT: &str = "UNSENT";

/// `SET` of the due time (index key and plain attribute) for `:due`.
const SET_DUE: &str = "gsi3pk = :unsent, gsi3sk = :due_sk, send_due = :due";

fn due_values(at: DateTime<Utc>, message_id: &str) -> [(String, AttributeValue); 3] {
    [
        (":unsent".to_owned(), s(UNSENT)),
        (":due_sk".to_owned(), s(log_sk(at, message_id))),
        (":due".to_owned(), t(at)),
    ]
}

fn stats_key(day: &str, team: &str) -> Item {
    key(format!("OUTSTATS#{day}"), team)
}

/// The log keys and attributes of an outbound message being queued.
pub(super) fn log_fields(item: &mut Item, chat: &Chat, m: &Message) {
    let sk = log_sk(m.received_at, &m.message_id);
    item.insert("gsi1pk".into(), s(format!("OUTLOG#{}", day(m.received_at))));
    item.insert("gsi1sk".into(), s(sk.clone()));
    item.insert("gsi2pk".into(), s(format!("OUTLOG#{}", chat.customer)));
    item.insert("gsi2sk".into(), s(sk));
    item.insert("customer".into(), s(chat.customer.as_str()));
    item.insert("channel".into(), s(chat.channel.as_str()));
    item.insert("stakeholder".into(), s(chat.customer_type.as_str()));
    item.insert("attempts".into(), n(0));
    for (name, value) in due_values(m.received_at, &m.message_id) {
        let attr = match name.as_str() {
            ":unsent" => "gsi3pk",
            ":due_sk" => "gsi3sk",
            _ => "send_due",
        };
        item.insert(attr.into(), value);
    }
}

/// `ADD` of the day's and team's counters, or nothing for no change.
pub(super) fn stats_write(
    table: &str,
    day: &str,
    team: &str,
    deltas: &[(&str, i64)],
) -> Result<Option<TransactWriteItem>, StoreError> {
    counter_write(table, stats_key(day, team), deltas)
}

/// `ADD` of counters on the item at `k`, or nothing for no change.
pub(super) fn counter_write(
    table: &str,
    k: Item,
    deltas: &[(&str, i64)],
) -> Result<Option<TransactWriteItem>, StoreError> {
    let deltas: Vec<_> = deltas.iter().filter(|(_, d)| *d != 0).collect();
    if deltas.is_empty() {
        return Ok(None);
    }
    let mut update = Update::builder().table_name(table).set_key(Some(k));
    let mut parts = Vec::new();
    for (i, (name, d)) in deltas.iter().enumerate() {
        parts.push(format!("#c{i} :c{i}"));
        update = update
            .expression_attribute_names(format!("#c{i}"), *name)
            .expression_attribute_values(format!(":c{i}"), AttributeValue::N(d.to_string()));
    }
    let update = update
        .update_expression(format!("ADD {}", parts.join(", ")))
        .build()
        .map_err(build_err)?;
    Ok(Some(TransactWriteItem::builder().update(update).build()))
}

/// The stored delivery state of a message item (`None`: it has none).
fn stored_status(item: &Item) -> Option<DeliveryStatus> {
    item.str_opt("delivery_status")
        .and_then(DeliveryStatus::parse)
}

fn signed(item: &Item, name: &str) -> i64 {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
        _ => 0,
    }
}

impl DynamoStore {
    /// Moves a message's delivery state forward (`to`), with its counters,
    /// in one transaction conditional on the state read; with `wa_id`, also
    /// records the provider id and writes the marker status callbacks find
    /// the message by. With `due`, the message waits to be sent until then
    /// (an `unconfirmed` one is leased until then too); without, it leaves
    /// the unsent index. Returns whether the state moved.
    pub(super) async fn move_delivery(
        &self,
        r: &MessageRef,
        to: &Delivery,
        wa_id: Option<&str>,
        backwards: bool,
        due: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let table = &self.tables.chats;
        let mut guess = self.written.take(&r.message_id);
        for _ in 0..MOVE_ATTEMPTS {
            let item = match guess.take() {
                Some(item) => item,
                None => match self.get(table, message_key(r)).await? {
                    Some(item) => item,
                    None => return Ok(false),
                },
            };
            let from = stored_status(&item);
            let from_rank = from.map(DeliveryStatus::rank);
            let unconfirmed_again = from == Some(DeliveryStatus::Unconfirmed)
                && to.status == DeliveryStatus::Unconfirmed;
            let moves = if backwards {
                from == Some(DeliveryStatus::Failed)
            } else {
                unconfirmed_again || from_rank.is_none_or(|rank| rank < to.status.rank())
            };
            if !moves {
                return Ok(false);
            }
            let at = to.at.unwrap_or_else(Utc::now);
            let mut set = vec![
                "delivery_status = :status",
                "delivery_rank = :rank",
                "delivery_errors = :errors",
                "delivery_at = :at",
            ];
            let mut values = HashMap::from([
                (":status".to_owned(), s(to.status.as_str())),
                (":rank".to_owned(), n(to.status.rank())),
                (
                    ":errors".to_owned(),
                    AttributeValue::L(to.errors.iter().map(|e| s(e.as_str())).collect()),
                ),
                (":at".to_owned(), t(at)),
            ]);
            if let Some(e) = to.errors.first() {
                set.push("last_error = :last_error");
                values.insert(":last_error".to_owned(), s(e.as_str()));
            }
            if let Some(id) = wa_id {
                set.push("wa_message_id = :wa");
                values.insert(":wa".to_owned(), s(id));
            }
            let mut remove = vec!["send_lease"];
            match due {
                Some(at) => {
                    set.push(SET_DUE);
                    values.extend(due_values(at, &r.message_id));
                    if to.status == DeliveryStatus::Unconfirmed {
                        remove.clear();
                        set.push("send_lease = :due");
                    }
                }
                None => remove.extend(["gsi3pk", "gsi3sk", "send_due"]),
            }
            let condition = match from_rank {
                Some(rank) => {
                    values.insert(":was".to_owned(), n(rank));
                    "delivery_rank = :was"
                }
                None => "attribute_exists(pk) AND attribute_not_exists(delivery_rank)",
            };
            // The counters of the day the message was queued, when it is
            // one Smart Chat sent (inbound messages have none).
            let mut stats = Vec::new();
            let team = item.str_opt("stakeholder").map(str::to_owned);
            let from = from.unwrap_or(DeliveryStatus::Queued);
            if team.is_some() {
                stats = stage_delta(from, to.status);
                match sent_change(from, to.status) {
                    1 => {
                        let queued = item.time("received_at")?;
                        let ms = (at - queued).num_milliseconds().max(0);
                        set.push("to_sent_ms = :to_sent");
                        values.insert(":to_sent".to_owned(), AttributeValue::N(ms.to_string()));
                        stats.push(("to_sent_ms", ms));
                        stats.push(("to_sent_count", 1));
                    }
                    -1 => {
                        stats.push(("to_sent_ms", -signed(&item, "to_sent_ms")));
                        stats.push(("to_sent_count", -1));
                    }
                    _ => {}
                }
            }
            let update = Update::builder()
                .table_name(table)
                .set_key(Some(message_key(r)))
                .update_expression(if remove.is_empty() {
                    format!("SET {}", set.join(", "))
                } else {
                    format!("SET {} REMOVE {}", set.join(", "), remove.join(", "))
                })
                .condition_expression(condition)
                .set_expression_attribute_values(Some(values))
                .build()
                .map_err(build_err)?;
            let mut writes = vec![TransactWriteItem::builder().update(update).build()];
            if let Some(team) = &team {
                let queued_day = day(item.time("received_at")?);
                writes.extend(stats_write(table, &queued_day, team, &stats)?);
            }
            if let Some(id) = wa_id {
                let marker = wa_marker(id, &r.chat_id, &r.message_id);
                writes.push(put_write(table, marker, false)?);
            }
            match self.transact_writes(writes).await {
                Ok(_) => return Ok(true),
                // Moved (or being moved) by someone else: read again.
                Err(e) if any_condition_failed(&e) => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(StoreError::Conflict(format!(
            "message {} keeps changing",
            r.message_id
        )))
    }

    /// Reads one log partition newest first, `(low, high]`-bounded, up to
    /// `limit` items.
    async fn log_items(
        &self,
        index: &str,
        pk: String,
        low: String,
        high: String,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let (pk_name, sk_name) = if index == GSI1 {
            ("gsi1pk", "gsi1sk")
        } else {
            ("gsi2pk", "gsi2sk")
        };
        let mut items = self
            .query_desc(
                &self.tables.chats,
                Some(index),
                pk_name,
                pk,
                Some(SkCond::Between(sk_name, low, high.clone())),
                limit + 1,
            )
            .await?;
        // The upper bound is the previous page's last entry: exclusive.
        items.retain(|i| i.str_opt(sk_name) != Some(high.as_str()));
        items.truncate(limit);
        Ok(items)
    }
}

fn log_entry(item: &Item) -> Result<LogEntry, StoreError> {
    let m: Message = message_from(item)?;
    let delivery = m.delivery.clone().unwrap_or(Delivery {
        status: DeliveryStatus::Queued,
        at: None,
        errors: Vec::new(),
    });
    Ok(LogEntry {
        chat_id: m.chat_id.clone(),
        message_id: m.message_id.clone(),
        customer: item.str_opt("customer").unwrap_or_default().to_owned(),
        customer_type: item
            .str_opt("stakeholder")
            .and_then(|v| Stakeholder::parse(v).ok()),
        sender: m.sender.clone(),
        sender_type: m.sender_type,
        kind: m.content.kind().to_owned(),
        preview: m.preview.clone(),
        state: delivery.status,
        attempts: item.u64_or_zero("attempts")?,
        errors: delivery.errors,
        last_error: item.str_opt("last_error").map(str::to_owned),
        wa_message_id: m.wa_message_id.clone(),
        queued_at: m.received_at,
        state_at: delivery.at,
    })
}

impl OutboxStore for DynamoStore {
    async fn claim_send(
        &self,
        r: &MessageRef,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<SendClaim, StoreError> {
        let table = &self.tables.chats;
        let result = self
            .client
            .update_item()
            .table_name(table)
            .set_key(Some(message_key(r)))
            // Due when the lease ends: a consumer that dies mid-send leaves
            // it for the schedule to queue again.
            .update_expression(format!(
                "SET send_lease = :until, {SET_DUE} ADD attempts :one"
            ))
            .condition_expression(
                "(delivery_status = :queued OR delivery_status = :unconfirmed) \
                 AND (attribute_not_exists(send_lease) OR send_lease < :now)",
            )
            .set_expression_attribute_values(Some(
                [
                    (":until".to_owned(), t(lease_until)),
                    (":one".to_owned(), n(1)),
                    (":queued".to_owned(), s(DeliveryStatus::Queued.as_str())),
                    (
                        ":unconfirmed".to_owned(),
                        s(DeliveryStatus::Unconfirmed.as_str()),
                    ),
                    (":now".to_owned(), t(now)),
                ]
                .into_iter()
                .chain(due_values(lease_until, &r.message_id))
                .collect(),
            ))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                let claimed = message_from(&item)?;
                let to = recipient(&item);
                self.written.keep(r.message_id.clone(), item);
                Ok(SendClaim::Claimed(Box::new(claimed), to))
            }
            Err(e) if is_condition_failure(&e) => {
                let Some(item) = self.get(table, message_key(r)).await? else {
                    return Ok(SendClaim::Missing);
                };
                match stored_status(&item) {
                    Some(DeliveryStatus::Queued | DeliveryStatus::Unconfirmed) => {
                        match item.time_opt("send_lease")? {
                            Some(until) => Ok(SendClaim::Busy(until)),
                            // Released between our write and read: try soon.
                            None => Ok(SendClaim::Busy(now)),
                        }
                    }
                    Some(other) => Ok(SendClaim::Finished(other)),
                    None => Ok(SendClaim::Missing),
                }
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn record_accepted(
        &self,
        r: &MessageRef,
        wa_message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let accepted = Delivery {
            status: DeliveryStatus::Accepted,
            at: Some(at),
            errors: Vec::new(),
        };
        self.move_delivery(r, &accepted, Some(wa_message_id), false, None)
            .await
    }

    async fn release_send(
        &self,
        r: &MessageRef,
        reason: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let values = [
            (
                ":reason".to_owned(),
                s(reason.chars().take(500).collect::<String>()),
            ),
            (":queued".to_owned(), s(DeliveryStatus::Queued.as_str())),
            (
                ":unconfirmed".to_owned(),
                s(DeliveryStatus::Unconfirmed.as_str()),
            ),
        ]
        .into_iter()
        .chain(due_values(retry_at, &r.message_id))
        .collect();
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.chats)
            .set_key(Some(message_key(r)))
            .update_expression(format!(
                "SET last_error = :reason, {SET_DUE} REMOVE send_lease"
            ))
            // Confirmed by a callback meanwhile: nothing to release.
            .condition_expression("delivery_status = :queued OR delivery_status = :unconfirmed")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn requeue_failed(&self, r: &MessageRef) -> Result<bool, StoreError> {
        let queued = Delivery {
            status: DeliveryStatus::Queued,
            at: Some(Utc::now()),
            errors: Vec::new(),
        };
        self.move_delivery(r, &queued, None, true, Some(Utc::now()))
            .await
    }

    async fn mark_unconfirmed(
        &self,
        r: &MessageRef,
        reason: &str,
        confirm_by: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let unconfirmed = Delivery {
            status: DeliveryStatus::Unconfirmed,
            at: Some(Utc::now()),
            errors: vec![reason.chars().take(500).collect()],
        };
        self.move_delivery(r, &unconfirmed, None, false, Some(confirm_by))
            .await
    }

    async fn unsent_sends(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(MessageRef, u64)>, StoreError> {
        self.query_index(GSI3, UNSENT.to_owned(), Some(time_key(before)), limit)
            .await?
            .iter()
            .map(|i| {
                Ok((
                    message_ref_of(i, "unsent message")?,
                    i.u64_or_zero("attempts")?,
                ))
            })
            .collect()
    }

    async fn send_due(&self, r: &MessageRef) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.get(&self.tables.chats, message_key(r)).await? {
            Some(item) => item.time_opt("send_due"),
            None => Ok(None),
        }
    }

    async fn outbound_log(
        &self,
        q: &LogQuery,
    ) -> Result<(Vec<LogEntry>, Option<String>), StoreError> {
        let low = time_key(q.from);
        // `~` sorts after every character of a message id.
        let mut high = format!("{}#~", time_key(q.to));
        if let Some(after) = &q.after
            && after.as_str() < high.as_str()
        {
            high.clone_from(after);
        }
        let partitions: Vec<(&str, String)> = match &q.customer {
            Some(c) => vec![(GSI2, format!("OUTLOG#{c}"))],
            None => {
                let last = high
                    .get(..10)
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
                let first = q.from.date_naive();
                let mut days = Vec::new();
                let mut d = last.unwrap_or_else(|| q.to.date_naive());
                while d >= first {
                    days.push((GSI1, format!("OUTLOG#{}", d.format("%Y-%m-%d"))));
                    match d.pred_opt() {
                        Some(p) => d = p,
                        None => break,
                    }
                }
                days
            }
        };
        let sk_name = |index: &str| if index == GSI1 { "gsi1sk" } else { "gsi2sk" };
        let mut entries = Vec::new();
        let mut examined = 0usize;
        for (index, pk) in partitions {
            loop {
                let want =
                    (q.limit + 1 - entries.len()).max(if q.state.is_some() { 50 } else { 1 });
                let want = want.min(LOG_EXAMINE_BUDGET - examined).max(1);
                let items = self
                    .log_items(index, pk.clone(), low.clone(), high.clone(), want)
                    .await?;
                let exhausted = items.len() < want;
                for item in &items {
                    examined += 1;
                    if let Some(sk) = item.str_opt(sk_name(index)) {
                        high = sk.to_owned();
                    }
                    if q.state.is_none() || stored_status(item) == q.state {
                        entries.push(log_entry(item)?);
                        if entries.len() > q.limit {
                            entries.truncate(q.limit);
                            let next = entries.last().map(|e| log_sk(e.queued_at, &e.message_id));
                            return Ok((entries, next));
                        }
                    }
                }
                if examined >= LOG_EXAMINE_BUDGET {
                    // Out of budget: the caller continues from here.
                    return Ok((entries, Some(high)));
                }
                if exhausted {
                    break;
                }
            }
            // The next (older) day starts from its end.
            high = "9999".to_owned();
        }
        Ok((entries, None))
    }

    async fn outbound_stats(
        &self,
        days: &[NaiveDate],
    ) -> Result<BTreeMap<Stakeholder, DeliveryStats>, StoreError> {
        let teams = Stakeholder::ALL;
        let keys = days
            .iter()
            .flat_map(|d| {
                let d = d.format("%Y-%m-%d").to_string();
                teams.iter().map(move |team| stats_key(&d, team.as_str()))
            })
            .collect();
        let mut out = BTreeMap::new();
        for item in self.batch_get(&self.tables.chats, keys).await? {
            let Some(team) = item.str_opt("sk").and_then(|v| Stakeholder::parse(v).ok()) else {
                continue;
            };
            let mut day = DeliveryStats::default();
            for name in [
                "queued",
                "accepted",
                "sent",
                "delivered",
                "read",
                "failed",
                "to_sent_ms",
                "to_sent_count",
            ] {
                day.set(name, signed(&item, name));
            }
            out.entry(team)
                .or_insert_with(DeliveryStats::default)
                .add(&day);
        }
        Ok(out)
    }
}
