//! The SLA in DynamoDB: waiting customers (the sparse `gsi4`, `WAITING#{team}`
//! by wait start), the marks of alerts and escalations on the chat header,
//! staff alerts (`ALERT#{alert_id}` / `ALERT`, listed while unsent in `gsi1`
//! `ALERTQ`) and the service metrics (`METRICS#{day}` / `{team}` and
//! `{team}#{executive}`).

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, NaiveDate, Utc};

use super::routing::{GSI4, metrics_writes};
use super::{
    DynamoStore, GSI1, any_condition_failed, build_err, chat_pk, is_condition_failure, put_write,
};
use crate::item::{Item, ItemExt, key, n, s, t, time_key, unavailable};
use domain::channel::{ChannelId, Stakeholder};
use domain::chat::{Chat, ChatId, ChatStatus};
use domain::error::StoreError;
use domain::executive::ExecutiveId;
use domain::metrics::{ServiceCounters, ServiceRow};
use domain::routing::sla::{AlertClaim, AlertJob, AlertOutcome, AlertSubject, SlaLevel, SlaStore};

const UNSENT_ALERTS: &str = "ALERTQ";

fn alert_key(id: &str) -> Item {
    key(format!("ALERT#{id}"), "ALERT")
}

fn alert_from(item: &Item) -> Result<AlertJob, StoreError> {
    let bad = |what: &str| StoreError::Corrupt(format!("alert item: {what}"));
    let subject = match item.str_opt("booking_id") {
        Some(booking_id) => AlertSubject::Ride {
            booking_id: booking_id.to_owned(),
        },
        None => AlertSubject::Sla {
            chat_id: ChatId::parse(item.str("chat_id")?).map_err(|_| bad("chat_id"))?,
            level: match item.str("level")? {
                "alert" => SlaLevel::Alert,
                "escalation" => SlaLevel::Escalation,
                _ => return Err(bad("level")),
            },
        },
    };
    Ok(AlertJob {
        alert_id: item.str("alert_id")?.to_owned(),
        subject,
        channel: ChannelId::parse(item.str("channel")?).map_err(|_| bad("channel"))?,
        to: item.str("to")?.to_owned(),
        message: serde_json::from_str(item.str("message")?).map_err(|_| bad("message"))?,
    })
}

/// A staff alert as stored: queued, listed in `gsi1` while unsent.
fn alert_item(job: &AlertJob, at: DateTime<Utc>) -> Result<Item, StoreError> {
    let mut item = alert_key(&job.alert_id);
    item.insert("alert_id".into(), s(&job.alert_id));
    match &job.subject {
        AlertSubject::Sla { chat_id, level } => {
            item.insert("chat_id".into(), s(chat_id.as_str()));
            item.insert("level".into(), s(level.as_str()));
        }
        AlertSubject::Ride { booking_id } => {
            item.insert("booking_id".into(), s(booking_id));
        }
    }
    item.insert("channel".into(), s(job.channel.as_str()));
    item.insert("to".into(), s(&job.to));
    let message =
        serde_json::to_string(&job.message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    item.insert("message".into(), s(message));
    item.insert("state".into(), s("queued"));
    item.insert("attempts".into(), n(0));
    item.insert("created_at".into(), t(at));
    item.insert("gsi1pk".into(), s(UNSENT_ALERTS));
    item.insert(
        "gsi1sk".into(),
        s(format!("{}#{}", time_key(at), job.alert_id)),
    );
    Ok(item)
}

impl SlaStore for DynamoStore {
    async fn store_alert(&self, job: &AlertJob, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let stored = self
            .client
            .put_item()
            .table_name(&self.tables.chats)
            .set_item(Some(alert_item(job, at)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match stored {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn waiting_since(
        &self,
        team: Stakeholder,
        started_by: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Chat>, StoreError> {
        // `~` sorts after every `#{chat_id}`: all episodes started at or
        // before `started_by`.
        let below = format!("{}~", time_key(started_by));
        self.chats_in(GSI4, format!("WAITING#{team}"), Some(below), limit)
            .await
    }

    async fn mark_sla(
        &self,
        chat: &Chat,
        level: SlaLevel,
        alert: Option<&AlertJob>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(episode) = chat.wait_started_at else {
            return Ok(false);
        };
        let table = &self.tables.chats;
        let field = match level {
            SlaLevel::Alert => "sla_alerted_for",
            SlaLevel::Escalation => "sla_escalated_for",
        };
        let header = Update::builder()
            .table_name(table)
            .set_key(Some(key(chat_pk(&chat.chat_id), "META")))
            .update_expression("SET #mark = :ep ADD rev :one")
            .expression_attribute_values(":one", n(1))
            .condition_expression(
                "#status = :active AND wait_started_at = :ep AND (attribute_not_exists(#mark) OR #mark <> :ep)",
            )
            .expression_attribute_names("#mark", field)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":ep", t(episode))
            .expression_attribute_values(":active", s(ChatStatus::Active.as_str()))
            .build()
            .map_err(build_err)?;
        let mut writes = vec![TransactWriteItem::builder().update(header).build()];
        if let Some(job) = alert {
            writes.push(put_write(table, alert_item(job, at)?, true)?);
        }
        let counter = match level {
            SlaLevel::Alert => domain::metrics::SLA_ALERTS,
            SlaLevel::Escalation => domain::metrics::SLA_ESCALATIONS,
        };
        writes.extend(metrics_writes(
            table,
            at,
            chat.customer_type,
            chat.assigned_to.as_ref().map(ExecutiveId::as_str),
            &[(counter, 1)],
        )?);
        match self.transact_writes(writes).await {
            Ok(()) => Ok(true),
            Err(e) if any_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn claim_alert(
        &self,
        alert_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<AlertClaim, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.chats)
            .set_key(Some(alert_key(alert_id)))
            .update_expression("SET #lease = :until ADD attempts :one")
            .condition_expression(
                "#state = :queued AND (attribute_not_exists(#lease) OR #lease < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#lease", "lease")
            .expression_attribute_values(":until", t(lease_until))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":queued", s("queued"))
            .expression_attribute_values(":now", t(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(o) => Ok(AlertClaim::Claimed(Box::new(alert_from(
                &o.attributes.unwrap_or_default(),
            )?))),
            Err(e) if is_condition_failure(&e) => {
                match self.get(&self.tables.chats, alert_key(alert_id)).await? {
                    None => Ok(AlertClaim::Missing),
                    Some(item) if item.str_opt("state") != Some("queued") => {
                        Ok(AlertClaim::Finished)
                    }
                    Some(item) => Ok(AlertClaim::Busy(item.time_opt("lease")?.unwrap_or(now))),
                }
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn finish_alert(
        &self,
        alert_id: &str,
        outcome: AlertOutcome<'_>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.tables.chats)
            .set_key(Some(alert_key(alert_id)))
            .expression_attribute_values(":at", t(at));
        let update = match outcome {
            AlertOutcome::Sent(wa_id) => update
                .update_expression("SET #state = :sent, wa_message_id = :wa, sent_at = :at REMOVE #lease, gsi1pk, gsi1sk")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#lease", "lease")
                .expression_attribute_values(":sent", s("sent"))
                .expression_attribute_values(":wa", s(wa_id)),
            AlertOutcome::Failed(reason) => update
                .update_expression("SET #state = :failed, last_error = :why, failed_at = :at REMOVE #lease, gsi1pk, gsi1sk")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#lease", "lease")
                .expression_attribute_values(":failed", s("failed"))
                .expression_attribute_values(":why", s(reason)),
            AlertOutcome::Retry(reason) => update
                .update_expression("SET last_error = :why, last_attempt_at = :at REMOVE #lease")
                .expression_attribute_names("#lease", "lease")
                .expression_attribute_values(":why", s(reason)),
        };
        update.send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn unsent_alerts(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.query_index(
            GSI1,
            UNSENT_ALERTS.to_owned(),
            Some(time_key(before)),
            limit,
        )
        .await?
        .iter()
        .map(|i| Ok(i.str("alert_id")?.to_owned()))
        .collect()
    }

    async fn service_stats(&self, days: &[NaiveDate]) -> Result<Vec<ServiceRow>, StoreError> {
        let mut rows = Vec::new();
        for day in days {
            let items = self
                .query(
                    &self.tables.chats,
                    None,
                    "pk",
                    format!("METRICS#{}", day.format("%Y-%m-%d")),
                    None,
                    usize::MAX,
                    true,
                )
                .await?;
            for item in items {
                let sk = item.str("sk")?;
                let (team, executive) = match sk.split_once('#') {
                    Some((team, e)) => (team, Some(e)),
                    None => (sk, None),
                };
                let mut counters = ServiceCounters::default();
                for (name, value) in &item {
                    if let AttributeValue::N(v) = value {
                        counters.set(name, v.parse().unwrap_or(0));
                    }
                }
                rows.push(ServiceRow {
                    team: Stakeholder::parse(team).ok(),
                    executive: executive.and_then(|e| ExecutiveId::parse(e).ok()),
                    counters,
                });
            }
        }
        Ok(rows)
    }
}
