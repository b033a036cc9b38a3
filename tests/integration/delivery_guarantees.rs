use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use domain::channel::Stakeholder;
use domain::chat::ChatStatus;
use domain::chat::ChatStore;
use futures_util::stream::{self, StreamExt};
use smart_chat_tests::*;

#[tokio::test]
async fn a_poison_message_reaches_the_dlq_while_other_customers_flow() -> anyhow::Result<()> {
    let stack = Stack::start_with(|c| c.visibility_timeout = Some(1)).await?;
    let sqs = stack.running.gateway.sqs.clone();
    let inbound = stack.running.resources.queue_url("InboundQueue")?;
    let dlq = stack.running.resources.queue_url("InboundDLQ")?;

    // Something that can never be processed, in its own customer's group.
    sqs.send_message()
        .queue_url(&inbound)
        .message_body("{\"channel\":\"9099039188\",\"event\":\"garbage\"}")
        .message_group_id("919800000041")
        .message_deduplication_id("poison-1")
        .send()
        .await?;
    // Other customers keep flowing meanwhile.
    for i in 0..5 {
        let body = text_webhook(
            &format!("91980000005{i}"),
            "ok",
            &format!("wamid.flow-{i}"),
            "still flowing",
        );
        assert_eq!(stack.post_webhook(PARTNER_CHANNEL, &body).await?.0, 200);
    }
    let store = stack.store();
    wait_stored(
        &store,
        &[
            "wamid.flow-0",
            "wamid.flow-1",
            "wamid.flow-2",
            "wamid.flow-3",
            "wamid.flow-4",
        ],
    )
    .await?;

    // After the redrive limit (5 receives) it sits in the DLQ, body intact.
    let moved = eventually(Duration::from_secs(30), || async {
        let out = sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(1)
            .send()
            .await?;
        Ok(out.messages.unwrap_or_default().into_iter().next())
    })
    .await?;
    assert_eq!(
        moved.body.as_deref(),
        Some("{\"channel\":\"9099039188\",\"event\":\"garbage\"}")
    );
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&inbound)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await?;
    let left = attrs.attributes.and_then(|a| {
        a.get(&QueueAttributeName::ApproximateNumberOfMessages)
            .cloned()
    });
    assert_eq!(left.as_deref(), Some("0"), "nothing else is stuck");
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_burst_of_500_webhooks_from_500_senders_is_stored_exactly_once() -> anyhow::Result<()> {
    let stack = Stack::start_with(|c| c.inbound_pollers = 4).await?;
    eprintln!("start at {:?}", std::time::Instant::now());
    let started = std::time::Instant::now();
    let statuses: Vec<u16> = stream::iter(0..500)
        .map(|i| {
            let stack = &stack;
            async move {
                let body = text_webhook(
                    &format!("9197{i:08}"),
                    "Burst",
                    &format!("wamid.burst-{i}"),
                    &format!("message {i}"),
                );
                stack
                    .post_webhook(PARTNER_CHANNEL, &body)
                    .await
                    .map(|(s, _)| s)
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every webhook answered 200"
    );
    // Redeliver a slice of them, as a provider retry storm would.
    for i in (0..500).step_by(25) {
        let body = text_webhook(
            &format!("9197{i:08}"),
            "Burst",
            &format!("wamid.burst-{i}"),
            &format!("message {i}"),
        );
        assert_eq!(stack.post_webhook(PARTNER_CHANNEL, &body).await?.0, 200);
    }

    eprintln!("burst: posted in {:?}", started.elapsed());
    let store = stack.store();
    // DynamoDB Local stores the burst in well under a minute on two cores
    // (moto took minutes: it copied whole tables for every transaction);
    // the bound is generous for a machine shared with the rest of the
    // suite, the exactly-once check below is what matters.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let chats = store
            .list_chats(ChatStatus::Active, Stakeholder::Partner, None, 1000)
            .await?
            .0;
        let done = chats.iter().filter(|c| c.message_count >= 1).count();
        if done >= 500 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("burst: stored in {:?}", started.elapsed());
    // Every redelivery has landed (the inbound queue is drained): count.
    stack.settled_on(|id| id == "InboundQueue").await?;
    let chats = store
        .list_chats(ChatStatus::Active, Stakeholder::Partner, None, 1000)
        .await?
        .0;
    assert_eq!(chats.len(), 500, "one chat per sender");
    let wrong: Vec<_> = chats
        .iter()
        .filter(|c| c.message_count != 1)
        .map(|c| format!("{} has {}", c.customer, c.message_count))
        .collect();
    assert!(wrong.is_empty(), "not stored exactly once: {wrong:?}");
    stack.stop().await;
    Ok(())
}

/// One SQS batch holding three customers' messages interleaved, one of
/// them poison: the groups run side by side, each customer's messages are
/// stored in order, and only the poisoned customer's message and the ones
/// after it go back to the queue.
#[tokio::test]
async fn a_batchs_customers_run_side_by_side_each_in_order() -> anyhow::Result<()> {
    use lambda_runtime::{Context, LambdaEvent};
    let stack = Stack::start().await?;
    let (a, b, c) = ("919666000001", "919666000002", "919666000003");
    let records = [
        (a, "wamid.side-a1", Some("a1")),
        (b, "wamid.side-b1", Some("b1")),
        (c, "wamid.side-c1", Some("c1")),
        (a, "wamid.side-a2", Some("a2")),
        (b, "wamid.side-b2", None),
        (c, "wamid.side-c2", Some("c2")),
        (a, "wamid.side-a3", Some("a3")),
        (b, "wamid.side-b3", Some("b3")),
        (c, "wamid.side-c3", Some("c3")),
    ];
    let event = inbound_sqs_event(&records)?;
    let ids: Vec<String> = event
        .records
        .iter()
        .filter_map(|r| r.message_id.clone())
        .collect();
    let functions = &stack.running.gateway.functions;
    let answer = inbound::handle(
        &functions.inbound,
        LambdaEvent::new(event, Context::default()),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let failed = failed_ids(&answer);
    assert_eq!(
        failed,
        [ids[4].as_str(), ids[7].as_str()],
        "b2 and what follows it"
    );
    let store = stack.store();
    for (customer, want) in [
        (a, vec!["a1", "a2", "a3"]),
        (b, vec!["b1"]),
        (c, vec!["c1", "c2", "c3"]),
    ] {
        let who = domain::customer::SenderId::parse(customer).map_err(anyhow::Error::msg)?;
        let chat = store
            .current_chat(Stakeholder::Partner, &who)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no chat for {customer}"))?;
        let (messages, _) = store.messages(&chat.chat_id, None, 0, 10).await?;
        let mut texts: Vec<String> = messages.iter().map(|m| m.preview.clone()).collect();
        // Newest first on the page; the store's order is the arrival order.
        texts.reverse();
        assert_eq!(texts, want, "{customer}'s messages in order");
    }
    stack.stop().await;
    Ok(())
}
