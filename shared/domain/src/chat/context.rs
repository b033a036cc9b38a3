//! Context-driven conversations: per team, the customer-context fields
//! whose change ends the current conversation. A context change naming one
//! closes the customer's chat (resolved by the system, reason
//! `context_change`, no rating asked); their next message opens a new chat
//! carrying the context as it is then. A change of other fields is kept on
//! the customer only.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::channel::Stakeholder;
use crate::config::{ConfigError, Env};
use crate::customer::ContextChange;

/// Why the system resolved a chat whose context changed.
pub const CONTEXT_CHANGE: &str = "context_change";

/// Fields a team may list, at most.
pub const MAX_FIELDS: usize = 50;

const EMBEDDED: [(Stakeholder, &str); 4] = [
    (
        Stakeholder::Partner,
        include_str!("../../../config/context/partner.yaml"),
    ),
    (
        Stakeholder::Customer,
        include_str!("../../../config/context/customer.yaml"),
    ),
    (
        Stakeholder::Vendor,
        include_str!("../../../config/context/vendor.yaml"),
    ),
    (
        Stakeholder::Srdp,
        include_str!("../../../config/context/srdp.yaml"),
    ),
];

/// Each team's fields whose change starts a new conversation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContextRules(pub BTreeMap<Stakeholder, BTreeSet<String>>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamFile {
    fields: BTreeSet<String>,
}

impl crate::settings::Named for ContextRules {
    const NAME: &'static str = "CONTEXT";
}

impl ContextRules {
    /// The four files shipped with the code, or those in `CONTEXT_DIR`
    /// (`partner.yaml`, `customer.yaml`, `vendor.yaml`, `srdp.yaml`).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mut rules = BTreeMap::new();
        for (team, embedded) in EMBEDDED {
            let fields = match env.get("CONTEXT_DIR") {
                Some(dir) => {
                    let path = format!("{dir}/{}.yaml", team.as_str().to_lowercase());
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| ConfigError::invalid("CONTEXT_DIR", format!("{path}: {e}")))?;
                    Self::team_file(&text)
                        .map_err(|e| ConfigError::invalid("CONTEXT_DIR", format!("{path}: {e}")))?
                }
                None => {
                    Self::team_file(embedded).map_err(|e| ConfigError::invalid("CONTEXT_DIR", e))?
                }
            };
            rules.insert(team, fields);
        }
        Self(rules)
            .validated()
            .map_err(|e| ConfigError::invalid("CONTEXT_DIR", e))
    }

    fn team_file(text: &str) -> Result<BTreeSet<String>, String> {
        serde_yaml_ng::from_str::<TeamFile>(text)
            .map(|f| f.fields)
            .map_err(|e| e.to_string())
    }

    /// Refuses teams nobody staffs and field names that cannot be ones
    /// (1–64 of `a-z`, `0-9`, `_`).
    pub fn validated(self) -> Result<Self, String> {
        for (team, fields) in &self.0 {
            if !team.is_staffed() {
                return Err(format!("{team} chats are automated and have no context"));
            }
            if fields.len() > MAX_FIELDS {
                return Err(format!("{team}: at most {MAX_FIELDS} fields"));
            }
            if let Some(bad) = fields.iter().find(|f| {
                f.is_empty()
                    || f.len() > 64
                    || !f
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            }) {
                return Err(format!(
                    "{team}: `{}` is not a field name (1–64 of a-z, 0-9, _)",
                    bad.chars().take(64).collect::<String>()
                ));
            }
        }
        Ok(self)
    }

    /// The fields of `change` that start a new conversation (none: the
    /// change is kept on the customer only).
    pub fn new_conversation_fields<'a>(&self, change: &'a ContextChange) -> Vec<&'a str> {
        let Some(fields) = self.0.get(&change.customer_type) else {
            return Vec::new();
        };
        change
            .context
            .keys()
            .filter(|k| fields.contains(k.as_str()))
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn partner_documents_and_dco_start_a_new_conversation_and_nothing_else() {
        let rules = ContextRules::from_env(&Env::default()).expect("the shipped files are valid");
        let change = |team: Stakeholder, context: serde_json::Value| ContextChange {
            customer: "919800000001".into(),
            customer_type: team,
            context: serde_json::from_value(context).unwrap(),
        };
        let docs = change(
            Stakeholder::Partner,
            json!({"documents_status": "approved", "city": "Pune"}),
        );
        assert_eq!(
            rules.new_conversation_fields(&docs),
            vec!["documents_status"]
        );
        let city = change(Stakeholder::Partner, json!({"city": "Mumbai"}));
        assert!(rules.new_conversation_fields(&city).is_empty());
        let vendor = change(Stakeholder::Vendor, json!({"documents_status": "approved"}));
        assert!(
            rules.new_conversation_fields(&vendor).is_empty(),
            "empty until the business decides"
        );
    }

    #[test]
    fn rules_name_staffed_teams_and_plain_fields() {
        let bad_team = ContextRules(BTreeMap::from([(
            Stakeholder::Discount,
            BTreeSet::from(["x".to_owned()]),
        )]));
        assert!(bad_team.validated().is_err());
        let bad_field = ContextRules(BTreeMap::from([(
            Stakeholder::Partner,
            BTreeSet::from(["Documents Status".to_owned()]),
        )]));
        assert!(bad_field.validated().is_err());
    }
}
