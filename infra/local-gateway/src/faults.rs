//! The fault switch: makes a chosen fraction of the requests to each
//! dependency fail, while the stack runs, the way that dependency fails in
//! production. Off unless asked for.
//!
//! - DynamoDB, SQS, EventBridge: the gateway's SDK clients send through
//!   [`FaultyHttpClient`], which stands between the SDK and the wire. A
//!   throttle is answered without reaching the emulator (DynamoDB did not
//!   run the request); a 500 or a timeout is decided after the emulator ran
//!   it (the caller cannot know whether it happened, as with AWS).
//! - The provider: the Pinbot recorder answers 500, 429 with `Retry-After`,
//!   takes the request and never answers in time, or cuts the connection
//!   after taking it.
//! - `@connections`: 410 (the socket is closed too, as when a dashboard's
//!   network drops) or 500 (nothing delivered).
//!
//! Set with `LOCAL_FAULTS` when the gateway starts, or while it runs:
//! `curl -X PUT --data 'all=0.05' http://127.0.0.1:3001/__faults`;
//! `GET /__faults` shows the rates and what was injected so far. A spec is
//! comma-separated `key=fraction`: a kind (`dynamodb.throttle`), a
//! dependency (`dynamodb`, spread evenly over its kinds) or `all`; `off`
//! clears.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use serde_json::{Value, json};

/// A part of the world around the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dependency {
    DynamoDb,
    Sqs,
    EventBridge,
    Provider,
    Connections,
}

impl Dependency {
    pub const ALL: [Dependency; 5] = [
        Dependency::DynamoDb,
        Dependency::Sqs,
        Dependency::EventBridge,
        Dependency::Provider,
        Dependency::Connections,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dependency::DynamoDb => "dynamodb",
            Dependency::Sqs => "sqs",
            Dependency::EventBridge => "eventbridge",
            Dependency::Provider => "provider",
            Dependency::Connections => "connections",
        }
    }

    /// The ways this dependency fails.
    pub fn kinds(self) -> impl Iterator<Item = Fault> {
        Fault::ALL
            .into_iter()
            .filter(move |f| f.dependency() == self)
    }
}

/// One way a dependency fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// `ProvisionedThroughputExceededException`, before the request runs.
    DynamoThrottle,
    /// 500 after the request ran.
    Dynamo500,
    /// No answer in time after the request ran.
    DynamoTimeout,
    Sqs500,
    SqsTimeout,
    EventBridge500,
    /// 500: the provider refused, nothing sent.
    Provider500,
    /// 429 with `Retry-After: 1`: nothing sent.
    Provider429,
    /// Taken (and sent), then no answer before the caller's timeout.
    ProviderTimeout,
    /// Taken (and sent), then the connection cut before the answer.
    ProviderReset,
    /// The connection is gone: 410, and the socket closed.
    Connections410,
    /// 500, nothing delivered.
    Connections500,
}

impl Fault {
    pub const ALL: [Fault; 12] = [
        Fault::DynamoThrottle,
        Fault::Dynamo500,
        Fault::DynamoTimeout,
        Fault::Sqs500,
        Fault::SqsTimeout,
        Fault::EventBridge500,
        Fault::Provider500,
        Fault::Provider429,
        Fault::ProviderTimeout,
        Fault::ProviderReset,
        Fault::Connections410,
        Fault::Connections500,
    ];

    pub fn dependency(self) -> Dependency {
        match self {
            Fault::DynamoThrottle | Fault::Dynamo500 | Fault::DynamoTimeout => Dependency::DynamoDb,
            Fault::Sqs500 | Fault::SqsTimeout => Dependency::Sqs,
            Fault::EventBridge500 => Dependency::EventBridge,
            Fault::Provider500
            | Fault::Provider429
            | Fault::ProviderTimeout
            | Fault::ProviderReset => Dependency::Provider,
            Fault::Connections410 | Fault::Connections500 => Dependency::Connections,
        }
    }

    /// `dependency.kind`, as specs and reports spell it.
    pub fn name(self) -> &'static str {
        match self {
            Fault::DynamoThrottle => "dynamodb.throttle",
            Fault::Dynamo500 => "dynamodb.500",
            Fault::DynamoTimeout => "dynamodb.timeout",
            Fault::Sqs500 => "sqs.500",
            Fault::SqsTimeout => "sqs.timeout",
            Fault::EventBridge500 => "eventbridge.500",
            Fault::Provider500 => "provider.500",
            Fault::Provider429 => "provider.429",
            Fault::ProviderTimeout => "provider.timeout",
            Fault::ProviderReset => "provider.reset",
            Fault::Connections410 => "connections.410",
            Fault::Connections500 => "connections.500",
        }
    }
}

/// Fractions of requests failing, by kind.
pub type Rates = BTreeMap<Fault, f64>;

/// Reads a spec (`all=0.05`, `dynamodb=0.05,provider.429=0.1`, `off`).
pub fn parse(spec: &str) -> Result<Rates, String> {
    let mut rates = Rates::new();
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if item == "off" {
            continue;
        }
        let (key, fraction) = item
            .split_once('=')
            .ok_or_else(|| format!("`{item}`: expected key=fraction"))?;
        let fraction: f64 = fraction
            .trim()
            .parse()
            .ok()
            .filter(|f: &f64| (0.0..=1.0).contains(f))
            .ok_or_else(|| format!("`{item}`: the fraction must be between 0 and 1"))?;
        let key = key.trim();
        let kinds: Vec<Fault> = if key == "all" {
            Fault::ALL.to_vec()
        } else if let Some(d) = Dependency::ALL.iter().find(|d| d.name() == key) {
            d.kinds().collect()
        } else if let Some(f) = Fault::ALL.iter().find(|f| f.name() == key) {
            vec![*f]
        } else {
            return Err(format!(
                "`{key}`: not a dependency or fault (try `all`, `dynamodb`, `provider.429`)"
            ));
        };
        // A dependency's fraction is spread over the kinds named with it.
        let per_dependency = |f: &Fault| {
            kinds
                .iter()
                .filter(|k| k.dependency() == f.dependency())
                .count()
        };
        for f in &kinds {
            rates.insert(*f, fraction / per_dependency(f) as f64);
        }
    }
    for d in Dependency::ALL {
        let total: f64 = d.kinds().filter_map(|f| rates.get(&f)).sum();
        if total > 1.0 + 1e-9 {
            return Err(format!("{}: the fractions add up to more than 1", d.name()));
        }
    }
    Ok(rates)
}

#[derive(Default)]
struct Inner {
    rates: Mutex<Rates>,
    /// Requests seen per dependency while the switch was on, and faults
    /// injected per kind.
    requests: Mutex<BTreeMap<Dependency, u64>>,
    injected: Mutex<BTreeMap<Fault, u64>>,
    /// Faults for the next requests of one operation, in order.
    scripted: Mutex<Vec<(String, VecDeque<Fault>)>>,
}

/// The switch, shared by every part that injects. Cheap to clone.
#[derive(Clone, Default)]
pub struct Faults(Arc<Inner>);

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Faults").field(&self.rates()).finish()
    }
}

impl Faults {
    /// A switch set from a spec.
    pub fn from_spec(spec: &str) -> Result<Self, String> {
        let faults = Self::default();
        faults.set(parse(spec)?);
        Ok(faults)
    }

    pub fn set(&self, rates: Rates) {
        if let Ok(mut r) = self.0.rates.lock() {
            *r = rates;
        }
    }

    pub fn off(&self) {
        self.set(Rates::new());
    }

    pub fn rates(&self) -> Rates {
        self.0.rates.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Fails the next requests of `operation` (the AWS action its
    /// `X-Amz-Target` names, e.g. `TransactWriteItems`) with `faults`, one
    /// each, in order, whatever the rates: for a test that needs a fault on
    /// a chosen attempt (a write that went through and whose every retry
    /// failed).
    pub fn script(&self, operation: &str, faults: impl IntoIterator<Item = Fault>) {
        if let Ok(mut s) = self.0.scripted.lock() {
            s.push((operation.to_owned(), faults.into_iter().collect()));
        }
    }

    /// The next scripted fault for this request, if one is due.
    fn scripted(&self, target: Option<&str>) -> Option<Fault> {
        let target = target?;
        let mut scripts = self.0.scripted.lock().ok()?;
        let fault = scripts
            .iter_mut()
            .find(|(operation, faults)| {
                !faults.is_empty() && target.rsplit('.').next() == Some(operation.as_str())
            })
            .and_then(|(_, faults)| faults.pop_front());
        scripts.retain(|(_, faults)| !faults.is_empty());
        fault
    }

    fn count(&self, dependency: Dependency, fault: Option<Fault>) {
        if let Ok(mut r) = self.0.requests.lock() {
            *r.entry(dependency).or_default() += 1;
        }
        if let Some(f) = fault
            && let Ok(mut i) = self.0.injected.lock()
        {
            *i.entry(f).or_default() += 1;
        }
    }

    /// Whether this request to `dependency` fails, and how.
    pub fn pick(&self, dependency: Dependency) -> Option<Fault> {
        self.pick_for(dependency, None)
    }

    /// As [`Self::pick`], for a request whose `X-Amz-Target` is `target`
    /// (a scripted fault for its operation comes first).
    pub fn pick_for(&self, dependency: Dependency, target: Option<&str>) -> Option<Fault> {
        if let Some(fault) = self.scripted(target) {
            self.count(dependency, Some(fault));
            return Some(fault);
        }
        let rates = self.0.rates.lock().ok()?;
        if rates.is_empty() {
            return None;
        }
        let mut draw = fastrand::f64();
        let picked = dependency.kinds().find(|f| {
            let rate = rates.get(f).copied().unwrap_or(0.0);
            if draw < rate {
                return true;
            }
            draw -= rate;
            false
        });
        drop(rates);
        self.count(dependency, picked);
        picked
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<Fault, u64> {
        self.0
            .injected
            .lock()
            .map(|i| i.clone())
            .unwrap_or_default()
    }

    /// Rates, requests seen while on and faults injected, as JSON.
    pub fn report(&self) -> Value {
        let rates: serde_json::Map<String, Value> = self
            .rates()
            .into_iter()
            .map(|(f, r)| (f.name().to_owned(), json!(r)))
            .collect();
        let requests: serde_json::Map<String, Value> = self
            .0
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(d, n)| (d.name().to_owned(), json!(n)))
            .collect();
        let injected: serde_json::Map<String, Value> = self
            .injected()
            .into_iter()
            .map(|(f, n)| (f.name().to_owned(), json!(n)))
            .collect();
        json!({"rates": rates, "requests": requests, "injected": injected})
    }
}

/// `GET /__faults`: the rates and what was injected so far.
pub async fn show(
    axum::extract::State(gw): axum::extract::State<Arc<crate::Gateway>>,
) -> axum::Json<Value> {
    axum::Json(gw.faults.report())
}

/// `PUT /__faults` with a spec as the body: sets the rates (all of them;
/// `off` clears).
pub async fn change(
    axum::extract::State(gw): axum::extract::State<Arc<crate::Gateway>>,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match parse(&body) {
        Ok(rates) => {
            gw.faults.set(rates);
            tracing::warn!(faults = %body.trim(), "fault switch changed");
            axum::Json(gw.faults.report()).into_response()
        }
        Err(e) => (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": e})),
        )
            .into_response(),
    }
}

/// An SDK HTTP client that fails a fraction of one dependency's requests
/// (see the module documentation) and sends the rest through `inner`.
#[derive(Clone, Debug)]
pub struct FaultyHttpClient {
    inner: SharedHttpClient,
    faults: Faults,
    dependency: Dependency,
}

impl FaultyHttpClient {
    pub fn new(inner: SharedHttpClient, faults: Faults, dependency: Dependency) -> Self {
        Self {
            inner,
            faults,
            dependency,
        }
    }
}

impl HttpClient for FaultyHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            faults: self.faults.clone(),
            dependency: self.dependency,
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    faults: Faults,
    dependency: Dependency,
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request.headers().get("x-amz-target");
        let fault = self.faults.pick_for(self.dependency, target);
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            let Some(fault) = fault else {
                return inner.call(request).await;
            };
            if fault == Fault::DynamoThrottle {
                return error_response(
                    400,
                    "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                    "injected: the request rate is too high",
                );
            }
            // The emulator runs it; the caller does not learn the outcome.
            let _ = inner.call(request).await;
            match fault {
                Fault::DynamoTimeout | Fault::SqsTimeout => Err(ConnectorError::timeout(
                    "injected: no answer in time".into(),
                )),
                _ => error_response(
                    500,
                    "InternalServerError",
                    "injected: internal server error",
                ),
            }
        })
    }
}

/// An AWS JSON-protocol error answer.
fn error_response(status: u16, code: &str, message: &str) -> Result<HttpResponse, ConnectorError> {
    let status = status
        .try_into()
        .map_err(|e| ConnectorError::other(Box::new(e), None))?;
    let body = json!({"__type": code, "message": message}).to_string();
    let mut res = HttpResponse::new(status, aws_smithy_types::body::SdkBody::from(body));
    res.headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    res.headers_mut()
        .insert("x-amzn-ErrorType", code.to_owned());
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_fails_the_named_operation_in_order_and_nothing_else() {
        let faults = Faults::default();
        faults.script(
            "TransactWriteItems",
            [Fault::Dynamo500, Fault::DynamoThrottle],
        );
        let put = Some("DynamoDB_20120810.PutItem");
        let transact = Some("DynamoDB_20120810.TransactWriteItems");
        assert_eq!(faults.pick_for(Dependency::DynamoDb, put), None);
        assert_eq!(faults.pick_for(Dependency::DynamoDb, None), None);
        assert_eq!(
            faults.pick_for(Dependency::DynamoDb, transact),
            Some(Fault::Dynamo500)
        );
        assert_eq!(
            faults.pick_for(Dependency::DynamoDb, transact),
            Some(Fault::DynamoThrottle)
        );
        assert_eq!(faults.pick_for(Dependency::DynamoDb, transact), None);
        assert_eq!(faults.injected().values().sum::<u64>(), 2);
    }

    #[test]
    fn a_dependency_fraction_is_spread_over_its_kinds() {
        let rates = parse("dynamodb=0.06, provider.429=0.1").expect("valid");
        assert_eq!(rates.len(), 4);
        assert!((rates[&Fault::DynamoThrottle] - 0.02).abs() < 1e-9);
        assert!((rates[&Fault::Provider429] - 0.1).abs() < 1e-9);
        let all = parse("all=0.05").expect("valid");
        assert_eq!(all.len(), Fault::ALL.len());
        let sqs: f64 = Dependency::Sqs.kinds().map(|f| all[&f]).sum();
        assert!((sqs - 0.05).abs() < 1e-9);
        assert_eq!(parse("off"), Ok(Rates::new()));
        assert!(parse("dynamo=0.1").is_err());
        assert!(parse("all=2").is_err());
        assert!(parse("provider.500=0.6,provider.429=0.6").is_err());
    }

    #[test]
    fn the_switch_injects_about_the_fraction_asked_and_nothing_when_off() {
        let faults = Faults::from_spec("sqs=0.25").expect("valid");
        let n = 20_000;
        let failed = (0..n)
            .filter(|_| faults.pick(Dependency::Sqs).is_some())
            .count();
        assert!((4_000..6_000).contains(&failed), "{failed} of {n}");
        assert!((0..1000).all(|_| faults.pick(Dependency::DynamoDb).is_none()));
        faults.off();
        assert!((0..1000).all(|_| faults.pick(Dependency::Sqs).is_none()));
        assert_eq!(
            faults.injected().values().sum::<u64>(),
            failed as u64,
            "what was injected is counted"
        );
    }
}
