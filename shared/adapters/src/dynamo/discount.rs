//! The discount bot in DynamoDB: its routes (seeded, then admins'), the
//! flood guard's per-minute counts, each answer's once-only record with
//! the day's counters, and the decline log (the seeds' `no_discount_log`).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, NaiveDate, Utc};

use super::ops::epoch;
use super::outbox::counter_write;
use super::{DynamoStore, first_condition_failed, is_condition_failure, put_write};
use crate::item::{Item, ItemExt, key, n, s, t, unavailable};
use domain::chat::ChatId;
use domain::customer::SenderId;
use domain::discount::bot::{Allowance, AnswerRecord, BotStore, Decision, Decline};
use domain::discount::{DiscountRoute, DiscountRouteStore};
use domain::error::StoreError;

/// The discount bot's routes: one partition, one item per route (its JSON),
/// and a `SEEDED` marker once the file's routes were written.
const DISCOUNT_ROUTES_PK: &str = "DISCOUNT_ROUTES";

fn discount_route_item(route: &DiscountRoute) -> Result<Item, StoreError> {
    let mut item = key(DISCOUNT_ROUTES_PK, format!("ROUTE#{}", route.route_id()));
    let json = serde_json::to_string(route)
        .map_err(|e| StoreError::Corrupt(format!("discount route: {e}")))?;
    item.insert("route".into(), s(json));
    item.insert("updated_at".into(), t(Utc::now()));
    Ok(item)
}

impl DiscountRouteStore for DynamoStore {
    async fn discount_routes(&self) -> Result<Option<Vec<DiscountRoute>>, StoreError> {
        let Some(items) = self
            .seeded_list(DISCOUNT_ROUTES_PK.to_owned(), "ROUTE#")
            .await?
        else {
            return Ok(None);
        };
        let mut routes = items
            .iter()
            .map(|i| {
                serde_json::from_str::<DiscountRoute>(i.str("route")?)
                    .map_err(|e| StoreError::Corrupt(format!("discount route: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        routes.sort_by_key(DiscountRoute::route_id);
        Ok(Some(routes))
    }

    async fn seed_discount_routes(&self, routes: &[DiscountRoute]) -> Result<(), StoreError> {
        let items = routes
            .iter()
            .map(discount_route_item)
            .collect::<Result<Vec<_>, _>>()?;
        self.seed_list(DISCOUNT_ROUTES_PK.to_owned(), items).await
    }

    async fn put_discount_route(
        &self,
        route: &DiscountRoute,
        create: bool,
    ) -> Result<(), StoreError> {
        let item = discount_route_item(route)?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.tables.chats)
            .set_item(Some(item));
        put = if create {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("attribute_exists(pk)")
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::Conflict(if create {
                format!("route {} exists", route.route_id())
            } else {
                format!("no route {}", route.route_id())
            })),
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// One minute's answers to one sender, kept two minutes.
fn flood_key(customer: &SenderId, minute: DateTime<Utc>) -> Item {
    key(
        format!("BOTFLOOD#{customer}"),
        minute.format("%Y-%m-%dT%H:%M").to_string(),
    )
}

/// The day's counters: one item per day.
fn counters_key(day: &str) -> Item {
    key("BOTSTATS", day)
}

fn declines_pk(day: &str) -> String {
    format!("NO_DISCOUNT#{day}")
}

/// How long the once-only marker of an answer is kept: longer than any
/// redelivery of the customer's message (the inbound queue keeps 14 days).
const ANSWER_MARKER_DAYS: i64 = 15;

impl BotStore for DynamoStore {
    async fn allow_answer(
        &self,
        customer: &SenderId,
        minute: DateTime<Utc>,
        message_id: &str,
        limit: u32,
    ) -> Result<Allowance, StoreError> {
        // The minute's answered messages, as a set that never holds more
        // than `limit` ids: a message already in it is allowed again.
        let allowed = self
            .client
            .update_item()
            .table_name(&self.tables.chats)
            .set_key(Some(flood_key(customer, minute)))
            .update_expression("ADD answered :id SET expires_at = :ttl")
            .condition_expression(
                "attribute_not_exists(answered) OR size(answered) < :limit OR contains(answered, :one)",
            )
            .expression_attribute_values(":id", AttributeValue::Ss(vec![message_id.to_owned()]))
            .expression_attribute_values(":one", s(message_id))
            .expression_attribute_values(":limit", n(u64::from(limit)))
            .expression_attribute_values(":ttl", n(epoch(minute) + 120))
            .send()
            .await;
        match allowed {
            Ok(_) => return Ok(Allowance::Allowed),
            Err(e) if is_condition_failure(&e) => {}
            Err(e) => return Err(unavailable(e)),
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.chats)
            .set_key(Some(flood_key(customer, minute)))
            .update_expression("ADD refused :one")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(unavailable)?;
        let refused = out.attributes.unwrap_or_default().u64("refused")?;
        Ok(Allowance::Refused {
            first: refused == 1,
        })
    }

    async fn record_answer(&self, record: &AnswerRecord) -> Result<bool, StoreError> {
        let table = &self.tables.chats;
        let day = record.at.format("%Y-%m-%d").to_string();
        let mut marker = key(format!("BOTANSWER#{}", record.wa_message_id), "ANSWER");
        marker.insert("chat_id".into(), s(record.chat_id.as_str()));
        marker.insert(
            "expires_at".into(),
            n(epoch(
                record.at + chrono::Duration::days(ANSWER_MARKER_DAYS),
            )),
        );
        let mut writes = vec![put_write(table, marker, true)?];
        let counters = record.decision.counters();
        let deltas: Vec<(&str, i64)> = counters.iter().map(|c| (c.as_str(), 1)).collect();
        writes.extend(counter_write(table, counters_key(&day), &deltas)?);
        if let Decision::Declined { route, reason } = &record.decision {
            let mut line = key(
                declines_pk(&day),
                format!(
                    "{}#{}",
                    record.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                    record.wa_message_id
                ),
            );
            line.insert("customer".into(), s(record.customer.as_str()));
            line.insert("chat_id".into(), s(record.chat_id.as_str()));
            line.insert("route".into(), s(route));
            line.insert("reason".into(), s(reason.as_str()));
            line.insert("at".into(), t(record.at));
            writes.push(put_write(table, line, false)?);
        }
        match self.transact_writes(writes).await {
            Ok(_) => Ok(true),
            Err(e) if first_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn declines(&self, day: NaiveDate, limit: usize) -> Result<Vec<Decline>, StoreError> {
        let items = self
            .query_desc(
                &self.tables.chats,
                None,
                "pk",
                declines_pk(&day.format("%Y-%m-%d").to_string()),
                None,
                limit,
            )
            .await?;
        items
            .iter()
            .map(|i| {
                Ok(Decline {
                    customer: i.str("customer")?.to_owned(),
                    chat_id: ChatId::parse(i.str("chat_id")?)
                        .map_err(|_| StoreError::Corrupt("decline chat_id".into()))?,
                    route: i.str("route")?.to_owned(),
                    reason: domain::discount::bot::DeclineReason::parse(i.str("reason")?)
                        .ok_or_else(|| StoreError::Corrupt("decline reason".into()))?,
                    at: i.time("at")?,
                })
            })
            .collect()
    }

    async fn bot_counters(
        &self,
        days: &[NaiveDate],
    ) -> Result<BTreeMap<NaiveDate, BTreeMap<String, u64>>, StoreError> {
        let keys = days
            .iter()
            .map(|d| counters_key(&d.format("%Y-%m-%d").to_string()))
            .collect();
        let mut out = BTreeMap::new();
        for item in self.batch_get(&self.tables.chats, keys).await? {
            let Some(day) = item
                .str_opt("sk")
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            else {
                continue;
            };
            let counters = item
                .keys()
                .filter(|name| !matches!(name.as_str(), "pk" | "sk"))
                .filter_map(|name| Some((name.clone(), item.u64(name).ok()?)))
                .collect();
            out.insert(day, counters);
        }
        Ok(out)
    }
}
