//! Booking alerts, on an EventBridge schedule (every hour): each upcoming
//! ride starting within the configured window is announced once to each
//! configured recipient, through the send queue (see
//! `domain::rides::booking_alerts`). A failed run returns an error so
//! Lambda retries it; a retried or overlapping run alerts nobody twice.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use domain::config::Env;
use lambda_runtime::{Error, LambdaEvent};

use domain::rides::{BookingAlertReport, RideSettings, RideStore};
use domain::routing::sla::{AlertQueue, SlaStore};
use domain::sending::MessageCatalog;
use domain::settings::SettingsStore;

pub struct State<S, Q> {
    pub store: S,
    pub queue: Q,
    pub messages: MessageCatalog,
    /// The seeded ride settings (an admin's stored ones win).
    pub rides: RideSettings,
}

impl State<adapters::DynamoStore, adapters::SqsOutboundQueue> {
    /// The function as deployed: settings read once from `env`, clients
    /// from `aws` (built once per cold start; the local gateway passes its
    /// own with the template's environment).
    pub fn from_env(env: &Env, aws: &adapters::Aws) -> anyhow::Result<Self> {
        Ok(Self {
            store: adapters::DynamoStore::from_env(env, aws)?,
            queue: adapters::SqsOutboundQueue::from_env(env, aws)?,
            messages: MessageCatalog::from_env(env)?,
            rides: RideSettings::from_env(env)?,
        })
    }
}

pub async fn handle<S, Q>(
    state: &State<S, Q>,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<BookingAlertReport, Error>
where
    S: RideStore + SlaStore + SettingsStore,
    Q: AlertQueue,
{
    let report = domain::rides::booking_alerts(
        &state.store,
        &state.queue,
        &state.messages,
        &state.rides,
        Utc::now(),
    )
    .await
    .map_err(|e| {
        tracing::error!(error = ?e, "booking alerts failed; Lambda retries the run");
        e
    })?;
    tracing::info!(event_id = ?event.payload.id, rides = report.rides, alerts = report.alerts,
        already = report.already, "booking alerts done");
    Ok(report)
}
