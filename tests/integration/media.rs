use serde_json::Value;
use smart_chat_tests::*;

#[tokio::test]
async fn media_is_relayed_from_the_provider_with_the_channel_key() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let token = stack.admin_token().await?;
    // A driver's photo on the Partner number, a customer's on the Customer one.
    for (channel, from, wamid, media_id) in [
        (PARTNER_CHANNEL, "919800000061", "wamid.media-1", "1001"),
        ("8000247247", "919800000062", "wamid.media-2", "1002"),
    ] {
        let body = image_webhook(from, wamid, media_id);
        assert_eq!(stack.post_webhook(channel, &body).await?.0, 200);
    }
    wait_stored(&stack.store(), &["wamid.media-1", "wamid.media-2"]).await?;
    let get = |path: &str, token: Option<&str>| {
        let mut req = stack.http.get(stack.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };

    let res = get("/api/media/1001?channel=9099039188", Some(&token)).await?;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/jpeg")
    );
    assert_eq!(
        res.bytes().await?.to_vec(),
        local_gateway::recorder::media_bytes("1001"),
        "bytes intact"
    );

    let downloads = || async {
        let all = stack.recorded().await?;
        anyhow::Ok(
            all.into_iter()
                .filter(|c| {
                    c["path"]
                        .as_str()
                        .is_some_and(|p| p.starts_with("/v1/downloadmedia/"))
                })
                .collect::<Vec<_>>(),
        )
    };
    let listed = downloads().await?;
    let call = &listed[0];
    assert_eq!(call["path"], "/v1/downloadmedia/1001");
    assert_eq!(
        call["headers"]["apikey"], "local-dev-wa_api_key_1",
        "the Partner channel's key"
    );
    let res = get("/api/media/1002?channel=8000247247", Some(&token)).await?;
    assert_eq!(res.status().as_u16(), 200);
    let listed = downloads().await?;
    assert_eq!(
        listed[1]["headers"]["apikey"], "local-dev-wa_api_key_2",
        "the Customer channel's key"
    );

    // Auth and input.
    assert_eq!(
        get("/api/media/1001?channel=9099039188", None)
            .await?
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        get("/api/media/1001?channel=9099039188", Some("forged"))
            .await?
            .status()
            .as_u16(),
        401
    );
    // The chat decides the key: a channel in the query changes nothing.
    assert_eq!(
        get("/api/media/1001?channel=8000247247", Some(&token))
            .await?
            .status()
            .as_u16(),
        200
    );
    let listed = downloads().await?;
    assert_eq!(listed[2]["headers"]["apikey"], "local-dev-wa_api_key_1");
    // Only media of a chat the caller may see: a Partner agent gets the
    // Partner photo, and the customer's is as unknown to them as a made-up id.
    stack
        .add_executive(
            "partner-agent",
            "partner-agent@test.local",
            "partner-agent-pass",
            domain::executive::Role::Agent,
            &[domain::channel::Stakeholder::Partner],
            false,
        )
        .await?;
    let agent = stack
        .login("partner-agent@test.local", "partner-agent-pass")
        .await?;
    assert_eq!(
        get("/api/media/1001", Some(&agent))
            .await?
            .status()
            .as_u16(),
        200
    );
    let theirs = get("/api/media/1002", Some(&agent)).await?;
    assert_eq!(theirs.status().as_u16(), 404);
    let unknown = get("/api/media/9999", Some(&agent)).await?;
    assert_eq!(unknown.status().as_u16(), 404);
    assert_eq!(theirs.text().await?, unknown.text().await?);
    assert_eq!(
        get("/api/media/bad%20id?channel=9099039188", Some(&token))
            .await?
            .status()
            .as_u16(),
        400
    );
    assert_eq!(
        get("/api/media/missing?channel=9099039188", Some(&token))
            .await?
            .status()
            .as_u16(),
        404
    );

    // Provider trouble is retryable, then works.
    stack.recorder_fails(502, 1).await?;
    let res = get("/api/media/1001?channel=9099039188", Some(&token)).await?;
    assert_eq!(res.status().as_u16(), 503);
    let body: Value = res.json().await?;
    assert_eq!(body["error"]["code"], "unavailable");
    assert_eq!(
        get("/api/media/1001?channel=9099039188", Some(&token))
            .await?
            .status()
            .as_u16(),
        200
    );
    stack.stop().await;
    Ok(())
}
