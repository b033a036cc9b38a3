//! Measures the running local stack (`make dev`) as a customer and an agent
//! see it: from posting a WhatsApp webhook to the `room_update` push on an
//! agent's dashboard socket, over real HTTP and WebSocket.
//!
//! ```sh
//! make dev        # in one terminal
//! cargo run -p local-gateway --bin latency -- one-at-a-time 100
//! cargo run -p local-gateway --bin latency -- rate 20 60
//! cargo run -p local-gateway --bin latency -- listed 300
//! ```
//!
//! - `one-at-a-time N`: N webhooks from N new senders, each posted once the
//!   previous one's push arrived; webhook answer and webhook → push p50/p99.
//! - `rate R S`: R webhooks a second from new senders for S seconds, on a
//!   fixed schedule (no waiting for answers); webhook → push p50/p99/max and
//!   how many were pushed within a minute of the last post.
//! - `listed N`: N webhooks from N new senders posted at once (32 in
//!   flight), then `fetch_all_chats` until all N are listed; the time.
//!
//! `SMARTCHAT_HTTP` / `SMARTCHAT_WS` (default the `make dev` addresses) and
//! `DEV_ADMIN_EMAIL` / `DEV_ADMIN_PASSWORD` say where and as whom. Senders
//! are new numbers for every run (from the clock), so runs do not collide.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

const CHANNEL: &str = "9099039188";

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[derive(Clone)]
struct Target {
    http: String,
    ws: String,
    client: reqwest::Client,
    token: String,
}

impl Target {
    async fn login() -> anyhow::Result<Self> {
        let http = var("SMARTCHAT_HTTP", "http://127.0.0.1:3000");
        let ws = var("SMARTCHAT_WS", "ws://127.0.0.1:3001");
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?;
        let res = client
            .post(format!("{http}/api/auth/login"))
            .json(&json!({
                "email": var("DEV_ADMIN_EMAIL", "admin@smartchat.local"),
                "password": var("DEV_ADMIN_PASSWORD", "smartchat-dev"),
            }))
            .send()
            .await
            .with_context(|| format!("is `make dev` running on {http}?"))?;
        let body: Value = res.json().await?;
        let token = body["token"]
            .as_str()
            .with_context(|| format!("login refused: {body}"))?
            .to_owned();
        Ok(Self {
            http,
            ws,
            client,
            token,
        })
    }

    /// Posts one text webhook from `sender`; the time the answer took.
    async fn post(&self, sender: &str) -> anyhow::Result<Duration> {
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "919099039188", "phone_number_id": "1"},
                "contacts": [{"profile": {"name": "Latency"}, "wa_id": sender}],
                "messages": [{"from": sender, "id": format!("wamid.latency-{sender}"),
                    "timestamp": chrono::Utc::now().timestamp().to_string(),
                    "type": "text", "text": {"body": "namaste"}}]
            }}]}]
        });
        let started = Instant::now();
        let res = self
            .client
            .post(format!("{}/api/chats/whatsapp_chat/{CHANNEL}", self.http))
            .json(&body)
            .send()
            .await?;
        let took = started.elapsed();
        if !res.status().is_success() {
            bail!("webhook answered {}", res.status());
        }
        Ok(took)
    }
}

/// When each customer's `room_update` first arrived on the dashboard.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// Opens the admin's dashboard socket and records `room_update` arrivals
/// by customer number until the process ends.
async fn watch(target: &Target) -> anyhow::Result<(Arrivals, Arc<tokio::sync::Notify>)> {
    let (ws, _) =
        tokio_tungstenite::connect_async(format!("{}/?token={}", target.ws, target.token)).await?;
    let (_, mut read) = ws.split();
    let arrivals: Arrivals = Arc::default();
    let notify = Arc::new(tokio::sync::Notify::new());
    let (a, n) = (arrivals.clone(), notify.clone());
    tokio::spawn(async move {
        while let Some(Ok(msg)) = read.next().await {
            let Message::Text(text) = msg else { continue };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if frame["event"] != "room_update" {
                continue;
            }
            if let Some(customer) = frame["data"]["customer"].as_str() {
                a.lock()
                    .await
                    .entry(customer.to_owned())
                    .or_insert_with(Instant::now);
                n.notify_waiters();
            }
        }
    });
    Ok((arrivals, notify))
}

fn senders(n: usize) -> Vec<String> {
    // 91 + 10 digits, new for each run: the clock's seconds, then a counter.
    let base = (chrono::Utc::now().timestamp() % 100_000) as usize;
    (0..n)
        .map(|i| format!("917{base:05}{:04}", i % 10_000))
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: n={} p50={} p99={} max={}",
        samples.len(),
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.99)),
        ms(samples.last().copied().unwrap_or_default()),
    );
}

async fn one_at_a_time(target: &Target, n: usize) -> anyhow::Result<()> {
    let (arrivals, notify) = watch(target).await?;
    let mut answers = Vec::with_capacity(n);
    let mut pushes = Vec::with_capacity(n);
    for sender in senders(n) {
        let started = Instant::now();
        let waiting = notify.notified();
        tokio::pin!(waiting);
        answers.push(target.post(&sender).await?);
        let deadline = started + Duration::from_secs(30);
        loop {
            if let Some(at) = arrivals.lock().await.get(&sender) {
                pushes.push(at.duration_since(started));
                break;
            }
            if Instant::now() > deadline {
                bail!("no room_update for {sender} within 30 s");
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), waiting.as_mut()).await;
            waiting.set(notify.notified());
        }
    }
    report("webhook answer", answers);
    report("webhook -> room_update", pushes);
    Ok(())
}

async fn at_rate(target: &Target, rate: u32, seconds: u32) -> anyhow::Result<()> {
    let (arrivals, _) = watch(target).await?;
    let total = (rate * seconds) as usize;
    let target = Arc::new(target.clone());
    let mut posts = Vec::with_capacity(total);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut refused = 0usize;
    for sender in senders(total) {
        tick.tick().await;
        let started = Instant::now();
        let t = target.clone();
        let s = sender.clone();
        posts.push((
            sender,
            started,
            tokio::spawn(async move { t.post(&s).await }),
        ));
    }
    let last_post = Instant::now();
    let mut answers = Vec::with_capacity(total);
    let mut sent = Vec::with_capacity(total);
    for (sender, started, handle) in posts {
        match handle.await? {
            Ok(took) => {
                answers.push(took);
                sent.push((sender, started));
            }
            Err(_) => refused += 1,
        }
    }
    // Wait up to a minute after the last post for the pushes.
    let deadline = last_post + Duration::from_secs(60);
    loop {
        let got = arrivals.lock().await.len();
        if got >= sent.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = arrivals.lock().await.clone();
    let pushes: Vec<Duration> = sent
        .iter()
        .filter_map(|(s, started)| seen.get(s).map(|at| at.duration_since(*started)))
        .collect();
    println!(
        "{rate}/s for {seconds} s: {} posted, {refused} refused, {} pushed within a minute of the last post",
        sent.len(),
        pushes.len()
    );
    report("webhook answer", answers);
    report("webhook -> room_update", pushes);
    Ok(())
}

async fn listed(target: &Target, n: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let batch = senders(n);
    let statuses: Vec<anyhow::Result<Duration>> = futures_util::stream::iter(batch.iter())
        .map(|s| target.post(s))
        .buffer_unordered(32)
        .collect()
        .await;
    let refused = statuses.iter().filter(|s| s.is_err()).count();
    let posted = started.elapsed();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{}/?token={}", target.ws, target.token)).await?;
    let wanted: std::collections::HashSet<&String> = batch.iter().collect();
    let deadline = started + Duration::from_secs(120);
    let mut request = 0u64;
    loop {
        // Every active Partner chat, page by page on the cursor.
        let mut found = 0usize;
        let mut cursor: Option<String> = None;
        loop {
            request += 1;
            let mut data = json!({"customer_type": "Partner", "status": "active", "page_size": 50});
            if let Some(c) = &cursor {
                data["cursor"] = json!(c);
            }
            let rid = format!("listed-{request}");
            ws.send(Message::Text(
                json!({"event": "fetch_all_chats", "data": data, "request_id": rid})
                    .to_string()
                    .into(),
            ))
            .await?;
            let reply = loop {
                let msg = ws.next().await.context("socket closed")??;
                if let Message::Text(t) = msg {
                    let v: Value = serde_json::from_str(&t)?;
                    if v["request_id"] == rid.as_str() {
                        break v;
                    }
                }
            };
            if reply["event"] == "error" {
                bail!("fetch_all_chats refused: {reply}");
            }
            for chat in reply["data"]["chats"].as_array().into_iter().flatten() {
                if chat["customer"]
                    .as_str()
                    .is_some_and(|c| wanted.contains(&c.to_owned()))
                {
                    found += 1;
                }
            }
            cursor = reply["data"]["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        if found >= n - refused {
            println!(
                "{n} new senders: posted in {} ({refused} refused), all {found} listed after {}",
                ms(posted),
                ms(started.elapsed())
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {found} of {n} listed after {}", ms(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: u32| -> anyhow::Result<u32> {
        args.get(i).map_or(Ok(default), |v| {
            v.parse()
                .with_context(|| format!("`{v}` is not a whole number"))
        })
    };
    let target = Target::login().await?;
    match args.first().map(String::as_str) {
        Some("one-at-a-time") => one_at_a_time(&target, num(1, 100)? as usize).await,
        Some("rate") => at_rate(&target, num(1, 20)?.max(1), num(2, 60)?.max(1)).await,
        Some("listed") => listed(&target, num(1, 300)?.max(1) as usize).await,
        _ => bail!("usage: latency one-at-a-time [N] | rate [R] [SECONDS] | listed [N]"),
    }
}
