//! Sending: every message type through the send queue, the outbound
//! consumer and the Pinbot recorder, per channel; retries, permanent
//! failures, the last attempt, status callbacks, the 24-hour window, the
//! message log, its statistics and re-sending.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use domain::chat::ChatStore;
use domain::chat::{Chat, ChatId, DeliveryStatus, SenderType};
use domain::outbound::{
    ContactCard, ListRow, ListSection, MediaKind, MediaSource, Outbound, ReplyButton,
};
use domain::sending::{Author, NotQueued, queue_send};

use smart_chat_tests::{
    Dashboard, PARTNER_CHANNEL, Stack, append_outbound_text, eventually, status_webhook,
};

const WAIT: Duration = Duration::from_secs(15);

/// A chat the customer has just written on (the window is open).
async fn chat_on(stack: &Stack, channel: &str, customer: &str) -> anyhow::Result<Chat> {
    let wa_id = format!("wamid.in-{customer}");
    stack
        .customer_writes(channel, customer, &wa_id, "hello")
        .await
}

/// `send_message` with `data` is refused `invalid_data`, saying `needle`.
async fn refused_as_invalid(dash: &mut Dashboard, data: Value, needle: &str) -> anyhow::Result<()> {
    let refused = dash.request("send_message", data).await?;
    assert_eq!(refused["event"], "error", "{refused}");
    assert_eq!(refused["data"]["code"], "invalid_data", "{refused}");
    assert!(
        refused["data"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(needle)),
        "{refused}"
    );
    Ok(())
}

/// A recorded send's body without `biz_opaque_callback_data`, which must
/// be there and name one of our messages.
fn without_callback_data(body: &Value) -> Value {
    let mut body = body.clone();
    let callback = body
        .as_object_mut()
        .and_then(|b| b.remove("biz_opaque_callback_data"));
    assert!(
        callback
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|c| c.starts_with("sc1:")),
        "every send carries our id for its callbacks: {callback:?}"
    );
    body
}

/// A signed-in Partner agent's token.
async fn agent_token(stack: &Stack, id: &str) -> anyhow::Result<String> {
    let email = format!("{id}@test.local");
    stack
        .add_executive(
            id,
            &email,
            "agent-password-1",
            domain::executive::Role::Agent,
            &[domain::channel::Stakeholder::Partner],
            false,
        )
        .await?;
    stack.login(&email, "agent-password-1").await
}

/// Recorded sends (not media downloads), oldest first.
async fn sends(stack: &Stack) -> anyhow::Result<Vec<Value>> {
    Ok(stack
        .recorded()
        .await?
        .into_iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/messages")))
        .collect())
}

async fn wait_sends(stack: &Stack, n: usize) -> anyhow::Result<Vec<Value>> {
    eventually(WAIT, || async {
        let s = sends(stack).await?;
        Ok((s.len() >= n).then_some(s))
    })
    .await
}

/// The stored delivery state of a message, once it is `want`.
async fn wait_state(
    stack: &Stack,
    chat: &ChatId,
    message_id: &str,
    want: DeliveryStatus,
) -> anyhow::Result<domain::chat::Message> {
    eventually(WAIT, || async {
        let m = stack.store().message(chat, message_id).await?;
        Ok(m.filter(|m| m.delivery.as_ref().map(|d| d.status) == Some(want)))
    })
    .await
}

/// The admin, watching a fresh chat with `customer`, sends `text` while
/// the provider answers the next `fail.1` requests with `fail.0`: the chat,
/// the admin's token, their dashboard and the queued message's id.
async fn watched_send(
    stack: &Stack,
    customer: &str,
    fail: (u16, u32),
    text: &str,
) -> anyhow::Result<(Chat, String, Dashboard, String)> {
    let chat = chat_on(stack, PARTNER_CHANNEL, customer).await?;
    let admin = stack.admin_token().await?;
    let mut dash = stack.connect(&admin).await?;
    dash.request("join_chat", json!({"chat_id": chat.chat_id}))
        .await?;
    stack.recorder_fails(fail.0, fail.1).await?;
    let reply = dash
        .request(
            "send_message",
            json!({"chat_id": chat.chat_id, "message": text}),
        )
        .await?;
    assert_eq!(
        reply["data"]["message"]["delivery_status"], "queued",
        "{reply}"
    );
    let message_id = reply["data"]["message"]["message_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((chat, admin, dash, message_id))
}

/// Queues `message` as the automations do (no dashboard involved).
async fn queue(stack: &Stack, chat: &Chat, message: &Outbound) -> Result<String, NotQueued> {
    let api = &stack.running.gateway.functions.api;
    let author = Author {
        sender: "automation".into(),
        sender_type: SenderType::System,
    };
    let chat = stack
        .store()
        .chat(&chat.chat_id)
        .await?
        .ok_or(NotQueued::NoChat)?;
    queue_send(
        &stack.store(),
        &api.outbox,
        &api.messages,
        &chat,
        message,
        &author,
        None,
    )
    .await
    .map(|(_, m)| m.message_id)
}

#[tokio::test]
async fn every_type_reaches_the_provider_on_its_channels_route() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    // (channel path id, customer, URL path, wanumber header, key)
    let routes = [
        (
            PARTNER_CHANNEL,
            "919811100001",
            "/v2/messages",
            Some("919099039188"),
            "local-dev-wa_api_key_1",
        ),
        (
            "8000247247",
            "919811100002",
            "/v3/687960561072454/messages",
            None,
            "local-dev-wa_api_key_2",
        ),
        (
            "9726724247",
            "919811100003",
            "/v3/723917954136046/messages",
            None,
            "local-dev-wa_api_key_2",
        ),
        (
            "9586924247",
            "919811100004",
            "/v2/messages",
            Some("919586924247"),
            "local-dev-wa_api_key_1",
        ),
    ];
    let mut dash = stack.connect(&stack.admin_token().await?).await?;
    for (i, (channel, customer, path, wanumber, key)) in routes.iter().enumerate() {
        let chat = chat_on(&stack, channel, customer).await?;
        let reply = dash
            .request(
                "send_message",
                json!({"chat_id": chat.chat_id, "message": "Namaste 🙏 checking"}),
            )
            .await?;
        assert_eq!(reply["event"], "send_message", "{reply}");
        let recorded = wait_sends(&stack, i + 1).await?;
        let r = &recorded[i];
        assert_eq!(r["method"], "POST");
        assert_eq!(r["path"], *path, "{channel}");
        assert_eq!(r["headers"]["apikey"], *key, "{channel}");
        assert_eq!(
            r["headers"].get("wanumber").and_then(Value::as_str),
            *wanumber,
            "{channel}: v2 names the number in a header, v3 in its path"
        );
        assert_eq!(r["headers"]["content-type"], "application/json");
        assert_eq!(
            without_callback_data(&r["body"]),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": customer,
                   "type": "text", "text": {"preview_url": false, "body": "Namaste 🙏 checking"}})
        );
    }

    // Every other type, on the Partner chat.
    let chat = chat_on(&stack, PARTNER_CHANNEL, "919811100001").await?;
    let to = "919811100001";
    let types = [
        (
            Outbound::ask_issue_resolved(),
            json!({"type": "template", "template": {"name": "ask_issue_resolved", "language": {"code": "hi"}}}),
        ),
        (
            Outbound::Template {
                name: "trip_update".into(),
                language: "en".into(),
                params: domain::outbound::TemplateParams {
                    body: vec!["Pune".into(), "Mumbai".into()],
                    buttons: vec![domain::outbound::TemplateButton {
                        index: 0,
                        sub_type: "url".into(),
                        value: "b/123".into(),
                    }],
                },
            },
            json!({"type": "template", "template": {"name": "trip_update", "language": {"code": "en"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "Pune"}, {"type": "text", "text": "Mumbai"}]},
                {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "b/123"}]}
            ]}}),
        ),
        (
            Outbound::Buttons {
                header: None,
                body: "Was your issue resolved?".into(),
                footer: Some("Inter-City Experts".into()),
                buttons: vec![
                    ReplyButton {
                        id: "yes".into(),
                        title: "Yes".into(),
                    },
                    ReplyButton {
                        id: "no".into(),
                        title: "No".into(),
                    },
                ],
            },
            json!({"type": "interactive", "interactive": {"type": "button",
                "body": {"text": "Was your issue resolved?"}, "footer": {"text": "Inter-City Experts"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                                       {"type": "reply", "reply": {"id": "no", "title": "No"}}]}}}),
        ),
        (
            Outbound::List {
                header: None,
                body: "Pick a route".into(),
                footer: None,
                button: "Routes".into(),
                sections: vec![ListSection {
                    title: Some("Maharashtra".into()),
                    rows: vec![ListRow {
                        id: "pune-mumbai".into(),
                        title: "Pune → Mumbai".into(),
                        description: None,
                    }],
                }],
            },
            json!({"type": "interactive", "interactive": {"type": "list", "body": {"text": "Pick a route"},
                "action": {"button": "Routes", "sections": [{"title": "Maharashtra",
                    "rows": [{"id": "pune-mumbai", "title": "Pune → Mumbai"}]}]}}}),
        ),
        (
            Outbound::CtaUrl {
                header: None,
                body: "Book in the app".into(),
                footer: None,
                display_text: "Open app".into(),
                url: "https://oneway.cab/app".into(),
            },
            json!({"type": "interactive", "interactive": {"type": "cta_url", "body": {"text": "Book in the app"},
                "action": {"name": "cta_url", "parameters": {"display_text": "Open app", "url": "https://oneway.cab/app"}}}}),
        ),
        (
            Outbound::Contact(ContactCard::oneway_cab()),
            json!({"type": "contacts", "contacts": [{"name": {"formatted_name": "OneWay.Cab", "first_name": "OneWay.Cab"},
                "emails": [{"email": "care@oneway.cab", "type": "WORK"}],
                "urls": [{"url": "https://oneway.cab/", "type": "WORK"}]}]}),
        ),
        (
            Outbound::Media {
                kind: MediaKind::Video,
                source: MediaSource::Link("https://oneway.cab/intro.mp4".into()),
                caption: Some("How to book".into()),
                filename: None,
            },
            json!({"type": "video", "video": {"link": "https://oneway.cab/intro.mp4", "caption": "How to book"}}),
        ),
        (
            Outbound::Media {
                kind: MediaKind::Document,
                source: MediaSource::Id("1234567890".into()),
                caption: None,
                filename: Some("invoice.pdf".into()),
            },
            json!({"type": "document", "document": {"id": "1234567890", "filename": "invoice.pdf"}}),
        ),
    ];
    let before = sends(&stack).await?.len();
    for (n, (message, expected)) in types.iter().enumerate() {
        let expected_body = {
            let mut b =
                json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to});
            for (k, v) in expected.as_object().into_iter().flatten() {
                b[k] = v.clone();
            }
            b
        };
        // Built by the same code the consumer runs, and exactly the shape above.
        assert_eq!(message.body(to), expected_body, "{}", message.kind());
        queue(&stack, &chat, message).await?;
        let recorded = wait_sends(&stack, before + n + 1).await?;
        assert_eq!(
            without_callback_data(&recorded[before + n]["body"]),
            expected_body,
            "{}",
            message.kind()
        );
    }
    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn invalid_messages_are_refused_before_any_call() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let chat = chat_on(&stack, PARTNER_CHANNEL, "919811100010").await?;
    let four = Outbound::Buttons {
        header: None,
        body: "Choose".into(),
        footer: None,
        buttons: (0..4)
            .map(|i| ReplyButton {
                id: format!("b{i}"),
                title: format!("Option {i}"),
            })
            .collect(),
    };
    let long_title = Outbound::Buttons {
        header: None,
        body: "Choose".into(),
        footer: None,
        buttons: vec![ReplyButton {
            id: "a".into(),
            title: "a title longer than twenty".into(),
        }],
    };
    for bad in [four, long_title] {
        match queue(&stack, &chat, &bad).await {
            Err(NotQueued::Invalid(e)) => assert!(e.field.contains("buttons"), "{e}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    let mut dash = stack.connect(&stack.admin_token().await?).await?;
    for (data, needle) in [
        (
            json!({"chat_id": chat.chat_id, "type": "image", "media": {"link": "http://insecure.example/a.jpg"}}),
            "https",
        ),
        (
            json!({"chat_id": chat.chat_id, "type": "template", "template": {"name": "free_money"}}),
            "approved: ask_issue_resolved",
        ),
        (
            json!({"chat_id": chat.chat_id, "type": "document", "media": {"id": "1", "link": "https://a/b"}}),
            "exactly one",
        ),
        (
            json!({"chat_id": chat.chat_id, "type": "sticker", "message": "x"}),
            "not one of",
        ),
    ] {
        refused_as_invalid(&mut dash, data, needle).await?;
    }
    // Nothing was stored, nothing reached the provider.
    stack.settled().await?;
    assert!(sends(&stack).await?.is_empty());
    let (messages, _) = stack.store().messages(&chat.chat_id, None, 0, 10).await?;
    assert_eq!(messages.len(), 1, "only the customer's message");
    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn two_failures_then_success_sends_once_and_statuses_follow() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let customer = "919811100020";
    let (chat, admin, mut dash, message_id) =
        watched_send(&stack, customer, (503, 2), "On the way").await?;

    let accepted = dash
        .expect("message_status", Duration::from_secs(20))
        .await?;
    assert_eq!(accepted["data"]["status"], "accepted", "{accepted}");
    assert_eq!(accepted["data"]["message_id"], message_id.as_str());
    let wa_id = accepted["data"]["wa_message_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(wa_id.starts_with("wamid."), "{accepted}");

    // Three attempts, the last one answered; then nothing more.
    stack.settled().await?;
    let answered: Vec<_> = sends(&stack)
        .await?
        .iter()
        .map(|r| r["answered"].clone())
        .collect();
    assert_eq!(answered, vec![json!(503), json!(503), json!(200)]);
    assert!(
        dash.quiet("message_status", Duration::from_millis(500))
            .await,
        "accepted once"
    );
    let stored = wait_state(&stack, &chat.chat_id, &message_id, DeliveryStatus::Accepted).await?;
    assert_eq!(stored.wa_message_id.as_deref(), Some(wa_id.as_str()));

    // The provider's callbacks find the message by its id.
    for status in ["sent", "delivered", "read"] {
        stack
            .post_webhook(
                PARTNER_CHANNEL,
                &status_webhook(&wa_id, customer, status, json!([])),
            )
            .await?;
        let pushed = dash
            .expect("message_status", Duration::from_secs(10))
            .await?;
        assert_eq!(pushed["data"]["status"], status);
        assert_eq!(pushed["data"]["message_id"], message_id.as_str());
    }
    wait_state(&stack, &chat.chat_id, &message_id, DeliveryStatus::Read).await?;

    // The log and the statistics tell the same story.
    let (code, log) = stack
        .call(
            Method::GET,
            &format!("/api/messages?customer={customer}"),
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(code, 200, "{log}");
    let entries = log["data"]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["state"], "read");
    assert_eq!(entries[0]["attempts"], 3);
    assert_eq!(entries[0]["customer_type"], "Partner");
    let (code, stats) = stack
        .call(Method::GET, "/api/messages/stats", Some(&admin), None)
        .await?;
    assert_eq!(code, 200, "{stats}");
    let partner = &stats["data"]["by_team"]["Partner"];
    for (field, n) in [
        ("queued", 1),
        ("accepted", 1),
        ("sent", 1),
        ("delivered", 1),
        ("read", 1),
        ("failed", 0),
    ] {
        assert_eq!(partner[field], n, "{field}: {stats}");
    }
    assert!(partner["avg_seconds_to_sent"].is_number(), "{stats}");
    assert_eq!(stats["data"]["total"]["read"], 1);
    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_permanent_refusal_fails_at_once_and_an_admin_can_resend() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (chat, admin, mut dash, message_id) =
        watched_send(&stack, "919811100030", (400, 5), "Your refund is processed").await?;
    let failed = dash
        .expect("message_status", Duration::from_secs(10))
        .await?;
    assert_eq!(failed["data"]["status"], "failed", "{failed}");
    assert!(
        failed["data"]["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("provider answered 400")),
        "{failed}"
    );
    stack.settled().await?;
    assert_eq!(sends(&stack).await?.len(), 1, "no retries after a 400");

    let (code, log) = stack
        .call(
            Method::GET,
            "/api/messages?state=failed",
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(code, 200, "{log}");
    assert_eq!(
        log["data"]["messages"][0]["message_id"],
        message_id.as_str()
    );
    assert_eq!(log["data"]["messages"][0]["attempts"], 1);

    // Agents may not re-send; admins may, once the provider takes it again.
    let agent = agent_token(&stack, "agent-r").await?;
    let path = format!("/api/messages/{}/{message_id}/resend", chat.chat_id);
    let (code, _) = stack.call(Method::POST, &path, Some(&agent), None).await?;
    assert_eq!(code, 403);
    stack.recorder_fails(400, 0).await?;
    let (code, body) = stack.call(Method::POST, &path, Some(&admin), None).await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["state"], "queued");
    let queued = dash
        .expect("message_status", Duration::from_secs(5))
        .await?;
    assert_eq!(queued["data"]["status"], "queued");
    let accepted = dash
        .expect("message_status", Duration::from_secs(10))
        .await?;
    assert_eq!(accepted["data"]["status"], "accepted");
    assert_eq!(sends(&stack).await?.len(), 2);
    // Only a failed message can be re-sent.
    let (code, body) = stack.call(Method::POST, &path, Some(&admin), None).await?;
    assert_eq!(code, 409, "{body}");
    let (code, _) = stack
        .call(
            Method::POST,
            &format!("/api/messages/{}/no-such-message/resend", chat.chat_id),
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(code, 404);

    let (_, stats) = stack
        .call(Method::GET, "/api/messages/stats", Some(&admin), None)
        .await?;
    let partner = &stats["data"]["by_team"]["Partner"];
    assert_eq!(partner["queued"], 1, "{stats}");
    assert_eq!(partner["failed"], 0, "re-sent: {stats}");
    assert_eq!(partner["accepted"], 1, "{stats}");
    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_last_attempt_marks_the_message_failed_and_dead_letters_it() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let chat = chat_on(&stack, PARTNER_CHANNEL, "919811100040").await?;
    stack.recorder_fails(503, 1000).await?;
    let message_id = queue(&stack, &chat, &Outbound::text("Are you there?")?)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let failed = eventually(Duration::from_secs(60), || async {
        let m = stack.store().message(&chat.chat_id, &message_id).await?;
        Ok(m.and_then(|m| m.delivery)
            .filter(|d| d.status == DeliveryStatus::Failed))
    })
    .await?;
    let max = outbound::DEFAULT_MAX_ATTEMPTS;
    assert!(
        failed.errors[0].starts_with(&format!("gave up after {max} attempts")),
        "{:?}",
        failed.errors
    );
    assert_eq!(sends(&stack).await?.len(), max as usize);
    // The entry waits in the dead-letter queue.
    let dlq = stack.running.resources.queue_url("OutboundDLQ")?;
    let sqs = &stack.running.gateway.sqs;
    let dead = eventually(Duration::from_secs(20), || async {
        let out = sqs
            .receive_message()
            .queue_url(&dlq)
            .wait_time_seconds(1)
            .send()
            .await?;
        Ok(out.messages.filter(|m| !m.is_empty()))
    })
    .await?;
    let body: Value = serde_json::from_str(dead[0].body().unwrap_or_default())?;
    assert_eq!(body["message_id"], message_id.as_str());
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn outside_the_window_only_templates_go() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let admin = stack.admin_token().await?;
    let mut dash = stack.connect(&admin).await?;
    // An agent opens a chat with someone who never wrote: the window is shut.
    let opened = dash
        .request(
            "new_chat",
            json!({"sender": "919811100050", "customer_type": "Partner"}),
        )
        .await?;
    let chat_id = opened["data"]["chat"]["chat_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let refused = dash
        .request(
            "send_message",
            json!({"chat_id": chat_id, "message": "Hello?"}),
        )
        .await?;
    assert_eq!(refused["event"], "error", "{refused}");
    assert_eq!(refused["data"]["code"], "window_closed");
    assert_eq!(
        refused["data"]["templates"],
        json!(["ask_issue_resolved", "resolution_rating"])
    );
    assert!(
        refused["data"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("24-hour")),
        "{refused}"
    );
    let template = dash
        .request(
            "send_message",
            json!({"chat_id": chat_id, "type": "template", "template": {"name": "ask_issue_resolved"}}),
        )
        .await?;
    assert_eq!(template["event"], "send_message", "{template}");
    let recorded = wait_sends(&stack, 1).await?;
    assert_eq!(recorded[0]["body"]["type"], "template");
    assert_eq!(
        recorded[0]["body"]["template"],
        json!({"name": "ask_issue_resolved", "language": {"code": "hi"}})
    );

    // The seeds' route: JWT, an approved name, a number.
    let route = "/api/chats/send_whatsapp_template";
    for (query, token, want) in [
        ("?to=9811100051", None, 401),
        ("?to=9811100051&name=free_money", Some(admin.as_str()), 400),
        ("?to=abc", Some(admin.as_str()), 400),
        ("?name=ask_issue_resolved", Some(admin.as_str()), 400),
        (
            "?to=9811100051&customer_type=Nobody",
            Some(admin.as_str()),
            400,
        ),
    ] {
        let (code, body) = stack
            .call(Method::GET, &format!("{route}{query}"), token, None)
            .await?;
        assert_eq!(code, want, "{query}: {body}");
    }
    let (code, body) = stack
        .call(
            Method::GET,
            "/api/chats/send_whatsapp_template?to=%2B91%2098111%2000051",
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["template"], "ask_issue_resolved");
    let recorded = wait_sends(&stack, 2).await?;
    assert_eq!(recorded[1]["body"]["to"], "919811100051");
    assert_eq!(recorded[1]["headers"]["wanumber"], "919099039188");
    // It is in the customer's (new) Partner chat, like any send.
    let chat_id = ChatId::parse(body["data"]["chat_id"].as_str().unwrap_or_default())
        .map_err(anyhow::Error::msg)?;
    let message_id = body["data"]["message_id"].as_str().unwrap_or_default();
    wait_state(&stack, &chat_id, message_id, DeliveryStatus::Accepted).await?;
    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_message_log_pages_by_cursor_and_checks_its_input() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let admin = stack.admin_token().await?;
    let a = chat_on(&stack, PARTNER_CHANNEL, "919811100060").await?;
    let b = chat_on(&stack, "8000247247", "919811100061").await?;
    let mut ids = Vec::new();
    for i in 0..5 {
        let chat = if i % 2 == 0 { &a } else { &b };
        let id = queue(&stack, chat, &Outbound::text(format!("update {i}"))?)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ids.push(id);
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut path = "/api/messages?limit=2".to_owned();
    for _ in 0..5 {
        let (code, page) = stack.call(Method::GET, &path, Some(&admin), None).await?;
        assert_eq!(code, 200, "{page}");
        for m in page["data"]["messages"].as_array().into_iter().flatten() {
            seen.push(m["message_id"].as_str().unwrap_or_default().to_owned());
        }
        match page["data"]["next_cursor"].as_str() {
            Some(c) => path = format!("/api/messages?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids, "newest first, each once");
    let (_, only_b) = stack
        .call(
            Method::GET,
            "/api/messages?customer=%2B919811100061",
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(only_b["data"]["messages"].as_array().map(Vec::len), Some(2));

    for bad in [
        "/api/messages?state=lost",
        "/api/messages?limit=0",
        "/api/messages?limit=101",
        "/api/messages?cursor=%%%",
        "/api/messages?from=yesterday",
        "/api/messages?from=2026-01-01&to=2026-12-31",
        "/api/messages?from=2026-03-02&to=2026-03-01",
        "/api/messages/stats?from=2025-01-01",
    ] {
        let (code, body) = stack.call(Method::GET, bad, Some(&admin), None).await?;
        assert_eq!(code, 400, "{bad}: {body}");
    }
    let agent = agent_token(&stack, "agent-log").await?;
    let (code, _) = stack
        .call(Method::GET, "/api/messages", Some(&agent), None)
        .await?;
    assert_eq!(code, 403, "the log is for admins");
    stack.stop().await;
    Ok(())
}

/// A text stored `queued` in `chat`, `age` ago, and never put on the send
/// queue (the process died in between).
async fn stored_but_never_queued(
    stack: &Stack,
    chat: &Chat,
    text: &str,
    age: chrono::Duration,
) -> anyhow::Result<String> {
    let at = chrono::Utc::now() - age;
    let m = append_outbound_text(&stack.store(), &chat.chat_id, text, at, None).await?;
    Ok(m.message_id)
}

#[tokio::test]
async fn a_send_whose_queue_entry_was_lost_goes_out_with_the_minute_schedule() -> anyhow::Result<()>
{
    let stack = Stack::start().await?;
    let chat = chat_on(&stack, PARTNER_CHANNEL, "919800000071").await?;
    let lost = stored_but_never_queued(
        &stack,
        &chat,
        "lost on the way",
        chrono::Duration::minutes(5),
    )
    .await?;
    let fresh =
        stored_but_never_queued(&stack, &chat, "just stored", chrono::Duration::zero()).await?;
    stack.settled().await?;
    assert!(
        sends(&stack).await?.is_empty(),
        "nothing queued, nothing sent"
    );

    // A message not yet overdue is left alone, by the schedule and by re-send.
    let admin = stack.admin_token().await?;
    let (status, answer) = stack
        .call(
            Method::POST,
            &format!("/api/messages/{}/{fresh}/resend", chat.chat_id),
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("on_its_way")),
        "{answer}"
    );

    let report = stack.run_schedule("sla-scan").await?;
    assert_eq!(report["sends_requeued"], 1, "{report}");
    let sent = wait_state(&stack, &chat.chat_id, &lost, DeliveryStatus::Accepted).await?;
    let recorded = wait_sends(&stack, 1).await?;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["body"]["text"]["body"], "lost on the way");
    // Every send names our message for its callbacks.
    assert_eq!(
        recorded[0]["body"]["biz_opaque_callback_data"],
        format!("sc1:{}:{lost}", chat.chat_id)
    );
    assert!(sent.wa_message_id.is_some());

    // Once it is overdue, an admin can re-send it too (and only once sent).
    let stuck =
        stored_but_never_queued(&stack, &chat, "stuck again", chrono::Duration::minutes(10))
            .await?;
    let (status, answer) = stack
        .call(
            Method::POST,
            &format!("/api/messages/{}/{stuck}/resend", chat.chat_id),
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(status, 200, "{answer}");
    wait_state(&stack, &chat.chat_id, &stuck, DeliveryStatus::Accepted).await?;
    // A second schedule run finds only what is still overdue: nothing.
    stack.settled().await?;
    let again = stack.run_schedule("sla-scan").await?;
    assert_eq!(again["sends_requeued"], 0, "{again}");
    assert_eq!(sends(&stack).await?.len(), 2);
    stack.stop().await;
    Ok(())
}

/// The admin, watching a fresh chat with `customer`, sends `text`; the
/// provider answers its first attempt 200 without a message id.
async fn ambiguous_send(
    stack: &Stack,
    customer: &str,
    text: &str,
) -> anyhow::Result<(Chat, Dashboard, String)> {
    let chat = chat_on(stack, PARTNER_CHANNEL, customer).await?;
    let mut dash = stack.connect(&stack.admin_token().await?).await?;
    dash.request("join_chat", json!({"chat_id": chat.chat_id}))
        .await?;
    stack.recorder_answers_without_id(1).await?;
    let reply = dash
        .request(
            "send_message",
            json!({"chat_id": chat.chat_id, "message": text}),
        )
        .await?;
    let message_id = reply["data"]["message"]["message_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    wait_state(
        stack,
        &chat.chat_id,
        &message_id,
        DeliveryStatus::Unconfirmed,
    )
    .await?;
    Ok((chat, dash, message_id))
}

#[tokio::test]
async fn an_ambiguous_send_is_confirmed_by_its_callback_and_not_sent_again() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let customer = "919800000073";
    let (chat, dash, message_id) = ambiguous_send(&stack, customer, "did it go?").await?;
    assert_eq!(sends(&stack).await?.len(), 1);

    // WhatsApp's callback names our message: it confirms the send.
    let callback = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "statuses": [{"id": "wamid.confirmed-by-callback", "status": "sent", "timestamp": "1763700000",
                          "recipient_id": customer,
                          "biz_opaque_callback_data": format!("sc1:{}:{message_id}", chat.chat_id)}]
        }}]}]
    });
    let (code, _) = stack
        .post_webhook(PARTNER_CHANNEL, &callback.to_string())
        .await?;
    assert_eq!(code, 200);
    let confirmed = wait_state(&stack, &chat.chat_id, &message_id, DeliveryStatus::Sent).await?;
    assert_eq!(
        confirmed.wa_message_id.as_deref(),
        Some("wamid.confirmed-by-callback")
    );
    // The retry after the wait finds it sent: nothing goes out twice.
    tokio::time::sleep(Duration::from_secs(4)).await;
    stack.settled().await?;
    assert_eq!(sends(&stack).await?.len(), 1, "no second send");
    // Later statuses find it by the provider id now recorded.
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &status_webhook("wamid.confirmed-by-callback", customer, "read", json!([])),
        )
        .await?;
    wait_state(&stack, &chat.chat_id, &message_id, DeliveryStatus::Read).await?;
    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_ambiguous_send_with_no_callback_goes_again_after_the_wait() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (chat, dash, message_id) = ambiguous_send(&stack, "919800000074", "anyone there?").await?;
    let sent = wait_state(&stack, &chat.chat_id, &message_id, DeliveryStatus::Accepted).await?;
    assert!(sent.wa_message_id.is_some());
    let recorded = sends(&stack).await?;
    assert_eq!(recorded.len(), 2, "sent again once the wait ended");
    assert_eq!(
        recorded[0]["body"], recorded[1]["body"],
        "the same message, the same callback data"
    );
    dash.close().await;
    stack.stop().await;
    Ok(())
}

/// A send names its customer and channel on the stored message, so the
/// sender does not read the chat; a message stored before it did (no
/// `channel` attribute) is sent to its chat's customer all the same.
#[tokio::test]
async fn a_send_stored_without_its_recipient_goes_to_its_chats_customer() -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let stack = Stack::start().await?;
    let chat = chat_on(&stack, PARTNER_CHANNEL, "919800000091").await?;
    let old =
        stored_but_never_queued(&stack, &chat, "from before", chrono::Duration::minutes(5)).await?;
    let table = stack.running.resources.table("ChatsTable")?;
    let item = |sk: String| {
        [
            (
                "pk".to_owned(),
                AttributeValue::S(format!("CHAT#{}", chat.chat_id)),
            ),
            ("sk".to_owned(), AttributeValue::S(sk)),
        ]
        .into_iter()
        .collect::<std::collections::HashMap<_, _>>()
    };
    let stored = stack
        .running
        .dynamo
        .get_item()
        .table_name(&table)
        .set_key(Some(item(format!("MSG#{old}"))))
        .send()
        .await?
        .item
        .ok_or_else(|| anyhow::anyhow!("the message is stored"))?;
    assert_eq!(
        stored
            .get("channel")
            .and_then(|c| c.as_s().ok())
            .map(String::as_str),
        Some(PARTNER_CHANNEL),
        "new sends record their channel"
    );
    stack
        .running
        .dynamo
        .update_item()
        .table_name(&table)
        .set_key(Some(item(format!("MSG#{old}"))))
        .update_expression("REMOVE channel")
        .send()
        .await?;
    let report = stack.run_schedule("sla-scan").await?;
    assert_eq!(report["sends_requeued"], 1, "{report}");
    wait_state(&stack, &chat.chat_id, &old, DeliveryStatus::Accepted).await?;
    let recorded = wait_sends(&stack, 1).await?;
    assert_eq!(recorded[0]["body"]["to"], "919800000091");
    assert_eq!(recorded[0]["body"]["text"]["body"], "from before");
    stack.stop().await;
    Ok(())
}

/// An agent whose answer never came (a socket dropped before it) sends the
/// same message again under its `client_id`: stored once, sent once, the
/// first message returned. The id is the sender's own, and one chat's.
#[tokio::test]
async fn a_message_sent_again_under_its_client_id_is_stored_and_sent_once() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let chat = chat_on(&stack, PARTNER_CHANNEL, "919811100061").await?;
    let other = chat_on(&stack, PARTNER_CHANNEL, "919811100062").await?;
    let admin = stack.admin_token().await?;
    let send = json!({"chat_id": chat.chat_id, "message": "On our way", "client_id": "c0ffee-1"});

    let mut first = stack.connect(&admin).await?;
    let stored = first.request("send_message", send.clone()).await?;
    assert_eq!(stored["event"], "send_message", "{stored}");
    let message_id = stored["data"]["message"]["message_id"].clone();
    first.close().await;
    // Reconnected, as the dashboard does, and sent again: the same message.
    let mut again = stack.connect(&admin).await?;
    for _ in 0..2 {
        let repeated = again.request("send_message", send.clone()).await?;
        assert_eq!(repeated["event"], "send_message", "{repeated}");
        assert_eq!(repeated["data"]["message"]["message_id"], message_id);
    }
    // Another chat under the same id, or an id that is not one: refused.
    for (data, needle) in [
        (
            json!({"chat_id": other.chat_id, "message": "On our way", "client_id": "c0ffee-1"}),
            "another chat",
        ),
        (
            json!({"chat_id": chat.chat_id, "message": "x", "client_id": "not an id!"}),
            "client_id",
        ),
    ] {
        refused_as_invalid(&mut again, data, needle).await?;
    }
    // Another executive's same id is their own message.
    let mut agent = stack
        .connect(&agent_token(&stack, "key-agent").await?)
        .await?;
    let theirs = agent.request("send_message", send.clone()).await?;
    assert_eq!(theirs["event"], "send_message", "{theirs}");
    assert_ne!(theirs["data"]["message"]["message_id"], message_id);

    let sent = wait_sends(&stack, 2).await?;
    stack.settled().await?;
    assert_eq!(
        sends(&stack).await?.len(),
        2,
        "the admin's once, the agent's once: {sent:?}"
    );
    let (messages, _) = stack.store().messages(&chat.chat_id, None, 0, 10).await?;
    assert_eq!(messages.len(), 3, "the customer's and two replies");
    let (in_other, _) = stack.store().messages(&other.chat_id, None, 0, 10).await?;
    assert_eq!(in_other.len(), 1, "nothing stored in the other chat");
    for dash in [again, agent] {
        dash.close().await;
    }
    stack.stop().await;
    Ok(())
}
