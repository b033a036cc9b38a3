//! What a port call can fail with; shared by every feature's ports.

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    /// The item changed since it was read (optimistic concurrency): read
    /// again and retry.
    #[error("changed concurrently: {0}")]
    Conflict(String),
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable")]
    Unavailable(#[source] BoxError),
    #[error("queue refused {0} of the messages")]
    Refused(usize),
}
