//! Reads `template.yaml` so the local stack has exactly the deployed
//! tables, queues and routes: one definition, no drift.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_yaml_ng::Value;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template.yaml could not be read")]
    Read(#[from] std::io::Error),
    #[error("template.yaml is not valid YAML")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("template.yaml: {0}")]
    Shape(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinition {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyElement {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Projection {
    pub projection_type: String,
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GlobalSecondaryIndex {
    pub index_name: String,
    pub key_schema: Vec<KeyElement>,
    pub projection: Projection,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimeToLive {
    pub attribute_name: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableDef {
    #[serde(skip)]
    pub logical_id: String,
    pub attribute_definitions: Vec<AttributeDefinition>,
    pub key_schema: Vec<KeyElement>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<GlobalSecondaryIndex>,
    pub time_to_live_specification: Option<TimeToLive>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDef {
    pub logical_id: String,
    pub fifo: bool,
    pub content_based_dedup: bool,
    pub visibility_timeout: Option<u32>,
    /// (logical id of the dead-letter queue, maxReceiveCount)
    pub redrive: Option<(String, u32)>,
}

impl QueueDef {
    /// The local queue name: FIFO queues must end in `.fifo`.
    pub fn local_name(&self, prefix: &str) -> String {
        if self.fifo {
            format!("{prefix}{}.fifo", self.logical_id)
        } else {
            format!("{prefix}{}", self.logical_id)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub method: String,
    pub path: String,
    /// The function's binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
}

impl HttpRoute {
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Path parameters when `path` matches this route's pattern.
    pub fn matches(&self, method: &str, path: &str) -> Option<HashMap<String, String>> {
        if !self.method.eq_ignore_ascii_case(method) && self.method != "ANY" {
            return None;
        }
        let pattern: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        let actual: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut params = HashMap::new();
        for (i, seg) in pattern.iter().enumerate() {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                params.insert(name.to_owned(), actual.get(i..)?.join("/"));
                return Some(params);
            }
            let got = actual.get(i)?;
            match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) if !got.is_empty() => {
                    let decoded = urlencoding::decode(got)
                        .map(|c| c.into_owned())
                        .unwrap_or_else(|_| (*got).to_owned());
                    params.insert(name.to_owned(), decoded);
                }
                Some(_) => return None,
                None if seg == got => {}
                None => return None,
            }
        }
        (pattern.len() == actual.len()).then_some(params)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsRoute {
    pub route_key: String,
    pub binary: String,
}

/// A function run on a schedule (a `Schedule` event of a function).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSource {
    /// `{function logical id}{event name}`, as the rule's name.
    pub rule: String,
    pub binary: String,
    /// The rule's period, from `rate(n minute(s)|hour(s))`.
    pub every: std::time::Duration,
}

/// The period of a `rate(…)` schedule expression.
pub fn rate(expression: &str) -> Option<std::time::Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let secs = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(n * secs))
}

/// A function consuming a queue (an `SQS` event of a function).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsSource {
    pub queue: String,
    pub binary: String,
    /// Records per invocation (`BatchSize`, SQS's default 10).
    pub batch_size: u32,
    /// The consuming function's `Timeout` (its own or `Globals`), seconds.
    pub function_timeout: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Template {
    pub parameters: BTreeMap<String, String>,
    pub tables: Vec<TableDef>,
    pub queues: Vec<QueueDef>,
    pub http_routes: Vec<HttpRoute>,
    pub ws_routes: Vec<WsRoute>,
    pub sqs_sources: Vec<SqsSource>,
    pub schedules: Vec<ScheduleSource>,
    /// Logical ids of `AWS::Events::EventBus` resources.
    pub event_buses: Vec<String>,
    /// Each function's `Environment.Variables` (`Globals` merged with its
    /// own), by binary.
    pub environments: BTreeMap<String, BTreeMap<String, EnvValue>>,
}

/// A value in a function's `Environment.Variables`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvValue {
    Literal(String),
    /// `!Ref X`: a parameter's value, or a table's name, a queue's URL, a
    /// bus's name.
    Ref(String),
    /// `!Sub "…${X}…"`.
    Sub(String),
}

impl EnvValue {
    fn parse(v: &Value) -> Option<Self> {
        match v {
            Value::String(s) => Some(Self::Literal(s.clone())),
            Value::Number(n) => Some(Self::Literal(n.to_string())),
            Value::Bool(b) => Some(Self::Literal(b.to_string())),
            Value::Tagged(tag) => {
                let inner = tag.value.as_str()?.to_owned();
                match tag.tag.to_string().as_str() {
                    "!Ref" => Some(Self::Ref(inner)),
                    "!Sub" => Some(Self::Sub(inner)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The value, with `lookup` answering for logical ids and parameters;
    /// `None` when something it names is unknown.
    pub fn resolve(&self, lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
        match self {
            Self::Literal(s) => Some(s.clone()),
            Self::Ref(id) => lookup(id),
            Self::Sub(text) => {
                let mut out = String::new();
                let mut rest = text.as_str();
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let end = rest[start..].find('}')? + start;
                    out.push_str(&lookup(&rest[start + 2..end])?);
                    rest = &rest[end + 1..];
                }
                out.push_str(rest);
                Some(out)
            }
        }
    }
}

/// The `Environment.Variables` mapping under `v`, parsed.
fn variables(v: Option<&Value>) -> BTreeMap<String, EnvValue> {
    v.and_then(|e| get(e, "Variables"))
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), EnvValue::parse(v)?)))
        .collect()
}

/// A function's `Timeout`: its own, else `Globals.Function.Timeout`, else
/// Lambda's default of 3 s.
fn timeout_of(props: &Value, root: &Value) -> u32 {
    get(props, "Timeout")
        .or_else(|| {
            get(root, "Globals")
                .and_then(|g| get(g, "Function"))
                .and_then(|f| get(f, "Timeout"))
        })
        .and_then(Value::as_u64)
        .map_or(3, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping()?.get(key)
}

fn shape(msg: impl Into<String>) -> TemplateError {
    TemplateError::Shape(msg.into())
}

/// The logical id behind `!Ref X`, `!GetAtt X.Arn` or a `${X...}` in `!Sub`.
fn tagged_target(v: &Value) -> Option<String> {
    let Value::Tagged(t) = v else { return None };
    let inner = t.value.as_str()?;
    match t.tag.to_string().as_str() {
        "!Ref" => Some(inner.to_owned()),
        "!GetAtt" => inner.split('.').next().map(str::to_owned),
        _ => None,
    }
}

impl Template {
    pub fn load(path: &std::path::Path) -> Result<Self, TemplateError> {
        Self::parse(&std::fs::read_to_string(path)?)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let root: Value = serde_yaml_ng::from_str(text)?;
        let mut t = Template::default();

        if let Some(params) = get(&root, "Parameters").and_then(Value::as_mapping) {
            for (name, def) in params {
                if let (Some(name), Some(default)) = (name.as_str(), get(def, "Default")) {
                    let value = match default {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => continue,
                    };
                    t.parameters.insert(name.to_owned(), value);
                }
            }
        }

        let resources = get(&root, "Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| shape("no Resources"))?;
        let mut binaries: HashMap<String, String> = HashMap::new();
        let mut integrations: HashMap<String, String> = HashMap::new();
        let mut routes: Vec<(String, String)> = Vec::new();

        for (id, res) in resources {
            let id = id
                .as_str()
                .ok_or_else(|| shape("a resource id is not a string"))?;
            let kind = get(res, "Type").and_then(Value::as_str).unwrap_or_default();
            let props = get(res, "Properties").cloned().unwrap_or(Value::Null);
            match kind {
                "AWS::DynamoDB::Table" => {
                    let mut table: TableDef = serde_yaml_ng::from_value(props)
                        .map_err(|e| shape(format!("{id}: {e}")))?;
                    table.logical_id = id.to_owned();
                    t.tables.push(table);
                }
                "AWS::SQS::Queue" => t.queues.push(queue(id, &props, &t.parameters)?),
                "AWS::Events::EventBus" => t.event_buses.push(id.to_owned()),
                "AWS::Serverless::Function" => {
                    let binary = get(res, "Metadata")
                        .and_then(|m| get(m, "BuildProperties"))
                        .and_then(|b| get(b, "Binary"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            shape(format!("{id}: no Metadata.BuildProperties.Binary"))
                        })?;
                    binaries.insert(id.to_owned(), binary.to_owned());
                    let globals = get(&root, "Globals")
                        .and_then(|g| get(g, "Function"))
                        .and_then(|f| get(f, "Environment"));
                    let mut env = variables(globals);
                    env.extend(variables(get(&props, "Environment")));
                    t.environments.insert(binary.to_owned(), env);
                    if let Some(events) = get(&props, "Events").and_then(Value::as_mapping) {
                        for (name, ev) in events {
                            if get(ev, "Type").and_then(Value::as_str) == Some("Schedule") {
                                let expr = get(ev, "Properties")
                                    .and_then(|p| get(p, "Schedule"))
                                    .and_then(Value::as_str)
                                    .unwrap_or_default();
                                let every = rate(expr).ok_or_else(|| {
                                    shape(format!("{id}: Schedule must be rate(n minutes|hours|days), got {expr:?}"))
                                })?;
                                t.schedules.push(ScheduleSource {
                                    rule: format!("{id}{}", name.as_str().unwrap_or_default()),
                                    binary: binary.to_owned(),
                                    every,
                                });
                                continue;
                            }
                            if get(ev, "Type").and_then(Value::as_str) == Some("SQS") {
                                let queue = get(ev, "Properties")
                                    .and_then(|p| get(p, "Queue"))
                                    .and_then(tagged_target)
                                    .ok_or_else(|| {
                                        shape(format!(
                                            "{id}: SQS event Queue must be !GetAtt Queue.Arn"
                                        ))
                                    })?;
                                let batch_size = get(ev, "Properties")
                                    .and_then(|p| get(p, "BatchSize"))
                                    .and_then(Value::as_u64)
                                    .map_or(10, |n| u32::try_from(n).unwrap_or(u32::MAX));
                                t.sqs_sources.push(SqsSource {
                                    queue,
                                    binary: binary.to_owned(),
                                    batch_size,
                                    function_timeout: timeout_of(&props, &root),
                                });
                                continue;
                            }
                            if get(ev, "Type").and_then(Value::as_str) != Some("HttpApi") {
                                continue;
                            }
                            let p = get(ev, "Properties").ok_or_else(|| {
                                shape(format!("{id}: HttpApi event without Properties"))
                            })?;
                            let method = get(p, "Method").and_then(Value::as_str).unwrap_or("ANY");
                            let path = get(p, "Path").and_then(Value::as_str).ok_or_else(|| {
                                shape(format!("{id}: HttpApi event without Path"))
                            })?;
                            t.http_routes.push(HttpRoute {
                                method: method.to_ascii_uppercase(),
                                path: path.to_owned(),
                                binary: binary.to_owned(),
                            });
                        }
                    }
                }
                "AWS::ApiGatewayV2::Integration" => {
                    // IntegrationUri: !Sub "...${SomeFunction.Arn}/invocations"
                    let function = match get(&props, "IntegrationUri") {
                        Some(Value::Tagged(tag)) => tag.value.as_str().and_then(|uri| {
                            uri.split("${")
                                .find(|s| s.contains(".Arn}"))
                                .and_then(|s| s.split('.').next())
                                .map(str::to_owned)
                        }),
                        _ => None,
                    };
                    if let Some(f) = function {
                        integrations.insert(id.to_owned(), f);
                    }
                }
                "AWS::ApiGatewayV2::Route" => {
                    let key = get(&props, "RouteKey")
                        .and_then(Value::as_str)
                        .ok_or_else(|| shape(format!("{id}: no RouteKey")))?;
                    // Target: !Sub "integrations/${SomeIntegration}"
                    let target = match get(&props, "Target") {
                        Some(Value::Tagged(tag)) => tag
                            .value
                            .as_str()
                            .and_then(|s| s.split("${").nth(1))
                            .and_then(|s| s.split('}').next())
                            .map(str::to_owned),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        shape(format!(
                            "{id}: Target must be !Sub \"integrations/${{Integration}}\""
                        ))
                    })?;
                    routes.push((key.to_owned(), target));
                }
                _ => {}
            }
        }

        for (key, integration) in routes {
            let function = integrations
                .get(&integration)
                .ok_or_else(|| shape(format!("route {key}: unknown integration {integration}")))?;
            let binary = binaries
                .get(function)
                .ok_or_else(|| shape(format!("route {key}: unknown function {function}")))?;
            t.ws_routes.push(WsRoute {
                route_key: key,
                binary: binary.clone(),
            });
        }
        // AWS refuses an event source whose queue hides a message for less
        // than the function may run; refuse it here first.
        for src in &t.sqs_sources {
            let visible_again = t
                .queues
                .iter()
                .find(|q| q.logical_id == src.queue)
                .and_then(|q| q.visibility_timeout)
                .unwrap_or(30);
            if visible_again < src.function_timeout {
                return Err(shape(format!(
                    "{}: VisibilityTimeout {visible_again} s is shorter than the timeout ({} s) of {}, which consumes it",
                    src.queue, src.function_timeout, src.binary
                )));
            }
        }
        Ok(t)
    }

    /// The function consuming `queue`.
    pub fn consumer_of(&self, queue: &str) -> Option<&SqsSource> {
        self.sqs_sources.iter().find(|s| s.queue == queue)
    }

    pub fn ws_route(&self, key: &str) -> Option<&WsRoute> {
        self.ws_routes.iter().find(|r| r.route_key == key)
    }
}

fn queue(
    id: &str,
    props: &Value,
    params: &BTreeMap<String, String>,
) -> Result<QueueDef, TemplateError> {
    let as_u32 = |v: &Value| -> Option<u32> {
        match v {
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            Value::String(s) => s.parse().ok(),
            tagged @ Value::Tagged(_) => tagged_target(tagged)
                .and_then(|p| params.get(&p))
                .and_then(|s| s.parse().ok()),
            _ => None,
        }
    };
    let redrive = match get(props, "RedrivePolicy") {
        Some(r) => {
            let dlq = get(r, "deadLetterTargetArn")
                .and_then(tagged_target)
                .ok_or_else(|| {
                    shape(format!(
                        "{id}: deadLetterTargetArn must be !GetAtt Queue.Arn"
                    ))
                })?;
            let max = get(r, "maxReceiveCount")
                .and_then(as_u32)
                .ok_or_else(|| shape(format!("{id}: maxReceiveCount must resolve to a number")))?;
            Some((dlq, max))
        }
        None => None,
    };
    Ok(QueueDef {
        logical_id: id.to_owned(),
        fifo: get(props, "FifoQueue")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        content_based_dedup: get(props, "ContentBasedDeduplication")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        visibility_timeout: get(props, "VisibilityTimeout").and_then(as_u32),
        redrive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_read_with_their_rates() {
        let t = repo_template();
        let every = |binary: &str| {
            t.schedules
                .iter()
                .find(|s| s.binary == binary)
                .map(|s| s.every.as_secs())
        };
        assert_eq!(every("sla-scan"), Some(60));
        assert_eq!(every("counter-sync"), Some(300));
        assert_eq!(every("booking-alerts"), Some(3600));
        assert_eq!(
            rate("rate(1 minute)"),
            Some(std::time::Duration::from_secs(60))
        );
        assert_eq!(
            rate("rate(2 hours)"),
            Some(std::time::Duration::from_secs(7200))
        );
        assert_eq!(rate("cron(0 * * * ? *)"), None);
        assert_eq!(rate("rate(0 minutes)"), None);
    }

    #[test]
    fn the_send_function_outlives_its_worst_batch_and_its_queue_outlives_it() {
        let t = repo_template();
        let send = t
            .consumer_of("OutboundQueue")
            .expect("the send queue has a consumer");
        // Every send of a batch may wait the provider's whole timeout, plus
        // a few store requests each.
        let per_send = adapters::pinbot::TOTAL_TIMEOUT.as_secs() + 3;
        let worst = u64::from(send.batch_size) * per_send;
        assert!(
            u64::from(send.function_timeout) >= worst + 10,
            "outbound Timeout {} s; a batch of {} may take {worst} s",
            send.function_timeout,
            send.batch_size
        );
        // A claimed send stays claimed while the invocation may still run.
        assert!(outbound::LEASE.as_secs() >= u64::from(send.function_timeout));
        let inbound = t.consumer_of("InboundQueue").expect("inbound consumer");
        assert!(inbound.batch_size >= 1);
    }

    #[test]
    fn a_queue_hiding_messages_for_less_than_its_consumer_runs_is_refused() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml"),
        )
        .expect("template");
        let send_queue = "# At least the send function's Timeout (AWS requires it).\n      VisibilityTimeout: 90";
        assert!(
            text.contains(send_queue),
            "the send queue's VisibilityTimeout is 90"
        );
        let broken = text.replacen(
            send_queue,
            "# At least the send function's Timeout (AWS requires it).\n      VisibilityTimeout: 20",
            1,
        );
        let err = Template::parse(&broken).expect_err("refused").to_string();
        assert!(
            err.contains("OutboundQueue: VisibilityTimeout 20 s"),
            "{err}"
        );
    }

    fn repo_template() -> Template {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        Template::load(&path).expect("template.yaml parses")
    }

    #[test]
    fn the_repository_template_defines_tables_queues_and_routes() {
        let t = repo_template();
        let tables: Vec<_> = t.tables.iter().map(|t| t.logical_id.as_str()).collect();
        assert!(tables.contains(&"ChatsTable"), "{tables:?}");
        assert!(tables.contains(&"ConnectionsTable"));
        assert!(tables.contains(&"ExecutivesTable"));
        let inbound = t
            .queues
            .iter()
            .find(|q| q.logical_id == "InboundQueue")
            .expect("inbound queue");
        assert!(inbound.fifo);
        assert_eq!(inbound.redrive, Some(("InboundDLQ".to_owned(), 5)));
        assert!(t.http_routes.iter().any(|r| r.route_key()
            == "POST /api/chats/whatsapp_chat/{channel}"
            && r.binary == "webhook"));
        assert_eq!(
            t.ws_route("$connect").map(|r| r.binary.as_str()),
            Some("ws-connect")
        );
        assert_eq!(
            t.ws_route("$default").map(|r| r.binary.as_str()),
            Some("ws-events")
        );
        assert_eq!(
            t.ws_route("join_chat").map(|r| r.binary.as_str()),
            Some("ws-events")
        );
    }

    #[test]
    fn every_supported_dashboard_event_has_a_websocket_route() {
        let t = repo_template();
        for event in domain::protocol::SUPPORTED_EVENTS {
            assert!(t.ws_route(event).is_some(), "no route for {event}");
        }
    }

    #[test]
    fn route_patterns_capture_path_parameters() {
        let r = HttpRoute {
            method: "POST".into(),
            path: "/api/chats/whatsapp_chat/{channel}".into(),
            binary: "webhook".into(),
        };
        let p = r
            .matches("POST", "/api/chats/whatsapp_chat/9099039188")
            .expect("matches");
        assert_eq!(p.get("channel").map(String::as_str), Some("9099039188"));
        assert!(r.matches("GET", "/api/chats/whatsapp_chat/1").is_none());
        assert!(r.matches("POST", "/api/chats/whatsapp_chat").is_none());
        assert!(
            r.matches("POST", "/api/chats/whatsapp_chat/1/extra")
                .is_none()
        );
    }
}
