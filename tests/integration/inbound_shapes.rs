use std::time::Duration;

use domain::channel::Stakeholder;
use domain::chat::ChatStore;
use domain::chat::Content;
use domain::chat::{ChatStatus, DeliveryStatus};
use domain::customer::CustomerStore;
use domain::customer::SenderId;
use serde_json::json;
use smart_chat_tests::*;

const SHAPES: [&str; 16] = [
    "wamid.shape-text",
    "wamid.shape-image",
    "wamid.shape-video",
    "wamid.shape-voice",
    "wamid.shape-audio",
    "wamid.shape-document",
    "wamid.shape-sticker",
    "wamid.shape-location",
    "wamid.shape-contacts",
    "wamid.shape-button-reply",
    "wamid.shape-list-reply",
    "wamid.shape-button",
    "wamid.shape-reaction",
    "wamid.shape-unreact",
    "wamid.shape-reply",
    "wamid.shape-unsupported",
];

#[tokio::test]
async fn every_whatsapp_shape_is_stored_with_its_kind_preview_and_metadata() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (status, _) = stack
        .post_webhook(PARTNER_CHANNEL, &fixture("webhook_all_shapes.json"))
        .await?;
    assert_eq!(status, 200);
    let store = stack.store();
    let stored = wait_stored(&store, &SHAPES).await?;

    let summary: Vec<(&str, String)> = stored
        .iter()
        .map(|m| (m.content.kind(), m.preview.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("text", "Cab late hai 🚕".to_owned()),
            ("image", "📷 Photo: meter reading".to_owned()),
            ("video", "🎥 Video: flat tyre".to_owned()),
            ("audio", "🎤 Voice message".to_owned()),
            ("audio", "🎵 Audio".to_owned()),
            ("document", "📄 Document: rc-book.pdf".to_owned()),
            ("sticker", "🏷️ Sticker".to_owned()),
            ("location", "📍 Location: Pune Station".to_owned()),
            ("contacts", "👤 Contact: Suresh Owner".to_owned()),
            ("interactive", "Yes, Send Discount Code".to_owned()),
            ("interactive", "Pune to Mumbai".to_owned()),
            ("button", "हाँ".to_owned()),
            ("reaction", "Reacted 👍".to_owned()),
            ("reaction", "Removed a reaction".to_owned()),
            ("text", "yahi jagah hai".to_owned()),
            (
                "unsupported",
                "Unsupported message (unsupported)".to_owned()
            ),
        ]
    );

    // Media metadata is kept.
    assert_eq!(
        stored[5].content,
        Content::Media {
            media_type: domain::chat::MediaType::Document,
            media_id: "1005".into(),
            mime_type: Some("application/pdf".into()),
            caption: Some("RC copy".into()),
            filename: Some("rc-book.pdf".into()),
            voice: false,
        }
    );
    assert!(
        matches!(&stored[3].content, Content::Media { voice: true, media_id, .. } if media_id == "1003")
    );
    assert!(
        matches!(&stored[7].content, Content::Location { latitude, longitude, address: Some(a), .. }
        if (*latitude - 18.5289).abs() < 1e-9 && (*longitude - 73.8744).abs() < 1e-9 && a == "Agarkar Nagar, Pune")
    );
    assert!(
        matches!(&stored[10].content, Content::InteractiveReply { reply_kind, reply_id, .. }
        if reply_kind == "list_reply" && reply_id == "route_pune_mumbai")
    );
    assert!(
        matches!(&stored[11].content, Content::Button { payload: Some(p), .. } if p == "issue_resolved_yes")
    );
    assert!(
        matches!(&stored[15].content, Content::Unsupported { errors, .. }
        if errors == &vec!["131051 Message type unknown: Message type is currently not supported.".to_owned()])
    );

    // Replies, quick replies and reactions link to the message they quote.
    let id_of = |wamid: &str| {
        stored
            .iter()
            .find(|m| m.wa_message_id.as_deref() == Some(wamid))
            .map(|m| m.message_id.clone())
    };
    assert_eq!(
        stored[14].reply_to_message_id,
        id_of("wamid.shape-location"),
        "reply"
    );
    assert_eq!(
        stored[11].reply_to_message_id,
        id_of("wamid.shape-text"),
        "button with context"
    );
    assert_eq!(
        stored[12].reply_to_message_id,
        id_of("wamid.shape-image"),
        "reaction"
    );

    // One chat for the sender, messages in body order.
    let chat_id = stored[0].chat_id.clone();
    assert!(stored.iter().all(|m| m.chat_id == chat_id));
    let (newest_first, _) = store.messages(&chat_id, None, 0, 50).await?;
    let order: Vec<_> = newest_first
        .iter()
        .rev()
        .filter_map(|m| m.wa_message_id.clone())
        .collect();
    assert_eq!(order, SHAPES.to_vec());
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn senders_in_one_body_get_their_own_chats_and_names_by_id() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack
        .post_webhook(PARTNER_CHANNEL, &fixture("webhook_all_shapes.json"))
        .await?;
    let store = stack.store();
    let stored = wait_stored(
        &store,
        &[
            "wamid.shape-text",
            "wamid.shape-second-sender",
            "wamid.shape-no-contact",
            "wamid.shape-username",
        ],
    )
    .await?;
    let mut names = Vec::new();
    for m in &stored {
        let chat = store
            .chat(&m.chat_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no chat"))?;
        names.push((chat.customer.to_string(), chat.customer_name.clone()));
    }
    assert_eq!(
        names,
        vec![
            ("919800000011".to_owned(), Some("Anil".to_owned())),
            ("919800000012".to_owned(), Some("Bhavna".to_owned())),
            ("919800000013".to_owned(), None),
            (
                "US.13491208655302741918".to_owned(),
                Some("Ravi".to_owned())
            ),
        ],
        "contacts are listed in another order than messages: names must follow wa_id/user_id"
    );
    let chats = store
        .list_chats(ChatStatus::Active, Stakeholder::Partner, None, 10)
        .await?
        .0;
    assert_eq!(chats.len(), 4);
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn statuses_move_outbound_messages_forward_and_push_message_status() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let store = stack.store();
    let customer = "919800000021";
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook(customer, "C", "wamid.in-1", "hello"),
        )
        .await?;
    // The chat exists before its first message is stored: wait for the
    // message, or the appends below race the consumer's.
    wait_stored(&store, &["wamid.in-1"]).await?;
    let chat = eventually(Duration::from_secs(10), || async {
        Ok(store
            .current_chat(
                Stakeholder::Partner,
                &SenderId::parse(customer).map_err(anyhow::Error::msg)?,
            )
            .await?)
    })
    .await?;
    let now = chrono::Utc::now();
    let out = append_outbound_text(
        &store,
        &chat.chat_id,
        "We are on it",
        now,
        Some("wamid.out-1"),
    )
    .await?;
    let failing = append_outbound_text(
        &store,
        &chat.chat_id,
        "We are on it",
        now,
        Some("wamid.out-2"),
    )
    .await?;

    let mut dash = stack.connect(&stack.admin_token().await?).await?;
    dash.request("join_chat", json!({"chat_id": chat.chat_id}))
        .await?;

    // Out of order: delivered, then a late sent (ignored), then read, then a late failed (ignored).
    for status in ["delivered", "sent", "read", "failed"] {
        stack
            .post_webhook(
                PARTNER_CHANNEL,
                &status_webhook("wamid.out-1", customer, status, json!([])),
            )
            .await?;
    }
    let first = dash
        .expect("message_status", Duration::from_secs(5))
        .await?;
    assert_eq!(first["data"]["status"], "delivered");
    assert_eq!(first["data"]["message_id"], out.message_id.as_str());
    let second = dash
        .expect("message_status", Duration::from_secs(5))
        .await?;
    assert_eq!(second["data"]["status"], "read");

    // A failure with the provider's error.
    let errors = json!([{"code": 131047, "title": "Re-engagement message", "error_data": {"details": "More than 24 hours have passed"}}]);
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &status_webhook("wamid.out-2", customer, "failed", errors),
        )
        .await?;
    let failed = dash
        .expect("message_status", Duration::from_secs(5))
        .await?;
    assert_eq!(failed["data"]["message_id"], failing.message_id.as_str());
    assert_eq!(
        failed["data"]["errors"][0],
        "131047 Re-engagement message: More than 24 hours have passed"
    );

    // Statuses for messages we never sent are acknowledged, nothing else.
    let (code, _) = stack
        .post_webhook(
            PARTNER_CHANNEL,
            &status_webhook("wamid.not-ours", customer, "read", json!([])),
        )
        .await?;
    assert_eq!(code, 200);
    assert!(
        dash.quiet("message_status", Duration::from_millis(500))
            .await
    );

    let read = stored_message(&store, "wamid.out-1")
        .await?
        .and_then(|m| m.delivery);
    assert_eq!(read.map(|d| d.status), Some(DeliveryStatus::Read));
    let failed = stored_message(&store, "wamid.out-2")
        .await?
        .and_then(|m| m.delivery);
    assert_eq!(
        failed.as_ref().map(|d| d.status),
        Some(DeliveryStatus::Failed)
    );
    let history = dash
        .request("fetch_chats_by_user", json!({"chat_id": chat.chat_id}))
        .await?;
    let statuses: Vec<_> = history["data"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["delivery_status"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec![json!("failed"), json!("read"), serde_json::Value::Null]
    );
    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn flows_orders_notices_ads_and_future_types_are_kept_for_agents() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let old = "919800000051";
    let new = "919800000052";
    let long_id = format!("wamid.{}", "L".repeat(3000));
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "contacts": [{"profile": {"name": "Kiran"}, "wa_id": old}],
            "messages": [
                {"from": old, "id": "wamid.welcome", "type": "request_welcome"},
                {"from": old, "id": "wamid.ad", "type": "text", "text": {"body": "Is this offer valid?"},
                 "referral": {"source_url": "https://fb.me/x", "source_id": "120208", "source_type": "ad",
                              "headline": "Pune to Mumbai ₹1999", "body": "Book now", "media_type": "image",
                              "ctwa_clid": "ARAkLk"}},
                {"from": old, "id": "wamid.flow", "type": "interactive", "interactive": {"type": "nfm_reply",
                 "nfm_reply": {"name": "flow", "body": "Sent", "response_json": "{\"flow_token\":\"t\",\"stars\":\"5\"}"}}},
                {"from": old, "id": "wamid.order", "type": "order", "order": {"catalog_id": "c1", "product_items": [
                    {"product_retailer_id": "sedan-day", "quantity": 1, "item_price": 2499, "currency": "INR"},
                    {"product_retailer_id": "extra-km", "quantity": 20, "item_price": 14, "currency": "INR"}]}},
                {"from": old, "id": "wamid.hologram", "type": "hologram", "hologram": {}},
                {"from": old, "id": long_id, "type": "text", "text": {"body": "long id"}},
                {"from": old, "id": "wamid.system", "type": "system", "system": {
                    "body": "Kiran changed from 919800000051 to 919800000052", "new_wa_id": new,
                    "type": "user_changed_number"}}
            ]
        }}]}]
    });
    let (status, answer) = stack
        .post_webhook(PARTNER_CHANNEL, &body.to_string())
        .await?;
    assert_eq!(status, 200, "{answer}");
    let store = stack.store();
    let hashed = domain::whatsapp::bounded_id(&long_id);
    let stored = wait_stored(
        &store,
        &[
            "wamid.ad",
            "wamid.flow",
            "wamid.order",
            "wamid.hologram",
            &hashed,
            "wamid.system",
        ],
    )
    .await?;
    let summary: Vec<(&str, &str)> = stored
        .iter()
        .map(|m| (m.content.kind(), m.preview.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("text", "Is this offer valid?"),
            ("flow_reply", "📝 Form reply: Sent"),
            ("order", "🛒 Order: 21 items, INR 2779"),
            ("unsupported", "Unsupported message (hologram)"),
            ("text", "long id"),
            (
                "system",
                "ℹ️ Kiran changed from 919800000051 to 919800000052"
            ),
        ]
    );
    assert!(hashed.len() <= domain::whatsapp::ID_MAX);

    // The ad is on the message, as the dashboard receives it.
    let referral = stored[0].referral.clone().expect("referral stored");
    assert_eq!(referral.ctwa_clid.as_deref(), Some("ARAkLk"));
    assert_eq!(referral.source_id.as_deref(), Some("120208"));
    let view = serde_json::to_value(domain::protocol::views::MessageView::new(&stored[0]))?;
    assert_eq!(view["referral_label"], "Ad: Pune to Mumbai ₹1999");
    assert_eq!(view["referral"]["headline"], "Pune to Mumbai ₹1999");
    // The form's answers are kept as sent.
    assert!(
        matches!(&stored[1].content, Content::FlowReply { response_json, .. }
        if response_json == r#"{"flow_token":"t","stars":"5"}"#)
    );
    // Both numbers name each other.
    let ids = [
        SenderId::parse(old).map_err(anyhow::Error::msg)?,
        SenderId::parse(new).map_err(anyhow::Error::msg)?,
    ];
    let profiles = store.profiles(&ids).await?;
    assert_eq!(profiles[&ids[0]].changed_number_to.as_deref(), Some(new));
    assert_eq!(profiles[&ids[1]].changed_number_from.as_deref(), Some(old));
    // request_welcome stored nothing: the one chat holds the six messages.
    let chat = store
        .chat(&stored[0].chat_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("chat"))?;
    assert_eq!(chat.message_count, 6);
    assert!(stored_message(&store, "wamid.welcome").await?.is_none());
    stack.stop().await;
    Ok(())
}
