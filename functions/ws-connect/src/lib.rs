//! `$connect`: a dashboard opens `wss://…/?token=<JWT>[&chat_id=…]`.
//! A bad or missing token refuses the handshake with 401.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use domain::config::Env;
use lambda_runtime::{Error, LambdaEvent};

use adapters::websocket::{connection_id, response};
use domain::auth::JwtKeys;
use domain::chat::ChatStore;
use domain::dashboard::{ConnectError, connect};
use domain::executive::ExecutiveStore;
use domain::protocol::ConnectionStore;

pub struct State<S> {
    pub store: S,
    pub keys: JwtKeys,
}

impl State<adapters::DynamoStore> {
    /// The function as deployed: settings read once from `env`, clients
    /// from `aws` (built once per cold start; the local gateway passes its
    /// own with the template's environment).
    pub fn from_env(env: &Env, aws: &adapters::Aws) -> anyhow::Result<Self> {
        Ok(Self {
            store: adapters::DynamoStore::from_env(env, aws)?,
            keys: JwtKeys::from_env(env)?,
        })
    }
}

pub async fn handle<S>(
    state: &State<S>,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error>
where
    S: ChatStore + ConnectionStore + ExecutiveStore,
{
    let req = event.payload;
    let Some(id) = connection_id(&req) else {
        return Ok(response(400, Some("no connection id".into())));
    };
    let token = req.query_string_parameters.first("token");
    let chat_id = req.query_string_parameters.first("chat_id");
    Ok(
        match connect(&state.store, &state.keys, id.clone(), token, chat_id).await {
            Ok(_) => response(200, None),
            Err(ConnectError::Unauthorized(e)) => {
                tracing::info!(connection_id = %id, reason = %e, "connection refused");
                response(401, Some("Unauthorized".into()))
            }
            Err(ConnectError::Disabled) => response(403, Some("Forbidden".into())),
            Err(ConnectError::TooMany) => response(
                429,
                Some(format!(
                    "at most {} open dashboards per executive; close one",
                    domain::dashboard::MAX_CONNECTIONS_PER_EXECUTIVE
                )),
            ),
            Err(ConnectError::BadChat(reason)) => response(400, Some(reason)),
            Err(ConnectError::Store(e)) => {
                tracing::error!(connection_id = %id, error = ?e, "could not record connection");
                response(500, Some("try again".into()))
            }
        },
    )
}
