//! The dashboard's HTTP routes: login and health.

use http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde::Deserialize;
use serde_json::json;

use shared::auth::JwtKeys;
use shared::executive::{Email, hash_password, verify_password};
use shared::http::{ApiError, json_response, parse_json_body};
use shared::store::{ExecutiveStore, InboundQueue};

pub struct State<S, Q> {
    pub store: S,
    pub queue: Q,
    pub keys: JwtKeys,
    /// A real hash to verify against when the e-mail is unknown, so both
    /// failures take the same time.
    decoy_hash: String,
}

impl<S, Q> State<S, Q> {
    pub fn new(store: S, queue: Q, keys: JwtKeys) -> anyhow::Result<Self> {
        Ok(Self {
            store,
            queue,
            keys,
            decoy_hash: hash_password("decoy password for unknown accounts")?,
        })
    }
}

impl State<shared::aws::DynamoStore, shared::aws::SqsInboundQueue> {
    pub async fn from_env() -> anyhow::Result<Self> {
        let sdk = shared::aws::sdk_config().await;
        Self::new(
            shared::aws::store_from_env(&sdk).map_err(anyhow::Error::msg)?,
            shared::aws::inbound_queue_from_env(&sdk).map_err(anyhow::Error::msg)?,
            JwtKeys::from_env().map_err(anyhow::Error::msg)?,
        )
    }
}

pub async fn handle<S, Q>(state: &State<S, Q>, req: Request) -> Result<Response<Body>, Error>
where
    S: ExecutiveStore,
    Q: InboundQueue,
{
    let res = match (req.method(), req.uri().path()) {
        (&Method::POST, "/api/auth/login") => login(state, req.body().as_ref()).await,
        (&Method::GET, "/api/health") => Ok(json_response(
            StatusCode::OK,
            &json!({"status": 1, "message": "Smart Chat API Running"}),
        )),
        (&Method::GET, "/api/health/ready") => Ok(ready(state).await),
        (_, path) => Err(ApiError::not_found(format!(
            "no route {} {}",
            req.method(),
            path.chars().take(100).collect::<String>()
        ))),
    };
    Ok(res.unwrap_or_else(ApiError::into_response).map(Body::from))
}

#[derive(Deserialize)]
struct Login {
    email: String,
    password: String,
}

async fn login<S: ExecutiveStore, Q>(
    state: &State<S, Q>,
    body: &[u8],
) -> Result<http::Response<String>, ApiError> {
    let input: Login = parse_json_body(body)?;
    let wrong = || ApiError::unauthorized("wrong email or password");
    let email = Email::parse(&input.email).map_err(|_| wrong())?;
    let found = state.store.executive_by_email(&email).await.map_err(|e| {
        tracing::error!(error = ?e, "executive lookup failed");
        ApiError::unavailable("login is unavailable; try again")
    })?;
    let Some(executive) = found else {
        verify_password(&input.password, &state.decoy_hash);
        return Err(wrong());
    };
    if !verify_password(&input.password, &executive.password_hash) || executive.disabled {
        tracing::info!(executive_id = %executive.executive_id, "login refused");
        return Err(wrong());
    }
    let token = state.keys.issue(&executive).map_err(|e| {
        tracing::error!(error = %e, "token signing failed");
        ApiError::unavailable("login is unavailable; try again")
    })?;
    tracing::info!(executive_id = %executive.executive_id, "login");
    Ok(json_response(
        StatusCode::OK,
        &json!({"status": 1, "token": token, "executive": executive}),
    ))
}

async fn ready<S: ExecutiveStore, Q: InboundQueue>(state: &State<S, Q>) -> http::Response<String> {
    let (db, queue) = tokio::join!(state.store.ping(), state.queue.ping());
    let show = |ok: bool| if ok { "ok" } else { "unavailable" };
    let all_ok = db.is_ok() && queue.is_ok();
    if let Err(e) = &db {
        tracing::warn!(error = ?e, "readiness: dynamodb");
    }
    if let Err(e) = &queue {
        tracing::warn!(error = ?e, "readiness: sqs");
    }
    json_response(
        if all_ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &json!({"status": i32::from(all_ok), "checks": {"dynamodb": show(db.is_ok()), "sqs": show(queue.is_ok())}}),
    )
}
