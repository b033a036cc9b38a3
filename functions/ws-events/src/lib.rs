//! Every dashboard event route (and `$default`): the reply, or an `error`
//! frame, is pushed back on the same connection, which stays open.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{Error, LambdaEvent};

use adapters::websocket::{body_text, connection_id, response};
use domain::config::Env;
use domain::dashboard::DashboardStore;
use domain::events::{EventOutbox, EventPublisher, publish_pending_soon};
use domain::protocol::Pusher;
use domain::protocol::{ErrorCode, ProtocolError, error_frame};
use domain::sending::OutboundQueue;

pub struct State<S, P, Q, E> {
    pub store: S,
    pub pusher: P,
    /// Where agent sends go (the `outbound` function delivers them).
    pub outbox: Q,
    /// The domain event bus: resolves and assignments leave events pending
    /// in the store, published right after the frame.
    pub events: E,
    pub catalogs: domain::dashboard::Catalogs,
}

impl
    State<
        adapters::DynamoStore,
        adapters::ApiGwPusher,
        adapters::SqsOutboundQueue,
        adapters::EventBridgePublisher,
    >
{
    /// The function as deployed: settings read once from `env`, clients
    /// from `aws` (built once per cold start; the local gateway passes its
    /// own with the template's environment).
    pub fn from_env(env: &Env, aws: &adapters::Aws) -> anyhow::Result<Self> {
        Ok(Self {
            store: adapters::DynamoStore::from_env(env, aws)?,
            pusher: adapters::ApiGwPusher::from_env(env, aws)?,
            outbox: adapters::SqsOutboundQueue::from_env(env, aws)?,
            events: adapters::EventBridgePublisher::from_env(env, aws)?,
            catalogs: domain::dashboard::Catalogs::from_env(env)?,
        })
    }
}

pub async fn handle<S, P, Q, E>(
    state: &State<S, P, Q, E>,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error>
where
    S: DashboardStore + EventOutbox,
    P: Pusher,
    Q: OutboundQueue,
    E: EventPublisher,
{
    let req = event.payload;
    let Some(id) = connection_id(&req) else {
        return Ok(response(400, None));
    };
    let pushed = match body_text(&req) {
        Ok(text) => {
            let pushed = domain::dashboard::handle_frame(
                &state.store,
                &state.pusher,
                &state.outbox,
                &state.catalogs,
                &id,
                &text,
            )
            .await;
            if domain::dashboard::may_emit_events(&text) {
                publish_pending_soon(&state.store, &state.events).await;
            }
            pushed
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
