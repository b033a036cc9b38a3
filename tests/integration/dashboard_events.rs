use std::time::Duration;

use domain::channel::Stakeholder;
use serde_json::json;
use smart_chat_tests::*;

#[tokio::test]
async fn config_describes_the_caller_and_what_they_may_use() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut dash = stack
        .connect_agent("vendor-agent", Stakeholder::Vendor)
        .await?;
    let config = dash.request("config", json!({})).await?;
    assert_eq!(config["data"]["executive_id"], "vendor-agent");
    assert_eq!(config["data"]["role"], "agent");
    assert_eq!(config["data"]["stakeholders"], json!(["Vendor"]));
    let channels: Vec<_> = config["data"]["channels"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(
        channels,
        vec![json!("9726724247"), json!("9726524247")],
        "only the vendor numbers"
    );
    assert!(
        config["data"]["events"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("mark_seen")))
    );
    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn search_new_chat_and_mark_seen_work_as_a_dashboard_needs() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let admin = stack.admin_token().await?;
    let mut dash = stack.connect(&admin).await?;

    // A customer writes three times.
    for i in 1..=3 {
        stack
            .post_webhook(
                PARTNER_CHANNEL,
                &text_webhook(
                    "919800000091",
                    "Nisha",
                    &format!("wamid.ms-{i}"),
                    &format!("m{i}"),
                ),
            )
            .await?;
    }
    let stored = wait_stored(&stack.store(), &["wamid.ms-1", "wamid.ms-2", "wamid.ms-3"]).await?;
    let chat_id = stored[0].chat_id.to_string();

    // search_chat finds it by number (with + and spaces as typed).
    let found = dash
        .request("search_chat", json!({"customer": "+91 98000 00091"}))
        .await?;
    assert_eq!(
        found["data"]["chats"][0]["chat_id"],
        chat_id.as_str(),
        "{found}"
    );
    assert_eq!(found["data"]["chats"][0]["unseen_count"], 3);
    let nothing = dash
        .request("search_chat", json!({"customer": "919800000099"}))
        .await?;
    assert_eq!(nothing["data"]["chats"], json!([]));

    // mark_seen up to the second message, then all of it.
    let second = stored[1].message_id.clone();
    let seen = dash
        .request(
            "mark_seen",
            json!({"chat_id": chat_id, "message_id": second}),
        )
        .await?;
    assert_eq!(seen["data"]["unseen_count"], 1, "{seen}");
    let all = dash
        .request("mark_seen", json!({"chat_id": chat_id}))
        .await?;
    assert_eq!(all["data"]["unseen_count"], 0);
    let back = dash
        .request(
            "mark_seen",
            json!({"chat_id": chat_id, "message_id": stored[0].message_id}),
        )
        .await?;
    assert_eq!(back["data"]["unseen_count"], 0, "markers never move back");
    let missing = dash
        .request(
            "mark_seen",
            json!({"chat_id": chat_id, "message_id": "0000000000000-0000-nope"}),
        )
        .await?;
    assert_eq!(missing["data"]["code"], "not_found");

    // new_chat: the existing chat for that team, or a new one.
    let existing = dash
        .request(
            "new_chat",
            json!({"sender": "919800000091", "customer_type": "Partner"}),
        )
        .await?;
    assert_eq!(existing["data"]["created"], false);
    assert_eq!(existing["data"]["chat"]["chat_id"], chat_id.as_str());
    let opened = dash
        .request(
            "new_chat",
            json!({"sender": "919800000092", "customer_type": "Customer"}),
        )
        .await?;
    assert_eq!(opened["data"]["created"], true, "{opened}");
    assert_eq!(opened["data"]["chat"]["channel"], "8000247247");
    assert_eq!(opened["data"]["chat"]["status"], "active");
    dash.expect("room_update_customer", Duration::from_secs(2))
        .await?;
    dash.expect_where(
        "dashboard_stats",
        |d| totals(d) == json!({"active": 2, "resolved": 0, "pending": 1}),
        Duration::from_secs(2),
    )
    .await?;
    let discount = dash
        .request(
            "new_chat",
            json!({"sender": "919800000093", "customer_type": "Discount"}),
        )
        .await?;
    assert_eq!(discount["data"]["code"], "invalid_data");
    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn context_history_lists_every_chat_of_a_customer_the_caller_may_see() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    // One person, two teams: a driver who also books rides.
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000095", "Raj", "wamid.ctx-1", "as a driver"),
        )
        .await?;
    stack
        .post_webhook(
            "8000247247",
            &text_webhook("919800000095", "Raj", "wamid.ctx-2", "as a customer"),
        )
        .await?;
    wait_stored(&stack.store(), &["wamid.ctx-1", "wamid.ctx-2"]).await?;

    let mut admin = stack.connect(&stack.admin_token().await?).await?;
    let history = admin
        .request("fetch_context_history", json!({"customer": "919800000095"}))
        .await?;
    let teams = chats_field(&history, "customer_type");
    assert_eq!(
        teams,
        vec![json!("Customer"), json!("Partner")],
        "newest first: {history}"
    );
    assert_eq!(history["data"]["has_more"], false);

    let mut partner = stack
        .connect_agent("partner-agent", Stakeholder::Partner)
        .await?;
    let mine = partner
        .request("fetch_context_history", json!({"customer": "919800000095"}))
        .await?;
    let teams = chats_field(&mine, "customer_type");
    assert_eq!(
        teams,
        vec![json!("Partner")],
        "only the teams the agent serves"
    );
    let bad = partner.request("fetch_context_history", json!({})).await?;
    assert_eq!(bad["data"]["code"], "invalid_data");
    admin.close().await;
    partner.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_agent_message_is_stored_queued_shown_and_ends_the_wait() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let admin = stack.admin_token().await?;
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000097", "Om", "wamid.sm-1", "where is my payout?"),
        )
        .await?;
    let chat_id = wait_stored(&stack.store(), &["wamid.sm-1"]).await?[0]
        .chat_id
        .to_string();

    let mut agent = stack.connect(&admin).await?;
    let mut watcher = stack.connect(&admin).await?;
    watcher
        .request("join_chat", json!({"chat_id": chat_id}))
        .await?;

    let reply = agent
        .request(
            "send_message",
            json!({"chat_id": chat_id, "message": "Checking now 🙏"}),
        )
        .await?;
    assert_eq!(reply["event"], "send_message", "{reply}");
    let sent = &reply["data"]["message"];
    assert_eq!(sent["type"], "Agent");
    assert_eq!(sent["direction"], "outbound");
    assert_eq!(sent["message"], "Checking now 🙏");
    assert_eq!(sent["delivery_status"], "queued");

    let shown = watcher
        .expect("new_message", Duration::from_secs(2))
        .await?;
    assert_eq!(shown["data"]["message"]["message_id"], sent["message_id"]);
    watcher
        .expect_where(
            "dashboard_stats",
            |d| totals(d) == json!({"active": 1, "resolved": 0, "pending": 0}),
            Duration::from_secs(2),
        )
        .await?;

    let history = agent
        .request("fetch_chats_by_user", json!({"chat_id": chat_id}))
        .await?;
    assert_eq!(history["data"]["chat"]["last_msg_by"], "dev-admin");
    assert_eq!(history["data"]["chat"]["awaiting_reply"], false);
    let order: Vec<_> = history["data"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["type"].clone())
        .collect();
    assert_eq!(order, vec![json!("Agent"), json!("Customer")]);

    // The longest text WhatsApp takes, in Hindi, still fits a frame.
    let longest = "क".repeat(4096);
    let ok = agent
        .request(
            "send_message",
            json!({"chat_id": chat_id, "message": longest}),
        )
        .await?;
    assert_eq!(ok["event"], "send_message", "{}", ok["data"]);
    for (data, code) in [
        (
            json!({"chat_id": chat_id, "message": "   "}),
            "invalid_data",
        ),
        (
            json!({"chat_id": chat_id, "message": "क".repeat(4097)}),
            "invalid_data",
        ),
        (
            json!({"chat_id": chat_id, "message": "hi", "type": "image"}),
            "invalid_data",
        ),
        (
            json!({"chat_id": "01a1fd83-bbb1-77aa-8fa7-6a6bac181c20", "message": "hi"}),
            "not_found",
        ),
    ] {
        let refused = agent.request("send_message", data).await?;
        assert_eq!(refused["data"]["code"], code, "{refused}");
    }
    agent.close().await;
    watcher.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn pages_too_large_for_a_frame_come_back_shorter_and_continue() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut dash = stack.connect(&stack.admin_token().await?).await?;
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000777", "Long", "wamid.long-1", "hello"),
        )
        .await?;
    let chat_id = wait_stored(&stack.store(), &["wamid.long-1"]).await?[0]
        .chat_id
        .to_string();
    // Twelve agent messages of 4,000 characters: about 48 KB in all.
    for i in 0..12 {
        let sent = dash
            .request(
                "send_message",
                json!({"chat_id": chat_id, "message": format!("{i:02}{}", "y".repeat(3998))}),
            )
            .await?;
        assert_eq!(sent["event"], "send_message", "{sent}");
    }
    let mut seen: Vec<String> = Vec::new();
    let mut query = json!({"chat_id": chat_id, "page_size": 50});
    for _ in 0..10 {
        let page = dash.request("fetch_chats_by_user", query.clone()).await?;
        assert_eq!(page["event"], "fetch_chats_by_user", "{page}");
        assert!(page.to_string().len() <= 32 * 1024, "fits in a frame");
        let messages = page["data"]["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!messages.is_empty());
        seen.extend(
            messages
                .iter()
                .filter_map(|m| m["message_id"].as_str().map(str::to_owned)),
        );
        match page["data"]["next_before"].as_str() {
            Some(before) => {
                assert_eq!(page["data"]["has_more"], true);
                query = json!({"chat_id": chat_id, "page_size": 50, "before": before});
            }
            None => {
                assert_eq!(page["data"]["has_more"], false);
                break;
            }
        }
    }
    assert_eq!(seen.len(), 13, "every message once: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first across pages");
    stack.stop().await;
    Ok(())
}
