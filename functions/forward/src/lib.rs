//! Forwards every inbound webhook body to Communication Master
//! (`COMMUNICATION_MASTER_URL`), byte for byte. Runs off its own queue, so
//! Communication Master being slow or down never touches the main path; a
//! failed forward is retried by SQS and ends in the forward DLQ, never
//! dropped.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
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
            http: shared::provider::http_client()?,
            url,
            max_receives,
        })
    }

    pub fn from_env() -> anyhow::Result<Self> {
        let url = shared::config::env_required("COMMUNICATION_MASTER_URL")?;
        let max = shared::config::env_u64("FORWARD_MAX_RECEIVES", u64::from(DEFAULT_MAX_RECEIVES))
            .map_err(anyhow::Error::from)?;
        Self::new(url, u32::try_from(max)?)
    }
}

pub async fn handle(
    state: &State,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let mut failures = Vec::new();
    for record in event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        let receives = shared::aws::sqs_event::receive_count(&record);
        let channel = record
            .message_attributes
            .get(shared::aws::queue::CHANNEL_ATTRIBUTE)
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
                continue;
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
        failures.push(failure);
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    Ok(response)
}
