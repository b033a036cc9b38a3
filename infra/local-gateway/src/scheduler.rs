//! EventBridge schedules, locally: each scheduled function is invoked with
//! a real scheduled-event payload at its period (the template's rate, or
//! `LOCAL_SCHEDULE_PERIOD_SECS`). A run that fails is logged; the next one
//! comes at the next tick, as with a rule whose retries are exhausted.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::Gateway;
use crate::template::ScheduleSource;

/// The event EventBridge sends a function on a schedule rule.
pub fn scheduled_event(rule: &str, at: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": crate::REGION,
        "resources": [format!("arn:aws:events:{}:000000000000:rule/{rule}", crate::REGION)],
        "detail": {},
    })
}

pub async fn run(
    gw: Arc<Gateway>,
    schedule: ScheduleSource,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; a schedule's first run comes one period in.
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = ticks.tick() => {}
        }
        let event: EventBridgeEvent =
            match serde_json::from_value(scheduled_event(&schedule.rule, Utc::now())) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(error = %e, "scheduled event does not parse");
                    return;
                }
            };
        match gw.functions.invoke_schedule(&schedule.binary, event).await {
            Ok(report) => {
                tracing::debug!(function = %schedule.binary, %report, "scheduled run done")
            }
            Err(e) => {
                tracing::warn!(function = %schedule.binary, error = %e, "scheduled run failed")
            }
        }
    }
}
