//! Chat tags (SPEC §7): predefined per stakeholder, applied and removed by
//! agents; one system tag the product manages itself.

use crate::error::StoreError;
use std::future::Future;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::channel::Stakeholder;

/// Set when an agent replied last, cleared when the customer answers;
/// agents cannot apply or remove it, and it is never a predefined tag.
pub const AWAITING_CUSTOMER_RESPONSE: &str = "Awaiting Customer Response";

/// Most tags one chat carries.
pub const MAX_TAGS_PER_CHAT: usize = 10;
/// Most predefined tags one stakeholder has.
/// (A team's seed is one DynamoDB transaction: at most 100 items.)
pub const MAX_TAGS_PER_TEAM: usize = 50;
/// Longest tag name, in characters.
pub const MAX_TAG_CHARS: usize = 40;

/// A tag's display name: trimmed, inner whitespace collapsed, 1–40
/// printable characters. Tags compare case-insensitively (`key`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TagName(String);

impl TagName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() {
            return Err("tag must not be blank".into());
        }
        if name.chars().count() > MAX_TAG_CHARS {
            return Err(format!("tag must be at most {MAX_TAG_CHARS} characters"));
        }
        if name.chars().any(char::is_control) {
            return Err("tag must not contain control characters".into());
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive identity of the tag (storage keys, matching).
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn is_system(&self) -> bool {
        self.0.eq_ignore_ascii_case(AWAITING_CUSTOMER_RESPONSE)
    }
}

impl std::fmt::Display for TagName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TagCatalogError {
    #[error("tags file is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("tags file: {0}")]
    Invalid(String),
}

/// The predefined tags each stakeholder starts with (config/tags.yaml).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TagCatalog(BTreeMap<Stakeholder, Vec<TagName>>);

#[derive(Deserialize)]
struct TagsFile {
    tags: BTreeMap<String, Vec<String>>,
}

const EMBEDDED: &str = include_str!("../../../config/tags.yaml");

impl TagCatalog {
    pub fn from_yaml(text: &str) -> Result<Self, TagCatalogError> {
        let file: TagsFile = serde_yaml_ng::from_str(text)?;
        let mut catalog = BTreeMap::new();
        for (team, names) in file.tags {
            let team =
                Stakeholder::parse(&team).map_err(|e| TagCatalogError::Invalid(e.to_string()))?;
            if !Stakeholder::SERVED.contains(&team) {
                return Err(TagCatalogError::Invalid(format!(
                    "{team} chats are automated and have no tags"
                )));
            }
            let mut tags: Vec<TagName> = Vec::new();
            for raw in names {
                let tag = TagName::parse(&raw)
                    .map_err(|e| TagCatalogError::Invalid(format!("{team}: {raw}: {e}")))?;
                if tag.is_system() {
                    return Err(TagCatalogError::Invalid(format!(
                        "{team}: {AWAITING_CUSTOMER_RESPONSE} is a system tag"
                    )));
                }
                if tags.iter().any(|t| t.key() == tag.key()) {
                    return Err(TagCatalogError::Invalid(format!(
                        "{team}: {tag} is listed twice"
                    )));
                }
                tags.push(tag);
            }
            if tags.len() > MAX_TAGS_PER_TEAM {
                return Err(TagCatalogError::Invalid(format!(
                    "{team}: more than {MAX_TAGS_PER_TEAM} tags"
                )));
            }
            catalog.insert(team, tags);
        }
        Ok(Self(catalog))
    }

    pub fn embedded() -> Result<Self, TagCatalogError> {
        Self::from_yaml(EMBEDDED)
    }

    /// `TAGS_FILE` when set, else the embedded list.
    pub fn from_env(env: &crate::config::Env) -> Result<Self, crate::config::ConfigError> {
        env.config_file("TAGS_FILE", EMBEDDED, Self::from_yaml)
    }

    /// The tags a stakeholder starts with.
    pub fn defaults(&self, team: Stakeholder) -> &[TagName] {
        self.0.get(&team).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// The team's tags, seeded from the catalog the first time anyone asks.
pub async fn team_tags<S: crate::chat::tags::TagStore>(
    store: &S,
    catalog: &TagCatalog,
    team: Stakeholder,
) -> Result<Vec<TagName>, crate::error::StoreError> {
    if let Some(tags) = store.team_tags(team).await? {
        return Ok(tags);
    }
    store.seed_team_tags(team, catalog.defaults(team)).await?;
    Ok(store.team_tags(team).await?.unwrap_or_default())
}

/// The predefined tags of each stakeholder.
pub trait TagStore: Send + Sync {
    /// The team's tags, or `None` when they were never seeded.
    fn team_tags(
        &self,
        team: Stakeholder,
    ) -> impl Future<Output = Result<Option<Vec<TagName>>, StoreError>> + Send;

    /// Seeds the team's tags unless that has happened already (by anyone).
    fn seed_team_tags(
        &self,
        team: Stakeholder,
        tags: &[TagName],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds a tag; `false` when the team has it already.
    fn add_team_tag(
        &self,
        team: Stakeholder,
        tag: &TagName,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes a tag; `false` when the team had no such tag.
    fn remove_team_tag(
        &self,
        team: Stakeholder,
        tag: &TagName,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_bounded() {
        assert_eq!(
            TagName::parse("  Payment   Issue ").unwrap().as_str(),
            "Payment Issue"
        );
        assert_eq!(TagName::parse("Refund").unwrap().key(), "refund");
        assert!(TagName::parse("   ").is_err());
        assert!(TagName::parse(&"x".repeat(41)).is_err());
        assert!(TagName::parse("a\u{7}b").is_err());
        assert!(
            TagName::parse("awaiting customer response")
                .unwrap()
                .is_system()
        );
    }

    #[test]
    fn embedded_catalog_covers_every_served_team() {
        let c = TagCatalog::embedded().unwrap();
        for team in Stakeholder::SERVED {
            assert!(!c.defaults(team).is_empty(), "{team}");
        }
        assert!(c.defaults(Stakeholder::Discount).is_empty());
    }

    #[test]
    fn bad_catalogs_are_refused() {
        for bad in [
            "tags: {Discount: [A]}",
            "tags: {Partner: [A, a]}",
            "tags: {Partner: [Awaiting Customer Response]}",
            "tags: {Martian: [A]}",
        ] {
            assert!(TagCatalog::from_yaml(bad).is_err(), "{bad}");
        }
    }
}
