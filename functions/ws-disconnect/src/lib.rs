//! `$disconnect`: forget the connection and every room it was in; an
//! executive whose last connection this was goes offline and their open
//! chats are handed on.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{Error, LambdaEvent};

use shared::aws::websocket::{connection_id, response};
use shared::store::{ChatStore, ConnectionStore, ExecutiveStore, Pusher, RoutingStore};

pub struct State<S, P> {
    pub store: S,
    pub pusher: P,
}

impl State<shared::aws::DynamoStore, shared::aws::ApiGwPusher> {
    pub async fn from_env() -> anyhow::Result<Self> {
        let sdk = shared::aws::cold_start().await?;
        Ok(Self {
            store: shared::aws::store_from_env(&sdk)?,
            pusher: shared::aws::pusher_from_env(&sdk)?,
        })
    }
}

pub async fn handle<S, P>(
    state: &State<S, P>,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error>
where
    S: ChatStore + ConnectionStore + ExecutiveStore + RoutingStore,
    P: Pusher,
{
    let Some(id) = connection_id(&event.payload) else {
        return Ok(response(400, None));
    };
    if let Err(e) = shared::dashboard::disconnect(&state.store, &state.pusher, &id).await {
        // The records expire by TTL and the five-minute sweep puts a
        // stale executive offline; a retry of $disconnect is not offered.
        tracing::warn!(connection_id = %id, error = ?e, "could not finish disconnecting; TTL and the sweep will");
    }
    Ok(response(200, None))
}
