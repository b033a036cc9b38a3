//! Delivers queued WhatsApp sends: one entry per stored `queued` message
//! (or per staff alert the SLA scan stored: `{"alert_id"}`).
//! A send the provider takes is recorded (`accepted`, its provider id); a
//! transient failure (429, 5xx, timeout) comes back after an exponential
//! backoff with jitter; a permanent refusal, or the last attempt, marks the
//! message `failed` and tells the chat's room. Entries are references to
//! stored messages, so a redelivered entry finds its message already sent
//! and does nothing: nothing is sent twice by the queue.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::config::{ConfigError, Env};
use lambda_runtime::{Error, LambdaEvent};

use adapters::SqsOutboundQueue;
use domain::channel::ChannelTable;
use domain::chat::ChatStore;
use domain::chat::MessageRef;
use domain::protocol::{ConnectionStore, Pusher};
use domain::routing::sla::SlaStore;
use domain::sending::OutboxStore;
use domain::sending::{AttemptOutcome, Backoff, DeliverySettings, SendWorker, Sender};

/// The template's default redrive limit for the send queue.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// A claimed send is kept from other consumers this long: at least the
/// function's timeout (75 s in template.yaml), so no other consumer sends
/// it while this invocation may still be sending.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(90);

pub struct State<S, D, P> {
    pub store: S,
    pub sender: D,
    pub pusher: P,
    pub queue: SqsOutboundQueue,
    pub channels: ChannelTable,
    pub settings: DeliverySettings,
}

/// Retry policy from the environment: `OUTBOUND_MAX_ATTEMPTS` (the
/// queue's maxReceiveCount), `OUTBOUND_BACKOFF_BASE_MS`,
/// `OUTBOUND_BACKOFF_CAP_SECS`.
pub fn settings_from_env(env: &Env) -> Result<DeliverySettings, ConfigError> {
    Ok(DeliverySettings {
        max_attempts: env.u32("OUTBOUND_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)?,
        backoff: Backoff {
            base: std::time::Duration::from_millis(env.u64(
                "OUTBOUND_BACKOFF_BASE_MS",
                u64::try_from(Backoff::DEFAULT.base.as_millis()).unwrap_or(u64::MAX),
            )?),
            cap: std::time::Duration::from_secs(
                env.u64("OUTBOUND_BACKOFF_CAP_SECS", Backoff::DEFAULT.cap.as_secs())?,
            ),
        },
        lease: LEASE,
        confirm_wait: std::time::Duration::from_secs(env.u64(
            "OUTBOUND_CONFIRM_WAIT_SECS",
            domain::sending::CONFIRM_WAIT.as_secs(),
        )?),
    })
}

impl State<adapters::DynamoStore, adapters::pinbot::PinbotClient, adapters::ApiGwPusher> {
    /// The function as deployed: settings read once from `env`, clients
    /// from `aws` (built once per cold start; the local gateway passes its
    /// own with the template's environment).
    pub fn from_env(env: &Env, aws: &adapters::Aws) -> anyhow::Result<Self> {
        let channels = ChannelTable::from_env(env)?;
        Ok(Self {
            store: adapters::DynamoStore::from_env(env, aws)?,
            sender: adapters::pinbot::PinbotClient::from_env(env, &channels)?,
            pusher: adapters::ApiGwPusher::from_env(env, aws)?,
            queue: adapters::SqsOutboundQueue::from_env(env, aws)?,
            channels,
            settings: settings_from_env(env)?,
        })
    }
}

pub async fn handle<S, D, P>(
    state: &State<S, D, P>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error>
where
    S: ChatStore + OutboxStore + ConnectionStore + SlaStore,
    D: Sender,
    P: Pusher,
{
    let worker = SendWorker {
        store: &state.store,
        sender: &state.sender,
        pusher: &state.pusher,
        channels: &state.channels,
        settings: state.settings,
    };
    // A batch's chats are sent side by side (a provider slow to answer
    // one holds back no other); one chat's sends keep the batch's order.
    let entries: Vec<(SqsMessage, Result<Job, serde_json::Error>)> = event
        .payload
        .records
        .into_iter()
        .map(|record| {
            let job = serde_json::from_str(record.body.as_deref().unwrap_or_default());
            (record, job)
        })
        .collect();
    let chats = adapters::sqs_event::grouped(entries, |(record, job)| match job {
        Ok(Job::Message(m)) => m.chat_id.to_string(),
        Ok(Job::Alert { alert_id }) => alert_id.clone(),
        Err(_) => record.message_id.clone().unwrap_or_default(),
    });
    let sends = chats.into_iter().map(|(_, records)| async {
        let mut failures = Vec::new();
        for (record, job) in records {
            failures.extend(send_one(state, &worker, record, job).await);
        }
        failures
    });
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .flatten()
        .collect();
    Ok(response)
}

/// One queue entry: sent, or handed back (with the retry's delay set on
/// it) as a batch item failure.
async fn send_one<S, D, P>(
    state: &State<S, D, P>,
    worker: &SendWorker<'_, S, D, P>,
    record: SqsMessage,
    job: Result<Job, serde_json::Error>,
) -> Option<BatchItemFailure>
where
    S: ChatStore + OutboxStore + ConnectionStore + SlaStore,
    D: Sender,
    P: Pusher,
{
    let id = record.message_id.clone().unwrap_or_default();
    let attempt = adapters::sqs_event::receive_count(&record);
    let job = match job {
        Ok(job) => job,
        Err(e) => {
            // Not ours to guess at: retried, then kept in the DLQ.
            tracing::error!(sqs_message_id = %id, error = %e, receive_count = attempt,
                "send queue entry is not a message reference; leaving it for the dead-letter queue");
            return Some(failure(id));
        }
    };
    let result = match &job {
        Job::Message(m) => worker.deliver(m, attempt, fastrand::f64()).await,
        Job::Alert { alert_id } => {
            worker
                .deliver_alert(alert_id, attempt, fastrand::f64())
                .await
        }
    };
    let retry_after = match result {
        Ok(AttemptOutcome::Done) => return None,
        Ok(AttemptOutcome::RetryIn(wait)) => wait,
        // Straight on to the dead-letter queue.
        Ok(AttemptOutcome::GaveUp) => std::time::Duration::ZERO,
        Err(e) => {
            tracing::error!(sqs_message_id = %id, job = ?job,
                error = ?e, receive_count = attempt, "send could not be handled; it will be retried");
            return Some(failure(id));
        }
    };
    if let Some(handle) = record.receipt_handle.as_deref()
        && let Err(e) = state.queue.retry_in(handle, retry_after).await
    {
        tracing::warn!(sqs_message_id = %id, error = ?e,
            "could not set the retry delay; the queue's visibility timeout applies");
    }
    Some(failure(id))
}

/// One entry of the send queue: a stored chat message, or a staff alert.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum Job {
    Alert { alert_id: String },
    Message(MessageRef),
}

fn failure(id: String) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id;
    f
}
