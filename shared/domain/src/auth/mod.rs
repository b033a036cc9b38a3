//! Dashboard authentication: HS256 JWTs signed with `JWT_SECRET_KEY`.
//!
//! A token only says who the bearer is. What they may do (role, teams,
//! whether they may at all) is read from the store on every request
//! ([`authenticate`]): a demotion, a disabled flag or a password change
//! takes effect on the next request, whatever an older token says.

pub mod login;

use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::channel::Stakeholder;
use crate::config::{ConfigError, Env};
use crate::error::StoreError;
use crate::executive::ExecutiveStore;
use crate::executive::{Executive, ExecutiveId, Role};
use crate::secret::Secret;

/// `iss` of the tokens Smart Chat issues.
pub const ISSUER: &str = "smart-chat";
/// `aud` of the tokens Smart Chat issues.
pub const AUDIENCE: &str = "smart-chat-dashboard";

/// What a token says about its bearer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Informational: authority comes from the store.
    #[serde(default = "default_role")]
    pub role: Role,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Our tokens: the executive's token generation when issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// External tokens: the teams (stakeholders) the bearer serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<Vec<String>>,
}

impl Claims {
    /// Claims for a token of our own issuer, as `issue` writes them.
    pub fn own(sub: &str, role: Role, ttl: Duration) -> Self {
        let now = Utc::now();
        Self {
            sub: sub.to_owned(),
            name: None,
            email: None,
            role,
            exp: (now + ttl).timestamp(),
            iat: now.timestamp(),
            iss: Some(ISSUER.to_owned()),
            aud: Some(AUDIENCE.to_owned()),
            generation: Some(0),
            teams: None,
        }
    }
}

fn default_role() -> Role {
    Role::Agent
}

/// Who is calling, with the authority the store gives them now.
#[derive(Clone, Debug, PartialEq)]
pub struct Caller {
    pub executive_id: ExecutiveId,
    pub role: Role,
    /// The dashboards they see (every served team for admins).
    pub stakeholders: Vec<Stakeholder>,
}

impl Caller {
    /// Whether they may see chats of `team`.
    pub fn sees(&self, team: Stakeholder) -> bool {
        self.role == Role::Admin || self.stakeholders.contains(&team)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no token")]
    Missing,
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
    /// Signed by us but naming nobody we know.
    #[error("token names no executive")]
    UnknownExecutive,
    /// Issued before the password changed or the executive was disabled.
    #[error("token revoked; log in again")]
    Revoked,
}

/// Who a valid token names, and by whose authority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub executive_id: ExecutiveId,
    pub issuer: Issuer,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Issuer {
    /// Ours: carries the executive's token generation.
    Own { generation: u64 },
    /// The configured external issuer: least authority (an agent of the
    /// teams the token names).
    External { teams: Vec<Stakeholder> },
}

/// A system allowed to mint dashboard tokens with our key: its `iss`, and
/// the longest lifetime (`exp - iat`) accepted from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalIssuer {
    pub issuer: String,
    pub max_ttl: Duration,
}

impl ExternalIssuer {
    /// `EXTERNAL_JWT_ISSUER` (unset: no external tokens) and
    /// `EXTERNAL_JWT_MAX_TTL_SECS` (default one hour).
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(issuer) = env.get("EXTERNAL_JWT_ISSUER").map(str::to_owned) else {
            return Ok(None);
        };
        if issuer == ISSUER {
            return Err(ConfigError::invalid(
                "EXTERNAL_JWT_ISSUER",
                format!("must not be `{ISSUER}`"),
            ));
        }
        let secs = env.u64("EXTERNAL_JWT_MAX_TTL_SECS", 3600)?;
        Ok(Some(Self {
            issuer,
            max_ttl: Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)),
        }))
    }
}

/// The signing key, built once per cold start.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
    devices: crate::auth::login::DeviceKeys,
    external: Option<ExternalIssuer>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("ttl", &self.ttl)
            .field("external", &self.external)
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
            devices: crate::auth::login::DeviceKeys::derive(bytes),
            external: None,
        })
    }

    /// Accepts tokens of this external issuer too.
    pub fn with_external(mut self, external: Option<ExternalIssuer>) -> Self {
        self.external = external;
        self
    }

    /// `JWT_SECRET_KEY` (required), `JWT_TTL_SECS` (default 12 h) and the
    /// external issuer ([`ExternalIssuer::from_env`]).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let secret = env.required_secret("JWT_SECRET_KEY")?;
        let ttl = env.u64("JWT_TTL_SECS", 12 * 3600)?;
        Ok(Self::new(
            &secret,
            Duration::seconds(i64::try_from(ttl).unwrap_or(i64::MAX)),
        )
        .map_err(|e| ConfigError::invalid("JWT_SECRET_KEY", e))?
        .with_external(ExternalIssuer::from_env(env)?))
    }

    /// Device tokens for login budgets, keyed from the same secret.
    pub fn devices(&self) -> &crate::auth::login::DeviceKeys {
        &self.devices
    }

    pub fn issue(&self, executive: &Executive) -> Result<String, String> {
        let claims = Claims {
            name: Some(executive.name.clone()),
            email: Some(executive.email.as_str().to_owned()),
            generation: Some(executive.token_generation),
            ..Claims::own(executive.executive_id.as_str(), executive.role, self.ttl)
        };
        self.sign(&claims)
    }

    /// Checks signature, lifetime, issuer and audience; says who the token
    /// names. Authority is [`authenticate`]'s business.
    pub fn verify(&self, token: &str) -> Result<Verified, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        // `aud` is checked per issuer below.
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })?
            .claims;
        let executive_id = ExecutiveId::parse(&claims.sub).map_err(|_| AuthError::Invalid)?;
        let issuer = match claims.iss.as_deref() {
            Some(ISSUER) if claims.aud.as_deref() == Some(AUDIENCE) => Issuer::Own {
                generation: claims.generation.unwrap_or(0),
            },
            Some(iss) => {
                let ext = self
                    .external
                    .as_ref()
                    .filter(|e| e.issuer == iss)
                    .ok_or(AuthError::Invalid)?;
                let lifetime = claims.exp - claims.iat;
                if claims.iat <= 0 || lifetime <= 0 || lifetime > ext.max_ttl.num_seconds() {
                    return Err(AuthError::Invalid);
                }
                let teams = claims
                    .teams
                    .unwrap_or_default()
                    .iter()
                    .map(|t| match Stakeholder::parse(t) {
                        Ok(s) if Stakeholder::SERVED.contains(&s) => Ok(s),
                        _ => Err(AuthError::Invalid),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Issuer::External { teams }
            }
            None => return Err(AuthError::Invalid),
        };
        Ok(Verified {
            executive_id,
            issuer,
        })
    }

    /// Signs arbitrary claims (tests and tools that mint tokens).
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| e.to_string())
    }
}

/// Why a token does not let its bearer in.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Token(#[from] AuthError),
    #[error("executive is disabled")]
    Disabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a stored executive may do now, holding credentials of token
/// `generation`: nothing when disabled or revoked since; else their stored
/// role and teams.
pub fn authority(e: &Executive, generation: u64) -> Result<Caller, Refused> {
    if e.disabled {
        return Err(Refused::Disabled);
    }
    if generation != e.token_generation {
        return Err(AuthError::Revoked.into());
    }
    Ok(Caller {
        executive_id: e.executive_id.clone(),
        role: e.role,
        stakeholders: e.dashboards(),
    })
}

/// The caller a token names, with the authority the store gives them now
/// (and the stored executive, absent for an external token's bearer).
pub async fn authenticate<S: ExecutiveStore>(
    store: &S,
    keys: &JwtKeys,
    token: &str,
) -> Result<(Caller, Option<Executive>), Refused> {
    let verified = keys.verify(token)?;
    match (
        store.executive(&verified.executive_id).await?,
        verified.issuer,
    ) {
        (Some(e), issuer) => {
            // An external token naming one of ours has no generation: it
            // stops working once the password changes, like ours.
            let generation = match issuer {
                Issuer::Own { generation } => generation,
                Issuer::External { .. } => 0,
            };
            Ok((authority(&e, generation)?, Some(e)))
        }
        (None, Issuer::External { teams }) => Ok((
            Caller {
                executive_id: verified.executive_id,
                role: Role::Agent,
                stakeholders: teams,
            },
            None,
        )),
        (None, Issuer::Own { .. }) => Err(AuthError::UnknownExecutive.into()),
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
            token_generation: 0,
        }
    }

    #[test]
    fn issued_tokens_verify_and_name_their_executive() {
        let k = keys("a-test-secret-that-is-long-enough-0123");
        let verified = k.verify(&k.issue(&exec()).unwrap()).unwrap();
        assert_eq!(verified.executive_id.as_str(), "e1");
        assert_eq!(verified.issuer, Issuer::Own { generation: 0 });
    }

    #[test]
    fn only_our_issuer_and_audience_or_the_configured_external_issuer_pass() {
        let ext = ExternalIssuer {
            issuer: "communication-master".into(),
            max_ttl: Duration::hours(1),
        };
        let k = keys("a-test-secret-that-is-long-enough-0123").with_external(Some(ext));
        let own = Claims::own("e1", Role::Admin, Duration::hours(1));
        let no_iss = Claims {
            iss: None,
            ..own.clone()
        };
        let wrong_aud = Claims {
            aud: Some("elsewhere".into()),
            ..own.clone()
        };
        let stranger = Claims {
            iss: Some("someone-else".into()),
            ..own.clone()
        };
        for c in [&no_iss, &wrong_aud, &stranger] {
            assert_eq!(
                k.verify(&k.sign(c).unwrap()),
                Err(AuthError::Invalid),
                "{c:?}"
            );
        }
        let external = Claims {
            iss: Some("communication-master".into()),
            aud: None,
            generation: None,
            teams: Some(vec!["Partner".into()]),
            ..own.clone()
        };
        assert_eq!(
            k.verify(&k.sign(&external).unwrap()).map(|v| v.issuer),
            Ok(Issuer::External {
                teams: vec![Stakeholder::Partner]
            })
        );
        // External tokens live at most max_ttl, and say when they were issued.
        let long = Claims {
            exp: external.iat + 7200,
            ..external.clone()
        };
        let undated = Claims {
            iat: 0,
            ..external.clone()
        };
        let bad_team = Claims {
            teams: Some(vec!["Everyone".into()]),
            ..external.clone()
        };
        let automated = Claims {
            teams: Some(vec!["Discount".into()]),
            ..external
        };
        for c in [&long, &undated, &bad_team, &automated] {
            assert_eq!(
                k.verify(&k.sign(c).unwrap()),
                Err(AuthError::Invalid),
                "{c:?}"
            );
        }
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
            exp: Utc::now().timestamp() - 3600,
            ..Claims::own("e1", Role::Agent, Duration::hours(1))
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
