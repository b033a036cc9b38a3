//! Webhooks from OneWay.Cab's own systems (`X-Internal-Token`): user
//! profile updates, bookings and context changes. Each payload is checked
//! field by field and stored; a 200 means it is stored. A context change
//! naming a field that starts a new conversation (the team's context
//! rules) also ends the customer's current chat.

use chrono::Utc;
use domain::config::Env;
use domain::telemetry::Masked;
use http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde_json::{Value, json};

use adapters::http::{ApiError, json_response, parse_json_body};
use domain::chat::ChatStore;
use domain::chat::context::ContextRules;
use domain::customer::CustomerStore;
use domain::customer::{BookingEvent, ContextChange, ProfileUpdate};
use domain::events::{EventOutbox, EventPublisher, publish_pending_soon};
use domain::inbound::{ContextOutcome, context_changed};
use domain::protocol::{ConnectionStore, Pusher};
use domain::secret::Secret;
use domain::settings::{SettingsStore, in_force};

pub struct State<S, P, E> {
    pub store: S,
    /// Tells dashboards of a conversation a context change ended.
    pub pusher: P,
    /// The domain event bus (`context.changed`, `chat.resolved`: pending in
    /// the store with the change, published right after it).
    pub events: E,
    /// `INTERNAL_WEBHOOK_TOKEN`; unset means every call is refused.
    pub token: Option<Secret>,
    /// The seeded context rules (`CONTEXT_DIR`, else the embedded files);
    /// an admin's saved rules win.
    pub context: ContextRules,
}

impl State<adapters::DynamoStore, adapters::ApiGwPusher, adapters::EventBridgePublisher> {
    /// The function as deployed: settings read once from `env`, clients
    /// from `aws` (built once per cold start; the local gateway passes its
    /// own with the template's environment).
    pub fn from_env(env: &Env, aws: &adapters::Aws) -> anyhow::Result<Self> {
        Ok(Self {
            store: adapters::DynamoStore::from_env(env, aws)?,
            pusher: adapters::ApiGwPusher::from_env(env, aws)?,
            events: adapters::EventBridgePublisher::from_env(env, aws)?,
            token: env.secret("INTERNAL_WEBHOOK_TOKEN"),
            context: ContextRules::from_env(env)?,
        })
    }
}

pub async fn handle<S, P, E>(state: &State<S, P, E>, req: Request) -> Result<Response<Body>, Error>
where
    S: CustomerStore + ChatStore + ConnectionStore + SettingsStore + EventOutbox,
    P: Pusher,
    E: EventPublisher,
{
    let res = route(state, &req)
        .await
        .unwrap_or_else(ApiError::into_response);
    Ok(res.map(Body::from))
}

async fn route<S, P, E>(
    state: &State<S, P, E>,
    req: &Request,
) -> Result<http::Response<String>, ApiError>
where
    S: CustomerStore + ChatStore + ConnectionStore + SettingsStore + EventOutbox,
    P: Pusher,
    E: EventPublisher,
{
    if req.method() != Method::POST {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use POST",
        ));
    }
    let presented = req
        .headers()
        .get("x-internal-token")
        .and_then(|v| v.to_str().ok());
    match (&state.token, presented) {
        (Some(expected), Some(token)) if expected.matches(token) => {}
        (None, _) => {
            tracing::error!("INTERNAL_WEBHOOK_TOKEN is not configured; refusing internal webhooks");
            return Err(ApiError::unauthorized("internal webhooks are not enabled"));
        }
        _ => return Err(ApiError::unauthorized("missing or wrong X-Internal-Token")),
    }
    let body: Value = parse_json_body(req.body().as_ref())?;
    let unavailable = |e: domain::error::StoreError| {
        tracing::error!(error = ?e, "storing an internal webhook failed");
        ApiError::unavailable("storage unavailable; retry")
    };
    match req.uri().path() {
        "/api/webhook/user/update" => {
            let update = ProfileUpdate::parse(&body).map_err(ApiError::invalid_fields)?;
            state
                .store
                .upsert_profile(&update)
                .await
                .map_err(unavailable)?;
            tracing::info!(mobile = %Masked(&update.mobile), "user profile updated");
        }
        "/api/webhook/booking" => {
            let booking = BookingEvent::parse(&body).map_err(ApiError::invalid_fields)?;
            state.store.put_ride(&booking).await.map_err(unavailable)?;
            tracing::info!(booking_id = %booking.booking_id, event = %booking.event, "booking recorded");
        }
        "/api/webhook/context_change" => {
            let change = ContextChange::parse(&body).map_err(ApiError::invalid_fields)?;
            let at = Utc::now();
            state
                .store
                .record_context_change(&change, at)
                .await
                .map_err(unavailable)?;
            tracing::info!(customer = %Masked(change.customer.as_str()), customer_type = %change.customer_type, "context change recorded");
            let rules = in_force(&state.store, &state.context)
                .await
                .map_err(unavailable)?;
            let outcome = context_changed(&state.store, &state.pusher, &rules, &change, at)
                .await
                .map_err(unavailable)?;
            publish_pending_soon(&state.store, &state.events).await;
            let conversation = match outcome {
                ContextOutcome::Kept => json!({"new_conversation": false}),
                ContextOutcome::NoChat => json!({"new_conversation": true, "ended_chat": null}),
                ContextOutcome::Ended(chat) => {
                    json!({"new_conversation": true, "ended_chat": chat.chat_id})
                }
            };
            return Ok(json_response(
                StatusCode::OK,
                &json!({"status": 1, "data": conversation}),
            ));
        }
        other => {
            return Err(ApiError::not_found(format!(
                "no route {}",
                other.chars().take(100).collect::<String>()
            )));
        }
    }
    Ok(json_response(StatusCode::OK, &json!({"status": 1})))
}
