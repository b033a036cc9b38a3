//! `POST /api/auth/login`, throttled after repeated failures.

use chrono::Utc;
use http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde::Deserialize;
use serde_json::json;

use adapters::http::{ApiError, json_response, parse_json_body};
use adapters::pinbot::MediaSource;
use domain::auth::login::{Attempt, LoginAddress, consume, succeeded};
use domain::executive::verify_password;
use domain::inbound::InboundQueue;
use domain::protocol::Pusher;
use domain::sending::OutboundQueue;

use crate::{State, Store, unavailable};

#[derive(Deserialize)]
struct Login {
    email: String,
    password: String,
    /// The device token an earlier login on this device received.
    #[serde(default)]
    device: Option<String>,
}

/// The client's address as API Gateway saw it.
fn source_ip(req: &Request) -> Option<String> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.clone(),
        _ => None,
    }
}

impl<S, Q, M, P, O> State<S, Q, M, P, O>
where
    S: Store,
    Q: InboundQueue,
    M: MediaSource,
    P: Pusher,
    O: OutboundQueue,
{
    pub(crate) async fn login(&self, req: &Request) -> Result<http::Response<String>, ApiError> {
        let input: Login = parse_json_body(req.body().as_ref())?;
        let address = LoginAddress::new(&input.email);
        let device = input
            .device
            .as_deref()
            .and_then(|t| self.keys.devices().check(&address, t));
        let now = Utc::now();
        let attempt = Attempt::new(&address, source_ip(req).as_deref(), device.as_ref(), now);
        // Spent before the password is looked at: parallel guesses cannot
        // all pass the check before any is counted.
        if let Some(until) = consume(&self.store, &attempt)
            .await
            .map_err(unavailable("login"))?
        {
            let secs = (until - now).num_seconds().max(1);
            tracing::warn!(
                retry_after = secs,
                trusted = attempt.trusted,
                "login throttled"
            );
            let mut res = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!(
                    "too many login attempts; try again in {} minute(s)",
                    (secs + 59) / 60
                ),
            )
            .into_response();
            res.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
            return Ok(res);
        }
        let Some(executive) = self.check_credentials(&address, &input.password).await? else {
            return Err(ApiError::unauthorized("wrong email or password"));
        };
        if let Err(e) = succeeded(&self.store, &attempt).await {
            tracing::warn!(error = ?e, "could not give back login budgets");
        }
        let token = self.keys.issue(&executive).map_err(|e| {
            tracing::error!(error = %e, "token signing failed");
            ApiError::unavailable("login is unavailable; try again")
        })?;
        // A device that logged in keeps its token; others get one.
        let device_token = match (&input.device, device.is_some()) {
            (Some(t), true) => Some(t.trim().to_owned()),
            _ => self.keys.devices().issue(&address),
        };
        // A fresh session starts offline until the executive toggles (an
        // open dashboard elsewhere keeps them online).
        let online = domain::routing::assignment::offline_unless_connected(
            &self.store,
            &self.pusher,
            &executive,
        )
        .await
        .map_err(unavailable("login"))?;
        tracing::info!(executive_id = %executive.executive_id, online, trusted = attempt.trusted, "login");
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "status": 1,
                "token": token,
                "device_token": device_token,
                "executive": executive,
                "presence": if online { "online" } else { "offline" },
            }),
        ))
    }

    /// The executive these credentials belong to, if they are right and the
    /// executive is enabled. Every address, known or not, costs the same two
    /// reads and one hash check.
    async fn check_credentials(
        &self,
        address: &LoginAddress,
        password: &str,
    ) -> Result<Option<domain::executive::Executive>, ApiError> {
        let found = self
            .store
            .executive_for_login(address)
            .await
            .map_err(unavailable("login"))?;
        let Some(executive) = found else {
            verify_password(password, &self.decoy_hash);
            return Ok(None);
        };
        if !verify_password(password, &executive.password_hash) || executive.disabled {
            tracing::info!(executive_id = %executive.executive_id, "login refused");
            return Ok(None);
        }
        Ok(Some(executive))
    }
}
