//! The SLA scan, on an EventBridge schedule (every minute): customers
//! waiting past `SLA_ALERT_AFTER_SECS` / `SLA_ESCALATE_AFTER_SECS` raise one
//! `sla_alert` and one WhatsApp alert per waiting episode and level (see
//! `shared::sla`). It also gives waiting chats to executives with room, as
//! a safety net behind the event-driven assignment. A failed run returns an
//! error so Lambda retries it; a retried or overlapping run raises nothing
//! twice.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};

use shared::assignment;
use shared::channel::Stakeholder;
use shared::sending::MessageCatalog;
use shared::sla::{ScanReport, SlaSettings};
use shared::store::{
    AlertQueue, ChatStore, ConnectionStore, ExecutiveStore, OutboundQueue, OutboxStore, Pusher,
    RoutingStore, SlaStore,
};

pub struct State<S, P, Q> {
    pub store: S,
    pub pusher: P,
    pub queue: Q,
    pub messages: MessageCatalog,
    pub settings: SlaSettings,
}

impl State<shared::aws::DynamoStore, shared::aws::ApiGwPusher, shared::aws::SqsOutboundQueue> {
    pub async fn from_env() -> anyhow::Result<Self> {
        let sdk = shared::aws::cold_start().await?;
        Ok(Self {
            store: shared::aws::store_from_env(&sdk)?,
            pusher: shared::aws::pusher_from_env(&sdk)?,
            queue: shared::aws::outbound_queue_from_env(&sdk)?,
            messages: MessageCatalog::from_env()?,
            settings: SlaSettings::from_env()?,
        })
    }
}

pub async fn handle<S, P, Q>(
    state: &State<S, P, Q>,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<ScanReport, Error>
where
    S: ChatStore + ConnectionStore + ExecutiveStore + RoutingStore + SlaStore + OutboxStore,
    P: Pusher,
    Q: AlertQueue + OutboundQueue,
{
    let scheduled = event.payload.time;
    let now = Utc::now();
    let mut report = shared::sla::scan(
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
    let sends = shared::sending::requeue_stuck(&state.store, &state.queue, &state.pusher, now)
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
    tracing::info!(event_id = ?event.payload.id, scheduled = ?scheduled, examined = report.examined,
        alerts = report.alerts, escalations = report.escalations, requeued = report.requeued,
        sends_requeued = report.sends_requeued, sends_failed = report.sends_failed, assigned, "SLA scan done");
    Ok(report)
}
