//! Internal notes: stored in the conversation for teammates, pushed to the
//! chat's watchers, never sent to WhatsApp, and moving neither the chat's
//! place in the lists nor anyone's wait.

use std::time::Duration;

use domain::channel::Stakeholder;
use serde_json::json;
use smart_chat_tests::*;

#[tokio::test]
async fn notes_reach_teammates_and_never_the_customer() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut agent = stack
        .online_agent("noter", &[Stakeholder::Partner], 5)
        .await?;
    let chat = stack
        .customer_writes(
            PARTNER_CHANNEL,
            "919700000091",
            "wamid.note-1",
            "where is my payout?",
        )
        .await?;
    let mut teammate = stack.connect(&stack.admin_token().await?).await?;
    teammate
        .request("join_chat", json!({"chat_id": chat.chat_id}))
        .await?;

    let reply = agent
        .request(
            "add_note",
            json!({"chat_id": chat.chat_id, "note": "Payout team says *Monday*; ask for UPI id"}),
        )
        .await?;
    assert_eq!(reply["event"], "add_note", "{reply}");
    assert_eq!(reply["data"]["message"]["kind"], "note");
    let pushed = teammate
        .expect_where(
            "new_message",
            |d| d["message"]["kind"] == "note",
            Duration::from_secs(5),
        )
        .await?;
    assert_eq!(pushed["data"]["message"]["sender"], "noter");
    assert_eq!(
        pushed["data"]["message"]["message"],
        "Payout team says *Monday*; ask for UPI id"
    );

    // Never sent; the chat keeps its place, preview and waiting customer.
    stack.settled().await?;
    assert!(
        stack
            .recorded()
            .await?
            .iter()
            .all(|r| r["body"]["to"] != "919700000091"),
        "nothing went to the customer"
    );
    let after = stack.chat(&chat.chat_id).await?;
    assert_eq!(after.last_message, chat.last_message);
    assert_eq!(after.last_message_time, chat.last_message_time);
    assert!(after.awaiting_reply, "a note is no answer");
    assert_eq!(after.wait_started_at, chat.wait_started_at);
    assert_eq!(after.message_count, chat.message_count + 1);
    let history = agent
        .request("fetch_chats_by_user", json!({"chat_id": chat.chat_id}))
        .await?;
    let kinds: Vec<_> = history["data"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["kind"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("note"), json!("text")]);

    // Refusals: empty, too long, a chat the caller cannot see.
    for (data, code) in [
        (
            json!({"chat_id": chat.chat_id, "note": "   "}),
            "invalid_data",
        ),
        (
            json!({"chat_id": chat.chat_id, "note": "x".repeat(4097)}),
            "invalid_data",
        ),
        (
            json!({"chat_id": "0193a6d2-0000-7000-8000-000000000000", "note": "hi"}),
            "not_found",
        ),
    ] {
        let refused = agent.request("add_note", data).await?;
        assert_eq!(refused["event"], "error", "{refused}");
        assert_eq!(refused["data"]["code"], code, "{refused}");
    }
    stack.stop().await;
    Ok(())
}
