//! Chats and their messages: the header, the dedupe markers, the
//! message items, the list and customer indexes, read markers.

use super::*;
use chrono::DateTime;
use domain::chat::SendKey;
use domain::chat::transition::{Event, Index, SystemTag, Transition, transition};

/// A sender's client key marker: which message they stored under it.
fn send_key_pk(sender: &str, client_key: &SendKey) -> String {
    format!("SENDKEY#{sender}#{client_key}")
}

impl DynamoStore {
    /// Message, dedupe marker (when it has a WhatsApp id, or its sender's
    /// client key) and everything the chat's rules say the message changes,
    /// in one transaction: all or nothing.
    async fn append(
        &self,
        chat: &Chat,
        m: &Message,
        event: Event<'_>,
        client_key: Option<&SendKey>,
    ) -> Result<Appended, StoreError> {
        let table = &self.tables.chats;
        let Some(change) = transition(chat, event) else {
            return Err(StoreError::Corrupt("a message changed nothing".into()));
        };
        let inbound = m.direction == Direction::Inbound;
        let mut writes = Vec::with_capacity(4);
        // First, so a key used before is `Duplicate`.
        if let Some(k) = client_key {
            let marker = ref_marker(
                key(send_key_pk(&m.sender, k), "SENDKEY"),
                &chat.chat_id,
                &m.message_id,
                chrono::Duration::days(1),
            );
            writes.push(put_write(table, marker, true)?);
        }
        if let Some(wa_id) = m.wa_message_id.as_deref() {
            let marker = wa_marker(wa_id, &chat.chat_id, &m.message_id);
            writes.push(put_write(table, marker, true)?);
        }
        // A customer's file names its chat: media is served only to those
        // who may see that chat, with its channel's key.
        if let (true, domain::chat::Content::Media { media_id, .. }) = (inbound, &m.content) {
            let mut r = key(format!("MEDIA#{media_id}"), "MEDIA");
            r.insert("chat_id".into(), s(chat.chat_id.as_str()));
            r.insert("message_id".into(), s(&m.message_id));
            writes.push(put_write(table, r, false)?);
        }
        // The customer messages up to and including this one: exact, as the
        // header must still hold the count we read.
        let mut item = message_item(m)?;
        item.insert("inbound_seq".into(), n(change.after.inbound_count));
        // A send: in the outbound log, counted as queued for its day.
        let queued = !inbound && m.delivery.is_some();
        if queued {
            outbox::log_fields(&mut item, chat, m);
        }
        writes.push(put_write(table, item, true)?);
        writes.extend(self.change_writes(chat, &change, m.received_at)?);
        if queued {
            let day = m.received_at.format("%Y-%m-%d").to_string();
            writes.extend(outbox::stats_write(
                table,
                &day,
                chat.customer_type.as_str(),
                &[("queued", 1)],
            )?);
        }
        match self
            .transact(writes, &change.counts, chat.customer_type)
            .await?
        {
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
        // Conditioned on the revision read: the header is what the rules said.
        Ok(Appended::Stored(Box::new(written(chat, change.after)?)))
    }

    /// What `event` does to `chat` (as read), in one transaction; the
    /// chat as it is after. `Conflict` if the chat changed since it was
    /// read; nothing written when the event changes nothing.
    async fn apply(
        &self,
        chat: &Chat,
        event: Event<'_>,
        at: DateTime<Utc>,
    ) -> Result<Chat, StoreError> {
        let Some(change) = transition(chat, event) else {
            return Ok(chat.clone());
        };
        let writes = self.change_writes(chat, &change, at)?;
        match self
            .transact(writes, &change.counts, chat.customer_type)
            .await?
        {
            Ok(_) => {}
            Err(e) if any_condition_failed(&e) => {
                return Err(StoreError::Conflict(format!(
                    "chat {} changed",
                    chat.chat_id
                )));
            }
            Err(e) => return Err(unavailable(e)),
        }
        written(chat, change.after)
    }

    /// The writes a transition makes besides the event's own items: the
    /// conditional header update, the status log, the released owner's
    /// load and the service metrics.
    fn change_writes(
        &self,
        before: &Chat,
        change: &Transition,
        at: DateTime<Utc>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let table = &self.tables.chats;
        let mut writes = Vec::new();
        if let Some(header) = header_update(table, before, change)? {
            writes.push(TransactWriteItem::builder().update(header).build());
        }
        // The conversation is over: the next message opens a new chat. Only
        // if the pointer still names this chat (else it is not current).
        if change.ends_conversation {
            let delete = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(table)
                .set_key(Some(key(
                    current_pk(before.customer_type, &before.customer),
                    "CURRENT",
                )))
                .condition_expression("chat_id = :chat")
                .expression_attribute_values(":chat", s(before.chat_id.as_str()))
                .build()
                .map_err(build_err)?;
            writes.push(TransactWriteItem::builder().delete(delete).build());
        }
        if let Some(log) = &change.status_change {
            let mut item = key(
                chat_pk(&before.chat_id),
                format!("STATUS#{}#{}", time_key(log.at), log.to.as_str()),
            );
            item.insert("from".into(), s(log.from.as_str()));
            item.insert("to".into(), s(log.to.as_str()));
            item.insert("by".into(), s(&log.by));
            item.insert("at".into(), t(log.at));
            put_opt(&mut item, "reason", log.reason);
            writes.push(put_write(table, item, false)?);
        }
        if let Some(owner) = &change.released {
            writes.push(routing::open_chats_write(
                &self.tables.executives,
                owner,
                -1,
            )?);
        }
        if !change.metrics.is_empty() {
            writes.extend(routing::metrics_writes(
                table,
                at,
                before.customer_type,
                change.credited.as_deref(),
                &change.metrics,
            )?);
        }
        writes.extend(super::events::event_writes(
            table,
            domain::events::of_transition(change),
            at,
        )?);
        Ok(writes)
    }
}

/// The chat header's update for a transition: the fields that changed,
/// the sparse indexes entered or left, the system tag, the counts; on
/// the condition that the header is still as read.
fn header_update(
    table: &str,
    before: &Chat,
    change: &Transition,
) -> Result<Option<Update>, StoreError> {
    let after = &change.after;
    let mut u = HeaderUpdate::default();
    if after.status != before.status {
        u.set("#status", s(after.status.as_str()));
        u.set("gsi1pk", s(list_pk(after.status, after.customer_type)));
    }
    if after.status != before.status || after.last_message_time != before.last_message_time {
        u.set("gsi1sk", s(list_sk(after)));
    }
    if after.awaiting_reply != before.awaiting_reply {
        u.set("awaiting_reply", AttributeValue::Bool(after.awaiting_reply));
    }
    if after.last_message_time != before.last_message_time {
        u.set("last_message_time", t(after.last_message_time));
    }
    for (name, now, was) in [
        ("last_message", &after.last_message, &before.last_message),
        ("last_msg_by", &after.last_msg_by, &before.last_msg_by),
        (
            "status_updated_by",
            &after.status_updated_by,
            &before.status_updated_by,
        ),
    ] {
        if now != was {
            u.set_opt(name, now.as_deref().map(s));
        }
    }
    if after.assigned_to != before.assigned_to {
        u.set_opt(
            "assigned_to",
            after.assigned_to.as_ref().map(|e| s(e.as_str())),
        );
    }
    for (name, now, was) in [
        (
            "last_incoming_message",
            after.last_incoming_message,
            before.last_incoming_message,
        ),
        (
            "status_updated_at",
            after.status_updated_at,
            before.status_updated_at,
        ),
        ("assigned_at", after.assigned_at, before.assigned_at),
        ("opened_at", after.opened_at, before.opened_at),
        (
            "wait_started_at",
            after.wait_started_at,
            before.wait_started_at,
        ),
        (
            "first_response_at",
            after.first_response_at,
            before.first_response_at,
        ),
    ] {
        if now != was {
            u.set_opt(name, now.map(t));
        }
    }
    if let Some(name) = &change.customer_name {
        u.set("customer_name", s(name));
    }
    if let Some(secs) = change.first_response_secs {
        u.set("first_response_secs", n(u64::try_from(secs).unwrap_or(0)));
    }
    if let Some(secs) = change.resolution_secs {
        u.set("resolution_secs", n(u64::try_from(secs).unwrap_or(0)));
    }
    if after.last_assignee != before.last_assignee {
        u.set_opt(
            "last_assignee",
            after.last_assignee.as_ref().map(|e| s(e.as_str())),
        );
    }
    if after.ended_at != before.ended_at {
        u.set_opt("ended_at", after.ended_at.map(t));
    }
    if after.rating_asked_at != before.rating_asked_at {
        u.set_opt("rating_asked_at", after.rating_asked_at.map(t));
    }
    if after.rating != before.rating {
        u.set_opt("rating", after.rating.map(|r| n(u64::from(r))));
    }
    match change.line {
        Index::Enter(since) => {
            let (pk, sk) = routing::line_keys(after.customer_type, since, &after.chat_id);
            u.set("gsi3pk", s(pk));
            u.set("gsi3sk", s(sk));
        }
        Index::Leave => u.remove(["gsi3pk", "gsi3sk"]),
        Index::Keep => {}
    }
    match change.waiting {
        Index::Enter(since) => {
            let (pk, sk) = routing::waiting_keys(after.customer_type, since, &after.chat_id);
            u.set("gsi4pk", s(pk));
            u.set("gsi4sk", s(sk));
        }
        Index::Leave => u.remove(["wait_started_at", "gsi4pk", "gsi4sk"]),
        Index::Keep => {}
    }
    for (name, now, was) in [
        ("message_count", after.message_count, before.message_count),
        ("inbound_count", after.inbound_count, before.inbound_count),
    ] {
        if now != was {
            u.add(name, n(now.saturating_sub(was)));
        }
    }
    let tag = || AttributeValue::Ss(vec![AWAITING_CUSTOMER_RESPONSE.to_owned()]);
    match change.system_tag {
        SystemTag::Add => u.add("tags", tag()),
        SystemTag::Remove => u.delete("tags", tag()),
        SystemTag::Keep => {}
    }
    // The header must still be as read: every header write bumps the
    // revision, so the header after is known without reading it back.
    u.add("rev", n(1));
    let read = u.value(n(before.revision));
    u.conditions.push(revision_as_read(&read));
    let expect = &change.expect;
    u.condition("#status = ", s(expect.status.as_str()));
    u.condition(
        "awaiting_reply = ",
        AttributeValue::Bool(expect.awaiting_reply),
    );
    if let Some(count) = expect.inbound_count {
        u.condition("inbound_count = ", n(count));
    }
    match &expect.owner {
        Some(Some(owner)) => u.condition("assigned_to = ", s(owner.as_str())),
        Some(None) => u
            .conditions
            .push("attribute_not_exists(assigned_to)".into()),
        None => {}
    }
    if expect.no_first_response {
        u.conditions
            .push("attribute_not_exists(first_response_at)".into());
    }
    if u.set.is_empty() && u.remove.is_empty() && u.add.is_empty() && u.delete.is_empty() {
        return Ok(None);
    }
    u.build(table, key(chat_pk(&before.chat_id), "META"))
        .map(Some)
}

/// Customers' current-chat pointers this process has read or written, by
/// table and pointer key: a message in an existing chat reads only its
/// header. Correct across containers because a chat stops being current
/// only by a context change, which marks the header `ended_at` in the
/// same transaction that removes the pointer. Bounded: cleared when full.
static CURRENT_POINTERS: std::sync::LazyLock<Remembered<(String, String), ChatId>> =
    std::sync::LazyLock::new(|| Remembered::new(10_000));

/// The condition that a chat header still has the revision `placeholder`
/// holds (a header written before revisions existed has none: revision 0).
pub(super) fn revision_as_read(placeholder: &str) -> String {
    format!("(attribute_not_exists(rev) OR rev = {placeholder})")
}

/// The header after a transition conditioned on `before`'s revision
/// succeeded: the rules' result, one revision on.
/// (Through the item form: times as the store keeps them, to the
/// millisecond.)
pub(super) fn written(before: &Chat, mut after: Chat) -> Result<Chat, StoreError> {
    after.revision = before.revision + 1;
    chat_from(&chat_item(&after))
}

/// An update expression assembled clause by clause, each value under a
/// placeholder of its own.
#[derive(Default)]
struct HeaderUpdate {
    set: Vec<String>,
    remove: Vec<String>,
    add: Vec<String>,
    delete: Vec<String>,
    conditions: Vec<String>,
    values: HashMap<String, AttributeValue>,
}

impl HeaderUpdate {
    fn value(&mut self, v: AttributeValue) -> String {
        let name = format!(":v{}", self.values.len());
        self.values.insert(name.clone(), v);
        name
    }

    fn set(&mut self, attribute: &str, v: AttributeValue) {
        let placeholder = self.value(v);
        self.set.push(format!("{attribute} = {placeholder}"));
    }

    /// `SET` a value, `REMOVE` the attribute when there is none.
    fn set_opt(&mut self, attribute: &str, v: Option<AttributeValue>) {
        match v {
            Some(v) => self.set(attribute, v),
            None => self.remove([attribute]),
        }
    }

    fn remove<'a>(&mut self, attributes: impl IntoIterator<Item = &'a str>) {
        for a in attributes {
            if !self.remove.iter().any(|r| r == a) {
                self.remove.push(a.to_owned());
            }
        }
    }

    fn add(&mut self, attribute: &str, v: AttributeValue) {
        let placeholder = self.value(v);
        self.add.push(format!("{attribute} {placeholder}"));
    }

    fn delete(&mut self, attribute: &str, v: AttributeValue) {
        let placeholder = self.value(v);
        self.delete.push(format!("{attribute} {placeholder}"));
    }

    fn condition(&mut self, clause: &str, v: AttributeValue) {
        let placeholder = self.value(v);
        self.conditions.push(format!("{clause}{placeholder}"));
    }

    fn build(mut self, table: &str, key: Item) -> Result<Update, StoreError> {
        // A field both set and removed (cannot happen by the rules) would
        // be refused by DynamoDB: the removal gives way.
        let set_names: Vec<String> = self
            .set
            .iter()
            .filter_map(|c| c.split(' ').next().map(str::to_owned))
            .collect();
        self.remove.retain(|r| !set_names.contains(r));
        let mut expression = Vec::new();
        for (verb, clauses) in [
            ("SET", &self.set),
            ("REMOVE", &self.remove),
            ("ADD", &self.add),
            ("DELETE", &self.delete),
        ] {
            if !clauses.is_empty() {
                expression.push(format!("{verb} {}", clauses.join(", ")));
            }
        }
        Update::builder()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(expression.join(" "))
            .condition_expression(self.conditions.join(" AND "))
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(self.values))
            .build()
            .map_err(build_err)
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
    item.insert("rev".into(), n(chat.revision));
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
        ("rating_asked_at", chat.rating_asked_at),
        ("ended_at", chat.ended_at),
    ] {
        if let Some(at) = at {
            item.insert(name.into(), t(at));
        }
    }
    put_opt(
        &mut item,
        "last_assignee",
        chat.last_assignee.as_ref().map(ExecutiveId::as_str),
    );
    if let Some(r) = chat.rating {
        item.insert("rating".into(), n(u64::from(r)));
    }
    if let Some(context) = &chat.context
        && let Ok(json) = serde_json::to_string(context)
    {
        item.insert("context".into(), s(json));
    }
    // The sparse indexes: owner or waiting line, and waiting customers.
    if chat.status == ChatStatus::Active && chat.customer_type.is_staffed() {
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

pub(super) fn chat_from(item: &Item) -> Result<Chat, StoreError> {
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
        last_assignee: item
            .str_opt("last_assignee")
            .map(ExecutiveId::parse)
            .transpose()
            .map_err(|_| bad("last_assignee"))?,
        rating_asked_at: item.time_opt("rating_asked_at")?,
        ended_at: item.time_opt("ended_at")?,
        revision: item.u64_or_zero("rev")?,
        rating: match item.get("rating") {
            Some(_) => Some(
                u8::try_from(item.u64("rating")?)
                    .ok()
                    .filter(|r| (1..=5).contains(r))
                    .ok_or_else(|| bad("rating"))?,
            ),
            None => None,
        },
        context: item
            .str_opt("context")
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| bad("context"))?,
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
pub(super) fn extra_text(item: &Item, name: &str) -> Option<String> {
    let raw = item.str_opt(&format!("x_{name}"))?;
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::String(s)) => Some(s),
        _ => None,
    }
}

pub(super) fn message_from(item: &Item) -> Result<Message, StoreError> {
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

impl ChatStore for DynamoStore {
    async fn current_chat(
        &self,
        stakeholder: Stakeholder,
        customer: &SenderId,
    ) -> Result<Option<Chat>, StoreError> {
        let pointer_key = (self.tables.chats.clone(), current_pk(stakeholder, customer));
        // The pointer this process last saw, while the chat it names has
        // not been ended (the end and the pointer's removal are one write).
        if let Some(id) = CURRENT_POINTERS.get(&pointer_key) {
            match self.chat(&id).await? {
                Some(chat) if chat.ended_at.is_none() => return Ok(Some(chat)),
                _ => {
                    CURRENT_POINTERS.take(&pointer_key);
                }
            }
        }
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
        CURRENT_POINTERS.keep(pointer_key, id.clone());
        self.chat(&id).await
    }

    async fn current_chats(
        &self,
        pairs: &[(Stakeholder, SenderId)],
    ) -> Result<Vec<Chat>, StoreError> {
        let mut keys: Vec<Item> = pairs
            .iter()
            .map(|(team, customer)| key(current_pk(*team, customer), "CURRENT"))
            .collect();
        keys.sort_by_key(|k| k.get("pk").and_then(|v| v.as_s().ok()).cloned());
        keys.dedup();
        let pointers = self.batch_get(&self.tables.chats, keys).await?;
        let chats = pointers
            .iter()
            .map(|p| {
                let id = ChatId::parse(p.str("chat_id")?)
                    .map_err(|_| StoreError::Corrupt("current-chat pointer".into()))?;
                Ok(key(chat_pk(&id), "META"))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_get(&self.tables.chats, chats)
            .await?
            .iter()
            .map(chat_from)
            .collect()
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
        let result = self.transact(writes, &delta, chat.customer_type).await?;
        match result {
            Ok(_) => {
                CURRENT_POINTERS.keep(
                    (
                        table.clone(),
                        current_pk(chat.customer_type, &chat.customer),
                    ),
                    chat.chat_id.clone(),
                );
                Ok(chat.clone())
            }
            // Another consumer created the customer's chat first: use it.
            Err(e) if first_condition_failed(&e) => self
                .current_chat(chat.customer_type, &chat.customer)
                .await?
                .ok_or_else(|| StoreError::Corrupt("current chat vanished after a race".into())),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn append_inbound(&self, chat: &Chat, m: &Message) -> Result<Appended, StoreError> {
        self.append(chat, m, Event::Message(m), None).await
    }

    async fn append_rating(
        &self,
        chat: &Chat,
        m: &Message,
        score: u8,
    ) -> Result<Appended, StoreError> {
        self.append(chat, m, Event::Rating { message: m, score }, None)
            .await
    }

    async fn append_outbound(
        &self,
        chat: &Chat,
        m: &Message,
        client_key: Option<&SendKey>,
    ) -> Result<Appended, StoreError> {
        self.append(chat, m, Event::Message(m), client_key).await
    }

    async fn sent_under(
        &self,
        sender: &str,
        client_key: &SendKey,
    ) -> Result<Option<MessageRef>, StoreError> {
        self.get(
            &self.tables.chats,
            key(send_key_pk(sender, client_key), "SENDKEY"),
        )
        .await?
        .map(|marker| message_ref_of(&marker, "client key marker"))
        .transpose()
    }

    async fn end_conversation(
        &self,
        chat: &Chat,
        at: chrono::DateTime<Utc>,
    ) -> Result<Chat, StoreError> {
        self.apply(chat, Event::ContextChanged { at }, at).await
    }

    async fn set_status(
        &self,
        chat: &Chat,
        to: ChatStatus,
        by: &ExecutiveId,
        at: chrono::DateTime<Utc>,
        ask_rating: bool,
    ) -> Result<Chat, StoreError> {
        let event = Event::Status {
            to,
            by,
            at,
            ask_rating,
        };
        self.apply(chat, event, at).await
    }

    async fn counts(&self) -> Result<DashboardCounts, StoreError> {
        let Some(item) = self.get(&self.tables.chats, counters_key()).await? else {
            return Ok(DashboardCounts::default());
        };
        let mut counts = DashboardCounts::default();
        for (name, _) in DashboardCounts::default().named() {
            let value = match item.get(&super::counter_attr(&name)) {
                None => 0,
                Some(AttributeValue::N(v)) => v
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("counter {name}")))?,
                Some(_) => return Err(StoreError::Corrupt(format!("counter {name}"))),
            };
            counts.set(&name, value);
        }
        Ok(counts)
    }

    async fn recount(&self) -> Result<DashboardCounts, StoreError> {
        let mut all = DashboardCounts::default();
        for stakeholder in Stakeholder::ALL {
            let c = Counts {
                active: self
                    .count_list(ChatStatus::Active, stakeholder, false)
                    .await?,
                resolved: self
                    .count_list(ChatStatus::Resolved, stakeholder, false)
                    .await?,
                pending: self
                    .count_list(ChatStatus::Active, stakeholder, true)
                    .await?,
            };
            all.total.active += c.active;
            all.total.resolved += c.resolved;
            all.total.pending += c.pending;
            if !c.is_zero() {
                all.teams.insert(stakeholder, c);
            }
        }
        Ok(all)
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
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        update = if applied {
            update
                .update_expression("ADD tags :tag, rev :one")
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(tags) OR size(tags) < :max \
                     OR contains(tags, :name))",
                )
                .expression_attribute_values(":max", n(MAX_TAGS_PER_CHAT as u64))
                .expression_attribute_values(":name", s(tag.as_str()))
        } else {
            update
                .update_expression("DELETE tags :tag ADD rev :one")
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
