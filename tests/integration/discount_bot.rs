//! The discount bot on the automated number: offers, codes, declines with
//! their reasons, keywords, the care answer, once per message however
//! often it comes, a flood guard, admins' changes applied at once, and
//! its own statistics.

use std::time::Duration;

use domain::channel::Stakeholder;
use domain::chat::{ChatStore, SenderType};
use serde_json::{Value, json};
use smart_chat_tests::*;

const DISCOUNT_CHANNEL: &str = "9638120888";

/// A webhook carrying one message of any type from `from`.
fn webhook(from: &str, id: &str, message: Value) -> String {
    let mut m = json!({"from": from, "id": id, "timestamp": "1763700000"});
    if let (Some(m), Some(fields)) = (m.as_object_mut(), message.as_object()) {
        m.extend(fields.clone());
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "contacts": [{"profile": {"name": "Rider"}, "wa_id": from}],
            "messages": [m]
        }}]}]
    })
    .to_string()
}

fn text(body: &str) -> Value {
    json!({"type": "text", "text": {"body": body}})
}

/// What the recorder got for `to`, oldest first.
async fn sent_to(stack: &Stack, to: &str) -> anyhow::Result<Vec<Value>> {
    Ok(stack
        .recorded()
        .await?
        .into_iter()
        .filter(|r| r["body"]["to"] == to)
        .map(|r| r["body"].clone())
        .collect())
}

/// Posts `message` and waits until it is stored and every answer sent.
async fn says(stack: &Stack, from: &str, id: &str, message: Value) -> anyhow::Result<()> {
    let (status, reply) = stack
        .post_webhook(DISCOUNT_CHANNEL, &webhook(from, id, message))
        .await?;
    anyhow::ensure!(status == 200, "webhook answered {status}: {reply}");
    wait_stored(&stack.store(), &[id]).await?;
    stack.settled().await
}

async fn admin_get(stack: &Stack, admin: &str, path: &str) -> anyhow::Result<Value> {
    let (status, body) = stack
        .call(reqwest::Method::GET, path, Some(admin), None)
        .await?;
    anyhow::ensure!(status == 200, "{path} answered {status}: {body}");
    Ok(body)
}

#[tokio::test]
async fn the_bot_offers_sends_codes_and_logs_declines_once_each() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let rider = "919811100001";
    let admin = stack.admin_token().await?;
    let mut watcher = stack.connect(&admin).await?;

    // A route, as the ad's prefilled text says it: the offer with its code.
    says(
        &stack,
        rider,
        "wamid.bot-1",
        text("Need Discount Code - Pune to Mumbai @ 2199"),
    )
    .await?;
    let sent = sent_to(&stack, rider).await?;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let offer = &sent[0]["interactive"];
    assert_eq!(offer["type"], "cta_url", "{offer}");
    assert!(
        offer["body"]["text"]
            .as_str()
            .is_some_and(|b| b.contains("TRUST4111")),
        "{offer}"
    );
    assert_eq!(offer["footer"]["text"], "Inter-City Experts");
    assert_eq!(
        offer["action"]["parameters"]["url"],
        "https://oneway.cab/app"
    );
    // Stored with the bot's answer; nobody is assigned, nobody waits.
    let stored = wait_stored(&stack.store(), &["wamid.bot-1"]).await?;
    let chat = stack.chat(&stored[0].chat_id).await?;
    assert_eq!(chat.customer_type, Stakeholder::Discount);
    assert_eq!(chat.assigned_to, None);
    assert!(!chat.awaiting_reply);
    let (messages, _) = stack.store().messages(&chat.chat_id, None, 0, 50).await?;
    let bot: Vec<_> = messages
        .iter()
        .filter(|m| m.sender_type == SenderType::System)
        .collect();
    assert_eq!(bot.len(), 1, "{messages:?}");
    assert_eq!(bot[0].sender, "discount-bot");

    // The same message again (the provider retries): no second answer.
    let (status, _) = stack
        .post_webhook(
            DISCOUNT_CHANNEL,
            &webhook(
                rider,
                "wamid.bot-1",
                text("Need Discount Code - Pune to Mumbai @ 2199"),
            ),
        )
        .await?;
    assert_eq!(status, 200);
    stack.settled().await?;
    assert_eq!(sent_to(&stack, rider).await?.len(), 1, "answered once");

    // Admins find the conversation and watch it (read-only).
    let listed = watcher
        .request("fetch_all_chats", json!({"customer_type": "Discount"}))
        .await?;
    assert_eq!(
        chats_field(&listed, "chat_id"),
        vec![json!(chat.chat_id)],
        "{listed}"
    );
    let joined = watcher
        .request("join_chat", json!({"chat_id": chat.chat_id}))
        .await?;
    assert_eq!(joined["data"]["joined"], true, "{joined}");

    // The campaign template's quick replies.
    says(
        &stack,
        rider,
        "wamid.bot-2",
        json!({"type": "button", "button": {"payload": "Yes, Send Discount Code", "text": "Yes, Send Discount Code"}}),
    )
    .await?;
    watcher
        .expect_where(
            "new_message",
            |d| d["message"]["type"] == "System" && d["message"]["sender"] == "discount-bot",
            Duration::from_secs(5),
        )
        .await?;
    let code = sent_to(&stack, rider).await?.pop().unwrap_or_default();
    assert_eq!(code["interactive"]["type"], "cta_url", "{code}");
    assert!(
        code["interactive"]["body"]["text"]
            .as_str()
            .is_some_and(|b| b.contains("TRUST4111"))
    );
    says(
        &stack,
        rider,
        "wamid.bot-3",
        json!({"type": "button", "button": {"payload": "no", "text": "I don't need discount"}}),
    )
    .await?;
    let ask = sent_to(&stack, rider).await?.pop().unwrap_or_default();
    assert_eq!(ask["interactive"]["type"], "button", "{ask}");
    let buttons = ask["interactive"]["action"]["buttons"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let titles: Vec<&str> = buttons
        .iter()
        .filter_map(|b| b["reply"]["title"].as_str())
        .collect();
    assert_eq!(titles, ["Bad Service", "Prices are High", "Other Reason"]);
    // The customer presses "Prices are High".
    let pressed = &buttons[1]["reply"];
    says(
        &stack,
        rider,
        "wamid.bot-4",
        json!({"type": "interactive", "interactive": {"type": "button_reply",
            "button_reply": {"id": pressed["id"], "title": pressed["title"]}}}),
    )
    .await?;
    let thanks = sent_to(&stack, rider).await?.pop().unwrap_or_default();
    assert_eq!(thanks["type"], "text", "{thanks}");

    // Anything else: the care text and the contact card; not text: textMsg.
    says(&stack, rider, "wamid.bot-5", text("hello")).await?;
    let sent = sent_to(&stack, rider).await?;
    let kinds: Vec<&str> = sent[sent.len() - 2..]
        .iter()
        .filter_map(|b| b["type"].as_str())
        .collect();
    assert!(
        kinds.contains(&"text") && kinds.contains(&"contacts"),
        "{kinds:?}"
    );
    says(
        &stack,
        rider,
        "wamid.bot-6",
        json!({"type": "image", "image": {"id": "media-1", "mime_type": "image/jpeg"}}),
    )
    .await?;
    let only_text = sent_to(&stack, rider).await?.pop().unwrap_or_default();
    assert!(
        only_text["text"]["body"]
            .as_str()
            .is_some_and(|b| b.contains("only text")),
        "{only_text}"
    );
    // A keyword rule.
    says(&stack, rider, "wamid.bot-7", text("Any job vacancy?")).await?;
    let job = sent_to(&stack, rider).await?.pop().unwrap_or_default();
    assert!(
        job["text"]["body"]
            .as_str()
            .is_some_and(|b| b.contains("careers")),
        "{job}"
    );
    assert_eq!(sent_to(&stack, rider).await?.len(), 8);

    // The decline log and the bot's statistics.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let declines = admin_get(
        &stack,
        &admin,
        &format!("/api/discount/declines?from={today}&to={today}"),
    )
    .await?;
    let declines = &declines["data"];
    let lines = declines["declines"].as_array().cloned().unwrap_or_default();
    assert_eq!(lines.len(), 1, "{declines}");
    assert_eq!(lines[0]["customer"], rider);
    assert_eq!(lines[0]["route"], "pune-to-mumbai");
    assert_eq!(lines[0]["reason"], "prices_high");
    assert_eq!(declines["reasons"]["prices_high"], 1);
    assert_eq!(declines["routes"]["pune-to-mumbai"]["prices_high"], 1);
    let stats = admin_get(
        &stack,
        &admin,
        &format!("/api/discount/stats?from={today}&to={today}"),
    )
    .await?;
    let totals = &stats["data"]["totals"];
    assert_eq!(
        totals["offers"], 1,
        "the retried message counted once: {stats}"
    );
    assert_eq!(totals["codes"], 1);
    assert_eq!(totals["declines"], 1);
    assert_eq!(totals["reasons"]["prices_high"], 1);
    assert_eq!(totals["care"], 1);
    assert_eq!(totals["not_text"], 1);
    assert_eq!(totals["keywords"]["care_job"], 1);
    assert_eq!(totals["routes"]["pune-to-mumbai"]["offers"], 1);

    // Agents read, never write, on the automated number.
    let refused = watcher
        .request(
            "send_message",
            json!({"chat_id": chat.chat_id, "message": "hi"}),
        )
        .await?;
    assert_eq!(refused["event"], "error", "{refused}");
    assert_eq!(refused["data"]["code"], "forbidden");
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_flood_guard_and_admin_changes_apply_at_once() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let admin = stack.admin_token().await?;

    // Warm the reply cache, then change the route's code: the next offer
    // has the new one (the change cleared the cache).
    let rider = "919811100002";
    says(&stack, rider, "wamid.flood-0", text("pune to mumbai")).await?;
    let replaced = stack
        .call(
            reqwest::Method::PUT,
            "/api/discount/routes/pune-to-mumbai",
            Some(&admin),
            Some(json!({"from": "Pune", "to": "Mumbai", "price": 1999, "code": "MONSOON25"})),
        )
        .await?;
    assert_eq!(replaced.0, 200, "{:?}", replaced.1);
    says(&stack, rider, "wamid.flood-1", text("pune to mumbai")).await?;
    let offer = sent_to(&stack, rider).await?.pop().unwrap_or_default();
    let body = offer["interactive"]["body"]["text"].as_str().unwrap_or("");
    assert!(body.contains("MONSOON25"), "{offer}");

    // Two answers a minute at most.
    let settings = admin_get(&stack, &admin, "/api/automations/discount_bot").await?;
    assert_eq!(settings["data"]["source"], "seeded", "{settings}");
    let mut changed = settings["data"]["settings"].clone();
    changed["answers_per_minute"] = json!(2);
    // Refused: a keyword text that does not exist, an unknown route.
    let mut no_text = changed.clone();
    no_text["keywords"] = json!([{"text": "no_such_text", "words": ["x"]}]);
    let mut no_route = changed.clone();
    no_route["campaign_route"] = json!("goa-to-mars");
    for (settings, want) in [(no_text, 400), (no_route, 400), (changed, 200)] {
        let (status, body) = stack
            .call(
                reqwest::Method::PUT,
                "/api/automations/discount_bot",
                Some(&admin),
                Some(settings),
            )
            .await?;
        assert_eq!(status, want, "{body}");
    }

    // Another bot writing without end: all stored, two answered. The guard
    // counts per minute of arrival, so start early in one.
    let other_bot = "919811100003";
    eventually(Duration::from_secs(61), || async {
        Ok((chrono::Utc::now().timestamp() % 60 < 40).then_some(()))
    })
    .await?;
    let ids: Vec<String> = (0..6).map(|i| format!("wamid.flood-bot-{i}")).collect();
    for id in &ids {
        let (status, _) = stack
            .post_webhook(
                DISCOUNT_CHANNEL,
                &webhook(other_bot, id, text("AUTO REPLY: I am away")),
            )
            .await?;
        assert_eq!(status, 200);
    }
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    wait_stored(&stack.store(), &id_refs).await?;
    stack.settled().await?;
    assert_eq!(
        sent_to(&stack, other_bot).await?.len(),
        4,
        "two care answers (text and card each), then quiet"
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn several_routes_as_people_type_them_get_the_configured_texts_byte_for_byte()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let admin = stack.admin_token().await?;
    // The business fills in a second route's real code.
    let (status, body) = stack
        .call(
            reqwest::Method::PUT,
            "/api/discount/routes/nashik-to-mumbai-airport",
            Some(&admin),
            Some(json!({"from": "Nashik", "to": "Mumbai Airport", "price": 1999, "code": "NASHIK200"})),
        )
        .await?;
    assert_eq!(status, 200, "{body}");

    let pune = (
        "🚖 Pune to Mumbai @ ₹2199",
        "Your discount code for Pune to Mumbai is *TRUST4111* 🎉\n\
         Open the OneWay.Cab app, book Pune to Mumbai, and enter *TRUST4111* on the payment page before you confirm.",
    );
    let nashik = (
        "🚖 Nashik to Mumbai Airport @ ₹1999",
        "Your discount code for Nashik to Mumbai Airport is *NASHIK200* 🎉\n\
         Open the OneWay.Cab app, book Nashik to Mumbai Airport, and enter *NASHIK200* on the payment page before you confirm.",
    );
    let variants = [
        ("Need Discount Code - Pune to Mumbai @ 2199", pune),
        ("PUNE   →  mumbai", pune),
        ("pune to mumbai @ ₹२१९९", pune),
        (
            "Need Discount Code – Nashik to Mumbai Airport @ ₹1999",
            nashik,
        ),
        ("nashik-mumbai AIRPORT", nashik),
        ("Nashik to Mumbai airport please", nashik),
    ];
    for (i, (typed, (header, body))) in variants.iter().enumerate() {
        let rider = format!("9198222000{i:02}");
        says(&stack, &rider, &format!("wamid.variant-{i}"), text(typed)).await?;
        let sent = sent_to(&stack, &rider).await?;
        assert_eq!(sent.len(), 1, "{typed}: {sent:?}");
        let offer = &sent[0]["interactive"];
        assert_eq!(offer["header"]["text"], *header, "{typed}");
        assert_eq!(offer["body"]["text"], *body, "{typed}");
        assert_eq!(offer["footer"]["text"], "Inter-City Experts");
        assert_eq!(
            offer["action"]["parameters"],
            json!({"display_text": "Book on OneWay.Cab", "url": "https://oneway.cab/app"})
        );
    }

    // A route still a placeholder, and anything else: the care answer,
    // exactly as messages.yaml says it, and the company's card.
    says(
        &stack,
        "919822200099",
        "wamid.variant-care",
        text("Pune to Shirdi"),
    )
    .await?;
    let sent = sent_to(&stack, "919822200099").await?;
    let texts: Vec<&Value> = sent.iter().filter(|b| b["type"] == "text").collect();
    assert_eq!(texts.len(), 1, "{sent:?}");
    assert_eq!(
        texts[0]["text"]["body"],
        "This is an automated number. 24*7 WhatsApp support is available on our\n\
         support number; you can also write to care@oneway.cab or book on\n\
         https://oneway.cab/app"
    );
    let card = sent
        .iter()
        .find(|b| b["type"] == "contacts")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        card["contacts"][0]["name"]["formatted_name"], "OneWay.Cab",
        "{card}"
    );
    assert_eq!(card["contacts"][0]["emails"][0]["email"], "care@oneway.cab");
    let stats = admin_get(&stack, &admin, "/api/discount/stats").await?;
    let routes = &stats["data"]["totals"]["routes"];
    assert_eq!(routes["pune-to-mumbai"]["offers"], 3, "{stats}");
    assert_eq!(routes["nashik-to-mumbai-airport"]["offers"], 3);
    assert_eq!(stats["data"]["totals"]["care"], 1);
    stack.stop().await;
    Ok(())
}
