//! Start-up time, peak memory and package size of each function as built
//! for Lambda, measured against a minimal Lambda Runtime API of our own.
//!
//! ```sh
//! bash infra/scripts/startup.sh     # release build, zips, then this table
//! ```
//!
//! For each function binary in DIR (a release build): the binary is started
//! as Lambda starts it (`AWS_LAMBDA_RUNTIME_API` pointing at a stub served
//! here, the environment the template gives the function, the AWS SDK
//! pointed at a local stack of this tool's own). Reported:
//! - start-up: process start → its first `GET /runtime/invocation/next`
//!   (configuration read, SDK clients built, ready for work);
//! - one invocation: the stub hands it a real event (a 10-message SQS
//!   batch for the queue consumers, a webhook carrying 10 messages, a
//!   request for the other HTTP functions, a WebSocket event, a scheduled
//!   event) and times it until the answer is posted back;
//! - peak memory (`VmHWM`) after that invocation;
//! - the zip's size when ZIPS names the directory holding `{name}.zip`.
//!
//! `cargo run -p local-gateway --bin startup -- DIR [ZIPS]`

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify};

use local_gateway::DevAdmin;
use local_gateway::functions::KNOWN as FUNCTIONS;
use local_gateway::own_stack::{OwnStack, workspace};
use local_gateway::sample::{Text, text_webhook};

/// What the stub has seen of the one function it serves at a time.
#[derive(Default)]
struct Seen {
    event: Value,
    first_next: Option<Instant>,
    answered: Option<(Instant, String)>,
}

#[derive(Clone, Default)]
struct Stub {
    seen: Arc<Mutex<Seen>>,
    changed: Arc<Notify>,
}

async fn next(State(stub): State<Stub>) -> Response {
    let event = {
        let mut seen = stub.seen.lock().await;
        if seen.first_next.is_some() {
            drop(seen);
            // One invocation per start: later polls wait until killed.
            std::future::pending::<()>().await;
            unreachable!()
        }
        seen.first_next = Some(Instant::now());
        seen.event.clone()
    };
    stub.changed.notify_waiters();
    let mut headers = HeaderMap::new();
    let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
    for (name, value) in [
        ("lambda-runtime-aws-request-id", "startup-1".to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:ap-south-1:123456789012:function:startup".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".to_owned(),
        ),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    (StatusCode::OK, headers, event.to_string()).into_response()
}

async fn answered(
    State(stub): State<Stub>,
    UrlPath((_, outcome)): UrlPath<(String, String)>,
    body: String,
) -> StatusCode {
    stub.seen.lock().await.answered = Some((Instant::now(), format!("{outcome}: {body}")));
    stub.changed.notify_waiters();
    StatusCode::ACCEPTED
}

async fn init_error(State(stub): State<Stub>, body: String) -> StatusCode {
    stub.seen.lock().await.answered = Some((Instant::now(), format!("init error: {body}")));
    stub.changed.notify_waiters();
    StatusCode::ACCEPTED
}

fn fixture(name: &str) -> anyhow::Result<Value> {
    let path = workspace().join("tests/data").join(name);
    Ok(serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| path.display().to_string())?,
    )?)
}

/// A WhatsApp webhook carrying `n` text messages from `n` customers.
fn webhook_body(n: usize) -> Value {
    let ids: Vec<(String, String)> = (0..n)
        .map(|i| (format!("91987000{i:04}"), format!("wamid.startup-{i}")))
        .collect();
    let texts: Vec<Text<'_>> = ids
        .iter()
        .map(|(from, id)| Text {
            from,
            name: "Start",
            id,
            body: "namaste",
        })
        .collect();
    text_webhook(&texts, chrono::Utc::now().timestamp())
}

fn http(method: &str, path: &str, route: &str, body: Option<String>) -> anyhow::Result<Value> {
    let mut e = fixture("apigw_v2_webhook_post.json")?;
    e["routeKey"] = json!(format!("{method} {route}"));
    e["requestContext"]["routeKey"] = e["routeKey"].clone();
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    match body {
        Some(b) => {
            e["headers"]["content-length"] = json!(b.len().to_string());
            e["body"] = json!(b);
        }
        None => {
            e["headers"]
                .as_object_mut()
                .map(|h| h.remove("content-length"));
            e["body"] = Value::Null;
            e["pathParameters"] = json!({});
        }
    }
    Ok(e)
}

/// Ten SQS records from the inbound fixture with `body(i)` and the
/// customer's message group.
fn sqs(body: impl Fn(usize) -> (String, String)) -> anyhow::Result<Value> {
    let template = fixture("sqs_inbound_batch.json")?;
    let record = template["Records"][0].clone();
    let records: Vec<Value> = (0..10)
        .map(|i| {
            let (b, group) = body(i);
            let mut r = record.clone();
            r["messageId"] = json!(format!("00000000-0000-4000-8000-{i:012}"));
            r["body"] = json!(b);
            r["attributes"]["MessageGroupId"] = json!(group);
            r["attributes"]["MessageDeduplicationId"] = json!(format!("startup-{i}"));
            r["messageAttributes"] =
                json!({"channel": {"stringValue": "9099039188", "dataType": "String"}});
            r
        })
        .collect();
    Ok(json!({"Records": records}))
}

fn ws(route: &str, event_type: &str, body: Option<&str>) -> anyhow::Result<Value> {
    let mut e = fixture("ws_connect_event.json")?;
    e["requestContext"]["routeKey"] = json!(route);
    e["requestContext"]["eventType"] = json!(event_type);
    if let Some(b) = body {
        e["body"] = json!(b);
        e["queryStringParameters"] = Value::Null;
        e["multiValueQueryStringParameters"] = Value::Null;
    }
    Ok(e)
}

/// The event each function is handed, and what it is.
fn event_for(binary: &str) -> anyhow::Result<(Value, &'static str)> {
    let customer = |i: usize| format!("91987100{i:04}");
    Ok(match binary {
        "webhook" => (
            http(
                "POST",
                "/api/chats/whatsapp_chat/9099039188",
                "/api/chats/whatsapp_chat/{channel}",
                Some(webhook_body(10).to_string()),
            )?,
            "a webhook carrying 10 messages",
        ),
        "api" => (
            http("GET", "/api/executives", "/api/executives", None)?,
            "GET /api/executives without a token",
        ),
        "internal" => (
            http(
                "POST",
                "/api/internal/booking",
                "/api/internal/booking",
                Some("{}".into()),
            )?,
            "an internal webhook without its token",
        ),
        "web" => (http("GET", "/", "/", None)?, "GET / (the dashboard)"),
        "inbound" => (
            sqs(|i| {
                let c = customer(i);
                (
                    json!({"channel": "9099039188", "received_at": chrono::Utc::now(),
                           "event": {"kind": "message", "wa_message_id": format!("wamid.startup-in-{i}"),
                                     "from": c, "phone": c, "profile_name": "Start", "sent_at": null,
                                     "reply_to": null, "content": {"type": "text", "body": "namaste"}}})
                    .to_string(),
                    c,
                )
            })?,
            "10 queued messages of 10 new customers",
        ),
        "forward" => (
            sqs(|i| (webhook_body(1).to_string(), customer(i)))?,
            "10 webhook bodies to forward",
        ),
        "outbound" => (
            sqs(|i| {
                (
                    json!({"chat_id": format!("01a00000-0000-7000-8000-{i:012}"),
                           "message_id": format!("startup-out-{i}")})
                    .to_string(),
                    customer(i),
                )
            })?,
            "10 sends whose messages are not stored",
        ),
        "ws-connect" => (
            ws("$connect", "CONNECT", None)?,
            "a connect with a bad token",
        ),
        "ws-disconnect" => (ws("$disconnect", "DISCONNECT", Some(""))?, "a disconnect"),
        "ws-events" => (
            ws(
                "fetch_all_chats",
                "MESSAGE",
                Some(r#"{"event":"fetch_all_chats","data":{}}"#),
            )?,
            "a frame from an unknown connection",
        ),
        "sla-scan" | "counter-sync" | "booking-alerts" => (
            local_gateway::scheduler::scheduled_event(binary, chrono::Utc::now()),
            "a scheduled event",
        ),
        other => bail!("no event for {other}"),
    })
}

/// The peak resident set of `pid`, in MiB.
fn peak_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

struct Measured {
    startup: Duration,
    invocation: Duration,
    peak_mib: Option<f64>,
    answer: String,
}

async fn measure(
    stub: &Stub,
    stub_addr: std::net::SocketAddr,
    binary: &Path,
    name: &str,
    env: &HashMap<String, String>,
) -> anyhow::Result<Measured> {
    let (event, _) = event_for(name)?;
    *stub.seen.lock().await = Seen {
        event,
        ..Seen::default()
    };
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", stub_addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "startup")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = child.id().context("no pid")?;
    let deadline = started + Duration::from_secs(30);
    let (first, done) = loop {
        let waiting = stub.changed.notified();
        {
            let seen = stub.seen.lock().await;
            if let (Some(first), Some(done)) = (seen.first_next, seen.answered.clone()) {
                break (first, done);
            }
            if let (None, Some((_, why))) = (seen.first_next, &seen.answered) {
                bail!("{name} did not start: {why}");
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!("{name} exited ({status}) before answering");
        }
        if Instant::now() > deadline {
            bail!("{name} did not answer within 30 s");
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), waiting).await;
    };
    let peak = peak_mib(pid);
    let _ = child.kill().await;
    let mut answer = done.1;
    answer.truncate(90);
    Ok(Measured {
        startup: first.duration_since(started),
        invocation: done.0.duration_since(first),
        peak_mib: peak,
        answer,
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        bail!("usage: startup DIR [ZIPS]   (DIR holds the release-built function binaries)");
    };
    let zips = args.get(1).map(PathBuf::from);
    let runs: usize = std::env::var("STARTUP_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);

    eprintln!("starting a local stack for the functions to talk to…");
    let stack = OwnStack::start(
        "startup",
        DevAdmin {
            email: domain::executive::Email::parse("startup@smartchat.local")
                .map_err(anyhow::Error::msg)?,
            password: domain::secret::Secret::new("startup-password-1".into()),
        },
    )
    .await?;
    let stub = Stub::default();
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/{outcome}",
            post(answered),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let stub_addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    println!(
        "| function | zip | start-up (median of {runs}) | one invocation | peak memory | event | answer |"
    );
    println!("|---|---|---|---|---|---|---|");
    for name in FUNCTIONS {
        let binary = dir.join(name);
        if !binary.exists() {
            println!("| {name} | — | not built | | | | |");
            continue;
        }
        let mut env: HashMap<String, String> = stack.running.gateway.envs[name]
            .vars()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        for (k, v) in [
            (
                "AWS_ENDPOINT_URL_DYNAMODB",
                stack.endpoints.dynamodb.as_str(),
            ),
            ("AWS_ENDPOINT_URL_SQS", stack.endpoints.sqs.as_str()),
            (
                "AWS_ENDPOINT_URL_EVENTBRIDGE",
                stack.endpoints.eventbridge.as_str(),
            ),
            ("AWS_REGION", "ap-south-1"),
            ("AWS_ACCESS_KEY_ID", "local"),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            env.insert(k.to_owned(), v.to_owned());
        }
        let mut startups = Vec::new();
        let mut last = None;
        for _ in 0..runs.max(1) {
            let m = measure(&stub, stub_addr, &binary, name, &env).await?;
            startups.push(m.startup);
            last = Some(m);
        }
        let Some(m) = last else { continue };
        let zip = zips
            .as_ref()
            .and_then(|z| std::fs::metadata(z.join(format!("{name}.zip"))).ok())
            .map_or("—".to_owned(), |md| {
                format!("{:.2} MB", md.len() as f64 / 1_000_000.0)
            });
        let (_, what) = event_for(name)?;
        println!(
            "| {name} | {zip} | {:.1} ms | {:.1} ms | {} | {what} | `{}` |",
            median(startups).as_secs_f64() * 1000.0,
            m.invocation.as_secs_f64() * 1000.0,
            m.peak_mib.map_or("—".to_owned(), |p| format!("{p:.1} MiB")),
            m.answer.replace('|', "\\|").replace('\n', " "),
        );
    }
    stack.running.shutdown().await;
    Ok(())
}
