//! Tags: predefined per team (seeded from config, edited by admins over
//! HTTP), applied and removed by agents, `tag_updated` to exactly the
//! chat's watchers and its team.

use std::time::Duration;

use domain::channel::Stakeholder;
use reqwest::Method;
use serde_json::json;
use smart_chat_tests::*;

const QUIET: Duration = Duration::from_millis(700);

#[tokio::test]
async fn agents_tag_chats_and_the_right_dashboards_hear_it() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut tagger = stack
        .connect_agent("partner-a", Stakeholder::Partner)
        .await?;
    let mut teammate = stack
        .connect_agent("partner-b", Stakeholder::Partner)
        .await?;
    let mut vendor = stack.connect_agent("vendor-c", Stakeholder::Vendor).await?;
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000501", "Kiran", "wamid.tag-1", "fare issue"),
        )
        .await?;
    let chat_id = wait_stored(&stack.store(), &["wamid.tag-1"]).await?[0]
        .chat_id
        .to_string();

    // config lists the team's tags (seeded from shared/config/tags.yaml).
    let config = tagger.request("config", json!({})).await?;
    let partner_tags = config["data"]["tags"]["Partner"].clone();
    assert!(
        partner_tags
            .as_array()
            .is_some_and(|t| t.contains(&json!("Payment Issue")))
    );
    assert!(
        config["data"]["tags"]["Vendor"].is_null(),
        "only the caller's teams"
    );
    assert_eq!(
        config["data"]["system_tags"],
        json!(["Awaiting Customer Response"])
    );

    // Applying (any case) stores the team's spelling and tells the team.
    let applied = tagger
        .request(
            "apply_tag",
            json!({"chat_id": chat_id, "tag": "payment issue"}),
        )
        .await?;
    assert_eq!(applied["event"], "apply_tag");
    assert_eq!(applied["data"]["tags"], json!(["Payment Issue"]));
    assert_eq!(applied["data"]["changed"], true);
    let heard = teammate
        .expect("tag_updated", Duration::from_secs(5))
        .await?;
    assert_eq!(heard["data"]["chat_id"], chat_id.as_str());
    assert_eq!(heard["data"]["action"], "applied");
    assert_eq!(heard["data"]["tag"], "Payment Issue");
    assert_eq!(heard["data"]["by"], "partner-a");
    assert!(
        vendor.quiet("tag_updated", QUIET).await,
        "not the vendor team's chat"
    );

    // Again: nothing changes, nobody hears.
    let again = tagger
        .request(
            "apply_tag",
            json!({"chat_id": chat_id, "tag": "Payment Issue"}),
        )
        .await?;
    assert_eq!(again["data"]["changed"], false);
    assert!(teammate.quiet("tag_updated", QUIET).await);

    // The list shows it and filters by it.
    let listed = teammate
        .request("fetch_all_chats", json!({"tag": "PAYMENT issue"}))
        .await?;
    assert_eq!(chats_field(&listed, "chat_id"), vec![json!(chat_id)]);
    assert_eq!(listed["data"]["chats"][0]["tags"], json!(["Payment Issue"]));

    // Unknown, system and foreign: precise errors, connection still usable.
    for (event, data, code) in [
        (
            "apply_tag",
            json!({"chat_id": chat_id, "tag": "VIP"}),
            "not_found",
        ),
        (
            "apply_tag",
            json!({"chat_id": chat_id, "tag": "Awaiting Customer Response"}),
            "forbidden",
        ),
        ("remove_tag", json!({"chat_id": chat_id}), "invalid_data"),
        (
            "apply_tag",
            json!({"chat_id": chat_id, "tag": 5}),
            "invalid_data",
        ),
        (
            "apply_tag",
            json!({"chat_id": chat_id, "tag": "x".repeat(41)}),
            "invalid_data",
        ),
    ] {
        let e = tagger.request(event, data.clone()).await?;
        assert_eq!(e["event"], "error", "{data}");
        assert_eq!(e["data"]["code"], code, "{data}");
    }
    let foreign = vendor
        .request(
            "apply_tag",
            json!({"chat_id": chat_id, "tag": "Payment Issue"}),
        )
        .await?;
    assert_eq!(
        foreign["data"]["code"], "not_found",
        "other teams' chats do not exist for them"
    );

    // Removing tells the team too.
    let removed = teammate
        .request(
            "remove_tag",
            json!({"chat_id": chat_id, "tag": "PAYMENT ISSUE"}),
        )
        .await?;
    assert_eq!(removed["data"]["tags"], json!([]));
    assert_eq!(removed["data"]["changed"], true);
    let heard = tagger.expect("tag_updated", Duration::from_secs(5)).await?;
    assert_eq!(heard["data"]["action"], "removed");
    assert_eq!(heard["data"]["by"], "partner-b");

    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn admins_edit_each_teams_tags_over_http() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let admin = stack.admin_token().await?;
    stack
        .add_executive(
            "agent-t",
            "agent-t@test.local",
            "agent-t-password",
            domain::executive::Role::Agent,
            &[Stakeholder::Partner],
            false,
        )
        .await?;
    let agent = stack
        .login("agent-t@test.local", "agent-t-password")
        .await?;

    // Anyone signed in lists their teams' tags; nobody else.
    let (status, listed) = stack
        .call(Method::GET, "/api/tags", Some(&agent), None)
        .await?;
    assert_eq!(status, 200);
    assert!(
        listed["data"]["Partner"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(listed["data"]["Customer"].is_null());
    let (status, _) = stack.call(Method::GET, "/api/tags", None, None).await?;
    assert_eq!(status, 401);

    // Only admins change them.
    let new_tag = json!({"customer_type": "Partner", "name": "Fuel  Card"});
    let (status, _) = stack
        .call(
            Method::POST,
            "/api/tags",
            Some(&agent),
            Some(new_tag.clone()),
        )
        .await?;
    assert_eq!(status, 403);
    let (status, created) = stack
        .call(
            Method::POST,
            "/api/tags",
            Some(&admin),
            Some(new_tag.clone()),
        )
        .await?;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["data"]["name"], "Fuel Card");
    let (status, dup) = stack
        .call(
            Method::POST,
            "/api/tags",
            Some(&admin),
            Some(json!({"customer_type": "partner", "name": "fuel card"})),
        )
        .await?;
    assert_eq!(
        (status, dup["error"]["code"].clone()),
        (409, json!("tag_exists"))
    );
    for bad in [
        json!({"customer_type": "Discount", "name": "X"}),
        json!({"customer_type": "Martian", "name": "X"}),
        json!({"customer_type": "Partner", "name": "Awaiting Customer Response"}),
        json!({"customer_type": "Partner"}),
    ] {
        let (status, _) = stack
            .call(Method::POST, "/api/tags", Some(&admin), Some(bad.clone()))
            .await?;
        assert_eq!(status, 400, "{bad}");
    }

    // The new tag can be applied; a deleted starting tag cannot.
    let (status, _) = stack
        .call(
            Method::DELETE,
            "/api/tags/Partner/Penalty",
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(status, 200);
    let (status, _) = stack
        .call(
            Method::DELETE,
            "/api/tags/Partner/Penalty",
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(status, 404);
    let (_, listed) = stack
        .call(Method::GET, "/api/tags", Some(&agent), None)
        .await?;
    let partner = listed["data"]["Partner"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(partner.contains(&json!("Fuel Card")));
    assert!(!partner.contains(&json!("Penalty")));

    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919800000502", "Anil", "wamid.tag-2", "card"),
        )
        .await?;
    let chat_id = wait_stored(&stack.store(), &["wamid.tag-2"]).await?[0]
        .chat_id
        .to_string();
    let mut dash = stack.connect(&agent).await?;
    let ok = dash
        .request("apply_tag", json!({"chat_id": chat_id, "tag": "fuel card"}))
        .await?;
    assert_eq!(ok["data"]["tags"], json!(["Fuel Card"]));
    let gone = dash
        .request("apply_tag", json!({"chat_id": chat_id, "tag": "Penalty"}))
        .await?;
    assert_eq!(gone["data"]["code"], "not_found");

    // Removing a tag by its URL-encoded name.
    let (status, _) = stack
        .call(
            Method::DELETE,
            "/api/tags/Partner/Fuel%20Card",
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(status, 200);

    stack.stop().await;
    Ok(())
}
