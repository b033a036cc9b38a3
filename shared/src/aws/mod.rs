//! Adapters: the ports of [`crate::store`] on DynamoDB, SQS and the API
//! Gateway management API. The only modules that name AWS types.

pub mod dynamo;
pub mod events;
pub mod item;
pub mod push;
pub mod queue;
pub mod secrets;
pub mod sqs_event;
pub mod websocket;

pub use dynamo::DynamoStore;
pub use events::EventBridgePublisher;
pub use push::ApiGwPusher;
pub use queue::{SqsForwardQueue, SqsInboundQueue, SqsOutboundQueue};

use crate::config::ConfigError;

/// What every function does first on a cold start: the SDK configuration,
/// and the secrets from the parameter store when `SECRETS_SSM_PATH` is set
/// (see [`secrets`]).
pub async fn cold_start() -> anyhow::Result<aws_config::SdkConfig> {
    let sdk = sdk_config().await;
    secrets::resolve_from_env(&sdk).await?;
    Ok(sdk)
}

/// The SDK configuration from the Lambda environment (region, credentials,
/// `AWS_ENDPOINT_URL_*` overrides). Built once per cold start.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The store, from the table names the template passes every function.
pub fn store_from_env(sdk: &aws_config::SdkConfig) -> Result<DynamoStore, ConfigError> {
    let tables = crate::config::Tables::from_env()?;
    Ok(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), tables))
}

/// The `@connections` pusher, from `WS_MANAGEMENT_ENDPOINT`.
pub fn pusher_from_env(sdk: &aws_config::SdkConfig) -> Result<ApiGwPusher, ConfigError> {
    let endpoint = crate::config::env_required("WS_MANAGEMENT_ENDPOINT")?;
    Ok(ApiGwPusher::new(sdk, &endpoint))
}

/// The inbound FIFO queue, from `INBOUND_QUEUE_URL`.
pub fn inbound_queue_from_env(sdk: &aws_config::SdkConfig) -> Result<SqsInboundQueue, ConfigError> {
    let url = crate::config::env_required("INBOUND_QUEUE_URL")?;
    Ok(SqsInboundQueue::new(aws_sdk_sqs::Client::new(sdk), url))
}

/// The send queue, from `OUTBOUND_QUEUE_URL`.
pub fn outbound_queue_from_env(
    sdk: &aws_config::SdkConfig,
) -> Result<SqsOutboundQueue, ConfigError> {
    let url = crate::config::env_required("OUTBOUND_QUEUE_URL")?;
    Ok(SqsOutboundQueue::new(aws_sdk_sqs::Client::new(sdk), url))
}

/// The Communication Master queue, from `FORWARD_QUEUE_URL`; `None` when
/// forwarding is not configured.
pub fn forward_queue_from_env(sdk: &aws_config::SdkConfig) -> Option<SqsForwardQueue> {
    let url = std::env::var("FORWARD_QUEUE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    Some(SqsForwardQueue::new(aws_sdk_sqs::Client::new(sdk), url))
}

/// The domain event bus, from `EVENT_BUS_NAME`.
pub fn publisher_from_env(
    sdk: &aws_config::SdkConfig,
) -> Result<EventBridgePublisher, ConfigError> {
    let bus = crate::config::env_required("EVENT_BUS_NAME")?;
    Ok(EventBridgePublisher::new(
        aws_sdk_eventbridge::Client::new(sdk),
        bus,
    ))
}
