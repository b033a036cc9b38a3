//! The SLA scan, on an EventBridge schedule (every minute): customers
//! waiting past `SLA_ALERT_AFTER_SECS` / `SLA_ESCALATE_AFTER_SECS` raise one
//! `sla_alert` and one WhatsApp alert per waiting episode and level (see
//! `domain::routing::sla`). It also gives waiting chats to executives with room, as
//! a safety net behind the event-driven assignment. A failed run returns an
//! error so Lambda retries it; a retried or overlapping run raises nothing
//! twice.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use domain::config::Env;
use lambda_runtime::{Error, LambdaEvent};

use domain::channel::Stakeholder;
use domain::chat::ChatStore;
use domain::events::{EventOutbox, EventPublisher};
use domain::executive::ExecutiveStore;
use domain::protocol::{ConnectionStore, Pusher};
use domain::routing::assignment;
use domain::routing::assignment::RoutingStore;
use domain::routing::sla::{AlertQueue, SlaStore};
use domain::routing::sla::{ScanReport, SlaSettings};
use domain::sending::MessageCatalog;
use domain::sending::{OutboundQueue, OutboxStore};

pub struct State<S, P, Q, E> {
    pub store: S,
    pub pusher: P,
    pub queue: Q,
    /// The domain event bus: the minute sweep publishes events left
    /// pending (by a failed publish, or by functions that do not publish).
    pub events: E,
    pub messages: MessageCatalog,
    pub settings: SlaSettings,
}

impl
    State<
        adapters::DynamoStore,
        adapters::ApiGwPusher,
        adapters::SqsOutboundQueue,
        adapters::EventBridgePublisher,
    >
{
    /// The function as deployed: settings read once from `env`, clients
    /// from `aws` (built once per cold start; the local gateway passes its
    /// own with the template's environment).
    pub fn from_env(env: &Env, aws: &adapters::Aws) -> anyhow::Result<Self> {
        Ok(Self {
            store: adapters::DynamoStore::from_env(env, aws)?,
            pusher: adapters::ApiGwPusher::from_env(env, aws)?,
            queue: adapters::SqsOutboundQueue::from_env(env, aws)?,
            events: adapters::EventBridgePublisher::from_env(env, aws)?,
            messages: MessageCatalog::from_env(env)?,
            settings: SlaSettings::from_env(env)?,
        })
    }
}

pub async fn handle<S, P, Q, E>(
    state: &State<S, P, Q, E>,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<ScanReport, Error>
where
    S: ChatStore
        + ConnectionStore
        + ExecutiveStore
        + RoutingStore
        + SlaStore
        + OutboxStore
        + EventOutbox,
    P: Pusher,
    Q: AlertQueue + OutboundQueue,
    E: EventPublisher,
{
    let scheduled = event.payload.time;
    let now = Utc::now();
    let mut report = domain::routing::sla::scan(
        &state.store,
        &state.pusher,
        &state.queue,
        &state.messages,
        &state.settings,
        now,
    )
    .await
    .map_err(|e| {
        tracing::error!(error = ?e, "SLA scan failed; Lambda retries it");
        e
    })?;
    let sends = domain::sending::requeue_stuck(&state.store, &state.queue, &state.pusher, now)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = ?e, "overdue sends not checked this run");
            Default::default()
        });
    report.sends_requeued = sends.requeued;
    report.sends_failed = sends.failed;
    let mut assigned = 0;
    for team in Stakeholder::SERVED {
        match assignment::drain(&state.store, &state.pusher, team).await {
            Ok(n) => assigned += n,
            Err(e) => {
                tracing::warn!(team = %team, error = ?e, "waiting chats not given out this run")
            }
        }
    }
    // Events the functions that do not publish left pending, and any a
    // failed publish left behind.
    report.events_published = domain::events::publish_pending(&state.store, &state.events)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = ?e, "pending domain events not published this run");
            0
        });
    tracing::info!(event_id = ?event.payload.id, scheduled = ?scheduled, examined = report.examined,
        alerts = report.alerts, escalations = report.escalations, requeued = report.requeued,
        sends_requeued = report.sends_requeued, sends_failed = report.sends_failed, assigned,
        events_published = report.events_published, "SLA scan done");
    Ok(report)
}
