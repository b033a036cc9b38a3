//! The local gateway: runs Smart Chat's functions on this machine exactly
//! as API Gateway, SQS and Lambda would run them in AWS.
//!
//! - HTTP API: requests become API Gateway HTTP API (v2.0) events for the
//!   function `template.yaml` routes them to.
//! - WebSocket API: `$connect` / `$disconnect` / route-selected events on
//!   `$request.body.event`, plus the `@connections` management endpoint
//!   the functions push through (with `aws-sdk-apigatewaymanagement`).
//! - The SQS consumers (inbound, forward, outbound), polling the real
//!   (moto) queues as Lambda's event source mappings would.
//! - EventBridge's schedules (SLA scan, counter repair), invoking the
//!   functions with scheduled-event JSON.
//! - A Pinbot stand-in that records what would have been sent.

pub mod bootstrap;
pub mod consumer;
pub mod emulators;
pub mod faults;
pub mod functions;
pub mod http_api;
pub mod own_stack;
pub mod recorder;
pub mod request_counter;
pub mod sample;
pub mod scheduler;
pub mod soak;
pub mod template;
pub mod websocket;
pub mod wiring;

pub use request_counter::RequestCounter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use adapters::DynamoStore;
use adapters::pinbot::ProviderKeys;
use domain::auth::JwtKeys;
use domain::channel::Stakeholder;
use domain::executive::ExecutiveStore;
use domain::executive::{Email, Executive, ExecutiveId, Role, hash_password};
use domain::secret::Secret;
use domain::whatsapp::signature::WebhookAuth;

use crate::bootstrap::Resources;
use crate::emulators::Endpoints;
use crate::functions::Functions;
use crate::recorder::Recorder;
use crate::template::Template;
use crate::websocket::Connections;

pub const REGION: &str = "ap-south-1";

/// The development administrator seeded into the executives table.
#[derive(Clone, Debug)]
pub struct DevAdmin {
    pub email: Email,
    pub password: Secret,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub ws_addr: SocketAddr,
    /// Where the Pinbot recorder listens; `None` when `PINBOT_BASE_URL`
    /// points at a real (or other) provider.
    pub recorder_addr: Option<SocketAddr>,
    /// Where DynamoDB, SQS and EventBridge are served (DynamoDB Local and
    /// moto, or what `AWS_ENDPOINT_URL*` name).
    pub endpoints: Endpoints,
    pub template_path: PathBuf,
    /// Prefixed to every table and queue name (tests isolate themselves).
    pub name_prefix: String,
    pub jwt_secret: Secret,
    /// Another system allowed to mint agent tokens (`EXTERNAL_JWT_ISSUER`).
    pub external_jwt: Option<domain::auth::ExternalIssuer>,
    pub webhook_auth: WebhookAuth,
    pub verify_token: Option<Secret>,
    /// `X-Internal-Token` for the internal webhooks.
    pub internal_token: Option<Secret>,
    /// `ADMIN_TOKEN` for the cache routes.
    pub admin_token: Option<Secret>,
    pub dev_admin: Option<DevAdmin>,
    /// Overrides the template's queue visibility timeout (faster retries).
    pub visibility_timeout: Option<u32>,
    /// Overrides the queue consumers' `Timeout` (the template's otherwise),
    /// after which an invocation is stopped as Lambda stops it.
    pub consumer_timeout: Option<std::time::Duration>,
    pub max_webhook_body: usize,
    /// The provider's base URL (`PINBOT_BASE_URL`); `None`: the recorder.
    pub pinbot_base_url: Option<String>,
    /// Provider keys by environment variable name.
    pub provider_keys: ProviderKeys,
    /// Where the forward function sends webhook bodies; `None`: the
    /// recorder's `/communicationmaster/webhook` (or nowhere without one).
    pub communication_master_url: Option<String>,
    /// Concurrent pollers of the inbound queue (Lambda runs several; FIFO
    /// group locking keeps each customer's order).
    pub inbound_pollers: usize,
    /// Concurrent pollers of each standard queue (forward, send): Lambda
    /// scales those out too.
    pub standard_pollers: usize,
    /// Waits between send attempts (`OUTBOUND_BACKOFF_BASE_MS` /
    /// `OUTBOUND_BACKOFF_CAP_SECS` in AWS).
    pub outbound_backoff: domain::sending::Backoff,
    /// How long an unconfirmed send waits for its callback
    /// (`OUTBOUND_CONFIRM_WAIT_SECS` in AWS).
    pub outbound_confirm_wait: std::time::Duration,
    /// SLA thresholds and alert recipients (`SLA_*` in AWS).
    pub sla: domain::routing::sla::SlaSettings,
    /// How often the scheduler runs the scheduled functions
    /// (`LOCAL_SCHEDULE_PERIOD_SECS`); `None`: each at its template rate,
    /// `Some(ZERO)`: never (tests invoke them by hand).
    pub schedule_period: Option<std::time::Duration>,
    /// The fault switch (`LOCAL_FAULTS`; off by default): what fraction of
    /// requests to each dependency fail, changeable while running.
    pub faults: faults::Faults,
}

impl Config {
    /// Loopback on free ports, a fresh secret: what tests start from.
    pub fn ephemeral(endpoints: Endpoints, workspace: &std::path::Path) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            http_addr: any,
            ws_addr: any,
            recorder_addr: Some(any),
            endpoints,
            template_path: workspace.join("template.yaml"),
            name_prefix: format!("t{}-", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            jwt_secret: Secret::new(format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            )),
            external_jwt: None,
            webhook_auth: WebhookAuth::Open,
            verify_token: None,
            internal_token: None,
            admin_token: None,
            dev_admin: None,
            visibility_timeout: None,
            consumer_timeout: None,
            max_webhook_body: webhook::DEFAULT_MAX_BODY_BYTES,
            inbound_pollers: 2,
            standard_pollers: 2,
            communication_master_url: None,
            pinbot_base_url: None,
            provider_keys: ProviderKeys::local_dev(),
            outbound_confirm_wait: std::time::Duration::from_secs(2),
            outbound_backoff: domain::sending::Backoff {
                base: std::time::Duration::from_millis(200),
                cap: std::time::Duration::from_secs(2),
            },
            sla: domain::routing::sla::SlaSettings::default(),
            schedule_period: Some(std::time::Duration::ZERO),
            faults: faults::Faults::default(),
        }
    }
}

/// Shared by every server task.
pub struct Gateway {
    pub template: Template,
    pub functions: Functions,
    pub connections: Connections,
    pub sqs: aws_sdk_sqs::Client,
    pub http_domain: String,
    pub ws_domain: String,
    /// Each function binary's environment as the gateway wired it (what
    /// the same function started as a process of its own needs).
    pub envs: std::collections::BTreeMap<&'static str, domain::config::Env>,
    /// The fault switch the recorder and `@connections` consult too.
    pub faults: faults::Faults,
    /// Messages the local event source mappings handed out again.
    pub redeliveries: consumer::Redeliveries,
}

pub struct Running {
    pub http_addr: SocketAddr,
    pub ws_addr: SocketAddr,
    pub recorder_addr: Option<SocketAddr>,
    pub recorder: Arc<Recorder>,
    pub resources: Resources,
    pub gateway: Arc<Gateway>,
    pub dynamo: aws_sdk_dynamodb::Client,
    /// DynamoDB requests of every handler, by operation.
    pub dynamo_requests: RequestCounter,
    /// SQS and EventBridge requests (handlers, and the local event source
    /// mappings' receives and deletes), by service and operation.
    pub other_requests: RequestCounter,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub jwt: JwtKeys,
    /// The fault switch (also `GET`/`PUT /__faults` on the WebSocket port).
    pub faults: faults::Faults,
    /// Lambda's event source mappings: can be killed mid-batch and started
    /// again, as a crashing consumer would be.
    pub consumers: Arc<consumer::Consumers>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Runs a scheduled function once, as EventBridge would (scheduled
    /// event JSON for the template's rule); what it reported.
    pub async fn run_schedule(&self, binary: &str) -> anyhow::Result<serde_json::Value> {
        let rule = self
            .gateway
            .template
            .schedules
            .iter()
            .find(|s| s.binary == binary)
            .map(|s| s.rule.clone())
            .with_context(|| format!("the template schedules no {binary}"))?;
        let event = serde_json::from_value(scheduler::scheduled_event(&rule, chrono::Utc::now()))?;
        self.gateway
            .functions
            .invoke_schedule(binary, event)
            .await
            .map_err(|e| anyhow::anyhow!("{binary}: {e}"))
    }

    /// Messages waiting, in flight or delayed on the queues (by template
    /// logical id) `which` names.
    pub async fn pending(&self, which: impl Fn(&str) -> bool) -> anyhow::Result<u64> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        const COUNTS: [A; 3] = [
            A::ApproximateNumberOfMessages,
            A::ApproximateNumberOfMessagesNotVisible,
            A::ApproximateNumberOfMessagesDelayed,
        ];
        let mut pending = 0;
        for (id, url) in &self.resources.queue_urls {
            if !which(id) {
                continue;
            }
            let attrs = self
                .gateway
                .sqs
                .get_queue_attributes()
                .queue_url(url)
                .set_attribute_names(Some(COUNTS.to_vec()))
                .send()
                .await?
                .attributes
                .unwrap_or_default();
            for name in COUNTS {
                let count = attrs
                    .get(&name)
                    .with_context(|| format!("{url} has no {name:?}"))?;
                pending += count.parse::<u64>()?;
            }
        }
        Ok(pending)
    }

    /// Stops the servers and the consumer and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.consumers.kill();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// SDK configuration for the local stack: a region and fixed local
/// credentials; each client gets its service's endpoint from
/// [`LocalClients`].
pub async fn local_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "local-gateway",
        ))
        .load()
        .await
}

/// One client per AWS service, each pointed at the emulator serving it.
#[derive(Clone, Debug)]
pub struct LocalClients {
    pub sdk: aws_config::SdkConfig,
    pub dynamo: aws_sdk_dynamodb::Client,
    /// Every DynamoDB request `dynamo` makes, by operation.
    pub dynamo_requests: RequestCounter,
    /// Every SQS and EventBridge request, by service and operation.
    pub other_requests: RequestCounter,
    pub sqs: aws_sdk_sqs::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
}

impl LocalClients {
    /// Clients whose requests go through `faults` (off unless set).
    pub async fn new(endpoints: &Endpoints, faults: &faults::Faults) -> Self {
        let sdk = local_sdk_config().await;
        let dynamo_requests = RequestCounter::default();
        let other_requests = RequestCounter::named();
        // Each service's requests through the fault switch, which wraps the
        // SDK's default HTTP client.
        use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
        let wire = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .build_https();
        let wired = |dependency| {
            sdk.to_builder()
                .http_client(faults::FaultyHttpClient::new(
                    wire.clone(),
                    faults.clone(),
                    dependency,
                ))
                .build()
        };
        Self {
            dynamo: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&wired(faults::Dependency::DynamoDb))
                    .endpoint_url(&endpoints.dynamodb)
                    .interceptor(dynamo_requests.clone())
                    .build(),
            ),
            dynamo_requests,
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&wired(faults::Dependency::Sqs))
                    .endpoint_url(&endpoints.sqs)
                    .interceptor(other_requests.clone())
                    .build(),
            ),
            eventbridge: aws_sdk_eventbridge::Client::from_conf(
                aws_sdk_eventbridge::config::Builder::from(&wired(faults::Dependency::EventBridge))
                    .endpoint_url(&endpoints.eventbridge)
                    .interceptor(other_requests.clone())
                    .build(),
            ),
            other_requests,
            sdk,
        }
    }
}

async fn seed_dev_admin(store: &DynamoStore, admin: &DevAdmin) -> anyhow::Result<()> {
    let executive = Executive {
        executive_id: ExecutiveId::parse("dev-admin").map_err(anyhow::Error::msg)?,
        name: "Dev Admin".to_owned(),
        email: admin.email.clone(),
        password_hash: hash_password(admin.password.expose())?,
        role: Role::Admin,
        stakeholders: Stakeholder::SERVED.to_vec(),
        disabled: false,
        capacity: domain::executive::DEFAULT_CAPACITY,
        token_generation: 0,
    };
    store
        .put_executive(&executive)
        .await
        .context("seeding the dev admin")
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.changed().await;
}

/// Serves `app` on `listener` until the stop signal, with peer addresses
/// (API Gateway events carry the source IP).
fn serve(
    listener: TcpListener,
    app: Router,
    stop: watch::Receiver<bool>,
    name: &'static str,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let serving = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stopped(stop));
        if let Err(e) = serving.await {
            tracing::error!(error = %e, server = name, "server stopped");
        }
    })
}

pub async fn start(cfg: Config) -> anyhow::Result<Running> {
    let template = Template::load(&cfg.template_path)
        .with_context(|| format!("reading {}", cfg.template_path.display()))?;
    for r in template
        .http_routes
        .iter()
        .map(|r| &r.binary)
        .chain(template.ws_routes.iter().map(|r| &r.binary))
        .chain(template.schedules.iter().map(|s| &s.binary))
    {
        anyhow::ensure!(
            functions::KNOWN.contains(&r.as_str()),
            "template routes to {r}, which the local gateway does not know"
        );
    }

    let LocalClients {
        sdk,
        dynamo,
        dynamo_requests,
        other_requests,
        sqs,
        eventbridge,
    } = LocalClients::new(&cfg.endpoints, &cfg.faults).await;
    let resources = bootstrap::create_all(
        &template,
        &cfg.name_prefix,
        &dynamo,
        &sqs,
        &eventbridge,
        cfg.visibility_timeout,
    )
    .await?;
    let max_receives = |queue: &str, default: u32| {
        template
            .queues
            .iter()
            .find(|q| q.logical_id == queue)
            .and_then(|q| q.redrive.as_ref().map(|(_, max)| *max))
            .unwrap_or(default)
    };
    let inbound_max_receives = max_receives("InboundQueue", inbound::DEFAULT_MAX_RECEIVES);
    let outbound_max_attempts = max_receives("OutboundQueue", outbound::DEFAULT_MAX_ATTEMPTS);

    let http_listener = TcpListener::bind(cfg.http_addr)
        .await
        .with_context(|| format!("binding HTTP on {}", cfg.http_addr))?;
    let ws_listener = TcpListener::bind(cfg.ws_addr)
        .await
        .with_context(|| format!("binding WebSocket on {}", cfg.ws_addr))?;
    let recorder_listener = match cfg.recorder_addr {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the Pinbot recorder on {addr}"))?,
        ),
        None => None,
    };
    let recorder_addr = recorder_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let communication_master_url = cfg
        .communication_master_url
        .clone()
        .or_else(|| recorder_addr.map(|a| format!("http://{a}/communicationmaster/webhook")))
        .unwrap_or_else(|| "http://127.0.0.1:9/unconfigured".to_owned());
    let pinbot_base_url = cfg
        .pinbot_base_url
        .clone()
        .or_else(|| recorder_addr.map(|a| format!("http://{a}")));
    let http_addr = http_listener.local_addr()?;
    let ws_addr = ws_listener.local_addr()?;

    // The functions, wired as on Lambda: the template's environment for
    // each, and these clients (the emulators' endpoints, the counter).
    let aws = adapters::Aws {
        sdk: sdk.clone(),
        dynamo: dynamo.clone(),
        sqs: sqs.clone(),
        eventbridge: eventbridge.clone(),
    };
    let envs = wiring::FunctionEnvs::new(
        &template,
        &resources,
        &cfg,
        wiring::Local {
            ws_endpoint: format!("http://{ws_addr}"),
            pinbot_base_url,
            communication_master_url,
            inbound_max_receives,
            outbound_max_attempts,
        },
    );
    let env = |binary: &str| envs.env(binary);
    let jwt = JwtKeys::from_env(&env("api"))?;
    if let Some(admin) = &cfg.dev_admin {
        seed_dev_admin(&DynamoStore::from_env(&env("api"), &aws)?, admin).await?;
    }
    let functions = Functions {
        webhook: webhook::State::from_env(&env("webhook"), &aws)?,
        api: api::State::from_env(&env("api"), &aws)?,
        forward: forward::State::from_env(&env("forward"))?,
        outbound: outbound::State::from_env(&env("outbound"), &aws)?,
        internal: internal::State::from_env(&env("internal"), &aws)?,
        inbound: inbound::State::from_env(&env("inbound"), &aws)?,
        ws_connect: ws_connect::State::from_env(&env("ws-connect"), &aws)?,
        ws_disconnect: ws_disconnect::State::from_env(&env("ws-disconnect"), &aws)?,
        sla_scan: sla_scan::State::from_env(&env("sla-scan"), &aws)?,
        counter_sync: counter_sync::State::from_env(&env("counter-sync"), &aws)?,
        booking_alerts: booking_alerts::State::from_env(&env("booking-alerts"), &aws)?,
        web: web::State::from_env(&env("web"))?,
        ws_events: ws_events::State::from_env(&env("ws-events"), &aws)?,
    };
    let function_envs = functions::KNOWN.iter().map(|b| (*b, env(b))).collect();
    let gateway = Arc::new(Gateway {
        template,
        functions,
        connections: Connections::default(),
        sqs,
        http_domain: http_addr.to_string(),
        ws_domain: ws_addr.to_string(),
        envs: function_envs,
        faults: cfg.faults.clone(),
        redeliveries: consumer::Redeliveries::default(),
    });

    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let http_app = Router::new()
        .fallback(http_api::handle)
        .with_state(gateway.clone());
    tasks.push(serve(http_listener, http_app, stop_rx.clone(), "HTTP API"));

    let ws_app = Router::new()
        .route("/", get(websocket::upgrade))
        .route(
            "/@connections/{id}",
            post(websocket::post_to_connection)
                .get(websocket::get_connection)
                .delete(websocket::delete_connection),
        )
        .route("/__faults", get(faults::show).put(faults::change))
        .with_state(gateway.clone());
    tasks.push(serve(ws_listener, ws_app, stop_rx.clone(), "WebSocket API"));

    let recorder = Arc::new(Recorder::with_faults(cfg.faults.clone()));
    if let Some(listener) = recorder_listener {
        let app = recorder::router(recorder.clone());
        tasks.push(serve(listener, app, stop_rx.clone(), "Pinbot recorder"));
    }

    // Lambda's event source mappings, as the template declares them.
    let mut sources = Vec::new();
    for source in gateway.template.sqs_sources.clone() {
        let pollers = if source.queue == "InboundQueue" {
            cfg.inbound_pollers.max(1)
        } else {
            cfg.standard_pollers.max(1)
        };
        sources.push(consumer::Source {
            url: resources.queue_url(&source.queue)?,
            arn: resources
                .queue_arns
                .get(&source.queue)
                .cloned()
                .unwrap_or_default(),
            pollers,
            batch_size: source.batch_size,
            timeout: cfg
                .consumer_timeout
                .unwrap_or(std::time::Duration::from_secs(u64::from(
                    source.function_timeout.max(1),
                ))),
            binary: source.binary,
        });
    }
    let consumers = Arc::new(consumer::Consumers::new(
        gateway.clone(),
        sources,
        stop_rx.clone(),
    ));
    consumers.start();

    // EventBridge's schedules, as the template declares them.
    for schedule in gateway.template.schedules.clone() {
        let every = match cfg.schedule_period {
            Some(p) if p.is_zero() => continue,
            Some(p) => p,
            None => schedule.every,
        };
        tasks.push(tokio::spawn(scheduler::run(
            gateway.clone(),
            schedule,
            every,
            stop_rx.clone(),
        )));
    }

    Ok(Running {
        http_addr,
        ws_addr,
        recorder_addr,
        recorder,
        resources,
        gateway,
        dynamo,
        dynamo_requests,
        other_requests,
        eventbridge,
        jwt,
        faults: cfg.faults,
        consumers,
        stop,
        tasks,
    })
}
