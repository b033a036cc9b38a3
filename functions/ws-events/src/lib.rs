//! Every dashboard event route (and `$default`): the reply, or an `error`
//! frame, is pushed back on the same connection, which stays open.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{Error, LambdaEvent};

use adapters::websocket::{body_text, connection_id, response};
use domain::config::Env;
use domain::dashboard::DashboardStore;
use domain::protocol::Pusher;
use domain::protocol::{ErrorCode, ProtocolError, error_frame};
use domain::sending::OutboundQueue;

pub struct State<S, P, Q> {
    pub store: S,
    pub pusher: P,
    /// Where agent sends go (the `outbound` function delivers them).
    pub outbox: Q,
    pub catalogs: domain::dashboard::Catalogs,
}

impl State<adapters::DynamoStore, adapters::ApiGwPusher, adapters::SqsOutboundQueue> {
    /// The function as deployed: settings read once from `env`, clients
    /// from `aws` (built once per cold start; the local gateway passes its
    /// own with the template's environment).
    pub fn from_env(env: &Env, aws: &adapters::Aws) -> anyhow::Result<Self> {
        Ok(Self {
            store: adapters::DynamoStore::from_env(env, aws)?,
            pusher: adapters::ApiGwPusher::from_env(env, aws)?,
            outbox: adapters::SqsOutboundQueue::from_env(env, aws)?,
            catalogs: domain::dashboard::Catalogs::from_env(env)?,
        })
    }
}

pub async fn handle<S, P, Q>(
    state: &State<S, P, Q>,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error>
where
    S: DashboardStore,
    P: Pusher,
    Q: OutboundQueue,
{
    let req = event.payload;
    let Some(id) = connection_id(&req) else {
        return Ok(response(400, None));
    };
    let pushed = match body_text(&req) {
        Ok(text) => {
            domain::dashboard::handle_frame(
                &state.store,
                &state.pusher,
                &state.outbox,
                &state.catalogs,
                &id,
                &text,
            )
            .await
        }
        Err(reason) => {
            let frame = error_frame(&ProtocolError::new(ErrorCode::BadRequest, reason), None);
            state.pusher.push(&id, &frame).await.map(|_| ())
        }
    };
    if let Err(e) = pushed {
        tracing::warn!(connection_id = %id, error = ?e, "could not deliver the reply");
    }
    Ok(response(200, None))
}
