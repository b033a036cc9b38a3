//! The DynamoDB adapter: chats, messages, read markers, connections and
//! executives. Every access is by key or index; nothing scans. The item
//! layout is documented in docs/data-model.md.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, Put, PutRequest, TransactWriteItem, Update,
    WriteRequest,
};
use chrono::{DateTime, Duration, Utc};

use super::item::{Item, ItemExt, key, n, put_opt, s, t, time_key, unavailable};
use domain::channel::{ChannelId, Stakeholder};
use domain::chat::tags::{AWAITING_CUSTOMER_RESPONSE, MAX_TAGS_PER_CHAT, TagName};
use domain::chat::{Appended, ChatStore};
use domain::chat::{
    Chat, ChatId, ChatStatus, Counts, DashboardCounts, Delivery, DeliveryStatus, Direction,
    ListPosition, Message, MessageRef, SenderType,
};
use domain::config::{ConfigError, Env};
use domain::customer::CustomerStore;
use domain::customer::SenderId;
use domain::customer::{BookingEvent, ContextChange, CustomerProfile, ProfileUpdate};
use domain::error::StoreError;
use domain::executive::ExecutiveStore;
use domain::executive::{Email, Executive, ExecutiveId, Role};
use domain::protocol::{Connection, ConnectionId, ConnectionStore, Member, Room};
use domain::rides::{Ride, RideStore};

mod chats;
use chats::{chat_from, extra_text, message_from, message_ref_of};
mod connections;
mod customers;
mod discount;
mod events;
mod executives;
mod ops;
mod outbox;
mod routing;
mod sla;

pub use routing::{GSI3, GSI4};

/// DynamoDB table names, as the template passes them to functions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tables {
    pub chats: String,
    pub connections: String,
    pub executives: String,
    pub customers: String,
}

impl Tables {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            chats: env.required("CHATS_TABLE")?,
            connections: env.required("CONNECTIONS_TABLE")?,
            executives: env.required("EXECUTIVES_TABLE")?,
            customers: env.required("CUSTOMERS_TABLE")?,
        })
    }
}

/// GSI overloaded per table (see docs/data-model.md).
pub const GSI1: &str = "gsi1";
/// Chats by customer, newest first (context history).
pub const GSI2: &str = "gsi2";
/// Dedupe markers outlive any redelivery (Meta retries for up to 7 days).
const DEDUPE_TTL_DAYS: i64 = 8;
/// API Gateway closes connections after 2 h; a stale record expires soon after.
const CONNECTION_TTL_MINUTES: i64 = 130;
/// The index partition listing every executive.
const EXECUTIVES_LIST: &str = "EXECUTIVES";
/// BatchGetItem / BatchWriteItem limits.
const BATCH_GET_MAX: usize = 100;
const BATCH_WRITE_MAX: usize = 25;
/// Unprocessed keys are retried this many times before giving up.
const BATCH_RETRIES: usize = 5;

/// A sort-key condition of a query.
enum SkCond<'a> {
    Prefix(&'a str, String),
    Below(&'a str, String),
    /// Inclusive at both ends.
    Between(&'a str, String, String),
}

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    tables: Tables,
    /// Message items as this process last wrote them (a send's claim):
    /// the first guess of the next delivery move, whose write is
    /// conditioned on the status it assumes (a stale guess costs the read
    /// it would have made anyway).
    written: outbox::Written,
}

/// A map this process keeps between requests (a Lambda container is one
/// process), emptied when it reaches its bound.
#[derive(Debug)]
pub(crate) struct Remembered<K, V> {
    entries: std::sync::Mutex<HashMap<K, V>>,
    max: usize,
}

impl<K: std::hash::Hash + Eq, V: Clone> Remembered<K, V> {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            entries: std::sync::Mutex::new(HashMap::new()),
            max,
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.entries.lock().ok()?.get(key).cloned()
    }

    pub(crate) fn keep(&self, key: K, value: V) {
        if let Ok(mut m) = self.entries.lock() {
            if m.len() >= self.max {
                m.clear();
            }
            m.insert(key, value);
        }
    }

    pub(crate) fn take(&self, key: &K) -> Option<V> {
        self.entries.lock().ok()?.remove(key)
    }
}

fn chat_pk(id: &ChatId) -> String {
    format!("CHAT#{id}")
}

fn current_pk(stakeholder: Stakeholder, customer: &SenderId) -> String {
    format!("CUSTOMER#{stakeholder}#{customer}")
}

fn list_pk(status: ChatStatus, stakeholder: Stakeholder) -> String {
    format!("LIST#{}#{stakeholder}", status.as_str())
}

fn position_key(p: &ListPosition) -> String {
    format!("{}#{}", time_key(p.at), p.chat_id)
}

fn list_sk(chat: &Chat) -> String {
    format!("{}#{}", time_key(chat.last_message_time), chat.chat_id)
}

/// The marker a WhatsApp message id leads to our message by (dedupe,
/// statuses, replies), expiring after the dedupe window.
fn wa_marker(wa_id: &str, chat: &ChatId, message_id: &str) -> Item {
    ref_marker(
        key(format!("WAMSG#{wa_id}"), "DEDUP"),
        chat,
        message_id,
        Duration::days(DEDUPE_TTL_DAYS),
    )
}

/// A marker item at `item`'s key naming one of our messages, expiring
/// after `ttl` (`chats::message_ref_of` reads it back).
fn ref_marker(mut item: Item, chat: &ChatId, message_id: &str, ttl: Duration) -> Item {
    item.insert("chat_id".into(), s(chat.as_str()));
    item.insert("message_id".into(), s(message_id));
    item.insert("expires_at".into(), n(epoch_after(ttl)));
    item
}

fn conn_pk(id: &ConnectionId) -> String {
    format!("CONN#{id}")
}

fn epoch_after(d: Duration) -> u64 {
    u64::try_from((Utc::now() + d).timestamp()).unwrap_or(0)
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    unavailable(e)
}

impl DynamoStore {
    pub fn new(client: Client, tables: Tables) -> Self {
        Self {
            client,
            tables,
            written: std::sync::Arc::new(Remembered::new(outbox::WRITTEN_MAX)),
        }
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// Sends `writes` plus the counter delta (when not zero) as one
    /// transaction: the counters move with the change or not at all. The
    /// outer error is a request we could not build; the inner one is what
    /// DynamoDB answered, for the caller to classify.
    async fn transact(
        &self,
        mut writes: Vec<TransactWriteItem>,
        delta: &Counts,
        team: Stakeholder,
    ) -> Result<Result<(), SdkError<TransactWriteItemsError, HttpResponse>>, StoreError> {
        if let Some(counter) = counter_update(&self.tables.chats, delta, team)? {
            writes.push(counter);
        }
        Ok(self.transact_writes(writes).await)
    }

    /// Sends `writes` as one transaction; DynamoDB's answer, for the
    /// caller to classify.
    async fn transact_writes(
        &self,
        writes: Vec<TransactWriteItem>,
    ) -> Result<(), SdkError<TransactWriteItemsError, HttpResponse>> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .map(|_| ())
    }

    async fn put(&self, table: &str, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, table: &str, k: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(k))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }

    /// Queries one partition (of the table or its GSI), newest first, up
    /// to `limit` items across result pages.
    async fn query_desc(
        &self,
        table: &str,
        index: Option<&str>,
        pk_name: &str,
        pk: String,
        sk: Option<SkCond<'_>>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        self.query(table, index, pk_name, pk, sk, limit, false)
            .await
    }

    /// Queries one partition (of the table or its GSI) in sort-key order
    /// (`forward`) or reversed, up to `limit` items across result pages.
    #[allow(clippy::too_many_arguments)]
    async fn query(
        &self,
        table: &str,
        index: Option<&str>,
        pk_name: &str,
        pk: String,
        sk: Option<SkCond<'_>>,
        limit: usize,
        forward: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut cond = format!("{pk_name} = :pk");
            let mut q = self
                .client
                .query()
                .table_name(table)
                .set_index_name(index.map(str::to_owned))
                .expression_attribute_values(":pk", s(pk.clone()))
                .scan_index_forward(forward)
                .limit(
                    i32::try_from(limit.saturating_sub(items.len()).clamp(1, 1000)).unwrap_or(1000),
                )
                .set_exclusive_start_key(start.take());
            match &sk {
                Some(SkCond::Prefix(name, prefix)) => {
                    cond.push_str(&format!(" AND begins_with({name}, :prefix)"));
                    q = q.expression_attribute_values(":prefix", s(prefix.clone()));
                }
                Some(SkCond::Below(name, bound)) => {
                    cond.push_str(&format!(" AND {name} < :below"));
                    q = q.expression_attribute_values(":below", s(bound.clone()));
                }
                Some(SkCond::Between(name, low, high)) => {
                    cond.push_str(&format!(" AND {name} BETWEEN :low AND :high"));
                    q = q
                        .expression_attribute_values(":low", s(low.clone()))
                        .expression_attribute_values(":high", s(high.clone()));
                }
                None => {}
            }
            let out = q
                .key_condition_expression(cond)
                .send()
                .await
                .map_err(unavailable)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if items.len() < limit && !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }

    /// How many chats one list partition holds (only those awaiting a
    /// reply when `awaiting`), counted by the index without reading items.
    async fn count_list(
        &self,
        status: ChatStatus,
        stakeholder: Stakeholder,
        awaiting: bool,
    ) -> Result<i64, StoreError> {
        let mut total = 0i64;
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.tables.chats)
                .index_name(GSI1)
                .key_condition_expression("gsi1pk = :pk")
                .expression_attribute_values(":pk", s(list_pk(status, stakeholder)))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start.take());
            if awaiting {
                q = q
                    .filter_expression("awaiting_reply = :yes")
                    .expression_attribute_values(":yes", AttributeValue::Bool(true));
            }
            let out = q.send().await.map_err(unavailable)?;
            total += i64::from(out.count);
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(total),
            }
        }
    }

    /// Every item found for `keys` (at most 100 per request, unprocessed
    /// keys retried with backoff), strongly consistent.
    async fn batch_get(&self, table: &str, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        until_processed(keys, BATCH_GET_MAX, |pending| async move {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(build_err)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(unavailable)?;
            let found = out
                .responses
                .and_then(|mut r| r.remove(table))
                .unwrap_or_default();
            let rest = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(table))
                .map(|k| k.keys)
                .unwrap_or_default();
            Ok((found, rest))
        })
        .await
    }

    /// Deletes every item whose key is in `keys`.
    async fn batch_delete(&self, table: &str, keys: Vec<Item>) -> Result<(), StoreError> {
        let deletes = keys
            .into_iter()
            .map(|k| {
                Ok(WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(k))
                            .build()
                            .map_err(build_err)?,
                    )
                    .build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(table, deletes).await
    }

    async fn batch_write(
        &self,
        table: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        until_processed(requests, BATCH_WRITE_MAX, |pending| async move {
            let out = self
                .client
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(unavailable)?;
            let rest = out
                .unprocessed_items
                .and_then(|mut m| m.remove(table))
                .unwrap_or_default();
            Ok((Vec::<()>::new(), rest))
        })
        .await
        .map(|_| ())
    }
}

/// Sends `items` in chunks of `chunk`, resending what DynamoDB hands back
/// unprocessed with exponential backoff; collects what the sends return.
async fn until_processed<T, R, F, Fut>(
    items: Vec<T>,
    chunk: usize,
    mut send: F,
) -> Result<Vec<R>, StoreError>
where
    T: Clone,
    F: FnMut(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<R>, Vec<T>), StoreError>>,
{
    let mut done = Vec::new();
    for part in items.chunks(chunk) {
        let mut pending = part.to_vec();
        for attempt in 0..=BATCH_RETRIES {
            if pending.is_empty() {
                break;
            }
            if attempt == BATCH_RETRIES {
                return Err(StoreError::Unavailable(
                    format!("{} requests stayed unprocessed", pending.len()).into(),
                ));
            }
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
            let (got, rest) = send(std::mem::take(&mut pending)).await?;
            done.extend(got);
            pending = rest;
        }
    }
    Ok(done)
}

/// Whether a single-item write failed on its condition.
fn is_condition_failure<E>(e: &aws_sdk_dynamodb::error::SdkError<E, impl std::fmt::Debug>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// A transaction item putting `item`; with `if_absent`, only when nothing
/// has its key yet.
fn put_write(table: &str, item: Item, if_absent: bool) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder().table_name(table).set_item(Some(item));
    if if_absent {
        put = put.condition_expression("attribute_not_exists(pk)");
    }
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(build_err)?)
        .build())
}

/// The one counters item every status change updates in its transaction.
fn counters_key() -> Item {
    key("COUNTERS", "DASHBOARD")
}

/// The counters item's attribute for a counter named as
/// `DashboardCounts::named` names it (`active`, `Partner.active` →
/// `active#Partner`).
fn counter_attr(name: &str) -> String {
    match name.split_once('.') {
        Some((team, field)) => format!("{field}#{team}"),
        None => name.to_owned(),
    }
}

/// `ADD` of a chat's move on the counters, in all and for its team.
fn counter_update(
    table: &str,
    d: &Counts,
    team: Stakeholder,
) -> Result<Option<TransactWriteItem>, StoreError> {
    if d.is_zero() {
        return Ok(None);
    }
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(counters_key()))
        .update_expression("ADD active :a, resolved :r, pending :p, #ta :a, #tr :r, #tp :p")
        .expression_attribute_names("#ta", format!("active#{team}"))
        .expression_attribute_names("#tr", format!("resolved#{team}"))
        .expression_attribute_names("#tp", format!("pending#{team}"))
        .expression_attribute_values(":a", AttributeValue::N(d.active.to_string()))
        .expression_attribute_values(":r", AttributeValue::N(d.resolved.to_string()))
        .expression_attribute_values(":p", AttributeValue::N(d.pending.to_string()))
        .build()
        .map_err(build_err)?;
    Ok(Some(TransactWriteItem::builder().update(update).build()))
}

/// Whether a cancelled transaction failed on its first item's condition.
fn first_condition_failed(err: &SdkError<TransactWriteItemsError, impl std::fmt::Debug>) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
            .cancellation_reasons()
            .first()
            .and_then(|r| r.code())
            .is_some_and(|c| c == "ConditionalCheckFailed"),
        _ => false,
    }
}

/// Whether a cancelled transaction lost a race: an item failed its
/// condition (changed since read), or another transaction was writing the
/// same item (the counters item is in many). Either way: read, retry.
fn any_condition_failed(err: &SdkError<TransactWriteItemsError, impl std::fmt::Debug>) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            e.cancellation_reasons().iter().any(|r| {
                matches!(
                    r.code(),
                    Some("ConditionalCheckFailed" | "TransactionConflict")
                )
            })
        }
        _ => false,
    }
}

fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
    Ok(WriteRequest::builder()
        .put_request(
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(build_err)?,
        )
        .build())
}
