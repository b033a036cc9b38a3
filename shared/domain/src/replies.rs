//! The cache of automated replies (the seeds' `chat_response::{message}`).

use std::future::Future;

use crate::error::StoreError;

/// The cache key of the automated reply to `message` (the seeds' format),
/// alike for the ways one message is typed: any case, any spacing.
pub fn reply_cache_key(message: &str) -> String {
    let words: Vec<String> = message.split_whitespace().map(str::to_lowercase).collect();
    let mut key = format!("chat_response::{}", words.join(" "));
    // DynamoDB sort keys hold 1 KB: a longer message is keyed by its hash.
    if key.len() > 512 {
        key = format!("chat_response::#{}", crate::customer::hash_hex(&key));
    }
    key
}

/// Cached automated replies (`chat_response::{message}`): the discount
/// bot's answer to a message (see [`crate::discount::bot`]). Dropped by
/// ops through the `ADMIN_TOKEN` routes, and whenever an admin changes the
/// bot's routes or settings.
pub trait ResponseCache: Send + Sync {
    fn cached(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    fn put_cached(
        &self,
        key: &str,
        body: &str,
        ttl: std::time::Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes one entry; whether it existed.
    fn delete_cached(&self, key: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes every entry; how many there were.
    fn clear_cached(&self) -> impl Future<Output = Result<usize, StoreError>> + Send;
}
