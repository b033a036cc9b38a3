//! The dashboard's HTTP routes: login, health, statistics, media, and the
//! admin routes for executives, tags and the response cache.

mod admin;
mod automations;
mod cache;
mod discount;
mod login;
mod messages;

use domain::chat::context::ContextRules;
use domain::chat::rating::RatingSettings;
use domain::config::Env;
use domain::discount::DiscountRouteStore;
use domain::discount::bot::{BotSeeds, BotStore};
use domain::rides::RideSettings;
use domain::settings::SettingsStore;
use http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde_json::json;

use adapters::http::{ApiError, json_response};
use adapters::pinbot::{MediaError, MediaSource};
use domain::auth::login::LoginGuardStore;
use domain::auth::{Caller, JwtKeys, Refused, bearer};
use domain::channel::ChannelTable;
use domain::chat::ChatStore;
use domain::chat::tags::TagCatalog;
use domain::chat::tags::TagStore;
use domain::error::StoreError;
use domain::executive::ExecutiveStore;
use domain::executive::{Executive, Role};
use domain::inbound::InboundQueue;
use domain::protocol::{ConnectionStore, Pusher};
use domain::replies::ResponseCache;
use domain::routing::assignment::RoutingStore;
use domain::routing::sla::SlaStore;
use domain::secret::Secret;
use domain::sending::MessageCatalog;
use domain::sending::{OutboundQueue, OutboxStore};

/// Everything the routes read and write.
pub trait Store:
    ChatStore
    + ConnectionStore
    + ExecutiveStore
    + TagStore
    + LoginGuardStore
    + ResponseCache
    + OutboxStore
    + RoutingStore
    + SlaStore
    + SettingsStore
    + DiscountRouteStore
    + BotStore
{
}

impl<T> Store for T where
    T: ChatStore
        + ConnectionStore
        + ExecutiveStore
        + TagStore
        + LoginGuardStore
        + ResponseCache
        + OutboxStore
        + RoutingStore
        + SlaStore
        + SettingsStore
        + DiscountRouteStore
        + BotStore
{
}

pub struct State<S, Q, M, P, O> {
    pub store: S,
    pub queue: Q,
    /// The send queue (templates sent by route, re-sends).
    pub outbox: O,
    pub messages: MessageCatalog,
    pub keys: JwtKeys,
    pub media: M,
    /// Closes a disabled executive's WebSocket connections.
    pub pusher: P,
    pub channels: ChannelTable,
    pub tags: TagCatalog,
    /// The seeded rating settings and context rules (an admin's stored
    /// ones win).
    pub rating: RatingSettings,
    pub context: ContextRules,
    /// The discount bot's seeded routes and settings (the stored ones rule
    /// once they exist).
    pub bot: BotSeeds,
    /// Rides in chat lists and booking alerts, as seeded.
    pub rides: RideSettings,
    /// `ADMIN_TOKEN` for the cache routes; unset disables them.
    pub admin_token: Option<Secret>,
    /// A real hash to verify against when the e-mail is unknown, so both
    /// failures take the same time.
    decoy_hash: String,
}

/// What `State::new` needs besides the adapters.
pub struct Settings {
    pub keys: JwtKeys,
    pub channels: ChannelTable,
    pub tags: TagCatalog,
    pub messages: MessageCatalog,
    pub rating: RatingSettings,
    pub context: ContextRules,
    pub bot: BotSeeds,
    pub rides: RideSettings,
    pub admin_token: Option<Secret>,
}

/// The adapters `State::new` wires together.
pub struct Adapters<S, Q, M, P, O> {
    pub store: S,
    pub queue: Q,
    pub media: M,
    pub pusher: P,
    pub outbox: O,
}

impl<S, Q, M, P, O> State<S, Q, M, P, O> {
    pub fn new(adapters: Adapters<S, Q, M, P, O>, settings: Settings) -> anyhow::Result<Self> {
        let Adapters {
            store,
            queue,
            media,
            pusher,
            outbox,
        } = adapters;
        Ok(Self {
            store,
            queue,
            media,
            pusher,
            outbox,
            messages: settings.messages,
            keys: settings.keys,
            channels: settings.channels,
            tags: settings.tags,
            rating: settings.rating,
            context: settings.context,
            bot: settings.bot,
            rides: settings.rides,
            admin_token: settings.admin_token,
            decoy_hash: domain::executive::DECOY_PASSWORD_HASH.to_owned(),
        })
    }
}

impl
    State<
        adapters::DynamoStore,
        adapters::SqsInboundQueue,
        adapters::pinbot::PinbotClient,
        adapters::ApiGwPusher,
        adapters::SqsOutboundQueue,
    >
{
    /// The function as deployed: settings read once from `env`, clients
    /// from `aws` (built once per cold start; the local gateway passes its
    /// own with the template's environment).
    pub fn from_env(env: &Env, aws: &adapters::Aws) -> anyhow::Result<Self> {
        let channels = ChannelTable::from_env(env)?;
        Self::new(
            Adapters {
                store: adapters::DynamoStore::from_env(env, aws)?,
                queue: adapters::SqsInboundQueue::from_env(env, aws)?,
                media: adapters::pinbot::PinbotClient::from_env(env, &channels)?,
                pusher: adapters::ApiGwPusher::from_env(env, aws)?,
                outbox: adapters::SqsOutboundQueue::from_env(env, aws)?,
            },
            Settings {
                keys: JwtKeys::from_env(env)?,
                tags: TagCatalog::from_env(env)?,
                messages: MessageCatalog::from_env(env)?,
                rating: RatingSettings::from_env(env)?,
                context: ContextRules::from_env(env)?,
                bot: BotSeeds::from_env(env)?,
                rides: RideSettings::from_env(env)?,
                admin_token: env.secret("ADMIN_TOKEN"),
                channels,
            },
        )
    }
}

pub async fn handle<S, Q, M, P, O>(
    state: &State<S, Q, M, P, O>,
    req: Request,
) -> Result<Response<Body>, Error>
where
    S: Store,
    Q: InboundQueue,
    M: MediaSource,
    P: Pusher,
    O: OutboundQueue,
{
    if req.method() == Method::GET && req.uri().path().starts_with("/api/media/") {
        return Ok(state
            .media(&req)
            .await
            .unwrap_or_else(|e| e.into_response().map(Body::from)));
    }
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let method = req.method().clone();
    let res = match (&method, segments.as_slice()) {
        (&Method::POST, ["api", "auth", "login"]) => state.login(&req).await,
        (&Method::GET, ["api", "health"]) => Ok(json_response(
            StatusCode::OK,
            &json!({"status": 1, "message": "Smart Chat API Running"}),
        )),
        (&Method::GET, ["api", "health", "ready"]) => Ok(state.ready().await),
        (&Method::GET, ["api", "dashboard", "stats"]) => state.stats(&req).await,
        (_, ["api", "executives", ..]) | (_, ["api", "tags", ..]) => {
            state.admin(&req, &segments[1..]).await
        }
        (&Method::GET, ["api", "chats", "send_whatsapp_template"]) => {
            state.send_template(&req).await
        }
        (&Method::GET, ["api", "messages"]) => state.message_log(&req).await,
        (&Method::GET, ["api", "messages", "stats"]) => state.message_stats(&req).await,
        (&Method::GET, ["api", "stats", "service"]) => state.service_stats(&req).await,
        (&Method::GET, ["api", "automations", "rating"]) => state.rating_settings(&req).await,
        (&Method::PUT, ["api", "automations", "rating"]) => state.put_rating_settings(&req).await,
        (&Method::GET, ["api", "automations", "context"]) => state.context_rules(&req).await,
        (&Method::GET, ["api", "automations", "discount_bot"]) => state.bot_settings(&req).await,
        (&Method::PUT, ["api", "automations", "discount_bot"]) => {
            state.put_bot_settings(&req).await
        }
        (&Method::GET, ["api", "automations", "rides"]) => state.ride_settings(&req).await,
        (&Method::PUT, ["api", "automations", "rides"]) => state.put_ride_settings(&req).await,
        (&Method::GET, ["api", "discount", "stats"]) => state.discount_stats(&req).await,
        (&Method::GET, ["api", "discount", "declines"]) => state.discount_declines(&req).await,
        (&Method::GET, ["api", "discount", "routes"]) => state.discount_routes(&req).await,
        (&Method::POST, ["api", "discount", "routes"]) => state.create_discount_route(&req).await,
        (&Method::PUT, ["api", "discount", "routes", route_id]) => {
            state.replace_discount_route(&req, route_id).await
        }
        (&Method::PUT, ["api", "automations", "context"]) => state.put_context_rules(&req).await,
        (&Method::POST, ["api", "messages", chat_id, message_id, "resend"]) => {
            state.resend(&req, chat_id, message_id).await
        }
        (&Method::POST, ["api", "chats", "clear_cache"]) => state.clear_cache(&req).await,
        (&Method::POST, ["api", "chats", "delete_cache"]) => state.delete_cache(&req).await,
        (_, _) => Err(ApiError::not_found(format!(
            "no route {} {}",
            req.method(),
            path.chars().take(100).collect::<String>()
        ))),
    };
    Ok(res.unwrap_or_else(ApiError::into_response).map(Body::from))
}

/// A success answer: `{"status":1,"data":…}`.
pub(crate) fn answer(status: StatusCode, data: impl serde::Serialize) -> http::Response<String> {
    json_response(status, &json!({"status": 1, "data": data}))
}

/// A store failure on a request path: logged, and a 503 for the caller.
pub(crate) fn unavailable(what: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| {
        tracing::error!(error = ?e, "{what} failed");
        ApiError::unavailable(format!("{what} is unavailable; retry"))
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
    async fn ready(&self) -> http::Response<String> {
        let (db, queue) = tokio::join!(self.store.ping(), self.queue.ping());
        let show = |ok: bool| if ok { "ok" } else { "unavailable" };
        let all_ok = db.is_ok() && queue.is_ok();
        if let Err(e) = &db {
            tracing::warn!(error = ?e, "readiness: dynamodb");
        }
        if let Err(e) = &queue {
            tracing::warn!(error = ?e, "readiness: sqs");
        }
        json_response(
            if all_ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            &json!({"status": i32::from(all_ok), "checks": {"dynamodb": show(db.is_ok()), "sqs": show(queue.is_ok())}}),
        )
    }

    /// The caller behind `Authorization: Bearer <JWT>`, refusing disabled
    /// executives; the role is the stored one when we know the executive.
    pub(crate) async fn authorize(&self, req: &Request) -> Result<Caller, ApiError> {
        self.authorize_executive(req)
            .await
            .map(|(caller, _)| caller)
    }

    /// [`Self::authorize`], with the stored executive (absent for a token
    /// another system issued with our key).
    pub(crate) async fn authorize_executive(
        &self,
        req: &Request,
    ) -> Result<(Caller, Option<Executive>), ApiError> {
        let header = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = bearer(header)
            .ok_or_else(|| ApiError::unauthorized("Authorization: Bearer <token> is required"))?;
        domain::auth::authenticate(&self.store, &self.keys, token)
            .await
            .map_err(|e| match e {
                Refused::Token(e) => ApiError::unauthorized(format!("{e}")),
                Refused::Disabled => {
                    ApiError::new(StatusCode::FORBIDDEN, "forbidden", "executive is disabled")
                }
                Refused::Store(e) => unavailable("authorization")(e),
            })
    }

    /// [`Self::authorize`], for admins only.
    pub(crate) async fn authorize_admin(&self, req: &Request) -> Result<Caller, ApiError> {
        let caller = self.authorize(req).await?;
        if caller.role != Role::Admin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this route is for admins",
            ));
        }
        Ok(caller)
    }

    /// `GET /api/media/{media_id}`: the provider's file, for callers who may
    /// see the chat it came in, with that chat's channel key. Retryable failures are 503; the message that
    /// named the media is stored regardless.
    async fn media(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let caller = self.authorize(req).await?;
        let path = req.path_parameters();
        let media_id = path
            .first("media_id")
            .map(str::to_owned)
            .or_else(|| {
                req.uri()
                    .path()
                    .strip_prefix("/api/media/")
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let valid = !media_id.is_empty()
            && media_id.len() <= 128
            && media_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            return Err(ApiError::bad_request(
                "media_id must be 1-128 letters, digits, - _ .",
            ));
        }
        // The chat that received it decides who may see it and with which
        // channel's key it is fetched; `?channel=` is ignored. Unknown and
        // not-yours answer alike.
        let not_found = || ApiError::not_found("no such media in a chat you can see");
        let owner = self
            .store
            .media_ref(&media_id)
            .await
            .map_err(unavailable("media"))?
            .ok_or_else(not_found)?;
        let chat = self
            .store
            .chat(&owner.chat_id)
            .await
            .map_err(unavailable("media"))?
            .filter(|c| caller.sees(c.customer_type))
            .ok_or_else(not_found)?;
        let channel = self.channels.get(chat.channel.as_str()).ok_or_else(|| {
            tracing::error!(chat_id = %chat.chat_id, channel = %chat.channel, "chat's channel is not configured");
            ApiError::unavailable("the chat's channel is not configured")
        })?;
        let media = self.media.download(channel, &media_id).await.map_err(|e| {
            tracing::warn!(media_id = %media_id, channel = %channel.id, error = %e, "media download failed");
            match e {
                MediaError::NotFound => ApiError::not_found("no such media at the provider"),
                MediaError::TooLarge => ApiError::new(StatusCode::BAD_GATEWAY, "too_large", e.to_string()),
                MediaError::Refused(_) | MediaError::NoKey(_) => ApiError::new(StatusCode::BAD_GATEWAY, "provider_refused", e.to_string()),
                MediaError::Unavailable(_) => ApiError::unavailable("the provider is unavailable; retry"),
            }
        })?;
        let mut res = Response::new(Body::Binary(media.bytes));
        if let Ok(v) = http::HeaderValue::from_str(&media.content_type) {
            res.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
        res.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("private, max-age=3600"),
        );
        Ok(res)
    }

    /// `GET /api/dashboard/stats` (JWT): the counters as stored, read
    /// strongly consistently (they change in the same transaction as every
    /// status).
    async fn stats(&self, req: &Request) -> Result<http::Response<String>, ApiError> {
        self.authorize(req).await?;
        let counts = self
            .store
            .counts()
            .await
            .map_err(unavailable("statistics"))?;
        Ok(answer(StatusCode::OK, counts))
    }
}
