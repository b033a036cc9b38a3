//! `POST /api/chats/clear_cache` and `POST /api/chats/delete_cache`
//! (`ADMIN_TOKEN`): drop cached automated replies (`chat_response::{message}`).

use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::json;

use adapters::http::{ApiError, json_response, parse_json_body};
use adapters::pinbot::MediaSource;
use domain::inbound::InboundQueue;
use domain::protocol::Pusher;
use domain::replies::reply_cache_key;
use domain::sending::OutboundQueue;

use crate::{State, Store, unavailable};

#[derive(Deserialize)]
struct DeleteCache {
    message: String,
}

impl<S, Q, M, P, O> State<S, Q, M, P, O>
where
    S: Store,
    Q: InboundQueue,
    M: MediaSource,
    P: Pusher,
    O: OutboundQueue,
{
    /// `X-Admin-Token` (or `Authorization: Bearer`) must equal `ADMIN_TOKEN`.
    fn check_admin_token(&self, req: &Request) -> Result<(), ApiError> {
        let Some(expected) = &self.admin_token else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "cache management is disabled (ADMIN_TOKEN is not configured)",
            ));
        };
        let header = |name| {
            req.headers()
                .get(name)
                .and_then(|v: &http::HeaderValue| v.to_str().ok())
        };
        let presented = header("x-admin-token")
            .or_else(|| domain::auth::bearer(header("authorization")))
            .ok_or_else(|| ApiError::unauthorized("X-Admin-Token is required"))?;
        if expected.matches(presented) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("X-Admin-Token is wrong"))
        }
    }

    pub(crate) async fn clear_cache(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.check_admin_token(req)?;
        let deleted = self
            .store
            .clear_cached()
            .await
            .map_err(unavailable("the cache"))?;
        tracing::info!(deleted, "response cache cleared");
        Ok(json_response(
            StatusCode::OK,
            &json!({"status": 1, "deleted": deleted}),
        ))
    }

    pub(crate) async fn delete_cache(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.check_admin_token(req)?;
        let input: DeleteCache = parse_json_body(req.body().as_ref())?;
        if input.message.is_empty() || input.message.len() > 1024 {
            return Err(ApiError::bad_request("`message` must be 1 to 1024 bytes"));
        }
        let key = reply_cache_key(&input.message);
        let deleted = self
            .store
            .delete_cached(&key)
            .await
            .map_err(unavailable("the cache"))?;
        tracing::info!(deleted, "response cache entry dropped");
        Ok(json_response(
            StatusCode::OK,
            &json!({"status": 1, "key": key, "deleted": deleted}),
        ))
    }
}
