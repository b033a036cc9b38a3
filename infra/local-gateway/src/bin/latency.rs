//! Measures the running local stack (`make dev`) as a customer and an agent
//! see it: from posting a WhatsApp webhook to the `room_update` push on an
//! agent's dashboard socket, over real HTTP and WebSocket.
//!
//! ```sh
//! make bench      # the whole suite on a stack of its own (no make dev needed)
//! cargo run -p local-gateway --bin latency -- suite 20
//!
//! make dev        # in one terminal, then any one scenario against it:
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
//! - `suite [SECONDS]` (`BENCH_RATES=20,50` for other rates): starts a stack of its own (DynamoDB Local, moto for
//!   SQS and another for EventBridge, the gateway with four inbound pollers,
//!   as `make dev` does) and runs, in one process: the webhook against a
//!   bare SQS `SendMessage` to the same emulator, side by side; 5, 20, 50
//!   and 100 webhooks a second from distinct senders for SECONDS each
//!   (default 20), each checked in the store (every message stored exactly
//!   once); a burst of 50 from one sender (stored in the order sent); and
//!   the highest of those rates whose lag did not grow.
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
    /// The `make dev` stack (or what the environment names).
    async fn login() -> anyhow::Result<Self> {
        Self::login_at(
            var("SMARTCHAT_HTTP", "http://127.0.0.1:3000"),
            var("SMARTCHAT_WS", "ws://127.0.0.1:3001"),
            &var("DEV_ADMIN_EMAIL", "admin@smartchat.local"),
            &var("DEV_ADMIN_PASSWORD", "smartchat-dev"),
        )
        .await
    }

    async fn login_at(
        http: String,
        ws: String,
        email: &str,
        password: &str,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?;
        let res = client
            .post(format!("{http}/api/auth/login"))
            .json(&json!({"email": email, "password": password}))
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
        self.post_text(sender, &format!("wamid.latency-{sender}"), "namaste")
            .await
    }

    /// Posts one text webhook; the time the answer took.
    async fn post_text(&self, sender: &str, wamid: &str, text: &str) -> anyhow::Result<Duration> {
        let body = local_gateway::sample::text_webhook(
            &[local_gateway::sample::Text {
                from: sender,
                name: "Latency",
                id: wamid,
                body: text,
            }],
            chrono::Utc::now().timestamp(),
        );
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

/// When each customer's `room_update`s arrived on the dashboard.
type Arrivals = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

/// When the first `room_update` for each customer arrived.
async fn first_arrivals(arrivals: &Arrivals) -> HashMap<String, Instant> {
    arrivals
        .lock()
        .await
        .iter()
        .filter_map(|(c, at)| at.first().map(|t| (c.clone(), *t)))
        .collect()
}

/// Opens the admin's dashboard socket and records `room_update` arrivals
/// by customer number until the process ends.
async fn watch(target: &Target) -> anyhow::Result<(Arrivals, Arc<tokio::sync::Notify>)> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{}/?token={}", target.ws, target.token)).await?;
    // Watching once the dashboard is answered: its connection is stored.
    ws.send(Message::Text(
        json!({"event": "config", "data": {}, "request_id": "ready"})
            .to_string()
            .into(),
    ))
    .await?;
    loop {
        let msg = ws.next().await.context("socket closed")??;
        if let Message::Text(t) = msg
            && serde_json::from_str::<Value>(&t).is_ok_and(|v| v["request_id"] == "ready")
        {
            break;
        }
    }
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
                    .or_default()
                    .push(Instant::now());
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
            if let Some(at) = arrivals.lock().await.get(&sender).and_then(|a| a.first()) {
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

/// What one fixed-rate run saw.
struct RateRun {
    rate: u32,
    /// The senders whose webhook was accepted, in posting order, and the
    /// time from posting to their first `room_update` (`None`: no push
    /// within a minute of the last post).
    sent: Vec<(String, Option<Duration>)>,
    answers: Vec<Duration>,
    refused: usize,
}

impl RateRun {
    fn pushes(&self) -> Vec<Duration> {
        self.sent.iter().filter_map(|(_, d)| *d).collect()
    }

    /// Lag grew during the run: the last third's median push took more
    /// than twice the first third's (plus 50 ms of slack) or over a
    /// second, or some messages were never pushed.
    fn lag_grew(&self) -> bool {
        let third = self.sent.len() / 3;
        if third == 0 || self.sent.iter().any(|(_, d)| d.is_none()) {
            return true;
        }
        let median = |part: &[(String, Option<Duration>)]| {
            let mut v: Vec<Duration> = part.iter().filter_map(|(_, d)| *d).collect();
            v.sort();
            percentile(&v, 0.5)
        };
        let first = median(&self.sent[..third]);
        let last = median(&self.sent[self.sent.len() - third..]);
        last > first * 2 + Duration::from_millis(50) || last > Duration::from_secs(1)
    }

    fn print(&self, seconds: u32) {
        println!(
            "{}/s for {seconds} s: {} posted, {} refused, {} pushed within a minute of the last post{}",
            self.rate,
            self.sent.len(),
            self.refused,
            self.pushes().len(),
            if self.lag_grew() {
                "; lag grew"
            } else {
                "; lag steady"
            },
        );
        report("  webhook answer", self.answers.clone());
        report("  webhook -> room_update", self.pushes());
    }
}

async fn at_rate(target: &Target, rate: u32, seconds: u32) -> anyhow::Result<()> {
    let total = (rate * seconds) as usize;
    run_rate(target, rate, senders(total)).await?.print(seconds);
    Ok(())
}

/// Posts one webhook per sender at `rate` a second on a fixed schedule (no
/// waiting for answers) and waits up to a minute after the last post for
/// the pushes.
async fn run_rate(target: &Target, rate: u32, senders: Vec<String>) -> anyhow::Result<RateRun> {
    let (arrivals, _) = watch(target).await?;
    let total = senders.len();
    let target = Arc::new(target.clone());
    let mut posts = Vec::with_capacity(total);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for sender in senders {
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
    let mut accepted = Vec::with_capacity(total);
    let mut refused = 0usize;
    for (sender, started, handle) in posts {
        match handle.await? {
            Ok(took) => {
                answers.push(took);
                accepted.push((sender, started));
            }
            Err(_) => refused += 1,
        }
    }
    let deadline = last_post + Duration::from_secs(60);
    loop {
        let got = arrivals.lock().await.len();
        if got >= accepted.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = first_arrivals(&arrivals).await;
    let sent = accepted
        .into_iter()
        .map(|(s, started)| {
            let push = seen.get(&s).map(|at| at.duration_since(started));
            (s, push)
        })
        .collect();
    Ok(RateRun {
        rate,
        sent,
        answers,
        refused,
    })
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

mod suite {
    //! `suite`: the whole bench on a stack of the bench's own.

    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    use domain::channel::Stakeholder;
    use domain::chat::ChatStore;
    use domain::customer::SenderId;
    use local_gateway::{DevAdmin, own_stack};

    const EMAIL: &str = "bench@smartchat.local";
    const PASSWORD: &str = "bench-password-1";
    const RATES: [u32; 4] = [5, 20, 50, 100];
    const BURST: usize = 50;
    const BASELINE_PAIRS: usize = 200;

    struct OwnStack {
        own: own_stack::OwnStack,
        target: Target,
    }

    /// `make dev`'s shape on free loopback ports, the bench's admin
    /// logged in.
    async fn own_stack() -> anyhow::Result<OwnStack> {
        let stack = own_stack::OwnStack::start(
            "bench",
            DevAdmin {
                email: domain::executive::Email::parse(EMAIL).map_err(anyhow::Error::msg)?,
                password: domain::secret::Secret::new(PASSWORD.into()),
            },
        )
        .await?;
        let target = Target::login_at(
            format!("http://{}", stack.running.http_addr),
            format!("ws://{}", stack.running.ws_addr),
            EMAIL,
            PASSWORD,
        )
        .await?;
        Ok(OwnStack { own: stack, target })
    }

    /// New sender numbers, never the same twice in one run.
    fn fresh(n: usize) -> Vec<String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let first = NEXT.fetch_add(n as u64, Ordering::Relaxed);
        (first..first + n as u64)
            .map(|i| format!("9170{i:08}"))
            .collect()
    }

    /// Posting a webhook against a bare SQS `SendMessage` of the same body
    /// to a FIFO queue on the same emulator, alternately, from this
    /// process: what the webhook adds to the one request it must make.
    async fn baseline(stack: &OwnStack) -> anyhow::Result<()> {
        use aws_sdk_sqs::types::QueueAttributeName;
        let sqs = &stack.own.running.gateway.sqs;
        let mut urls = Vec::new();
        for fifo in [true, false] {
            let mut create = sqs
                .create_queue()
                .queue_name(format!("bench-{}", uuid::Uuid::new_v4().simple()));
            if fifo {
                create = create
                    .queue_name(format!("bench-{}.fifo", uuid::Uuid::new_v4().simple()))
                    .attributes(QueueAttributeName::FifoQueue, "true");
            }
            urls.push(create.send().await?.queue_url.context("no queue url")?);
        }
        let (fifo, copy) = (&urls[0], &urls[1]);
        let send = |url: &str, body: &str, group: &str, id: String| {
            let mut m = sqs.send_message().queue_url(url).message_body(body);
            if url.ends_with(".fifo") {
                m = m.message_group_id(group).message_deduplication_id(id);
            }
            m.send()
        };
        let (mut hooks, mut bare, mut pair) = (Vec::new(), Vec::new(), Vec::new());
        for (i, sender) in fresh(BASELINE_PAIRS).into_iter().enumerate() {
            hooks.push(stack.target.post(&sender).await?);
            let body = json!({"channel": CHANNEL, "sender": sender, "text": "namaste"}).to_string();
            let started = Instant::now();
            send(fifo, &body, &sender, format!("bare-{i}")).await?;
            bare.push(started.elapsed());
            // What the webhook itself does: the inbound queue and the
            // Communication Master copy, side by side.
            let started = Instant::now();
            let (a, b) = tokio::join!(
                send(fifo, &body, &sender, format!("pair-{i}")),
                send(copy, &body, &sender, String::new())
            );
            a?;
            b?;
            pair.push(started.elapsed());
        }
        for v in [&mut hooks, &mut bare, &mut pair] {
            v.sort();
        }
        let p50 = |v: &[Duration]| percentile(v, 0.5);
        let ratio = |a: &[Duration], b: &[Duration]| {
            p50(a).as_secs_f64() / p50(b).as_secs_f64().max(f64::EPSILON)
        };
        println!(
            "webhook vs SQS from this process, {BASELINE_PAIRS} rounds: webhook p50 {} p99 {}; \
             one SendMessage p50 {} p99 {}; two SendMessage side by side (the webhook's two queues) \
             p50 {} p99 {}; webhook / one SendMessage {:.2}x, webhook / two side by side {:.2}x",
            ms(p50(&hooks)),
            ms(percentile(&hooks, 0.99)),
            ms(p50(&bare)),
            ms(percentile(&bare, 0.99)),
            ms(p50(&pair)),
            ms(percentile(&pair, 0.99)),
            ratio(&hooks, &bare),
            ratio(&hooks, &pair),
        );
        Ok(())
    }

    /// CPU seconds used so far by DynamoDB Local, the moto servers and
    /// this process (the gateway, its functions and the bench's clients),
    /// from `/proc` (Linux): which part of the local stack a rate is
    /// bounded by.
    fn cpu() -> [f64; 3] {
        let mut used = [0.0; 3];
        let me = std::process::id().to_string();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return used;
        };
        // Clock ticks per second: 100 on Linux.
        let tick = 100.0;
        for p in procs.flatten() {
            let name = p.file_name().to_string_lossy().into_owned();
            let (Ok(cmd), Ok(stat)) = (
                std::fs::read(p.path().join("cmdline")),
                std::fs::read_to_string(p.path().join("stat")),
            ) else {
                continue;
            };
            let cmd = String::from_utf8_lossy(&cmd);
            let which = if name == me {
                2
            } else if cmd.contains("DynamoDBLocal") {
                0
            } else if cmd.contains("moto") {
                1
            } else {
                continue;
            };
            // utime and stime: fields 14 and 15, after the `(comm)` field.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 = [11, 12]
                .iter()
                .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok()))
                .sum();
            used[which] += ticks / tick;
        }
        used
    }

    /// Every sender's chat holds exactly the one message it sent (read
    /// from the store): `(missing, doubled)`.
    async fn stored_once(stack: &OwnStack, senders: &[String]) -> anyhow::Result<(usize, usize)> {
        let store = stack.own.running.gateway.functions.ws_events.store.clone();
        let counts: Vec<anyhow::Result<u64>> = futures_util::stream::iter(senders)
            .map(|s| {
                let store = store.clone();
                async move {
                    let who = SenderId::parse(s).map_err(anyhow::Error::msg)?;
                    Ok(store
                        .current_chat(Stakeholder::Partner, &who)
                        .await?
                        .map_or(0, |c| c.inbound_count))
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let (mut missing, mut doubled) = (0, 0);
        for c in counts {
            match c? {
                0 => missing += 1,
                1 => {}
                _ => doubled += 1,
            }
        }
        Ok((missing, doubled))
    }

    /// `BURST` messages from one sender posted one after another as fast
    /// as the webhook answers: all stored, in the order sent.
    async fn burst(stack: &OwnStack) -> anyhow::Result<()> {
        let sender = fresh(1).remove(0);
        let (arrivals, _) = watch(&stack.target).await?;
        let started = Instant::now();
        let mut answers = Vec::new();
        for i in 0..BURST {
            answers.push(
                stack
                    .target
                    .post_text(
                        &sender,
                        &format!("wamid.burst-{sender}-{i}"),
                        &format!("burst {i}"),
                    )
                    .await?,
            );
        }
        let posted = started.elapsed();
        let deadline = Instant::now() + Duration::from_secs(60);
        let all_pushed = loop {
            let n = arrivals.lock().await.get(&sender).map_or(0, Vec::len);
            if n >= BURST {
                break Some(started.elapsed());
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let store = stack.own.running.gateway.functions.ws_events.store.clone();
        let who = SenderId::parse(&sender).map_err(anyhow::Error::msg)?;
        let chat = store
            .current_chat(Stakeholder::Partner, &who)
            .await?
            .context("the burst's chat was not stored")?;
        let (page, _) = store.messages(&chat.chat_id, None, 0, BURST + 10).await?;
        let mut texts: Vec<String> = page.into_iter().map(|m| m.preview).collect();
        texts.reverse();
        let want: Vec<String> = (0..BURST).map(|i| format!("burst {i}")).collect();
        answers.sort();
        println!(
            "burst of {BURST} from one sender: posted in {} (answer p50 {} p99 {}); {}; stored {} of {BURST}, {}",
            ms(posted),
            ms(percentile(&answers, 0.5)),
            ms(percentile(&answers, 0.99)),
            all_pushed.map_or("not all pushed within a minute".to_owned(), |d| format!(
                "all pushed {} after the first post",
                ms(d)
            )),
            texts.len(),
            if texts == want {
                "in the order sent"
            } else {
                "OUT OF ORDER"
            },
        );
        Ok(())
    }

    pub async fn run(seconds: u32) -> anyhow::Result<()> {
        println!("starting a stack of the bench's own (DynamoDB Local, moto ×2, gateway)…");
        let stack = own_stack().await?;
        baseline(&stack).await?;
        // `BENCH_RATES=20` (comma-separated) runs only those rates.
        let rates: Vec<u32> = match std::env::var("BENCH_RATES") {
            Ok(v) if !v.trim().is_empty() => v
                .split(',')
                .map(|r| r.trim().parse::<u32>().map(|r| r.max(1)))
                .collect::<Result<_, _>>()
                .with_context(|| format!("BENCH_RATES must be whole numbers, got `{v}`"))?,
            _ => RATES.to_vec(),
        };
        let mut sustained = None;
        for rate in rates.iter().copied() {
            let senders = fresh((rate * seconds) as usize);
            let (cpu_before, started) = (cpu(), Instant::now());
            let run = run_rate(&stack.target, rate, senders.clone()).await?;
            let (cpu_after, wall) = (cpu(), started.elapsed().as_secs_f64());
            run.print(seconds);
            let share = |i: usize| 100.0 * (cpu_after[i] - cpu_before[i]) / wall;
            println!(
                "  CPU over the run ({:.0} s, 100% = one core): DynamoDB Local {:.0}%, moto {:.0}%, gateway and bench {:.0}%",
                wall,
                share(0),
                share(1),
                share(2)
            );
            let (missing, doubled) = stored_once(&stack, &senders).await?;
            println!("  store: {missing} missing, {doubled} stored twice");
            if !run.lag_grew() && missing == 0 && doubled == 0 {
                sustained = Some(rate);
            }
        }
        burst(&stack).await?;
        match sustained {
            Some(r) => {
                println!("highest rate sustained without its lag growing: {r}/s (of {rates:?})")
            }
            None => println!("no rate of {rates:?} was sustained without its lag growing"),
        }
        stack.own.running.shutdown().await;
        Ok(())
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
    if args.first().map(String::as_str) == Some("suite") {
        return suite::run(num(1, 20)?.max(3)).await;
    }
    let target = Target::login().await?;
    match args.first().map(String::as_str) {
        Some("one-at-a-time") => one_at_a_time(&target, num(1, 100)? as usize).await,
        Some("rate") => at_rate(&target, num(1, 20)?.max(1), num(2, 60)?.max(1)).await,
        Some("listed") => listed(&target, num(1, 300)?.max(1) as usize).await,
        _ => bail!(
            "usage: latency suite [SECONDS] | one-at-a-time [N] | rate [R] [SECONDS] | listed [N]"
        ),
    }
}
