//! Each function's environment, as Lambda would give it: the template's
//! `Environment` for that function (`Globals` and its own), with `!Ref`s
//! to parameters answered by the local configuration (else the template's
//! defaults) and `!Ref`s to resources by what the gateway created. The
//! functions are then built by the same `State::from_env` their `main.rs`
//! calls, so every local run and test exercises the deployed wiring.
//!
//! A few variables have no local meaning in the template (the
//! `@connections` endpoint is an `execute-api` URL) or are local-only
//! knobs (the provider recorder, shorter retry waits): [`FunctionEnvs`]
//! sets those after the template's, and says which in `local`.

use std::collections::BTreeMap;

use domain::config::Env;
use domain::whatsapp::signature::WebhookAuth;

use crate::Config;
use crate::bootstrap::Resources;
use crate::template::Template;

pub struct FunctionEnvs<'a> {
    template: &'a Template,
    resources: &'a Resources,
    /// Template parameter values of this stack.
    parameters: BTreeMap<String, String>,
    /// Set after the template's variables, for every function.
    local: BTreeMap<String, String>,
}

/// What the gateway decided at start-up that functions need to know.
pub struct Local {
    pub ws_endpoint: String,
    pub pinbot_base_url: Option<String>,
    pub communication_master_url: String,
    pub inbound_max_receives: u32,
    pub outbound_max_attempts: u32,
}

impl<'a> FunctionEnvs<'a> {
    pub fn new(
        template: &'a Template,
        resources: &'a Resources,
        cfg: &Config,
        local: Local,
    ) -> Self {
        let secret = |s: &Option<domain::secret::Secret>| {
            s.as_ref()
                .map(|s| s.expose().to_owned())
                .unwrap_or_default()
        };
        let (app_secret, webhook_token) = match &cfg.webhook_auth {
            WebhookAuth::Signature(s) => (s.expose().to_owned(), String::new()),
            WebhookAuth::Token(t) => (String::new(), t.expose().to_owned()),
            WebhookAuth::Open => (String::new(), String::new()),
        };
        let number = |n: &Option<domain::customer::SenderId>| {
            n.as_ref().map(ToString::to_string).unwrap_or_default()
        };
        let mut parameters = template.parameters.clone();
        parameters.extend(
            [
                // Secrets come from the configuration below, not SSM.
                ("SecretsParameterPath", String::new()),
                ("JwtSecretKey", cfg.jwt_secret.expose().to_owned()),
                (
                    "ExternalJwtIssuer",
                    cfg.external_jwt
                        .as_ref()
                        .map(|e| e.issuer.clone())
                        .unwrap_or_default(),
                ),
                (
                    "ExternalJwtMaxTtlSecs",
                    cfg.external_jwt
                        .as_ref()
                        .map_or(3600, |e| e.max_ttl.num_seconds())
                        .to_string(),
                ),
                ("WebhookVerifyToken", secret(&cfg.verify_token)),
                ("WebhookAppSecret", app_secret),
                ("WebhookToken", webhook_token),
                ("InternalWebhookToken", secret(&cfg.internal_token)),
                ("AdminToken", secret(&cfg.admin_token)),
                ("CommunicationMasterUrl", local.communication_master_url),
                ("MaxWebhookBodyBytes", cfg.max_webhook_body.to_string()),
                (
                    "InboundMaxReceiveCount",
                    local.inbound_max_receives.to_string(),
                ),
                (
                    "OutboundMaxAttempts",
                    local.outbound_max_attempts.to_string(),
                ),
                (
                    "SlaAlertAfterSecs",
                    cfg.sla.alert_after.as_secs().to_string(),
                ),
                (
                    "SlaEscalateAfterSecs",
                    cfg.sla.escalate_after.as_secs().to_string(),
                ),
                ("SlaAlertGroupNumber", number(&cfg.sla.alert_group)),
                ("SlaShiftLeadNumber", number(&cfg.sla.shift_lead)),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        let mut vars = BTreeMap::from([
            (
                "DASHBOARD_WS_URL".to_owned(),
                local.ws_endpoint.replacen("http://", "ws://", 1),
            ),
            ("WS_MANAGEMENT_ENDPOINT".to_owned(), local.ws_endpoint),
            (
                "OUTBOUND_BACKOFF_BASE_MS".to_owned(),
                cfg.outbound_backoff.base.as_millis().to_string(),
            ),
            (
                "OUTBOUND_BACKOFF_CAP_SECS".to_owned(),
                cfg.outbound_backoff.cap.as_secs().to_string(),
            ),
            (
                "OUTBOUND_CONFIRM_WAIT_SECS".to_owned(),
                cfg.outbound_confirm_wait.as_secs().to_string(),
            ),
        ]);
        if let Some(base) = local.pinbot_base_url {
            vars.insert("PINBOT_BASE_URL".to_owned(), base);
        }
        for (name, key) in cfg.provider_keys.iter() {
            vars.insert(name.to_owned(), key.expose().to_owned());
        }
        // Configuration files a developer points the stack at.
        for name in ["CHANNELS_FILE", "TAGS_FILE", "MESSAGES_FILE"] {
            if let Ok(path) = std::env::var(name) {
                vars.insert(name.to_owned(), path);
            }
        }
        Self {
            template,
            resources,
            parameters,
            local: vars,
        }
    }

    /// A parameter's value, or a resource's name (table, bus) or URL (queue).
    fn lookup(&self, id: &str) -> Option<String> {
        self.parameters
            .get(id)
            .or_else(|| self.resources.tables.get(id))
            .or_else(|| self.resources.queue_urls.get(id))
            .or_else(|| self.resources.event_buses.get(id))
            .cloned()
    }

    /// The environment of the function built from `binary`.
    pub fn env(&self, binary: &str) -> Env {
        let (env, unresolved) = self.resolve(binary);
        for name in unresolved {
            tracing::warn!(function = binary, variable = %name, "template variable has no local value");
        }
        env
    }

    /// The environment, and the template's variables that have no local
    /// value (naming something the gateway does not create) and are not
    /// set locally either.
    fn resolve(&self, binary: &str) -> (Env, Vec<String>) {
        let mut env = Env::default();
        let mut unresolved = Vec::new();
        for (name, value) in self.template.environments.get(binary).into_iter().flatten() {
            match value.resolve(|id| self.lookup(id)) {
                Some(v) => {
                    env.set(name.clone(), v);
                }
                None if self.local.contains_key(name) => {}
                None => unresolved.push(name.clone()),
            }
        }
        for (name, value) in &self.local {
            env.set(name.clone(), value.clone());
        }
        (env, unresolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn template() -> Template {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        Template::load(&path).expect("the template parses")
    }

    fn resources(template: &Template) -> Resources {
        let named = |ids: Vec<String>, f: fn(&str) -> String| -> HashMap<String, String> {
            ids.into_iter()
                .map(|id| {
                    let v = f(&id);
                    (id, v)
                })
                .collect()
        };
        Resources {
            tables: named(
                template
                    .tables
                    .iter()
                    .map(|t| t.logical_id.clone())
                    .collect(),
                |id| format!("local-{id}"),
            ),
            event_buses: named(template.event_buses.clone(), |id| format!("bus-{id}")),
            queue_urls: named(
                template
                    .queues
                    .iter()
                    .map(|q| q.logical_id.clone())
                    .collect(),
                |id| format!("http://127.0.0.1:4566/000000000000/{id}"),
            ),
            queue_arns: HashMap::new(),
        }
    }

    fn envs<'a>(
        template: &'a Template,
        resources: &'a Resources,
        cfg: &Config,
    ) -> FunctionEnvs<'a> {
        FunctionEnvs::new(
            template,
            resources,
            cfg,
            Local {
                ws_endpoint: "http://127.0.0.1:3001".into(),
                pinbot_base_url: Some("http://127.0.0.1:3002".into()),
                communication_master_url: "http://127.0.0.1:3002/cm".into(),
                inbound_max_receives: 5,
                outbound_max_attempts: 8,
            },
        )
    }

    #[test]
    fn every_function_gets_the_template_environment_with_local_values() {
        let template = template();
        let resources = resources(&template);
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cfg = Config::ephemeral(
            crate::emulators::Endpoints {
                dynamodb: "http://127.0.0.1:8000".into(),
                sqs: "http://127.0.0.1:4566".into(),
                eventbridge: "http://127.0.0.1:4567".into(),
            },
            &workspace,
        );
        let envs = envs(&template, &resources, &cfg);
        for binary in crate::functions::KNOWN {
            assert!(
                template.environments.contains_key(binary),
                "{binary} has no environment in the template"
            );
            let (_, unresolved) = envs.resolve(binary);
            assert!(
                unresolved.is_empty(),
                "{binary}: no local value for {unresolved:?}"
            );
        }
        let inbound = envs.env("inbound");
        assert_eq!(inbound.get("CHATS_TABLE"), Some("local-ChatsTable"));
        assert_eq!(inbound.get("EVENT_BUS_NAME"), Some("bus-DomainEventBus"));
        assert_eq!(inbound.get("INBOUND_MAX_RECEIVES"), Some("5"));
        assert_eq!(
            inbound.get("WS_MANAGEMENT_ENDPOINT"),
            Some("http://127.0.0.1:3001")
        );
        let api = envs.env("api");
        assert_eq!(
            api.secret("JWT_SECRET_KEY").map(|s| s.expose().to_owned()),
            Some(cfg.jwt_secret.expose().to_owned())
        );
        assert_eq!(
            api.get("OUTBOUND_QUEUE_URL"),
            Some("http://127.0.0.1:4566/000000000000/OutboundQueue")
        );
        // No parameter store locally: the path is blank, so unset.
        assert_eq!(api.get("SECRETS_SSM_PATH"), None);
        assert_eq!(envs.env("outbound").get("OUTBOUND_MAX_ATTEMPTS"), Some("8"));
        assert_eq!(
            envs.env("forward").get("COMMUNICATION_MASTER_URL"),
            Some("http://127.0.0.1:3002/cm")
        );
    }
}
