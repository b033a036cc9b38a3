//! The scheduled half: the SLA scan (alert and escalation exactly once per
//! waiting episode, under overlapping and retried scans; nothing after an
//! agent's reply), the "Awaiting Customer Response" tag, counter repair
//! and the local scheduler. Thresholds are seconds here.

use std::time::Duration;

use serde_json::{Value, json};

use domain::channel::Stakeholder;
use domain::chat::Chat;
use domain::chat::ChatStore;
use domain::chat::tags::AWAITING_CUSTOMER_RESPONSE;
use domain::customer::SenderId;
use domain::routing::sla::SlaSettings;

use smart_chat_tests::{PARTNER_CHANNEL, Stack, eventually};

const WAIT: Duration = Duration::from_secs(15);
const GROUP: &str = "910000000011";
const LEAD: &str = "910000000022";

async fn sla_stack(alert: u64, escalate: u64) -> anyhow::Result<Stack> {
    let settings = SlaSettings::new(
        alert,
        escalate,
        Some(SenderId::parse(GROUP).map_err(anyhow::Error::msg)?),
        Some(SenderId::parse(LEAD).map_err(anyhow::Error::msg)?),
    )
    .map_err(anyhow::Error::msg)?;
    Stack::start_with(|cfg| cfg.sla = settings).await
}

async fn customer_writes(stack: &Stack, customer: &str, wa: &str) -> anyhow::Result<Chat> {
    stack
        .customer_writes(PARTNER_CHANNEL, customer, wa, "koi hai?")
        .await
}

/// Alert templates the provider was asked to send to `to`.
async fn alerts_to(stack: &Stack, to: &str) -> anyhow::Result<Vec<Value>> {
    Ok(stack
        .recorded()
        .await?
        .into_iter()
        .filter(|r| r["body"]["to"] == to)
        .collect())
}

/// The alerts sent to `to`, once there are `n`.
async fn wait_alerts(stack: &Stack, to: &str, n: usize) -> anyhow::Result<Vec<Value>> {
    eventually(WAIT, || async {
        let a = alerts_to(stack, to).await?;
        Ok((a.len() >= n).then_some(a))
    })
    .await
}

/// Runs `n` scans at once; how many alerts and escalations they raised.
async fn overlapping_scans(stack: &Stack, n: usize) -> anyhow::Result<(u64, u64)> {
    let runs = futures_util::future::join_all((0..n).map(|_| stack.run_schedule("sla-scan"))).await;
    let mut raised = (0, 0);
    for r in runs {
        let r = r?;
        raised.0 += r["alerts"].as_u64().unwrap_or(0);
        raised.1 += r["escalations"].as_u64().unwrap_or(0);
    }
    Ok(raised)
}

#[tokio::test]
async fn alert_and_escalation_come_once_per_episode_however_scans_overlap_or_retry()
-> anyhow::Result<()> {
    let stack = sla_stack(2, 4).await?;
    let mut agent = stack
        .online_agent("sla-a", &[Stakeholder::Partner], 10)
        .await?;
    let chat = customer_writes(&stack, "919400000001", "wamid.sla-1").await?;
    let episode = chat
        .wait_started_at
        .ok_or_else(|| anyhow::anyhow!("no episode"))?;

    // Before the threshold nothing happens.
    assert_eq!(overlapping_scans(&stack, 2).await?, (0, 0));
    tokio::time::sleep(Duration::from_millis(2300)).await;
    // Five scans at once: one alert.
    assert_eq!(overlapping_scans(&stack, 5).await?, (1, 0));
    let frame = agent.expect("sla_alert", WAIT).await?;
    assert_eq!(frame["data"]["chat_id"], json!(chat.chat_id));
    assert_eq!(frame["data"]["level"], "alert");
    assert_eq!(frame["data"]["wait_started_at"], json!(episode));
    assert_eq!(frame["data"]["assigned_to"], "sla-a");
    // A retried scan (the same event again) raises nothing.
    let event = serde_json::from_value(local_gateway::scheduler::scheduled_event(
        "SlaScanFunctionEveryMinute",
        chrono::Utc::now(),
    ))?;
    let retried = stack.run_scheduled_event("sla-scan", event).await?;
    assert_eq!(
        (retried["alerts"].as_u64(), retried["escalations"].as_u64()),
        (Some(0), Some(0))
    );
    let group = wait_alerts(&stack, GROUP, 1).await?;
    assert_eq!(group.len(), 1, "one WhatsApp alert to the group");
    assert_eq!(group[0]["body"]["type"], "template");
    assert_eq!(group[0]["body"]["template"]["name"], "sla_alert");

    // Past the escalation threshold: one escalation, however many scans.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(overlapping_scans(&stack, 5).await?, (0, 1));
    assert_eq!(overlapping_scans(&stack, 3).await?, (0, 0));
    let escalated = agent
        .expect_where("sla_alert", |d| d["level"] == "escalation", WAIT)
        .await?;
    assert_eq!(escalated["data"]["chat_id"], json!(chat.chat_id));
    let lead = wait_alerts(&stack, LEAD, 1).await?;
    assert_eq!(lead.len(), 1, "one escalation to the shift lead");
    assert_eq!(lead[0]["body"]["template"]["name"], "sla_escalation");
    assert!(
        agent.quiet("sla_alert", Duration::from_millis(500)).await,
        "no more alerts"
    );

    // The agent replies: the episode ends. The customer writes again: a new
    // episode, alerted once more in its own right.
    let reply = agent
        .request(
            "send_message",
            json!({"chat_id": chat.chat_id, "message": "Dekh raha hoon"}),
        )
        .await?;
    assert_eq!(reply["event"], "send_message", "{reply}");
    let answered = stack.chat(&chat.chat_id).await?;
    assert_eq!(answered.wait_started_at, None);
    assert!(answered.first_response_at.is_some());
    let again = customer_writes(&stack, "919400000001", "wamid.sla-2").await?;
    let second = again
        .wait_started_at
        .ok_or_else(|| anyhow::anyhow!("no second episode"))?;
    assert!(second > episode);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(overlapping_scans(&stack, 3).await?, (1, 0));
    let frame = agent
        .expect_where("sla_alert", |d| d["wait_started_at"] == json!(second), WAIT)
        .await?;
    assert_eq!(frame["data"]["level"], "alert");
    assert_eq!(wait_alerts(&stack, GROUP, 2).await?.len(), 2);

    // Breaches are counted for the team and the owner.
    let admin = stack.admin_token().await?;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (status, stats) = stack
        .call(
            reqwest::Method::GET,
            &format!("/api/stats/service?from={today}&to={today}"),
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(status, 200, "{stats}");
    let stats = &stats["data"];
    assert_eq!(stats["teams"]["Partner"]["sla_alerts"], 2, "{stats}");
    assert_eq!(stats["teams"]["Partner"]["sla_escalations"], 1);
    assert_eq!(stats["teams"]["Partner"]["first_responses"], 1);
    assert!(
        stats["teams"]["Partner"]["avg_first_response_secs"]
            .as_f64()
            .is_some_and(|s| s >= 4.0)
    );
    assert_eq!(stats["executives"]["sla-a"]["total"]["sla_alerts"], 2);
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_answered_customer_raises_nothing_and_carries_the_awaiting_tag() -> anyhow::Result<()> {
    let stack = sla_stack(1, 2).await?;
    let mut agent = stack
        .online_agent("sla-b", &[Stakeholder::Partner], 10)
        .await?;
    let chat = customer_writes(&stack, "919400000002", "wamid.sla-answered").await?;
    assert!(!chat.has_tag(AWAITING_CUSTOMER_RESPONSE));
    let reply = agent
        .request(
            "send_message",
            json!({"chat_id": chat.chat_id, "message": "Haan ji, bataiye"}),
        )
        .await?;
    assert_eq!(reply["event"], "send_message", "{reply}");
    let answered = stack.chat(&chat.chat_id).await?;
    assert!(
        answered.has_tag(AWAITING_CUSTOMER_RESPONSE),
        "agent wrote last: {:?}",
        answered.tags
    );
    assert_eq!(answered.wait_started_at, None);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(overlapping_scans(&stack, 3).await?, (0, 0));
    assert!(agent.quiet("sla_alert", Duration::from_millis(500)).await);
    stack.settled().await?;
    assert!(alerts_to(&stack, GROUP).await?.is_empty());
    assert!(alerts_to(&stack, LEAD).await?.is_empty());
    // The customer answers: the tag goes, a new wait begins.
    let back = customer_writes(&stack, "919400000002", "wamid.sla-answered-2").await?;
    assert!(!back.has_tag(AWAITING_CUSTOMER_RESPONSE), "{:?}", back.tags);
    assert!(back.wait_started_at.is_some());
    // Resolving ends the wait too: nothing to alert on.
    agent
        .request(
            "update_chat_status",
            json!({"chat_id": chat.chat_id, "status": "resolved"}),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(overlapping_scans(&stack, 2).await?, (0, 0));
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_local_scheduler_runs_the_scan_by_itself() -> anyhow::Result<()> {
    let settings = SlaSettings::new(1, 30, None, None).map_err(anyhow::Error::msg)?;
    let stack = Stack::start_with(|cfg| {
        cfg.sla = settings;
        cfg.schedule_period = Some(Duration::from_secs(1));
    })
    .await?;
    let mut agent = stack
        .online_agent("sla-c", &[Stakeholder::Partner], 10)
        .await?;
    let chat = customer_writes(&stack, "919400000003", "wamid.sla-scheduled").await?;
    let frame = agent.expect("sla_alert", WAIT).await?;
    assert_eq!(frame["data"]["chat_id"], json!(chat.chat_id));
    // No recipient configured: dashboards only, nothing sent.
    assert!(
        stack
            .recorded()
            .await?
            .iter()
            .all(|r| r["body"]["type"] != "template")
    );
    stack.stop().await;
    Ok(())
}

/// Changes the dashboard counters item behind the product's back.
async fn edit_counters(
    stack: &Stack,
    expression: &str,
    names: &[(&str, &str)],
    numbers: &[(&str, &str)],
) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut update = stack
        .running
        .dynamo
        .update_item()
        .table_name(&stack.store().tables().chats)
        .key("pk", AttributeValue::S("COUNTERS".into()))
        .key("sk", AttributeValue::S("DASHBOARD".into()))
        .update_expression(expression);
    for (k, v) in names {
        update = update.expression_attribute_names(*k, *v);
    }
    for (k, v) in numbers {
        update = update.expression_attribute_values(*k, AttributeValue::N((*v).to_owned()));
    }
    update.send().await?;
    Ok(())
}

#[tokio::test]
async fn counter_repair_fixes_drift_seen_twice_and_tells_dashboards() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    customer_writes(&stack, "919400000004", "wamid.sla-count").await?;
    let store = stack.store();
    let true_counts = store.recount().await?;
    assert_eq!(store.counts().await?, true_counts);
    let quiet = stack.run_schedule("counter-sync").await?;
    assert_eq!(quiet["drifting"], json!([]), "{quiet}");

    // Someone edits the counters by hand.
    edit_counters(&stack, "SET active = :a", &[], &[(":a", "999")]).await?;
    let admin = stack.admin_token().await?;
    let mut dash = stack.connect(&admin).await?;
    // Seen once: noted, not repaired (an index may lag a write).
    let first = stack.run_schedule("counter-sync").await?;
    assert_eq!(first["drifting"], json!(["counts.active"]), "{first}");
    assert_eq!(first["repaired"], json!([]));
    assert_eq!(store.counts().await?.total.active, 999);
    // Seen again, unchanged: repaired, and dashboards hear.
    let second = stack.run_schedule("counter-sync").await?;
    assert_eq!(second["repaired"], json!(["counts.active"]), "{second}");
    assert_eq!(store.counts().await?, true_counts);
    let stats = dash.expect("dashboard_stats", WAIT).await?;
    assert_eq!(stats["data"]["active"], true_counts.total.active);
    assert_eq!(
        stats["data"]["teams"],
        json!(true_counts.teams),
        "per team too"
    );
    let third = stack.run_schedule("counter-sync").await?;
    assert_eq!(third["drifting"], json!([]));

    // Counters written before the per-team figures existed: the repair
    // fills them in the same way (seen twice, then set).
    edit_counters(
        &stack,
        "REMOVE #a, #p",
        &[("#a", "active#Partner"), ("#p", "pending#Partner")],
        &[],
    )
    .await?;
    let noted = stack.run_schedule("counter-sync").await?;
    assert_eq!(
        noted["drifting"],
        json!(["counts.Partner.active", "counts.Partner.pending"]),
        "{noted}"
    );
    let filled = stack.run_schedule("counter-sync").await?;
    assert_eq!(filled["repaired"], noted["drifting"], "{filled}");
    assert_eq!(store.counts().await?, true_counts);
    stack.stop().await;
    Ok(())
}
