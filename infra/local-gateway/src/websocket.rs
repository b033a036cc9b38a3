//! The WebSocket API and its `@connections` management endpoint, on one
//! address: `GET /?token=…` upgrades; `POST|GET|DELETE /@connections/{id}`
//! is what `aws-sdk-apigatewaymanagement` calls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;

use crate::Gateway;

/// API Gateway's limits: 32 KB frames, 128 KB messages.
pub const MAX_FRAME: usize = 32 * 1024;
pub const MAX_MESSAGE: usize = 128 * 1024;

pub enum Outgoing {
    Text(String),
    Close,
}

/// One open socket: where to send frames, and what `GET @connections` reports.
#[derive(Clone)]
struct Open {
    tx: mpsc::UnboundedSender<Outgoing>,
    connected_at: chrono::DateTime<Utc>,
    peer: SocketAddr,
}

/// Open sockets by connection id.
#[derive(Default)]
pub struct Connections {
    inner: Mutex<HashMap<String, Open>>,
    /// `$disconnect` invocations finished (succeeded or failed).
    disconnects: std::sync::atomic::AtomicU64,
    /// Sockets closed whose `$disconnect` is still running.
    closing: std::sync::atomic::AtomicU64,
}

impl Connections {
    fn insert(&self, id: &str, tx: mpsc::UnboundedSender<Outgoing>, peer: SocketAddr) {
        if let Ok(mut m) = self.inner.lock() {
            m.insert(
                id.to_owned(),
                Open {
                    tx,
                    connected_at: Utc::now(),
                    peer,
                },
            );
        }
    }

    fn remove(&self, id: &str) {
        if let Ok(mut m) = self.inner.lock() {
            m.remove(id);
        }
    }

    fn get(&self, id: &str) -> Option<Open> {
        self.inner.lock().ok()?.get(id).cloned()
    }

    pub fn count(&self) -> usize {
        self.inner.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// How many `$disconnect` invocations have finished, failed ones too.
    pub fn disconnects(&self) -> u64 {
        self.disconnects.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// No socket open and no `$disconnect` still running (an executive's
    /// last one hands their chats on before it returns).
    pub fn all_closed(&self) -> bool {
        self.count() == 0 && self.closing.load(std::sync::atomic::Ordering::SeqCst) == 0
    }
}

/// Which event API Gateway would send.
enum Kind<'a> {
    Connect {
        query: &'a HashMap<String, String>,
        headers: &'a HeaderMap,
    },
    Message {
        route_key: &'a str,
        body: String,
    },
    Disconnect,
}

fn ws_event(
    gw: &Gateway,
    kind: Kind<'_>,
    connection_id: &str,
    peer: SocketAddr,
) -> Result<ApiGatewayWebsocketProxyRequest, serde_json::Error> {
    let now = Utc::now();
    let (event_type, route_key, headers, query, body) = match kind {
        Kind::Connect { query, headers } => {
            let hdrs: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                    )
                })
                .collect();
            let q = if query.is_empty() {
                Value::Null
            } else {
                json!(query)
            };
            ("CONNECT", "$connect", Value::Object(hdrs), q, Value::Null)
        }
        Kind::Message { route_key, body } => (
            "MESSAGE",
            route_key,
            Value::Null,
            Value::Null,
            Value::String(body),
        ),
        Kind::Disconnect => (
            "DISCONNECT",
            "$disconnect",
            Value::Null,
            Value::Null,
            Value::Null,
        ),
    };
    let event = json!({
        "headers": headers,
        "queryStringParameters": query,
        "requestContext": {
            "routeKey": route_key,
            "eventType": event_type,
            "messageDirection": "IN",
            "connectionId": connection_id,
            "connectedAt": now.timestamp_millis(),
            "domainName": gw.ws_domain,
            "stage": "local",
            "apiId": "local",
            "requestId": uuid::Uuid::new_v4().to_string(),
            "extendedRequestId": uuid::Uuid::new_v4().to_string(),
            "requestTime": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "requestTimeEpoch": now.timestamp_millis(),
            "identity": {"sourceIp": peer.ip().to_string()},
        },
        "body": body,
        "isBase64Encoded": false,
    });
    serde_json::from_value(event)
}

/// API Gateway connection ids look like `L0SM9cOFvHcCIhw=`; ours are
/// URL-safe so they survive the management API's path unescaped.
fn new_connection_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    id[..16].to_owned()
}

pub async fn upgrade(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return (
            StatusCode::UPGRADE_REQUIRED,
            "WebSocket endpoint: connect with ws://…/?token=<JWT>",
        )
            .into_response();
    };
    let id = new_connection_id();
    let connect = Kind::Connect {
        query: &query,
        headers: &headers,
    };
    let event = match ws_event(&gw, connect, &id, peer) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "could not build $connect event");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let res = match gw
        .functions
        .invoke_ws(&gw.template, "$connect", event)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "$connect failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    if res.status_code != 200 {
        let status = u16::try_from(res.status_code)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::FORBIDDEN);
        let body = match res.body {
            Some(aws_lambda_events::encodings::Body::Text(t)) => t,
            _ => String::new(),
        };
        return (status, body).into_response();
    }
    // Registered before the upgrade completes, as in API Gateway: pushes
    // sent in between wait in the channel.
    let (tx, rx) = mpsc::unbounded_channel();
    gw.connections.insert(&id, tx, peer);
    ws.max_frame_size(MAX_FRAME)
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| run_socket(gw, id, socket, rx, peer))
}

async fn run_socket(
    gw: Arc<Gateway>,
    id: String,
    socket: WebSocket,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    peer: SocketAddr,
) {
    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let sent = match out {
                Outgoing::Text(t) => sink.send(Message::Text(t.into())).await,
                Outgoing::Close => {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code: 1000,
                            reason: "".into(),
                        })))
                        .await;
                    break;
                }
            };
            if sent.is_err() {
                break;
            }
        }
    });
    while let Some(msg) = stream.next().await {
        let text = match msg {
            Ok(Message::Text(t)) => t.to_string(),
            Ok(Message::Binary(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        // Route selection on $request.body.event, as the deployed API does.
        let route = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("event").and_then(Value::as_str).map(str::to_owned))
            .filter(|name| gw.template.ws_route(name).is_some())
            .unwrap_or_else(|| "$default".to_owned());
        let message = Kind::Message {
            route_key: &route,
            body: text,
        };
        match ws_event(&gw, message, &id, peer) {
            Ok(event) => {
                if let Err(e) = gw.functions.invoke_ws(&gw.template, &route, event).await {
                    tracing::error!(connection_id = %id, route = %route, error = %e, "event function failed");
                }
            }
            Err(e) => tracing::error!(error = %e, "could not build message event"),
        }
    }
    gw.connections
        .closing
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    gw.connections.remove(&id);
    writer.abort();
    if let Ok(event) = ws_event(&gw, Kind::Disconnect, &id, peer)
        && let Err(e) = gw
            .functions
            .invoke_ws(&gw.template, "$disconnect", event)
            .await
    {
        tracing::error!(connection_id = %id, error = %e, "$disconnect failed");
    }
    gw.connections
        .disconnects
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    gw.connections
        .closing
        .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
}

fn gone() -> Response {
    (
        StatusCode::GONE,
        [
            ("x-amzn-ErrorType", "GoneException"),
            ("content-type", "application/json"),
        ],
        r#"{"message":"Connection is gone"}"#,
    )
        .into_response()
}

/// `POST /@connections/{id}`: send `body` to the connection.
pub async fn post_to_connection(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if body.len() > MAX_MESSAGE {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [
                ("x-amzn-ErrorType", "PayloadTooLargeException"),
                ("content-type", "application/json"),
            ],
            r#"{"message":"Message too long"}"#,
        )
            .into_response();
    }
    match gw.faults.pick(crate::faults::Dependency::Connections) {
        Some(crate::faults::Fault::Connections410) => {
            // The dashboard's network dropped: gone, and the socket closes.
            if let Some(open) = gw.connections.get(&id) {
                let _ = open.tx.send(Outgoing::Close);
            }
            return gone();
        }
        Some(_) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [
                    ("x-amzn-ErrorType", "InternalServerErrorException"),
                    ("content-type", "application/json"),
                ],
                r#"{"message":"injected: internal server error"}"#,
            )
                .into_response();
        }
        None => {}
    }
    match gw.connections.get(&id) {
        Some(open)
            if open
                .tx
                .send(Outgoing::Text(String::from_utf8_lossy(&body).into_owned()))
                .is_ok() =>
        {
            StatusCode::OK.into_response()
        }
        _ => gone(),
    }
}

/// `DELETE /@connections/{id}`: close the connection.
pub async fn delete_connection(State(gw): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    match gw.connections.get(&id) {
        Some(open) => {
            let _ = open.tx.send(Outgoing::Close);
            StatusCode::NO_CONTENT.into_response()
        }
        None => gone(),
    }
}

/// `GET /@connections/{id}`: what API Gateway knows of the connection.
pub async fn get_connection(State(gw): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    match gw.connections.get(&id) {
        Some(open) => axum::Json(json!({
            "connectedAt": open.connected_at.to_rfc3339(),
            "lastActiveAt": Utc::now().to_rfc3339(),
            "identity": {"sourceIp": open.peer.ip().to_string(), "userAgent": ""},
        }))
        .into_response(),
        None => gone(),
    }
}
