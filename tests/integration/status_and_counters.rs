use std::time::Duration;

use domain::channel::Stakeholder;
use domain::chat::ChatStore;
use futures_util::future::join_all;
use serde_json::{Value, json};
use smart_chat_tests::*;

async fn http_stats(stack: &Stack, token: &str) -> anyhow::Result<Value> {
    let res = stack
        .http
        .get(stack.url("/api/dashboard/stats"))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(
        res.status().as_u16() == 200,
        "stats answered {}",
        res.status()
    );
    Ok(res.json::<Value>().await?["data"].clone())
}

fn counts(active: i64, resolved: i64, pending: i64) -> Value {
    json!({"active": active, "resolved": resolved, "pending": pending})
}

#[tokio::test]
async fn status_changes_move_counters_and_reach_the_right_audience() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let admin = stack.admin_token().await?;
    let mut a = stack.connect(&admin).await?;
    let mut b = stack
        .connect_agent("partner-agent", Stakeholder::Partner)
        .await?;
    let mut v = stack
        .connect_agent("vendor-agent", Stakeholder::Vendor)
        .await?;

    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000081", "One", "wamid.st-1", "help"),
        )
        .await?;
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000082", "Two", "wamid.st-2", "help too"),
        )
        .await?;
    let stored = wait_stored(&stack.store(), &["wamid.st-1", "wamid.st-2"]).await?;
    let (c1, _c2) = (stored[0].chat_id.to_string(), stored[1].chat_id.to_string());
    assert_eq!(
        totals(&http_stats(&stack, &admin).await?),
        counts(2, 0, 2),
        "two new chats, both awaiting a reply"
    );

    b.request("join_chat", json!({"chat_id": c1})).await?;
    let reply = a
        .request(
            "update_chat_status",
            json!({"chat_id": c1, "status": "resolved"}),
        )
        .await?;
    assert_eq!(reply["event"], "update_chat_status", "{reply}");
    assert_eq!(reply["data"]["changed"], true);
    assert_eq!(reply["data"]["chat"]["status"], "resolved");
    assert_eq!(reply["data"]["chat"]["status_updated_by"], "dev-admin");

    let pushed = b
        .expect("chat_status_updated", Duration::from_secs(2))
        .await?;
    assert_eq!(
        (pushed["data"]["from"].clone(), pushed["data"]["to"].clone()),
        (json!("active"), json!("resolved"))
    );
    // Every dashboard (not only the chat's team) gets the new counters;
    // frames from the chats' creation may come first.
    for dash in [&mut a, &mut b, &mut v] {
        dash.expect_where(
            "dashboard_stats",
            |d| totals(d) == counts(1, 1, 1),
            Duration::from_secs(2),
        )
        .await?;
    }
    assert!(
        v.quiet("chat_status_updated", Duration::from_millis(300))
            .await,
        "not the vendor's chat"
    );

    // The seeds' dashboard names the customer, not the chat.
    let by_number = b
        .request(
            "update_chat_status",
            json!({"customer_number": "919800000082", "status": "resolved"}),
        )
        .await?;
    assert_eq!(by_number["data"]["changed"], true, "{by_number}");
    let again = b
        .request(
            "update_chat_status",
            json!({"customer_number": "919800000082", "status": "resolved"}),
        )
        .await?;
    assert_eq!(again["data"]["changed"], false);
    let foreign = v
        .request(
            "update_chat_status",
            json!({"chat_id": c1, "status": "active"}),
        )
        .await?;
    assert_eq!(foreign["data"]["code"], "not_found", "{foreign}");
    assert_eq!(totals(&http_stats(&stack, &admin).await?), counts(0, 2, 0));

    // The customer writes again: the chat reopens and awaits a reply.
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000081", "One", "wamid.st-3", "still broken"),
        )
        .await?;
    wait_stored(&stack.store(), &["wamid.st-3"]).await?;
    let reopened = stack
        .store()
        .chat(&stored[0].chat_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("chat"))?;
    assert_eq!(reopened.status, domain::chat::ChatStatus::Active);
    assert_eq!(totals(&http_stats(&stack, &admin).await?), counts(1, 1, 1));
    assert_eq!(
        stack.store().counts().await?,
        stack.store().recount().await?
    );

    assert_eq!(
        stack
            .http
            .get(stack.url("/api/dashboard/stats"))
            .send()
            .await?
            .status()
            .as_u16(),
        401
    );
    for d in [a, b, v] {
        d.close().await;
    }
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn counters_equal_a_recount_after_a_storm_of_concurrent_status_flips() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let admin = stack.admin_token().await?;
    let mut ids = Vec::new();
    for i in 0..8 {
        let wamid = format!("wamid.storm-{i}");
        stack
            .post_webhook(
                PARTNER_CHANNEL,
                &text_webhook(&format!("9198000009{i:02}"), "S", &wamid, "start"),
            )
            .await?;
        ids.push(wamid);
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let chats: Vec<String> = wait_stored(&stack.store(), &refs)
        .await?
        .iter()
        .map(|m| m.chat_id.to_string())
        .collect();

    // Three dashboards flip statuses while customers keep writing.
    let mut dashboards = Vec::new();
    for _ in 0..3 {
        dashboards.push(stack.connect(&admin).await?);
    }
    let flips = dashboards.iter_mut().enumerate().map(|(d, dash)| {
        let chats = chats.clone();
        async move {
            for round in 0..12 {
                let chat = &chats[(round * 3 + d) % chats.len()];
                let status = if (round + d) % 2 == 0 {
                    "resolved"
                } else {
                    "active"
                };
                let reply = dash
                    .request(
                        "update_chat_status",
                        json!({"chat_id": chat, "status": status}),
                    )
                    .await?;
                anyhow::ensure!(reply["event"] == "update_chat_status", "{reply}");
            }
            anyhow::Ok(())
        }
    });
    let writes = async {
        for round in 0..12 {
            let i = round % 8;
            let body = text_webhook(
                &format!("9198000009{i:02}"),
                "S",
                &format!("wamid.storm-more-{round}"),
                "again",
            );
            stack.post_webhook(PARTNER_CHANNEL, &body).await?;
        }
        anyhow::Ok(())
    };
    let (flipped, written) = tokio::join!(join_all(flips), writes);
    for r in flipped {
        r?;
    }
    written?;
    let more: Vec<String> = (0..12).map(|r| format!("wamid.storm-more-{r}")).collect();
    let refs: Vec<&str> = more.iter().map(String::as_str).collect();
    wait_stored(&stack.store(), &refs).await?;

    let store = stack.store();
    let (stored, recounted) = (store.counts().await?, store.recount().await?);
    assert_eq!(stored, recounted, "counters drifted from the chats");
    assert_eq!(
        stored.total.active + stored.total.resolved,
        8,
        "every chat counted once"
    );
    let by_team: i64 = stored.teams.values().map(|c| c.active + c.resolved).sum();
    assert_eq!(by_team, 8, "and once in its team");
    assert_eq!(http_stats(&stack, &admin).await?, json!(stored));
    for d in dashboards {
        d.close().await;
    }
    stack.stop().await;
    Ok(())
}

/// Every header write bumps the chat's revision and a change is
/// conditioned on the revision it read: the header a change returns is
/// the stored one, never a stale copy (it is what gets pushed).
#[tokio::test]
async fn a_change_to_a_chat_read_before_another_write_is_refused_and_the_retry_is_exact()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let store = stack.store();
    let chat = stack
        .customer_writes(PARTNER_CHANNEL, "919555000001", "wamid.rev-1", "hello")
        .await?;
    let read = stack.chat(&chat.chat_id).await?;
    // Another writer (an agent tagging) changes the header meanwhile.
    let tag = domain::chat::tags::TagName::parse("Payment").map_err(anyhow::Error::msg)?;
    let tagged = store
        .set_tag(&chat.chat_id, &tag, true)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no chat"))?;
    assert_eq!(tagged.revision, read.revision + 1);
    let at = chrono::Utc::now();
    let refused = append_outbound_text_to(&store, &read, "stale answer", at).await;
    assert!(
        matches!(refused, Err(domain::error::StoreError::Conflict(_))),
        "{refused:?}"
    );
    let fresh = stack.chat(&chat.chat_id).await?;
    let after = append_outbound_text_to(&store, &fresh, "answer", at)
        .await?
        .ok_or_else(|| anyhow::anyhow!("duplicate"))?;
    assert_eq!(after, stack.chat(&chat.chat_id).await?, "returned = stored");
    assert!(
        after.tags.contains(&"Payment".to_owned()),
        "{:?}",
        after.tags
    );
    assert_eq!(after.revision, fresh.revision + 1);
    stack.stop().await;
    Ok(())
}
