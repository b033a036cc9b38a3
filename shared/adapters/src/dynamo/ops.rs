//! Operational data in DynamoDB: the predefined tags of each team, the
//! failed-login counters, the cached automated replies and an admin's
//! automation settings.

use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Utc};

use super::{DynamoStore, first_condition_failed, is_condition_failure, put_write};
use crate::item::{Item, ItemExt, key, n, s, t, unavailable};
use domain::auth::login::LoginGuardStore;
use domain::channel::Stakeholder;
use domain::chat::tags::TagName;
use domain::chat::tags::TagStore;
use domain::error::StoreError;
use domain::replies::ResponseCache;
use domain::settings::SettingsStore;

fn tags_pk(team: Stakeholder) -> String {
    format!("TAGS#{team}")
}

fn tag_item(team: Stakeholder, tag: &TagName) -> Item {
    let mut item = key(tags_pk(team), format!("TAG#{}", tag.key()));
    item.insert("name".into(), s(tag.as_str()));
    item.insert("created_at".into(), t(Utc::now()));
    item
}

/// Lists seeded from a file and then kept in the store (a team's tags, the
/// discount routes): one partition, a `SEEDED` marker once written.
impl DynamoStore {
    /// The items under `pk` whose sort key starts with `prefix`; `None`
    /// while the partition was never seeded.
    pub(super) async fn seeded_list(
        &self,
        pk: String,
        prefix: &str,
    ) -> Result<Option<Vec<Item>>, StoreError> {
        let items = self
            .query_desc(&self.tables.chats, None, "pk", pk, None, 1000)
            .await?;
        if !items.iter().any(|i| i.str_opt("sk") == Some("SEEDED")) {
            return Ok(None);
        }
        Ok(Some(
            items
                .into_iter()
                .filter(|i| i.str_opt("sk").is_some_and(|k| k.starts_with(prefix)))
                .collect(),
        ))
    }

    /// Writes the marker and `items` in one transaction, unless the
    /// partition was seeded already (by another container: nothing to do).
    pub(super) async fn seed_list(&self, pk: String, items: Vec<Item>) -> Result<(), StoreError> {
        let table = &self.tables.chats;
        let mut marker = key(pk, "SEEDED");
        marker.insert("seeded_at".into(), t(Utc::now()));
        let mut writes = vec![put_write(table, marker, true)?];
        for item in items {
            writes.push(put_write(table, item, false)?);
        }
        match self.transact_writes(writes).await {
            Ok(_) => Ok(()),
            Err(e) if first_condition_failed(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}

impl TagStore for DynamoStore {
    async fn team_tags(&self, team: Stakeholder) -> Result<Option<Vec<TagName>>, StoreError> {
        let Some(items) = self.seeded_list(tags_pk(team), "TAG#").await? else {
            return Ok(None);
        };
        let mut tags = items
            .iter()
            .map(|i| {
                TagName::parse(i.str("name")?)
                    .map_err(|e| StoreError::Corrupt(format!("tag item: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        tags.sort_by_key(TagName::key);
        Ok(Some(tags))
    }

    async fn seed_team_tags(&self, team: Stakeholder, tags: &[TagName]) -> Result<(), StoreError> {
        let items = tags.iter().map(|tag| tag_item(team, tag)).collect();
        self.seed_list(tags_pk(team), items).await
    }

    async fn add_team_tag(&self, team: Stakeholder, tag: &TagName) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.chats)
            .set_item(Some(tag_item(team, tag)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn remove_team_tag(&self, team: Stakeholder, tag: &TagName) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.chats)
            .set_key(Some(key(tags_pk(team), format!("TAG#{}", tag.key()))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}

fn guard_key(k: &str) -> Item {
    key(format!("LOGINGUARD#{k}"), "GUARD")
}

/// Seconds since the epoch, for TTL attributes.
pub(super) fn epoch(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp()).unwrap_or(0)
}

impl LoginGuardStore for DynamoStore {
    async fn spend(&self, keys: &[&str], expires: DateTime<Utc>) -> Result<Vec<u32>, StoreError> {
        // One UpdateItem per budget, all at once: ADD is atomic, so
        // parallel attempts each see their own count.
        let expires_at = epoch(expires) + 3_600;
        let adds = keys.iter().map(|k| {
            self.client
                .update_item()
                .table_name(&self.tables.executives)
                .set_key(Some(guard_key(k)))
                .update_expression("ADD attempts :one SET expires_at = :ttl")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":ttl", n(expires_at))
                .return_values(ReturnValue::UpdatedNew)
                .send()
        });
        let mut counts = Vec::with_capacity(keys.len());
        for out in futures_util::future::join_all(adds).await {
            let attrs = out.map_err(unavailable)?.attributes.unwrap_or_default();
            counts.push(u32::try_from(attrs.u64("attempts")?).unwrap_or(u32::MAX));
        }
        Ok(counts)
    }

    async fn refund(&self, k: &str) -> Result<(), StoreError> {
        let refunded = self
            .client
            .update_item()
            .table_name(&self.tables.executives)
            .set_key(Some(guard_key(k)))
            .update_expression("ADD attempts :minus")
            .condition_expression("attempts > :zero")
            .expression_attribute_values(
                ":minus",
                aws_sdk_dynamodb::types::AttributeValue::N("-1".into()),
            )
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match refunded {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn clear_budget(&self, k: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.tables.executives)
            .set_key(Some(guard_key(k)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn executive_for_login(
        &self,
        address: &domain::auth::login::LoginAddress,
    ) -> Result<Option<domain::executive::Executive>, StoreError> {
        let guard = self
            .get(
                &self.tables.executives,
                key(format!("EMAIL#{}", address.as_str()), "EMAIL"),
            )
            .await?;
        // No such address: the same second read, of a profile that cannot
        // exist (`-` is no executive id).
        let profile = match guard.as_ref().map(|g| g.str("executive_id")).transpose()? {
            Some(id) => format!("EXEC#{id}"),
            None => "EXEC#-".to_owned(),
        };
        match self
            .get(&self.tables.executives, key(profile, "PROFILE"))
            .await?
        {
            Some(item) => super::executives::executive_from(&item).map(Some),
            None => Ok(None),
        }
    }
}

/// Every cached reply lives in one partition, so clearing them all is one
/// query (the cache is small: one entry per distinct automated answer).
const CACHE_PK: &str = "CACHE";

impl ResponseCache for DynamoStore {
    async fn cached(&self, k: &str) -> Result<Option<String>, StoreError> {
        let Some(item) = self.get(&self.tables.chats, key(CACHE_PK, k)).await? else {
            return Ok(None);
        };
        if item.u64("expires_at").is_ok_and(|e| e <= epoch(Utc::now())) {
            return Ok(None);
        }
        Ok(Some(item.str("body")?.to_owned()))
    }

    async fn put_cached(
        &self,
        k: &str,
        body: &str,
        ttl: std::time::Duration,
    ) -> Result<(), StoreError> {
        let mut item = key(CACHE_PK, k);
        item.insert("body".into(), s(body));
        item.insert(
            "expires_at".into(),
            n(epoch(Utc::now()) + ttl.as_secs().max(1)),
        );
        self.put(&self.tables.chats, item).await
    }

    async fn delete_cached(&self, k: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.chats)
            .set_key(Some(key(CACHE_PK, k)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn clear_cached(&self) -> Result<usize, StoreError> {
        let items = self
            .query_desc(
                &self.tables.chats,
                None,
                "pk",
                CACHE_PK.to_owned(),
                None,
                usize::MAX,
            )
            .await?;
        let keys: Vec<Item> = items
            .iter()
            .map(|i| Ok(key(i.str("pk")?, i.str("sk")?)))
            .collect::<Result<_, StoreError>>()?;
        let count = keys.len();
        self.batch_delete(&self.tables.chats, keys).await?;
        Ok(count)
    }
}

/// An admin's saved settings, as the JSON they saved, by name.
fn settings_key(name: &str) -> Item {
    key("SETTINGS", name)
}

/// How long a container keeps settings it read: an admin's change
/// reaches every other container within this (the container that saved
/// it sees it at once).
pub const SETTINGS_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// A setting as read: when, and its JSON (none saved).
type ReadSetting = (std::time::Instant, Option<String>);

/// Settings read by this process, by table and name.
static SETTINGS: std::sync::LazyLock<super::Remembered<(String, String), ReadSetting>> =
    std::sync::LazyLock::new(|| super::Remembered::new(64));

fn remember_settings(table: &str, name: &str, value: Option<String>) {
    SETTINGS.keep(
        (table.to_owned(), name.to_owned()),
        (std::time::Instant::now(), value),
    );
}

impl SettingsStore for DynamoStore {
    async fn settings(&self, name: &str) -> Result<Option<String>, StoreError> {
        let table = &self.tables.chats;
        let cached = SETTINGS
            .get(&(table.clone(), name.to_owned()))
            .filter(|(at, _)| at.elapsed() < SETTINGS_TTL)
            .map(|(_, v)| v);
        if let Some(v) = cached {
            return Ok(v);
        }
        let value = match self.get(table, settings_key(name)).await? {
            Some(item) => Some(item.str("settings")?.to_owned()),
            None => None,
        };
        remember_settings(table, name, value.clone());
        Ok(value)
    }

    async fn put_settings(&self, name: &str, json: &str) -> Result<(), StoreError> {
        let mut item = settings_key(name);
        item.insert("settings".into(), s(json));
        item.insert("saved_at".into(), t(Utc::now()));
        self.put(&self.tables.chats, item).await?;
        remember_settings(&self.tables.chats, name, Some(json.to_owned()));
        Ok(())
    }
}
