//! Every dashboard event route (and `$default`): the reply, or an `error`
//! frame, is pushed back on the same connection, which stays open.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{Error, LambdaEvent};

use shared::aws::websocket::{body_text, connection_id, response};
use shared::protocol::{ErrorCode, ProtocolError, error_frame};
use shared::store::{
    ChatStore, ConnectionStore, CustomerStore, ExecutiveStore, OutboundQueue, Pusher, RoutingStore,
    TagStore,
};

pub struct State<S, P, Q> {
    pub store: S,
    pub pusher: P,
    /// Where agent sends go (the `outbound` function delivers them).
    pub outbox: Q,
    pub catalogs: shared::dashboard::Catalogs,
}

impl State<shared::aws::DynamoStore, shared::aws::ApiGwPusher, shared::aws::SqsOutboundQueue> {
    pub async fn from_env() -> anyhow::Result<Self> {
        let sdk = shared::aws::cold_start().await?;
        Ok(Self {
            store: shared::aws::store_from_env(&sdk)?,
            pusher: shared::aws::pusher_from_env(&sdk)?,
            outbox: shared::aws::outbound_queue_from_env(&sdk)?,
            catalogs: shared::dashboard::Catalogs::from_env()?,
        })
    }
}

pub async fn handle<S, P, Q>(
    state: &State<S, P, Q>,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error>
where
    S: ChatStore + ConnectionStore + CustomerStore + TagStore + ExecutiveStore + RoutingStore,
    P: Pusher,
    Q: OutboundQueue,
{
    let req = event.payload;
    let Some(id) = connection_id(&req) else {
        return Ok(response(400, None));
    };
    let pushed = match body_text(&req) {
        Ok(text) => {
            shared::dashboard::handle_frame(
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
