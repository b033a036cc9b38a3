//! Automation settings (admin): `GET` / `PUT /api/automations/rating` (who
//! is asked to rate a resolution, with which template, for how long an
//! answer counts), `/api/automations/context` (each team's context
//! fields whose change starts a new conversation) and
//! `/api/automations/discount_bot` (the bot's wording, keyword rules,
//! campaign route and flood guard) and `/api/automations/rides` (which
//! rides sort first, who gets booking alerts). The seeded settings
//! (files in `shared/config/`) apply until an admin saves theirs; saved
//! settings take effect from the next request on, in every function.

use http::StatusCode;
use lambda_http::Request;
use serde_json::json;

use adapters::http::ApiError;
use adapters::pinbot::MediaSource;
use domain::chat::context::ContextRules;
use domain::chat::rating::RatingSettings;
use domain::discount::bot::{BotSettings, BotStore};
use domain::discount::{DiscountRouteStore, routes_in_force};
use domain::inbound::InboundQueue;
use domain::protocol::Pusher;
use domain::rides::RideSettings;
use domain::sending::OutboundQueue;
use domain::settings::{Named, SettingsStore, save, saved};

use crate::{State, Store, answer, unavailable};

impl<S, Q, M, P, O> State<S, Q, M, P, O>
where
    S: Store + SettingsStore + DiscountRouteStore + BotStore,
    Q: InboundQueue,
    M: MediaSource,
    P: Pusher,
    O: OutboundQueue,
{
    pub(crate) async fn rating_settings(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.show_settings(req, &self.rating).await
    }

    pub(crate) async fn put_rating_settings(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.save_settings(req, |settings: RatingSettings| {
            let settings = settings.validated()?;
            let approved = self.messages.template_names();
            if !approved.contains(&settings.template) {
                return Err(format!(
                    "template `{}` is not an approved customer template; approved: {}",
                    settings.template.chars().take(64).collect::<String>(),
                    approved.join(", ")
                ));
            }
            Ok(settings)
        })
        .await
    }

    pub(crate) async fn bot_settings(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.show_settings(req, &self.bot.settings).await
    }

    /// Saves the bot's wording and rules: keyword texts must be predefined
    /// texts, the campaign route a known route. The reply cache is cleared
    /// so the next answer uses them.
    pub(crate) async fn put_bot_settings(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        let routes = routes_in_force(&self.store, &self.bot.routes)
            .await
            .map_err(unavailable("discount routes"))?;
        let response = self
            .save_settings(req, |settings: BotSettings| {
                let settings = settings.validated()?;
                if let Some(missing) = settings
                    .keyword_texts()
                    .find(|t| !self.messages.texts.contains_key(*t))
                {
                    return Err(format!(
                        "keyword text `{}` is not a predefined text; known: {}",
                        missing.chars().take(64).collect::<String>(),
                        self.messages
                            .texts
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if !routes
                    .routes
                    .iter()
                    .any(|r| r.route_id() == settings.campaign_route)
                {
                    return Err(format!(
                        "campaign_route `{}` is not a discount route",
                        settings
                            .campaign_route
                            .chars()
                            .take(140)
                            .collect::<String>()
                    ));
                }
                Ok(settings)
            })
            .await?;
        self.forget_answers().await;
        Ok(response)
    }

    pub(crate) async fn ride_settings(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.show_settings(req, &self.rides).await
    }

    /// Saves the ride settings: the alert template must be an approved
    /// staff template taking three values, the channel one of ours.
    pub(crate) async fn put_ride_settings(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.save_settings(req, |settings: RideSettings| {
            let settings = settings.validated()?;
            let a = &settings.alerts;
            let sample = vec![
                "919800000000".into(),
                "01 Jan 2026, 10:00 AM".into(),
                "BK1".into(),
            ];
            self.messages
                .internal_template(&a.template, sample)
                .map_err(|e| format!("alerts.template: {e}"))?;
            if self.channels.get(a.channel.as_str()).is_none() {
                return Err(format!(
                    "alerts.channel {} is not one of our channels",
                    a.channel
                ));
            }
            Ok(settings)
        })
        .await
    }

    pub(crate) async fn context_rules(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.show_settings(req, &self.context).await
    }

    pub(crate) async fn put_context_rules(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.save_settings(req, ContextRules::validated).await
    }

    /// The settings in force, and whether an admin saved them.
    async fn show_settings<T: Named>(
        &self,
        req: &Request,
        seeded: &T,
    ) -> Result<http::Response<String>, ApiError> {
        self.authorize_admin(req).await?;
        let stored: Option<T> = saved(&self.store)
            .await
            .map_err(unavailable("automation settings"))?;
        let source = if stored.is_some() { "stored" } else { "seeded" };
        let settings = stored.unwrap_or_else(|| seeded.clone());
        Ok(answer(
            StatusCode::OK,
            json!({"settings": settings, "source": source}),
        ))
    }

    /// Parses the body as `T` (unknown fields refused), checks it with
    /// `valid` and stores it.
    async fn save_settings<T: Named>(
        &self,
        req: &Request,
        valid: impl FnOnce(T) -> Result<T, String>,
    ) -> Result<http::Response<String>, ApiError> {
        let caller = self.authorize_admin(req).await?;
        let body = adapters::http::parse_json_body(req.body().as_ref())?;
        let settings: T = serde_json::from_value(body)
            .map_err(|e| ApiError::bad_request(format!("{} settings: {e}", T::NAME)))?;
        let settings = valid(settings).map_err(ApiError::bad_request)?;
        save(&self.store, &settings)
            .await
            .map_err(unavailable("automation settings"))?;
        tracing::info!(executive_id = %caller.executive_id, settings = T::NAME, "automation settings saved");
        Ok(answer(
            StatusCode::OK,
            json!({"settings": settings, "source": "stored"}),
        ))
    }
}
