//! The function handlers, built once as each Lambda's `main.rs` would,
//! and invoked by binary name as the template routes them.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Context, LambdaEvent};

use adapters::pinbot::PinbotClient;
use adapters::{
    ApiGwPusher, DynamoStore, EventBridgePublisher, SqsForwardQueue, SqsInboundQueue,
    SqsOutboundQueue,
};

use crate::template::Template;

pub struct Functions {
    pub webhook: webhook::State<SqsInboundQueue, SqsForwardQueue>,
    pub api: api::State<DynamoStore, SqsInboundQueue, PinbotClient, ApiGwPusher, SqsOutboundQueue>,
    pub internal: internal::State<DynamoStore, ApiGwPusher, EventBridgePublisher>,
    pub forward: forward::State,
    pub outbound: outbound::State<DynamoStore, PinbotClient, ApiGwPusher>,
    pub inbound: inbound::State<DynamoStore, ApiGwPusher, EventBridgePublisher, SqsOutboundQueue>,
    pub ws_connect: ws_connect::State<DynamoStore>,
    pub ws_disconnect: ws_disconnect::State<DynamoStore, ApiGwPusher>,
    pub sla_scan: sla_scan::State<DynamoStore, ApiGwPusher, SqsOutboundQueue, EventBridgePublisher>,
    pub counter_sync: counter_sync::State<DynamoStore, ApiGwPusher>,
    pub booking_alerts: booking_alerts::State<DynamoStore, SqsOutboundQueue>,
    pub web: web::State,
    pub ws_events:
        ws_events::State<DynamoStore, ApiGwPusher, SqsOutboundQueue, EventBridgePublisher>,
}

/// The binaries the gateway can run; the template must name no other.
pub const KNOWN: [&str; 13] = [
    "webhook",
    "api",
    "forward",
    "outbound",
    "internal",
    "inbound",
    "ws-connect",
    "ws-disconnect",
    "sla-scan",
    "counter-sync",
    "booking-alerts",
    "web",
    "ws-events",
];

type BoxError = lambda_runtime::Error;

impl Functions {
    pub async fn invoke_http(
        &self,
        binary: &str,
        req: lambda_http::Request,
    ) -> Result<lambda_http::Response<lambda_http::Body>, BoxError> {
        match binary {
            "webhook" => webhook::handle(&self.webhook, req).await,
            "api" => api::handle(&self.api, req).await,
            "internal" => internal::handle(&self.internal, req).await,
            "web" => web::handle(&self.web, req).await,
            other => Err(format!("{other} is not an HTTP function").into()),
        }
    }

    pub async fn invoke_ws(
        &self,
        template: &Template,
        route_key: &str,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> Result<ApiGatewayProxyResponse, BoxError> {
        let binary = template
            .ws_route(route_key)
            .map(|r| r.binary.as_str())
            .ok_or_else(|| format!("template has no WebSocket route {route_key}"))?;
        let event = LambdaEvent::new(event, Context::default());
        match binary {
            "ws-connect" => ws_connect::handle(&self.ws_connect, event).await,
            "ws-disconnect" => ws_disconnect::handle(&self.ws_disconnect, event).await,
            "ws-events" => ws_events::handle(&self.ws_events, event).await,
            other => Err(format!("{other} is not a WebSocket function").into()),
        }
    }

    pub async fn invoke_sqs(
        &self,
        binary: &str,
        event: SqsEvent,
    ) -> Result<SqsBatchResponse, BoxError> {
        let event = LambdaEvent::new(event, Context::default());
        match binary {
            "inbound" => inbound::handle(&self.inbound, event).await,
            "forward" => forward::handle(&self.forward, event).await,
            "outbound" => outbound::handle(&self.outbound, event).await,
            other => Err(format!("{other} is not a queue consumer").into()),
        }
    }

    /// Runs a scheduled function with an EventBridge scheduled event;
    /// what it reports, as JSON.
    pub async fn invoke_schedule(
        &self,
        binary: &str,
        event: EventBridgeEvent,
    ) -> Result<serde_json::Value, BoxError> {
        let event = LambdaEvent::new(event, Context::default());
        match binary {
            "sla-scan" => sla_scan::handle(&self.sla_scan, event).await.map(|r| {
                serde_json::json!({
                    "examined": r.examined,
                    "alerts": r.alerts,
                    "escalations": r.escalations,
                    "requeued": r.requeued,
                    "sends_requeued": r.sends_requeued,
                    "sends_failed": r.sends_failed,
                    "events_published": r.events_published,
                })
            }),
            "counter-sync" => counter_sync::handle(&self.counter_sync, event)
                .await
                .map(|r| {
                    serde_json::json!({
                        "drifting": r.drifting,
                        "repaired": r.repaired,
                        "went_offline": r.went_offline,
                        "connections_closed": r.connections_closed,
                    })
                }),
            "booking-alerts" => booking_alerts::handle(&self.booking_alerts, event)
                .await
                .map(|r| serde_json::json!(r)),
            other => Err(format!("{other} is not a scheduled function").into()),
        }
    }
}
