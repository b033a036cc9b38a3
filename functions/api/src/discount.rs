//! The discount bot (admin): `GET /api/discount/routes` lists its routes
//! (seeded from `discount_routes.yaml` the first time), `POST` adds one,
//! `PUT /api/discount/routes/{route_id}` replaces one (price, code,
//! `placeholder`, `disabled`: a disabled or placeholder route is listed
//! but never offered); `GET /api/discount/stats` counts what it sent
//! (offers, codes, declines by reason, per route and day) and
//! `GET /api/discount/declines` lists the decline log. A change of routes
//! clears the reply cache, so the bot answers from the new ones at once.

use http::StatusCode;
use lambda_http::Request;
use serde_json::json;

use adapters::http::ApiError;
use adapters::pinbot::MediaSource;
use domain::discount::bot::{BotStats, BotStore, Decline};
use domain::discount::{DiscountRoute, DiscountRouteStore, routes_in_force};
use domain::error::StoreError;
use domain::inbound::InboundQueue;
use domain::protocol::Pusher;
use domain::replies::ResponseCache;
use domain::sending::OutboundQueue;

use crate::messages::{period_days, query};
use crate::{State, Store, answer, unavailable};

/// The most decline log lines one request lists.
const MAX_DECLINES: usize = 500;
const DEFAULT_DECLINES: usize = 100;

fn route_body(req: &Request) -> Result<DiscountRoute, ApiError> {
    let body = adapters::http::parse_json_body(req.body().as_ref())?;
    let route: DiscountRoute = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("discount route: {e}")))?;
    route.check().map_err(ApiError::bad_request)?;
    Ok(route)
}

fn view(route: &DiscountRoute) -> serde_json::Value {
    json!({
        "route_id": route.route_id(),
        "name": route.name(),
        "offered": route.offered(),
        "route": route,
    })
}

impl<S, Q, M, P, O> State<S, Q, M, P, O>
where
    S: Store + DiscountRouteStore + BotStore + ResponseCache,
    Q: InboundQueue,
    M: MediaSource,
    P: Pusher,
    O: OutboundQueue,
{
    pub(crate) async fn discount_routes(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.authorize_admin(req).await?;
        let routes = routes_in_force(&self.store, &self.bot.routes)
            .await
            .map_err(unavailable("discount routes"))?;
        let listed: Vec<_> = routes.routes.iter().map(view).collect();
        Ok(answer(StatusCode::OK, json!({"routes": listed})))
    }

    pub(crate) async fn create_discount_route(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        let caller = self.authorize_admin(req).await?;
        let route = route_body(req)?;
        // Seeded first, so a new route never stands in for the file's.
        routes_in_force(&self.store, &self.bot.routes)
            .await
            .map_err(unavailable("discount routes"))?;
        match self.store.put_discount_route(&route, true).await {
            Ok(()) => {}
            Err(StoreError::Conflict(m)) => {
                return Err(ApiError::new(StatusCode::CONFLICT, "route_exists", m));
            }
            Err(e) => return Err(unavailable("discount routes")(e)),
        }
        self.forget_answers().await;
        tracing::info!(executive_id = %caller.executive_id, route_id = %route.route_id(), "discount route created");
        Ok(answer(StatusCode::CREATED, view(&route)))
    }

    pub(crate) async fn replace_discount_route(
        &self,
        req: &Request,
        route_id: &str,
    ) -> Result<http::Response<String>, ApiError> {
        let caller = self.authorize_admin(req).await?;
        let route = route_body(req)?;
        if route.route_id() != route_id {
            return Err(ApiError::bad_request(format!(
                "the body names route {}, the path {}; a route's places are its id",
                route.route_id(),
                route_id.chars().take(100).collect::<String>()
            )));
        }
        routes_in_force(&self.store, &self.bot.routes)
            .await
            .map_err(unavailable("discount routes"))?;
        match self.store.put_discount_route(&route, false).await {
            Ok(()) => {}
            Err(StoreError::Conflict(m)) => return Err(ApiError::not_found(m)),
            Err(e) => return Err(unavailable("discount routes")(e)),
        }
        self.forget_answers().await;
        tracing::info!(executive_id = %caller.executive_id, route_id, offered = route.offered(), "discount route replaced");
        Ok(answer(StatusCode::OK, view(&route)))
    }

    /// Drops the bot's cached answers after a change of its routes or
    /// settings. A failure leaves them for their TTL (30 minutes) and says
    /// so: the change itself is saved.
    pub(crate) async fn forget_answers(&self) {
        match self.store.clear_cached().await {
            Ok(n) => tracing::info!(dropped = n, "discount bot reply cache cleared"),
            Err(e) => tracing::error!(error = ?e,
                "reply cache not cleared; the bot answers from the old data until its entries expire (30 min) or POST /api/chats/clear_cache"),
        }
    }

    /// What the bot sent over a period (`from` / `to`, default the last
    /// seven days, at most 92): in all, per route, per day.
    pub(crate) async fn discount_stats(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.authorize_admin(req).await?;
        let (from, to, days) = period_days(req)?;
        let counters = self
            .store
            .bot_counters(&days)
            .await
            .map_err(unavailable("discount stats"))?;
        let per_day: Vec<serde_json::Value> = counters
            .iter()
            .map(|(day, c)| {
                let mut view = BotStats::of([c]).view();
                view["day"] = json!(day.format("%Y-%m-%d").to_string());
                view
            })
            .collect();
        let totals = BotStats::of(counters.values());
        Ok(answer(
            StatusCode::OK,
            json!({"from": from, "to": to, "totals": totals.view(), "days": per_day}),
        ))
    }

    /// The decline log of a period, newest first (`limit`, default 100,
    /// at most 500), with the period's counts per reason and route.
    pub(crate) async fn discount_declines(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.authorize_admin(req).await?;
        let (from, to, days) = period_days(req)?;
        let limit = match query(req, "limit") {
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_DECLINES).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("`limit` must be 1 to {MAX_DECLINES}"))
                })?,
            None => DEFAULT_DECLINES,
        };
        let mut lines: Vec<Decline> = Vec::new();
        for day in days.iter().rev() {
            if lines.len() >= limit {
                break;
            }
            let found = self
                .store
                .declines(*day, limit - lines.len())
                .await
                .map_err(unavailable("decline log"))?;
            lines.extend(found.into_iter().filter(|d| d.at >= from && d.at <= to));
        }
        let counters = self
            .store
            .bot_counters(&days)
            .await
            .map_err(unavailable("discount stats"))?;
        let view = BotStats::of(counters.values()).view();
        let per_route: serde_json::Map<String, serde_json::Value> = view["routes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(route, v)| (route.clone(), v["reasons"].clone()))
            .collect();
        Ok(answer(
            StatusCode::OK,
            json!({
                "from": from,
                "to": to,
                "declines": lines,
                "reasons": view["reasons"],
                "routes": per_route,
            }),
        ))
    }
}
