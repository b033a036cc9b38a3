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
use chrono::{Duration, Utc};

use super::item::{Item, ItemExt, key, n, put_opt, s, t, time_key, unavailable};
use crate::channel::{ChannelId, Stakeholder};
use crate::chat::{
    Chat, ChatId, ChatStatus, Counts, Delivery, DeliveryStatus, Direction, ListPosition, Message,
    MessageRef, SenderType,
};
use crate::config::Tables;
use crate::customer::{BookingEvent, ContextChange, CustomerProfile, ProfileUpdate};
use crate::executive::{Email, Executive, ExecutiveId, Role};
use crate::store::{
    Appended, ChatStore, Connection, ConnectionId, ConnectionStore, CustomerStore, ExecutiveStore,
    Member, Room, StoreError,
};
use crate::tags::{AWAITING_CUSTOMER_RESPONSE, MAX_TAGS_PER_CHAT, TagName};
use crate::whatsapp::SenderId;

mod ops;
mod outbox;
mod routing;

pub use routing::{GSI3, GSI4};

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
    let mut marker = key(format!("WAMSG#{wa_id}"), "DEDUP");
    marker.insert("chat_id".into(), s(chat.as_str()));
    marker.insert("message_id".into(), s(message_id));
    marker.insert(
        "expires_at".into(),
        n(epoch_after(Duration::days(DEDUPE_TTL_DAYS))),
    );
    marker
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
        Self { client, tables }
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
    ) -> Result<Result<(), SdkError<TransactWriteItemsError, HttpResponse>>, StoreError> {
        if let Some(counter) = counter_update(&self.tables.chats, delta)? {
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

impl DynamoStore {
    /// Message, dedupe marker (when it has a WhatsApp id) and header update
    /// in one transaction: all or nothing. Inbound messages also reopen the
    /// chat, count towards unseen and restart the SLA clock.
    async fn append(&self, chat: &Chat, m: &Message) -> Result<Appended, StoreError> {
        let table = &self.tables.chats;
        let inbound = m.direction == Direction::Inbound;
        let mut writes = Vec::with_capacity(3);
        if let Some(wa_id) = m.wa_message_id.as_deref() {
            let marker = wa_marker(wa_id, &chat.chat_id, &m.message_id);
            writes.push(put_write(table, marker, true)?);
        }
        // A customer's file names its chat: media is served only to those
        // who may see that chat, with its channel's key.
        if let (true, crate::whatsapp::Content::Media { media_id, .. }) = (inbound, &m.content) {
            let mut r = key(format!("MEDIA#{media_id}"), "MEDIA");
            r.insert("chat_id".into(), s(chat.chat_id.as_str()));
            r.insert("message_id".into(), s(&m.message_id));
            writes.push(put_write(table, r, false)?);
        }
        // The customer messages up to and including this one: exact, as the
        // header must still hold the count we read (condition below).
        let inbound_seq = chat.inbound_count + u64::from(inbound);
        let mut item = message_item(m)?;
        item.insert("inbound_seq".into(), n(inbound_seq));
        // A send: in the outbound log, counted as queued for its day.
        let queued = !inbound && m.delivery.is_some();
        if queued {
            outbox::log_fields(&mut item, chat, m);
        }
        writes.push(put_write(table, item, true)?);

        let mut after = chat.clone();
        after.last_message = Some(m.preview.clone());
        after.last_message_time = m.received_at;
        if inbound {
            after.status = ChatStatus::Active;
        }
        let mut values = HashMap::from([
            (":listsk".to_owned(), s(list_sk(&after))),
            (":preview".to_owned(), s(&m.preview)),
            (":at".to_owned(), t(m.received_at)),
            (":by".to_owned(), s(&m.sender)),
            (":one".to_owned(), n(1)),
        ]);
        let mut set =
            "gsi1sk = :listsk, last_message = :preview, last_message_time = :at, last_msg_by = :by"
                .to_owned();
        let mut add = "message_count :one".to_owned();
        if inbound {
            set.push_str(", #status = :active, gsi1pk = :list, last_incoming_message = :at");
            values.insert(":active".to_owned(), s(ChatStatus::Active.as_str()));
            values.insert(
                ":list".to_owned(),
                s(list_pk(ChatStatus::Active, chat.customer_type)),
            );
            add.push_str(", inbound_count :one");
            if let Some(name) = after.customer_name.as_deref() {
                set.push_str(", customer_name = :name");
                values.insert(":name".to_owned(), s(name));
            }
        }
        // Inbound: the customer now awaits a reply. An agent's message
        // answers them. System messages change neither.
        after.awaiting_reply = match m.sender_type {
            SenderType::Customer => true,
            SenderType::Agent => false,
            SenderType::System => chat.awaiting_reply,
        };
        set.push_str(", awaiting_reply = :awaiting");
        values.insert(
            ":awaiting".to_owned(),
            AttributeValue::Bool(after.awaiting_reply),
        );
        let mut remove: Vec<&str> = Vec::new();
        let mut condition =
            "#status = :was_status AND awaiting_reply = :was_awaiting AND inbound_count = :was_count"
                .to_owned();
        let mut metrics = Vec::new();
        let staffed = routing::staffed(chat.customer_type);
        // A resolved chat the customer writes to is open again, and waits
        // in its team's line for an owner.
        if inbound && chat.status == ChatStatus::Resolved {
            set.push_str(", opened_at = :at");
            if staffed {
                let (pk3, sk3) =
                    routing::line_keys(chat.customer_type, m.received_at, &chat.chat_id);
                set.push_str(", gsi3pk = :pk3, gsi3sk = :sk3");
                values.insert(":pk3".to_owned(), s(pk3));
                values.insert(":sk3".to_owned(), s(sk3));
            }
        }
        let system_tag = AttributeValue::Ss(vec![AWAITING_CUSTOMER_RESPONSE.to_owned()]);
        let mut tags = "";
        match m.sender_type {
            SenderType::Customer => {
                tags = " DELETE tags :system_tag";
                values.insert(":system_tag".to_owned(), system_tag);
                // The first customer message after the last agent reply
                // starts a waiting episode (the SLA clock).
                if !chat.awaiting_reply && staffed {
                    let (pk4, sk4) =
                        routing::waiting_keys(chat.customer_type, m.received_at, &chat.chat_id);
                    set.push_str(", wait_started_at = :at, gsi4pk = :pk4, gsi4sk = :sk4");
                    values.insert(":pk4".to_owned(), s(pk4));
                    values.insert(":sk4".to_owned(), s(sk4));
                }
            }
            SenderType::Agent => {
                add.push_str(", tags :system_tag");
                values.insert(":system_tag".to_owned(), system_tag);
                if chat.awaiting_reply {
                    remove.extend(["wait_started_at", "gsi4pk", "gsi4sk"]);
                }
                // The chat's first answer to a customer who wrote.
                if chat.first_response_at.is_none() && chat.inbound_count > 0 {
                    let secs = crate::metrics::seconds(chat.created_at, m.received_at);
                    set.push_str(", first_response_at = :at, first_response_secs = :frs");
                    values.insert(":frs".to_owned(), n(u64::try_from(secs).unwrap_or(0)));
                    condition.push_str(" AND attribute_not_exists(first_response_at)");
                    metrics = routing::metrics_writes(
                        table,
                        m.received_at,
                        chat.customer_type,
                        Some(&m.sender),
                        &[
                            (crate::metrics::FIRST_RESPONSES, 1),
                            (crate::metrics::FIRST_RESPONSE_SECS, secs),
                        ],
                    )?;
                }
            }
            SenderType::System => {}
        }
        let remove = if remove.is_empty() {
            String::new()
        } else {
            format!(" REMOVE {}", remove.join(", "))
        };
        // The header must still be as read, or the counters would drift.
        values.insert(":was_status".to_owned(), s(chat.status.as_str()));
        values.insert(
            ":was_awaiting".to_owned(),
            AttributeValue::Bool(chat.awaiting_reply),
        );
        values.insert(":was_count".to_owned(), n(chat.inbound_count));
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(key(chat_pk(&chat.chat_id), "META")))
            .update_expression(format!("SET {set} ADD {add}{remove}{tags}"))
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(values));
        writes.push(
            TransactWriteItem::builder()
                .update(update.build().map_err(build_err)?)
                .build(),
        );
        writes.extend(metrics);
        if queued {
            let day = m.received_at.format("%Y-%m-%d").to_string();
            writes.extend(outbox::stats_write(
                table,
                &day,
                chat.customer_type.as_str(),
                &[("queued", 1)],
            )?);
        }
        let delta = Counts::delta(
            Some((chat.status, chat.awaiting_reply)),
            (after.status, after.awaiting_reply),
        );
        let result = self.transact(writes, &delta).await?;
        match result {
            Ok(_) => {}
            Err(e) if first_condition_failed(&e) => return Ok(Appended::Duplicate),
            Err(e) if any_condition_failed(&e) => {
                return Err(StoreError::Conflict(format!(
                    "chat {} changed",
                    chat.chat_id
                )));
            }
            Err(e) => return Err(unavailable(e)),
        }
        // Re-read for exact counters (other writers may have moved them).
        let now = self
            .chat(&chat.chat_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("chat vanished after append".into()))?;
        Ok(Appended::Stored(Box::new(now)))
    }
}

fn chat_item(chat: &Chat) -> Item {
    let mut item = key(chat_pk(&chat.chat_id), "META");
    item.insert("gsi1pk".into(), s(list_pk(chat.status, chat.customer_type)));
    item.insert("gsi1sk".into(), s(list_sk(chat)));
    item.insert(
        "gsi2pk".into(),
        s(format!("CUSTOMERCHATS#{}", chat.customer)),
    );
    item.insert(
        "gsi2sk".into(),
        s(format!("{}#{}", time_key(chat.created_at), chat.chat_id)),
    );
    item.insert("chat_id".into(), s(chat.chat_id.as_str()));
    item.insert("customer".into(), s(chat.customer.as_str()));
    put_opt(&mut item, "customer_name", chat.customer_name.as_deref());
    item.insert("customer_type".into(), s(chat.customer_type.as_str()));
    item.insert("channel".into(), s(chat.channel.as_str()));
    item.insert("status".into(), s(chat.status.as_str()));
    item.insert("created_at".into(), t(chat.created_at));
    put_opt(&mut item, "last_message", chat.last_message.as_deref());
    item.insert("last_message_time".into(), t(chat.last_message_time));
    put_opt(&mut item, "last_msg_by", chat.last_msg_by.as_deref());
    if let Some(at) = chat.last_incoming_message {
        item.insert("last_incoming_message".into(), t(at));
    }
    item.insert("inbound_count".into(), n(chat.inbound_count));
    item.insert("message_count".into(), n(chat.message_count));
    item.insert(
        "awaiting_reply".into(),
        AttributeValue::Bool(chat.awaiting_reply),
    );
    put_opt(
        &mut item,
        "status_updated_by",
        chat.status_updated_by.as_deref(),
    );
    if let Some(at) = chat.status_updated_at {
        item.insert("status_updated_at".into(), t(at));
    }
    if !chat.tags.is_empty() {
        item.insert("tags".into(), AttributeValue::Ss(chat.tags.clone()));
    }
    put_opt(
        &mut item,
        "assigned_to",
        chat.assigned_to.as_ref().map(ExecutiveId::as_str),
    );
    for (name, at) in [
        ("assigned_at", chat.assigned_at),
        ("opened_at", chat.opened_at),
        ("wait_started_at", chat.wait_started_at),
        ("sla_alerted_for", chat.sla_alerted_for),
        ("sla_escalated_for", chat.sla_escalated_for),
        ("first_response_at", chat.first_response_at),
    ] {
        if let Some(at) = at {
            item.insert(name.into(), t(at));
        }
    }
    // The sparse indexes: owner or waiting line, and waiting customers.
    if chat.status == ChatStatus::Active && routing::staffed(chat.customer_type) {
        let (pk3, sk3) = match &chat.assigned_to {
            Some(owner) => routing::owner_keys(
                owner,
                chat.assigned_at.unwrap_or(chat.created_at),
                &chat.chat_id,
            ),
            None => routing::line_keys(chat.customer_type, chat.created_at, &chat.chat_id),
        };
        item.insert("gsi3pk".into(), s(pk3));
        item.insert("gsi3sk".into(), s(sk3));
        if let Some(since) = chat.wait_started_at {
            let (pk4, sk4) = routing::waiting_keys(chat.customer_type, since, &chat.chat_id);
            item.insert("gsi4pk".into(), s(pk4));
            item.insert("gsi4sk".into(), s(sk4));
        }
    }
    item
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

fn counter_update(table: &str, d: &Counts) -> Result<Option<TransactWriteItem>, StoreError> {
    if d.is_zero() {
        return Ok(None);
    }
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(counters_key()))
        .update_expression("ADD active :a, resolved :r, pending :p")
        .expression_attribute_values(":a", AttributeValue::N(d.active.to_string()))
        .expression_attribute_values(":r", AttributeValue::N(d.resolved.to_string()))
        .expression_attribute_values(":p", AttributeValue::N(d.pending.to_string()))
        .build()
        .map_err(build_err)?;
    Ok(Some(TransactWriteItem::builder().update(update).build()))
}

fn chat_from(item: &Item) -> Result<Chat, StoreError> {
    let bad = |what: &str| StoreError::Corrupt(format!("chat item: {what}"));
    Ok(Chat {
        chat_id: ChatId::parse(item.str("chat_id")?).map_err(|_| bad("chat_id"))?,
        customer: SenderId::parse(item.str("customer")?).map_err(|_| bad("customer"))?,
        customer_name: item.str_opt("customer_name").map(str::to_owned),
        customer_type: Stakeholder::parse(item.str("customer_type")?)
            .map_err(|_| bad("customer_type"))?,
        channel: ChannelId::parse(item.str("channel")?).map_err(|_| bad("channel"))?,
        status: ChatStatus::parse(item.str("status")?).map_err(|_| bad("status"))?,
        created_at: item.time("created_at")?,
        last_message: item.str_opt("last_message").map(str::to_owned),
        last_message_time: item.time("last_message_time")?,
        last_msg_by: item.str_opt("last_msg_by").map(str::to_owned),
        last_incoming_message: item.time_opt("last_incoming_message")?,
        inbound_count: item.u64_or_zero("inbound_count")?,
        message_count: item.u64_or_zero("message_count")?,
        awaiting_reply: item.bool_or("awaiting_reply", false),
        status_updated_by: item.str_opt("status_updated_by").map(str::to_owned),
        status_updated_at: item.time_opt("status_updated_at")?,
        tags: {
            let mut tags = match item.get("tags") {
                Some(AttributeValue::Ss(v)) => v.clone(),
                _ => Vec::new(),
            };
            tags.sort_by_key(|t| t.to_lowercase());
            tags
        },
        assigned_to: item
            .str_opt("assigned_to")
            .map(ExecutiveId::parse)
            .transpose()
            .map_err(|_| bad("assigned_to"))?,
        assigned_at: item.time_opt("assigned_at")?,
        opened_at: item.time_opt("opened_at")?,
        wait_started_at: item.time_opt("wait_started_at")?,
        sla_alerted_for: item.time_opt("sla_alerted_for")?,
        sla_escalated_for: item.time_opt("sla_escalated_for")?,
        first_response_at: item.time_opt("first_response_at")?,
    })
}

fn message_item(m: &Message) -> Result<Item, StoreError> {
    let mut item = key(chat_pk(&m.chat_id), format!("MSG#{}", m.message_id));
    item.insert("chat_id".into(), s(m.chat_id.as_str()));
    item.insert("message_id".into(), s(&m.message_id));
    put_opt(&mut item, "wa_message_id", m.wa_message_id.as_deref());
    let direction = match m.direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    };
    item.insert("direction".into(), s(direction));
    item.insert("sender".into(), s(&m.sender));
    let sender_type = match m.sender_type {
        SenderType::Customer => "Customer",
        SenderType::Agent => "Agent",
        SenderType::System => "System",
    };
    item.insert("sender_type".into(), s(sender_type));
    item.insert("kind".into(), s(m.content.kind()));
    put_opt(&mut item, "text", m.content.text());
    item.insert("preview".into(), s(&m.preview));
    let content = serde_json::to_string(&m.content)
        .map_err(|e| StoreError::Corrupt(format!("message content: {e}")))?;
    item.insert("content".into(), s(content));
    if let Some(at) = m.sent_at {
        item.insert("sent_at".into(), t(at));
    }
    item.insert("received_at".into(), t(m.received_at));
    put_opt(&mut item, "reply_to", m.reply_to.as_deref());
    put_opt(
        &mut item,
        "reply_to_message_id",
        m.reply_to_message_id.as_deref(),
    );
    if let Some(d) = &m.delivery {
        put_delivery(&mut item, d);
    }
    if let Some(r) = &m.referral {
        let referral = serde_json::to_string(r)
            .map_err(|e| StoreError::Corrupt(format!("message referral: {e}")))?;
        item.insert("referral".into(), s(referral));
    }
    Ok(item)
}

fn put_delivery(item: &mut Item, d: &Delivery) {
    item.insert("delivery_status".into(), s(d.status.as_str()));
    item.insert("delivery_rank".into(), n(d.status.rank()));
    if let Some(at) = d.at {
        item.insert("delivery_at".into(), t(at));
    }
    item.insert(
        "delivery_errors".into(),
        AttributeValue::L(d.errors.iter().map(|e| s(e.as_str())).collect()),
    );
}

/// The message an item names by its `chat_id` and `message_id` (a dedupe
/// marker, a media record, a message itself).
pub(super) fn message_ref_of(item: &Item, what: &str) -> Result<MessageRef, StoreError> {
    Ok(MessageRef {
        chat_id: ChatId::parse(item.str("chat_id")?)
            .map_err(|_| StoreError::Corrupt(format!("{what} chat_id")))?,
        message_id: item.str("message_id")?.to_owned(),
    })
}

/// A string among a profile's extra fields (kept as JSON, `x_{name}`).
fn extra_text(item: &Item, name: &str) -> Option<String> {
    let raw = item.str_opt(&format!("x_{name}"))?;
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::String(s)) => Some(s),
        _ => None,
    }
}

fn message_from(item: &Item) -> Result<Message, StoreError> {
    let bad = |what: &str| StoreError::Corrupt(format!("message item: {what}"));
    let content = serde_json::from_str(item.str("content")?).map_err(|_| bad("content"))?;
    Ok(Message {
        chat_id: ChatId::parse(item.str("chat_id")?).map_err(|_| bad("chat_id"))?,
        message_id: item.str("message_id")?.to_owned(),
        wa_message_id: item.str_opt("wa_message_id").map(str::to_owned),
        direction: match item.str("direction")? {
            "inbound" => Direction::Inbound,
            "outbound" => Direction::Outbound,
            _ => return Err(bad("direction")),
        },
        sender: item.str("sender")?.to_owned(),
        sender_type: match item.str("sender_type")? {
            "Customer" => SenderType::Customer,
            "Agent" => SenderType::Agent,
            "System" => SenderType::System,
            _ => return Err(bad("sender_type")),
        },
        preview: item.str("preview")?.to_owned(),
        content,
        sent_at: item.time_opt("sent_at")?,
        received_at: item.time("received_at")?,
        reply_to: item.str_opt("reply_to").map(str::to_owned),
        reply_to_message_id: item.str_opt("reply_to_message_id").map(str::to_owned),
        inbound_seq: item.u64_or_zero("inbound_seq")?,
        referral: match item.str_opt("referral") {
            Some(r) => Some(serde_json::from_str(r).map_err(|_| bad("referral"))?),
            None => None,
        },
        delivery: match item.str_opt("delivery_status") {
            None => None,
            Some(v) => Some(Delivery {
                status: DeliveryStatus::parse(v).ok_or_else(|| bad("delivery_status"))?,
                at: item.time_opt("delivery_at")?,
                errors: item
                    .str_list("delivery_errors")
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            }),
        },
    })
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

impl ChatStore for DynamoStore {
    async fn current_chat(
        &self,
        stakeholder: Stakeholder,
        customer: &SenderId,
    ) -> Result<Option<Chat>, StoreError> {
        let Some(pointer) = self
            .get(
                &self.tables.chats,
                key(current_pk(stakeholder, customer), "CURRENT"),
            )
            .await?
        else {
            return Ok(None);
        };
        let id = ChatId::parse(pointer.str("chat_id")?)
            .map_err(|_| StoreError::Corrupt("current-chat pointer".into()))?;
        self.chat(&id).await
    }

    async fn create_chat(&self, chat: &Chat) -> Result<Chat, StoreError> {
        let table = &self.tables.chats;
        let mut pointer = key(current_pk(chat.customer_type, &chat.customer), "CURRENT");
        pointer.insert("chat_id".into(), s(chat.chat_id.as_str()));
        let writes = vec![
            put_write(table, pointer, true)?,
            put_write(table, chat_item(chat), true)?,
        ];
        let delta = Counts::delta(None, (chat.status, chat.awaiting_reply));
        let result = self.transact(writes, &delta).await?;
        match result {
            Ok(_) => Ok(chat.clone()),
            // Another consumer created the customer's chat first: use it.
            Err(e) if first_condition_failed(&e) => self
                .current_chat(chat.customer_type, &chat.customer)
                .await?
                .ok_or_else(|| StoreError::Corrupt("current chat vanished after a race".into())),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn append_inbound(&self, chat: &Chat, m: &Message) -> Result<Appended, StoreError> {
        self.append(chat, m).await
    }

    async fn append_outbound(&self, chat: &Chat, m: &Message) -> Result<Chat, StoreError> {
        match self.append(chat, m).await? {
            Appended::Stored(chat) => Ok(*chat),
            Appended::Duplicate => Err(StoreError::Corrupt(format!(
                "outbound message {} was already stored",
                m.message_id
            ))),
        }
    }

    async fn set_status(
        &self,
        chat: &Chat,
        to: ChatStatus,
        by: &ExecutiveId,
        at: chrono::DateTime<Utc>,
    ) -> Result<Chat, StoreError> {
        let table = &self.tables.chats;
        // Resolving answers nobody: a resolved chat awaits no reply.
        let awaiting = to == ChatStatus::Active && chat.awaiting_reply;
        let mut set = "#status = :to, gsi1pk = :list, awaiting_reply = :awaiting, \
                       status_updated_by = :by, status_updated_at = :at"
            .to_owned();
        let mut remove = "";
        let mut extra = Vec::new();
        let mut header = Update::builder()
            .table_name(table)
            .set_key(Some(key(chat_pk(&chat.chat_id), "META")))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":list", s(list_pk(to, chat.customer_type)))
            .expression_attribute_values(":awaiting", AttributeValue::Bool(awaiting))
            .expression_attribute_values(":by", s(by.as_str()))
            .expression_attribute_values(":at", t(at))
            .expression_attribute_values(":was_status", s(chat.status.as_str()))
            .expression_attribute_values(
                ":was_awaiting",
                AttributeValue::Bool(chat.awaiting_reply),
            );
        let mut condition = "#status = :was_status AND awaiting_reply = :was_awaiting".to_owned();
        match &chat.assigned_to {
            Some(owner) => {
                condition.push_str(" AND assigned_to = :owner");
                header = header.expression_attribute_values(":owner", s(owner.as_str()));
            }
            None => condition.push_str(" AND attribute_not_exists(assigned_to)"),
        }
        match to {
            ChatStatus::Resolved => {
                // Resolved: out of the owner's hands (their capacity freed),
                // out of the waiting line and the SLA's watch; timed.
                let secs = crate::metrics::seconds(chat.opened_at.unwrap_or(chat.created_at), at);
                set.push_str(", resolution_secs = :rs");
                header =
                    header.expression_attribute_values(":rs", n(u64::try_from(secs).unwrap_or(0)));
                remove = " REMOVE assigned_to, assigned_at, gsi3pk, gsi3sk, wait_started_at, gsi4pk, gsi4sk";
                if let Some(owner) = &chat.assigned_to {
                    set.push_str(", last_assignee = :owner");
                    extra.push(routing::open_chats_write(
                        &self.tables.executives,
                        owner,
                        -1,
                    )?);
                }
                let credited = chat.assigned_to.as_ref().unwrap_or(by);
                extra.extend(routing::metrics_writes(
                    table,
                    at,
                    chat.customer_type,
                    Some(credited.as_str()),
                    &[
                        (crate::metrics::RESOLUTIONS, 1),
                        (crate::metrics::RESOLUTION_SECS, secs),
                    ],
                )?);
            }
            ChatStatus::Active => {
                set.push_str(", opened_at = :at");
                if routing::staffed(chat.customer_type) && chat.assigned_to.is_none() {
                    let (pk3, sk3) = routing::line_keys(chat.customer_type, at, &chat.chat_id);
                    set.push_str(", gsi3pk = :pk3, gsi3sk = :sk3");
                    header = header
                        .expression_attribute_values(":pk3", s(pk3))
                        .expression_attribute_values(":sk3", s(sk3));
                }
            }
        }
        let header = header
            .update_expression(format!("SET {set}{remove}"))
            .condition_expression(condition)
            .build()
            .map_err(build_err)?;
        // The resolution log: who moved the chat where, when.
        let mut log = key(
            chat_pk(&chat.chat_id),
            format!("STATUS#{}#{}", time_key(at), to.as_str()),
        );
        log.insert("from".into(), s(chat.status.as_str()));
        log.insert("to".into(), s(to.as_str()));
        log.insert("by".into(), s(by.as_str()));
        log.insert("at".into(), t(at));
        let mut writes = vec![
            TransactWriteItem::builder().update(header).build(),
            put_write(table, log, false)?,
        ];
        writes.extend(extra);
        let delta = Counts::delta(Some((chat.status, chat.awaiting_reply)), (to, awaiting));
        match self.transact(writes, &delta).await? {
            Ok(_) => {}
            Err(e) if any_condition_failed(&e) => {
                return Err(StoreError::Conflict(format!(
                    "chat {} changed",
                    chat.chat_id
                )));
            }
            Err(e) => return Err(unavailable(e)),
        }
        self.chat(&chat.chat_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("chat vanished after a status change".into()))
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        let Some(item) = self.get(&self.tables.chats, counters_key()).await? else {
            return Ok(Counts::default());
        };
        let signed = |name: &str| -> Result<i64, StoreError> {
            match item.get(name) {
                None => Ok(0),
                Some(AttributeValue::N(v)) => v
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("counter {name}"))),
                Some(_) => Err(StoreError::Corrupt(format!("counter {name}"))),
            }
        };
        Ok(Counts {
            active: signed("active")?,
            resolved: signed("resolved")?,
            pending: signed("pending")?,
        })
    }

    async fn recount(&self) -> Result<Counts, StoreError> {
        let mut c = Counts::default();
        for stakeholder in Stakeholder::ALL {
            c.active += self
                .count_list(ChatStatus::Active, stakeholder, false)
                .await?;
            c.resolved += self
                .count_list(ChatStatus::Resolved, stakeholder, false)
                .await?;
            c.pending += self
                .count_list(ChatStatus::Active, stakeholder, true)
                .await?;
        }
        Ok(c)
    }

    async fn message_ref(&self, wa_message_id: &str) -> Result<Option<MessageRef>, StoreError> {
        self.get(
            &self.tables.chats,
            key(format!("WAMSG#{wa_message_id}"), "DEDUP"),
        )
        .await?
        .map(|marker| message_ref_of(&marker, "dedupe marker"))
        .transpose()
    }

    async fn media_ref(&self, media_id: &str) -> Result<Option<MessageRef>, StoreError> {
        self.get(
            &self.tables.chats,
            key(format!("MEDIA#{media_id}"), "MEDIA"),
        )
        .await?
        .map(|r| message_ref_of(&r, "media ref"))
        .transpose()
    }

    async fn apply_delivery(&self, r: &MessageRef, d: &Delivery) -> Result<bool, StoreError> {
        self.move_delivery(r, d, None, false, None).await
    }

    async fn chat(&self, id: &ChatId) -> Result<Option<Chat>, StoreError> {
        self.get(&self.tables.chats, key(chat_pk(id), "META"))
            .await?
            .as_ref()
            .map(chat_from)
            .transpose()
    }

    async fn list_chats(
        &self,
        status: ChatStatus,
        stakeholder: Stakeholder,
        before: Option<&ListPosition>,
        limit: usize,
    ) -> Result<(Vec<Chat>, bool), StoreError> {
        let items = self
            .query_desc(
                &self.tables.chats,
                Some(GSI1),
                "gsi1pk",
                list_pk(status, stakeholder),
                before.map(|p| SkCond::Below("gsi1sk", position_key(p))),
                limit,
            )
            .await?;
        let more = items.len() >= limit;
        Ok((items.iter().map(chat_from).collect::<Result<_, _>>()?, more))
    }

    async fn messages(
        &self,
        chat: &ChatId,
        before: Option<&str>,
        skip: usize,
        take: usize,
    ) -> Result<(Vec<Message>, bool), StoreError> {
        let cond = match before {
            // Inclusive bounds: the `before` message itself is dropped below.
            Some(id) => SkCond::Between("sk", "MSG#".to_owned(), format!("MSG#{id}")),
            None => SkCond::Prefix("sk", "MSG#".to_owned()),
        };
        let mut items = self
            .query_desc(
                &self.tables.chats,
                None,
                "pk",
                chat_pk(chat),
                Some(cond),
                skip + take + 2,
            )
            .await?;
        if let Some(id) = before {
            items.retain(|i| i.str_opt("message_id") != Some(id));
        }
        let has_more = items.len() > skip + take;
        let messages = items
            .iter()
            .skip(skip)
            .take(take)
            .map(message_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((messages, has_more))
    }

    async fn chats_of(&self, customer: &SenderId, limit: usize) -> Result<Vec<Chat>, StoreError> {
        let items = self
            .query_desc(
                &self.tables.chats,
                Some(GSI2),
                "gsi2pk",
                format!("CUSTOMERCHATS#{customer}"),
                None,
                limit,
            )
            .await?;
        items.iter().map(chat_from).collect()
    }

    async fn message(
        &self,
        chat: &ChatId,
        message_id: &str,
    ) -> Result<Option<Message>, StoreError> {
        self.get(
            &self.tables.chats,
            key(chat_pk(chat), format!("MSG#{message_id}")),
        )
        .await?
        .as_ref()
        .map(message_from)
        .transpose()
    }

    async fn seen_counts(
        &self,
        pairs: &[(ChatId, ExecutiveId)],
    ) -> Result<HashMap<(ChatId, ExecutiveId), u64>, StoreError> {
        let mut unique: Vec<&(ChatId, ExecutiveId)> = pairs.iter().collect();
        unique.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
        unique.dedup();
        let keys = unique
            .iter()
            .map(|(c, e)| key(chat_pk(c), format!("READ#{e}")))
            .collect();
        let mut found = HashMap::new();
        for item in self.batch_get(&self.tables.chats, keys).await? {
            let chat = ChatId::parse(item.str("chat_id")?)
                .map_err(|_| StoreError::Corrupt("read marker chat_id".into()))?;
            let exec = ExecutiveId::parse(item.str("executive_id")?)
                .map_err(|_| StoreError::Corrupt("read marker executive_id".into()))?;
            found.insert((chat, exec), item.u64("seen")?);
        }
        Ok(found)
    }

    async fn set_tag(
        &self,
        chat: &ChatId,
        tag: &TagName,
        applied: bool,
    ) -> Result<Option<Chat>, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.chats)
            .set_key(Some(key(chat_pk(chat), "META")))
            .expression_attribute_values(":tag", AttributeValue::Ss(vec![tag.as_str().to_owned()]))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        update = if applied {
            update
                .update_expression("ADD tags :tag")
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(tags) OR size(tags) < :max \
                     OR contains(tags, :name))",
                )
                .expression_attribute_values(":max", n(MAX_TAGS_PER_CHAT as u64))
                .expression_attribute_values(":name", s(tag.as_str()))
        } else {
            update
                .update_expression("DELETE tags :tag")
                .condition_expression("attribute_exists(pk)")
        };
        match update.send().await {
            Ok(out) => out.attributes.as_ref().map(chat_from).transpose(),
            Err(e) if is_condition_failure(&e) => match self.chat(chat).await? {
                None => Ok(None),
                Some(_) => Err(StoreError::Conflict(format!(
                    "chat {chat} has {MAX_TAGS_PER_CHAT} tags already"
                ))),
            },
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn mark_seen(
        &self,
        chat: &ChatId,
        executive: &ExecutiveId,
        seen: u64,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.chats)
            .set_key(Some(key(chat_pk(chat), format!("READ#{executive}"))))
            .update_expression(
                "SET seen = :seen, seen_at = :now, chat_id = :chat, executive_id = :exec",
            )
            .condition_expression("attribute_not_exists(seen) OR seen < :seen")
            .expression_attribute_values(":seen", n(seen))
            .expression_attribute_values(":now", t(Utc::now()))
            .expression_attribute_values(":chat", s(chat.as_str()))
            .expression_attribute_values(":exec", s(executive.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already at or past `seen`: markers never move back.
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}

fn room_item(connection: &Connection, room: &Room, expires_at: u64) -> Item {
    let mut item = key(
        conn_pk(&connection.connection_id),
        format!("ROOM#{}", room.key()),
    );
    item.insert("gsi1pk".into(), s(format!("ROOM#{}", room.key())));
    item.insert("gsi1sk".into(), s(conn_pk(&connection.connection_id)));
    item.insert("connection_id".into(), s(&connection.connection_id.0));
    item.insert("executive_id".into(), s(connection.executive_id.as_str()));
    item.insert("expires_at".into(), n(expires_at));
    item
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

impl ConnectionStore for DynamoStore {
    async fn add_connection(&self, c: &Connection, rooms: &[Room]) -> Result<(), StoreError> {
        let expires_at = epoch_after(Duration::minutes(CONNECTION_TTL_MINUTES));
        let mut meta = key(conn_pk(&c.connection_id), "META");
        meta.insert("gsi1pk".into(), s(format!("USER#{}", c.executive_id)));
        meta.insert("gsi1sk".into(), s(conn_pk(&c.connection_id)));
        meta.insert("connection_id".into(), s(&c.connection_id.0));
        meta.insert("executive_id".into(), s(c.executive_id.as_str()));
        let role = match c.role {
            Role::Agent => "agent",
            Role::Admin => "admin",
        };
        meta.insert("role".into(), s(role));
        meta.insert(
            "stakeholders".into(),
            AttributeValue::L(c.stakeholders.iter().map(|x| s(x.as_str())).collect()),
        );
        meta.insert("connected_at".into(), t(c.connected_at));
        if let Some(g) = c.token_generation {
            meta.insert("token_generation".into(), n(g));
        }
        meta.insert("expires_at".into(), n(expires_at));
        let mut writes = vec![put_request(meta)?];
        for room in rooms {
            writes.push(put_request(room_item(c, room, expires_at))?);
        }
        self.batch_write(&self.tables.connections, writes).await
    }

    async fn connection(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        let Some(item) = self
            .get(&self.tables.connections, key(conn_pk(id), "META"))
            .await?
        else {
            return Ok(None);
        };
        // TTL deletion runs up to days late: an expired record is no
        // connection, whether or not it has been deleted yet.
        if item
            .u64("expires_at")
            .is_ok_and(|e| e < epoch_after(Duration::zero()))
        {
            return Ok(None);
        }
        let bad = |what: &str| StoreError::Corrupt(format!("connection item: {what}"));
        Ok(Some(Connection {
            connection_id: id.clone(),
            executive_id: ExecutiveId::parse(item.str("executive_id")?)
                .map_err(|_| bad("executive_id"))?,
            role: match item.str("role")? {
                "admin" => Role::Admin,
                _ => Role::Agent,
            },
            stakeholders: item
                .str_list("stakeholders")
                .into_iter()
                .filter_map(|x| Stakeholder::parse(x).ok())
                .collect(),
            connected_at: item.time("connected_at")?,
            token_generation: match item.get("token_generation") {
                Some(_) => Some(item.u64("token_generation")?),
                None => None,
            },
        }))
    }

    async fn remove_connection(&self, id: &ConnectionId) -> Result<(), StoreError> {
        let table = &self.tables.connections;
        // A connection has one item per room it joined: bounded and small.
        let items = self
            .query_desc(table, None, "pk", conn_pk(id), None, 1000)
            .await?;
        let mut deletes = Vec::with_capacity(items.len());
        for item in items {
            let k = key(item.str("pk")?, item.str("sk")?);
            deletes.push(
                WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(k))
                            .build()
                            .map_err(build_err)?,
                    )
                    .build(),
            );
        }
        self.batch_write(table, deletes).await
    }

    async fn join(&self, c: &Connection, room: &Room) -> Result<bool, StoreError> {
        let table = &self.tables.connections;
        let expires_at = epoch_after(Duration::minutes(CONNECTION_TTL_MINUTES));
        // The room item (new only) and the connection's count of joined
        // rooms (under the cap), together.
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(room_item(c, room, expires_at)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err)?;
        let count = Update::builder()
            .table_name(table)
            .set_key(Some(key(conn_pk(&c.connection_id), "META")))
            .update_expression("ADD joined :one")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(joined) OR joined < :max)",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(crate::store::MAX_JOINED_CHATS))
            .build()
            .map_err(build_err)?;
        let writes = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        match self.transact_writes(writes).await {
            Ok(()) => Ok(true),
            // In the room already: nothing to count.
            Err(e) if first_condition_failed(&e) => Ok(true),
            Err(e) if any_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn leave(&self, id: &ConnectionId, room: &Room) -> Result<(), StoreError> {
        let table = &self.tables.connections;
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(table)
            .set_key(Some(key(conn_pk(id), format!("ROOM#{}", room.key()))))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_err)?;
        let count = Update::builder()
            .table_name(table)
            .set_key(Some(key(conn_pk(id), "META")))
            .update_expression("ADD joined :minus")
            .condition_expression("joined > :zero")
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
            .expression_attribute_values(":zero", n(0))
            .build()
            .map_err(build_err)?;
        let writes = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        match self.transact_writes(writes).await {
            Ok(()) => Ok(()),
            // Not in that room (or the count was never kept): nothing to undo.
            Err(e) if any_condition_failed(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn members(&self, room: &Room) -> Result<Vec<Member>, StoreError> {
        let items = self
            .query_desc(
                &self.tables.connections,
                Some(GSI1),
                "gsi1pk",
                format!("ROOM#{}", room.key()),
                None,
                usize::MAX,
            )
            .await?;
        let now = epoch_after(Duration::zero());
        let mut members = Vec::with_capacity(items.len());
        for item in items {
            // TTL deletion lags; an expired record is not a member.
            if item.u64("expires_at").is_ok_and(|e| e < now) {
                continue;
            }
            members.push(Member {
                connection_id: ConnectionId(item.str("connection_id")?.to_owned()),
                executive_id: ExecutiveId::parse(item.str("executive_id")?)
                    .map_err(|_| StoreError::Corrupt("room item executive_id".into()))?,
            });
        }
        Ok(members)
    }

    async fn connections_of(
        &self,
        executive: &ExecutiveId,
    ) -> Result<Vec<ConnectionId>, StoreError> {
        let items = self
            .query_desc(
                &self.tables.connections,
                Some(GSI1),
                "gsi1pk",
                format!("USER#{executive}"),
                None,
                usize::MAX,
            )
            .await?;
        // A record whose `$disconnect` was lost lingers until TTL deletes it.
        let now = epoch_after(Duration::zero());
        items
            .iter()
            .filter(|i| {
                i.u64_or_zero("expires_at")
                    .map_or(true, |e| e == 0 || e > now)
            })
            .map(|i| Ok(ConnectionId(i.str("connection_id")?.to_owned())))
            .collect()
    }
}

fn executive_from(item: &Item) -> Result<Executive, StoreError> {
    let bad = |what: &str| StoreError::Corrupt(format!("executive item: {what}"));
    Ok(Executive {
        executive_id: ExecutiveId::parse(item.str("executive_id")?).map_err(|_| bad("id"))?,
        name: item.str("name")?.to_owned(),
        email: Email::parse(item.str("email")?).map_err(|_| bad("email"))?,
        password_hash: item.str("password_hash")?.to_owned(),
        role: match item.str("role")? {
            "admin" => Role::Admin,
            "agent" => Role::Agent,
            _ => return Err(bad("role")),
        },
        stakeholders: item
            .str_list("stakeholders")
            .into_iter()
            .map(|x| Stakeholder::parse(x).map_err(|_| bad("stakeholders")))
            .collect::<Result<_, _>>()?,
        disabled: item.bool_or("disabled", false),
        capacity: match item.get("capacity") {
            None => crate::executive::DEFAULT_CAPACITY,
            Some(_) => u32::try_from(item.u64_or_zero("capacity")?).map_err(|_| bad("capacity"))?,
        },
        token_generation: item.u64_or_zero("token_generation")?,
    })
}

impl ExecutiveStore for DynamoStore {
    async fn executive(&self, id: &ExecutiveId) -> Result<Option<Executive>, StoreError> {
        self.get(
            &self.tables.executives,
            key(format!("EXEC#{id}"), "PROFILE"),
        )
        .await?
        .as_ref()
        .map(executive_from)
        .transpose()
    }

    async fn executive_by_email(&self, email: &Email) -> Result<Option<Executive>, StoreError> {
        let Some(guard) = self
            .get(
                &self.tables.executives,
                key(format!("EMAIL#{}", email.as_str()), "EMAIL"),
            )
            .await?
        else {
            return Ok(None);
        };
        let id = ExecutiveId::parse(guard.str("executive_id")?)
            .map_err(|_| StoreError::Corrupt("email guard".into()))?;
        self.executive(&id).await
    }

    async fn executive_for_login(
        &self,
        address: &crate::login::LoginAddress,
    ) -> Result<Option<Executive>, StoreError> {
        let guard = self
            .get(
                &self.tables.executives,
                key(format!("EMAIL#{}", address.as_str()), "EMAIL"),
            )
            .await?;
        // No such address: the same second read, of a profile that cannot
        // exist (`-` is no executive id).
        let profile = match guard.as_ref().map(|g| g.str("executive_id")).transpose()? {
            Some(id) => format!("EXEC#{id}"),
            None => "EXEC#-".to_owned(),
        };
        match self
            .get(&self.tables.executives, key(profile, "PROFILE"))
            .await?
        {
            Some(item) => executive_from(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn put_executive(&self, e: &Executive) -> Result<(), StoreError> {
        let table = &self.tables.executives;
        let mut profile = key(format!("EXEC#{}", e.executive_id), "PROFILE");
        profile.insert("executive_id".into(), s(e.executive_id.as_str()));
        profile.insert("name".into(), s(&e.name));
        profile.insert("email".into(), s(e.email.as_str()));
        profile.insert("password_hash".into(), s(&e.password_hash));
        let role = match e.role {
            Role::Agent => "agent",
            Role::Admin => "admin",
        };
        profile.insert("role".into(), s(role));
        profile.insert(
            "stakeholders".into(),
            AttributeValue::L(e.stakeholders.iter().map(|x| s(x.as_str())).collect()),
        );
        profile.insert("disabled".into(), AttributeValue::Bool(e.disabled));
        profile.insert("capacity".into(), n(u64::from(e.capacity)));
        profile.insert("token_generation".into(), n(e.token_generation));
        // One partition lists every executive (tens, not millions).
        profile.insert("gsi1pk".into(), s(EXECUTIVES_LIST));
        profile.insert("gsi1sk".into(), s(e.email.as_str()));
        let previous = self.executive(&e.executive_id).await?;
        let mut guard = key(format!("EMAIL#{}", e.email.as_str()), "EMAIL");
        guard.insert("executive_id".into(), s(e.executive_id.as_str()));
        let put_guard = Put::builder()
            .table_name(table)
            .set_item(Some(guard))
            .condition_expression("attribute_not_exists(pk) OR executive_id = :id")
            .expression_attribute_values(":id", s(e.executive_id.as_str()))
            .build()
            .map_err(build_err)?;
        let put_profile = Put::builder()
            .table_name(table)
            .set_item(Some(profile))
            .build()
            .map_err(build_err)?;
        let mut writes = vec![
            TransactWriteItem::builder().put(put_guard).build(),
            TransactWriteItem::builder().put(put_profile).build(),
        ];
        // A changed address frees the old one, in the same transaction.
        if let Some(old) = previous.filter(|p| p.email != e.email) {
            let release = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(table)
                .set_key(Some(key(format!("EMAIL#{}", old.email.as_str()), "EMAIL")))
                .condition_expression("executive_id = :id")
                .expression_attribute_values(":id", s(e.executive_id.as_str()))
                .build()
                .map_err(build_err)?;
            writes.push(TransactWriteItem::builder().delete(release).build());
        }
        match self.transact_writes(writes).await {
            Ok(_) => Ok(()),
            Err(err) if first_condition_failed(&err) => Err(StoreError::Conflict(format!(
                "e-mail {} belongs to another executive",
                e.email.as_str()
            ))),
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn executives(&self) -> Result<Vec<Executive>, StoreError> {
        let mut items = self
            .query_desc(
                &self.tables.executives,
                Some(GSI1),
                "gsi1pk",
                EXECUTIVES_LIST.to_owned(),
                None,
                usize::MAX,
            )
            .await?;
        items.reverse();
        items.iter().map(executive_from).collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        for table in [
            &self.tables.chats,
            &self.tables.connections,
            &self.tables.executives,
        ] {
            self.client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }
}

fn customer_pk(mobile: &str) -> String {
    format!("CUSTOMER#{mobile}")
}

impl CustomerStore for DynamoStore {
    async fn upsert_profile(&self, u: &ProfileUpdate) -> Result<(), StoreError> {
        let mut names = HashMap::new();
        let mut values = HashMap::from([
            (":mobile".to_owned(), s(&u.mobile)),
            (":now".to_owned(), t(Utc::now())),
        ]);
        let mut set = vec![
            "mobile = :mobile".to_owned(),
            "updated_at = :now".to_owned(),
        ];
        if let Some(v) = &u.documents_status {
            set.push("documents_status = :documents".into());
            values.insert(":documents".into(), s(v));
        }
        if let Some(v) = &u.dco_status {
            set.push("dco_status = :dco".into());
            values.insert(":dco".into(), s(v));
        }
        if let Some(v) = u.in_journey_status {
            set.push("in_journey_status = :journey".into());
            values.insert(":journey".into(), AttributeValue::Bool(v));
        }
        // Extra fields keep their names behind placeholders (any name is safe).
        for (i, (k, v)) in u.other.iter().enumerate() {
            set.push(format!("#x{i} = :x{i}"));
            names.insert(format!("#x{i}"), format!("x_{k}"));
            values.insert(format!(":x{i}"), s(v.to_string()));
        }
        self.client
            .update_item()
            .table_name(&self.tables.customers)
            .set_key(Some(key(customer_pk(&u.mobile), "PROFILE")))
            .update_expression(format!("SET {}", set.join(", ")))
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn put_ride(&self, b: &BookingEvent) -> Result<(), StoreError> {
        let mut item = key(
            customer_pk(&b.customer_number),
            format!("RIDE#{}", b.booking_id),
        );
        item.insert("booking_id".into(), s(&b.booking_id));
        item.insert("customer_number".into(), s(&b.customer_number));
        item.insert("event".into(), s(&b.event));
        item.insert("ride_datetime".into(), t(b.ride_datetime));
        item.insert("ride_status".into(), s(&b.ride_status));
        item.insert("updated_at".into(), t(Utc::now()));
        self.put(&self.tables.customers, item).await
    }

    async fn profiles(
        &self,
        customers: &[SenderId],
    ) -> Result<HashMap<SenderId, CustomerProfile>, StoreError> {
        let mut unique: Vec<&SenderId> = customers.iter().collect();
        unique.sort();
        unique.dedup();
        let keys = unique
            .iter()
            .map(|c| key(customer_pk(c.as_str()), "PROFILE"))
            .collect();
        let mut found = HashMap::new();
        for item in self.batch_get(&self.tables.customers, keys).await? {
            let Ok(customer) = SenderId::parse(item.str("mobile")?) else {
                continue;
            };
            found.insert(
                customer,
                CustomerProfile {
                    documents_status: item.str_opt("documents_status").map(str::to_owned),
                    dco_status: item.str_opt("dco_status").map(str::to_owned),
                    in_journey_status: match item.get("in_journey_status") {
                        Some(AttributeValue::Bool(b)) => Some(*b),
                        _ => None,
                    },
                    changed_number_to: extra_text(&item, "changed_number_to"),
                    changed_number_from: extra_text(&item, "changed_number_from"),
                },
            );
        }
        Ok(found)
    }

    async fn record_context_change(
        &self,
        c: &ContextChange,
        at: chrono::DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let mut item = key(
            customer_pk(&c.customer),
            format!("CONTEXT#{}#{id}", time_key(at)),
        );
        item.insert("customer".into(), s(&c.customer));
        item.insert("customer_type".into(), s(c.customer_type.as_str()));
        let context =
            serde_json::to_string(&c.context).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        item.insert("context".into(), s(context));
        item.insert("received_at".into(), t(at));
        self.put(&self.tables.customers, item).await
    }
}
