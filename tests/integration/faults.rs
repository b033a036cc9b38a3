//! The local stack's fault switch, and what the product does when a
//! dependency fails as the switch makes it: the webhook never answers 200
//! for what it could not queue; a send whose answer was cut off is
//! `unconfirmed`, not sent again blindly; a socket whose `$disconnect` was
//! lost leaves no record behind after the sweep.

use std::time::Duration;

use serde_json::{Value, json};

use domain::channel::Stakeholder;
use domain::chat::{ChatStore, DeliveryStatus};
use domain::executive::ExecutiveId;
use domain::protocol::ConnectionStore;
use local_gateway::faults::{Dependency, Fault};

use smart_chat_tests::{PARTNER_CHANNEL, Stack, eventually, text_webhook, wait_stored};

const WAIT: Duration = Duration::from_secs(20);

/// `PUT /__faults` with `spec`: the status and the switch's report.
async fn switch(stack: &Stack, spec: &str) -> anyhow::Result<(u16, Value)> {
    let res = reqwest::Client::new()
        .put(format!("http://{}/__faults", stack.running.ws_addr))
        .body(spec.to_owned())
        .send()
        .await?;
    Ok((res.status().as_u16(), res.json().await?))
}

#[tokio::test]
async fn the_switch_fails_what_it_is_told_and_the_webhook_never_acks_what_it_lost()
-> anyhow::Result<()> {
    // A receive whose answer is lost hides its messages until the
    // visibility timeout: short here.
    let stack = Stack::start_with(|c| c.visibility_timeout = Some(2)).await?;
    let (code, refused) = switch(&stack, "dynamo=0.5").await?;
    assert_eq!(code, 400, "{refused}");
    let (code, report) = switch(&stack, "sqs=1").await?;
    assert_eq!(code, 200);
    assert_eq!(report["rates"]["sqs.500"], 0.5, "{report}");
    assert_eq!(report["rates"]["sqs.timeout"], 0.5, "{report}");

    // Every SQS request fails: the webhook cannot queue, so it does not
    // say 200 (the provider will post it again).
    let body = text_webhook("919811000001", "Asha", "wamid.fault-1", "hello");
    let (code, _) = stack.post_webhook(PARTNER_CHANNEL, &body).await?;
    assert!(code >= 500, "answered {code} without queuing");
    let injected = stack.running.faults.injected();
    assert!(
        injected.keys().all(|f| f.dependency() == Dependency::Sqs) && !injected.is_empty(),
        "{injected:?}"
    );

    // Off: the provider's retry is taken, and stored once.
    let (_, off) = switch(&stack, "off").await?;
    assert_eq!(off["rates"], json!({}));
    let (code, _) = stack.post_webhook(PARTNER_CHANNEL, &body).await?;
    assert_eq!(code, 200);
    let stored = wait_stored(&stack.store(), &["wamid.fault-1"]).await?;
    stack.settled().await?;
    let chat = stack.chat(&stored[0].chat_id).await?;
    assert_eq!(chat.inbound_count, 1, "stored once");
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_send_cut_off_after_the_provider_took_it_is_unconfirmed_until_its_callback()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let customer = "919811000002";
    let chat = stack
        .customer_writes(PARTNER_CHANNEL, customer, "wamid.fault-2", "hello")
        .await?;
    let mut dash = stack.connect(&stack.admin_token().await?).await?;
    switch(&stack, "provider.reset=1").await?;
    let reply = dash
        .request(
            "send_message",
            json!({"chat_id": chat.chat_id, "message": "cut short"}),
        )
        .await?;
    let message_id = reply["data"]["message"]["message_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let unconfirmed =
        eventually(WAIT, || async {
            let m = stack.store().message(&chat.chat_id, &message_id).await?;
            Ok(m.filter(|m| {
                m.delivery.as_ref().map(|d| d.status) == Some(DeliveryStatus::Unconfirmed)
            }))
        })
        .await?;
    let reason = unconfirmed
        .delivery
        .as_ref()
        .map(|d| d.errors.join("; "))
        .unwrap_or_default();
    // Cut before or after the status line: either way it may have gone.
    assert!(
        reason.contains("after sending") || reason.contains("cut short"),
        "the reason is kept: {reason}"
    );
    switch(&stack, "off").await?;

    // The provider took it once; WhatsApp's callback confirms it.
    let recorded: Vec<Value> = stack
        .recorded()
        .await?
        .into_iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/messages")))
        .collect();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["fault"], "provider.reset");
    let callback = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "statuses": [{"id": "wamid.after-reset", "status": "sent", "timestamp": "1763700000",
                          "recipient_id": customer,
                          "biz_opaque_callback_data": recorded[0]["body"]["biz_opaque_callback_data"]}]
        }}]}]
    });
    let (code, _) = stack
        .post_webhook(PARTNER_CHANNEL, &callback.to_string())
        .await?;
    assert_eq!(code, 200);
    eventually(WAIT, || async {
        let m = stack.store().message(&chat.chat_id, &message_id).await?;
        Ok(m.filter(|m| m.delivery.as_ref().map(|d| d.status) == Some(DeliveryStatus::Sent)))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.settled().await?;
    let again = stack
        .recorded()
        .await?
        .into_iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/messages")))
        .count();
    assert_eq!(again, 1, "not sent a second time");
    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_reply_stored_though_the_store_answered_an_error_is_queued_not_refused()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let chat = stack
        .customer_writes(PARTNER_CHANNEL, "919811000006", "wamid.fault-6", "hello")
        .await?;
    let mut dash = stack.connect(&stack.admin_token().await?).await?;
    // The first attempt is written and answered 500; the SDK's retries are
    // then throttled (moto keeps no idempotency token, so a retry that
    // reaches it is refused as a duplicate: the second case; the third,
    // with a client id, is refused on the client id's marker).
    let cases = [
        (
            "lost answer, retries throttled",
            vec![
                Fault::Dynamo500,
                Fault::DynamoThrottle,
                Fault::DynamoThrottle,
            ],
            None,
        ),
        (
            "lost answer, retry a duplicate",
            vec![Fault::Dynamo500],
            None,
        ),
        (
            "lost answer, client id taken",
            vec![Fault::Dynamo500],
            Some("fault-key-1"),
        ),
    ];
    let mut sent = Vec::new();
    for (text, script, client_id) in cases {
        stack.running.faults.script("TransactWriteItems", script);
        let reply = dash
            .request(
                "send_message",
                json!({"chat_id": chat.chat_id, "message": text, "client_id": client_id}),
            )
            .await?;
        assert_eq!(reply["event"], "send_message", "{text}: {reply}");
        sent.push(
            reply["data"]["message"]["message_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let injected = stack.running.faults.injected().values().sum::<u64>();
    assert_eq!(injected, 5, "every scripted fault was met");

    // Each went out once, and each is stored once.
    for message_id in &sent {
        eventually(WAIT, || async {
            let m = stack.store().message(&chat.chat_id, message_id).await?;
            Ok(m.filter(|m| {
                m.delivery.as_ref().map(|d| d.status) == Some(DeliveryStatus::Accepted)
            }))
        })
        .await?;
    }
    stack.settled().await?;
    let recorded: Vec<String> = stack
        .recorded()
        .await?
        .into_iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/messages")))
        .filter_map(|r| r["body"]["text"]["body"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        recorded,
        [
            "lost answer, retries throttled",
            "lost answer, retry a duplicate",
            "lost answer, client id taken"
        ],
        "each sent once"
    );
    let (messages, _) = stack.store().messages(&chat.chat_id, None, 0, 10).await?;
    assert_eq!(messages.len(), 4, "the customer's and the three replies");
    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_socket_whose_disconnect_was_lost_leaves_no_record_after_the_sweep() -> anyhow::Result<()>
{
    let stack = Stack::start().await?;
    let dash = stack
        .online_agent("sweep-agent", &[Stakeholder::Partner], 5)
        .await?;
    let agent = ExecutiveId::parse("sweep-agent").map_err(anyhow::Error::msg)?;
    let store = stack.store();
    assert_eq!(store.connections_of(&agent).await?.len(), 1);
    // Connected: the sweep leaves the agent online and the record alone.
    let quiet = stack.run_schedule("counter-sync").await?;
    assert_eq!(quiet["connections_closed"], 0, "{quiet}");
    assert_eq!(quiet["went_offline"], 0, "{quiet}");
    assert_eq!(store.connections_of(&agent).await?.len(), 1);

    // DynamoDB down while the socket closes: `$disconnect` fails.
    let before = stack.running.gateway.connections.disconnects();
    switch(&stack, "dynamodb.throttle=1").await?;
    dash.close().await;
    eventually(WAIT, || async {
        Ok((stack.running.gateway.connections.disconnects() > before).then_some(()))
    })
    .await?;
    switch(&stack, "off").await?;
    let left = store.connections_of(&agent).await?;
    assert_eq!(left.len(), 1, "the record outlived its socket");

    // The sweep asks API Gateway, forgets the record, puts the agent offline.
    let report = stack.run_schedule("counter-sync").await?;
    assert_eq!(report["connections_closed"], 1, "{report}");
    assert_eq!(report["went_offline"], 1, "{report}");
    assert!(store.connections_of(&agent).await?.is_empty());
    assert!(
        store.connection(&left[0]).await?.is_none(),
        "the connection item is gone too"
    );
    let again = stack.run_schedule("counter-sync").await?;
    assert_eq!(again["connections_closed"], 0, "{again}");
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_batch_lost_by_a_crashed_consumer_comes_back_in_the_customers_order() -> anyhow::Result<()>
{
    let stack = Stack::start_with(|c| c.visibility_timeout = Some(2)).await?;
    let customer = "919811000004";
    // The consumers are down; the customer writes three times.
    stack.running.consumers.kill();
    for i in 0..3 {
        let body = text_webhook(
            customer,
            "Asha",
            &format!("wamid.lost-{i}"),
            &format!("lost {i}"),
        );
        let (code, _) = stack.post_webhook(PARTNER_CHANNEL, &body).await?;
        assert_eq!(code, 200);
    }
    // A consumer takes all three in one batch and dies before deleting
    // any: they come back together once hidden no more.
    let queue = stack.running.resources.queue_url("InboundQueue")?;
    let taken = stack
        .running
        .gateway
        .sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .send()
        .await?
        .messages
        .unwrap_or_default();
    assert_eq!(taken.len(), 3);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stack.running.consumers.start();
    let stored = wait_stored(
        &stack.store(),
        &["wamid.lost-0", "wamid.lost-1", "wamid.lost-2"],
    )
    .await?;
    let order: Vec<(String, u64)> = stored
        .iter()
        .map(|m| (m.preview.clone(), m.inbound_seq))
        .collect();
    assert_eq!(
        order,
        vec![
            ("lost 0".to_owned(), 1),
            ("lost 1".to_owned(), 2),
            ("lost 2".to_owned(), 3)
        ],
        "stored in the order written"
    );
    stack.stop().await;
    Ok(())
}

/// SQS hands a FIFO group to one receiver at a time: while any of a
/// customer's messages is in flight, no other receive gets their later
/// ones. moto's receives raced (two at once both handed out one group), and
/// a customer's later message was stored before an earlier one; the local
/// stack's moto runs each receive's walk alone.
#[tokio::test]
async fn a_customer_is_handed_to_one_receiver_at_a_time() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack.running.consumers.kill();
    let sqs = stack.running.gateway.sqs.clone();
    let queue = stack.running.resources.queue_url("InboundQueue")?;
    let receive = || async {
        let got = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .visibility_timeout(300)
            .send()
            .await?;
        anyhow::Ok(
            got.messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.body)
                .collect::<Vec<String>>(),
        )
    };
    let mut receivers_of: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    let mut taken = 0;
    // A race: five rounds, each of 40 new customers writing 5 messages
    // each (interleaved as they would arrive), then eight receives at once
    // (nothing deleted, so every customer stays in flight).
    for round in 0..5 {
        for i in 0..5 {
            for first in (0..40).step_by(10) {
                let entries = (first..first + 10)
                    .map(|g| {
                        aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                            .id(format!("e{g}"))
                            .message_body(format!("{round}-{g}/{i}"))
                            .message_group_id(format!("customer-{round}-{g}"))
                            .message_deduplication_id(format!("{round}-{g}-{i}"))
                            .build()
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                sqs.send_message_batch()
                    .queue_url(&queue)
                    .set_entries(Some(entries))
                    .send()
                    .await?;
            }
        }
        let batches = futures_util::future::join_all((0..8).map(|_| receive())).await;
        for (n, batch) in batches.into_iter().enumerate() {
            for body in batch? {
                let (customer, _) = body.split_once('/').unwrap_or_default();
                let receiver = round * 8 + n;
                let seen = receivers_of.entry(customer.to_owned()).or_default();
                if !seen.contains(&receiver) {
                    seen.push(receiver);
                }
                taken += 1;
            }
        }
    }
    let shared: Vec<_> = receivers_of.iter().filter(|(_, r)| r.len() > 1).collect();
    assert!(
        shared.is_empty(),
        "customers handed to two receives at once: {shared:?}"
    );
    assert!(
        taken >= 40,
        "every customer's first message was handed out ({taken})"
    );
    stack.stop().await;
    Ok(())
}

/// Lambda stops an invocation at its `Timeout`; the local event source
/// mapping does too, so a batch is never still being worked on when its
/// visibility timeout hands it out again (which let a customer's later
/// message be stored before an earlier one).
#[tokio::test]
async fn a_consumer_running_past_its_timeout_is_stopped_and_its_batch_retried() -> anyhow::Result<()>
{
    let stack = Stack::start_with(|c| {
        c.visibility_timeout = Some(2);
        c.consumer_timeout = Some(Duration::from_secs(1));
        c.standard_pollers = 1;
    })
    .await?;
    // Communication Master takes every copy and never answers in time.
    switch(&stack, "provider.timeout=1").await?;
    let body = text_webhook("919811000005", "Asha", "wamid.fault-5", "hello");
    assert_eq!(stack.post_webhook(PARTNER_CHANNEL, &body).await?.0, 200);
    // The one forward poller is not held for the 11 s the answer takes:
    // stopped at 1 s, the copy is back 2 s after it was received.
    let forwards = || {
        stack
            .running
            .recorder
            .requests()
            .into_iter()
            .filter(|r| r.path == "/communicationmaster/webhook")
            .count()
    };
    eventually(Duration::from_secs(8), || async {
        Ok((forwards() >= 2).then_some(()))
    })
    .await?;
    switch(&stack, "off").await?;
    stack.stop().await;
    Ok(())
}
