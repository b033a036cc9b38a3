use std::time::Duration;

use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use smart_chat_tests::*;

#[tokio::test]
async fn chat_created_and_message_received_reach_subscribers_of_the_bus() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let sqs = stack.running.gateway.sqs.clone();
    let bus = stack.running.resources.event_bus("DomainEventBus")?;

    // Another system subscribes: a rule on the bus targeting its queue.
    let probe = sqs
        .create_queue()
        .queue_name("subscriber-probe")
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
        .name("all-smartchat")
        .event_bus_name(&bus)
        .event_pattern(r#"{"source":["smartchat"]}"#)
        .send()
        .await?;
    events
        .put_targets()
        .rule("all-smartchat")
        .event_bus_name(&bus)
        .targets(Target::builder().id("probe").arn(arn).build()?)
        .send()
        .await?;

    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000071", "E", "wamid.evt-1", "event me"),
        )
        .await?;

    let mut received: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while received.len() < 2 && tokio::time::Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(&probe)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await?;
        for m in out.messages.unwrap_or_default() {
            received.push(serde_json::from_str(m.body.as_deref().unwrap_or("null"))?);
        }
    }
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
