//! What the everyday operations cost in DynamoDB requests, end to end on
//! the local stack (every function's client is counted): a change that
//! adds a request to one of them fails here. The figures are kept in
//! README § Performance; lowering them is the performance work.

use std::collections::BTreeMap;

use domain::channel::Stakeholder;
use serde_json::json;
use smart_chat_tests::*;

fn total(m: &BTreeMap<String, u64>) -> u64 {
    store_total(m)
}

/// The cheapest of `runs` (other work on the stack can only add).
fn cheapest(runs: Vec<((), BTreeMap<String, u64>)>) -> anyhow::Result<BTreeMap<String, u64>> {
    fewest(runs)
        .map(|(_, spent)| spent)
        .ok_or_else(|| anyhow::anyhow!("no run"))
}

/// The cheapest of three webhooks (`body(i)`) until everything they set
/// off is done (the queues drained).
async fn webhook_cost(
    stack: &Stack,
    body: impl Fn(usize) -> String,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut runs = Vec::new();
    for i in 0..3 {
        let body = body(i);
        runs.push(
            stack
                .measured(async {
                    stack.post_webhook(PARTNER_CHANNEL, &body).await?;
                    stack.settled().await
                })
                .await?,
        );
    }
    cheapest(runs)
}

/// The cheaper of two runs of one dashboard request.
async fn frame_cost(
    stack: &Stack,
    dash: &mut Dashboard,
    event: &str,
    data: serde_json::Value,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut runs = Vec::new();
    for _ in 0..2 {
        runs.push(
            stack
                .measured(async { dash.request(event, data.clone()).await.map(|_| ()) })
                .await?,
        );
    }
    cheapest(runs)
}

#[tokio::test]
async fn everyday_operations_cost_a_known_number_of_store_requests() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut agent = stack
        .online_agent("counted", &[Stakeholder::Partner], 50)
        .await?;

    // A new customer's first message: stored, pushed, assigned.
    let first = webhook_cost(&stack, |i| {
        text_webhook(
            &format!("91977710000{i}"),
            "New",
            &format!("wamid.first-{i}"),
            "hello",
        )
    })
    .await?;
    // A text in an existing chat.
    let existing = webhook_cost(&stack, |i| {
        text_webhook(
            "919777100000",
            "New",
            &format!("wamid.next-{i}"),
            "and again",
        )
    })
    .await?;

    // Ten customers' texts in their existing chats, as one SQS batch: one
    // PutEvents for the batch's ten `message.received`.
    let customers: Vec<String> = (0..10).map(|i| format!("91977720000{i}")).collect();
    for (i, c) in customers.iter().enumerate() {
        stack
            .customer_writes(PARTNER_CHANNEL, c, &format!("wamid.batch-open-{i}"), "hi")
            .await?;
    }
    let ids: Vec<String> = (0..10).map(|i| format!("wamid.batch-{i}")).collect();
    let records: Vec<(&str, &str, Option<&str>)> = customers
        .iter()
        .zip(&ids)
        .map(|(c, wa)| (c.as_str(), wa.as_str(), Some("in a batch")))
        .collect();
    let event = inbound_sqs_event(&records)?;
    stack.settled().await?;
    let functions = &stack.running.gateway.functions;
    let (answer, batch) = stack
        .measured(async {
            inbound::handle(
                &functions.inbound,
                lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
        })
        .await?;
    anyhow::ensure!(failed_ids(&answer).is_empty(), "every record handled");
    assert_eq!(
        batch.get("EventBridge PutEvents"),
        Some(&1),
        "one PutEvents per batch: {batch:?}"
    );

    // An agent's answer until the provider accepted it.
    let chat = stack
        .customer_writes(PARTNER_CHANNEL, "919777100000", "wamid.ask", "any news?")
        .await?;
    let mut runs = Vec::new();
    for i in 0..3 {
        runs.push(
            stack
                .measured(async {
                    let r = agent
                        .request(
                            "send_message",
                            json!({"chat_id": chat.chat_id, "message": format!("answer {i}")}),
                        )
                        .await?;
                    anyhow::ensure!(r["event"] == "send_message", "{r}");
                    stack.settled().await
                })
                .await?,
        );
    }
    let send = cheapest(runs)?;

    // A chat list page and a history page.
    let list = frame_cost(
        &stack,
        &mut agent,
        "fetch_all_chats",
        json!({"customer_type": "Partner"}),
    )
    .await?;
    let history = frame_cost(
        &stack,
        &mut agent,
        "fetch_chats_by_user",
        json!({"chat_id": chat.chat_id}),
    )
    .await?;
    // An older page, scrolling up in the open chat.
    let first_page = agent
        .request(
            "fetch_chats_by_user",
            json!({"chat_id": chat.chat_id, "page_size": 2}),
        )
        .await?;
    let before = first_page["data"]["next_before"].clone();
    anyhow::ensure!(before.is_string(), "{first_page}");
    let older = frame_cost(
        &stack,
        &mut agent,
        "fetch_chats_by_user",
        json!({"chat_id": chat.chat_id, "page_size": 2, "before": before}),
    )
    .await?;

    eprintln!(
        "DynamoDB requests — first message of a new customer: {} {first:?}; text in an existing chat: {} {existing:?}; \
         agent send until accepted: {} {send:?}; fetch_all_chats page: {} {list:?}; fetch_chats_by_user page: {} {history:?}; \
         an older page: {} {older:?}; a batch of ten texts in existing chats: {} {batch:?}",
        total(&first),
        total(&existing),
        total(&send),
        total(&list),
        total(&history),
        total(&older),
        total(&batch),
    );
    // Today's figures (README § Performance): no operation may grow.
    assert!(total(&first) <= FIRST_MESSAGE, "{first:?}");
    assert!(total(&existing) <= EXISTING_CHAT, "{existing:?}");
    assert!(total(&send) <= AGENT_SEND, "{send:?}");
    assert!(total(&list) <= LIST_PAGE, "{list:?}");
    assert!(total(&history) <= HISTORY_PAGE, "{history:?}");
    assert!(total(&older) <= OLDER_PAGE, "{older:?}");
    assert!(total(&batch) <= 10 * EXISTING_CHAT, "{batch:?}");
    agent.close().await;
    stack.stop().await;
    Ok(())
}

// Measured 2026-11-29 (the cheapest of three runs; two for the pages).
const FIRST_MESSAGE: u64 = 17;
const EXISTING_CHAT: u64 = 5;
const AGENT_SEND: u64 = 10;
const LIST_PAGE: u64 = 7;
const HISTORY_PAGE: u64 = 5;
const OLDER_PAGE: u64 = 4;
