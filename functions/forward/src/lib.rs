//! Forwards every inbound webhook body to Communication Master
//! (`COMMUNICATION_MASTER_URL`), byte for byte. Runs off its own queue, so
//! Communication Master being slow or down never touches the main path; a
//! failed forward is retried by SQS and ends in the forward DLQ, never
//! dropped.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::config::Env;
use lambda_runtime::{Error, LambdaEvent};

/// The template's default redrive limit for the forward queue.
pub const DEFAULT_MAX_RECEIVES: u32 = 10;

pub struct State {
    pub http: reqwest::Client,
    pub url: String,
    pub max_receives: u32,
}

impl State {
    pub fn new(url: String, max_receives: u32) -> anyhow::Result<Self> {
        Ok(Self {
            http: adapters::pinbot::http_client()?,
            url,
            max_receives,
        })
    }

    /// The function as deployed: settings read once from `env`, clients
    /// from `aws` (built once per cold start; the local gateway passes its
    /// own with the template's environment).
    pub fn from_env(env: &Env) -> anyhow::Result<Self> {
        Self::new(
            env.required("COMMUNICATION_MASTER_URL")?,
            env.u32("FORWARD_MAX_RECEIVES", DEFAULT_MAX_RECEIVES)?,
        )
    }
}

/// Forwards one record; why it failed, if it did.
async fn forward(state: &State, record: SqsMessage) -> Option<BatchItemFailure> {
    let id = record.message_id.clone().unwrap_or_default();
    let receives = adapters::sqs_event::receive_count(&record);
    let channel = record
        .message_attributes
        .get(adapters::queue::CHANNEL_ATTRIBUTE)
        .and_then(|a| a.string_value.clone())
        .unwrap_or_default();
    let result = state
        .http
        .post(&state.url)
        .header("content-type", "application/json")
        .header("x-smartchat-channel", &channel)
        .body(record.body.unwrap_or_default())
        .send()
        .await;
    let reason = match result {
        Ok(res) if res.status().is_success() => {
            tracing::info!(sqs_message_id = %id, channel = %channel, "forwarded to Communication Master");
            return None;
        }
        Ok(res) => format!("Communication Master answered {}", res.status()),
        Err(e) => format!("Communication Master unreachable: {e}"),
    };
    if receives >= state.max_receives {
        tracing::error!(sqs_message_id = %id, channel = %channel, receive_count = receives, reason = %reason,
            "forward failed for the last time; moving to the forward dead-letter queue");
    } else {
        tracing::warn!(sqs_message_id = %id, channel = %channel, receive_count = receives, reason = %reason,
            "forward failed; it will be retried");
    }
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    Some(failure)
}

/// Forwards a batch's records side by side: Communication Master slow to
/// answer one (up to the 10 s limit) holds back none of the others. Order
/// is not kept (the queue is a standard one; each body stands alone).
pub async fn handle(
    state: &State,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let forwards = event
        .payload
        .records
        .into_iter()
        .map(|record| forward(state, record));
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = futures_util::future::join_all(forwards)
        .await
        .into_iter()
        .flatten()
        .collect();
    Ok(response)
}
