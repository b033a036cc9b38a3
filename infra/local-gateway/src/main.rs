//! `make dev`: DynamoDB Local and moto server + tables/queues from
//! template.yaml + seed data + the local gateway, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use domain::executive::Email;
use domain::secret::Secret;
use domain::whatsapp::signature::WebhookAuth;
use local_gateway::emulators::{self, EndpointOverrides};
use local_gateway::{Config, DevAdmin};

fn addr(name: &str, default: &str) -> anyhow::Result<SocketAddr> {
    let v = std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned());
    v.parse()
        .with_context(|| format!("{name} must be host:port, got `{v}`"))
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    domain::telemetry::init_pretty();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One readable paragraph, not a backtrace: which part did not
            // start, and why (the emulators' errors name their log file).
            eprintln!("\nThe local stack did not start: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);

    // DynamoDB Local and moto, unless AWS_ENDPOINT_URL(_<SERVICE>) names
    // an emulator already running.
    let overrides = EndpointOverrides::from_env();
    let log_dir = emulators::dev_log_dir(&workspace);
    eprintln!(
        "starting the local AWS (emulator logs in {})",
        log_dir.display()
    );
    let (emulators, endpoints) = emulators::start_missing(
        &workspace,
        &overrides,
        emulators::Addresses {
            dynamodb: addr("DYNAMODB_LOCAL_ADDR", "127.0.0.1:8000")?,
            sqs: addr("MOTO_ADDR", "127.0.0.1:4566")?,
            eventbridge: addr("MOTO_EVENTS_ADDR", "127.0.0.1:4567")?,
        },
        &log_dir,
        |name, waited| eprintln!("  waiting for {name}… {} s", waited.as_secs()),
    )
    .await?;
    for e in &emulators {
        eprintln!(
            "  {} answers on {} (log {})",
            e.name(),
            e.endpoint(),
            e.log.display()
        );
    }

    // The developer's environment configures the stack like a deployed
    // one: the same variables the functions read.
    let env = domain::config::Env::process();
    let generated_secret = env.secret("JWT_SECRET_KEY").is_none();
    let jwt_secret = env.secret("JWT_SECRET_KEY").unwrap_or_else(|| {
        Secret::new(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ))
    });
    let admin_email = var("DEV_ADMIN_EMAIL", "admin@smartchat.local");
    let admin_password = var("DEV_ADMIN_PASSWORD", "smartchat-dev");
    let verify_token = var("WEBHOOK_VERIFY_TOKEN", "smartchat-local-verify");
    let internal_token = var("INTERNAL_WEBHOOK_TOKEN", "smartchat-local-internal");
    let admin_token = var("ADMIN_TOKEN", "smartchat-local-admin");
    let recorder_addr = match std::env::var("PINBOT_BASE_URL")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(_) => None,
        None => Some(addr("PINBOT_RECORDER_ADDR", "127.0.0.1:3002")?),
    };
    let webhook_auth = WebhookAuth::from_env(&env);
    let auth_note = match &webhook_auth {
        WebhookAuth::Signature(_) => "X-Hub-Signature-256 required (WEBHOOK_APP_SECRET)",
        WebhookAuth::Token(_) => "X-Webhook-Token required (WEBHOOK_TOKEN)",
        WebhookAuth::Open => "open (set WEBHOOK_APP_SECRET or WEBHOOK_TOKEN to require auth)",
    };

    let cfg = Config {
        http_addr: addr("LOCAL_HTTP_ADDR", "127.0.0.1:3000")?,
        ws_addr: addr("LOCAL_WS_ADDR", "127.0.0.1:3001")?,
        recorder_addr,
        endpoints: endpoints.clone(),
        template_path: workspace.join("template.yaml"),
        name_prefix: String::new(),
        jwt_secret,
        external_jwt: domain::auth::ExternalIssuer::from_env(&env)?,
        webhook_auth,
        verify_token: Some(Secret::new(verify_token.clone())),
        internal_token: Some(Secret::new(internal_token.clone())),
        admin_token: Some(Secret::new(admin_token.clone())),
        dev_admin: Some(DevAdmin {
            email: Email::parse(&admin_email).map_err(anyhow::Error::msg)?,
            password: Secret::new(admin_password.clone()),
        }),
        consumer_timeout: None,
        visibility_timeout: std::env::var("LOCAL_VISIBILITY_TIMEOUT_SECS")
            .ok()
            .and_then(|v| v.parse().ok()),
        max_webhook_body: webhook::DEFAULT_MAX_BODY_BYTES,
        // Lambda runs several inbound consumers at once (FIFO group locking
        // keeps each customer's order); so does the local stack.
        inbound_pollers: var("LOCAL_INBOUND_POLLERS", "4")
            .parse()
            .context("LOCAL_INBOUND_POLLERS must be a whole number")?,
        standard_pollers: var("LOCAL_QUEUE_POLLERS", "2")
            .parse()
            .context("LOCAL_QUEUE_POLLERS must be a whole number")?,
        pinbot_base_url: std::env::var("PINBOT_BASE_URL")
            .ok()
            .filter(|v| !v.is_empty()),
        provider_keys: {
            let channels = domain::channel::ChannelTable::from_env(&env)?;
            let from_env = adapters::pinbot::ProviderKeys::from_env(&env, &channels);
            if std::env::var("WA_API_KEY_1").is_ok() || std::env::var("WA_API_KEY_2").is_ok() {
                from_env
            } else {
                adapters::pinbot::ProviderKeys::local_dev()
            }
        },
        communication_master_url: std::env::var("COMMUNICATION_MASTER_URL")
            .ok()
            .filter(|v| !v.is_empty()),
        // The same variables the outbound Lambda reads.
        outbound_backoff: outbound::settings_from_env(&env)?.backoff,
        outbound_confirm_wait: outbound::settings_from_env(&env)?.confirm_wait,
        // The same variables the sla-scan Lambda reads.
        sla: domain::routing::sla::SlaSettings::from_env(&env)?,
        // Unset: each schedule at its template rate (1 and 5 minutes).
        schedule_period: std::env::var("LOCAL_SCHEDULE_PERIOD_SECS")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map(std::time::Duration::from_secs)
                    .map_err(|_| {
                        anyhow::anyhow!("LOCAL_SCHEDULE_PERIOD_SECS must be whole seconds")
                    })
            })
            .transpose()?,
        // Off unless asked for; `PUT /__faults` changes it while running.
        faults: local_gateway::faults::Faults::from_spec(&var("LOCAL_FAULTS", "off"))
            .map_err(|e| anyhow::anyhow!("LOCAL_FAULTS: {e}"))?,
    };
    let running = local_gateway::start(cfg).await?;
    let faults_line = match running.faults.rates() {
        r if r.is_empty() => "off".to_owned(),
        r => r
            .iter()
            .map(|(f, x)| format!("{}={x}", f.name()))
            .collect::<Vec<_>>()
            .join(","),
    };

    let recorder_line = match (running.recorder_addr, std::env::var("PINBOT_BASE_URL")) {
        (Some(a), _) => format!("http://{a}  (recorder; GET /__recorded lists what was sent)"),
        (None, Ok(url)) => url,
        (None, Err(_)) => "-".to_owned(),
    };
    println!(
        "\nSmart Chat local stack is up\n\
         \n  Dashboard       http://{http}/   (log in with the dev admin below)\
         \n  HTTP API        http://{http}\
         \n  WebSocket API   ws://{ws}/?token=<JWT>\
         \n  @connections    http://{ws}/@connections/{{id}}\
         \n  DynamoDB        {dynamodb}   tables: {tables}\
         \n  SQS             {sqs}\
         \n  EventBridge     {eventbridge}\
         \n  Pinbot          {recorder_line}\
         \n  Fault switch    {faults_line}   (GET/PUT http://{ws}/__faults, e.g. --data 'all=0.05'; docs/reliability.md)\
         \n  Comm. Master    {cm_line}\
         \n  Webhook auth    {auth_note}\
         \n  Verify token    {verify_token}\
         \n  Internal token  {internal_token}   (X-Internal-Token for /api/webhook/user/update, booking, context_change)\
         \n  Admin token     {admin_token}   (X-Admin-Token for /api/chats/clear_cache, delete_cache)\
         \n\n  Dev admin       {admin_email} / {admin_password}\
         \n  JWT key         {jwt_note}\
         \n\n  Log in:   curl -s -X POST http://{http}/api/auth/login -H 'content-type: application/json' \\\
         \n                 -d '{{\"email\":\"{admin_email}\",\"password\":\"{admin_password}\"}}'\
         \n  Webhook:  curl -s -X POST http://{http}/api/chats/whatsapp_chat/9099039188 -H 'content-type: application/json' \\\
         \n                 --data @tests/data/webhook_text.json\
         \n\nCtrl-C stops everything.\n",
        cm_line = match (
            std::env::var("COMMUNICATION_MASTER_URL"),
            running.recorder_addr
        ) {
            (Ok(url), _) if !url.is_empty() => url,
            (_, Some(a)) => format!("http://{a}/communicationmaster/webhook  (recorder)"),
            _ => "-".to_owned(),
        },
        http = running.http_addr,
        dynamodb = endpoints.dynamodb,
        sqs = endpoints.sqs,
        eventbridge = endpoints.eventbridge,
        ws = running.ws_addr,
        tables = running
            .resources
            .tables
            .values()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        jwt_note = if generated_secret {
            "generated for this run (set JWT_SECRET_KEY to keep tokens across restarts)"
        } else {
            "from JWT_SECRET_KEY"
        },
    );

    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    println!("\nstopping…");
    running.shutdown().await;
    for e in emulators {
        e.stop().await;
    }
    Ok(())
}
