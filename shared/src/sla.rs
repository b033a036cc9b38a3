//! The SLA scan (SPEC §8), run every minute by the schedule.
//!
//! A waiting episode starts with the first customer message after the last
//! agent reply (`Chat::wait_started_at`, kept with a sparse index of
//! waiting chats) and ends with an agent reply or the chat being resolved.
//! At `alert_after` the chat gets one `sla_alert` (its team's dashboards
//! and watchers, the assignee among them) and one WhatsApp alert to the
//! alert group; at `escalate_after` one escalation to the shift lead.
//! "Once" is a conditional mark on the chat naming the episode, written
//! with the alert itself: overlapping or retried scans lose the condition.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::channel::Stakeholder;
use crate::chat::{Chat, ChatStatus};
use crate::fanout::push_to_rooms;
use crate::protocol::frame;
use crate::sending::MessageCatalog;
use crate::store::{
    AlertJob, AlertQueue, ConnectionStore, Pusher, Room, SlaLevel, SlaStore, StoreError,
};
use crate::whatsapp::SenderId;

/// Default `SLA_ALERT_AFTER_SECS`.
pub const DEFAULT_ALERT_AFTER_SECS: u64 = 180;
/// Default `SLA_ESCALATE_AFTER_SECS`.
pub const DEFAULT_ESCALATE_AFTER_SECS: u64 = 600;
/// Waiting chats one scan examines per team (oldest first).
const SCAN_LIMIT: usize = 1000;
/// An alert still unsent this long after it was stored is queued again
/// (its first queue entry was lost or is stuck).
const RESEND_AFTER: chrono::Duration = chrono::Duration::minutes(2);
/// The alert templates (`config/messages.yaml`, `internal: true`).
pub const ALERT_TEMPLATE: &str = "sla_alert";
pub const ESCALATION_TEMPLATE: &str = "sla_escalation";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlaSettings {
    pub alert_after: Duration,
    pub escalate_after: Duration,
    /// `SLA_ALERT_GROUP_NUMBER`: the internal alert group's WhatsApp number.
    pub alert_group: Option<SenderId>,
    /// `SLA_SHIFT_LEAD_NUMBER`: who escalations go to.
    pub shift_lead: Option<SenderId>,
}

impl Default for SlaSettings {
    fn default() -> Self {
        Self {
            alert_after: Duration::from_secs(DEFAULT_ALERT_AFTER_SECS),
            escalate_after: Duration::from_secs(DEFAULT_ESCALATE_AFTER_SECS),
            alert_group: None,
            shift_lead: None,
        }
    }
}

impl SlaSettings {
    /// `SLA_ALERT_AFTER_SECS`, `SLA_ESCALATE_AFTER_SECS`,
    /// `SLA_ALERT_GROUP_NUMBER`, `SLA_SHIFT_LEAD_NUMBER` (numbers optional:
    /// without one, that level is pushed to dashboards only).
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        use crate::config::ConfigError;
        let number = |name: &str| -> Result<Option<SenderId>, ConfigError> {
            match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => SenderId::parse(v.trim())
                    .map(Some)
                    .map_err(|e| ConfigError::invalid(name, e)),
                _ => Ok(None),
            }
        };
        Self::new(
            crate::config::env_u64("SLA_ALERT_AFTER_SECS", DEFAULT_ALERT_AFTER_SECS)?,
            crate::config::env_u64("SLA_ESCALATE_AFTER_SECS", DEFAULT_ESCALATE_AFTER_SECS)?,
            number("SLA_ALERT_GROUP_NUMBER")?,
            number("SLA_SHIFT_LEAD_NUMBER")?,
        )
        .map_err(|e| ConfigError::invalid("SLA_ESCALATE_AFTER_SECS", e))
    }

    pub fn new(
        alert_after_secs: u64,
        escalate_after_secs: u64,
        alert_group: Option<SenderId>,
        shift_lead: Option<SenderId>,
    ) -> Result<Self, String> {
        if alert_after_secs == 0 || escalate_after_secs <= alert_after_secs {
            return Err(format!(
                "SLA thresholds must satisfy 0 < alert ({alert_after_secs} s) < escalation ({escalate_after_secs} s)"
            ));
        }
        Ok(Self {
            alert_after: Duration::from_secs(alert_after_secs),
            escalate_after: Duration::from_secs(escalate_after_secs),
            alert_group,
            shift_lead,
        })
    }

    fn threshold(&self, level: SlaLevel) -> chrono::Duration {
        let d = match level {
            SlaLevel::Alert => self.alert_after,
            SlaLevel::Escalation => self.escalate_after,
        };
        chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    }

    fn recipient(&self, level: SlaLevel) -> Option<&SenderId> {
        match level {
            SlaLevel::Alert => self.alert_group.as_ref(),
            SlaLevel::Escalation => self.shift_lead.as_ref(),
        }
    }
}

/// What one scan did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub examined: usize,
    pub alerts: usize,
    pub escalations: usize,
    /// Unsent alerts queued again.
    pub requeued: usize,
    /// Overdue chat messages queued again / given up on (set by the
    /// scheduled function, `crate::sending::requeue_stuck`).
    pub sends_requeued: usize,
    pub sends_failed: usize,
}

/// The WhatsApp alert for `chat` at `level`, if that level has a recipient.
pub fn alert_job(
    catalog: &MessageCatalog,
    settings: &SlaSettings,
    chat: &Chat,
    episode: DateTime<Utc>,
    level: SlaLevel,
    now: DateTime<Utc>,
) -> Option<AlertJob> {
    let to = settings.recipient(level)?;
    let name = match level {
        SlaLevel::Alert => ALERT_TEMPLATE,
        SlaLevel::Escalation => ESCALATION_TEMPLATE,
    };
    let customer = match &chat.customer_name {
        Some(n) => format!("{n} ({})", chat.customer),
        None => chat.customer.to_string(),
    };
    let params = vec![
        customer,
        chat.customer_type.as_str().to_owned(),
        (now - episode).num_minutes().max(1).to_string(),
        chat.assigned_to
            .as_ref()
            .map_or_else(|| "unassigned".to_owned(), ToString::to_string),
    ];
    match catalog.internal_template(name, params) {
        Ok(message) => Some(AlertJob {
            alert_id: format!(
                "{}#{}#{}",
                chat.chat_id,
                episode.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                level.as_str()
            ),
            chat_id: chat.chat_id.clone(),
            level,
            channel: chat.channel.clone(),
            to: to.to_string(),
            message,
        }),
        Err(e) => {
            tracing::error!(chat_id = %chat.chat_id, template = name, error = %e,
                "SLA alert template is not configured; pushing to dashboards only");
            None
        }
    }
}

/// One scan over every team's waiting customers.
pub async fn scan<S, P, Q>(
    store: &S,
    pusher: &P,
    queue: &Q,
    catalog: &MessageCatalog,
    settings: &SlaSettings,
    now: DateTime<Utc>,
) -> Result<ScanReport, StoreError>
where
    S: SlaStore + ConnectionStore,
    P: Pusher,
    Q: AlertQueue,
{
    let mut report = ScanReport::default();
    let first_due = now - settings.threshold(SlaLevel::Alert);
    for team in Stakeholder::SERVED {
        let waiting = store.waiting_since(team, first_due, SCAN_LIMIT).await?;
        for chat in waiting {
            report.examined += 1;
            let Some(episode) = chat.wait_started_at else {
                continue;
            };
            if chat.status != ChatStatus::Active {
                continue;
            }
            for level in [SlaLevel::Alert, SlaLevel::Escalation] {
                let marked = match level {
                    SlaLevel::Alert => chat.sla_alerted_for,
                    SlaLevel::Escalation => chat.sla_escalated_for,
                };
                if marked == Some(episode) || episode + settings.threshold(level) > now {
                    continue;
                }
                let job = alert_job(catalog, settings, &chat, episode, level, now);
                if !store.mark_sla(&chat, level, job.as_ref(), now).await? {
                    // Another scan raised it, or the episode just ended.
                    continue;
                }
                match level {
                    SlaLevel::Alert => report.alerts += 1,
                    SlaLevel::Escalation => report.escalations += 1,
                }
                tracing::warn!(chat_id = %chat.chat_id, level = level.as_str(), wait_started_at = %episode,
                    assigned_to = ?chat.assigned_to.as_ref().map(|a| a.as_str()), "customer waiting past the SLA");
                push_alert(store, pusher, &chat, episode, level, settings, now).await;
                if let Some(job) = job
                    && let Err(e) = queue.enqueue_alert(&job.alert_id).await
                {
                    tracing::warn!(alert_id = %job.alert_id, error = ?e,
                        "alert not queued now; a later scan queues it again");
                }
            }
        }
    }
    for id in store.unsent_alerts(now - RESEND_AFTER, 100).await? {
        match queue.enqueue_alert(&id).await {
            Ok(()) => report.requeued += 1,
            Err(e) => {
                tracing::warn!(alert_id = %id, error = ?e, "unsent alert could not be queued again")
            }
        }
    }
    Ok(report)
}

/// `sla_alert` to the chat's team dashboards (the assignee among them)
/// and watchers, with the wait's start for the countdown.
async fn push_alert<S, P>(
    store: &S,
    pusher: &P,
    chat: &Chat,
    episode: DateTime<Utc>,
    level: SlaLevel,
    settings: &SlaSettings,
    now: DateTime<Utc>,
) where
    S: ConnectionStore,
    P: Pusher,
{
    let body = json!({
        "chat_id": chat.chat_id,
        "customer": chat.customer,
        "customer_name": chat.customer_name,
        "customer_type": chat.customer_type,
        "assigned_to": chat.assigned_to,
        "level": level,
        "wait_started_at": episode,
        "waited_secs": (now - episode).num_seconds().max(0),
        "alert_after_secs": settings.alert_after.as_secs(),
        "escalate_after_secs": settings.escalate_after.as_secs(),
        "escalates_at": episode + settings.threshold(SlaLevel::Escalation),
    });
    let rooms = [
        Room::Dashboard(chat.customer_type),
        Room::Chat(chat.chat_id.clone()),
    ];
    push_to_rooms(store, pusher, &rooms, &frame("sla_alert", body, None)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_must_be_ordered() {
        assert!(SlaSettings::new(180, 600, None, None).is_ok());
        assert!(SlaSettings::new(0, 600, None, None).is_err());
        assert!(SlaSettings::new(600, 600, None, None).is_err());
    }

    #[test]
    fn alerts_name_the_customer_team_wait_and_owner() {
        let catalog = MessageCatalog::embedded().unwrap();
        let settings = SlaSettings::new(
            180,
            600,
            Some(SenderId::parse("910000000001").unwrap()),
            None,
        )
        .unwrap();
        let t0 = Utc::now();
        let mut chat = Chat::open(
            SenderId::parse("919800000002").unwrap(),
            Some("Ravi".into()),
            Stakeholder::Partner,
            crate::channel::ChannelId::parse("9099039188").unwrap(),
            t0,
        );
        chat.wait_started_at = Some(t0);
        let now = t0 + chrono::Duration::minutes(4);
        let job = alert_job(&catalog, &settings, &chat, t0, SlaLevel::Alert, now).unwrap();
        assert_eq!(job.to, "910000000001");
        let crate::outbound::Outbound::Template { name, params, .. } = &job.message else {
            panic!("not a template: {:?}", job.message);
        };
        assert_eq!(name, ALERT_TEMPLATE);
        assert_eq!(
            params.body,
            ["Ravi (919800000002)", "Partner", "4", "unassigned"]
        );
        // No shift lead configured: escalations reach dashboards only.
        assert!(alert_job(&catalog, &settings, &chat, t0, SlaLevel::Escalation, now).is_none());
    }
}
