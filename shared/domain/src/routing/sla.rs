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

use crate::chat::ChatId;
use crate::error::QueueError;
use serde::{Deserialize, Serialize};
use std::future::Future;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::channel::Stakeholder;
use crate::chat::{Chat, ChatStatus};
use crate::customer::SenderId;
use crate::error::StoreError;
use crate::protocol::fanout::push_to_rooms;
use crate::protocol::frame;
use crate::protocol::{ConnectionStore, Pusher, Room};
use crate::sending::{AttemptOutcome, MessageCatalog, SendError, Sender, alert_callback_data};

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
    pub fn from_env(env: &crate::config::Env) -> Result<Self, crate::config::ConfigError> {
        use crate::config::ConfigError;
        let number = |name: &str| -> Result<Option<SenderId>, ConfigError> {
            env.get(name)
                .map(|v| SenderId::parse(v).map_err(|e| ConfigError::invalid(name, e)))
                .transpose()
        };
        Self::new(
            env.u64("SLA_ALERT_AFTER_SECS", DEFAULT_ALERT_AFTER_SECS)?,
            env.u64("SLA_ESCALATE_AFTER_SECS", DEFAULT_ESCALATE_AFTER_SECS)?,
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
    /// Pending domain events put on the bus (set by the scheduled function,
    /// `crate::events::publish_pending`).
    pub events_published: usize,
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
            subject: AlertSubject::Sla {
                chat_id: chat.chat_id.clone(),
                level,
            },
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

/// How far past its deadline a waiting customer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlaLevel {
    /// `SLA_ALERT_AFTER_SECS`: the team's alert group hears of it.
    Alert,
    /// `SLA_ESCALATE_AFTER_SECS`: the shift lead hears of it.
    Escalation,
}

impl SlaLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaLevel::Alert => "alert",
            SlaLevel::Escalation => "escalation",
        }
    }
}

/// What a staff alert is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertSubject {
    /// A customer waiting past the SLA.
    Sla { chat_id: ChatId, level: SlaLevel },
    /// A ride about to start (see [`crate::rides`]).
    Ride { booking_id: String },
}

impl std::fmt::Display for AlertSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AlertSubject::Sla { chat_id, level } => {
                write!(f, "SLA {} of chat {chat_id}", level.as_str())
            }
            AlertSubject::Ride { booking_id } => write!(f, "ride {booking_id}"),
        }
    }
}

/// A WhatsApp alert to staff, stored once (with the SLA mark that raised
/// it, or by its ride) and sent through the send queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertJob {
    /// `{chat_id}#{episode}#{level}` (one per episode and level) or
    /// `ride#{booking_id}#{recipient}` (one per ride and recipient).
    pub alert_id: String,
    pub subject: AlertSubject,
    /// The channel it is sent from (the chat's, or the configured one).
    pub channel: crate::channel::ChannelId,
    pub to: String,
    pub message: crate::outbound::Outbound,
}

/// What claiming an alert for sending found.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertClaim {
    Claimed(Box<AlertJob>),
    /// Sent or failed already.
    Finished,
    Busy(DateTime<Utc>),
    Missing,
}

/// What one attempt at sending an alert came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertOutcome<'a> {
    /// The provider took it: its message id.
    Sent(&'a str),
    /// Refused for good, or the last attempt failed.
    Failed(&'a str),
    /// Failed for now; the queue brings it back.
    Retry(&'a str),
}

/// The SLA's storage: waiting episodes, exactly-once marks, staff alerts.
pub trait SlaStore: Send + Sync {
    /// Active chats of a team whose customer has waited since at or before
    /// `started_by`, longest waiting first.
    fn waiting_since(
        &self,
        team: Stakeholder,
        started_by: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Chat>, StoreError>> + Send;

    /// Marks the chat's current episode (`chat.wait_started_at`) as alerted
    /// / escalated, stores `alert` and counts the breach, atomically —
    /// unless that episode was marked already or has ended: then `false`.
    fn mark_sla(
        &self,
        chat: &Chat,
        level: SlaLevel,
        alert: Option<&AlertJob>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores an alert not raised by an SLA mark (a ride's), unless one
    /// with its id exists; whether this call stored it.
    fn store_alert(
        &self,
        alert: &AlertJob,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn claim_alert(
        &self,
        alert_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<AlertClaim, StoreError>> + Send;

    /// What one send attempt came to; the lease ends.
    fn finish_alert(
        &self,
        alert_id: &str,
        outcome: AlertOutcome<'_>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Alerts still unsent that were stored before `before` (their queue
    /// entry may have been lost): ids, oldest first.
    fn unsent_alerts(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Service metrics of these days: per team, and per team × executive.
    fn service_stats(
        &self,
        days: &[chrono::NaiveDate],
    ) -> impl Future<Output = Result<Vec<crate::metrics::ServiceRow>, StoreError>> + Send;
}

/// The send queue's second kind of entry: staff alerts.
pub trait AlertQueue: Send + Sync {
    fn enqueue_alert(&self, alert_id: &str) -> impl Future<Output = Result<(), QueueError>> + Send;
}

impl<S, D, P> crate::sending::SendWorker<'_, S, D, P>
where
    S: SlaStore,
    D: Sender,
{
    /// One attempt at sending a staff alert (same lease, backoff and
    /// attempt limit as chat messages).
    pub async fn deliver_alert(
        &self,
        alert_id: &str,
        attempt: u32,
        jitter: f64,
    ) -> Result<AttemptOutcome, StoreError> {
        let now = Utc::now();
        let lease = self.settings.lease_length();
        let job = match self.store.claim_alert(alert_id, now, now + lease).await? {
            AlertClaim::Claimed(job) => job,
            AlertClaim::Finished => return Ok(AttemptOutcome::Done),
            AlertClaim::Busy(until) => return Ok(AttemptOutcome::after_lease(until, now)),
            AlertClaim::Missing => {
                tracing::error!(
                    alert_id,
                    "queued alert names no stored alert; dropping the entry"
                );
                return Ok(AttemptOutcome::Done);
            }
        };
        let Some(channel) = self.channels.get(job.channel.as_str()) else {
            let reason = format!("no channel {}", job.channel);
            self.store
                .finish_alert(alert_id, AlertOutcome::Failed(&reason), Utc::now())
                .await?;
            return Ok(AttemptOutcome::Done);
        };
        let callback = alert_callback_data(alert_id);
        let sent = self
            .sender
            .send(channel, &job.to, &job.message, &callback)
            .await;
        let (outcome, delivered) = match sent {
            Ok(wa_id) => {
                tracing::info!(alert_id, subject = %job.subject, wa_message_id = %wa_id, "staff alert sent");
                self.store
                    .finish_alert(alert_id, AlertOutcome::Sent(&wa_id), Utc::now())
                    .await?;
                return Ok(AttemptOutcome::Done);
            }
            Err(SendError::Permanent(reason)) => (reason, AttemptOutcome::Done),
            // Alerts have no callback to confirm them: an unknown outcome is
            // tried again like a transient failure (staff may get it twice).
            Err(SendError::Ambiguous(reason)) if attempt < self.settings.max_attempts => {
                self.store
                    .finish_alert(alert_id, AlertOutcome::Retry(&reason), Utc::now())
                    .await?;
                let wait = self.settings.backoff.delay(attempt, jitter, None);
                tracing::warn!(alert_id, reason = %reason, attempt, "staff alert not sent; will retry");
                return Ok(AttemptOutcome::RetryIn(wait));
            }
            Err(SendError::Retryable {
                reason,
                retry_after,
            }) if attempt < self.settings.max_attempts => {
                self.store
                    .finish_alert(alert_id, AlertOutcome::Retry(&reason), Utc::now())
                    .await?;
                let wait = self.settings.backoff.delay(attempt, jitter, retry_after);
                tracing::warn!(alert_id, reason = %reason, attempt, "staff alert not sent; will retry");
                return Ok(AttemptOutcome::RetryIn(wait));
            }
            Err(SendError::Retryable { reason, .. } | SendError::Ambiguous(reason)) => (
                format!("gave up after {attempt} attempts: {reason}"),
                AttemptOutcome::GaveUp,
            ),
        };
        tracing::error!(alert_id, subject = %job.subject, reason = %outcome, "staff alert failed");
        self.store
            .finish_alert(alert_id, AlertOutcome::Failed(&outcome), Utc::now())
            .await?;
        Ok(delivered)
    }
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
