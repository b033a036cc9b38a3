//! Creates the template's tables and queues on the local emulator and
//! seeds the development data.

use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::template::{TableDef, Template};

/// Local names of what the template defines, by logical id.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    pub tables: HashMap<String, String>,
    pub event_buses: HashMap<String, String>,
    pub queue_urls: HashMap<String, String>,
    pub queue_arns: HashMap<String, String>,
}

impl Resources {
    pub fn table(&self, logical_id: &str) -> anyhow::Result<String> {
        self.tables
            .get(logical_id)
            .cloned()
            .with_context(|| format!("template has no table {logical_id}"))
    }

    pub fn event_bus(&self, logical_id: &str) -> anyhow::Result<String> {
        self.event_buses
            .get(logical_id)
            .cloned()
            .with_context(|| format!("template has no event bus {logical_id}"))
    }

    pub fn queue_url(&self, logical_id: &str) -> anyhow::Result<String> {
        self.queue_urls
            .get(logical_id)
            .cloned()
            .with_context(|| format!("template has no queue {logical_id}"))
    }
}

pub async fn create_all(
    template: &Template,
    prefix: &str,
    dynamo: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    events: &aws_sdk_eventbridge::Client,
    visibility_override: Option<u32>,
) -> anyhow::Result<Resources> {
    let mut res = Resources::default();
    for bus in &template.event_buses {
        let name = format!("{prefix}{bus}");
        match events.create_event_bus().name(&name).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception()) => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("creating event bus {name}")));
            }
        }
        res.event_buses.insert(bus.clone(), name);
    }
    for table in &template.tables {
        let name = format!("{prefix}{}", table.logical_id);
        create_table(dynamo, &name, table).await?;
        res.tables.insert(table.logical_id.clone(), name);
    }
    // Dead-letter queues first: the queues redriving to them need their ARNs.
    let mut queues = template.queues.clone();
    queues.sort_by_key(|q| q.redrive.is_some());
    for q in &queues {
        let name = q.local_name(prefix);
        let mut create = sqs.create_queue().queue_name(&name);
        if q.fifo {
            create = create
                .attributes(QueueAttributeName::FifoQueue, "true")
                .attributes(
                    QueueAttributeName::ContentBasedDeduplication,
                    q.content_based_dedup.to_string(),
                );
        }
        if let Some(v) = visibility_override.or(q.visibility_timeout) {
            create = create.attributes(QueueAttributeName::VisibilityTimeout, v.to_string());
        }
        if let Some((dlq, max)) = &q.redrive {
            let arn = res
                .queue_arns
                .get(dlq)
                .with_context(|| format!("{}: unknown DLQ {dlq}", q.logical_id))?;
            let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max});
            create = create.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = create
            .send()
            .await
            .with_context(|| format!("creating queue {name}"))?
            .queue_url
            .unwrap_or_default();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .with_context(|| format!("reading queue {name}"))?;
        let arn = attrs
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .unwrap_or_default();
        res.queue_urls.insert(q.logical_id.clone(), url);
        res.queue_arns.insert(q.logical_id.clone(), arn);
    }
    Ok(res)
}

fn key_schema(keys: &[crate::template::KeyElement]) -> anyhow::Result<Vec<KeySchemaElement>> {
    keys.iter()
        .map(|k| {
            Ok(KeySchemaElement::builder()
                .attribute_name(&k.attribute_name)
                .key_type(KeyType::from(k.key_type.as_str()))
                .build()?)
        })
        .collect()
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    def: &TableDef,
) -> anyhow::Result<()> {
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&def.key_schema)?));
    for a in &def.attribute_definitions {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                .build()?,
        );
    }
    for g in &def.global_secondary_indexes {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&g.index_name)
                .set_key_schema(Some(key_schema(&g.key_schema)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(
                            g.projection.projection_type.as_str(),
                        ))
                        .set_non_key_attributes(
                            (!g.projection.non_key_attributes.is_empty())
                                .then(|| g.projection.non_key_attributes.clone()),
                        )
                        .build(),
                )
                .build()?,
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Ok(());
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("creating table {name}"))),
    }
    if let Some(ttl) = &def.time_to_live_specification {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(&ttl.attribute_name)
                    .enabled(ttl.enabled)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("enabling TTL on {name}"))?;
    }
    Ok(())
}
