//! The inbound SQS consumer: one FIFO batch at a time, each event stored
//! once and pushed live. Failures are reported per message (partial batch
//! response) so one poison message never holds back other customers.

use domain::chat::rating::RatingSettings;
use domain::config::Env;
use domain::discount::DiscountRouteStore;
use domain::discount::bot::{BotSeeds, BotStore};
use domain::replies::ResponseCache;
use domain::sending::{MessageCatalog, OutboundQueue};
use domain::settings::SettingsStore;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent};

use domain::channel::ChannelTable;
use domain::chat::ChatStore;
use domain::events::{Collected, EventOutbox, EventPublisher, publish_pending_soon};
use domain::executive::ExecutiveStore;
use domain::inbound::{Inbound, QueuedEvent};
use domain::protocol::{ConnectionStore, Pusher};
use domain::routing::assignment::RoutingStore;

pub struct State<S, P, E, Q> {
    pub store: S,
    pub pusher: P,
    pub events: E,
    /// The send queue, for the discount bot's answers.
    pub outbox: Q,
    /// The predefined texts (`MESSAGES_FILE`, else the embedded ones).
    pub messages: MessageCatalog,
    /// The discount bot's routes and settings as seeded (the stored ones
    /// win once they exist).
    pub bot: BotSeeds,
    pub channels: ChannelTable,
    /// The queue's redrive limit (`INBOUND_MAX_RECEIVES`), so the last
    /// failure can say that the message now goes to the DLQ.
    pub max_receives: u32,
    /// Who is asked to rate a resolution (`AUTOMATIONS_FILE`, else the
    /// embedded settings; an admin's stored change wins).
    pub rating: RatingSettings,
}

/// The template's default `InboundMaxReceiveCount`.
pub const DEFAULT_MAX_RECEIVES: u32 = 5;

impl
    State<
        adapters::DynamoStore,
        adapters::ApiGwPusher,
        adapters::EventBridgePublisher,
        adapters::SqsOutboundQueue,
    >
{
    /// The function as deployed: settings read once from `env`, clients
    /// from `aws` (built once per cold start; the local gateway passes its
    /// own with the template's environment).
    pub fn from_env(env: &Env, aws: &adapters::Aws) -> anyhow::Result<Self> {
        Ok(Self {
            store: adapters::DynamoStore::from_env(env, aws)?,
            pusher: adapters::ApiGwPusher::from_env(env, aws)?,
            events: adapters::EventBridgePublisher::from_env(env, aws)?,
            outbox: adapters::SqsOutboundQueue::from_env(env, aws)?,
            messages: MessageCatalog::from_env(env)?,
            bot: BotSeeds::from_env(env)?,
            channels: ChannelTable::from_env(env)?,
            max_receives: env.u32("INBOUND_MAX_RECEIVES", DEFAULT_MAX_RECEIVES)?,
            rating: RatingSettings::from_env(env)?,
        })
    }
}

impl<S, P, E, Q> State<S, P, E, Q> {
    /// The inbound rules over this function's parts, publishing into
    /// `events`.
    fn inbound<'a>(&'a self, events: &'a Collected) -> Inbound<'a, S, P, Collected, Q> {
        Inbound {
            store: &self.store,
            pusher: &self.pusher,
            events,
            channels: &self.channels,
            rating: &self.rating,
            outbox: &self.outbox,
            messages: &self.messages,
            bot: &self.bot,
        }
    }
}

pub async fn handle<S, P, E, Q>(
    state: &State<S, P, E, Q>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error>
where
    S: ChatStore
        + ConnectionStore
        + ExecutiveStore
        + RoutingStore
        + domain::customer::CustomerStore
        + domain::sending::OutboxStore
        + SettingsStore
        + BotStore
        + DiscountRouteStore
        + ResponseCache
        + EventOutbox,
    P: Pusher,
    E: EventPublisher,
    Q: OutboundQueue,
{
    // FIFO order holds within a message group (one customer): groups run
    // side by side, each group's records one after another.
    let groups = adapters::sqs_event::by_group(event.payload.records);
    let run_group = async |group: String, records: Vec<SqsMessage>| {
        let mut outcome = GroupOutcome::default();
        for record in records {
            let id = record.message_id.clone().unwrap_or_default();
            // FIFO order: once a customer's message fails, their later
            // ones in this batch wait for it rather than overtake it.
            if !outcome.failures.is_empty() {
                outcome.failures.push(id);
                continue;
            }
            let receives = adapters::sqs_event::receive_count(&record);
            let collected = Collected::default();
            let result =
                match serde_json::from_str::<QueuedEvent>(record.body.as_deref().unwrap_or("")) {
                    // The record's events are kept; the batch's are
                    // published together once every group is done.
                    Ok(queued) => state
                        .inbound(&collected)
                        .process(&queued)
                        .await
                        .map_err(|e| format!("{e:#}")),
                    Err(e) => Err(format!("queued body is not an inbound event: {e}")),
                };
            match result {
                Ok(done) => {
                    if let domain::inbound::Outcome::Stored {
                        events_pending: true,
                        ..
                    } = done
                    {
                        outcome.events_pending = true;
                    }
                    outcome.published.push((id, collected.take()));
                }
                Err(reason) if receives >= state.max_receives => {
                    tracing::error!(
                        sqs_message_id = %id,
                        message_group = %group,
                        receive_count = receives,
                        reason = %reason,
                        "inbound event failed for the last time; moving to the dead-letter queue"
                    );
                    outcome.failures.push(id);
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
                    outcome.failures.push(id);
                }
            }
        }
        outcome
    };
    let outcomes = futures_util::future::join_all(
        groups
            .into_iter()
            .map(|(group, records)| run_group(group, records)),
    )
    .await;
    let events_pending = outcomes.iter().any(|o| o.events_pending);
    let mut failures = Vec::new();
    let mut published = Vec::new();
    for o in outcomes {
        failures.extend(o.failures);
        published.extend(o.published.into_iter().filter(|(_, e)| !e.is_empty()));
    }
    let events: Vec<_> = published
        .iter()
        .flat_map(|(_, e)| e.iter().cloned())
        .collect();
    if !events.is_empty()
        && let Err(e) = state.events.publish(&events).await
    {
        // Stored but not announced: those records go again, and a
        // redelivered message that is stored already is announced again.
        tracing::warn!(error = ?e, events = events.len(),
            "could not publish the batch's events; its messages will be redelivered");
        failures.extend(published.into_iter().map(|(id, _)| id));
    }
    // Assignments this batch made left `chat.assigned` events pending.
    if events_pending {
        publish_pending_soon(&state.store, &state.events).await;
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

/// What one message group of a batch came to.
#[derive(Default)]
struct GroupOutcome {
    /// Records to hand back to the queue (the failed one and the group's
    /// later ones, which must not overtake it).
    failures: Vec<String>,
    events_pending: bool,
    /// Each record handled, with the events it published (kept, not sent).
    published: Vec<(String, Vec<domain::events::DomainEvent>)>,
}
