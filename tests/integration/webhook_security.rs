use serde_json::Value;
use shared::channel::Stakeholder;
use shared::chat::ChatStatus;
use shared::secret::Secret;
use shared::store::ChatStore;
use shared::webhook_auth::{WebhookAuth, sign};
use smart_chat_tests::*;

const APP_SECRET: &str = "test-app-secret-for-signatures";

async fn post_signed(
    stack: &Stack,
    body: &str,
    signature: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let mut req = stack
        .http
        .post(stack.url(&format!("/api/chats/whatsapp_chat/{PARTNER_CHANNEL}")))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

#[tokio::test]
async fn signed_webhooks_are_checked_over_the_exact_raw_body() -> anyhow::Result<()> {
    let stack = Stack::start_with(|c| {
        c.webhook_auth = WebhookAuth::Signature(Secret::new(APP_SECRET.into()))
    })
    .await?;
    let body = text_webhook("919800000031", "S", "wamid.sig-1", "signed");
    let good = sign(APP_SECRET, body.as_bytes());

    // Missing, tampered, wrong key, malformed header.
    let tampered = body.replace("signed", "SIGNED");
    let reserialised = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body)?)?;
    let cases: [(&str, Option<String>); 6] = [
        (&body, None),
        (&tampered, Some(good.clone())),
        (&reserialised, Some(good.clone())),
        (&body, Some(sign("another-secret", body.as_bytes()))),
        (&body, Some(good.trim_start_matches("sha256=").to_owned())),
        (&body, Some("sha256=not-hex".to_owned())),
    ];
    for (i, (b, sig)) in cases.iter().enumerate() {
        let (status, answer) = post_signed(&stack, b, sig.as_deref()).await?;
        assert_eq!(status, 401, "case {i}: {answer}");
        assert_eq!(answer["error"]["code"], "unauthorized", "case {i}");
    }
    // A bad signature is refused before the body is even parsed.
    assert_eq!(
        post_signed(&stack, "{not json", Some("sha256=00")).await?.0,
        401
    );

    // The valid one (and the re-serialised body signed as sent) are accepted.
    assert_eq!(post_signed(&stack, &body, Some(&good)).await?.0, 200);
    let resigned = sign(APP_SECRET, reserialised.as_bytes());
    assert_eq!(
        post_signed(&stack, &reserialised, Some(&resigned)).await?.0,
        200
    );

    let store = stack.store();
    let stored = wait_stored(&store, &["wamid.sig-1"]).await?;
    // The second (duplicate) post has been processed too.
    stack.settled().await?;
    let chat = store
        .chat(&stored[0].chat_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("chat"))?;
    assert_eq!(
        chat.message_count, 1,
        "only the accepted message, once (both valid posts carry the same id)"
    );
    assert_eq!(chat.last_message.as_deref(), Some("signed"));
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn malformed_payloads_are_refused_with_a_reason_and_nothing_is_stored() -> anyhow::Result<()>
{
    let stack = Stack::start().await?;
    let wrap = |value: &str| {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{value}}}]}}]}}"#
        )
    };
    let msg = |m: &str| wrap(&format!(r#"{{"messages":[{m}]}}"#));
    let cases = vec![
        ("not json", "{\"entry\":".to_owned(), "not valid JSON"),
        ("array", "[]".to_owned(), "no `entry` array"),
        (
            "entry not array",
            r#"{"entry":{}}"#.to_owned(),
            "no `entry` array",
        ),
        (
            "no changes",
            r#"{"entry":[{"id":"1"}]}"#.to_owned(),
            "no `changes` array",
        ),
        (
            "no value",
            r#"{"entry":[{"changes":[{"field":"messages"}]}]}"#.to_owned(),
            "no `value` object",
        ),
        (
            "messages not array",
            wrap(r#"{"messages":{}}"#),
            "`messages` is not an array",
        ),
        ("message not object", msg("7"), "not an object"),
        (
            "no id",
            msg(r#"{"from":"91980","type":"text","text":{"body":"x"}}"#),
            "`id`",
        ),
        (
            "no sender",
            msg(r#"{"id":"w1","type":"text","text":{"body":"x"}}"#),
            "neither `from` nor `from_user_id`",
        ),
        (
            "bad sender",
            msg(r#"{"id":"w1","from":"91 98/00","type":"text","text":{"body":"x"}}"#),
            "`from`",
        ),
        (
            "no type",
            msg(r#"{"id":"w1","from":"91980","text":{"body":"x"}}"#),
            "`type`",
        ),
        (
            "text without text",
            msg(r#"{"id":"w1","from":"91980","type":"text"}"#),
            "no `text` object",
        ),
        (
            "body not string",
            msg(r#"{"id":"w1","from":"91980","type":"text","text":{"body":5}}"#),
            "`text.body`",
        ),
        (
            "image without id",
            msg(r#"{"id":"w1","from":"91980","type":"image","image":{"caption":"c"}}"#),
            "`image.id`",
        ),
        (
            "location as text",
            msg(
                r#"{"id":"w1","from":"91980","type":"location","location":{"latitude":"18.5","longitude":73.8}}"#,
            ),
            "`location.latitude`",
        ),
        (
            "interactive without reply",
            msg(
                r#"{"id":"w1","from":"91980","type":"interactive","interactive":{"type":"button_reply"}}"#,
            ),
            "`interactive.button_reply`",
        ),
        (
            "reaction without target",
            msg(r#"{"id":"w1","from":"91980","type":"reaction","reaction":{"emoji":"x"}}"#),
            "`reaction.message_id`",
        ),
        (
            "status without recipient",
            wrap(r#"{"statuses":[{"id":"w1","status":"read"}]}"#),
            "`recipient_id`",
        ),
        (
            "status without status",
            wrap(r#"{"statuses":[{"id":"w1","recipient_id":"91980"}]}"#),
            "`status`",
        ),
        (
            "second message bad",
            msg(
                r#"{"id":"w-ok","from":"91980","type":"text","text":{"body":"fine"}},{"id":"w-bad","from":"91980","type":"text"}"#,
            ),
            "message 1 of change 0",
        ),
    ];
    for (name, body, reason) in &cases {
        let (status, answer) = stack.post_webhook(PARTNER_CHANNEL, body).await?;
        assert_eq!(status, 400, "{name}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(reason),
            "{name}: `{message}` should mention `{reason}`"
        );
    }
    // Nothing reached the store: the first message of a body is not kept
    // when the second is bad. A marker posted last is the only message.
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000032", "M", "wamid.marker", "marker"),
        )
        .await?;
    let store = stack.store();
    wait_stored(&store, &["wamid.marker"]).await?;
    let chats = store
        .list_chats(ChatStatus::Active, Stakeholder::Partner, None, 10)
        .await?
        .0;
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].message_count, 1);
    assert!(stored_message(&store, "w-ok").await?.is_none());
    stack.stop().await;
    Ok(())
}
