//! Context-driven conversations: a context change naming one of the
//! team's fields ends the customer's chat; their next message opens a new
//! one carrying the new context; other fields are kept on the customer.

use std::time::Duration;

use domain::channel::Stakeholder;
use domain::chat::{ChatStatus, ChatStore};
use domain::secret::Secret;
use serde_json::{Value, json};
use smart_chat_tests::*;

const TOKEN: &str = "internal-token-for-context-tests";

async fn context_change(stack: &Stack, customer: &str, context: Value) -> anyhow::Result<Value> {
    let res = stack
        .http
        .post(stack.url("/api/webhook/context_change"))
        .header("x-internal-token", TOKEN)
        .json(&json!({"customer": customer, "customer_type": "Partner", "context": context}))
        .send()
        .await?;
    let status = res.status().as_u16();
    let body: Value = res.json().await?;
    anyhow::ensure!(status == 200, "context change answered {status}: {body}");
    Ok(body["data"].clone())
}

#[tokio::test]
async fn a_context_change_ends_the_conversation_and_the_next_message_opens_a_new_one()
-> anyhow::Result<()> {
    let stack = Stack::start_with(|c| c.internal_token = Some(Secret::new(TOKEN.into()))).await?;
    let mut agent = stack
        .online_agent("ctx", &[Stakeholder::Partner], 5)
        .await?;
    let first = stack
        .customer_writes(
            PARTNER_CHANNEL,
            "919600000001",
            "wamid.ctx-1",
            "when are my documents checked?",
        )
        .await?;
    eventually(Duration::from_secs(5), || async {
        let chat = stack.chat(&first.chat_id).await?;
        Ok(chat.assigned_to.is_some().then_some(()))
    })
    .await?;
    agent
        .request("join_chat", json!({"chat_id": first.chat_id}))
        .await?;

    // A field the Partner rules do not list: kept on the customer only.
    let kept = context_change(&stack, "919600000001", json!({"city": "Pune"})).await?;
    assert_eq!(kept["new_conversation"], false, "{kept}");
    assert_eq!(stack.chat(&first.chat_id).await?.status, ChatStatus::Active);

    // documents_status: the conversation ends, resolved by the system.
    let ended = context_change(
        &stack,
        "919600000001",
        json!({"documents_status": "approved"}),
    )
    .await?;
    assert_eq!(ended["new_conversation"], true, "{ended}");
    assert_eq!(ended["ended_chat"], json!(first.chat_id));
    let closed = stack.chat(&first.chat_id).await?;
    assert_eq!(closed.status, ChatStatus::Resolved);
    assert_eq!(closed.status_updated_by.as_deref(), Some("system"));
    assert_eq!(closed.assigned_to, None);
    assert_eq!(closed.rating_asked_at, None, "no rating asked");
    let pushed = agent
        .expect("chat_status_updated", Duration::from_secs(3))
        .await?;
    assert_eq!(pushed["data"]["reason"], "context_change", "{pushed}");
    assert_eq!(pushed["data"]["by"], "system");
    stack.settled().await?;
    assert!(
        stack
            .recorded()
            .await?
            .iter()
            .all(|r| r["body"]["template"]["name"] != "resolution_rating"),
        "a context change sends no rating question"
    );
    assert_eq!(
        stack.store().counts().await?,
        stack.store().recount().await?
    );

    // The next message opens a new chat with the context as it is now.
    let second = stack
        .customer_writes(
            PARTNER_CHANNEL,
            "919600000001",
            "wamid.ctx-2",
            "thanks, can I drive now?",
        )
        .await?;
    assert_ne!(second.chat_id, first.chat_id, "a new conversation");
    assert_eq!(second.status, ChatStatus::Active);
    let context = second.context.clone().unwrap_or_default();
    assert_eq!(context.get("documents_status"), Some(&json!("approved")));
    assert_eq!(context.get("city"), Some(&json!("Pune")));
    assert_eq!(
        stack.chat(&first.chat_id).await?.status,
        ChatStatus::Resolved
    );

    // The history shows both, each with its context.
    let history = agent
        .request("fetch_context_history", json!({"customer": "919600000001"}))
        .await?;
    let chats = history["data"]["chats"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(chats.len(), 2, "{history}");
    assert_eq!(chats[0]["chat_id"], json!(second.chat_id), "newest first");
    assert_eq!(chats[0]["context"]["documents_status"], "approved");
    assert!(chats[1].get("context").is_none(), "the first chat had none");

    // A change when the customer has no chat with the team: nothing to end.
    let none = context_change(&stack, "919600000099", json!({"dco_status": "done"})).await?;
    assert_eq!(
        (none["new_conversation"].clone(), none["ended_chat"].clone()),
        (json!(true), Value::Null)
    );

    // Admins change the rules: now `city` starts a new conversation.
    let admin = stack.admin_token().await?;
    let (status, bad) = stack
        .call(
            reqwest::Method::PUT,
            "/api/automations/context",
            Some(&admin),
            Some(json!({"Partner": ["City Name"]})),
        )
        .await?;
    assert_eq!(status, 400, "{bad}");
    let (status, saved) = stack
        .call(
            reqwest::Method::PUT,
            "/api/automations/context",
            Some(&admin),
            Some(json!({"Partner": ["city"], "Customer": []})),
        )
        .await?;
    assert_eq!(status, 200, "{saved}");
    let (_, shown) = stack
        .call(
            reqwest::Method::GET,
            "/api/automations/context",
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(shown["data"]["source"], "stored");
    assert_eq!(shown["data"]["settings"]["Partner"], json!(["city"]));
    let docs = context_change(
        &stack,
        "919600000001",
        json!({"documents_status": "expired"}),
    )
    .await?;
    assert_eq!(docs["new_conversation"], false, "no longer a rule: {docs}");
    let moved = context_change(&stack, "919600000001", json!({"city": "Mumbai"})).await?;
    assert_eq!(moved["ended_chat"], json!(second.chat_id), "{moved}");
    stack.stop().await;
    Ok(())
}
