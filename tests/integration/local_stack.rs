use serde_json::{Value, json};
use smart_chat_tests::*;

#[tokio::test]
async fn health_and_readiness_check_the_real_dependencies() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let health: Value = stack
        .http
        .get(stack.url("/api/health"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        health,
        json!({"status": 1, "message": "Smart Chat API Running"})
    );
    let res = stack
        .http
        .get(stack.url("/api/health/ready"))
        .send()
        .await?;
    assert_eq!(res.status().as_u16(), 200);
    let ready: Value = res.json().await?;
    assert_eq!(ready["checks"], json!({"dynamodb": "ok", "sqs": "ok"}));
    let res = stack.http.get(stack.url("/api/nowhere")).send().await?;
    assert_eq!(res.status().as_u16(), 404);
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn readiness_answers_503_when_the_store_is_down() -> anyhow::Result<()> {
    let mut stack = Stack::start_with_own_dynamodb().await?;
    stack.stop_emulator().await;
    let res = stack
        .http
        .get(stack.url("/api/health/ready"))
        .send()
        .await?;
    assert_eq!(res.status().as_u16(), 503);
    let ready: Value = res.json().await?;
    assert_eq!(
        ready["checks"],
        json!({"dynamodb": "unavailable", "sqs": "unavailable"})
    );
    // Liveness does not depend on the store.
    let res = stack.http.get(stack.url("/api/health")).send().await?;
    assert_eq!(res.status().as_u16(), 200);
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_verification_handshake_echoes_the_challenge_only_for_the_right_token()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    for path in ["/api/webhook/verify", "/api/chats/whatsapp_chat/9099039188"] {
        let ok = stack
            .http
            .get(stack.url(&format!(
                "{path}?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"
            )))
            .send()
            .await?;
        assert_eq!(ok.status().as_u16(), 200, "{path}");
        assert_eq!(ok.text().await?, "1158201444");
        let underscored = stack
            .http
            .get(stack.url(&format!(
                "{path}?hub_mode=subscribe&hub_verify_token=verify-me&hub_challenge=77"
            )))
            .send()
            .await?;
        assert_eq!(underscored.text().await?, "77");
        let wrong = stack
            .http
            .get(stack.url(&format!(
                "{path}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"
            )))
            .send()
            .await?;
        assert_eq!(wrong.status().as_u16(), 403, "{path}");
    }
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_pinbot_recorder_answers_like_the_provider_and_lists_requests() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let base = stack.recorder_url()?;
    let body = json!({"messaging_product": "whatsapp", "to": "919812345678", "type": "text", "text": {"body": "hi"}});
    let answer: Value = stack
        .http
        .post(format!("{base}/v2/messages"))
        .header("apikey", "test-key")
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    assert!(
        answer["messages"][0]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("wamid.")),
        "{answer}"
    );
    assert_eq!(answer["messages"][0]["message_status"], "accepted");
    let listed = stack.recorded().await?;
    assert_eq!(listed[0]["path"], "/v2/messages");
    assert_eq!(listed[0]["headers"]["apikey"], "test-key");
    assert_eq!(listed[0]["body"], body);
    assert_eq!(listed[0]["answered"], 200);

    // Told to fail, it fails exactly that often.
    stack.recorder_fails(429, 2).await?;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let res = stack
            .http
            .post(format!("{base}/v2/messages"))
            .json(&body)
            .send()
            .await?;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, vec![429, 429, 200]);
    stack.stop().await;
    Ok(())
}
