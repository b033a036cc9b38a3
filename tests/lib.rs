//! Test support: the local AWS (DynamoDB Local, moto server) and the local
//! gateway on loopback ports, plus clients that speak to them over real
//! HTTP and WebSocket.
//!
//! Each test starts its own gateway and moto server (SQS, EventBridge) on
//! free ports; DynamoDB Local is one process for the whole test binary
//! (a JVM takes seconds to start), and each stack's tables carry a prefix
//! of their own, so tests never see each other's data.
//! `AWS_ENDPOINT_URL_DYNAMODB` (or `AWS_ENDPOINT_URL`) runs the suite
//! against another DynamoDB.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use adapters::DynamoStore;
use domain::channel::Stakeholder;
use domain::executive::ExecutiveStore;
use domain::executive::{Email, Executive, ExecutiveId, Role, hash_password};
use domain::secret::Secret;
use local_gateway::emulators::{Emulator, EndpointOverrides, Endpoints, Kind};
use local_gateway::{Config, DevAdmin, Running};

pub mod browser;

pub const ADMIN_EMAIL: &str = "admin@test.local";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const PARTNER_CHANNEL: &str = "9099039188";

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn fixture(name: &str) -> String {
    let path = workspace().join("tests/data").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Where the test emulators write their logs.
pub fn emulator_logs() -> PathBuf {
    workspace().join(".local/logs/tests")
}

async fn start_emulator(kind: Kind) -> anyhow::Result<Emulator> {
    Ok(Emulator::start(
        kind,
        ([127, 0, 0, 1], 0).into(),
        &emulator_logs(),
        |_, _| {},
    )
    .await?)
}

/// The DynamoDB every stack of this test binary shares.
async fn shared_dynamodb() -> anyhow::Result<String> {
    static DYNAMODB: tokio::sync::OnceCell<Emulator> = tokio::sync::OnceCell::const_new();
    if let Some(url) = EndpointOverrides::from_env().dynamodb {
        return Ok(url);
    }
    let emulator = DYNAMODB
        .get_or_try_init(|| start_emulator(Kind::dynamodb_local(&workspace())))
        .await?;
    Ok(emulator.endpoint())
}

/// One isolated stack: its own gateway, ports, moto process and tables.
pub struct Stack {
    pub running: Running,
    pub http: reqwest::Client,
    moto: Option<Emulator>,
    /// A DynamoDB Local of this stack's own (outage tests stop it).
    dynamodb: Option<Emulator>,
}

impl Stack {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        Self::start_on(shared_dynamodb().await?, None, tweak).await
    }

    /// A stack with a DynamoDB Local of its own, so that
    /// [`Stack::stop_emulator`] takes DynamoDB down too.
    pub async fn start_with_own_dynamodb() -> anyhow::Result<Self> {
        let own = start_emulator(Kind::dynamodb_local(&workspace())).await?;
        Self::start_on(own.endpoint(), Some(own), |_| {}).await
    }

    async fn start_on(
        dynamodb_endpoint: String,
        dynamodb: Option<Emulator>,
        tweak: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let moto = start_emulator(Kind::moto(&workspace())).await?;
        let endpoints = Endpoints {
            dynamodb: dynamodb_endpoint,
            sqs: moto.endpoint(),
            eventbridge: moto.endpoint(),
        };
        let mut cfg = Config::ephemeral(endpoints, &workspace());
        cfg.dev_admin = Some(DevAdmin {
            email: Email::parse(ADMIN_EMAIL).map_err(anyhow::Error::msg)?,
            password: Secret::new(ADMIN_PASSWORD.into()),
        });
        cfg.verify_token = Some(Secret::new("verify-me".into()));
        tweak(&mut cfg);
        let running = local_gateway::start(cfg).await?;
        Ok(Self {
            running,
            http: reqwest::Client::new(),
            moto: Some(moto),
            dynamodb,
        })
    }

    /// This stack's moto (SQS, EventBridge and any other service moto has).
    pub fn moto_endpoint(&self) -> anyhow::Result<String> {
        self.moto
            .as_ref()
            .map(Emulator::endpoint)
            .context("this stack's moto was stopped")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.running.http_addr, path)
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/{}", self.running.ws_addr, query)
    }

    /// The Pinbot / Communication Master recorder's base URL.
    pub fn recorder_url(&self) -> anyhow::Result<String> {
        let addr = self
            .running
            .recorder_addr
            .context("the stack has no recorder")?;
        Ok(format!("http://{addr}"))
    }

    /// Every request the recorder got, oldest first (an error, never an
    /// empty list, when the listing is not the shape it should be).
    pub async fn recorded(&self) -> anyhow::Result<Vec<Value>> {
        let res = self
            .http
            .get(format!("{}/__recorded", self.recorder_url()?))
            .send()
            .await?;
        let status = res.status();
        let listed: Value = res.json().await?;
        if !status.is_success() {
            bail!("the recorder answered {status}: {listed}");
        }
        match listed.get("requests") {
            Some(Value::Array(requests)) => Ok(requests.clone()),
            _ => bail!("the recorder's listing has no `requests` array: {listed}"),
        }
    }

    /// Waits until this stack's queues are drained: nothing waiting, in
    /// flight or delayed on the inbound, forward and send queues (their
    /// dead-letter queues aside), on two reads in a row. After it, whatever
    /// a consumer was going to do has been done, so "nothing else was
    /// sent / stored" can be asserted without sleeping on a guess.
    pub async fn settled(&self) -> anyhow::Result<()> {
        self.settled_on(|id| !id.ends_with("DLQ")).await
    }

    /// [`Stack::settled`] for the queues (by template logical id) `which`
    /// names.
    pub async fn settled_on(&self, which: impl Fn(&str) -> bool) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.running.resources.queue_urls.keys().any(|id| which(id)),
            "no queue to wait for"
        );
        let which = &which;
        let empty_reads = std::cell::Cell::new(0u32);
        eventually(Duration::from_secs(60), || {
            let empty_reads = &empty_reads;
            async move {
                let pending = self.running.pending(which).await?;
                empty_reads.set(if pending == 0 {
                    empty_reads.get() + 1
                } else {
                    0
                });
                Ok((empty_reads.get() >= 2).then_some(()))
            }
        })
        .await
        .context("the queues did not drain")
    }

    /// Makes the recorder answer the next `times` requests with `status`.
    pub async fn recorder_fails(&self, status: u16, times: u32) -> anyhow::Result<()> {
        self.http
            .post(format!("{}/__fail", self.recorder_url()?))
            .json(&json!({"status": status, "times": times}))
            .send()
            .await?;
        Ok(())
    }

    /// The provider's next `times` sends succeed without a message id: an
    /// answer that cannot say whether the message went out.
    pub async fn recorder_answers_without_id(&self, times: u32) -> anyhow::Result<()> {
        self.http
            .post(format!("{}/__fail", self.recorder_url()?))
            .json(&json!({"status": 200, "times": times, "no_id": true}))
            .send()
            .await?;
        Ok(())
    }

    /// A chat as stored now (an error when there is none).
    pub async fn chat(&self, id: &domain::chat::ChatId) -> anyhow::Result<domain::chat::Chat> {
        use domain::chat::ChatStore;
        self.store()
            .chat(id)
            .await?
            .with_context(|| format!("no chat {id}"))
    }

    /// `customer` writes `text` on `channel` (WhatsApp id `wa_id`): their
    /// chat once the consumer has stored the message.
    pub async fn customer_writes(
        &self,
        channel: &str,
        customer: &str,
        wa_id: &str,
        text: &str,
    ) -> anyhow::Result<domain::chat::Chat> {
        self.post_webhook(channel, &text_webhook(customer, "Customer", wa_id, text))
            .await?;
        let stored = wait_stored(&self.store(), &[wa_id]).await?;
        self.chat(&stored[0].chat_id).await
    }

    /// Runs a scheduled function once, as EventBridge would (a scheduled
    /// event JSON for the template's rule); what it reported.
    pub async fn run_schedule(&self, binary: &str) -> anyhow::Result<Value> {
        self.running.run_schedule(binary).await
    }

    /// Runs a scheduled function with this event (a retry re-sends one).
    pub async fn run_scheduled_event(
        &self,
        binary: &str,
        event: aws_lambda_events::eventbridge::EventBridgeEvent,
    ) -> anyhow::Result<Value> {
        self.running
            .gateway
            .functions
            .invoke_schedule(binary, event)
            .await
            .map_err(|e| anyhow::anyhow!("{binary}: {e}"))
    }

    /// An agent with this capacity, logged in and connected, put online
    /// with `set_status` (the reply checked).
    pub async fn online_agent(
        &self,
        id: &str,
        teams: &[Stakeholder],
        capacity: u32,
    ) -> anyhow::Result<Dashboard> {
        let email = format!("{id}@test.local");
        let password = format!("{id}-password");
        self.store()
            .put_executive(&Executive {
                executive_id: ExecutiveId::parse(id).map_err(anyhow::Error::msg)?,
                name: id.to_owned(),
                email: Email::parse(&email).map_err(anyhow::Error::msg)?,
                password_hash: hash_password(&password)?,
                role: Role::Agent,
                stakeholders: teams.to_vec(),
                disabled: false,
                capacity,
                token_generation: 0,
            })
            .await?;
        let mut dash = self.connect(&self.login(&email, &password).await?).await?;
        let reply = dash
            .request("set_status", json!({"status": "online"}))
            .await?;
        if reply["data"]["status"] != "online" {
            bail!("set_status answered {reply}");
        }
        Ok(dash)
    }

    pub fn store(&self) -> DynamoStore {
        self.running.gateway.functions.ws_events.store.clone()
    }

    /// Adds an executive directly to the store.
    pub async fn add_executive(
        &self,
        id: &str,
        email: &str,
        password: &str,
        role: Role,
        stakeholders: &[Stakeholder],
        disabled: bool,
    ) -> anyhow::Result<()> {
        self.store()
            .put_executive(&Executive {
                executive_id: ExecutiveId::parse(id).map_err(anyhow::Error::msg)?,
                name: id.to_owned(),
                email: Email::parse(email).map_err(anyhow::Error::msg)?,
                password_hash: hash_password(password)?,
                role,
                stakeholders: stakeholders.to_vec(),
                disabled,
                capacity: domain::executive::DEFAULT_CAPACITY,
                token_generation: 0,
            })
            .await?;
        Ok(())
    }

    /// A new agent `id` serving `team`, logged in through the API and
    /// connected to the dashboard socket.
    pub async fn connect_agent(&self, id: &str, team: Stakeholder) -> anyhow::Result<Dashboard> {
        let email = format!("{id}@test.local");
        let password = format!("{id}-password");
        self.add_executive(id, &email, &password, Role::Agent, &[team], false)
            .await?;
        self.connect(&self.login(&email, &password).await?).await
    }

    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let res = self
            .http
            .post(self.url("/api/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        let status = res.status();
        let body: Value = res.json().await?;
        if !status.is_success() {
            bail!("login failed: {status} {body}");
        }
        body["token"]
            .as_str()
            .map(str::to_owned)
            .context("login answer has no token")
    }

    /// `POST /api/auth/login` from the loopback address `source` (the
    /// gateway reports it as the caller's source IP, as API Gateway does).
    pub async fn login_from(
        &self,
        source: std::net::IpAddr,
        body: Value,
    ) -> anyhow::Result<(u16, Value)> {
        let client = reqwest::Client::builder().local_address(source).build()?;
        let res = client
            .post(self.url("/api/auth/login"))
            .json(&body)
            .send()
            .await?;
        let status = res.status().as_u16();
        Ok((status, res.json().await.unwrap_or(Value::Null)))
    }

    /// DynamoDB requests the stack's handlers made so far, by operation.
    pub fn store_requests(&self) -> std::collections::BTreeMap<String, u64> {
        self.running.dynamo_requests.snapshot()
    }

    /// What `work` answers and the DynamoDB requests made while it ran.
    pub async fn measured<T>(
        &self,
        work: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<(T, std::collections::BTreeMap<String, u64>)> {
        let before = self.store_requests();
        let others = self.running.other_requests.snapshot();
        let answer = work.await?;
        let mut spent = local_gateway::RequestCounter::since(&before, &self.store_requests());
        // What the product sends to SQS and EventBridge (the local event
        // source mappings' receives and deletes are Lambda's, not ours),
        // under `{service} {operation}`.
        let product = ["SendMessage", "SendMessageBatch", "PutEvents"];
        spent.extend(
            local_gateway::RequestCounter::since(&others, &self.running.other_requests.snapshot())
                .into_iter()
                .filter(|(op, _)| {
                    op.split_once(' ')
                        .is_some_and(|(_, o)| product.contains(&o))
                }),
        );
        Ok((answer, spent))
    }

    /// The status a WebSocket handshake with `query` is refused with
    /// (`None`: it was accepted).
    pub async fn handshake_status(&self, query: &str) -> anyhow::Result<Option<u16>> {
        match tokio_tungstenite::connect_async(self.ws_url(query)).await {
            Ok(_) => Ok(None),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                Ok(Some(res.status().as_u16()))
            }
            Err(e) => bail!("unexpected handshake error: {e}"),
        }
    }

    /// An HTTP call with an optional bearer token and JSON body: the status
    /// and the JSON answer (a string when it is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    pub async fn admin_token(&self) -> anyhow::Result<String> {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    pub async fn post_webhook(&self, channel: &str, body: &str) -> anyhow::Result<(u16, Value)> {
        let res = self
            .http
            .post(self.url(&format!("/api/chats/whatsapp_chat/{channel}")))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    pub async fn connect(&self, token: &str) -> anyhow::Result<Dashboard> {
        let (ws, _) =
            tokio_tungstenite::connect_async(self.ws_url(&format!("?token={token}"))).await?;
        Ok(Dashboard { ws })
    }

    /// Stops the emulators this stack owns under its running gateway (a
    /// dependency outage): moto (SQS, EventBridge), and DynamoDB Local when
    /// the stack has its own. Returns once they are gone.
    pub async fn stop_emulator(&mut self) {
        for e in [self.moto.take(), self.dynamodb.take()]
            .into_iter()
            .flatten()
        {
            e.stop().await;
        }
    }

    pub async fn stop(mut self) {
        self.stop_emulator().await;
        self.running.shutdown().await;
    }
}

/// A WhatsApp text webhook from `from`, message id `id`.
/// A webhook carrying one photo (`media_id`) from `from`.
pub fn image_webhook(from: &str, id: &str, media_id: &str) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "contacts": [{"profile": {"name": "Photo"}, "wa_id": from}],
            "messages": [{"from": from, "id": id, "timestamp": "1763700000", "type": "image",
                          "image": {"id": media_id, "mime_type": "image/jpeg"}}]
        }}]}]
    })
    .to_string()
}

pub fn text_webhook(from: &str, name: &str, id: &str, body: &str) -> String {
    let text = local_gateway::sample::Text {
        from,
        name,
        id,
        body,
    };
    local_gateway::sample::text_webhook(&[text], 1_763_700_000).to_string()
}

/// The dashboard totals of a counters body (`dashboard_stats`, `GET
/// /api/dashboard/stats`), without the per-team figures.
pub fn totals(v: &Value) -> Value {
    json!({"active": v["active"], "resolved": v["resolved"], "pending": v["pending"]})
}

/// One field of every chat in a reply's `data.chats`, in order.
pub fn chats_field(reply: &Value, field: &str) -> Vec<Value> {
    reply["data"]["chats"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c[field].clone())
        .collect()
}

/// What a dashboard socket gave before a deadline.
enum Next {
    Frame(Message),
    Closed,
    TimedOut,
}

/// A connected dashboard client.
pub struct Dashboard {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Dashboard {
    pub async fn send_raw(&mut self, text: &str) -> anyhow::Result<()> {
        self.ws.send(Message::Text(text.to_owned().into())).await?;
        Ok(())
    }

    pub async fn send(&mut self, event: &str, data: Value, request_id: &str) -> anyhow::Result<()> {
        self.send_raw(&json!({"event": event, "data": data, "request_id": request_id}).to_string())
            .await
    }

    /// The next frame whose event is `event`, skipping others, within `wait`.
    pub async fn expect(&mut self, event: &str, wait: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = tokio::time::timeout(left, self.ws.next())
                .await
                .with_context(|| format!("no `{event}` frame within {wait:?}"))?
                .context("socket closed")??;
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t)?;
                if v["event"] == event {
                    return Ok(v);
                }
            }
        }
    }

    /// The next `event` frame whose data equals `data` (earlier ones with
    /// other data are skipped), within `wait`.
    pub async fn expect_data(
        &mut self,
        event: &str,
        data: &Value,
        wait: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self
                .expect(event, left)
                .await
                .with_context(|| format!("no `{event}` with {data}"))?;
            if &frame["data"] == data {
                return Ok(frame);
            }
        }
    }

    /// The next `event` frame whose data satisfies `wanted` (others are
    /// skipped), within `wait`.
    pub async fn expect_where(
        &mut self,
        event: &str,
        wanted: impl Fn(&Value) -> bool,
        wait: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.expect(event, left).await?;
            if wanted(&frame["data"]) {
                return Ok(frame);
            }
        }
    }

    /// Sends a request and returns its reply (or `error`) by request id.
    pub async fn request(&mut self, event: &str, data: Value) -> anyhow::Result<Value> {
        let rid = uuid_like();
        self.send(event, data, &rid).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = tokio::time::timeout(left, self.ws.next())
                .await
                .with_context(|| format!("no reply to `{event}`"))?
                .context("socket closed")??;
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t)?;
                if v["request_id"] == rid.as_str() {
                    return Ok(v);
                }
            }
        }
    }

    /// Sends `text` as one message split over `parts` WebSocket frames (as
    /// API Gateway reassembles messages larger than a 32 KB frame).
    pub async fn send_fragmented(&mut self, text: &str, parts: usize) -> anyhow::Result<()> {
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        let bytes = text.as_bytes();
        let size = bytes.len().div_ceil(parts.max(1));
        let chunks: Vec<&[u8]> = bytes.chunks(size.max(1)).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let opcode = if i == 0 { Data::Text } else { Data::Continue };
            let last = i + 1 == chunks.len();
            self.ws
                .send(Message::Frame(Frame::message(
                    chunk.to_vec(),
                    OpCode::Data(opcode),
                    last,
                )))
                .await?;
        }
        Ok(())
    }

    /// The next frame before `deadline`, or why there is none.
    async fn next_before(&mut self, deadline: tokio::time::Instant) -> Next {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, self.ws.next()).await {
            Err(_) => Next::TimedOut,
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => Next::Closed,
            Ok(Some(Ok(frame))) => Next::Frame(frame),
        }
    }

    /// True when the server closes the socket within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.next_before(deadline).await {
                Next::TimedOut => return false,
                Next::Closed => return true,
                Next::Frame(_) => continue,
            }
        }
    }

    /// True when no frame named `event` arrives within `wait` and the
    /// socket is still open at the end (a closed socket is not quiet: it
    /// could not have received anything).
    pub async fn quiet(&mut self, event: &str, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.next_before(deadline).await {
                Next::TimedOut => return true,
                Next::Closed => return false,
                Next::Frame(Message::Text(t)) => {
                    let named =
                        serde_json::from_str::<Value>(&t).map_or(true, |v| v["event"] == event);
                    if named {
                        return false;
                    }
                }
                Next::Frame(_) => continue,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!("req-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Polls `check` until it returns Some, for state that settles
/// asynchronously (the queue consumer).
pub async fn eventually<T, F, Fut>(wait: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("condition not met within {wait:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The stored message with this WhatsApp id, once the consumer stored it.
pub async fn stored_message(
    store: &DynamoStore,
    wa_message_id: &str,
) -> anyhow::Result<Option<domain::chat::Message>> {
    use domain::chat::ChatStore;
    let Some(r) = store.message_ref(wa_message_id).await? else {
        return Ok(None);
    };
    let (messages, _) = store.messages(&r.chat_id, None, 0, 50).await?;
    Ok(messages.into_iter().find(|m| m.message_id == r.message_id))
}

/// A text the dev admin sent in `chat`, stored `queued` at `at` as the send
/// path stores it (and never put on the send queue); with the provider's
/// id when `wa_message_id` is given.
pub async fn append_outbound_text(
    store: &DynamoStore,
    chat: &domain::chat::ChatId,
    text: &str,
    at: chrono::DateTime<chrono::Utc>,
    wa_message_id: Option<&str>,
) -> anyhow::Result<domain::chat::Message> {
    use domain::chat::ChatStore;
    let m = outbound_text(chat, text, at, wa_message_id);
    // Appends check the chat is as read: read it fresh, as a sender would.
    let current = store.chat(chat).await?.context("no such chat")?;
    match store.append_outbound(&current, &m, None).await? {
        domain::chat::Appended::Stored(_) => Ok(m),
        domain::chat::Appended::Duplicate => anyhow::bail!("{} was stored before", m.message_id),
    }
}

/// An agent's text appended to `chat` as read (no fresh read): the
/// header after, `None` for a duplicate, the store's error as it is.
pub async fn append_outbound_text_to(
    store: &DynamoStore,
    chat: &domain::chat::Chat,
    text: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<domain::chat::Chat>, domain::error::StoreError> {
    use domain::chat::ChatStore;
    let m = outbound_text(&chat.chat_id, text, at, None);
    Ok(match store.append_outbound(chat, &m, None).await? {
        domain::chat::Appended::Stored(after) => Some(*after),
        domain::chat::Appended::Duplicate => None,
    })
}

fn outbound_text(
    chat: &domain::chat::ChatId,
    text: &str,
    at: chrono::DateTime<chrono::Utc>,
    wa_message_id: Option<&str>,
) -> domain::chat::Message {
    use domain::chat::{Delivery, DeliveryStatus, Direction, Message, SenderType};
    let content = domain::chat::Content::Text { body: text.into() };
    // Ids go into URLs (re-send): the text's letters and digits only.
    let discriminator: String = match wa_message_id {
        Some(id) => id.to_owned(),
        None => text.chars().filter(char::is_ascii_alphanumeric).collect(),
    };
    Message {
        chat_id: chat.clone(),
        message_id: Message::id_for(at, 0, &discriminator),
        wa_message_id: wa_message_id.map(str::to_owned),
        direction: Direction::Outbound,
        sender: "dev-admin".into(),
        sender_type: SenderType::Agent,
        preview: content.preview(),
        content,
        sent_at: wa_message_id.map(|_| at),
        received_at: at,
        reply_to: None,
        reply_to_message_id: None,
        delivery: Some(Delivery {
            status: DeliveryStatus::Queued,
            at: Some(at),
            errors: vec![],
        }),
        inbound_seq: 0,
        referral: None,
    }
}

/// The run that made the fewest store requests (background work only
/// adds to a measurement).
pub fn fewest<T>(
    runs: Vec<(T, std::collections::BTreeMap<String, u64>)>,
) -> Option<(T, std::collections::BTreeMap<String, u64>)> {
    runs.into_iter().min_by_key(|(_, spent)| store_total(spent))
}

/// The DynamoDB requests of a measurement (other services' are named
/// `{service} {operation}`).
pub fn store_total(spent: &std::collections::BTreeMap<String, u64>) -> u64 {
    spent
        .iter()
        .filter(|(op, _)| !op.contains(' '))
        .map(|(_, n)| n)
        .sum()
}

/// Waits until every WhatsApp id is stored; returns them in that order.
pub async fn wait_stored(
    store: &DynamoStore,
    ids: &[&str],
) -> anyhow::Result<Vec<domain::chat::Message>> {
    let mut found = Vec::new();
    for id in ids {
        let m = eventually(Duration::from_secs(15), || async {
            stored_message(store, id).await
        })
        .await
        .with_context(|| format!("{id} was not stored"))?;
        found.push(m);
    }
    Ok(found)
}

/// A `statuses` webhook for one outbound message.
pub fn status_webhook(wa_message_id: &str, recipient: &str, status: &str, errors: Value) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "919099039188", "phone_number_id": "1"},
            "statuses": [{"id": wa_message_id, "status": status, "timestamp": "1763700100",
                          "recipient_id": recipient, "errors": errors}]
        }}]}]
    })
    .to_string()
}

/// A real SQS event (the FIFO inbound queue's records) carrying one
/// queued inbound text per `(customer, wa_message_id, text)`, each in its
/// customer's message group; `text: None` makes the record a body that is
/// not an inbound event at all (a poison message).
pub fn inbound_sqs_event(
    records: &[(&str, &str, Option<&str>)],
) -> anyhow::Result<aws_lambda_events::sqs::SqsEvent> {
    let template: Value = serde_json::from_str(&fixture("sqs_inbound_batch.json"))?;
    let record = template["Records"][0].clone();
    let records: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, (customer, wa, text))| {
            let mut r = record.clone();
            r["messageId"] = json!(format!("00000000-0000-4000-8000-{:012}", i));
            r["body"] = json!(match text {
                Some(text) => json!({
                    "channel": PARTNER_CHANNEL,
                    "received_at": chrono::Utc::now(),
                    "event": {"kind": "message", "wa_message_id": wa, "from": customer, "phone": customer,
                              "profile_name": "Batch", "sent_at": null, "reply_to": null,
                              "content": {"type": "text", "body": text}}
                })
                .to_string(),
                None => "not an inbound event".to_owned(),
            });
            r["attributes"]["MessageGroupId"] = json!(customer);
            r["attributes"]["MessageDeduplicationId"] = json!(format!("{PARTNER_CHANNEL}:{wa}"));
            r
        })
        .collect();
    Ok(serde_json::from_value(json!({ "Records": records }))?)
}

/// The records a consumer handed back to its queue, in its answer's order.
pub fn failed_ids(answer: &aws_lambda_events::sqs::SqsBatchResponse) -> Vec<&str> {
    answer
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}
