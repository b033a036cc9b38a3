//! Store requests counted per operation, for tests and benches that say
//! what an operation costs ("a login is 5 DynamoDB requests").

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

/// Counts every request a client starts, by operation name (`GetItem`,
/// `UpdateItem`, …; `{service} {operation}` when `named`, for a counter
/// shared by several services' clients). Cheap to clone; clones share the
/// counts.
#[derive(Clone, Debug, Default)]
pub struct RequestCounter(Arc<Mutex<BTreeMap<String, u64>>>, bool);

impl RequestCounter {
    /// A counter that names each request's service too (`SQS SendMessage`).
    pub fn named() -> Self {
        Self(Arc::default(), true)
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// What changed between two snapshots (operations with no change left out).
    pub fn since(
        before: &BTreeMap<String, u64>,
        after: &BTreeMap<String, u64>,
    ) -> BTreeMap<String, u64> {
        after
            .iter()
            .filter_map(|(op, n)| {
                let d = n - before.get(op).copied().unwrap_or(0);
                (d > 0).then(|| (op.clone(), d))
            })
            .collect()
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = match (cfg.load::<Metadata>(), self.1) {
            (Some(m), true) => format!("{} {}", m.service(), m.name()),
            (Some(m), false) => m.name().to_owned(),
            (None, _) => "unknown".to_owned(),
        };
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(op).or_default() += 1;
        }
        Ok(())
    }
}
