use domain::auth::{Claims, JwtKeys};
use domain::channel::Stakeholder;
use domain::executive::Role;
use domain::secret::Secret;
use serde_json::{Value, json};
use smart_chat_tests::*;

#[tokio::test]
async fn websocket_handshakes_without_a_valid_token_are_refused() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    assert_eq!(stack.handshake_status("").await?, Some(401));
    assert_eq!(stack.handshake_status("?token=").await?, Some(401));
    assert_eq!(stack.handshake_status("?token=garbage").await?, Some(401));

    let foreign = JwtKeys::new(
        &Secret::new("a-completely-different-signing-key-0000".into()),
        chrono::Duration::hours(1),
    )
    .map_err(anyhow::Error::msg)?;
    let claims = Claims::own("dev-admin", Role::Admin, chrono::Duration::hours(1));
    let token = foreign.sign(&claims).map_err(anyhow::Error::msg)?;
    assert_eq!(
        stack.handshake_status(&format!("?token={token}")).await?,
        Some(401)
    );

    let expired = Claims {
        exp: chrono::Utc::now().timestamp() - 600,
        ..claims.clone()
    };
    let token = stack
        .running
        .jwt
        .sign(&expired)
        .map_err(anyhow::Error::msg)?;
    assert_eq!(
        stack.handshake_status(&format!("?token={token}")).await?,
        Some(401)
    );

    stack
        .add_executive(
            "gone-agent",
            "gone@test.local",
            "gone-pass-1234",
            Role::Agent,
            &[Stakeholder::Partner],
            true,
        )
        .await?;
    let disabled = Claims {
        sub: "gone-agent".into(),
        ..claims
    };
    let token = stack
        .running
        .jwt
        .sign(&disabled)
        .map_err(anyhow::Error::msg)?;
    assert_eq!(
        stack.handshake_status(&format!("?token={token}")).await?,
        Some(403)
    );

    let good = stack.admin_token().await?;
    assert_eq!(
        stack.handshake_status(&format!("?token={good}")).await?,
        None
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn login_refuses_wrong_credentials_with_one_message() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut messages = Vec::new();
    for (email, password) in [
        (ADMIN_EMAIL, "wrong password"),
        ("nobody@test.local", ADMIN_PASSWORD),
        ("not an email", "x"),
    ] {
        let res = stack
            .http
            .post(stack.url("/api/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        assert_eq!(res.status().as_u16(), 401, "{email}");
        let body: Value = res.json().await?;
        messages.push(body["error"]["message"].clone());
    }
    assert!(messages.windows(2).all(|w| w[0] == w[1]), "{messages:?}");

    let res = stack
        .http
        .post(stack.url("/api/auth/login"))
        .body("{")
        .send()
        .await?;
    assert_eq!(res.status().as_u16(), 400);

    let res = stack
        .http
        .post(stack.url("/api/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await?;
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await?;
    assert_eq!(body["executive"]["email"], ADMIN_EMAIL);
    assert_eq!(body["executive"]["role"], "admin");
    assert!(
        body["executive"].get("password_hash").is_none(),
        "hash leaked: {body}"
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_webhook_token_when_configured_is_required_before_parsing() -> anyhow::Result<()> {
    let stack = Stack::start_with(|c| {
        c.webhook_auth =
            domain::whatsapp::signature::WebhookAuth::Token(Secret::new("hook-token".into()));
    })
    .await?;
    let url = stack.url(&format!("/api/chats/whatsapp_chat/{PARTNER_CHANNEL}"));
    let res = stack.http.post(&url).body("{not even json").send().await?;
    assert_eq!(
        res.status().as_u16(),
        401,
        "auth is checked before the body is parsed"
    );
    let res = stack
        .http
        .post(&url)
        .header("x-webhook-token", "hook-token")
        .body(fixture("webhook_text.json"))
        .send()
        .await?;
    assert_eq!(res.status().as_u16(), 200);
    let res = stack
        .http
        .post(format!("{url}?token=hook-token"))
        .body(fixture("webhook_text.json"))
        .send()
        .await?;
    assert_eq!(res.status().as_u16(), 200);
    stack.stop().await;
    Ok(())
}
