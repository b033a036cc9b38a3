//! Every list, page and batch a client can influence is capped, and the
//! largest allowed request costs a known number of store requests.

use std::collections::BTreeMap;
use std::time::Duration;

use domain::protocol::MAX_JOINED_CHATS;
use reqwest::Method;
use serde_json::{Value, json};
use smart_chat_tests::*;

/// One webhook body with `n` messages: `per_sender` from each sender.
fn body(prefix: &str, senders: usize, per_sender: usize) -> String {
    let mut messages = Vec::new();
    for s in 0..senders {
        for m in 0..per_sender {
            messages.push(json!({"from": format!("9198{s:08}"), "id": format!("wamid.{prefix}-{s}-{m}"),
                "timestamp": "1763700000", "type": "text", "text": {"body": format!("message {m} of {s}")}}));
        }
    }
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "messages": messages}}]}]})
    .to_string()
}

/// The cheaper of two runs of a dashboard request, with its store requests.
async fn frame_cost(
    stack: &Stack,
    dash: &mut Dashboard,
    event: &str,
    data: Value,
) -> anyhow::Result<(Value, BTreeMap<String, u64>)> {
    let mut runs = Vec::new();
    for _ in 0..2 {
        runs.push(stack.measured(dash.request(event, data.clone())).await?);
    }
    fewest(runs).ok_or_else(|| anyhow::anyhow!("no run"))
}

/// The cheaper of two runs of an admin's `GET path` (answered 200).
async fn get_cost(
    stack: &Stack,
    admin: &str,
    path: &str,
) -> anyhow::Result<(Value, BTreeMap<String, u64>)> {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let get = async {
            let (status, v) = stack.call(Method::GET, path, Some(admin), None).await?;
            anyhow::ensure!(status == 200, "{v}");
            Ok(v)
        };
        runs.push(stack.measured(get).await?);
    }
    fewest(runs).ok_or_else(|| anyhow::anyhow!("no run"))
}

fn total(m: &BTreeMap<String, u64>) -> u64 {
    store_total(m)
}

#[tokio::test]
async fn the_largest_allowed_requests_cost_a_bounded_number_of_store_requests() -> anyhow::Result<()>
{
    let stack = Stack::start().await?;
    // 60 customers with one message each, and one customer with 60.
    assert_eq!(
        stack
            .post_webhook(PARTNER_CHANNEL, &body("many", 60, 1))
            .await?
            .0,
        200
    );
    assert_eq!(
        stack
            .post_webhook(PARTNER_CHANNEL, &body("long", 1, 60))
            .await?
            .0,
        200
    );
    let store = stack.store();
    wait_stored(&store, &["wamid.many-59-0", "wamid.long-0-59"]).await?;
    stack.settled().await?;
    let admin = stack.admin_token().await?;
    let mut dash = stack.connect(&admin).await?;

    // The largest page of a chat list: 50 chats, their views and unseen counts.
    let (page, list) = frame_cost(
        &stack,
        &mut dash,
        "fetch_all_chats",
        json!({"customer_type": "Partner", "page_size": 50}),
    )
    .await?;
    assert_eq!(
        page["data"]["chats"].as_array().map(Vec::len),
        Some(50),
        "{page}"
    );
    // A filter matching nothing reads through every chat (up to the budget).
    let (none, search) = frame_cost(
        &stack,
        &mut dash,
        "fetch_all_chats",
        json!({"customer_type": "Partner", "page_size": 50, "search": "zzzz"}),
    )
    .await?;
    assert_eq!(none["data"]["chats"], json!([]), "{none}");
    // The longest history page: 50 messages.
    let chat_id = stored_message(&store, "wamid.long-0-59")
        .await?
        .map(|m| m.chat_id)
        .ok_or_else(|| anyhow::anyhow!("chat"))?;
    let (history, messages) = frame_cost(
        &stack,
        &mut dash,
        "fetch_chats_by_user",
        json!({"chat_id": chat_id, "page_size": 50}),
    )
    .await?;
    assert_eq!(
        history["data"]["messages"].as_array().map(Vec::len),
        Some(50)
    );
    // The longest period of the message log and of its statistics.
    let to = chrono::Utc::now().date_naive();
    let from = to - chrono::Duration::days(91);
    let (_, log) = get_cost(
        &stack,
        &admin,
        &format!("/api/messages?from={from}&to={to}&limit=100"),
    )
    .await?;
    let (_, stats) = get_cost(
        &stack,
        &admin,
        &format!("/api/messages/stats?from={from}&to={to}"),
    )
    .await?;
    eprintln!(
        "store requests — list page of 50: {list:?}; search through 61 chats: {search:?}; \
               50 messages: {messages:?}; log over 92 days: {log:?}; stats over 92 days: {stats:?}"
    );
    // Bounds (docs/decisions.md § Requests have caps).
    assert!(total(&list) <= 12, "{list:?}");
    assert!(total(&search) <= 12, "{search:?}");
    assert!(total(&messages) <= 8, "{messages:?}");
    assert!(total(&log) <= 95, "{log:?}");
    assert!(total(&stats) <= 8, "{stats:?}");
    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_connection_follows_a_bounded_number_of_chats_and_an_executive_holds_a_bounded_number_of_connections()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let n = usize::try_from(MAX_JOINED_CHATS)? + 1;
    assert_eq!(
        stack
            .post_webhook(PARTNER_CHANNEL, &body("rooms", n, 1))
            .await?
            .0,
        200
    );
    let store = stack.store();
    let ids: Vec<String> = (0..n).map(|s| format!("wamid.rooms-{s}-0")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let stored = wait_stored(&store, &refs).await?;
    let admin = stack.admin_token().await?;
    let mut dash = stack.connect(&admin).await?;
    for m in &stored[..n - 1] {
        let r = dash
            .request("join_chat", json!({"chat_id": m.chat_id}))
            .await?;
        assert_eq!(r["data"]["joined"], true, "{r}");
    }
    // Joining a room already joined costs nothing.
    let again = dash
        .request("join_chat", json!({"chat_id": stored[0].chat_id}))
        .await?;
    assert_eq!(again["data"]["joined"], true, "{again}");
    let over = dash
        .request("join_chat", json!({"chat_id": stored[n - 1].chat_id}))
        .await?;
    assert_eq!(over["data"]["code"], "invalid_data", "{over}");
    // Leaving one makes room.
    dash.request("leave_chat", json!({"chat_id": stored[0].chat_id}))
        .await?;
    let now_ok = dash
        .request("join_chat", json!({"chat_id": stored[n - 1].chat_id}))
        .await?;
    assert_eq!(now_ok["data"]["joined"], true, "{now_ok}");

    // Connections per executive.
    let mut open = vec![dash];
    for _ in 1..domain::dashboard::MAX_CONNECTIONS_PER_EXECUTIVE {
        open.push(stack.connect(&admin).await?);
    }
    let refused = stack.handshake_status(&format!("?token={admin}")).await?;
    assert_eq!(refused, Some(429));
    // One closes: another may open.
    if let Some(d) = open.pop() {
        d.close().await;
    }
    let reopened = smart_chat_tests::eventually(Duration::from_secs(5), || async {
        Ok(stack.connect(&admin).await.ok())
    })
    .await?;
    reopened.close().await;
    for d in open {
        d.close().await;
    }
    stack.stop().await;
    Ok(())
}
