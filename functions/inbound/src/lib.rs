//! The inbound SQS consumer: one FIFO batch at a time, each event stored
//! once and pushed live. Failures are reported per message (partial batch
//! response) so one poison message never holds back other customers.

use std::collections::HashSet;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};

use shared::channel::ChannelTable;
use shared::inbound::{Inbound, QueuedEvent};
use shared::store::{
    ChatStore, ConnectionStore, EventPublisher, ExecutiveStore, Pusher, RoutingStore,
};

pub struct State<S, P, E> {
    pub store: S,
    pub pusher: P,
    pub events: E,
    pub channels: ChannelTable,
    /// The queue's redrive limit (`INBOUND_MAX_RECEIVES`), so the last
    /// failure can say that the message now goes to the DLQ.
    pub max_receives: u32,
}

/// The template's default `InboundMaxReceiveCount`.
pub const DEFAULT_MAX_RECEIVES: u32 = 5;

impl State<shared::aws::DynamoStore, shared::aws::ApiGwPusher, shared::aws::EventBridgePublisher> {
    pub async fn from_env() -> anyhow::Result<Self> {
        let sdk = shared::aws::cold_start().await?;
        Ok(Self {
            store: shared::aws::store_from_env(&sdk)?,
            pusher: shared::aws::pusher_from_env(&sdk)?,
            events: shared::aws::publisher_from_env(&sdk)?,
            channels: ChannelTable::from_env()?,
            max_receives: u32::try_from(shared::config::env_u64(
                "INBOUND_MAX_RECEIVES",
                u64::from(DEFAULT_MAX_RECEIVES),
            )?)?,
        })
    }
}

pub async fn handle<S, P, E>(
    state: &State<S, P, E>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error>
where
    S: ChatStore
        + ConnectionStore
        + ExecutiveStore
        + RoutingStore
        + shared::store::CustomerStore
        + shared::store::OutboxStore,
    P: Pusher,
    E: EventPublisher,
{
    let inbound = Inbound {
        store: &state.store,
        pusher: &state.pusher,
        events: &state.events,
        channels: &state.channels,
    };
    let mut failed_groups: HashSet<String> = HashSet::new();
    let mut failures = Vec::new();
    for record in event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        let group = shared::aws::sqs_event::group_id(&record);
        let receives = shared::aws::sqs_event::receive_count(&record);
        // FIFO order: once a customer's message fails, their later ones in
        // this batch wait for it rather than overtake it.
        if failed_groups.contains(&group) {
            failures.push(id);
            continue;
        }
        let result = match serde_json::from_str::<QueuedEvent>(record.body.as_deref().unwrap_or(""))
        {
            Ok(queued) => inbound.process(&queued).await.map_err(|e| format!("{e:#}")),
            Err(e) => Err(format!("queued body is not an inbound event: {e}")),
        };
        match result {
            Ok(_) => {}
            Err(reason) if receives >= state.max_receives => {
                tracing::error!(
                    sqs_message_id = %id,
                    message_group = %group,
                    receive_count = receives,
                    reason = %reason,
                    "inbound event failed for the last time; moving to the dead-letter queue"
                );
                failed_groups.insert(group);
                failures.push(id);
            }
            Err(reason) => {
                tracing::warn!(
                    sqs_message_id = %id,
                    message_group = %group,
                    receive_count = receives,
                    max_receives = state.max_receives,
                    reason = %reason,
                    "inbound event failed; it will be retried"
                );
                failed_groups.insert(group);
                failures.push(id);
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    Ok(response)
}
