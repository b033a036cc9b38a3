//! The HTTP API's response conventions (SPEC §3), free of any Lambda type:
//! success bodies carry `"status":1`, errors
//! `{"status":0,"error":{"code","message"}}` with a 4xx for the caller's
//! mistakes and a 5xx only when a dependency is down.

use http::{Response, StatusCode, header};
use serde_json::{Value, json};

/// An error answer: the status, a stable code, a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Field-level problems, for payload validation errors.
    pub fields: Option<std::collections::BTreeMap<String, String>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: None,
        }
    }

    /// 400 listing every bad field.
    pub fn invalid_fields(errors: domain::customer::FieldErrors) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_payload", errors.summary());
        e.fields = Some(errors.0);
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// A dependency is down: the caller should retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn into_response(self) -> Response<String> {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(fields) = self.fields {
            error["fields"] = json!(fields);
        }
        json_response(self.status, &json!({"status": 0, "error": error}))
    }
}

pub fn json_response(status: StatusCode, body: &Value) -> Response<String> {
    let mut res = Response::new(body.to_string());
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    res
}

pub fn text_response(status: StatusCode, body: String) -> Response<String> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// Reads a JSON request body, answering 400 with the parser's reason.
pub fn parse_json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("request body is empty"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}
