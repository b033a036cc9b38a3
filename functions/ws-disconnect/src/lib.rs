//! `$disconnect`: forget the connection and every room it was in.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{Error, LambdaEvent};

use shared::aws::websocket::{connection_id, response};
use shared::store::ConnectionStore;

pub struct State<S> {
    pub store: S,
}

impl State<shared::aws::DynamoStore> {
    pub async fn from_env() -> anyhow::Result<Self> {
        let sdk = shared::aws::sdk_config().await;
        Ok(Self {
            store: shared::aws::store_from_env(&sdk).map_err(anyhow::Error::msg)?,
        })
    }
}

pub async fn handle<S: ConnectionStore>(
    state: &State<S>,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let Some(id) = connection_id(&event.payload) else {
        return Ok(response(400, None));
    };
    if let Err(e) = shared::dashboard::disconnect(&state.store, &id).await {
        // The records expire by TTL anyway; a retry of $disconnect is not offered.
        tracing::warn!(connection_id = %id, error = ?e, "could not remove connection; TTL will");
    }
    Ok(response(200, None))
}
