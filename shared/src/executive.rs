//! Executives (agents and admins) and their credentials.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

use crate::channel::Stakeholder;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExecutiveId(String);

crate::newtype::string_newtype!(ExecutiveId, String);

impl ExecutiveId {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Ids are opaque but bounded: 1–64 of letters, digits, `-`, `_`, `.`, `@`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err("executive id must be 1-64 letters, digits, - _ . @".into())
        }
    }
}

impl Default for ExecutiveId {
    fn default() -> Self {
        Self::new()
    }
}

/// A normalised (trimmed, lower-case) e-mail address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

crate::newtype::string_newtype!(Email, String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, String> {
        let v = value.trim().to_ascii_lowercase();
        let valid = v.len() <= 254
            && v.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
            })
            && !v.chars().any(char::is_whitespace);
        if valid {
            Ok(Self(v))
        } else {
            Err("email is not a valid address".into())
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Admin,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Executive {
    pub executive_id: ExecutiveId,
    pub name: String,
    pub email: Email,
    /// Argon2id PHC string; never leaves the store.
    #[serde(skip_serializing)]
    pub password_hash: String,
    pub role: Role,
    pub stakeholders: Vec<Stakeholder>,
    pub disabled: bool,
}

impl Executive {
    /// The stakeholders whose dashboards this executive sees: admins see all.
    pub fn dashboards(&self) -> Vec<Stakeholder> {
        match self.role {
            Role::Admin => Stakeholder::SERVED.to_vec(),
            Role::Agent => self.stakeholders.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Argon2id with the crate's default (OWASP-recommended) parameters.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Constant-time comparison inside argon2; a malformed stored hash is a
/// mismatch, not a crash.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            Email::parse("  Admin@OneWay.Cab ").unwrap().as_str(),
            "admin@oneway.cab"
        );
        assert!(Email::parse("nobody").is_err());
        assert!(Email::parse("a b@c.d").is_err());
    }
}
