//! `POST /api/auth/login`, throttled after repeated failures.

use chrono::Utc;
use http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde::Deserialize;
use serde_json::json;

use shared::executive::{Email, verify_password};
use shared::http::{ApiError, json_response, parse_json_body};
use shared::login::{Attempt, record_failure, record_success, throttled_until};
use shared::provider::MediaSource;
use shared::store::{InboundQueue, OutboundQueue, Pusher};

use crate::{State, Store, unavailable};

#[derive(Deserialize)]
struct Login {
    email: String,
    password: String,
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
        let attempt = Attempt::new(&input.email, source_ip(req).as_deref());
        let now = Utc::now();
        if let Some(until) = throttled_until(&self.store, &attempt, now)
            .await
            .map_err(unavailable("login"))?
        {
            let secs = (until - now).num_seconds().max(1);
            tracing::warn!(retry_after = secs, "login throttled");
            let mut res = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!(
                    "too many failed logins; try again in {} minute(s)",
                    (secs + 59) / 60
                ),
            )
            .into_response();
            res.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
            return Ok(res);
        }
        match self.check_credentials(&input).await? {
            Some(executive) => {
                if let Err(e) = record_success(&self.store, &attempt).await {
                    tracing::warn!(error = ?e, "could not clear login failures");
                }
                let token = self.keys.issue(&executive).map_err(|e| {
                    tracing::error!(error = %e, "token signing failed");
                    ApiError::unavailable("login is unavailable; try again")
                })?;
                // A fresh session starts offline until the executive
                // toggles (an open dashboard elsewhere keeps them online).
                let online = shared::assignment::offline_unless_connected(
                    &self.store,
                    &self.pusher,
                    &executive,
                )
                .await
                .map_err(unavailable("login"))?;
                tracing::info!(executive_id = %executive.executive_id, online, "login");
                Ok(json_response(
                    StatusCode::OK,
                    &json!({
                        "status": 1,
                        "token": token,
                        "executive": executive,
                        "presence": if online { "online" } else { "offline" },
                    }),
                ))
            }
            None => {
                record_failure(&self.store, &attempt, now)
                    .await
                    .map_err(unavailable("login"))?;
                Err(ApiError::unauthorized("wrong email or password"))
            }
        }
    }

    /// The executive these credentials belong to, if they are right and the
    /// executive is enabled. Unknown addresses cost a hash check too.
    async fn check_credentials(
        &self,
        input: &Login,
    ) -> Result<Option<shared::executive::Executive>, ApiError> {
        let Ok(email) = Email::parse(&input.email) else {
            verify_password(&input.password, &self.decoy_hash);
            return Ok(None);
        };
        let found = self
            .store
            .executive_by_email(&email)
            .await
            .map_err(unavailable("login"))?;
        let Some(executive) = found else {
            verify_password(&input.password, &self.decoy_hash);
            return Ok(None);
        };
        if !verify_password(&input.password, &executive.password_hash) || executive.disabled {
            tracing::info!(executive_id = %executive.executive_id, "login refused");
            return Ok(None);
        }
        Ok(Some(executive))
    }
}
