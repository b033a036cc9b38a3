//! Secrets that never print, read from SSM Parameter Store at cold start
//! (`crate::aws::secrets`) or, failing that, from the environment.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Secrets read from the parameter store at cold start, by the name of the
/// environment variable they stand for.
static RESOLVED: OnceLock<HashMap<String, Secret>> = OnceLock::new();

/// Makes `resolved` the first place [`Secret::from_env`] looks. Once per
/// process (a cold start); a second call changes nothing and says so.
pub fn install_resolved(resolved: HashMap<String, Secret>) -> bool {
    RESOLVED.set(resolved).is_ok()
}

fn resolved(name: &str) -> Option<Secret> {
    RESOLVED
        .get()
        .and_then(|m| m.get(name))
        .filter(|s| !s.0.is_empty())
        .cloned()
}

/// A secret value: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A required, non-empty secret: the parameter store's value when it
    /// has one under this name, else the environment variable.
    pub fn from_env(name: &str) -> Result<Self, crate::config::ConfigError> {
        Self::optional_from_env(name)
            .ok_or_else(|| crate::config::ConfigError::Missing(name.to_owned()))
    }

    /// An optional secret: unset and empty both mean "not configured".
    pub fn optional_from_env(name: &str) -> Option<Self> {
        resolved(name).or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()).map(Self))
    }

    /// Constant-time equality, for comparing presented tokens.
    pub fn matches(&self, presented: &str) -> bool {
        let a = self.0.as_bytes();
        let b = presented.as_bytes();
        let mut diff = a.len() ^ b.len();
        for i in 0..a.len().max(b.len()) {
            let x = a.get(i).copied().unwrap_or(0);
            let y = b.get(i).copied().unwrap_or(0);
            diff |= usize::from(x ^ y);
        }
        diff == 0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print_and_compare_exactly() {
        let s = Secret::new("hunter2-hunter2".into());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert!(s.matches("hunter2-hunter2"));
        assert!(!s.matches("hunter2-hunter"));
        assert!(!s.matches("hunter2-hunter22"));
        assert!(!s.matches(""));
    }
}
