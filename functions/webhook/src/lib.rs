//! `POST /api/chats/whatsapp_chat/{channel}`: check, parse, queue, answer.
//! `GET` on the same path and `GET /api/webhook/verify`: WhatsApp's
//! verification handshake.
//!
//! A 200 means every event in the body is durably on the inbound FIFO
//! queue; anything less and the provider retries.

use chrono::Utc;
use domain::config::Env;
use http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde_json::json;

use adapters::http::{ApiError, json_response, text_response};
use domain::channel::ChannelTable;
use domain::inbound::QueuedEvent;
use domain::inbound::{ForwardQueue, InboundQueue};
use domain::secret::Secret;
use domain::whatsapp::parse_webhook;
use domain::whatsapp::signature::{WebhookAuth, WebhookAuthError};

/// Default body limit: WhatsApp webhooks are a few KB; SQS takes 256 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

pub struct State<Q, F> {
    pub queue: Q,
    /// Raw bodies for Communication Master; `None` turns forwarding off.
    pub forward: Option<F>,
    pub channels: ChannelTable,
    pub auth: WebhookAuth,
    pub verify_token: Option<Secret>,
    pub max_body_bytes: usize,
}

impl State<adapters::SqsInboundQueue, adapters::SqsForwardQueue> {
    /// The function as deployed: settings read once from `env`, clients
    /// from `aws` (built once per cold start; the local gateway passes its
    /// own with the template's environment).
    pub fn from_env(env: &Env, aws: &adapters::Aws) -> anyhow::Result<Self> {
        let max = env.u64("MAX_WEBHOOK_BODY_BYTES", DEFAULT_MAX_BODY_BYTES as u64)?;
        Ok(Self {
            queue: adapters::SqsInboundQueue::from_env(env, aws)?,
            forward: adapters::SqsForwardQueue::from_env(env, aws),
            channels: ChannelTable::from_env(env)?,
            auth: WebhookAuth::from_env(env),
            verify_token: env.secret("WEBHOOK_VERIFY_TOKEN"),
            max_body_bytes: usize::try_from(max).unwrap_or(DEFAULT_MAX_BODY_BYTES),
        })
    }
}

pub async fn handle<Q: InboundQueue, F: ForwardQueue>(
    state: &State<Q, F>,
    req: Request,
) -> Result<Response<Body>, Error> {
    let res = match *req.method() {
        Method::GET => verify(state, &req),
        Method::POST => receive(state, &req)
            .await
            .unwrap_or_else(ApiError::into_response),
        _ => ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET or POST",
        )
        .into_response(),
    };
    Ok(res.map(Body::from))
}

/// Query parameters arrive as `hub.mode` from Meta and `hub_mode` from
/// some relays; both are accepted.
fn hub_param<'a>(
    q: &'a lambda_http::aws_lambda_events::query_map::QueryMap,
    name: &str,
) -> Option<&'a str> {
    q.first(&format!("hub.{name}"))
        .or_else(|| q.first(&format!("hub_{name}")))
}

fn verify<Q, F>(state: &State<Q, F>, req: &Request) -> http::Response<String> {
    let q = req.query_string_parameters();
    let mode = hub_param(&q, "mode");
    let token = hub_param(&q, "verify_token");
    let challenge = hub_param(&q, "challenge");
    let ok = match (&state.verify_token, mode, token) {
        (Some(expected), Some("subscribe"), Some(t)) => expected.matches(t),
        _ => false,
    };
    match (ok, challenge) {
        (true, Some(c)) => text_response(StatusCode::OK, c.to_owned()),
        (true, None) => ApiError::bad_request("hub.challenge is missing").into_response(),
        (false, _) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "verification token does not match",
        )
        .into_response(),
    }
}

async fn receive<Q: InboundQueue, F: ForwardQueue>(
    state: &State<Q, F>,
    req: &Request,
) -> Result<http::Response<String>, ApiError> {
    let path = req.path_parameters();
    let channel_id = path.first("channel").unwrap_or_default();
    let channel = state.channels.get(channel_id).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown channel `{}`",
            channel_id.chars().take(32).collect::<String>()
        ))
    })?;

    let body = req.body().as_ref();
    if body.len() > state.max_body_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "body is {} bytes; the limit is {}",
                body.len(),
                state.max_body_bytes
            ),
        ));
    }

    let headers = req.headers();
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    let query = req.query_string_parameters();
    let token = headers
        .get("x-webhook-token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| query.first("token"));
    state.auth.check(body, signature, token).map_err(|e| {
        tracing::warn!(channel = %channel.id, reason = %e, "webhook refused");
        let msg = match e {
            WebhookAuthError::MissingSignature => "missing X-Hub-Signature-256",
            WebhookAuthError::BadSignature => "signature does not match the body",
            WebhookAuthError::BadToken => "missing or wrong webhook token",
        };
        ApiError::unauthorized(msg)
    })?;

    let parsed = parse_webhook(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    for s in &parsed.skipped {
        tracing::warn!(
            channel = %channel.id,
            change = s.change,
            index = s.index,
            item = s.item,
            reason = %s.reason,
            "webhook item skipped: it names no sender or no id"
        );
    }
    domain::telemetry::count("WebhookItemsSkipped", parsed.skipped.len() as u64);
    if parsed.welcomes > 0 {
        tracing::info!(channel = %channel.id, count = parsed.welcomes, "customer opened the chat window (request_welcome); nothing stored");
    }
    let received_at = Utc::now();
    let entries = parsed
        .events
        .into_iter()
        .enumerate()
        .map(|(position, event)| {
            QueuedEvent {
                channel: channel.id.clone(),
                received_at,
                position: u32::try_from(position).unwrap_or(u32::MAX),
                event,
            }
            .to_entry()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            tracing::error!(error = %e, "could not encode a queued event");
            ApiError::unavailable("could not queue the webhook; retry")
        })?;

    // Both queues in parallel: Communication Master's copy costs no extra
    // latency, and a 200 means both are durable (a failure of either is a
    // 503, so the provider retries and nothing is lost; redeliveries are
    // deduplicated downstream).
    let inbound = async {
        if entries.is_empty() {
            Ok(())
        } else {
            state.queue.enqueue(&entries).await
        }
    };
    let forward = async {
        match (&state.forward, std::str::from_utf8(body)) {
            (Some(f), Ok(text)) => f.forward(channel.id.as_str(), text).await,
            _ => Ok(()),
        }
    };
    let (inbound, forward) = tokio::join!(inbound, forward);
    inbound.map_err(|e| {
        tracing::error!(channel = %channel.id, error = ?e, "inbound queue unavailable");
        ApiError::unavailable("message queue unavailable; retry")
    })?;
    forward.map_err(|e| {
        tracing::error!(channel = %channel.id, error = ?e, "forward queue unavailable");
        ApiError::unavailable("message queue unavailable; retry")
    })?;
    tracing::info!(channel = %channel.id, events = entries.len(), "webhook queued");
    Ok(json_response(StatusCode::OK, &json!({"status": 1})))
}
