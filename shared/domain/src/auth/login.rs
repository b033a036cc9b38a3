//! Login guessing budgets (SPEC §3; docs/decisions.md § Login).
//!
//! Every attempt first *consumes* one unit from each budget it is counted
//! against, atomically in the store, and is refused (429) without looking
//! at the password when any budget is spent: N parallel attempts consume N
//! before any hash runs. A success gives back what it took from shared
//! budgets and clears its own.
//!
//! An attempt is counted against:
//! - a **device** budget when it carries a device token issued at an
//!   earlier successful login for the same address (OWASP's device
//!   cookies): nothing anyone else does touches it, so the owner on a
//!   device they used before is never refused for others' failures;
//! - otherwise its **address × source** budget (others' sources do not
//!   touch it), its **source** budget (one source guessing many
//!   addresses), and the address's **untrusted** budget across all sources
//!   (a botnet guessing one address). Only untrusted attempts spend the
//!   last, so when it runs out devices that logged in before still work.
//!
//! Windows are fixed ([`WINDOW_MINUTES`]) and keyed by their number, so
//! one atomic ADD per budget counts and reads at once.

use std::future::Future;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::StoreError;

pub const WINDOW_MINUTES: i64 = 15;
/// Attempts per address from one source.
pub const PER_ADDRESS_AND_SOURCE: u32 = 5;
/// Attempts per source, all addresses.
pub const PER_SOURCE: u32 = 30;
/// Attempts per address from sources without a device token.
pub const PER_ADDRESS_UNTRUSTED: u32 = 50;
/// Attempts per device token.
pub const PER_DEVICE: u32 = 10;

/// The address as typed, normalised the way stored addresses are (trimmed,
/// lower case, at most 254 characters): unknown and malformed addresses
/// are counted and looked up like known ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginAddress(String);

impl LoginAddress {
    pub fn new(typed: &str) -> Self {
        Self(typed.trim().to_lowercase().chars().take(254).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One budget an attempt spends from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Store key of the current window's counter.
    pub key: String,
    pub limit: u32,
    /// Whether a success gives the unit back (shared budgets) or clears
    /// the counter (the attempt's own).
    pub on_success: OnSuccess,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnSuccess {
    Refund,
    Clear,
}

/// What a login attempt is counted against, in the window of `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub budgets: Vec<Budget>,
    pub window_ends: DateTime<Utc>,
    /// Whether a valid device token came with it.
    pub trusted: bool,
}

fn window(now: DateTime<Utc>) -> (i64, DateTime<Utc>) {
    let len = WINDOW_MINUTES * 60;
    let no = now.timestamp().div_euclid(len);
    let ends = DateTime::from_timestamp((no + 1) * len, 0).unwrap_or(now);
    (no, ends)
}

/// Keys never hold raw addresses of arbitrary length: a short hash.
fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..12])
}

impl Attempt {
    pub fn new(
        address: &LoginAddress,
        source: Option<&str>,
        device: Option<&DeviceId>,
        now: DateTime<Utc>,
    ) -> Self {
        let (no, window_ends) = window(now);
        let budget = |kind: &str, parts: &[&str], limit, on_success| Budget {
            key: format!("{kind}#{}#{no}", short_hash(parts)),
            limit,
            on_success,
        };
        let source = source.filter(|s| !s.is_empty()).unwrap_or("unknown");
        let budgets = match device {
            Some(d) => vec![budget("device", &[&d.0], PER_DEVICE, OnSuccess::Clear)],
            None => vec![
                budget(
                    "address-source",
                    &[address.as_str(), source],
                    PER_ADDRESS_AND_SOURCE,
                    OnSuccess::Clear,
                ),
                budget("source", &[source], PER_SOURCE, OnSuccess::Refund),
                budget(
                    "address",
                    &[address.as_str()],
                    PER_ADDRESS_UNTRUSTED,
                    OnSuccess::Refund,
                ),
            ],
        };
        Self {
            budgets,
            window_ends,
            trusted: device.is_some(),
        }
    }
}

/// Spends one unit of every budget; `Some(window end)` when any is spent
/// out (the attempt must be refused without checking the password).
pub async fn consume<S: LoginGuardStore>(
    store: &S,
    attempt: &Attempt,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let keys: Vec<&str> = attempt.budgets.iter().map(|b| b.key.as_str()).collect();
    let counts = store.spend(&keys, attempt.window_ends).await?;
    let over = attempt
        .budgets
        .iter()
        .zip(&counts)
        .any(|(b, &count)| count > b.limit);
    Ok(over.then_some(attempt.window_ends))
}

/// After a success: shared budgets get their unit back, the attempt's own
/// counter starts again.
pub async fn succeeded<S: LoginGuardStore>(store: &S, attempt: &Attempt) -> Result<(), StoreError> {
    for b in &attempt.budgets {
        match b.on_success {
            OnSuccess::Refund => store.refund(&b.key).await?,
            OnSuccess::Clear => store.clear_budget(&b.key).await?,
        }
    }
    Ok(())
}

/// A device that logged in before as an address: the nonce of a device
/// token whose MAC checked out for that address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceId(String);

/// Signs and checks device tokens (`{nonce}.{mac}`, the MAC over the
/// address and nonce with a key derived from the token secret).
#[derive(Clone)]
pub struct DeviceKeys {
    key: Vec<u8>,
}

impl std::fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKeys(..)")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl DeviceKeys {
    /// Derived, so a device token can never pass as anything else.
    pub fn derive(secret: &[u8]) -> Self {
        let key = match HmacSha256::new_from_slice(secret) {
            Ok(mut mac) => {
                mac.update(b"smart-chat login device tokens v1");
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => secret.to_vec(),
        };
        Self { key }
    }

    fn mac(&self, address: &LoginAddress, nonce: &str) -> Option<HmacSha256> {
        let mut mac = HmacSha256::new_from_slice(&self.key).ok()?;
        mac.update(address.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(nonce.as_bytes());
        Some(mac)
    }

    /// A new device token for `address`, given after a successful login.
    pub fn issue(&self, address: &LoginAddress) -> Option<String> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let tag = self.mac(address, &nonce)?.finalize().into_bytes();
        Some(format!("{nonce}.{}", hex::encode(tag)))
    }

    /// The device, if `token` was issued for `address` (constant time).
    pub fn check(&self, address: &LoginAddress, token: &str) -> Option<DeviceId> {
        let (nonce, tag) = token.trim().split_once('.')?;
        if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let tag = hex::decode(tag).ok()?;
        self.mac(address, nonce)?.verify_slice(&tag).ok()?;
        Some(DeviceId(nonce.to_owned()))
    }
}

/// Login budgets (`crate::auth::login`): counters per key and window.
pub trait LoginGuardStore: Send + Sync {
    /// Adds one to each key's counter, atomically per key, and returns the
    /// counts after adding (in `keys` order). Counters are kept until
    /// `expires` (plus a margin) and then forgotten.
    fn spend(
        &self,
        keys: &[&str],
        expires: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<u32>, StoreError>> + Send;

    /// Gives one unit back.
    fn refund(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets the counter.
    fn clear_budget(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The executive an address typed at login names, in exactly two reads
    /// whatever the address (known, unknown or malformed): the answer's
    /// cost says nothing about which addresses exist.
    fn executive_for_login(
        &self,
        address: &LoginAddress,
    ) -> impl Future<Output = Result<Option<crate::executive::Executive>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    #[test]
    fn untrusted_attempts_spend_address_source_source_and_address_budgets() {
        let a = Attempt::new(
            &LoginAddress::new(" Asha@OneWay.Cab "),
            Some("10.0.0.1"),
            None,
            at(1_800),
        );
        let limits: Vec<_> = a
            .budgets
            .iter()
            .map(|b| (b.key.split('#').next(), b.limit))
            .collect();
        assert_eq!(
            limits,
            [
                (Some("address-source"), PER_ADDRESS_AND_SOURCE),
                (Some("source"), PER_SOURCE),
                (Some("address"), PER_ADDRESS_UNTRUSTED)
            ]
        );
        assert_eq!(a.window_ends, at(2_700));
        // Same address however typed, same window: same keys.
        let b = Attempt::new(
            &LoginAddress::new("asha@oneway.cab"),
            Some("10.0.0.1"),
            None,
            at(2_699),
        );
        assert_eq!(a, b);
        // The next window counts afresh.
        let c = Attempt::new(
            &LoginAddress::new("asha@oneway.cab"),
            Some("10.0.0.1"),
            None,
            at(2_700),
        );
        assert_ne!(a.budgets[0].key, c.budgets[0].key);
    }

    #[test]
    fn device_tokens_are_bound_to_their_address() {
        let keys = DeviceKeys::derive(b"a secret of at least thirty-two bytes!!");
        let asha = LoginAddress::new("asha@oneway.cab");
        let token = keys.issue(&asha).expect("issued");
        let device = keys.check(&asha, &token).expect("valid for its address");
        assert!(
            keys.check(&LoginAddress::new("ravi@oneway.cab"), &token)
                .is_none()
        );
        assert!(keys.check(&asha, &token.replace('.', "x.")).is_none());
        assert!(keys.check(&asha, "garbage").is_none());
        let other = DeviceKeys::derive(b"another secret of thirty-two bytes!!!!");
        assert!(other.check(&asha, &token).is_none());
        let a = Attempt::new(&asha, Some("10.0.0.1"), Some(&device), at(0));
        assert!(a.trusted);
        assert_eq!(a.budgets.len(), 1);
        assert_eq!(a.budgets[0].limit, PER_DEVICE);
    }
}
