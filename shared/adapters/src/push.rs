//! Pushes through API Gateway's `@connections` management API.

use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use domain::protocol::{ConnectionId, PushError, Pushed, Pusher};

#[derive(Clone, Debug)]
pub struct ApiGwPusher {
    client: Client,
}

impl ApiGwPusher {
    /// `endpoint` is `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`
    /// in AWS, the local gateway's WebSocket address locally.
    pub fn new(sdk: &SdkConfig, endpoint: &str) -> Self {
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .build();
        Self {
            client: Client::from_conf(conf),
        }
    }
}

impl Pusher for ApiGwPusher {
    async fn push(&self, connection: &ConnectionId, frame: &str) -> Result<Pushed, PushError> {
        let result = self
            .client
            .post_to_connection()
            .connection_id(&connection.0)
            .data(Blob::new(frame.as_bytes()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Pushed::Posted),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => {
                Ok(Pushed::Gone)
            }
            Err(e) => Err(PushError(Box::new(e))),
        }
    }

    async fn is_open(&self, connection: &ConnectionId) -> Result<bool, PushError> {
        let result = self
            .client
            .get_connection()
            .connection_id(&connection.0)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => Ok(false),
            Err(e) => Err(PushError(Box::new(e))),
        }
    }

    async fn close(&self, connection: &ConnectionId) -> Result<(), PushError> {
        let result = self
            .client
            .delete_connection()
            .connection_id(&connection.0)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => Ok(()),
            Err(e) => Err(PushError(Box::new(e))),
        }
    }
}
