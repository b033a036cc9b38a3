//! Webhooks from OneWay.Cab's own systems (`X-Internal-Token`): user
//! profile updates, bookings and context changes. Each payload is checked
//! field by field and stored; a 200 means it is stored.

use chrono::Utc;
use domain::config::Env;
use domain::telemetry::Masked;
use http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde_json::{Value, json};

use adapters::http::{ApiError, json_response, parse_json_body};
use domain::customer::CustomerStore;
use domain::customer::{BookingEvent, ContextChange, ProfileUpdate};
use domain::secret::Secret;

pub struct State<S> {
    pub store: S,
    /// `INTERNAL_WEBHOOK_TOKEN`; unset means every call is refused.
    pub token: Option<Secret>,
}

impl State<adapters::DynamoStore> {
    /// The function as deployed: settings read once from `env`, clients
    /// from `aws` (built once per cold start; the local gateway passes its
    /// own with the template's environment).
    pub fn from_env(env: &Env, aws: &adapters::Aws) -> anyhow::Result<Self> {
        Ok(Self {
            store: adapters::DynamoStore::from_env(env, aws)?,
            token: env.secret("INTERNAL_WEBHOOK_TOKEN"),
        })
    }
}

pub async fn handle<S: CustomerStore>(
    state: &State<S>,
    req: Request,
) -> Result<Response<Body>, Error> {
    let res = route(state, &req)
        .await
        .unwrap_or_else(ApiError::into_response);
    Ok(res.map(Body::from))
}

async fn route<S: CustomerStore>(
    state: &State<S>,
    req: &Request,
) -> Result<http::Response<String>, ApiError> {
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
            state
                .store
                .record_context_change(&change, Utc::now())
                .await
                .map_err(unavailable)?;
            tracing::info!(customer = %Masked(change.customer.as_str()), customer_type = %change.customer_type, "context change recorded");
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
