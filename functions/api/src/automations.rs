//! `GET` / `PUT /api/automations/rating` (admin): who is asked to rate a
//! resolution, with which template, and for how long an answer counts.
//! The seeded settings (`automations.yaml`) apply until an admin saves
//! theirs; saved settings take effect on the next resolve and the next
//! customer message, in every function.

use http::StatusCode;
use lambda_http::Request;
use serde_json::json;

use adapters::http::ApiError;
use adapters::pinbot::MediaSource;
use domain::chat::rating::{RatingSettings, RatingSettingsStore};
use domain::inbound::InboundQueue;
use domain::protocol::Pusher;
use domain::sending::OutboundQueue;

use crate::{State, Store, answer, unavailable};

impl<S, Q, M, P, O> State<S, Q, M, P, O>
where
    S: Store + RatingSettingsStore,
    Q: InboundQueue,
    M: MediaSource,
    P: Pusher,
    O: OutboundQueue,
{
    pub(crate) async fn rating_settings(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.authorize_admin(req).await?;
        let stored = self
            .store
            .rating_settings()
            .await
            .map_err(unavailable("automation settings"))?;
        let source = if stored.is_some() { "stored" } else { "seeded" };
        let settings = stored.unwrap_or_else(|| self.rating.clone());
        Ok(answer(
            StatusCode::OK,
            json!({"rating": settings, "source": source}),
        ))
    }

    pub(crate) async fn put_rating_settings(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        let caller = self.authorize_admin(req).await?;
        let body = adapters::http::parse_json_body(req.body().as_ref())?;
        let settings: RatingSettings = serde_json::from_value(body)
            .map_err(|e| ApiError::bad_request(format!("rating settings: {e}")))?;
        let settings = settings.validated().map_err(ApiError::bad_request)?;
        if !self.messages.template_names().contains(&settings.template) {
            return Err(ApiError::bad_request(format!(
                "template `{}` is not an approved customer template; approved: {}",
                settings.template.chars().take(64).collect::<String>(),
                self.messages.template_names().join(", ")
            )));
        }
        self.store
            .put_rating_settings(&settings)
            .await
            .map_err(unavailable("automation settings"))?;
        tracing::info!(executive_id = %caller.executive_id, teams = ?settings.teams, window_secs = settings.window_secs, "rating settings saved");
        Ok(answer(
            StatusCode::OK,
            json!({"rating": settings, "source": "stored"}),
        ))
    }
}
