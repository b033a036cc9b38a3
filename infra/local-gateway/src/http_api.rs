//! The HTTP API: each request becomes an API Gateway HTTP API (payload
//! v2.0) event for the function the template routes it to.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::Utc;
use lambda_http::request::LambdaRequest;
use serde_json::{Value, json};

use crate::Gateway;

/// Request bodies above API Gateway's 10 MB payload limit are refused.
const MAX_BODY: usize = 10 * 1024 * 1024;

pub async fn handle(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(json!({"message": "Request Entity Too Large"})),
        )
            .into_response();
    };
    let path = parts.uri.path().to_owned();
    let method = parts.method.as_str().to_owned();
    let Some((route, params)) = gw
        .template
        .http_routes
        .iter()
        .find_map(|r| r.matches(&method, &path).map(|p| (r.clone(), p)))
    else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Not Found"})),
        )
            .into_response();
    };

    let event = http_event(
        &parts,
        &body,
        &route.route_key(),
        &params,
        peer,
        &gw.http_domain,
    );
    let lambda_req: LambdaRequest = match serde_json::from_value(event) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "could not build the API Gateway event");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let request: lambda_http::Request = lambda_req.into();
    match gw.functions.invoke_http(&route.binary, request).await {
        Ok(res) => {
            let (parts, body) = res.into_parts();
            let bytes: Vec<u8> = match body {
                lambda_http::Body::Empty => Vec::new(),
                lambda_http::Body::Text(t) => t.into_bytes(),
                lambda_http::Body::Binary(b) => b,
                _ => Vec::new(),
            };
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(e) => {
            // What API Gateway answers when a function fails.
            tracing::error!(function = %route.binary, error = %e, "function error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({"message": "Internal Server Error"})),
            )
                .into_response()
        }
    }
}

fn http_event(
    parts: &axum::http::request::Parts,
    body: &Bytes,
    route_key: &str,
    params: &HashMap<String, String>,
    peer: SocketAddr,
    domain: &str,
) -> Value {
    let mut headers = serde_json::Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.push(v);
            continue;
        }
        // HTTP API joins repeated headers with commas.
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|e| {
                if let Value::String(s) = e {
                    s.push(',');
                    s.push_str(&v);
                }
            })
            .or_insert(Value::String(v));
    }
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let mut query = serde_json::Map::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            urlencoding::decode(&s.replace('+', " "))
                .map(|c| c.into_owned())
                .unwrap_or_else(|_| s.to_owned())
        };
        let (k, v) = (decode(k), decode(v));
        query
            .entry(k)
            .and_modify(|e| {
                if let Value::String(s) = e {
                    s.push(',');
                    s.push_str(&v);
                }
            })
            .or_insert(Value::String(v));
    }
    let (body_value, is_b64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let now = Utc::now();
    let user_agent = parts
        .headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "cookies": cookies,
        "headers": headers,
        "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query) },
        "pathParameters": if params.is_empty() { Value::Null } else { json!(params) },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": domain,
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "body": if body.is_empty() { Value::Null } else { Value::String(body_value) },
        "isBase64Encoded": is_b64,
    })
}
