//! Dashboard authentication: HS256 JWTs signed with `JWT_SECRET_KEY`.

use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::executive::{Executive, ExecutiveId, Role};
use crate::secret::Secret;

/// What a token says about its bearer. Tokens issued elsewhere with the
/// same key are accepted as long as they carry `sub` and `exp`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default = "default_role")]
    pub role: Role,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
}

fn default_role() -> Role {
    Role::Agent
}

/// Who is calling, once the token checked out.
#[derive(Clone, Debug, PartialEq)]
pub struct Caller {
    pub executive_id: ExecutiveId,
    pub role: Role,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no token")]
    Missing,
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
}

/// The signing key, built once per cold start.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
    devices: crate::login::DeviceKeys,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Minimum key length: HS256 with a short key is guessable offline.
pub const MIN_SECRET_BYTES: usize = 32;

impl JwtKeys {
    pub fn new(secret: &Secret, ttl: Duration) -> Result<Self, String> {
        let bytes = secret.expose().as_bytes();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "JWT_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes"
            ));
        }
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            ttl,
            devices: crate::login::DeviceKeys::derive(bytes),
        })
    }

    /// `JWT_SECRET_KEY` (required) and `JWT_TTL_SECS` (default 12 h).
    pub fn from_env() -> Result<Self, String> {
        let secret = Secret::from_env("JWT_SECRET_KEY")?;
        let ttl = crate::config::env_u64("JWT_TTL_SECS", 12 * 3600)?;
        Self::new(&secret, Duration::seconds(ttl as i64))
    }

    /// Device tokens for login budgets, keyed from the same secret.
    pub fn devices(&self) -> &crate::login::DeviceKeys {
        &self.devices
    }

    pub fn issue(&self, executive: &Executive) -> Result<String, String> {
        let now = Utc::now();
        let claims = Claims {
            sub: executive.executive_id.to_string(),
            name: Some(executive.name.clone()),
            email: Some(executive.email.as_str().to_owned()),
            role: executive.role,
            iat: now.timestamp(),
            exp: (now + self.ttl).timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| e.to_string())
    }

    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            },
        )?;
        let executive_id = ExecutiveId::parse(&data.claims.sub).map_err(|_| AuthError::Invalid)?;
        Ok(Caller {
            executive_id,
            role: data.claims.role,
        })
    }

    /// Signs arbitrary claims (tests and tools that mint tokens).
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| e.to_string())
    }
}

/// The token from an `Authorization: Bearer …` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Stakeholder;
    use crate::executive::Email;

    fn keys(secret: &str) -> JwtKeys {
        JwtKeys::new(&Secret::new(secret.into()), Duration::hours(1)).unwrap()
    }

    fn exec() -> Executive {
        Executive {
            executive_id: ExecutiveId::parse("e1").unwrap(),
            name: "Asha".into(),
            email: Email::parse("asha@example.com").unwrap(),
            password_hash: String::new(),
            role: Role::Agent,
            stakeholders: vec![Stakeholder::Partner],
            disabled: false,
            capacity: crate::executive::DEFAULT_CAPACITY,
        }
    }

    #[test]
    fn issued_tokens_verify_and_name_their_executive() {
        let k = keys("a-test-secret-that-is-long-enough-0123");
        let caller = k.verify(&k.issue(&exec()).unwrap()).unwrap();
        assert_eq!(caller.executive_id.as_str(), "e1");
        assert_eq!(caller.role, Role::Agent);
    }

    #[test]
    fn tokens_signed_with_another_key_or_expired_are_refused() {
        let k = keys("a-test-secret-that-is-long-enough-0123");
        let other = keys("another-secret-that-is-long-enough-456");
        assert_eq!(
            k.verify(&other.issue(&exec()).unwrap()),
            Err(AuthError::Invalid)
        );
        let expired = Claims {
            sub: "e1".into(),
            name: None,
            email: None,
            role: Role::Agent,
            exp: Utc::now().timestamp() - 3600,
            iat: 0,
        };
        assert_eq!(
            k.verify(&k.sign(&expired).unwrap()),
            Err(AuthError::Expired)
        );
        assert_eq!(k.verify("garbage"), Err(AuthError::Invalid));
        assert_eq!(k.verify(""), Err(AuthError::Missing));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(JwtKeys::new(&Secret::new("short".into()), Duration::hours(1)).is_err());
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(None), None);
    }
}
