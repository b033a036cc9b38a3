//! Lambda's SQS event source mapping, locally: long-poll the queue, hand
//! batches to the consumer as real SQS events, delete what succeeded and
//! leave failures to become visible again (and reach the DLQ).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::Gateway;

/// One queue and the function it feeds.
#[derive(Clone, Debug)]
pub struct Source {
    pub binary: String,
    pub url: String,
    pub arn: String,
    /// Concurrent pollers (Lambda runs several; FIFO group locking keeps
    /// each group's order).
    pub pollers: usize,
    /// Records per invocation at most (the template's `BatchSize`).
    pub batch_size: u32,
    /// The function's `Timeout`: Lambda stops an invocation that runs
    /// longer, and its batch comes back after the visibility timeout (so
    /// no batch is still being worked on when it is handed out again).
    pub timeout: Duration,
}

/// Messages handed out again (receive count above one), by the function
/// they feed: what lost answers, failed records, kills and timeouts cost
/// in retries.
#[derive(Debug, Default)]
pub struct Redeliveries(std::sync::Mutex<std::collections::BTreeMap<String, u64>>);

impl Redeliveries {
    fn add(&self, function: &str, n: u64) {
        if n > 0
            && let Ok(mut counts) = self.0.lock()
        {
            *counts.entry(function.to_owned()).or_default() += n;
        }
    }

    pub fn counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// The running event source mappings. `kill` aborts every poller where it
/// stands, mid-batch included, as a crashed function would stop: what it
/// had received stays hidden until the visibility timeout, then comes
/// back. `start` polls again.
pub struct Consumers {
    gateway: Arc<Gateway>,
    sources: Vec<Source>,
    stop: watch::Receiver<bool>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Consumers {
    pub fn new(gateway: Arc<Gateway>, sources: Vec<Source>, stop: watch::Receiver<bool>) -> Self {
        Self {
            gateway,
            sources,
            stop,
            tasks: std::sync::Mutex::default(),
        }
    }

    /// Starts the pollers (after a `kill`, new ones).
    pub fn start(&self) {
        let Ok(mut tasks) = self.tasks.lock() else {
            return;
        };
        for source in &self.sources {
            let receiving = Arc::new(tokio::sync::Mutex::new(()));
            for _ in 0..source.pollers {
                tasks.push(tokio::spawn(run(
                    self.gateway.clone(),
                    source.clone(),
                    receiving.clone(),
                    self.stop.clone(),
                )));
            }
        }
    }

    /// Aborts every poller at once, wherever it is.
    pub fn kill(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
    }
}

pub async fn run(
    gw: Arc<Gateway>,
    source: Source,
    receiving: Arc<tokio::sync::Mutex<()>>,
    mut stop: watch::Receiver<bool>,
) {
    let Source {
        binary,
        url: queue_url,
        arn: queue_arn,
        batch_size,
        timeout,
        ..
    } = source;
    loop {
        // One receive at a time per queue from these pollers. moto's
        // threaded server handed two concurrent receives messages of one
        // FIFO group (SQS never does); `moto_server.py` now serialises
        // receives itself, which also covers a receive still running in
        // moto after its poller was killed. Processing runs in parallel.
        let turn = tokio::select! {
            _ = stop.changed() => return,
            turn = receiving.lock() => turn,
        };
        let receive = gw
            .sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(i32::try_from(batch_size.clamp(1, 10)).unwrap_or(10))
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send();
        let out = tokio::select! {
            _ = stop.changed() => return,
            out = receive => out,
        };
        drop(turn);
        let messages = match out {
            Ok(o) => o.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receiving from a queue failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> = m
                    .attributes
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                    .collect();
                json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "md5OfBody": m.md5_of_body,
                    "attributes": attributes,
                    "messageAttributes": message_attributes(m),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": queue_arn,
                    "awsRegion": crate::REGION,
                })
            })
            .collect();
        let event: SqsEvent = match serde_json::from_value(json!({"Records": records})) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "could not build the SQS event");
                continue;
            }
        };
        let again = event
            .records
            .iter()
            .filter(|r| adapters::sqs_event::receive_count(r) > 1)
            .count();
        gw.redeliveries.add(&binary, again as u64);
        let invoked = tokio::time::timeout(timeout, gw.functions.invoke_sqs(&binary, event)).await;
        let failed: Vec<String> = match invoked.unwrap_or_else(|_| {
            Err(format!(
                "timed out after {} s; Lambda stops it there",
                timeout.as_secs()
            )
            .into())
        }) {
            Ok(res) => res
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            // The whole invocation failed: every message is retried.
            Err(e) => {
                tracing::error!(function = %binary, error = %e, "queue consumer failed");
                messages
                    .iter()
                    .filter_map(|m| m.message_id.clone())
                    .collect()
            }
        };
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| m.message_id.as_ref().is_some_and(|id| !failed.contains(id)))
            .filter_map(|m| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(m.message_id.clone()?)
                    .receipt_handle(m.receipt_handle.clone()?)
                    .build()
                    .ok()
            })
            .collect();
        if !done.is_empty()
            && let Err(e) = gw
                .sqs
                .delete_message_batch()
                .queue_url(&queue_url)
                .set_entries(Some(done))
                .send()
                .await
        {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "deleting processed messages failed; they will be redelivered and deduplicated");
        }
    }
}

/// Message attributes as Lambda's SQS event shows them.
fn message_attributes(m: &aws_sdk_sqs::types::Message) -> Value {
    let map: serde_json::Map<String, Value> = m
        .message_attributes
        .iter()
        .flatten()
        .map(|(name, a)| {
            (
                name.clone(),
                json!({
                    "stringValue": a.string_value,
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": a.data_type,
                }),
            )
        })
        .collect();
    Value::Object(map)
}
