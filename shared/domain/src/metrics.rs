//! Service metrics (SPEC §8): first-response and resolution times and SLA
//! breaches, counted per UTC day, team and executive in the same
//! transactions that make them happen, so they cannot drift from the chats.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::channel::Stakeholder;
use crate::executive::ExecutiveId;

/// The counters one day holds for one team (`executive: None`) or one
/// executive of a team.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceRow {
    pub team: Option<Stakeholder>,
    pub executive: Option<ExecutiveId>,
    pub counters: ServiceCounters,
}

/// Sums: averages are computed when reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServiceCounters {
    pub first_responses: i64,
    pub first_response_secs: i64,
    /// Agent answers that ended a later wait, and their waits' sum.
    pub next_responses: i64,
    pub next_response_secs: i64,
    pub resolutions: i64,
    pub resolution_secs: i64,
    pub sla_alerts: i64,
    pub sla_escalations: i64,
    /// Rated chats, the sum of their ratings, and how many of each score
    /// (index 0 is a 1).
    pub ratings: i64,
    pub rating_sum: i64,
    pub rating_counts: [i64; 5],
}

/// Counter names as stored.
pub const FIRST_RESPONSES: &str = "first_responses";
pub const FIRST_RESPONSE_SECS: &str = "first_response_secs";
pub const NEXT_RESPONSES: &str = "next_responses";
pub const NEXT_RESPONSE_SECS: &str = "next_response_secs";
pub const RESOLUTIONS: &str = "resolutions";
pub const RESOLUTION_SECS: &str = "resolution_secs";
pub const SLA_ALERTS: &str = "sla_alerts";
pub const SLA_ESCALATIONS: &str = "sla_escalations";
pub const RATINGS: &str = "ratings";
pub const RATING_SUM: &str = "rating_sum";
/// `rating_1` … `rating_5`: how many ratings of each score.
pub const RATING_COUNTS: [&str; 5] = ["rating_1", "rating_2", "rating_3", "rating_4", "rating_5"];

impl ServiceCounters {
    pub fn set(&mut self, name: &str, value: i64) {
        match name {
            FIRST_RESPONSES => self.first_responses = value,
            FIRST_RESPONSE_SECS => self.first_response_secs = value,
            NEXT_RESPONSES => self.next_responses = value,
            NEXT_RESPONSE_SECS => self.next_response_secs = value,
            RESOLUTIONS => self.resolutions = value,
            RESOLUTION_SECS => self.resolution_secs = value,
            SLA_ALERTS => self.sla_alerts = value,
            SLA_ESCALATIONS => self.sla_escalations = value,
            RATINGS => self.ratings = value,
            RATING_SUM => self.rating_sum = value,
            other => {
                if let Some(i) = RATING_COUNTS.iter().position(|n| *n == other) {
                    self.rating_counts[i] = value;
                }
            }
        }
    }

    pub fn add(&mut self, o: &ServiceCounters) {
        self.first_responses += o.first_responses;
        self.first_response_secs += o.first_response_secs;
        self.next_responses += o.next_responses;
        self.next_response_secs += o.next_response_secs;
        self.resolutions += o.resolutions;
        self.resolution_secs += o.resolution_secs;
        self.sla_alerts += o.sla_alerts;
        self.sla_escalations += o.sla_escalations;
        self.ratings += o.ratings;
        self.rating_sum += o.rating_sum;
        for (mine, theirs) in self.rating_counts.iter_mut().zip(o.rating_counts) {
            *mine += theirs;
        }
    }

    pub fn view(&self) -> serde_json::Value {
        let avg = |sum: i64, count: i64| (count > 0).then(|| sum as f64 / count as f64);
        serde_json::json!({
            "first_responses": self.first_responses,
            "avg_first_response_secs": avg(self.first_response_secs, self.first_responses),
            "next_responses": self.next_responses,
            "avg_next_response_secs": avg(self.next_response_secs, self.next_responses),
            "resolutions": self.resolutions,
            "avg_resolution_secs": avg(self.resolution_secs, self.resolutions),
            "sla_alerts": self.sla_alerts,
            "sla_escalations": self.sla_escalations,
            "ratings": self.ratings,
            "avg_rating": avg(self.rating_sum, self.ratings),
            "rating_distribution": (1..=5)
                .map(|score| (score.to_string(), self.rating_counts[score - 1]))
                .collect::<BTreeMap<_, _>>(),
        })
    }
}

/// The period's rows summed per team and per executive, plus a total.
pub fn report(rows: &[ServiceRow]) -> serde_json::Value {
    let mut teams: BTreeMap<String, ServiceCounters> = BTreeMap::new();
    let mut executives: BTreeMap<String, BTreeMap<String, ServiceCounters>> = BTreeMap::new();
    let mut total = ServiceCounters::default();
    for row in rows {
        let team = row.team.map_or("unknown", Stakeholder::as_str).to_owned();
        match &row.executive {
            None => {
                teams.entry(team).or_default().add(&row.counters);
                total.add(&row.counters);
            }
            Some(e) => executives
                .entry(e.to_string())
                .or_default()
                .entry(team)
                .or_default()
                .add(&row.counters),
        }
    }
    let executives: BTreeMap<String, serde_json::Value> = executives
        .into_iter()
        .map(|(e, per_team)| {
            let mut all = ServiceCounters::default();
            let by_team: BTreeMap<String, serde_json::Value> = per_team
                .into_iter()
                .map(|(t, c)| {
                    all.add(&c);
                    (t, c.view())
                })
                .collect();
            (
                e,
                serde_json::json!({"total": all.view(), "teams": by_team}),
            )
        })
        .collect();
    serde_json::json!({
        "total": total.view(),
        "teams": teams.into_iter().map(|(t, c)| (t, c.view())).collect::<BTreeMap<_, _>>(),
        "executives": executives,
    })
}

/// Whole seconds from `from` to `to` (never negative).
pub fn seconds(from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> i64 {
    (to - from).num_seconds().max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_sum_days_per_team_and_executive_with_averages() {
        let agent = ExecutiveId::parse("asha").unwrap();
        let row = |executive: Option<&ExecutiveId>, first: i64, secs: i64| ServiceRow {
            team: Some(Stakeholder::Partner),
            executive: executive.cloned(),
            counters: ServiceCounters {
                first_responses: first,
                first_response_secs: secs,
                sla_alerts: 1,
                ..Default::default()
            },
        };
        let r = report(&[
            row(None, 2, 100),
            row(None, 2, 60),
            row(Some(&agent), 1, 30),
        ]);
        assert_eq!(r["total"]["first_responses"], 4);
        assert_eq!(r["total"]["avg_first_response_secs"], 40.0);
        assert_eq!(r["total"]["sla_alerts"], 2);
        assert_eq!(r["teams"]["Partner"]["first_responses"], 4);
        assert_eq!(
            r["executives"]["asha"]["total"]["avg_first_response_secs"],
            30.0
        );
        assert_eq!(r["total"]["avg_resolution_secs"], serde_json::Value::Null);
    }
}
