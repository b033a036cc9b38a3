use domain::chat::ChatStore;
use domain::secret::Secret;
use domain::whatsapp::signature::{WebhookAuth, sign};
use serde_json::Value;
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

/// `{"object":…,"entry":[{"changes":[{"value": value}]}]}`
fn wrap(value: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{value}}}]}}]}}"#
    )
}

#[tokio::test]
async fn only_bodies_that_are_not_a_whatsapp_envelope_are_refused() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let cases = vec![
        ("not json", "{\"entry\":".to_owned(), "not valid JSON"),
        ("array", "[]".to_owned(), "not a JSON object"),
        (
            "another product",
            r#"{"object":"instagram","entry":[]}"#.to_owned(),
            "`object` is not `whatsapp_business_account`",
        ),
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
        (
            "statuses not array",
            wrap(r#"{"statuses":"read"}"#),
            "`statuses` is not an array",
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
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn inside_an_envelope_what_we_cannot_read_is_stored_as_such_and_costs_nothing_else()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    // Each message once made the whole body a 400 (the provider retries it
    // for days, then drops it, good messages included).
    let messages = [
        (
            "w-ok",
            r#"{"id":"w-ok","from":"919800000041","type":"text","text":{"body":"fine"}}"#,
            Some(("text", "fine")),
        ),
        ("", "7", None),
        (
            "w-nobody",
            r#"{"id":"w-nobody","type":"text","text":{"body":"who?"}}"#,
            None,
        ),
        (
            "w-sender",
            r#"{"id":"w-sender","from":"91 98000/00042","type":"text","text":{"body":"spaces"}}"#,
            Some(("text", "spaces")),
        ),
        (
            "w-notype",
            r#"{"id":"w-notype","from":"919800000041","text":{"body":"typeless"}}"#,
            Some(("text", "typeless")),
        ),
        (
            "w-notext",
            r#"{"id":"w-notext","from":"919800000041","type":"text"}"#,
            Some(("unsupported", "Unsupported message (text)")),
        ),
        (
            "w-num",
            r#"{"id":"w-num","from":"919800000041","type":"text","text":{"body":5}}"#,
            Some(("unsupported", "Unsupported message (text)")),
        ),
        (
            "w-img",
            r#"{"id":"w-img","from":"919800000041","type":"image","image":{"caption":"c"}}"#,
            Some(("unsupported", "Unsupported message (image)")),
        ),
        (
            "w-loc",
            r#"{"id":"w-loc","from":"919800000041","type":"location","location":{"latitude":"18.5","longitude":73.8,"name":"Swargate"}}"#,
            Some(("location", "📍 Location: Swargate")),
        ),
        (
            "w-int",
            r#"{"id":"w-int","from":"919800000041","type":"interactive","interactive":{"type":"button_reply"}}"#,
            Some(("unsupported", "Unsupported message (interactive)")),
        ),
        (
            "w-flow",
            r#"{"id":"w-flow","from":"919800000041","type":"interactive","interactive":{"type":"nfm_reply","nfm_reply":{"name":"flow","body":"Sent","response_json":"{\"stars\":4}"}}}"#,
            Some(("flow_reply", "📝 Form reply: Sent")),
        ),
        (
            "w-react",
            r#"{"id":"w-react","from":"919800000041","type":"reaction","reaction":{"emoji":"x"}}"#,
            Some(("unsupported", "Unsupported message (reaction)")),
        ),
    ];
    let list: Vec<&str> = messages.iter().map(|(_, m, _)| *m).collect();
    let body = wrap(&format!(
        r#"{{"messages":[{}],"statuses":[{{"id":"w1","status":"read"}},{{"status":"read","recipient_id":"919800000041"}}]}}"#,
        list.join(",")
    ));
    let (status, answer) = stack.post_webhook(PARTNER_CHANNEL, &body).await?;
    assert_eq!(status, 200, "{answer}");

    let store = stack.store();
    let expected: Vec<(&str, (&str, &str))> = messages
        .iter()
        .filter_map(|(id, _, want)| want.map(|w| (*id, w)))
        .collect();
    let ids: Vec<&str> = expected.iter().map(|(id, _)| *id).collect();
    let stored = wait_stored(&store, &ids).await?;
    let got: Vec<(&str, (&str, &str))> = stored
        .iter()
        .zip(&ids)
        .map(|(m, id)| (*id, (m.content.kind(), m.preview.as_str())))
        .collect();
    assert_eq!(got, expected);
    // Why it could not be read is kept for whoever looks.
    assert!(
        matches!(&stored[4].content, domain::chat::Content::Unsupported { errors, .. }
        if errors == &vec!["`text.body` is missing".to_owned()])
    );
    // The sender's separators are dropped, not the message.
    let spaced = store
        .chat(&stored[1].chat_id)
        .await?
        .map(|c| c.customer.to_string());
    assert_eq!(spaced.as_deref(), Some("919800000042"));
    // The message without a sender is the only thing left out.
    assert!(stored_message(&store, "w-nobody").await?.is_none());
    stack.stop().await;
    Ok(())
}
