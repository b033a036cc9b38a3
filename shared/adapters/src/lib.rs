//! Adapters: the domain's ports on DynamoDB, SQS, EventBridge, the API
//! Gateway management API, the parameter store and Pinbot's HTTP API, and
//! the HTTP helpers of the Lambda handlers. The only crate that names AWS
//! SDK or HTTP client types.

pub mod dynamo;
pub mod events;
pub mod http;
pub mod item;
pub mod pinbot;
pub mod push;
pub mod queue;
pub mod secrets;
pub mod sqs_event;
pub mod websocket;

pub use dynamo::DynamoStore;
pub use events::EventBridgePublisher;
pub use push::ApiGwPusher;
pub use queue::{SqsForwardQueue, SqsInboundQueue, SqsOutboundQueue};

use domain::config::{ConfigError, Env};

/// The AWS clients of a function, built once per cold start from one SDK
/// configuration. On Lambda [`Aws::new`] builds them; the local gateway
/// builds its own (emulator endpoints, a request counter) and hands them
/// to the same constructors.
#[derive(Clone, Debug)]
pub struct Aws {
    pub sdk: aws_config::SdkConfig,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
}

impl Aws {
    pub fn new(sdk: aws_config::SdkConfig) -> Self {
        Self {
            dynamo: aws_sdk_dynamodb::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            eventbridge: aws_sdk_eventbridge::Client::new(&sdk),
            sdk,
        }
    }
}

/// What every function does first on a cold start: the SDK configuration
/// (region, credentials, `AWS_ENDPOINT_URL_*`), and its environment with
/// the secrets from the parameter store when `SECRETS_SSM_PATH` is set
/// (see [`secrets`]). A failure here is a failed cold start, which Lambda
/// retries; a function never runs with the wrong secrets.
pub async fn cold_start() -> anyhow::Result<(Env, Aws)> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let env = Env::process();
    let found = secrets::resolve(&env, &sdk).await?;
    Ok((env.with_secrets(found), Aws::new(sdk)))
}

impl DynamoStore {
    /// The store, from the table names the template passes every function.
    pub fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        Ok(Self::new(
            aws.dynamo.clone(),
            dynamo::Tables::from_env(env)?,
        ))
    }
}

impl ApiGwPusher {
    /// The `@connections` pusher, from `WS_MANAGEMENT_ENDPOINT`.
    pub fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        Ok(Self::new(
            &aws.sdk,
            &env.required("WS_MANAGEMENT_ENDPOINT")?,
        ))
    }
}

impl SqsInboundQueue {
    /// The inbound FIFO queue, from `INBOUND_QUEUE_URL`.
    pub fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        Ok(Self::new(
            aws.sqs.clone(),
            env.required("INBOUND_QUEUE_URL")?,
        ))
    }
}

impl SqsOutboundQueue {
    /// The send queue, from `OUTBOUND_QUEUE_URL`.
    pub fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        Ok(Self::new(
            aws.sqs.clone(),
            env.required("OUTBOUND_QUEUE_URL")?,
        ))
    }
}

impl SqsForwardQueue {
    /// The Communication Master queue, from `FORWARD_QUEUE_URL`; `None`
    /// when forwarding is not configured.
    pub fn from_env(env: &Env, aws: &Aws) -> Option<Self> {
        let url = env.get("FORWARD_QUEUE_URL")?;
        Some(Self::new(aws.sqs.clone(), url.to_owned()))
    }
}

impl EventBridgePublisher {
    /// The domain event bus, from `EVENT_BUS_NAME`.
    pub fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        Ok(Self::new(
            aws.eventbridge.clone(),
            env.required("EVENT_BUS_NAME")?,
        ))
    }
}
