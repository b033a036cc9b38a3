//! Settings an admin changes without a deploy (automations). Each is
//! seeded from a file compiled into the binaries; once an admin saves one
//! it is stored, and the stored one applies from the next request on, in
//! every function.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

/// Where saved settings are kept, as the JSON the admin saved, by name.
pub trait SettingsStore: Send + Sync {
    fn settings(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    fn put_settings(
        &self,
        name: &str,
        json: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Settings with a name in the store.
pub trait Named: Serialize + DeserializeOwned + Clone {
    const NAME: &'static str;
}

/// The saved settings, if an admin saved some.
pub async fn saved<T: Named, S: SettingsStore>(store: &S) -> Result<Option<T>, StoreError> {
    match store.settings(T::NAME).await? {
        Some(json) => serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("{} settings: {e}", T::NAME))),
        None => Ok(None),
    }
}

/// The settings in force: the saved ones, else `seeded`.
pub async fn in_force<T: Named, S: SettingsStore>(store: &S, seeded: &T) -> Result<T, StoreError> {
    Ok(saved(store).await?.unwrap_or_else(|| seeded.clone()))
}

/// Saves `settings` (already validated by the caller).
pub async fn save<T: Named, S: SettingsStore>(store: &S, settings: &T) -> Result<(), StoreError> {
    let json = serde_json::to_string(settings)
        .map_err(|e| StoreError::Corrupt(format!("{} settings: {e}", T::NAME)))?;
    store.put_settings(T::NAME, &json).await
}
