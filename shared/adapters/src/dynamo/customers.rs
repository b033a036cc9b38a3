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
        self.put(&self.tables.customers, item).await
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
