//! A stand-in for Pinbot: answers message sends as the provider does and
//! remembers every request, so a person (or a test) can see what would
//! have been sent. `GET /__recorded` lists them; `DELETE /__recorded` clears.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Clone, Debug, Serialize)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: serde_json::Map<String, Value>,
    pub body: Value,
}

#[derive(Default)]
pub struct Recorder {
    requests: Mutex<Vec<Recorded>>,
}

impl Recorder {
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

pub fn router(recorder: Arc<Recorder>) -> Router {
    Router::new()
        .route("/__recorded", get(list).delete(clear))
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

async fn record(
    State(r): State<Arc<Recorder>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let body: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
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
    if let Ok(mut v) = r.requests.lock() {
        v.push(Recorded {
            method: method.to_string(),
            path: uri.path().to_owned(),
            headers,
            body,
        });
    }
    let id = format!("wamid.LOCAL{}", uuid::Uuid::new_v4().simple());
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": id, "message_status": "accepted"}],
    }))
}
