//! Counter repair, on an EventBridge schedule (every five minutes):
//! recounts the dashboard counters and each executive's open chats by
//! index, repairs a difference seen on two runs in a row (pushing
//! `dashboard_stats` when the counters changed), and puts offline the
//! executives left online without a live connection (see
//! `domain::routing::repair`).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use domain::config::Env;
use lambda_runtime::{Error, LambdaEvent};

use domain::chat::ChatStore;
use domain::executive::ExecutiveStore;
use domain::protocol::{ConnectionStore, Pusher};
use domain::routing::assignment::RoutingStore;
use domain::routing::repair::RepairReport;

pub struct State<S, P> {
    pub store: S,
    pub pusher: P,
}

impl State<adapters::DynamoStore, adapters::ApiGwPusher> {
    /// The function as deployed: settings read once from `env`, clients
    /// from `aws` (built once per cold start; the local gateway passes its
    /// own with the template's environment).
    pub fn from_env(env: &Env, aws: &adapters::Aws) -> anyhow::Result<Self> {
        Ok(Self {
            store: adapters::DynamoStore::from_env(env, aws)?,
            pusher: adapters::ApiGwPusher::from_env(env, aws)?,
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
    let report = domain::routing::repair::run(&state.store, &state.pusher)
        .await
        .map_err(|e| {
            tracing::error!(error = ?e, "counter repair failed; Lambda retries it");
            e
        })?;
    tracing::info!(event_id = ?event.payload.id, drifting = ?report.drifting, repaired = ?report.repaired,
        went_offline = report.went_offline, connections_closed = report.connections_closed, "counter repair done");
    Ok(report)
}
