//! Presence and round-robin assignment: fairness, capacity, the waiting
//! line, hand-off on going offline or disconnecting, admins assigning by
//! hand, and no double assignment under many concurrent consumers.

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use futures_util::stream::{self, StreamExt};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use domain::channel::{ChannelId, Stakeholder};
use domain::chat::ChatStore;
use domain::chat::{Chat, ChatId};
use domain::executive::ExecutiveId;
use domain::routing::assignment::RoutingStore;

use smart_chat_tests::{PARTNER_CHANNEL, Stack, eventually, inbound_sqs_event};

const WAIT: Duration = Duration::from_secs(15);

fn id(v: &str) -> ExecutiveId {
    ExecutiveId::parse(v).expect("test id")
}

/// Open chats per owner, from the owners' index, and every chat id seen.
async fn owners(stack: &Stack, agents: &[&str]) -> anyhow::Result<HashMap<String, Vec<ChatId>>> {
    let mut found = HashMap::new();
    for a in agents {
        let chats = stack.store().assigned_chats(&id(a), 1000).await?;
        found.insert(
            (*a).to_owned(),
            chats.into_iter().map(|c| c.chat_id).collect(),
        );
    }
    Ok(found)
}

/// A customer writes on the Partner channel: their chat once stored.
async fn customer_writes(stack: &Stack, customer: &str, text: &str) -> anyhow::Result<Chat> {
    let wa = format!("wamid.{customer}-{}", text.len());
    stack
        .customer_writes(PARTNER_CHANNEL, customer, &wa, text)
        .await
}

/// The chat once its owner is `want` (None: waiting in the line).
async fn owner_becomes(stack: &Stack, chat: &ChatId, want: Option<&str>) -> anyhow::Result<Chat> {
    eventually(WAIT, || async {
        let c = stack.store().chat(chat).await?;
        Ok(c.filter(|c| c.assigned_to.as_ref().map(ExecutiveId::as_str) == want))
    })
    .await
}

#[tokio::test]
async fn round_robin_is_fair_across_three_agents_over_300_chats() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let agents = ["rr-a", "rr-b", "rr-c"];
    let mut dashes = Vec::new();
    for a in agents {
        dashes.push(stack.online_agent(a, &[Stakeholder::Partner], 200).await?);
    }
    let store = stack.store();
    let channel = ChannelId::parse(PARTNER_CHANNEL).map_err(anyhow::Error::msg)?;
    // 300 new chats, routed five at a time as concurrent consumers would.
    let results: Vec<anyhow::Result<String>> = stream::iter(0..300)
        .map(|i| {
            let store = store.clone();
            let channel = channel.clone();
            let pusher = stack.running.gateway.functions.ws_events.pusher.clone();
            async move {
                let customer = domain::customer::SenderId::parse(&format!("9198000{i:05}"))
                    .map_err(anyhow::Error::msg)?;
                let fresh = Chat::open(
                    customer,
                    None,
                    Stakeholder::Partner,
                    channel,
                    chrono::Utc::now(),
                );
                let chat = store.create_chat(&fresh).await?;
                let routed =
                    domain::routing::assignment::route(&store, &pusher, chat, None).await?;
                Ok(match routed {
                    domain::routing::assignment::Routed::Assigned(_) => "assigned".to_owned(),
                    other => format!("{other:?}"),
                })
            }
        })
        .buffer_unordered(5)
        .collect()
        .await;
    let outcomes = results
        .into_iter()
        .collect::<anyhow::Result<Vec<String>>>()?;
    // `NotNeeded`: a sweep (an agent coming online drains the line) got
    // there first; the counts below show every chat has one owner.
    let missed: Vec<&String> = outcomes
        .iter()
        .filter(|o| *o != "assigned" && *o != "NotNeeded")
        .collect();
    assert!(missed.is_empty(), "every chat found an owner: {missed:?}");
    let found = owners(&stack, &agents).await?;
    let counts: Vec<usize> = agents.iter().map(|a| found[*a].len()).collect();
    assert_eq!(counts.iter().sum::<usize>(), 300, "{counts:?}");
    let (min, max) = (counts.iter().min(), counts.iter().max());
    assert!(
        max.zip(min).is_some_and(|(x, n)| x - n <= 1),
        "round robin is fair: {counts:?}"
    );
    // The routing records agree with the chats.
    let presence = store.presence(&agents.map(id)).await?;
    for a in agents {
        assert_eq!(presence[&id(a)].open_chats as usize, found[a].len(), "{a}");
    }
    // Agents heard about their chats.
    let frame = dashes[0].expect("chat_assigned", WAIT).await?;
    assert_eq!(frame["data"]["reason"], "round_robin");
    stack.stop().await;
    Ok(())
}

/// One inbound text per customer, as one SQS batch.
fn inbound_event(batch: usize, customers: &[String]) -> anyhow::Result<SqsEvent> {
    let ids: Vec<String> = (0..customers.len())
        .map(|i| format!("wamid.concurrent-{batch}-{i}"))
        .collect();
    let records: Vec<(&str, &str, Option<&str>)> = customers
        .iter()
        .zip(&ids)
        .map(|(c, wa)| (c.as_str(), wa.as_str(), Some("namaste")))
        .collect();
    inbound_sqs_event(&records)
}

#[tokio::test]
async fn twenty_concurrent_consumers_never_assign_a_chat_twice() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let agents = ["cc-a", "cc-b", "cc-c"];
    let mut dashes = Vec::new();
    for a in agents {
        dashes.push(stack.online_agent(a, &[Stakeholder::Partner], 40).await?);
    }
    // 20 consumers at once, five customers each: 100 new chats.
    let events: Vec<SqsEvent> = (0..20)
        .map(|b| {
            let customers: Vec<String> = (0..5).map(|i| format!("9197{b:03}{i:05}")).collect();
            inbound_event(b, &customers)
        })
        .collect::<anyhow::Result<_>>()?;
    let functions = &stack.running.gateway.functions;
    let runs = futures_util::future::join_all(
        events
            .into_iter()
            .map(|e| inbound::handle(&functions.inbound, LambdaEvent::new(e, Context::default()))),
    )
    .await;
    for r in runs {
        let r = r.map_err(|e| anyhow::anyhow!("{e}"))?;
        assert!(r.batch_item_failures.is_empty(), "every record handled");
    }
    let found = owners(&stack, &agents).await?;
    let mut all: Vec<&ChatId> = found.values().flatten().collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "no chat is in two owners' lists");
    assert_eq!(
        total,
        100,
        "every chat has exactly one owner: {:?}",
        found.values().map(Vec::len).collect::<Vec<_>>()
    );
    let presence = stack.store().presence(&agents.map(id)).await?;
    for a in agents {
        let owned = found[a].len();
        assert_eq!(
            presence[&id(a)].open_chats as usize,
            owned,
            "{a}'s count matches its chats"
        );
        assert!(owned <= 40, "{a} is within capacity");
        // Each owned chat names that owner.
        for chat in &found[a] {
            let c = stack.chat(chat).await?;
            assert_eq!(c.assigned_to, Some(id(a)));
        }
    }
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn capacity_holds_and_waiting_chats_go_out_oldest_first_when_room_appears()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut solo = stack
        .online_agent("cap-a", &[Stakeholder::Partner], 2)
        .await?;
    let mut chats = Vec::new();
    for i in 0..4 {
        chats.push(customer_writes(&stack, &format!("9196000000{i}"), "help").await?);
    }
    owner_becomes(&stack, &chats[0].chat_id, Some("cap-a")).await?;
    owner_becomes(&stack, &chats[1].chat_id, Some("cap-a")).await?;
    for c in &chats[2..] {
        let now = stack.chat(&c.chat_id).await?;
        assert_eq!(now.assigned_to, None, "over capacity: the chat waits");
    }
    let line = stack
        .store()
        .unassigned_chats(Stakeholder::Partner, 10)
        .await?;
    let waiting: Vec<_> = line.iter().map(|c| c.chat_id.clone()).collect();
    assert_eq!(
        waiting,
        vec![chats[2].chat_id.clone(), chats[3].chat_id.clone()],
        "oldest first"
    );

    // Resolving frees room: the longest-waiting chat goes to the agent.
    let reply = solo
        .request(
            "update_chat_status",
            json!({"chat_id": chats[0].chat_id, "status": "resolved"}),
        )
        .await?;
    assert_eq!(reply["data"]["changed"], true, "{reply}");
    owner_becomes(&stack, &chats[2].chat_id, Some("cap-a")).await?;
    let wanted = json!(chats[2].chat_id);
    solo.expect_where("chat_assigned", |d| d["chat_id"] == wanted, WAIT)
        .await?;
    let resolved = stack.chat(&chats[0].chat_id).await?;
    assert_eq!(resolved.assigned_to, None, "a resolved chat has no owner");

    // Someone else coming online takes the rest of the line.
    let mut other = stack
        .online_agent("cap-b", &[Stakeholder::Partner], 5)
        .await?;
    owner_becomes(&stack, &chats[3].chat_id, Some("cap-b")).await?;
    let status = solo
        .expect_where("executive_status", |d| d["executive_id"] == "cap-b", WAIT)
        .await?;
    assert_eq!(status["data"]["status"], "online");
    let frame = other.expect("chat_assigned", WAIT).await?;
    assert_eq!(frame["data"]["executive_id"], "cap-b");
    let presence = stack.store().presence(&[id("cap-a"), id("cap-b")]).await?;
    assert_eq!(presence[&id("cap-a")].open_chats, 2);
    assert_eq!(presence[&id("cap-b")].open_chats, 1);
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn going_offline_hands_chats_on_and_admins_assign_by_hand() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut a = stack
        .online_agent("off-a", &[Stakeholder::Partner], 10)
        .await?;
    let first = customer_writes(&stack, "919500000001", "first").await?;
    owner_becomes(&stack, &first.chat_id, Some("off-a")).await?;
    let b = stack
        .online_agent("off-b", &[Stakeholder::Partner], 10)
        .await?;
    let admin_token = stack.admin_token().await?;
    let mut admin = stack.connect(&admin_token).await?;

    // A goes offline: their chat goes to B.
    let reply = a
        .request("set_status", json!({"status": "offline"}))
        .await?;
    assert_eq!(reply["data"]["status"], "offline");
    owner_becomes(&stack, &first.chat_id, Some("off-b")).await?;
    let moved = admin.expect("chat_reassigned", WAIT).await?;
    assert_eq!(moved["data"]["from"], "off-a");
    assert_eq!(moved["data"]["to"], "off-b");
    assert_eq!(moved["data"]["reason"], "offline");

    // B's last connection closes: B is offline, the chat waits (A is offline too).
    b.close().await;
    owner_becomes(&stack, &first.chat_id, None).await?;
    let gone = admin
        .expect_where("executive_status", |d| d["executive_id"] == "off-b", WAIT)
        .await?;
    assert_eq!(gone["data"]["status"], "offline");
    let back = admin.expect("chat_reassigned", WAIT).await?;
    assert_eq!(
        back["data"]["to"],
        Value::Null,
        "back in the waiting line: {back}"
    );

    // Admins assign by hand; agents may not; bad targets are refused.
    let denied = a
        .request(
            "assign_chat",
            json!({"chat_id": first.chat_id, "executive_id": "off-a"}),
        )
        .await?;
    assert_eq!(denied["data"]["code"], "forbidden");
    let unknown = admin
        .request(
            "assign_chat",
            json!({"chat_id": first.chat_id, "executive_id": "nobody"}),
        )
        .await?;
    assert_eq!(unknown["data"]["code"], "not_found");
    let bad = admin
        .request(
            "assign_chat",
            json!({"chat_id": first.chat_id, "executive_id": "no spaces"}),
        )
        .await?;
    assert_eq!(bad["data"]["code"], "invalid_data");
    let given = admin
        .request(
            "assign_chat",
            json!({"chat_id": first.chat_id, "executive_id": "off-a"}),
        )
        .await?;
    assert_eq!(given["data"]["changed"], true, "{given}");
    assert_eq!(given["data"]["chat"]["assigned_to"], "off-a");
    let told = a
        .expect_where("chat_assigned", |d| d["reason"] == "manual", WAIT)
        .await?;
    assert_eq!(told["data"]["executive_id"], "off-a");
    let again = admin
        .request(
            "assign_chat",
            json!({"chat_id": first.chat_id, "executive_id": "off-a"}),
        )
        .await?;
    assert_eq!(again["data"]["changed"], false);
    let presence = stack.store().presence(&[id("off-a"), id("off-b")]).await?;
    assert_eq!(presence[&id("off-a")].open_chats, 1);
    assert_eq!(presence[&id("off-b")].open_chats, 0);
    assert!(!presence[&id("off-b")].online);

    // A bad status is refused, the connection stays usable.
    let refused = a.request("set_status", json!({"status": "away"})).await?;
    assert_eq!(refused["data"]["code"], "invalid_data");
    stack.stop().await;
    Ok(())
}
