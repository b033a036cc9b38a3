use std::time::Duration;

use domain::channel::Stakeholder;
use domain::chat::ChatStatus;
use domain::chat::ChatStore;
use domain::protocol::{Connection, ConnectionId, ConnectionStore, Room};
use serde_json::json;
use smart_chat_tests::*;

const HINDI: &str = "नमस्ते 🚕 मेरी कैब अभी तक नहीं आई — 👍🏽";

#[tokio::test]
async fn a_webhook_reaches_a_connected_dashboard_within_a_second_byte_exact() -> anyhow::Result<()>
{
    let stack = Stack::start().await?;
    let token = stack.admin_token().await?;
    let mut dash = stack.connect(&token).await?;

    let body = text_webhook("919812345678", "रमेश", "wamid.live-1", HINDI);
    let (status, answer) = stack.post_webhook(PARTNER_CHANNEL, &body).await?;
    assert_eq!((status, answer), (200, json!({"status": 1})));

    let update = dash.expect("room_update", Duration::from_secs(1)).await?;
    assert_eq!(update["data"]["last_message"], HINDI);
    assert_eq!(update["data"]["customer"], "919812345678");
    assert_eq!(update["data"]["customer_name"], "रमेश");
    assert_eq!(update["data"]["customer_type"], "Partner");
    assert_eq!(update["data"]["unseen_count"], 1);
    let chat_id = update["data"]["chat_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Listed with the caller's unseen count.
    let list = dash
        .request("fetch_all_chats", json!({"customer_type": "Partner"}))
        .await?;
    let chats = list["data"]["chats"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(chats.len(), 1, "{list}");
    assert_eq!(chats[0]["chat_id"], chat_id.as_str());
    assert_eq!(chats[0]["unseen_count"], 1);

    // Watching the chat brings new_message; opening it marks it seen.
    let joined = dash
        .request("join_chat", json!({"chat_id": chat_id}))
        .await?;
    assert_eq!(joined["event"], "join_chat", "{joined}");
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919812345678", "रमेश", "wamid.live-2", "दूसरा संदेश"),
        )
        .await?;
    let new_message = dash.expect("new_message", Duration::from_secs(1)).await?;
    assert_eq!(new_message["data"]["message"]["message"], "दूसरा संदेश");
    assert_eq!(new_message["data"]["chat_id"], chat_id.as_str());

    let history = dash
        .request("fetch_chats_by_user", json!({"chat_id": chat_id}))
        .await?;
    let messages = history["data"]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let texts: Vec<_> = messages
        .iter()
        .map(|m| m["message"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(texts, vec!["दूसरा संदेश", HINDI], "newest first, byte-exact");
    assert_eq!(messages[1]["type"], "Customer");
    assert_eq!(messages[1]["kind"], "text");

    let list = dash.request("fetch_all_chats", json!({})).await?;
    assert_eq!(list["data"]["chats"][0]["unseen_count"], 0, "{list}");

    // Leaving the chat stops new_message, not the dashboard updates.
    dash.request("leave_chat", json!({"chat_id": chat_id}))
        .await?;
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919812345678", "रमेश", "wamid.live-3", "तीसरा"),
        )
        .await?;
    let update = dash.expect("room_update", Duration::from_secs(2)).await?;
    assert_eq!(
        update["data"]["unseen_count"], 1,
        "only the message after opening is unseen"
    );
    assert!(dash.quiet("new_message", Duration::from_millis(300)).await);

    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_duplicate_delivery_is_stored_once() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let token = stack.admin_token().await?;
    let mut dash = stack.connect(&token).await?;

    let body = text_webhook("919800000001", "Asha", "wamid.dup-1", "hello");
    for _ in 0..3 {
        assert_eq!(stack.post_webhook(PARTNER_CHANNEL, &body).await?.0, 200);
    }
    // The same message id inside a different body (another relay's retry).
    let other = text_webhook("919800000001", "Asha K", "wamid.dup-1", "hello");
    assert_eq!(stack.post_webhook(PARTNER_CHANNEL, &other).await?.0, 200);
    // A marker message afterwards: once it is stored, everything before it is too.
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000001", "Asha", "wamid.dup-2", "after"),
        )
        .await?;

    let store = stack.store();
    let chat = eventually(Duration::from_secs(10), || async {
        let chats = store
            .list_chats(ChatStatus::Active, Stakeholder::Partner, None, 10)
            .await?
            .0;
        Ok(chats
            .into_iter()
            .find(|c| c.last_message.as_deref() == Some("after")))
    })
    .await?;
    assert_eq!(chat.message_count, 2, "hello once, after once");
    let (messages, _) = store.messages(&chat.chat_id, None, 0, 10).await?;
    let ids: Vec<_> = messages
        .iter()
        .filter_map(|m| m.wa_message_id.clone())
        .collect();
    assert_eq!(ids, vec!["wamid.dup-2", "wamid.dup-1"]);

    // The dashboard heard about each stored message once.
    let first = dash.expect("room_update", Duration::from_secs(2)).await?;
    assert_eq!(first["data"]["last_message"], "hello");
    let second = dash.expect("room_update", Duration::from_secs(2)).await?;
    assert_eq!(second["data"]["last_message"], "after");
    assert!(dash.quiet("room_update", Duration::from_millis(300)).await);

    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn dashboards_only_hear_about_the_stakeholders_they_serve() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut vendor_dash = stack
        .connect_agent("vendor-agent", Stakeholder::Vendor)
        .await?;
    let mut admin_dash = stack.connect(&stack.admin_token().await?).await?;

    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000002", "P", "wamid.p-1", "partner msg"),
        )
        .await?;
    stack
        .post_webhook(
            "9726724247",
            &text_webhook("919800000003", "V", "wamid.v-1", "vendor msg"),
        )
        .await?;

    let update = vendor_dash
        .expect("room_update_vendor", Duration::from_secs(2))
        .await?;
    assert_eq!(update["data"]["last_message"], "vendor msg");
    admin_dash
        .expect("room_update", Duration::from_secs(2))
        .await?;
    assert!(
        vendor_dash
            .quiet("room_update", Duration::from_millis(300))
            .await,
        "vendor agent saw a partner chat"
    );

    let forbidden = vendor_dash
        .request("fetch_all_chats", json!({"customer_type": "Partner"}))
        .await?;
    assert_eq!(forbidden["data"]["code"], "forbidden", "{forbidden}");
    let own = vendor_dash.request("fetch_all_chats", json!({})).await?;
    let customers = chats_field(&own, "customer");
    assert_eq!(customers, vec![json!("919800000003")]);

    vendor_dash.close().await;
    admin_dash.close().await;
    stack.stop().await;
    Ok(())
}

/// The dev admin's Partner dashboard connection `id`, as `$connect` stores it.
fn admin_connection(
    id: &str,
    connected_at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Connection> {
    Ok(Connection {
        connection_id: ConnectionId(id.into()),
        executive_id: domain::executive::ExecutiveId::parse("dev-admin")
            .map_err(anyhow::Error::msg)?,
        role: domain::executive::Role::Admin,
        stakeholders: vec![Stakeholder::Partner],
        connected_at,
        token_generation: Some(0),
    })
}

#[tokio::test]
async fn a_gone_connection_is_deleted_on_the_first_failed_push() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let store = stack.store();
    // A connection API Gateway has already dropped, still in the table.
    let ghost = admin_connection(
        "ghost0000000000",
        chrono::Utc::now() - chrono::Duration::minutes(5),
    )?;
    store
        .add_connection(&ghost, &[Room::Dashboard(Stakeholder::Partner)])
        .await?;
    assert_eq!(
        store
            .members(&Room::Dashboard(Stakeholder::Partner))
            .await?
            .len(),
        1
    );

    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000004", "G", "wamid.g-1", "hi"),
        )
        .await?;
    eventually(Duration::from_secs(10), || async {
        Ok(store
            .connection(&ghost.connection_id)
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    assert!(
        store
            .members(&Room::Dashboard(Stakeholder::Partner))
            .await?
            .is_empty()
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_connection_still_opening_is_kept_when_a_push_finds_it_gone() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let store = stack.store();
    // `$connect` has stored it; API Gateway has not finished the handshake,
    // so a push to it is answered 410 (the local gateway does the same).
    let opening = admin_connection("opening00000000", chrono::Utc::now())?;
    store
        .add_connection(&opening, &[Room::Dashboard(Stakeholder::Partner)])
        .await?;
    let token = stack.admin_token().await?;
    let mut watcher = stack.connect(&token).await?;
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000005", "O", "wamid.o-1", "hi"),
        )
        .await?;
    watcher
        .expect("room_update", Duration::from_secs(10))
        .await?;
    // The consumer has finished with the message (and with the push).
    stack.settled().await?;
    assert!(
        store.connection(&opening.connection_id).await?.is_some(),
        "a connection still opening is not forgotten"
    );
    assert_eq!(
        store
            .members(&Room::Dashboard(Stakeholder::Partner))
            .await?
            .len(),
        2,
        "the opening connection and the watcher"
    );
    watcher.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_connection_record_past_its_expiry_is_no_connection_before_ttl_deletes_it()
-> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    let stack = Stack::start().await?;
    let mut dash = stack
        .connect_agent("expiring", Stakeholder::Partner)
        .await?;
    let live = dash
        .request("fetch_all_chats", json!({"customer_type": "Partner"}))
        .await?;
    assert_eq!(live["event"], "fetch_all_chats", "{live}");

    // The record's expiry passes; DynamoDB's TTL has not deleted it (it
    // runs up to days late, and DynamoDB Local never does).
    let table = stack.running.resources.table("ConnectionsTable")?;
    let ids = stack
        .running
        .dynamo
        .query()
        .table_name(&table)
        .index_name("gsi1")
        .key_condition_expression("gsi1pk = :user")
        .expression_attribute_values(":user", V::S("USER#expiring".into()))
        .send()
        .await?
        .items
        .unwrap_or_default();
    assert_eq!(ids.len(), 1, "one connection record: {ids:?}");
    let pk = ids[0]
        .get("pk")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no pk"))?;
    let past = (chrono::Utc::now().timestamp() - 60).to_string();
    stack
        .running
        .dynamo
        .update_item()
        .table_name(&table)
        .key("pk", pk)
        .key("sk", V::S("META".into()))
        .update_expression("SET expires_at = :past")
        .expression_attribute_values(":past", V::N(past))
        .send()
        .await?;

    let refused = dash
        .request("fetch_all_chats", json!({"customer_type": "Partner"}))
        .await?;
    assert_eq!(refused["event"], "error", "{refused}");
    assert_eq!(refused["data"]["code"], "forbidden", "{refused}");
    dash.close().await;
    stack.stop().await;
    Ok(())
}
