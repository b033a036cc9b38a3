//! A stand-in for Pinbot (and Communication Master): answers message sends
//! as the provider does and remembers every request, so a person (or a
//! test) can see what would have been sent. `GET /__recorded` lists them;
//! `DELETE /__recorded` clears; `POST /__fail {"status":503,"times":2}`
//! makes the next requests fail; `"no_id": true` with status 200 makes
//! them succeed without a message id (an answer that cannot say whether the
//! message went out).
//!
//! The fault switch (`crate::faults`) makes a fraction of requests fail as
//! the provider does: 500 or 429 (`Retry-After: 1`; nothing sent), or taken
//! and then never answered in time, or cut off before the answer (sent,
//! and the sender cannot know). Requests taken count as answered 200 with
//! the fault named.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};

use crate::faults::{Dependency, Fault, Faults};

#[derive(Clone, Debug, Serialize)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: serde_json::Map<String, Value>,
    pub body: Value,
    /// The raw body as received, byte for byte (lossy only for non-UTF-8).
    pub raw: String,
    /// The status this request was answered with (200 for a request taken
    /// whose answer the fault switch held back or cut).
    pub answered: u16,
    /// The fault switch's doing, if any (`provider.timeout`, …).
    pub fault: Option<&'static str>,
    /// The WhatsApp message id issued for a send the provider took (also
    /// when its answer was held back or cut).
    pub wa_id: Option<String>,
}

/// How long a request taken under `provider.timeout` waits for its answer:
/// longer than the product's 10 s limit on calls to other services.
const HELD: std::time::Duration = std::time::Duration::from_secs(11);

#[derive(Default)]
pub struct Recorder {
    requests: Mutex<Vec<Recorded>>,
    /// (status, how many more requests get it)
    failing: Mutex<Option<(u16, u32, bool)>>,
    faults: Faults,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: std::sync::atomic::AtomicUsize,
    most_in_flight: std::sync::atomic::AtomicUsize,
}

impl Recorder {
    pub fn with_faults(faults: Faults) -> Self {
        Self {
            faults,
            ..Self::default()
        }
    }

    /// The most requests the recorder was answering at the same moment.
    pub fn most_in_flight(&self) -> usize {
        self.most_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

pub fn router(recorder: Arc<Recorder>) -> Router {
    Router::new()
        .route("/__recorded", get(list).delete(clear))
        .route("/__fail", axum::routing::post(fail))
        .fallback(record)
        .with_state(recorder)
}

async fn list(State(r): State<Arc<Recorder>>) -> impl IntoResponse {
    axum::Json(json!({"requests": r.requests()}))
}

async fn clear(State(r): State<Arc<Recorder>>) -> impl IntoResponse {
    if let Ok(mut v) = r.requests.lock() {
        v.clear();
    }
    axum::http::StatusCode::NO_CONTENT
}

#[derive(serde::Deserialize)]
struct Fail {
    status: u16,
    times: u32,
    #[serde(default)]
    no_id: bool,
}

async fn fail(
    State(r): State<Arc<Recorder>>,
    axum::Json(f): axum::Json<Fail>,
) -> impl IntoResponse {
    if let Ok(mut v) = r.failing.lock() {
        *v = (f.times > 0).then_some((f.status, f.times, f.no_id));
    }
    axum::http::StatusCode::NO_CONTENT
}

/// The status to answer with (a failure while told to fail, else 200),
/// and whether a success leaves out the message id.
fn next_status(r: &Recorder) -> (u16, bool) {
    let Ok(mut guard) = r.failing.lock() else {
        return (200, false);
    };
    match guard.as_mut() {
        Some((status, left, no_id)) if *left > 0 => {
            *left -= 1;
            let answer = (*status, *no_id);
            if *left == 0 {
                *guard = None;
            }
            answer
        }
        _ => (200, false),
    }
}

/// Counts the request in flight while it is answered.
struct InFlight<'a>(&'a Recorder);

impl<'a> InFlight<'a> {
    fn new(r: &'a Recorder) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        let now = r.in_flight.fetch_add(1, SeqCst) + 1;
        r.most_in_flight.fetch_max(now, SeqCst);
        Self(r)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn record(
    State(r): State<Arc<Recorder>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let _counted = InFlight::new(&r);
    let raw = String::from_utf8_lossy(&body).into_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(raw.clone()));
    let to = body.get("to").cloned().unwrap_or(Value::Null);
    let headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    let (mut answered, no_id) = next_status(&r);
    let fault = if answered == 200 {
        r.faults.pick(Dependency::Provider)
    } else {
        None
    };
    match fault {
        Some(Fault::Provider500) => answered = 500,
        Some(Fault::Provider429) => answered = 429,
        _ => {}
    }
    let taken = answered == 200 && !no_id && !uri.path().starts_with("/v1/downloadmedia/");
    let wa_id = taken.then(|| format!("wamid.LOCAL{}", uuid::Uuid::new_v4().simple()));
    if let Ok(mut v) = r.requests.lock() {
        v.push(Recorded {
            method: method.to_string(),
            path: uri.path().to_owned(),
            headers,
            body,
            raw,
            answered,
            fault: fault.map(Fault::name),
            wa_id: wa_id.clone(),
        });
    }
    match fault {
        Some(Fault::ProviderTimeout) => tokio::time::sleep(HELD).await,
        Some(Fault::ProviderReset) => {
            // Headers, then the connection is cut before the body.
            let cut = futures_util::stream::once(async {
                Err::<Bytes, _>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected: connection reset",
                ))
            });
            return axum::body::Body::from_stream(cut).into_response();
        }
        _ => {}
    }
    let status = axum::http::StatusCode::from_u16(answered)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    if !status.is_success() {
        let error =
            json!({"error": {"message": "the recorder was told to fail", "code": answered}});
        if answered == 429 {
            return (
                status,
                [(axum::http::header::RETRY_AFTER, "1")],
                axum::Json(error),
            )
                .into_response();
        }
        return (status, axum::Json(error)).into_response();
    }
    // Media download: deterministic bytes per id; `missing` does not exist.
    if let Some(id) = uri.path().strip_prefix("/v1/downloadmedia/") {
        if id == "missing" {
            let error = json!({"error": {"message": "media not found"}});
            return (axum::http::StatusCode::NOT_FOUND, axum::Json(error)).into_response();
        }
        return (
            [(axum::http::header::CONTENT_TYPE, "image/jpeg")],
            media_bytes(id),
        )
            .into_response();
    }
    if no_id {
        return axum::Json(json!({"messaging_product": "whatsapp", "messages": []}))
            .into_response();
    }
    let id = wa_id.unwrap_or_default();
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": id, "message_status": "accepted"}],
    }))
    .into_response()
}

/// The bytes the recorder serves for a media id (tests compare against it).
pub fn media_bytes(id: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend_from_slice(format!("local media {id}").as_bytes());
    bytes.extend((0..=255u8).cycle().take(2048));
    bytes
}
