//! The dashboard's HTTP routes: login and health.

use http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::json;

use shared::auth::{JwtKeys, bearer};
use shared::channel::ChannelTable;
use shared::executive::{Email, hash_password, verify_password};
use shared::http::{ApiError, json_response, parse_json_body};
use shared::provider::{MediaError, MediaSource};
use shared::store::{ChatStore, ExecutiveStore, InboundQueue};

pub struct State<S, Q, M> {
    pub store: S,
    pub queue: Q,
    pub keys: JwtKeys,
    pub media: M,
    pub channels: ChannelTable,
    /// A real hash to verify against when the e-mail is unknown, so both
    /// failures take the same time.
    decoy_hash: String,
}

impl<S, Q, M> State<S, Q, M> {
    pub fn new(
        store: S,
        queue: Q,
        keys: JwtKeys,
        media: M,
        channels: ChannelTable,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            store,
            queue,
            keys,
            media,
            channels,
            decoy_hash: hash_password("decoy password for unknown accounts")?,
        })
    }
}

impl State<shared::aws::DynamoStore, shared::aws::SqsInboundQueue, shared::provider::PinbotClient> {
    pub async fn from_env() -> anyhow::Result<Self> {
        let sdk = shared::aws::sdk_config().await;
        let channels = ChannelTable::from_env()?;
        Self::new(
            shared::aws::store_from_env(&sdk).map_err(anyhow::Error::msg)?,
            shared::aws::inbound_queue_from_env(&sdk).map_err(anyhow::Error::msg)?,
            JwtKeys::from_env().map_err(anyhow::Error::msg)?,
            shared::provider::PinbotClient::from_env(&channels)?,
            channels,
        )
    }
}

pub async fn handle<S, Q, M>(state: &State<S, Q, M>, req: Request) -> Result<Response<Body>, Error>
where
    S: ExecutiveStore + ChatStore,
    Q: InboundQueue,
    M: MediaSource,
{
    if req.method() == Method::GET && req.uri().path().starts_with("/api/media/") {
        return Ok(media(state, &req)
            .await
            .unwrap_or_else(|e| e.into_response().map(Body::from)));
    }
    let res = match (req.method(), req.uri().path()) {
        (&Method::POST, "/api/auth/login") => login(state, req.body().as_ref()).await,
        (&Method::GET, "/api/health") => Ok(json_response(
            StatusCode::OK,
            &json!({"status": 1, "message": "Smart Chat API Running"}),
        )),
        (&Method::GET, "/api/health/ready") => Ok(ready(state).await),
        (&Method::GET, "/api/dashboard/stats") => stats(state, &req).await,
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

async fn login<S: ExecutiveStore, Q, M>(
    state: &State<S, Q, M>,
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

async fn ready<S: ExecutiveStore, Q: InboundQueue, M>(
    state: &State<S, Q, M>,
) -> http::Response<String> {
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

/// The caller behind `Authorization: Bearer <JWT>`, refusing disabled
/// executives.
async fn authorize<S: ExecutiveStore, Q, M>(
    state: &State<S, Q, M>,
    req: &Request,
) -> Result<(), ApiError> {
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = bearer(header)
        .ok_or_else(|| ApiError::unauthorized("Authorization: Bearer <token> is required"))?;
    let caller = state
        .keys
        .verify(token)
        .map_err(|e| ApiError::unauthorized(format!("{e}")))?;
    match state.store.executive(&caller.executive_id).await {
        Ok(Some(e)) if e.disabled => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "executive is disabled",
        )),
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::error!(error = ?e, "executive lookup failed");
            Err(ApiError::unavailable("authorization is unavailable; retry"))
        }
    }
}

/// `GET /api/media/{media_id}?channel=<path id>`: the provider's file, with
/// the channel's key. Retryable failures are 503; the message that named
/// the media is stored regardless.
async fn media<S: ExecutiveStore, Q, M: MediaSource>(
    state: &State<S, Q, M>,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    authorize(state, req).await?;
    let path = req.path_parameters();
    let media_id = path
        .first("media_id")
        .map(str::to_owned)
        .or_else(|| {
            req.uri()
                .path()
                .strip_prefix("/api/media/")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let valid = !media_id.is_empty()
        && media_id.len() <= 128
        && media_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        return Err(ApiError::bad_request(
            "media_id must be 1-128 letters, digits, - _ .",
        ));
    }
    let query = req.query_string_parameters();
    let channel_id = query.first("channel").ok_or_else(|| {
        ApiError::bad_request("the `channel` query parameter (the chat's channel) is required")
    })?;
    let channel = state.channels.get(channel_id).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown channel `{}`",
            channel_id.chars().take(32).collect::<String>()
        ))
    })?;
    let media = state.media.download(channel, &media_id).await.map_err(|e| {
        tracing::warn!(media_id = %media_id, channel = %channel.id, error = %e, "media download failed");
        match e {
            MediaError::NotFound => ApiError::not_found("no such media at the provider"),
            MediaError::TooLarge => ApiError::new(StatusCode::BAD_GATEWAY, "too_large", e.to_string()),
            MediaError::Refused(_) | MediaError::NoKey(_) => ApiError::new(StatusCode::BAD_GATEWAY, "provider_refused", e.to_string()),
            MediaError::Unavailable(_) => ApiError::unavailable("the provider is unavailable; retry"),
        }
    })?;
    let mut res = Response::new(Body::Binary(media.bytes));
    if let Ok(v) = http::HeaderValue::from_str(&media.content_type) {
        res.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("private, max-age=3600"),
    );
    Ok(res)
}

/// `GET /api/dashboard/stats` (JWT): the counters as stored, read strongly
/// consistently (they change in the same transaction as every status).
async fn stats<S: ExecutiveStore + ChatStore, Q, M>(
    state: &State<S, Q, M>,
    req: &Request,
) -> Result<http::Response<String>, ApiError> {
    authorize(state, req).await?;
    let counts = state.store.counts().await.map_err(|e| {
        tracing::error!(error = ?e, "counters unavailable");
        ApiError::unavailable("statistics are unavailable; retry")
    })?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"status": 1, "data": counts}),
    ))
}
