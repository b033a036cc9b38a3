//! Counter repair, on an EventBridge schedule (every five minutes):
//! recounts the dashboard counters and each executive's open chats by
//! index, repairs a difference seen on two runs in a row (pushing
//! `dashboard_stats` when the counters changed), and puts offline the
//! executives left online without a live connection (see
//! `shared::repair`).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent};

use shared::repair::RepairReport;
use shared::store::{ChatStore, ConnectionStore, ExecutiveStore, Pusher, RoutingStore};

pub struct State<S, P> {
    pub store: S,
    pub pusher: P,
}

impl State<shared::aws::DynamoStore, shared::aws::ApiGwPusher> {
    pub async fn from_env() -> anyhow::Result<Self> {
        let sdk = shared::aws::cold_start().await?;
        Ok(Self {
            store: shared::aws::store_from_env(&sdk)?,
            pusher: shared::aws::pusher_from_env(&sdk)?,
        })
    }
}

pub async fn handle<S, P>(
    state: &State<S, P>,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<RepairReport, Error>
where
    S: ChatStore + ConnectionStore + ExecutiveStore + RoutingStore,
    P: Pusher,
{
    let report = shared::repair::run(&state.store, &state.pusher)
        .await
        .map_err(|e| {
            tracing::error!(error = ?e, "counter repair failed; Lambda retries it");
            e
        })?;
    tracing::info!(event_id = ?event.payload.id, drifting = ?report.drifting, repaired = ?report.repaired,
        went_offline = report.went_offline, "counter repair done");
    Ok(report)
}
