use std::time::Duration;

use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use domain::channel::Stakeholder;
use domain::events::EventOutbox;
use domain::secret::Secret;
use serde_json::{Value, json};
use smart_chat_tests::*;

/// Another system subscribes: a rule on the bus (`pattern`) targeting a
/// queue of its own; the queue's URL.
async fn subscribe(stack: &Stack, name: &str, pattern: &str) -> anyhow::Result<String> {
    let sqs = &stack.running.gateway.sqs;
    let bus = stack.running.resources.event_bus("DomainEventBus")?;
    let probe = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await?
        .queue_url
        .unwrap_or_default();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&probe)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    let events = &stack.running.eventbridge;
    events
        .put_rule()
        .name(name)
        .event_bus_name(&bus)
        .event_pattern(pattern)
        .send()
        .await?;
    events
        .put_targets()
        .rule(name)
        .event_bus_name(&bus)
        .targets(Target::builder().id("probe").arn(arn).build()?)
        .send()
        .await?;
    Ok(probe)
}

/// The next `n` events the subscriber's queue gets (fewer if they do not
/// come within 15 s).
async fn receive(stack: &Stack, probe: &str, n: usize) -> anyhow::Result<Vec<Value>> {
    let sqs = &stack.running.gateway.sqs;
    let mut received: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while received.len() < n && tokio::time::Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(probe)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await?;
        for m in out.messages.unwrap_or_default() {
            received.push(serde_json::from_str(m.body.as_deref().unwrap_or("null"))?);
        }
    }
    Ok(received)
}

#[tokio::test]
async fn chat_created_and_message_received_reach_subscribers_of_the_bus() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let probe = subscribe(&stack, "probe-all", r#"{"source":["smartchat"]}"#).await?;
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000071", "E", "wamid.evt-1", "event me"),
        )
        .await?;

    let received = receive(&stack, &probe, 2).await?;
    let types: Vec<_> = received
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(types, vec!["chat.created", "message.received"]);
    assert!(received.iter().all(|e| e["source"] == "smartchat"));
    let chat = &received[0]["detail"];
    let message = &received[1]["detail"];
    assert_eq!(chat["customer"], "919800000071");
    assert_eq!(chat["customer_type"], "Partner");
    assert_eq!(message["chat_id"], chat["chat_id"]);
    assert_eq!(message["message"]["wa_message_id"], "wamid.evt-1");
    assert_eq!(message["message"]["message"], "event me");
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn assignments_resolutions_ratings_and_context_changes_reach_the_bus() -> anyhow::Result<()> {
    let stack =
        Stack::start_with(|c| c.internal_token = Some(Secret::new("evt-internal".into()))).await?;
    let probe = subscribe(
        &stack,
        "probe-lifecycle",
        r#"{"source":["smartchat"],"detail-type":["chat.assigned","chat.resolved","chat.rated","context.changed"]}"#,
    )
    .await?;
    let detail_types = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["detail-type"].as_str().unwrap_or_default().to_owned())
            .collect()
    };

    // Round robin gives the chat to the only agent online.
    let mut agent = stack
        .online_agent("evt-agent", &[Stakeholder::Partner], 5)
        .await?;
    let chat = stack
        .customer_writes(PARTNER_CHANNEL, "919800000081", "wamid.evt-a1", "help")
        .await?;
    let assigned = receive(&stack, &probe, 1).await?;
    assert_eq!(detail_types(&assigned), ["chat.assigned"]);
    let a = &assigned[0]["detail"];
    assert_eq!(
        (
            a["chat_id"].clone(),
            a["to"].clone(),
            a["from"].clone(),
            a["reason"].clone()
        ),
        (
            json!(chat.chat_id),
            json!("evt-agent"),
            Value::Null,
            json!("round_robin")
        )
    );
    assert!(a["event_id"].is_string(), "subscribers deduplicate on it");

    // Resolved (the rating question goes out), then rated.
    agent
        .request(
            "send_message",
            json!({"chat_id": chat.chat_id, "message": "Done"}),
        )
        .await?;
    agent
        .request(
            "update_chat_status",
            json!({"chat_id": chat.chat_id, "status": "resolved"}),
        )
        .await?;
    let resolved = receive(&stack, &probe, 1).await?;
    assert_eq!(detail_types(&resolved), ["chat.resolved"]);
    let r = &resolved[0]["detail"];
    assert_eq!(r["chat"]["chat_id"], json!(chat.chat_id));
    assert_eq!(r["chat"]["status"], "resolved");
    assert_eq!(
        (r["by"].clone(), r["from"].clone()),
        (json!("evt-agent"), json!("active"))
    );
    stack.settled().await?;
    stack
        .customer_writes(PARTNER_CHANNEL, "919800000081", "wamid.evt-a2", "5")
        .await?;
    let rated = receive(&stack, &probe, 1).await?;
    assert_eq!(detail_types(&rated), ["chat.rated"]);
    assert_eq!(rated[0]["detail"]["rating"], 5);

    // A context change ends another customer's conversation.
    let other = stack
        .customer_writes(PARTNER_CHANNEL, "919800000082", "wamid.evt-b1", "docs?")
        .await?;
    receive(&stack, &probe, 1).await?; // its assignment
    let res = stack
        .http
        .post(stack.url("/api/webhook/context_change"))
        .header("x-internal-token", "evt-internal")
        .json(
            &json!({"customer": "919800000082", "customer_type": "Partner",
            "context": {"documents_status": "Approved"}}),
        )
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let mut changed = receive(&stack, &probe, 2).await?;
    changed.sort_by_key(|e| e["detail-type"].as_str().unwrap_or_default().to_owned());
    assert_eq!(detail_types(&changed), ["chat.resolved", "context.changed"]);
    assert_eq!(
        changed[0]["detail"]["chat"]["chat_id"],
        json!(other.chat_id)
    );
    assert_eq!(changed[0]["detail"]["reason"], "context_change");
    assert_eq!(changed[0]["detail"]["by"], "system");
    assert_eq!(
        changed[1]["detail"]["context"]["documents_status"],
        "Approved"
    );

    // An admin disables the agent: their chats go back to the line. The
    // API leaves that event pending; the minute sweep publishes it.
    let third = stack
        .customer_writes(PARTNER_CHANNEL, "919800000083", "wamid.evt-c1", "hello?")
        .await?;
    receive(&stack, &probe, 1).await?;
    let admin = stack.admin_token().await?;
    let (status, body) = stack
        .call(
            reqwest::Method::DELETE,
            "/api/executives/evt-agent",
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        stack.chat(&third.chat_id).await?.assigned_to,
        None,
        "handed back at once"
    );
    let pending = stack.store().pending_events(10).await?;
    assert_eq!(pending.len(), 1, "{pending:?}");
    let sweep = stack.run_schedule("sla-scan").await?;
    assert_eq!(sweep["events_published"], 1, "{sweep}");
    let back = receive(&stack, &probe, 1).await?;
    assert_eq!(back[0]["detail"]["chat_id"], json!(third.chat_id));
    assert_eq!(back[0]["detail"]["to"], Value::Null);
    assert_eq!(back[0]["detail"]["from"], "evt-agent");
    assert!(stack.store().pending_events(10).await?.is_empty());
    agent.close().await;
    stack.stop().await;
    Ok(())
}
