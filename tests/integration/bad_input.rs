use std::time::Duration;

use domain::channel::Stakeholder;
use domain::chat::ChatStatus;
use domain::chat::ChatStore;
use serde_json::json;
use smart_chat_tests::*;

#[tokio::test]
async fn bad_webhooks_get_clear_4xx_answers_and_nothing_is_stored() -> anyhow::Result<()> {
    let stack = Stack::start_with(|c| c.max_webhook_body = 4096).await?;
    let cases = [
        (PARTNER_CHANNEL, "{not json".to_owned(), 400, "bad_request"),
        (
            PARTNER_CHANNEL,
            r#"{"hello":"world"}"#.to_owned(),
            400,
            "bad_request",
        ),
        (
            PARTNER_CHANNEL,
            r#"{"entry":[{"changes":[{"value":{"messages":"not a list"}}]}]}"#.to_owned(),
            400,
            "bad_request",
        ),
        (PARTNER_CHANNEL, String::new(), 400, "bad_request"),
        ("1234567890", fixture("webhook_text.json"), 404, "not_found"),
        ("90990abc88", fixture("webhook_text.json"), 404, "not_found"),
        (
            PARTNER_CHANNEL,
            format!("{{\"entry\":[],\"pad\":\"{}\"}}", "x".repeat(5000)),
            413,
            "payload_too_large",
        ),
    ];
    for (channel, body, status, code) in cases {
        let (got, answer) = stack.post_webhook(channel, &body).await?;
        assert_eq!(got, status, "{channel} {body:.60}: {answer}");
        assert_eq!(answer["status"], 0, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // A valid envelope whose only message names nobody: accepted (a refusal
    // would be retried for days), nothing stored.
    let (got, answer) = stack
        .post_webhook(
            PARTNER_CHANNEL,
            r#"{"entry":[{"changes":[{"value":{"messages":[{"id":"x","type":"text","text":{"body":"no sender"}}]}}]}]}"#,
        )
        .await?;
    assert_eq!(got, 200, "{answer}");
    // A valid webhook afterwards is the only thing stored.
    stack
        .post_webhook(PARTNER_CHANNEL, &fixture("webhook_text.json"))
        .await?;
    let store = stack.store();
    wait_stored(&store, &["wamid.HBgMOTE5ODEyMzQ1Njc4FQIAEhggQ0E5RkE2QjQ1"]).await?;
    let chats = store
        .list_chats(ChatStatus::Active, Stakeholder::Partner, None, 10)
        .await?
        .0;
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].message_count, 1);
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_stays_usable() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut dash = stack.connect(&stack.admin_token().await?).await?;

    dash.send_raw("this is not json").await?;
    let e = dash.expect("error", Duration::from_secs(2)).await?;
    assert_eq!(e["data"]["code"], "bad_request", "{e}");

    let cases = [
        ("dance", json!({}), "unknown_event"),
        ("join_chat", json!({}), "invalid_data"),
        ("join_chat", json!({"chat_id": 42}), "invalid_data"),
        (
            "join_chat",
            json!({"chat_id": "not-a-chat"}),
            "invalid_data",
        ),
        (
            "join_chat",
            json!({"chat_id": "01a1fd83-bbb1-77aa-8fa7-6a6bac181c20"}),
            "not_found",
        ),
        (
            "fetch_chats_by_user",
            json!({"chat_id": "01a1fd83-bbb1-77aa-8fa7-6a6bac181c20"}),
            "not_found",
        ),
        (
            "fetch_all_chats",
            json!({"page_size": 1000}),
            "invalid_data",
        ),
        (
            "fetch_all_chats",
            json!({"status": "sleeping"}),
            "invalid_data",
        ),
        (
            "fetch_all_chats",
            json!({"customer_type": "Martian"}),
            "invalid_data",
        ),
    ];
    for (event, data, code) in cases {
        let reply = dash.request(event, data.clone()).await?;
        assert_eq!(reply["event"], "error", "{event} {data}: {reply}");
        assert_eq!(reply["data"]["code"], code, "{event} {data}: {reply}");
    }

    // A message over 32 KB (API Gateway reassembles it from frames): a
    // too_large error naming the limit, matched by its request id.
    let big = json!({"event": "send_message", "request_id": "big-1",
        "data": {"chat_id": "01a1fd83-bbb1-77aa-8fa7-6a6bac181c20", "message": "x".repeat(40_000)}})
    .to_string();
    dash.send_fragmented(&big, 3).await?;
    let e = dash.expect("error", Duration::from_secs(2)).await?;
    assert_eq!(e["data"]["code"], "too_large", "{e}");
    assert_eq!(e["request_id"], "big-1");
    assert!(
        e["data"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("32768")),
        "{e}"
    );
    // Still connected and answering.
    let ok = dash
        .request(
            "fetch_all_chats",
            json!({"status": "active", "page": 1, "page_size": 5}),
        )
        .await?;
    assert_eq!(ok["event"], "fetch_all_chats", "{ok}");
    assert_eq!(ok["data"]["chats"], json!([]));
    assert_eq!(ok["data"]["has_more"], false);
    dash.close().await;
    stack.stop().await;
    Ok(())
}
