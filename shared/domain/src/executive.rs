//! Executives (agents and admins) and their credentials.

use crate::error::StoreError;
use std::future::Future;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

use crate::channel::Stakeholder;
use crate::customer::FieldErrors;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// Most open chats round robin gives this executive at once.
    pub capacity: u32,
    /// Bumped when the password changes or the executive is disabled:
    /// tokens carry the generation they were issued in, and an older one
    /// is refused (HTTP and `$connect`) and closes open sockets.
    #[serde(skip)]
    pub token_generation: u64,
}

/// Open chats an executive takes when nobody set a capacity.
pub const DEFAULT_CAPACITY: u32 = 10;
/// Largest capacity an admin may set.
pub const MAX_CAPACITY: u32 = 200;

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

/// What a login for an unknown address verifies against, so it costs what
/// a wrong password for a real account costs: the hash of a public decoy
/// phrase ("decoy password for unknown accounts") with [`hash_password`]'s
/// parameters, fixed here rather than computed at start-up (an Argon2 hash
/// at every cold start of the API added some 70 ms to it). A test keeps
/// its parameters equal to `hash_password`'s.
pub const DECOY_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ljR7LajVNi0eJfu4RE1KQg$kbGlufa8noJNGNFUHMSxxBGPiPvsNDLztjtGR78zCrc";

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

/// Shortest and longest password an admin may set.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 10..=128;

/// `POST /api/executives`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewExecutive {
    pub name: String,
    pub email: Email,
    pub password: String,
    pub role: Role,
    pub stakeholders: Vec<Stakeholder>,
    pub capacity: u32,
}

/// `PATCH /api/executives/{id}`: only the fields sent change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecutivePatch {
    pub name: Option<String>,
    pub email: Option<Email>,
    pub password: Option<String>,
    pub role: Option<Role>,
    pub stakeholders: Option<Vec<Stakeholder>>,
    pub disabled: Option<bool>,
    pub capacity: Option<u32>,
}

const EXECUTIVE_FIELDS: [&str; 7] = [
    "name",
    "email",
    "password",
    "role",
    "stakeholders",
    "disabled",
    "capacity",
];

/// Reads the executive fields present in `body`, collecting every problem.
fn executive_fields(body: &serde_json::Value) -> Result<ExecutivePatch, FieldErrors> {
    use serde_json::Value;
    let mut errors = FieldErrors::default();
    let Some(obj) = body.as_object() else {
        errors.add("body", "must be a JSON object");
        return Err(errors);
    };
    for k in obj.keys() {
        if !EXECUTIVE_FIELDS.contains(&k.as_str()) {
            errors.add(k, "is not an executive field");
        }
    }
    let mut patch = ExecutivePatch::default();
    match obj.get("name") {
        None => {}
        Some(Value::String(n)) if !n.trim().is_empty() && n.trim().chars().count() <= 80 => {
            patch.name = Some(n.trim().to_owned());
        }
        Some(_) => errors.add("name", "must be 1 to 80 characters"),
    }
    match obj.get("email") {
        None => {}
        Some(Value::String(e)) => match Email::parse(e) {
            Ok(e) => patch.email = Some(e),
            Err(m) => errors.add("email", m),
        },
        Some(_) => errors.add("email", "must be a string"),
    }
    match obj.get("password") {
        None => {}
        Some(Value::String(p)) if PASSWORD_CHARS.contains(&p.chars().count()) => {
            patch.password = Some(p.clone());
        }
        Some(_) => errors.add(
            "password",
            format!(
                "must be {} to {} characters",
                PASSWORD_CHARS.start(),
                PASSWORD_CHARS.end()
            ),
        ),
    }
    match obj.get("role").and_then(Value::as_str) {
        None if obj.get("role").is_none() => {}
        Some("agent") => patch.role = Some(Role::Agent),
        Some("admin") => patch.role = Some(Role::Admin),
        _ => errors.add("role", "must be agent or admin"),
    }
    match obj.get("stakeholders") {
        None => {}
        Some(Value::Array(items)) => {
            let mut teams = Vec::new();
            for item in items {
                match item.as_str().map(Stakeholder::parse) {
                    Some(Ok(t)) if Stakeholder::SERVED.contains(&t) => {
                        if !teams.contains(&t) {
                            teams.push(t);
                        }
                    }
                    _ => errors.add(
                        "stakeholders",
                        "must list Partner, Customer, Vendor or SRDP",
                    ),
                }
            }
            patch.stakeholders = Some(teams);
        }
        Some(_) => errors.add("stakeholders", "must be a list"),
    }
    match obj.get("disabled") {
        None => {}
        Some(Value::Bool(b)) => patch.disabled = Some(*b),
        Some(_) => errors.add("disabled", "must be true or false"),
    }
    match obj.get("capacity") {
        None => {}
        Some(v) => match v.as_u64().and_then(|c| u32::try_from(c).ok()) {
            Some(c) if (1..=MAX_CAPACITY).contains(&c) => patch.capacity = Some(c),
            _ => errors.add(
                "capacity",
                format!("must be a whole number from 1 to {MAX_CAPACITY}"),
            ),
        },
    }
    errors.into_result(|| patch)
}

impl NewExecutive {
    pub fn parse(body: &serde_json::Value) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        for field in ["name", "email", "password"] {
            if body.get(field).is_none() {
                errors.add(field, "is required");
            }
        }
        let patch = match executive_fields(body) {
            Ok(p) => p,
            Err(mut found) => {
                for (k, v) in errors.0 {
                    found.0.entry(k).or_insert(v);
                }
                return Err(found);
            }
        };
        let role = patch.role.unwrap_or(Role::Agent);
        let stakeholders = patch.stakeholders.unwrap_or_default();
        if role == Role::Agent && stakeholders.is_empty() {
            errors.add("stakeholders", "an agent serves at least one stakeholder");
        }
        if patch.disabled.is_some() {
            errors.add("disabled", "new executives start enabled");
        }
        errors.into_result(|| Self {
            name: patch.name.unwrap_or_default(),
            email: patch.email.unwrap_or_else(|| Email(String::new())),
            password: patch.password.unwrap_or_default(),
            role,
            stakeholders,
            capacity: patch.capacity.unwrap_or(DEFAULT_CAPACITY),
        })
    }

    pub fn into_executive(self) -> Result<Executive, HashError> {
        Ok(Executive {
            executive_id: ExecutiveId::new(),
            name: self.name,
            email: self.email,
            password_hash: hash_password(&self.password)?,
            role: self.role,
            stakeholders: self.stakeholders,
            disabled: false,
            capacity: self.capacity,
            token_generation: 0,
        })
    }
}

impl ExecutivePatch {
    pub fn parse(body: &serde_json::Value) -> Result<Self, FieldErrors> {
        let patch = executive_fields(body)?;
        if patch == Self::default() {
            let mut errors = FieldErrors::default();
            errors.add("body", "nothing to update");
            return Err(errors);
        }
        Ok(patch)
    }

    /// The executive with the patch applied (a new password is hashed).
    pub fn apply(self, mut e: Executive) -> Result<Result<Executive, FieldErrors>, HashError> {
        if let Some(n) = self.name {
            e.name = n;
        }
        if let Some(m) = self.email {
            e.email = m;
        }
        if let Some(p) = self.password {
            e.password_hash = hash_password(&p)?;
            e.token_generation += 1;
        }
        if let Some(r) = self.role {
            e.role = r;
        }
        if let Some(s) = self.stakeholders {
            e.stakeholders = s;
        }
        if let Some(d) = self.disabled {
            if d && !e.disabled {
                e.token_generation += 1;
            }
            e.disabled = d;
        }
        if let Some(c) = self.capacity {
            e.capacity = c;
        }
        let mut errors = FieldErrors::default();
        if e.role == Role::Agent && e.stakeholders.is_empty() {
            errors.add("stakeholders", "an agent serves at least one stakeholder");
        }
        Ok(errors.into_result(|| e))
    }
}

pub trait ExecutiveStore: Send + Sync {
    fn executive(
        &self,
        id: &ExecutiveId,
    ) -> impl Future<Output = Result<Option<Executive>, StoreError>> + Send;

    fn executive_by_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<Executive>, StoreError>> + Send;

    /// Creates or replaces an executive, keeping e-mail addresses unique.
    fn put_executive(
        &self,
        executive: &Executive,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every executive, by e-mail address (an index, not a scan).
    fn executives(&self) -> impl Future<Output = Result<Vec<Executive>, StoreError>> + Send;

    /// Cheap reachability check for readiness probes.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_executives_are_validated_field_by_field() {
        let ok = NewExecutive::parse(&serde_json::json!({
            "name": "Asha", "email": "Asha@OneWay.Cab", "password": "long enough pw",
            "stakeholders": ["Partner", "partner", "SRDP"]
        }))
        .unwrap();
        assert_eq!(ok.email.as_str(), "asha@oneway.cab");
        assert_eq!(ok.role, Role::Agent);
        assert_eq!(
            ok.stakeholders,
            vec![Stakeholder::Partner, Stakeholder::Srdp]
        );
        let e = NewExecutive::parse(&serde_json::json!({
            "email": "x", "password": "short", "role": "boss", "stakeholders": ["Discount"], "colour": 1
        }))
        .unwrap_err();
        let fields: Vec<&str> = e.0.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            [
                "colour",
                "email",
                "name",
                "password",
                "role",
                "stakeholders"
            ]
        );
        assert!(ExecutivePatch::parse(&serde_json::json!({})).is_err());
        assert!(ExecutivePatch::parse(&serde_json::json!({"disabled": true})).is_ok());
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn the_decoy_hash_costs_what_a_fresh_hash_costs() {
        let decoy = PasswordHash::new(DECOY_PASSWORD_HASH).unwrap();
        let fresh_text = hash_password("anything").unwrap();
        let fresh = PasswordHash::new(&fresh_text).unwrap();
        assert_eq!(decoy.algorithm, fresh.algorithm);
        assert_eq!(decoy.version, fresh.version);
        assert_eq!(decoy.params, fresh.params);
        assert!(verify_password(
            "decoy password for unknown accounts",
            DECOY_PASSWORD_HASH
        ));
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
