//! What other systems tell us about customers: profiles, rides, context
//! changes.

use super::*;
use std::collections::BTreeMap;

/// A customer's current context for one team.
fn context_key(mobile: &str, team: Stakeholder) -> Item {
    key(customer_pk(mobile), format!("CURRENT_CONTEXT#{team}"))
}

fn customer_pk(mobile: &str) -> String {
    format!("CUSTOMER#{mobile}")
}

/// The item listing a customer's rides that have not ended.
const RIDES_SK: &str = "RIDES";
/// The most rides one customer's summary keeps (the latest start times).
const RIDES_KEPT: usize = 20;

fn ride_attr(booking_id: &str) -> String {
    format!("ride#{booking_id}")
}

/// The rides-by-time index partition of a ride's day (UTC).
fn rides_day_pk(at: DateTime<Utc>) -> String {
    format!("RIDES#{}", at.format("%Y-%m-%d"))
}

/// The rides on a summary item (attribute `ride#{booking_id}` →
/// `{at, status}`), for `customer`.
fn summary_rides(customer: &str, summary: &Item) -> Vec<Ride> {
    summary
        .iter()
        .filter_map(|(name, value)| {
            let booking_id = name.strip_prefix("ride#")?;
            let AttributeValue::M(m) = value else {
                return None;
            };
            let at = match m.get("at") {
                Some(AttributeValue::S(v)) => DateTime::parse_from_rfc3339(v).ok()?,
                _ => return None,
            };
            let status = match m.get("status") {
                Some(AttributeValue::S(v)) => v.clone(),
                _ => return None,
            };
            Some(Ride {
                customer: customer.to_owned(),
                booking_id: booking_id.to_owned(),
                ride_datetime: at.with_timezone(&Utc),
                ride_status: status,
            })
        })
        .collect()
}

/// Rides to drop from a summary before writing `keeping`: those that
/// started more than two days ago, and the earliest beyond the
/// [`RIDES_KEPT`] latest.
fn stale_rides(summary: &Item, keeping: &str) -> Vec<String> {
    let mut rides = summary_rides("", summary);
    rides.retain(|r| ride_attr(&r.booking_id) != keeping);
    rides.sort_by_key(|r| std::cmp::Reverse(r.ride_datetime));
    let long_ago = Utc::now() - Duration::days(2);
    rides
        .iter()
        .enumerate()
        .filter(|(i, r)| *i + 1 >= RIDES_KEPT || r.ride_datetime < long_ago)
        .map(|(_, r)| ride_attr(&r.booking_id))
        .collect()
}

impl CustomerStore for DynamoStore {
    async fn upsert_profile(&self, u: &ProfileUpdate) -> Result<(), StoreError> {
        let mut names = HashMap::new();
        let mut values = HashMap::from([
            (":mobile".to_owned(), s(&u.mobile)),
            (":now".to_owned(), t(Utc::now())),
        ]);
        let mut set = vec![
            "mobile = :mobile".to_owned(),
            "updated_at = :now".to_owned(),
        ];
        if let Some(v) = &u.documents_status {
            set.push("documents_status = :documents".into());
            values.insert(":documents".into(), s(v));
        }
        if let Some(v) = &u.dco_status {
            set.push("dco_status = :dco".into());
            values.insert(":dco".into(), s(v));
        }
        if let Some(v) = u.in_journey_status {
            set.push("in_journey_status = :journey".into());
            values.insert(":journey".into(), AttributeValue::Bool(v));
        }
        // Extra fields keep their names behind placeholders (any name is safe).
        for (i, (k, v)) in u.other.iter().enumerate() {
            set.push(format!("#x{i} = :x{i}"));
            names.insert(format!("#x{i}"), format!("x_{k}"));
            values.insert(format!(":x{i}"), s(v.to_string()));
        }
        self.client
            .update_item()
            .table_name(&self.tables.customers)
            .set_key(Some(key(customer_pk(&u.mobile), "PROFILE")))
            .update_expression(format!("SET {}", set.join(", ")))
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn put_ride(&self, b: &BookingEvent) -> Result<(), StoreError> {
        let table = &self.tables.customers;
        let active = Ride::is_active(&b.ride_status);
        let mut item = key(
            customer_pk(&b.customer_number),
            format!("RIDE#{}", b.booking_id),
        );
        item.insert("booking_id".into(), s(&b.booking_id));
        item.insert("customer_number".into(), s(&b.customer_number));
        item.insert("event".into(), s(&b.event));
        item.insert("ride_datetime".into(), t(b.ride_datetime));
        item.insert("ride_status".into(), s(&b.ride_status));
        item.insert("updated_at".into(), t(Utc::now()));
        // In the rides-by-time index while the ride has not ended.
        if active {
            item.insert("gsi1pk".into(), s(rides_day_pk(b.ride_datetime)));
            item.insert(
                "gsi1sk".into(),
                s(format!("{}#{}", time_key(b.ride_datetime), b.booking_id)),
            );
        }
        // The customer's rides that have not ended, one attribute each, on
        // one item the chat lists read; rides long past (never closed by
        // the booking system) are dropped so it stays small.
        let summary_key = key(customer_pk(&b.customer_number), RIDES_SK);
        let stale: Vec<String> = match self.get(table, summary_key.clone()).await? {
            Some(summary) => stale_rides(&summary, &ride_attr(&b.booking_id)),
            None => Vec::new(),
        };
        let mut names = HashMap::from([("#r".to_owned(), ride_attr(&b.booking_id))]);
        let mut removes: Vec<String> = Vec::new();
        for (i, attr) in stale.into_iter().enumerate() {
            names.insert(format!("#s{i}"), attr);
            removes.push(format!("#s{i}"));
        }
        let mut update = Update::builder()
            .table_name(table)
            .set_key(Some(summary_key));
        let expression = if active {
            let ride = AttributeValue::M(HashMap::from([
                ("at".to_owned(), t(b.ride_datetime)),
                ("status".to_owned(), s(&b.ride_status)),
            ]));
            update = update.expression_attribute_values(":r", ride);
            let mut e = "SET #r = :r".to_owned();
            if !removes.is_empty() {
                e.push_str(&format!(" REMOVE {}", removes.join(", ")));
            }
            e
        } else {
            removes.insert(0, "#r".to_owned());
            format!("REMOVE {}", removes.join(", "))
        };
        let update = update
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .build()
            .map_err(build_err)?;
        let writes = vec![
            put_write(table, item, false)?,
            TransactWriteItem::builder().update(update).build(),
        ];
        self.transact_writes(writes).await.map_err(unavailable)
    }

    async fn profiles(
        &self,
        customers: &[SenderId],
    ) -> Result<HashMap<SenderId, CustomerProfile>, StoreError> {
        let mut unique: Vec<&SenderId> = customers.iter().collect();
        unique.sort();
        unique.dedup();
        let keys = unique
            .iter()
            .map(|c| key(customer_pk(c.as_str()), "PROFILE"))
            .collect();
        let mut found = HashMap::new();
        for item in self.batch_get(&self.tables.customers, keys).await? {
            let Ok(customer) = SenderId::parse(item.str("mobile")?) else {
                continue;
            };
            found.insert(
                customer,
                CustomerProfile {
                    documents_status: item.str_opt("documents_status").map(str::to_owned),
                    dco_status: item.str_opt("dco_status").map(str::to_owned),
                    in_journey_status: match item.get("in_journey_status") {
                        Some(AttributeValue::Bool(b)) => Some(*b),
                        _ => None,
                    },
                    changed_number_to: extra_text(&item, "changed_number_to"),
                    changed_number_from: extra_text(&item, "changed_number_from"),
                },
            );
        }
        Ok(found)
    }

    async fn record_context_change(
        &self,
        c: &ContextChange,
        at: chrono::DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let mut item = key(
            customer_pk(&c.customer),
            format!("CONTEXT#{}#{id}", time_key(at)),
        );
        item.insert("customer".into(), s(&c.customer));
        item.insert("customer_type".into(), s(c.customer_type.as_str()));
        let context =
            serde_json::to_string(&c.context).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        item.insert("context".into(), s(context));
        item.insert("received_at".into(), t(at));
        let table = &self.tables.customers;
        let mut writes = vec![put_write(table, item, false)?];
        // The current context: one attribute per field (`c:{field}`, its
        // JSON value), so a change sets only what it names.
        if !c.context.is_empty() {
            let mut update = aws_sdk_dynamodb::types::Update::builder()
                .table_name(table)
                .set_key(Some(context_key(&c.customer, c.customer_type)))
                .expression_attribute_values(":at", t(at));
            let mut set = vec!["updated_at = :at".to_owned()];
            for (i, (field, value)) in c.context.iter().enumerate() {
                update = update
                    .expression_attribute_names(format!("#f{i}"), format!("c:{field}"))
                    .expression_attribute_values(format!(":v{i}"), s(value.to_string()));
                set.push(format!("#f{i} = :v{i}"));
            }
            let update = update
                .update_expression(format!("SET {}", set.join(", ")))
                .build()
                .map_err(build_err)?;
            writes.push(TransactWriteItem::builder().update(update).build());
        }
        writes.extend(super::events::event_writes(
            &self.tables.chats,
            vec![domain::events::context_changed(c, at)],
            at,
        )?);
        match self.transact_writes(writes).await {
            Ok(_) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn current_context(
        &self,
        customer: &SenderId,
        team: Stakeholder,
    ) -> Result<Option<BTreeMap<String, serde_json::Value>>, StoreError> {
        let Some(item) = self
            .get(&self.tables.customers, context_key(customer.as_str(), team))
            .await?
        else {
            return Ok(None);
        };
        let mut context = BTreeMap::new();
        for (name, value) in &item {
            if let (Some(field), AttributeValue::S(json)) = (name.strip_prefix("c:"), value) {
                let value = serde_json::from_str(json)
                    .map_err(|_| StoreError::Corrupt(format!("context field {field}")))?;
                context.insert(field.to_owned(), value);
            }
        }
        Ok(Some(context))
    }
}

impl RideStore for DynamoStore {
    async fn active_rides(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Ride>, StoreError> {
        let mut rides = Vec::new();
        let mut day = from.date_naive();
        while day <= to.date_naive() && rides.len() < limit {
            let items = self
                .query(
                    &self.tables.customers,
                    Some(GSI1),
                    "gsi1pk",
                    format!("RIDES#{}", day.format("%Y-%m-%d")),
                    Some(SkCond::Between(
                        "gsi1sk",
                        time_key(from),
                        format!("{}~", time_key(to)),
                    )),
                    limit - rides.len(),
                    true,
                )
                .await?;
            for item in &items {
                rides.push(Ride {
                    customer: item.str("customer_number")?.to_owned(),
                    booking_id: item.str("booking_id")?.to_owned(),
                    ride_datetime: item.time("ride_datetime")?,
                    ride_status: item.str("ride_status")?.to_owned(),
                });
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        Ok(rides)
    }

    async fn rides_of(
        &self,
        customers: &[SenderId],
    ) -> Result<HashMap<SenderId, Vec<Ride>>, StoreError> {
        let mut unique: Vec<&SenderId> = customers.iter().collect();
        unique.sort();
        unique.dedup();
        let keys = unique
            .iter()
            .map(|c| key(customer_pk(c.as_str()), RIDES_SK))
            .collect();
        let mut out = HashMap::new();
        for item in self.batch_get(&self.tables.customers, keys).await? {
            let Some(customer) = item
                .str_opt("pk")
                .and_then(|pk| pk.strip_prefix("CUSTOMER#"))
                .and_then(|c| SenderId::parse(c).ok())
            else {
                continue;
            };
            let rides = summary_rides(customer.as_str(), &item);
            if !rides.is_empty() {
                out.insert(customer, rides);
            }
        }
        Ok(out)
    }
}
