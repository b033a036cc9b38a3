//! Customers' rides (SPEC §7, bookings): the booking webhook keeps each
//! ride; chat lists show the customer's next upcoming or ongoing ride and
//! put the chats of customers riding soon first; an hourly job alerts the
//! configured staff of rides about to start, once per ride and recipient.
//!
//! Which hours count as "soon", and who is alerted with which template
//! from which channel, is data ([`RideSettings`], seeded from
//! `automations.yaml`, changed by admins).

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::{ChannelId, Stakeholder};
use crate::chat::{Chat, ChatStore};
use crate::config::{ConfigError, Env};
use crate::customer::CustomerStore;
use crate::customer::SenderId;
use crate::error::StoreError;
use crate::executive::ExecutiveId;
use crate::protocol::chat_list::{ListSpec, SoonChat};
use crate::routing::sla::{AlertJob, AlertQueue, AlertSubject, SlaStore};
use crate::sending::MessageCatalog;
use crate::settings::{Named, SettingsStore, in_force};

const EMBEDDED: &str = include_str!("../../config/automations.yaml");

/// How long after its start time a ride still counts as the customer's
/// current one (an ongoing ride, or an upcoming one running late).
pub const RIDE_LOOKBACK: Duration = Duration::hours(6);

/// The most rides one "riding soon" lookup considers (soonest first).
pub const SOON_MAX: usize = 100;

/// The most rides one booking-alert run handles (soonest first; the next
/// run takes the rest, each ride once).
pub const ALERT_RUN_MAX: usize = 500;

/// A ride that has not ended (`upcoming` or `ongoing`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ride {
    /// The customer's number in canonical form (`91…`).
    pub customer: String,
    pub booking_id: String,
    pub ride_datetime: DateTime<Utc>,
    pub ride_status: String,
}

impl Ride {
    /// Whether a ride with this status has not ended.
    pub fn is_active(status: &str) -> bool {
        matches!(status, "upcoming" | "ongoing")
    }
}

/// The ride a chat list shows: the customer's earliest ride that has not
/// ended and started at most [`RIDE_LOOKBACK`] ago.
pub fn next_ride(rides: &[Ride], now: DateTime<Utc>) -> Option<&Ride> {
    rides
        .iter()
        .filter(|r| Ride::is_active(&r.ride_status) && r.ride_datetime >= now - RIDE_LOOKBACK)
        .min_by(|a, b| (a.ride_datetime, &a.booking_id).cmp(&(b.ride_datetime, &b.booking_id)))
}

/// Booking alerts: who hears of rides about to start, how, and from where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingAlerts {
    /// An approved staff template (`internal: true` in messages.yaml) with
    /// `{{1}}` the customer, `{{2}}` the ride's time (IST), `{{3}}` the
    /// booking id.
    pub template: String,
    /// The channel the alerts are sent from.
    pub channel: ChannelId,
    /// WhatsApp numbers alerted (none: no alerts).
    pub recipients: Vec<String>,
    /// Rides starting within this many minutes of a run are alerted (at
    /// least an hour, so the hourly run misses none).
    pub within_minutes: u32,
}

/// Rides in chat lists and booking alerts: seeded from `automations.yaml`
/// (`AUTOMATIONS_FILE`); an admin's change is stored and wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RideSettings {
    /// Chats of customers with a ride starting within this many hours (or
    /// under way) come first in the active chat lists.
    pub soon_hours: u32,
    pub alerts: BookingAlerts,
}

#[derive(Deserialize)]
struct File {
    rides: RideSettings,
}

pub const MAX_SOON_HOURS: u32 = 72;
pub const MAX_RECIPIENTS: usize = 20;

impl RideSettings {
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let file: File = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        file.rides.validated()
    }

    /// The settings shipped with the code, or `AUTOMATIONS_FILE`'s.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        env.config_file("AUTOMATIONS_FILE", EMBEDDED, Self::from_yaml)
    }

    /// Refuses hours outside 1–72, an alert window outside 60–1440
    /// minutes, more than 20 recipients or one that is not a mobile number
    /// (10–15 digits; a 10-digit Indian number gets its 91).
    pub fn validated(mut self) -> Result<Self, String> {
        if !(1..=MAX_SOON_HOURS).contains(&self.soon_hours) {
            return Err(format!("rides.soon_hours must be 1 to {MAX_SOON_HOURS}"));
        }
        let a = &mut self.alerts;
        if !(60..=1440).contains(&a.within_minutes) {
            return Err("rides.alerts.within_minutes must be 60 to 1440".into());
        }
        if a.template.trim().is_empty() {
            return Err("rides.alerts.template must name an approved staff template".into());
        }
        if a.recipients.len() > MAX_RECIPIENTS {
            return Err(format!("rides.alerts.recipients: at most {MAX_RECIPIENTS}"));
        }
        for r in &mut a.recipients {
            let digits: String = r
                .chars()
                .filter(|c| !matches!(c, '+' | ' ' | '-'))
                .collect();
            if !(10..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "rides.alerts.recipients: `{}` is not a mobile number",
                    r.chars().take(32).collect::<String>()
                ));
            }
            *r = crate::customer::canonical_mobile(&digits);
        }
        a.recipients.sort();
        a.recipients.dedup();
        Ok(self)
    }

    /// The start times that count as riding soon at `now`.
    pub fn soon_window(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            now - RIDE_LOOKBACK,
            now + Duration::hours(i64::from(self.soon_hours)),
        )
    }
}

impl Named for RideSettings {
    const NAME: &'static str = "RIDES";
}

/// Where rides are kept (the booking webhook writes them; see
/// [`crate::customer::CustomerStore::put_ride`]).
pub trait RideStore: Send + Sync {
    /// Rides that have not ended starting in `from..=to`, soonest first,
    /// at most `limit`.
    fn active_rides(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Ride>, StoreError>> + Send;

    /// Each customer's rides that have not ended (customers without any
    /// absent).
    fn rides_of(
        &self,
        customers: &[SenderId],
    ) -> impl Future<Output = Result<HashMap<SenderId, Vec<Ride>>, StoreError>> + Send;
}

/// The chats of `spec` (an active list) whose customer has a ride that has
/// not ended starting in `window`: each customer's current chat with each
/// of `teams`, by the customer's earliest such ride, soonest first.
pub async fn riding_soon<S>(
    store: &S,
    teams: &[Stakeholder],
    spec: &ListSpec,
    me: &ExecutiveId,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<SoonChat>, StoreError>
where
    S: ChatStore + CustomerStore + RideStore,
{
    let rides = store.active_rides(window.0, window.1, SOON_MAX).await?;
    let mut first_ride: HashMap<SenderId, DateTime<Utc>> = HashMap::new();
    for ride in &rides {
        if let Ok(customer) = SenderId::parse(&ride.customer) {
            first_ride.entry(customer).or_insert(ride.ride_datetime);
        }
    }
    if first_ride.is_empty() {
        return Ok(Vec::new());
    }
    let pairs: Vec<(Stakeholder, SenderId)> = teams
        .iter()
        .flat_map(|t| first_ride.keys().map(move |c| (*t, c.clone())))
        .collect();
    let mut chats: Vec<Chat> = store
        .current_chats(&pairs)
        .await?
        .into_iter()
        .filter(|c| c.status == spec.status && spec.filters.matches_chat(c, me))
        .collect();
    if spec.filters.profile.is_some() {
        let mut kept = Vec::new();
        crate::protocol::chat_list::keep_profile_matches(store, spec, &mut chats, &mut kept)
            .await?;
        chats = kept;
    }
    let mut soon: Vec<SoonChat> = chats
        .into_iter()
        .filter_map(|c| first_ride.get(&c.customer).map(|at| (*at, c)))
        .collect();
    soon.sort_by(|a, b| (a.0, &a.1.chat_id).cmp(&(b.0, &b.1.chat_id)));
    Ok(soon)
}

/// What one booking-alert run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BookingAlertReport {
    /// Upcoming rides in the window.
    pub rides: usize,
    /// Alerts stored and queued this run (one per ride and recipient).
    pub alerts: usize,
    /// Alerts stored by an earlier run (not sent again).
    pub already: usize,
}

/// Alerts the configured recipients of every upcoming ride starting within
/// the window, once per ride and recipient: each alert is stored under
/// `ride#{booking_id}#{recipient}` only if absent, then goes through the
/// send queue like the SLA alerts (retries, and the SLA scan queues again
/// any alert whose queue entry was lost).
pub async fn booking_alerts<S, Q>(
    store: &S,
    queue: &Q,
    catalog: &MessageCatalog,
    seeded: &RideSettings,
    now: DateTime<Utc>,
) -> Result<BookingAlertReport, StoreError>
where
    S: RideStore + SlaStore + SettingsStore,
    Q: AlertQueue,
{
    let settings = in_force(store, seeded).await?;
    let a = &settings.alerts;
    let mut report = BookingAlertReport::default();
    if a.recipients.is_empty() {
        return Ok(report);
    }
    let until = now + Duration::minutes(i64::from(a.within_minutes));
    let rides = store.active_rides(now, until, ALERT_RUN_MAX).await?;
    for ride in rides.iter().filter(|r| r.ride_status == "upcoming") {
        report.rides += 1;
        let message = match catalog.internal_template(
            &a.template,
            vec![
                ride.customer.clone(),
                crate::protocol::views::ist(ride.ride_datetime),
                ride.booking_id.clone(),
            ],
        ) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(template = %a.template, error = %e, "booking alert template unusable; no alerts sent");
                return Ok(report);
            }
        };
        for to in &a.recipients {
            let job = AlertJob {
                alert_id: format!("ride#{}#{to}", ride.booking_id),
                subject: AlertSubject::Ride {
                    booking_id: ride.booking_id.clone(),
                },
                channel: a.channel.clone(),
                to: to.clone(),
                message: message.clone(),
            };
            if !store.store_alert(&job, now).await? {
                report.already += 1;
                continue;
            }
            report.alerts += 1;
            tracing::info!(alert_id = %job.alert_id, booking_id = %ride.booking_id,
                to = %crate::telemetry::Masked(to), "booking alert stored");
            if let Err(e) = queue.enqueue_alert(&job.alert_id).await {
                tracing::warn!(alert_id = %job.alert_id, error = ?e,
                    "booking alert not queued now; the SLA scan queues it again");
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap()
    }

    fn ride(id: &str, h: i64, status: &str) -> Ride {
        Ride {
            customer: "919800000001".into(),
            booking_id: id.into(),
            ride_datetime: at(h),
            ride_status: status.into(),
        }
    }

    #[test]
    fn the_next_ride_is_the_earliest_not_ended_and_not_long_past() {
        let now = at(0);
        let rides = [
            ride("late", -7, "upcoming"),
            ride("done", -1, "completed"),
            ride("now", -2, "ongoing"),
            ride("later", 5, "upcoming"),
        ];
        assert_eq!(
            next_ride(&rides, now).map(|r| r.booking_id.as_str()),
            Some("now")
        );
        assert_eq!(
            next_ride(&rides[3..], now).map(|r| r.booking_id.as_str()),
            Some("later")
        );
        assert_eq!(next_ride(&rides[..2], now), None);
    }

    #[test]
    fn shipped_settings_are_valid_and_bad_ones_refused() {
        let s = RideSettings::from_env(&Env::default()).expect("shipped ride settings");
        assert!(
            s.alerts.recipients.is_empty(),
            "nobody is alerted until configured"
        );
        let catalog = MessageCatalog::from_env(&Env::default()).unwrap();
        assert!(
            catalog
                .internal_template(&s.alerts.template, vec!["a".into(), "b".into(), "c".into()])
                .is_ok()
        );
        let mut numbers = s.clone();
        numbers.alerts.recipients = vec!["98765 43210".into(), "+919876543210".into()];
        assert_eq!(
            numbers.validated().unwrap().alerts.recipients,
            vec!["919876543210"],
            "canonical and deduplicated"
        );
        let mut bad = s.clone();
        bad.soon_hours = 0;
        assert!(bad.validated().is_err());
        let mut bad = s.clone();
        bad.alerts.within_minutes = 30;
        assert!(bad.validated().is_err());
        let mut bad = s;
        bad.alerts.recipients = vec!["call me".into()];
        assert!(bad.validated().is_err());
    }
}
