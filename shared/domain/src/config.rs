//! Typed settings, read once per cold start from an [`Env`]: on Lambda the
//! process environment (with the parameter store's secrets), in the local
//! gateway the template's `Environment` for that function with the local
//! resources' names. Every function is wired by the same constructor from
//! it, so what runs locally is what is deployed.

use std::collections::BTreeMap;

use crate::secret::Secret;

/// Why a function's configuration cannot be read: the cold start fails
/// with this, naming the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(String),
    #[error("{name} must be {expected}, got `{value}`")]
    Malformed {
        name: String,
        expected: &'static str,
        value: String,
    },
    #[error("{name}: {reason}")]
    Invalid { name: String, reason: String },
}

impl ConfigError {
    pub fn invalid(name: &str, reason: impl std::fmt::Display) -> Self {
        Self::Invalid {
            name: name.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// A function's environment: variables, and secrets resolved from the
/// parameter store (which take precedence over a variable of the same
/// name). Unset and blank are the same thing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
    secrets: BTreeMap<String, Secret>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Variables may hold secrets too (the fallback for the parameter
        // store): names only.
        f.debug_struct("Env")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Env {
    /// The process environment (a Lambda function's configuration).
    pub fn process() -> Self {
        Self::from_vars(std::env::vars())
    }

    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            secrets: BTreeMap::new(),
        }
    }

    /// Sets (or replaces) a variable.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Adds secrets read from the parameter store.
    pub fn with_secrets(mut self, secrets: impl IntoIterator<Item = (String, Secret)>) -> Self {
        self.secrets.extend(secrets);
        self
    }

    /// Every variable, by name (to hand a function's configuration to a
    /// process of its own).
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A variable's trimmed value; `None` when unset or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A required, non-empty setting.
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .map(str::to_owned)
            .ok_or_else(|| ConfigError::Missing(name.to_owned()))
    }

    /// A whole number with a default; a malformed value is an error, not
    /// silently the default.
    pub fn u64(&self, name: &str, default: u64) -> Result<u64, ConfigError> {
        match self.get(name) {
            Some(v) => v.parse().map_err(|_| ConfigError::Malformed {
                name: name.to_owned(),
                expected: "a whole number",
                value: v.chars().take(64).collect(),
            }),
            None => Ok(default),
        }
    }

    /// A whole number that fits 32 bits.
    pub fn u32(&self, name: &str, default: u32) -> Result<u32, ConfigError> {
        let v = self.u64(name, u64::from(default))?;
        u32::try_from(v).map_err(|_| ConfigError::Malformed {
            name: name.to_owned(),
            expected: "a whole number below 2^32",
            value: v.to_string(),
        })
    }

    /// A secret: the parameter store's value when it has one under this
    /// name, else the variable; `None` when neither is set.
    pub fn secret(&self, name: &str) -> Option<Secret> {
        self.secrets
            .get(name)
            .filter(|s| !s.expose().is_empty())
            .cloned()
            .or_else(|| {
                self.vars
                    .get(name)
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .map(Secret::new)
            })
    }

    /// A secret that must be set.
    pub fn required_secret(&self, name: &str) -> Result<Secret, ConfigError> {
        self.secret(name)
            .ok_or_else(|| ConfigError::Missing(name.to_owned()))
    }

    /// A configuration file: the one the variable names, else `embedded`
    /// (the file compiled into the binary), parsed by `parse`. Errors name
    /// the variable and the file.
    pub fn config_file<T, E: std::fmt::Display>(
        &self,
        name: &str,
        embedded: &'static str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::invalid(name, format!("{path}: {e}")))?;
                parse(&text).map_err(|e| ConfigError::invalid(name, format!("{path}: {e}")))
            }
            None => parse(embedded).map_err(|e| ConfigError::invalid(name, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_variable_and_what_was_wrong() {
        let env = Env::from_vars([("COUNT", "seven"), ("BLANK", "  "), ("BIG", "5000000000")]);
        assert_eq!(
            env.required("UNSET"),
            Err(ConfigError::Missing("UNSET".into()))
        );
        assert_eq!(
            env.required("BLANK"),
            Err(ConfigError::Missing("BLANK".into()))
        );
        assert_eq!(env.u64("UNSET", 7), Ok(7));
        assert_eq!(
            env.u64("COUNT", 7).expect_err("not a number").to_string(),
            "COUNT must be a whole number, got `seven`"
        );
        assert!(env.u32("BIG", 1).is_err());
        let read = |name| env.config_file(name, "embedded", |s| Ok::<_, String>(s.to_owned()));
        // COUNT names no file.
        assert!(
            read("COUNT")
                .expect_err("no such file")
                .to_string()
                .starts_with("COUNT: seven: ")
        );
        assert_eq!(read("UNSET").as_deref(), Ok("embedded"));
    }

    #[test]
    fn the_parameter_store_wins_over_a_variable_and_nothing_prints() {
        let env = Env::from_vars([("JWT_SECRET_KEY", "from-the-variable")])
            .with_secrets([("JWT_SECRET_KEY".to_owned(), Secret::new("from-ssm".into()))]);
        assert_eq!(
            env.secret("JWT_SECRET_KEY")
                .map(|s| s.expose().to_owned())
                .as_deref(),
            Some("from-ssm")
        );
        assert!(env.secret("ADMIN_TOKEN").is_none());
        assert!(!format!("{env:?}").contains("from-"));
    }
}
