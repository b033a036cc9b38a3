//! The soak: the product under what production brings together —
//! redelivered webhooks, failing dependencies, consumers that crash
//! mid-batch, many dashboards coming and going, agents answering — then
//! checked by reading the store, not the logs.
//!
//! One run ([`run`]) on a running stack:
//! 1. agents and the admin log in (before any fault);
//! 2. the fault switch is set (`Plan::faults`, 5 % of every dependency's
//!    requests by default);
//! 3. dashboards connect (some drop and reconnect on a timer, any whose
//!    socket closes reconnects with backoff), answering agents put
//!    themselves online;
//! 4. each sender's messages are posted in order, every webhook body
//!    `copies` times at once, posted again (as the provider does) until
//!    one copy is answered 200; many senders at a time;
//! 5. the consumers are killed mid-batch and restarted `restarts` times;
//! 6. agents open and answer `answers` chats; WhatsApp's status callbacks
//!    for every send the provider took are posted (three copies, too);
//! 7. a few poison messages go straight onto the inbound queue;
//! 8. faults off, the queues drain, the minute and five-minute jobs run,
//!    the dashboards close, the sweep runs; then every check in
//!    [`Report::violations`].
//!
//! Bounded by count and by `Plan::time_limit`; loopback only.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, watch};
use tokio_tungstenite::tungstenite::Message as Frame;

use domain::channel::Stakeholder;
use domain::chat::{ChatId, ChatStore, DeliveryStatus, Direction, SenderType};
use domain::customer::SenderId;
use domain::executive::{Email, Executive, ExecutiveId, ExecutiveStore, Role, hash_password};
use domain::sending::outbox::OutboxStore;

use crate::Running;
use crate::recorder::Recorded;

/// The Partner number the soak's customers write to.
const CHANNEL: &str = "9099039188";
const TEAM: Stakeholder = Stakeholder::Partner;

/// 5 % of every dependency's requests fail, but a 410 (which closes the
/// dashboard's socket, as a dropped network does) only one push in a
/// thousand: at 2.5 % every dashboard was closed every few seconds.
pub const FAULTS: &str = "all=0.05,connections.410=0.001";

/// What one run does.
#[derive(Clone, Debug)]
pub struct Plan {
    pub senders: usize,
    pub per_sender: usize,
    /// Each webhook body is posted this many times at once.
    pub copies: usize,
    /// The fault switch while it runs (`all=0.05`).
    pub faults: String,
    /// Consumers killed mid-batch and restarted.
    pub restarts: usize,
    /// Dashboard sockets in all (the answering agents' included).
    pub dashboards: usize,
    /// Of those, how many drop on a timer and reconnect.
    pub reconnecting: usize,
    pub agents: usize,
    /// Chats the agents open and answer.
    pub answers: usize,
    /// Unreadable messages put straight onto the inbound queue.
    pub poison: usize,
    /// Senders posting at the same time.
    pub in_flight: usize,
    /// New messages a second, at most (each posted `copies` times): a
    /// steady load the stack should keep up with, so the lag measured is
    /// the faults' doing rather than a backlog's.
    pub rate: f64,
    /// The whole run stops by then, finished or not.
    pub time_limit: Duration,
}

impl Plan {
    /// `make soak`: 10,000 messages from 1,000 senders, each posted three
    /// times; 50 dashboards; 1,000 answers.
    pub fn full() -> Self {
        Self {
            senders: 1000,
            per_sender: 10,
            copies: 3,
            faults: FAULTS.into(),
            restarts: 2,
            dashboards: 50,
            reconnecting: 5,
            agents: 10,
            answers: 1000,
            poison: 3,
            in_flight: 40,
            // What two cores sustain with every part of this plan at once
            // (docs/reliability.md).
            rate: 10.0,
            time_limit: Duration::from_secs(60 * 60),
        }
    }

    /// The same run at a size `make test` can afford (about two minutes).
    pub fn short() -> Self {
        Self {
            senders: 60,
            per_sender: 5,
            copies: 3,
            faults: FAULTS.into(),
            restarts: 2,
            dashboards: 10,
            reconnecting: 2,
            agents: 3,
            answers: 60,
            poison: 2,
            in_flight: 20,
            rate: 20.0,
            time_limit: Duration::from_secs(6 * 60),
        }
    }
}

/// How long an ambiguous send waits for its callback in a soak (the
/// product's wait is three minutes).
const CONFIRM_WAIT: Duration = Duration::from_secs(30);

/// How long a waiting send takes to fall due for the minute job (its
/// `STUCK_AFTER`, or the soak's confirm wait, whichever is longer), and a
/// little more.
fn stuck_wait() -> Duration {
    let stuck = domain::sending::STUCK_AFTER.to_std().unwrap_or_default();
    stuck.max(CONFIRM_WAIT) + Duration::from_secs(5)
}

/// The stack's settings a soak needs: a visibility timeout short enough
/// that what a killed consumer held comes back within the run (yet longer
/// than a send held by the provider), and an ambiguous send's wait for its
/// callback long enough for WhatsApp's callback to arrive under load.
pub fn configure(cfg: &mut crate::Config) {
    cfg.visibility_timeout = Some(20);
    cfg.outbound_confirm_wait = CONFIRM_WAIT;
    cfg.inbound_pollers = 4;
    // A batch waits for its slowest forward (a held one: 11 s), so more
    // batches at once, as Lambda would run.
    cfg.standard_pollers = 8;
}

/// Counts kept while the soak runs.
#[derive(Default)]
struct Tally {
    posts: AtomicU64,
    posts_refused: AtomicU64,
    reposts: AtomicU64,
    acked: AtomicU64,
    connects: AtomicU64,
    reconnects: AtomicU64,
    frames: AtomicU64,
    send_errors: AtomicU64,
    /// The error frames agents got, by event and code.
    refusals: std::sync::Mutex<BTreeMap<String, u64>>,
    callbacks: AtomicU64,
    kills: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// What a run measured and found.
#[derive(Debug, Default)]
pub struct Report {
    pub plan: String,
    pub seconds_posting: f64,
    pub seconds_total: f64,
    pub messages: usize,
    pub posts: u64,
    pub posts_refused: u64,
    pub reposts: u64,
    pub inbound_backlog_max: u64,
    /// From the last post until the inbound queue held nothing but poison.
    pub caught_up_seconds: f64,
    /// From the last post until every queue was empty (the poison's five
    /// receives, a visibility timeout apart, included).
    pub drain_seconds: f64,
    pub faults_injected: BTreeMap<String, u64>,
    pub requests_seen: BTreeMap<String, u64>,
    pub consumer_kills: u64,
    /// Queue messages handed out again, by the function they feed.
    pub redeliveries: BTreeMap<String, u64>,
    pub dashboard_connects: u64,
    pub dashboard_reconnects: u64,
    pub frames_received: u64,
    pub answers: usize,
    pub send_errors: u64,
    pub refusals: BTreeMap<String, u64>,
    pub callbacks_posted: u64,
    pub replies_by_status: BTreeMap<String, usize>,
    pub double_sends: usize,
    pub double_sends_after_ambiguity: usize,
    pub dead_letters: BTreeMap<String, usize>,
    pub connections_closed_by_sweep: u64,
    pub connection_records_left: usize,
    pub violations: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per_s = self.messages as f64 / self.seconds_posting.max(0.001);
        let through =
            self.messages as f64 / (self.seconds_posting + self.caught_up_seconds).max(0.001);
        writeln!(f, "soak: {}", self.plan)?;
        writeln!(
            f,
            "- {} messages stored from {} webhook posts ({} answered other than 200, {} posted again); posted in {:.0} s ({per_s:.1} messages/s), stored at {through:.1} messages/s; whole run {:.0} s",
            self.messages,
            self.posts,
            self.posts_refused,
            self.reposts,
            self.seconds_posting,
            self.seconds_total
        )?;
        writeln!(
            f,
            "- lag: inbound queue backlog at most {} messages; caught up {:.1} s after the last post, every queue empty after {:.1} s",
            self.inbound_backlog_max, self.caught_up_seconds, self.drain_seconds
        )?;
        writeln!(
            f,
            "- faults injected {:?} of requests {:?}",
            self.faults_injected, self.requests_seen
        )?;
        writeln!(
            f,
            "- retries: queue messages handed out again {:?}",
            self.redeliveries
        )?;
        writeln!(
            f,
            "- consumers killed and restarted {} times; dashboards connected {} times ({} reconnections), {} frames received",
            self.consumer_kills,
            self.dashboard_connects,
            self.dashboard_reconnects,
            self.frames_received
        )?;
        writeln!(
            f,
            "- {} answers ({} refusals retried: {:?}), {} status callbacks posted; replies by status {:?}; sent twice: {} ({} after an ambiguous attempt)",
            self.answers,
            self.send_errors,
            self.refusals,
            self.callbacks_posted,
            self.replies_by_status,
            self.double_sends,
            self.double_sends_after_ambiguity
        )?;
        writeln!(
            f,
            "- dead letters {:?}; connection records removed by the sweep {}, left {}",
            self.dead_letters, self.connections_closed_by_sweep, self.connection_records_left
        )?;
        if self.violations.is_empty() {
            writeln!(f, "- every check passed")
        } else {
            writeln!(f, "- {} checks FAILED:", self.violations.len())?;
            for v in &self.violations {
                writeln!(f, "  - {v}")?;
            }
            Ok(())
        }
    }
}

/// A dashboard socket with request/answer matching.
struct Socket {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
}

impl Socket {
    /// Connects, retrying with backoff for up to a minute (the handshake
    /// reads the store, which may be failing).
    async fn open(url: &str, tally: &Tally) -> anyhow::Result<Self> {
        let mut wait = Duration::from_millis(100);
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            match tokio_tungstenite::connect_async(url).await {
                Ok((ws, _)) => {
                    bump(&tally.connects);
                    return Ok(Self { ws, next: 0 });
                }
                Err(e) if Instant::now() > until => {
                    return Err(e).context("dashboard could not connect for a minute");
                }
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Sends `event` and waits for its answer (other frames pass by).
    /// Err: the socket closed or nothing came in 30 s.
    async fn request(&mut self, event: &str, data: Value, tally: &Tally) -> anyhow::Result<Value> {
        self.next += 1;
        let id = format!("soak-{}", self.next);
        let frame = json!({"event": event, "data": data, "request_id": id});
        self.ws.send(Frame::Text(frame.to_string().into())).await?;
        let until = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let msg = tokio::time::timeout_at(until, self.ws.next())
                .await
                .context("no answer in 30 s")?
                .context("socket closed")??;
            if let Frame::Text(t) = msg {
                bump(&tally.frames);
                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                if v["request_id"] == id.as_str() {
                    return Ok(v);
                }
            }
        }
    }

    async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

struct Ctx<'a> {
    running: &'a Running,
    plan: Plan,
    http: reqwest::Client,
    base: String,
    ws: String,
    store: adapters::DynamoStore,
    tally: Tally,
    stop: watch::Sender<bool>,
    /// One tick per new message: `Plan::rate`.
    pace: Mutex<tokio::time::Interval>,
}

/// One answer an agent gave: the chat and the stored message's id.
struct Answered {
    chat_id: ChatId,
    message_id: String,
}

fn sender_number(i: usize) -> String {
    format!("9160{i:08}")
}

fn text(i: usize) -> String {
    format!("soak {i}")
}

impl Ctx<'_> {
    async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let res: Value = self
            .http
            .post(format!("{}/api/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?
            .json()
            .await?;
        res["token"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("login of {email} refused: {res}"))
    }

    /// Posts message `i` of `sender` (`copies` at once) until one copy is
    /// answered 200, as the provider retries; false if time ran out.
    async fn post(&self, sender: &str, i: usize, deadline: Instant) -> bool {
        self.pace.lock().await.tick().await;
        let id = format!("wamid.soak-{sender}-{i}");
        let body = crate::sample::text_webhook(
            &[crate::sample::Text {
                from: sender,
                name: "Soak",
                id: &id,
                body: &text(i),
            }],
            1_764_000_000 + i as i64,
        )
        .to_string();
        let url = format!("{}/api/chats/whatsapp_chat/{CHANNEL}", self.base);
        let mut wait = Duration::from_millis(200);
        loop {
            let copies = (0..self.plan.copies).map(|_| {
                self.http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
            });
            let answers = futures_util::future::join_all(copies).await;
            let mut taken = false;
            for a in answers {
                bump(&self.tally.posts);
                match a {
                    Ok(r) if r.status().as_u16() == 200 => taken = true,
                    _ => bump(&self.tally.posts_refused),
                }
            }
            if taken {
                bump(&self.tally.acked);
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            bump(&self.tally.reposts);
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    /// A watching dashboard until the stop: reconnects whenever its socket
    /// closes; `drop_every` drops it on purpose.
    async fn watch(&self, url: String, drop_every: Option<Duration>) -> anyhow::Result<()> {
        let mut stop = self.stop.subscribe();
        let mut first = true;
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            if !first {
                bump(&self.tally.reconnects);
            }
            first = false;
            let mut socket = Socket::open(&url, &self.tally).await?;
            let dropped = async {
                match drop_every {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(dropped);
            loop {
                tokio::select! {
                    _ = stop.changed() => {
                        socket.close().await;
                        return Ok(());
                    }
                    // Dropped without a close frame: a lost network.
                    _ = &mut dropped => break,
                    msg = socket.ws.next() => match msg {
                        Some(Ok(Frame::Text(_))) => bump(&self.tally.frames),
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    },
                }
            }
        }
    }

    /// An answering agent: takes senders off the shared queue, opens their
    /// chat (which marks it seen) and answers it.
    async fn answer(
        &self,
        url: String,
        jobs: Arc<Mutex<mpsc::Receiver<String>>>,
    ) -> anyhow::Result<Vec<Answered>> {
        let mut done = Vec::new();
        let mut socket = self.online(&url).await?;
        loop {
            let next = jobs.lock().await.recv().await;
            let Some(sender) = next else {
                socket.close().await;
                return Ok(done);
            };
            let who = SenderId::parse(&sender).map_err(anyhow::Error::msg)?;
            // The first message is queued; wait until it is stored, as the
            // dashboard shows a chat once its first message is pushed (the
            // header alone, between the chat's creation and that message,
            // has nothing to answer: a reply then is `window_closed`).
            let until = Instant::now() + Duration::from_secs(600);
            let chat = loop {
                if let Ok(Some(chat)) = self.store.current_chat(TEAM, &who).await
                    && chat.last_incoming_message.is_some()
                {
                    break Some(chat);
                }
                if Instant::now() > until {
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            };
            let Some(chat) = chat else { continue };
            let steps = [
                (
                    "fetch_chats_by_user",
                    json!({"chat_id": chat.chat_id, "page": 1, "page_size": 20}),
                ),
                (
                    "send_message",
                    json!({"chat_id": chat.chat_id, "message": format!("soak reply to {sender}"),
                           "client_id": format!("soak-{sender}")}),
                ),
            ];
            for (event, data) in steps {
                // As an agent would: again, a little later, until it goes.
                for attempt in 0..12u32 {
                    match socket.request(event, data.clone(), &self.tally).await {
                        Ok(v) if v["event"] == "error" => {
                            bump(&self.tally.send_errors);
                            let code = v["data"]["code"].as_str().unwrap_or("unknown");
                            if let Ok(mut r) = self.tally.refusals.lock() {
                                *r.entry(format!("{event}: {code}")).or_default() += 1;
                            }
                            tokio::time::sleep(Duration::from_millis(300 << attempt.min(3))).await;
                        }
                        Ok(v) => {
                            if event == "send_message"
                                && let Some(id) = v["data"]["message"]["message_id"].as_str()
                            {
                                done.push(Answered {
                                    chat_id: chat.chat_id.clone(),
                                    message_id: id.to_owned(),
                                });
                            }
                            break;
                        }
                        // The socket went (a 410 closes it): as the
                        // dashboard does, reconnect and try again.
                        Err(_) => {
                            bump(&self.tally.reconnects);
                            socket = self.online(&url).await?;
                        }
                    }
                }
            }
        }
    }

    /// Connects and puts the agent online.
    async fn online(&self, url: &str) -> anyhow::Result<Socket> {
        for _ in 0..10 {
            let mut socket = Socket::open(url, &self.tally).await?;
            match socket
                .request("set_status", json!({"status": "online"}), &self.tally)
                .await
            {
                Ok(v) if v["data"]["status"] == "online" => return Ok(socket),
                _ => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
        anyhow::bail!("an agent could not go online ten times in a row")
    }

    /// WhatsApp's callbacks: `sent` and `delivered` for every send the
    /// provider took (also those whose answer was lost), three copies each.
    async fn callbacks(&self) {
        let mut stop = self.stop.subscribe();
        let mut seen = 0;
        let url = format!("{}/api/chats/whatsapp_chat/{CHANNEL}", self.base);
        loop {
            let requests = self.running.recorder.requests();
            let fresh: Vec<&Recorded> = requests.iter().skip(seen).collect();
            seen = requests.len();
            let bodies: Vec<String> = fresh
                .iter()
                .filter(|r| r.path.ends_with("/messages"))
                .filter_map(|r| {
                    let data = r.body.get("biz_opaque_callback_data")?.as_str()?;
                    let statuses: Vec<Value> = ["sent", "delivered"]
                        .iter()
                        .map(|s| {
                            json!({"id": r.wa_id.as_ref()?, "status": s,
                                   "timestamp": chrono::Utc::now().timestamp().to_string(),
                                   "recipient_id": r.body.get("to")?,
                                   "biz_opaque_callback_data": data})
                            .into()
                        })
                        .collect::<Option<Vec<Value>>>()?;
                    Some(
                        json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
                            "changes": [{"field": "messages", "value": {"statuses": statuses}}]}]})
                        .to_string(),
                    )
                })
                .collect();
            let posts = bodies.iter().flat_map(|b| {
                (0..self.plan.copies).map(|_| {
                    self.http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(b.clone())
                        .send()
                })
            });
            for r in futures_util::future::join_all(posts).await {
                if r.is_ok_and(|r| r.status().is_success()) {
                    bump(&self.tally.callbacks);
                }
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Until the queues (dead-letter queues aside) read empty three times
    /// in a row, or `until`.
    async fn drained(&self, until: Instant) -> anyhow::Result<bool> {
        let mut empty = 0;
        while Instant::now() < until {
            if self.running.pending(|id| !id.ends_with("DLQ")).await? == 0 {
                empty += 1;
                if empty >= 3 {
                    return Ok(true);
                }
            } else {
                empty = 0;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(false)
    }
}

/// Runs `plan` against `running`, logging in as the admin (`email`,
/// `password`) to set up its agents.
pub async fn run(
    running: &Running,
    email: &str,
    password: &str,
    plan: Plan,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let deadline = started + plan.time_limit;
    let (stop, _) = watch::channel(false);
    let ctx = Ctx {
        running,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(30))
            .build()?,
        base: format!("http://{}", running.http_addr),
        ws: format!("ws://{}", running.ws_addr),
        store: running.gateway.functions.ws_events.store.clone(),
        tally: Tally::default(),
        stop,
        pace: Mutex::new({
            let mut every =
                tokio::time::interval(Duration::from_secs_f64(1.0 / plan.rate.max(0.1)));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every
        }),
        plan: plan.clone(),
    };
    let mut report = Report {
        plan: format!("{plan:?}"),
        ..Report::default()
    };

    // Setup, before any fault: agents, tokens.
    let admin_token = ctx.login(email, password).await?;
    let mut agents = Vec::new();
    for a in 0..plan.agents.max(1) {
        let id = format!("soak-agent-{a}");
        let email = format!("{id}@soak.local");
        let password = format!("{id}-password");
        ctx.store
            .put_executive(&Executive {
                executive_id: ExecutiveId::parse(&id).map_err(anyhow::Error::msg)?,
                name: id.clone(),
                email: Email::parse(&email).map_err(anyhow::Error::msg)?,
                password_hash: hash_password(&password)?,
                role: Role::Agent,
                stakeholders: vec![TEAM],
                disabled: false,
                capacity: domain::executive::DEFAULT_CAPACITY,
                token_generation: 0,
            })
            .await?;
        agents.push((id, ctx.login(&email, &password).await?));
    }
    let url = |token: &str| format!("{}/?token={token}", ctx.ws);

    running
        .faults
        .set(crate::faults::parse(&plan.faults).map_err(|e| anyhow::anyhow!("faults: {e}"))?);

    // Answering agents, one socket each; the other dashboards watch.
    let (jobs_tx, jobs_rx) = mpsc::channel::<String>(plan.answers.max(1));
    let jobs = Arc::new(Mutex::new(jobs_rx));
    let answering = futures_util::future::join_all(
        agents
            .iter()
            .map(|(_, token)| ctx.answer(url(token), jobs.clone())),
    );
    let watchers = plan.dashboards.saturating_sub(agents.len());
    let watching = futures_util::future::join_all((0..watchers).map(|w| {
        // Spread over the admin and the agents: an executive may hold ten
        // dashboards at most.
        let token = match w % (agents.len() + 1) {
            0 => &admin_token,
            a => &agents[a - 1].1,
        };
        let drop_every = (w < plan.reconnecting).then(|| Duration::from_secs(7 + 3 * w as u64));
        ctx.watch(url(token), drop_every)
    }));

    // Posting, with the consumers killed on the way, then the checks.
    let total = plan.senders * plan.per_sender;
    let posting_deadline = started + plan.time_limit.mul_f64(0.7);
    // Owns the answer queue's sender: the agents stop when it is done.
    let posting = {
        let (ctx, plan) = (&ctx, &plan);
        async move {
            let to_answer = AtomicUsize::new(0);
            let posted_all: Vec<bool> = futures_util::stream::iter(0..plan.senders)
                .map(|s| {
                    let (jobs_tx, to_answer) = (&jobs_tx, &to_answer);
                    async move {
                        let sender = sender_number(s);
                        let mut all = true;
                        for i in 0..plan.per_sender {
                            if !ctx.post(&sender, i, posting_deadline).await {
                                all = false;
                                break;
                            }
                            if i == 0 && to_answer.fetch_add(1, Ordering::Relaxed) < plan.answers {
                                let _ = jobs_tx.send(sender.clone()).await;
                            }
                        }
                        all
                    }
                })
                .buffer_unordered(plan.in_flight.max(1))
                .collect()
                .await;
            drop(jobs_tx);
            posted_all
        }
    };
    let poison = async {
        let url = running.resources.queue_url("InboundQueue")?;
        let mut bodies = Vec::new();
        for p in 0..plan.poison {
            let body = format!("not an inbound event: soak poison {p}");
            running
                .gateway
                .sqs
                .send_message()
                .queue_url(&url)
                .message_body(&body)
                .message_group_id(format!("poison-{p}"))
                .message_deduplication_id(format!("poison-{p}"))
                .send()
                .await
                .context("queuing a poison message")?;
            bodies.push(body);
        }
        anyhow::Ok(bodies)
    };
    let backlog = AtomicU64::new(0);
    let kills = async {
        // Killed at even steps of the posting, restarted 3 s later; the
        // inbound backlog sampled on the way.
        let mut next = 1;
        loop {
            let acked = get(&ctx.tally.acked) as usize;
            if next <= plan.restarts && acked * (plan.restarts + 1) >= total * next {
                running.consumers.kill();
                bump(&ctx.tally.kills);
                tokio::time::sleep(Duration::from_secs(3)).await;
                running.consumers.start();
                next += 1;
            }
            if let Ok(n) = ctx.running.pending(|id| id == "InboundQueue").await {
                backlog.fetch_max(n, Ordering::Relaxed);
            }
            if acked >= total || Instant::now() > posting_deadline {
                return;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    };
    let work = async {
        let result = async {
            let poison_bodies = poison.await?;
            // Posting (with the kills) and, side by side, the agents
            // answering; once the posting is done, how long until the
            // inbound queue holds nothing but poison.
            let posting_then_catching_up = async {
                let (posted, ()) = tokio::join!(posting, kills);
                let seconds_posting = started.elapsed().as_secs_f64();
                let last_post = Instant::now();
                let until = deadline.min(Instant::now() + Duration::from_secs(600));
                while Instant::now() < until {
                    let waiting = ctx
                        .running
                        .pending(|id| id == "InboundQueue")
                        .await
                        .unwrap_or(u64::MAX);
                    let dead = ctx
                        .running
                        .pending(|id| id == "InboundDLQ")
                        .await
                        .unwrap_or(0);
                    let poison_left = (poison_bodies.len() as u64).saturating_sub(dead);
                    if waiting <= poison_left {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                let caught_up = last_post.elapsed().as_secs_f64();
                (posted, seconds_posting, last_post, caught_up)
            };
            let ((posted, seconds_posting, last_post, caught_up), answered) =
                tokio::join!(posting_then_catching_up, answering);
            report.seconds_posting = seconds_posting;
            report.caught_up_seconds = caught_up;
            let answered: Vec<Answered> = answered
                .into_iter()
                .collect::<anyhow::Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect();
            ctx.running.faults.off();
            // Drain; then, while a send is still waiting (its queue entry
            // lost, or its outcome unknown), let it fall due and run the
            // minute job, which queues it again, and drain again.
            let drain_until = deadline.min(Instant::now() + Duration::from_secs(600));
            let mut drained = ctx.drained(drain_until).await?;
            report.drain_seconds = last_post.elapsed().as_secs_f64();
            ctx.running.run_schedule("sla-scan").await?;
            drained &= ctx.drained(drain_until).await?;
            for _ in 0..3 {
                let waiting = ctx.store.unsent_sends(chrono::Utc::now(), 1).await?;
                if waiting.is_empty() || Instant::now() + stuck_wait() > deadline {
                    break;
                }
                tracing::info!("a send is still waiting: running the minute job once it is due");
                tokio::time::sleep(stuck_wait()).await;
                ctx.running.run_schedule("sla-scan").await?;
                drained &= ctx.drained(deadline).await?;
            }
            anyhow::Ok((posted, answered, poison_bodies, drained))
        }
        .await;
        // Late callbacks are in; the dashboards and callbacks stop.
        let _ = ctx.stop.send(true);
        result
    };
    let (result, watched, ()) = tokio::join!(work, watching, ctx.callbacks());
    let (posted, answered, poison_bodies, drained) = result?;
    for w in watched {
        if let Err(e) = w {
            report
                .violations
                .push(format!("a dashboard gave up: {e:#}"));
        }
    }
    if !drained {
        report
            .violations
            .push("the queues did not drain in time".to_owned());
    }
    let unposted = posted.iter().filter(|p| !**p).count();
    if unposted > 0 {
        report.violations.push(format!(
            "{unposted} senders could not have all their messages taken before the time limit"
        ));
    }

    // Every socket is closed and its `$disconnect` done (the last one of
    // each agent hands their chats on: with every agent leaving at once,
    // chats pass from one to the next until the waiting line takes them);
    // then the sweep runs (twice: the counters' repair acts on what two
    // runs in a row see).
    let closing = Instant::now() + Duration::from_secs(120);
    while !running.gateway.connections.all_closed() && Instant::now() < closing {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..2 {
        let sweep = ctx.running.run_schedule("counter-sync").await?;
        report.connections_closed_by_sweep += sweep["connections_closed"].as_u64().unwrap_or(0);
        if sweep["drifting"].as_array().is_some_and(|d| !d.is_empty()) {
            report
                .violations
                .push(format!("counters drifted: {}", sweep["drifting"]));
        }
    }

    check(&ctx, &plan, &answered, &poison_bodies, &mut report).await?;
    report.seconds_total = started.elapsed().as_secs_f64();
    report.inbound_backlog_max = backlog.load(Ordering::Relaxed);
    report.faults_injected = running
        .faults
        .injected()
        .into_iter()
        .map(|(f, n)| (f.name().to_owned(), n))
        .collect();
    report.requests_seen = running.faults.report()["requests"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let t = &ctx.tally;
    report.posts = get(&t.posts);
    report.posts_refused = get(&t.posts_refused);
    report.reposts = get(&t.reposts);
    report.consumer_kills = get(&t.kills);
    report.redeliveries = running.gateway.redeliveries.counts();
    report.dashboard_connects = get(&t.connects);
    report.dashboard_reconnects = get(&t.reconnects);
    report.frames_received = get(&t.frames);
    report.send_errors = get(&t.send_errors);
    report.callbacks_posted = get(&t.callbacks);
    report.answers = answered.len();
    report.refusals = t.refusals.lock().map(|r| r.clone()).unwrap_or_default();
    Ok(report)
}

/// The checks, from the store (and the recorder, the provider's side).
async fn check(
    ctx: &Ctx<'_>,
    plan: &Plan,
    answered: &[Answered],
    poison: &[String],
    report: &mut Report,
) -> anyhow::Result<()> {
    let store = &ctx.store;
    let v = &mut report.violations;

    // Every message stored once, in each sender's order; unseen counts.
    let senders: Vec<String> = (0..plan.senders).map(sender_number).collect();
    let want: Vec<String> = (0..plan.per_sender).map(text).collect();
    let readers: Vec<ExecutiveId> = (0..plan.agents.max(1))
        .filter_map(|a| ExecutiveId::parse(&format!("soak-agent-{a}")).ok())
        .collect();
    let mut agent_messages = Vec::new();
    let chats: Vec<anyhow::Result<(String, Option<domain::chat::Chat>)>> =
        futures_util::stream::iter(senders)
            .map(|sender| async move {
                let who = SenderId::parse(&sender).map_err(anyhow::Error::msg)?;
                Ok((sender, store.current_chat(TEAM, &who).await?))
            })
            .buffer_unordered(16)
            .collect()
            .await;
    for c in chats {
        let (sender, chat) = c?;
        let Some(chat) = chat else {
            v.push(format!("{sender}: no chat stored"));
            continue;
        };
        let (mut messages, more) = store
            .messages(&chat.chat_id, None, 0, plan.per_sender * 4 + 40)
            .await?;
        if more {
            v.push(format!("{sender}: more messages than the soak wrote"));
        }
        messages.reverse();
        let inbound: Vec<&domain::chat::Message> = messages
            .iter()
            .filter(|m| m.direction == Direction::Inbound)
            .collect();
        report.messages += inbound.len();
        let texts: Vec<&str> = inbound.iter().map(|m| m.preview.as_str()).collect();
        if texts != want {
            v.push(format!("{sender}: stored {texts:?}, sent {want:?}"));
        }
        let seqs: Vec<u64> = inbound.iter().map(|m| m.inbound_seq).collect();
        let counted: Vec<u64> = (1..=inbound.len() as u64).collect();
        if seqs != counted || chat.inbound_count != inbound.len() as u64 {
            let order: Vec<String> = inbound
                .iter()
                .map(|m| format!("{}#{}@{}", m.preview, m.inbound_seq, m.message_id))
                .collect();
            v.push(format!(
                "{sender}: inbound_count {} and sequence {seqs:?} for {} messages: {order:?}",
                chat.inbound_count,
                inbound.len()
            ));
        }
        let pairs: Vec<(ChatId, ExecutiveId)> = readers
            .iter()
            .map(|r| (chat.chat_id.clone(), r.clone()))
            .collect();
        for ((_, reader), seen) in store.seen_counts(&pairs).await? {
            let after = seqs.iter().filter(|s| **s > seen).count() as u64;
            if chat.unseen_for(seen) != after {
                v.push(format!(
                    "{sender}: {reader} is shown {} unseen, {after} came after their marker",
                    chat.unseen_for(seen)
                ));
            }
        }
        agent_messages.extend(
            messages
                .into_iter()
                .filter(|m| m.sender_type == SenderType::Agent),
        );
    }

    // Dashboard counters equal a recount.
    let (counts, recount) = (store.counts().await?, store.recount().await?);
    if counts != recount {
        v.push(format!(
            "counters {counts:?} differ from a recount {recount:?}"
        ));
    }

    // Every reply reached the provider once, or says why not.
    let mut reached: HashMap<String, Vec<Recorded>> = HashMap::new();
    for r in ctx.running.recorder.requests() {
        let Some(data) = r
            .body
            .get("biz_opaque_callback_data")
            .and_then(Value::as_str)
        else {
            continue;
        };
        if let Some(ours) = domain::sending::message_of_callback(data) {
            reached.entry(ours.message_id).or_default().push(r.clone());
        }
    }
    // Every chat taken was answered, once: an agent's reply is stored in
    // it, and one only (an agent who sent again after a lost answer sent
    // under the same client id).
    let mut replies_in: HashMap<&ChatId, usize> = HashMap::new();
    for m in &agent_messages {
        *replies_in.entry(&m.chat_id).or_default() += 1;
    }
    let asked = plan.answers.min(plan.senders);
    if replies_in.len() < asked {
        v.push(format!(
            "{} of {asked} chats have an agent's reply",
            replies_in.len()
        ));
    }
    let twice = replies_in.values().filter(|n| **n > 1).count();
    if twice > 0 {
        v.push(format!(
            "{twice} chats hold an agent's reply more than once"
        ));
    }
    for a in answered {
        if !agent_messages.iter().any(|m| m.message_id == a.message_id) {
            v.push(format!(
                "answer {} in {} was acknowledged but is not stored",
                a.message_id, a.chat_id
            ));
        }
    }
    for m in &agent_messages {
        let attempts = reached.get(&m.message_id).cloned().unwrap_or_default();
        let taken: Vec<&Recorded> = attempts.iter().filter(|r| r.wa_id.is_some()).collect();
        let status = m.delivery.as_ref().map(|d| d.status);
        let reason = m
            .delivery
            .as_ref()
            .map(|d| d.errors.join("; "))
            .unwrap_or_default();
        *report
            .replies_by_status
            .entry(status.map_or("none".to_owned(), |s| format!("{s:?}").to_lowercase()))
            .or_default() += 1;
        match status {
            Some(
                DeliveryStatus::Accepted
                | DeliveryStatus::Sent
                | DeliveryStatus::Delivered
                | DeliveryStatus::Read,
            ) => match taken.len() {
                1 => {}
                0 => v.push(format!(
                    "{}: {status:?} but the provider never took it",
                    m.message_id
                )),
                _ => {
                    report.double_sends += 1;
                    if taken[..taken.len() - 1].iter().all(|r| r.fault.is_some()) {
                        report.double_sends_after_ambiguity += 1;
                    } else {
                        v.push(format!(
                            "{}: sent {} times, the first answered plainly",
                            m.message_id,
                            taken.len()
                        ));
                    }
                }
            },
            Some(DeliveryStatus::Unconfirmed | DeliveryStatus::Failed)
                if !reason.is_empty() && taken.len() <= 1 => {}
            _ => v.push(format!(
                "{}: left {status:?} ({reason}) after {} attempts the provider took",
                m.message_id,
                taken.len()
            )),
        }
    }

    // Dead-letter queues: only the poison.
    for (id, url) in &ctx.running.resources.queue_urls {
        if !id.ends_with("DLQ") {
            continue;
        }
        let mut bodies = Vec::new();
        loop {
            let got = ctx
                .running
                .gateway
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(600)
                .wait_time_seconds(1)
                .send()
                .await?
                .messages
                .unwrap_or_default();
            if got.is_empty() {
                break;
            }
            bodies.extend(got.into_iter().filter_map(|m| m.body));
        }
        report.dead_letters.insert(id.clone(), bodies.len());
        let expected: &[String] = if id == "InboundDLQ" { poison } else { &[] };
        for b in &bodies {
            if !expected.contains(b) {
                v.push(format!(
                    "{id} holds a message that was not poison: {}",
                    b.chars().take(200).collect::<String>()
                ));
            }
        }
        for p in expected {
            if !bodies.contains(p) {
                v.push(format!("{id} is missing the poison message `{p}`"));
            }
        }
    }

    // No connection record outlives its socket.
    let table = ctx.running.resources.table("ConnectionsTable")?;
    let left = ctx
        .running
        .dynamo
        .scan()
        .table_name(&table)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await?
        .count;
    report.connection_records_left = usize::try_from(left).unwrap_or(usize::MAX);
    if left > 0 {
        v.push(format!(
            "{left} connection items left after every socket closed and the sweep ran"
        ));
    }
    Ok(())
}
