//! Typed settings read from the environment once per cold start.

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

/// An integer setting with a default; a malformed value is an error, not
/// silently the default.
pub fn env_u64(name: &str, default: u64) -> Result<u64, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| ConfigError::Malformed {
            name: name.to_owned(),
            expected: "a whole number",
            value: v.chars().take(64).collect(),
        }),
        _ => Ok(default),
    }
}

/// A required, non-empty setting.
pub fn env_required(name: &str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(ConfigError::Missing(name.to_owned())),
    }
}

/// DynamoDB table names, as the template passes them to functions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tables {
    pub chats: String,
    pub connections: String,
    pub executives: String,
    pub customers: String,
}

impl Tables {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            chats: env_required("CHATS_TABLE")?,
            connections: env_required("CONNECTIONS_TABLE")?,
            executives: env_required("EXECUTIVES_TABLE")?,
            customers: env_required("CUSTOMERS_TABLE")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_variable_and_what_was_wrong() {
        assert_eq!(
            env_required("SMART_CHAT_SURELY_UNSET"),
            Err(ConfigError::Missing("SMART_CHAT_SURELY_UNSET".into()))
        );
        assert_eq!(env_u64("SMART_CHAT_SURELY_UNSET", 7), Ok(7));
        // PATH is set and is no number.
        let e = env_u64("PATH", 7).expect_err("not a number");
        assert!(
            e.to_string()
                .starts_with("PATH must be a whole number, got `"),
            "{e}"
        );
    }
}
