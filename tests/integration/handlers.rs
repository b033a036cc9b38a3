//! Handlers called directly with event JSON shaped as AWS sends it
//! (tests/data), against the real local store.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::sqs::SqsEvent;
use domain::channel::Stakeholder;
use domain::chat::ChatStatus;
use domain::chat::ChatStore;
use domain::protocol::{ConnectionId, ConnectionStore};
use lambda_runtime::{Context, LambdaEvent};
use smart_chat_tests::*;

#[tokio::test]
async fn the_webhook_function_accepts_an_http_api_v2_event_from_aws() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let req: lambda_http::request::LambdaRequest =
        serde_json::from_str(&fixture("apigw_v2_webhook_post.json"))?;
    let res = webhook::handle(&stack.running.gateway.functions.webhook, req.into())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(res.status().as_u16(), 200);
    // The gateway's consumer takes it from the queue into the store.
    let store = stack.store();
    let stored = wait_stored(&store, &["wamid.fixture-apigw-1"]).await?;
    let chat = store
        .chat(&stored[0].chat_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no chat"))?;
    assert_eq!(chat.customer.as_str(), "919811100001");
    assert_eq!(chat.last_message.as_deref(), Some("gaadi kab aayegi?"));
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_poison_message_fails_alone_and_holds_back_only_its_own_customer() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let event: SqsEvent = serde_json::from_str(&fixture("sqs_inbound_batch.json"))?;
    let res = inbound::handle(
        &stack.running.gateway.functions.inbound,
        LambdaEvent::new(event, Context::default()),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let failed = failed_ids(&res);
    assert_eq!(
        failed,
        vec![
            "0f3c1a4e-2222-4a55-9a55-000000000002",
            "0f3c1a4e-3333-4a55-9a55-000000000003"
        ],
        "the poison message and the later message of the same customer are retried"
    );
    let store = stack.store();
    let chats = store
        .list_chats(ChatStatus::Active, Stakeholder::Partner, None, 10)
        .await?
        .0;
    let customers: Vec<_> = chats.iter().map(|c| c.customer.as_str()).collect();
    assert_eq!(
        customers,
        vec!["919811100002"],
        "the other customer's message is stored"
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_connect_function_accepts_a_websocket_connect_event_from_aws() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let token = stack.admin_token().await?;
    let functions = &stack.running.gateway.functions;

    let with_token: ApiGatewayWebsocketProxyRequest = serde_json::from_str(
        &fixture("ws_connect_event.json").replace("TOKEN_PLACEHOLDER", &token),
    )?;
    let res = ws_connect::handle(
        &functions.ws_connect,
        LambdaEvent::new(with_token, Context::default()),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(res.status_code, 200);
    let stored = stack
        .store()
        .connection(&ConnectionId("Kx3pXeD9BcwCJMw=".into()))
        .await?;
    assert_eq!(
        stored.map(|c| c.executive_id.to_string()),
        Some("dev-admin".to_owned())
    );

    let forged: ApiGatewayWebsocketProxyRequest = serde_json::from_str(
        &fixture("ws_connect_event.json").replace("TOKEN_PLACEHOLDER", "forged"),
    )?;
    let res = ws_connect::handle(
        &functions.ws_connect,
        LambdaEvent::new(forged, Context::default()),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(res.status_code, 401);
    stack.stop().await;
    Ok(())
}
