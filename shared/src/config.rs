//! Typed settings read from the environment once per cold start.

/// An integer setting with a default; a malformed value is an error, not
/// silently the default.
pub fn env_u64(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be a whole number, got `{v}`")),
        _ => Ok(default),
    }
}

/// A required, non-empty setting.
pub fn env_required(name: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(format!("{name} must be set")),
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
    pub fn from_env() -> Result<Self, String> {
        Ok(Self {
            chats: env_required("CHATS_TABLE")?,
            connections: env_required("CONNECTIONS_TABLE")?,
            executives: env_required("EXECUTIVES_TABLE")?,
            customers: env_required("CUSTOMERS_TABLE")?,
        })
    }
}
