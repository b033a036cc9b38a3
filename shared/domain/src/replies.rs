//! The cache of automated replies (the seeds' `chat_response::{message}`).

use std::future::Future;

use crate::error::StoreError;

/// The cache key of the automated reply to `message` (the seeds' format).
pub fn reply_cache_key(message: &str) -> String {
    format!("chat_response::{message}")
}

/// Cached automated replies (`chat_response::{message}`), dropped by ops
/// through the `ADMIN_TOKEN` routes.
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
