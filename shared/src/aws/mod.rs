//! Adapters: the ports of [`crate::store`] on DynamoDB, SQS and the API
//! Gateway management API. The only modules that name AWS types.

pub mod dynamo;
pub mod item;
pub mod push;
pub mod queue;
pub mod websocket;

pub use dynamo::DynamoStore;
pub use push::ApiGwPusher;
pub use queue::SqsInboundQueue;

/// The SDK configuration from the Lambda environment (region, credentials,
/// `AWS_ENDPOINT_URL_*` overrides). Built once per cold start.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
