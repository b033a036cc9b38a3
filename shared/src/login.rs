//! Login throttling: repeated failures for one e-mail address, or from one
//! source address, make further attempts wait (SPEC §3).
//!
//! Fixed windows counted in the store (so every container sees the same
//! count): after [`MAX_FAILURES_PER_EMAIL`] failures for an address within
//! [`WINDOW_MINUTES`], or [`MAX_FAILURES_PER_SOURCE`] from one source
//! address, logins are refused with 429 until the window ends, without
//! checking the password. A successful login clears the address's count.
//! Unknown addresses count like known ones, so throttling reveals nothing.

use chrono::{DateTime, Duration, Utc};

use crate::executive::Email;
use crate::store::{LoginGuardStore, StoreError};

pub const MAX_FAILURES_PER_EMAIL: u32 = 5;
pub const MAX_FAILURES_PER_SOURCE: u32 = 30;
pub const WINDOW_MINUTES: i64 = 15;

/// What a login attempt is counted against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    email_key: String,
    source_key: Option<String>,
}

impl Attempt {
    /// `email` as typed (normalised when it parses), `source` the client's
    /// address when known.
    pub fn new(email: &str, source: Option<&str>) -> Self {
        let email = Email::parse(email)
            .map(|e| e.as_str().to_owned())
            .unwrap_or_else(|_| email.trim().to_lowercase());
        let email: String = email.chars().take(254).collect();
        Self {
            email_key: format!("email#{email}"),
            source_key: source
                .filter(|s| !s.is_empty())
                .map(|s| format!("source#{}", s.chars().take(64).collect::<String>())),
        }
    }

    fn keys(&self) -> impl Iterator<Item = (&str, u32)> {
        std::iter::once((self.email_key.as_str(), MAX_FAILURES_PER_EMAIL)).chain(
            self.source_key
                .as_deref()
                .map(|k| (k, MAX_FAILURES_PER_SOURCE)),
        )
    }
}

/// When the caller may try again, if they are throttled now.
pub async fn throttled_until<S: LoginGuardStore>(
    store: &S,
    attempt: &Attempt,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let mut until: Option<DateTime<Utc>> = None;
    for (key, max) in attempt.keys() {
        if let Some(f) = store.failures(key, now).await?
            && f.count >= max
        {
            until = until.max(Some(f.until));
        }
    }
    Ok(until)
}

/// Counts a failed attempt against the address and the source.
pub async fn record_failure<S: LoginGuardStore>(
    store: &S,
    attempt: &Attempt,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for (key, _) in attempt.keys() {
        store
            .add_failure(key, now, Duration::minutes(WINDOW_MINUTES))
            .await?;
    }
    Ok(())
}

/// A successful login forgets the address's failures (not the source's).
pub async fn record_success<S: LoginGuardStore>(
    store: &S,
    attempt: &Attempt,
) -> Result<(), StoreError> {
    store.clear_failures(&attempt.email_key).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_key_on_the_normalised_address_and_the_source() {
        let a = Attempt::new(" Asha@OneWay.Cab ", Some("10.0.0.1"));
        let keys: Vec<_> = a.keys().collect();
        assert_eq!(
            keys,
            [
                ("email#asha@oneway.cab", MAX_FAILURES_PER_EMAIL),
                ("source#10.0.0.1", MAX_FAILURES_PER_SOURCE)
            ]
        );
        assert_eq!(Attempt::new("x", None).keys().count(), 1);
    }
}
