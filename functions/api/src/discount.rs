//! The discount bot's routes (admin): `GET /api/discount/routes` lists
//! them (seeded from `discount_routes.yaml` the first time), `POST` adds
//! one, `PUT /api/discount/routes/{route_id}` replaces one (price, code,
//! `placeholder`, `disabled`: a disabled or placeholder route is listed
//! but never offered).

use http::StatusCode;
use lambda_http::Request;
use serde_json::json;

use adapters::http::ApiError;
use adapters::pinbot::MediaSource;
use domain::discount::{DiscountRoute, DiscountRouteStore, routes_in_force};
use domain::error::StoreError;
use domain::inbound::InboundQueue;
use domain::protocol::Pusher;
use domain::sending::OutboundQueue;

use crate::{State, Store, answer, unavailable};

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
    S: Store + DiscountRouteStore,
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
        let routes = routes_in_force(&self.store, &self.discount_routes)
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
        routes_in_force(&self.store, &self.discount_routes)
            .await
            .map_err(unavailable("discount routes"))?;
        match self.store.put_discount_route(&route, true).await {
            Ok(()) => {}
            Err(StoreError::Conflict(m)) => {
                return Err(ApiError::new(StatusCode::CONFLICT, "route_exists", m));
            }
            Err(e) => return Err(unavailable("discount routes")(e)),
        }
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
        routes_in_force(&self.store, &self.discount_routes)
            .await
            .map_err(unavailable("discount routes"))?;
        match self.store.put_discount_route(&route, false).await {
            Ok(()) => {}
            Err(StoreError::Conflict(m)) => return Err(ApiError::not_found(m)),
            Err(e) => return Err(unavailable("discount routes")(e)),
        }
        tracing::info!(executive_id = %caller.executive_id, route_id, offered = route.offered(), "discount route replaced");
        Ok(answer(StatusCode::OK, view(&route)))
    }
}
