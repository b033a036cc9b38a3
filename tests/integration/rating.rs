//! The resolution message and rating (CSAT): resolving asks, a 1–5 answer
//! is the rating and leaves the chat resolved, anything else reopens it;
//! the settings are an admin's to change.

use std::time::Duration;

use domain::channel::Stakeholder;
use domain::chat::{ChatStatus, ChatStore};
use serde_json::{Value, json};
use smart_chat_tests::*;

/// The resolution templates the recorder got for `to`.
async fn rating_questions(stack: &Stack, to: &str) -> anyhow::Result<Vec<Value>> {
    Ok(stack
        .recorded()
        .await?
        .into_iter()
        .filter(|r| r["body"]["to"] == to && r["body"]["template"]["name"] == "resolution_rating")
        .collect())
}

async fn service_stats(stack: &Stack, admin: &str) -> anyhow::Result<Value> {
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (status, stats) = stack
        .call(
            reqwest::Method::GET,
            &format!("/api/stats/service?from={today}&to={today}"),
            Some(admin),
            None,
        )
        .await?;
    anyhow::ensure!(status == 200, "service stats answered {status}: {stats}");
    Ok(stats["data"].clone())
}

#[tokio::test]
async fn a_rating_is_stored_without_reopening_and_anything_else_reopens() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut agent = stack
        .online_agent("rater", &[Stakeholder::Partner], 5)
        .await?;
    let chat = stack
        .customer_writes(
            PARTNER_CHANNEL,
            "919700000001",
            "wamid.rate-1",
            "my payout is late",
        )
        .await?;
    agent
        .request(
            "send_message",
            json!({"chat_id": chat.chat_id, "message": "Checking, one moment"}),
        )
        .await?;
    // A second wait, ended by a second answer: a next response.
    stack
        .customer_writes(PARTNER_CHANNEL, "919700000001", "wamid.rate-0", "any news?")
        .await?;
    agent
        .request(
            "send_message",
            json!({"chat_id": chat.chat_id, "message": "Sent now, sorry!"}),
        )
        .await?;
    let resolved = agent
        .request(
            "update_chat_status",
            json!({"chat_id": chat.chat_id, "status": "resolved"}),
        )
        .await?;
    assert_eq!(resolved["data"]["chat"]["status"], "resolved", "{resolved}");
    stack.settled().await?;
    // The question went out as the approved template, once.
    let asked = rating_questions(&stack, "919700000001").await?;
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0]["body"]["type"], "template");
    let after = stack.chat(&chat.chat_id).await?;
    assert_eq!(after.status, ChatStatus::Resolved);
    assert!(after.rating_asked_at.is_some());
    let counters = stack.store().counts().await?;

    // "⭐⭐⭐⭐" is a 4: stored, pushed, the chat stays resolved.
    let mut admin_dash = stack.connect(&stack.admin_token().await?).await?;
    admin_dash
        .request("join_chat", json!({"chat_id": chat.chat_id}))
        .await?;
    let rated = stack
        .customer_writes(PARTNER_CHANNEL, "919700000001", "wamid.rate-2", "⭐⭐⭐⭐")
        .await?;
    assert_eq!(rated.chat_id, chat.chat_id, "no new chat");
    assert_eq!(rated.status, ChatStatus::Resolved);
    assert_eq!(rated.rating, Some(4));
    assert!(!rated.awaiting_reply);
    assert_eq!(rated.assigned_to, None, "nobody is given a rated chat");
    let pushed = admin_dash
        .expect("chat_rated", Duration::from_secs(3))
        .await?;
    assert_eq!(pushed["data"]["rating"], 4, "{pushed}");
    assert_eq!(pushed["data"]["chat"]["rating"], 4);
    assert_eq!(
        stack.store().counts().await?,
        counters,
        "a rating moves no counter"
    );

    // A second answer in the window replaces the first.
    let again = stack
        .customer_writes(PARTNER_CHANNEL, "919700000001", "wamid.rate-3", "५")
        .await?;
    assert_eq!(
        (again.status, again.rating),
        (ChatStatus::Resolved, Some(5))
    );
    let admin = stack.admin_token().await?;
    let stats = service_stats(&stack, &admin).await?;
    assert_eq!(stats["teams"]["Partner"]["ratings"], 1, "{stats}");
    assert_eq!(stats["teams"]["Partner"]["avg_rating"], 5.0);
    assert_eq!(stats["teams"]["Partner"]["rating_distribution"]["5"], 1);
    assert_eq!(stats["teams"]["Partner"]["rating_distribution"]["4"], 0);
    assert_eq!(
        stats["executives"]["rater"]["total"]["ratings"], 1,
        "credited to the owner"
    );
    assert_eq!(stats["teams"]["Partner"]["first_responses"], 1);
    assert_eq!(stats["teams"]["Partner"]["next_responses"], 1);
    assert!(stats["teams"]["Partner"]["avg_next_response_secs"].is_number());
    assert_eq!(stats["executives"]["rater"]["total"]["next_responses"], 1);

    // Anything else reopens the chat, as always.
    let reopened = stack
        .customer_writes(
            PARTNER_CHANNEL,
            "919700000001",
            "wamid.rate-4",
            "5 days and still no payout",
        )
        .await?;
    assert_eq!(reopened.chat_id, chat.chat_id);
    assert_eq!(reopened.status, ChatStatus::Active);
    assert!(reopened.awaiting_reply);
    assert_eq!(reopened.rating_asked_at, None);
    // …and a digit now is a message, not a rating.
    let plain = stack
        .customer_writes(PARTNER_CHANNEL, "919700000001", "wamid.rate-5", "3")
        .await?;
    assert_eq!(plain.rating, Some(5), "the rating stays what it was");
    assert_eq!(plain.status, ChatStatus::Active);
    assert_eq!(
        stack.store().counts().await?,
        stack.store().recount().await?
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn admins_choose_who_is_asked_and_for_how_long() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let admin = stack.admin_token().await?;
    let (status, seeded) = stack
        .call(
            reqwest::Method::GET,
            "/api/automations/rating",
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(status, 200, "{seeded}");
    assert_eq!(seeded["data"]["source"], "seeded");
    assert_eq!(seeded["data"]["settings"]["window_secs"], 86400);

    // Refusals: not an admin, not a template we may send, a team without
    // agents, a window of nothing, a field we do not know.
    let mut agent = stack
        .online_agent("plain", &[Stakeholder::Partner], 5)
        .await?;
    let plain_token = stack.login("plain@test.local", "plain-password").await?;
    let (status, _) = stack
        .call(
            reqwest::Method::GET,
            "/api/automations/rating",
            Some(&plain_token),
            None,
        )
        .await?;
    assert_eq!(status, 403);
    for (body, why) in [
        (
            json!({"template": "sla_alert", "window_secs": 60, "teams": ["Partner"]}),
            "not an approved customer template",
        ),
        (
            json!({"template": "resolution_rating", "window_secs": 60, "teams": ["Discount"]}),
            "Discount",
        ),
        (
            json!({"template": "resolution_rating", "window_secs": 0, "teams": ["Partner"]}),
            "window_secs",
        ),
        (
            json!({"template": "resolution_rating", "window_secs": 60, "teams": ["Partner"], "extra": 1}),
            "extra",
        ),
        (
            json!({"template": "resolution_rating", "teams": ["Partner"]}),
            "window_secs",
        ),
    ] {
        let (status, answer) = stack
            .call(
                reqwest::Method::PUT,
                "/api/automations/rating",
                Some(&admin),
                Some(body),
            )
            .await?;
        assert_eq!(status, 400, "{why}: {answer}");
        assert!(answer.to_string().contains(why), "{why}: {answer}");
    }

    // Partner chats are no longer asked.
    let (status, saved) = stack
        .call(
            reqwest::Method::PUT,
            "/api/automations/rating",
            Some(&admin),
            Some(
                json!({"template": "resolution_rating", "window_secs": 600, "teams": ["Customer"]}),
            ),
        )
        .await?;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["data"]["source"], "stored");
    let chat = stack
        .customer_writes(PARTNER_CHANNEL, "919700000002", "wamid.rate-off-1", "hello")
        .await?;
    let resolved = agent
        .request(
            "update_chat_status",
            json!({"chat_id": chat.chat_id, "status": "resolved"}),
        )
        .await?;
    assert_eq!(resolved["data"]["changed"], true, "{resolved}");
    stack.settled().await?;
    assert!(rating_questions(&stack, "919700000002").await?.is_empty());
    let after = stack.chat(&chat.chat_id).await?;
    assert_eq!(after.rating_asked_at, None);
    // Without a question, "5" is a message: the chat reopens.
    let back = stack
        .customer_writes(PARTNER_CHANNEL, "919700000002", "wamid.rate-off-2", "5")
        .await?;
    assert_eq!((back.status, back.rating), (ChatStatus::Active, None));
    stack.stop().await;
    Ok(())
}
