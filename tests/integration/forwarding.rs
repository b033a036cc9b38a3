use std::time::Duration;

use serde_json::Value;
use smart_chat_tests::*;

async fn forwarded(stack: &Stack) -> anyhow::Result<Vec<Value>> {
    Ok(stack
        .recorded()
        .await?
        .into_iter()
        .filter(|r| r["path"] == "/communicationmaster/webhook")
        .collect())
}

#[tokio::test]
async fn every_inbound_body_is_forwarded_byte_for_byte() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    // Odd spacing and key order: the copy must be the bytes as received.
    let body = format!(
        "{}  \n",
        fixture("webhook_text.json").replace(
            "\"object\": \"whatsapp_business_account\"",
            "\"object\":\"whatsapp_business_account\""
        )
    );
    assert_eq!(stack.post_webhook(PARTNER_CHANNEL, &body).await?.0, 200);
    let got = eventually(Duration::from_secs(10), || async {
        Ok(forwarded(&stack)
            .await?
            .into_iter()
            .find(|r| r["answered"] == 200))
    })
    .await?;
    assert_eq!(got["raw"], body.as_str());
    assert_eq!(got["headers"]["x-smartchat-channel"], PARTNER_CHANNEL);
    assert_eq!(got["headers"]["content-type"], "application/json");
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn communication_master_being_down_neither_delays_nor_loses_anything() -> anyhow::Result<()> {
    let stack = Stack::start_with(|c| c.visibility_timeout = Some(1)).await?;
    stack.recorder_fails(503, 3).await?;

    let body = text_webhook("919800000061", "F", "wamid.fwd-1", "while CM is down");
    let started = std::time::Instant::now();
    assert_eq!(stack.post_webhook(PARTNER_CHANNEL, &body).await?.0, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the webhook does not wait for Communication Master"
    );

    // The main path is unaffected...
    wait_stored(&stack.store(), &["wamid.fwd-1"]).await?;
    // ...and the copy arrives once Communication Master answers again.
    let attempts = eventually(Duration::from_secs(30), || async {
        let all = forwarded(&stack).await?;
        Ok(all.iter().any(|r| r["answered"] == 200).then_some(all))
    })
    .await?;
    let statuses: Vec<_> = attempts
        .iter()
        .map(|r| r["answered"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        statuses,
        vec![503, 503, 503, 200],
        "retried until delivered, delivered once"
    );
    assert!(attempts.iter().all(|r| r["raw"] == body.as_str()));
    stack.stop().await;
    Ok(())
}

/// A batch's bodies go to Communication Master side by side: one it is
/// slow to answer (here: all of them, held past the 10 s limit) holds back
/// none of the others, and each unanswered one is handed back for retry.
#[tokio::test]
async fn a_slow_answer_holds_back_none_of_the_batch() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let records: Vec<(String, String)> = (0..10)
        .map(|i| (format!("91982000000{i}"), format!("wamid.fwd-slow-{i}")))
        .collect();
    let refs: Vec<(&str, &str, Option<&str>)> = records
        .iter()
        .map(|(c, w)| (c.as_str(), w.as_str(), Some("hello")))
        .collect();
    let event = inbound_sqs_event(&refs)?;
    stack
        .running
        .faults
        .set(local_gateway::faults::parse("provider.timeout=1").map_err(anyhow::Error::msg)?);
    let functions = stack.running.gateway.clone();
    let batch = tokio::spawn(async move { functions.functions.invoke_sqs("forward", event).await });
    // All ten are with Communication Master at once.
    eventually(Duration::from_secs(9), || async {
        Ok((stack.running.recorder.most_in_flight() >= 10).then_some(()))
    })
    .await?;
    let answer = batch.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
    stack.running.faults.off();
    assert_eq!(failed_ids(&answer).len(), 10, "each is retried by SQS");
    stack.stop().await;
    Ok(())
}
