//! API Gateway WebSocket events: what the `$connect`, `$disconnect` and
//! event-route functions read from them and answer.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use base64::Engine;

use domain::protocol::ConnectionId;

pub fn connection_id(req: &ApiGatewayWebsocketProxyRequest) -> Option<ConnectionId> {
    req.request_context
        .connection_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| ConnectionId(c.to_owned()))
}

/// The frame's text; a binary frame must still be UTF-8 JSON.
pub fn body_text(req: &ApiGatewayWebsocketProxyRequest) -> Result<String, String> {
    let raw = req.body.clone().unwrap_or_default();
    if !req.is_base64_encoded {
        return Ok(raw);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.as_bytes())
        .map_err(|_| "frame body is not valid base64".to_owned())?;
    String::from_utf8(bytes).map_err(|_| "frame is not UTF-8 text".to_owned())
}

/// A route response: on `$connect` a non-2xx status refuses the handshake.
pub fn response(status: u16, body: Option<String>) -> ApiGatewayProxyResponse {
    let mut res = ApiGatewayProxyResponse::default();
    res.status_code = i64::from(status);
    res.body = body.map(Body::Text);
    res
}
