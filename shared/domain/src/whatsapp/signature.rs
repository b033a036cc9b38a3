//! Who may post webhooks (SPEC §3): an `X-Hub-Signature-256` HMAC of the
//! raw body when an app secret is configured, else a shared token.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

#[derive(Clone, Debug)]
pub enum WebhookAuth {
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(raw body)>`.
    Signature(Secret),
    /// `X-Webhook-Token` header or `token` query parameter.
    Token(Secret),
    /// Neither configured: only allowed where the template permits it
    /// (local development); deployed stages require one of the two.
    Open,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookAuthError {
    #[error("missing X-Hub-Signature-256 header")]
    MissingSignature,
    #[error("X-Hub-Signature-256 does not match the body")]
    BadSignature,
    #[error("missing or wrong webhook token")]
    BadToken,
}

impl WebhookAuth {
    /// `WEBHOOK_APP_SECRET`, else `WEBHOOK_TOKEN`, else open.
    pub fn from_env(env: &crate::config::Env) -> Self {
        if let Some(secret) = env.secret("WEBHOOK_APP_SECRET") {
            WebhookAuth::Signature(secret)
        } else if let Some(token) = env.secret("WEBHOOK_TOKEN") {
            WebhookAuth::Token(token)
        } else {
            WebhookAuth::Open
        }
    }

    /// Checks a request before its body is parsed.
    pub fn check(
        &self,
        body: &[u8],
        signature_header: Option<&str>,
        token: Option<&str>,
    ) -> Result<(), WebhookAuthError> {
        match self {
            WebhookAuth::Open => Ok(()),
            WebhookAuth::Token(expected) => match token {
                Some(t) if expected.matches(t) => Ok(()),
                _ => Err(WebhookAuthError::BadToken),
            },
            WebhookAuth::Signature(secret) => {
                let header = signature_header.ok_or(WebhookAuthError::MissingSignature)?;
                let hex_sig = header
                    .trim()
                    .strip_prefix("sha256=")
                    .ok_or(WebhookAuthError::BadSignature)?;
                let sig = hex::decode(hex_sig).map_err(|_| WebhookAuthError::BadSignature)?;
                let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
                    .map_err(|_| WebhookAuthError::BadSignature)?;
                mac.update(body);
                // verify_slice compares in constant time.
                mac.verify_slice(&sig)
                    .map_err(|_| WebhookAuthError::BadSignature)
            }
        }
    }
}

/// `sha256=<hex>` for a body: what a correct sender puts in the header.
pub fn sign(secret: &str, body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_must_match_the_exact_body() {
        let auth = WebhookAuth::Signature(Secret::new("app-secret".into()));
        let body = br#"{"entry":[]}"#;
        let good = sign("app-secret", body);
        assert_eq!(auth.check(body, Some(&good), None), Ok(()));
        assert_eq!(
            auth.check(br#"{"entry": []}"#, Some(&good), None),
            Err(WebhookAuthError::BadSignature)
        );
        assert_eq!(
            auth.check(body, None, None),
            Err(WebhookAuthError::MissingSignature)
        );
        assert_eq!(
            auth.check(body, Some("sha256=zz"), None),
            Err(WebhookAuthError::BadSignature)
        );
    }

    #[test]
    fn tokens_must_match_exactly() {
        let auth = WebhookAuth::Token(Secret::new("tok".into()));
        assert_eq!(auth.check(b"", None, Some("tok")), Ok(()));
        assert_eq!(
            auth.check(b"", None, Some("to")),
            Err(WebhookAuthError::BadToken)
        );
        assert_eq!(auth.check(b"", None, None), Err(WebhookAuthError::BadToken));
    }
}
