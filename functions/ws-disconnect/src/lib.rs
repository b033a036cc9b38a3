//! `$disconnect`: forget the connection and every room it was in; an
//! executive whose last connection this was goes offline and their open
//! chats are handed on.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use domain::config::Env;
use lambda_runtime::{Error, LambdaEvent};

use adapters::websocket::{connection_id, response};
use domain::chat::ChatStore;
use domain::executive::ExecutiveStore;
use domain::protocol::{ConnectionStore, Pusher};
use domain::routing::assignment::RoutingStore;

pub struct State<S, P> {
    pub store: S,
    pub pusher: P,
}

impl State<adapters::DynamoStore, adapters::ApiGwPusher> {
    /// The function as deployed: settings read once from `env`, clients
    /// from `aws` (built once per cold start; the local gateway passes its
    /// own with the template's environment).
    pub fn from_env(env: &Env, aws: &adapters::Aws) -> anyhow::Result<Self> {
        Ok(Self {
            store: adapters::DynamoStore::from_env(env, aws)?,
            pusher: adapters::ApiGwPusher::from_env(env, aws)?,
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
    if let Err(e) = domain::dashboard::disconnect(&state.store, &state.pusher, &id).await {
        // The records expire by TTL and the five-minute sweep puts a
        // stale executive offline; a retry of $disconnect is not offered.
        tracing::warn!(connection_id = %id, error = ?e, "could not finish disconnecting; TTL and the sweep will");
    }
    Ok(response(200, None))
}
