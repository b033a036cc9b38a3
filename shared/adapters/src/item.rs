//! Reading and writing DynamoDB items without leaking `AttributeValue`
//! out of the adapter.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use domain::error::{BoxError, StoreError};

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Fixed-width UTC timestamps: they sort as strings in keys.
pub fn time_key(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn t(v: DateTime<Utc>) -> AttributeValue {
    s(time_key(v))
}

pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// Adds an optional string attribute only when present (DynamoDB has no
/// use for empty attributes).
pub fn put_opt(item: &mut Item, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        item.insert(name.to_owned(), s(v));
    }
}

pub fn unavailable<E>(e: E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StoreError::Unavailable(Box::new(e) as BoxError)
}

pub trait ItemExt {
    fn str(&self, name: &str) -> Result<&str, StoreError>;
    fn str_opt(&self, name: &str) -> Option<&str>;
    fn u64(&self, name: &str) -> Result<u64, StoreError>;
    fn u64_or_zero(&self, name: &str) -> Result<u64, StoreError>;
    fn time(&self, name: &str) -> Result<DateTime<Utc>, StoreError>;
    fn time_opt(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    fn bool_or(&self, name: &str, default: bool) -> bool;
    fn str_list(&self, name: &str) -> Vec<&str>;
}

fn corrupt(name: &str, what: &str) -> StoreError {
    StoreError::Corrupt(format!("attribute `{name}` {what}"))
}

impl ItemExt for Item {
    fn str(&self, name: &str) -> Result<&str, StoreError> {
        self.str_opt(name)
            .ok_or_else(|| corrupt(name, "is missing or not a string"))
    }

    fn str_opt(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(AttributeValue::S(v)) => Some(v),
            _ => None,
        }
    }

    fn u64(&self, name: &str) -> Result<u64, StoreError> {
        match self.get(name) {
            Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt(name, "is not a count")),
            _ => Err(corrupt(name, "is missing or not a number")),
        }
    }

    fn u64_or_zero(&self, name: &str) -> Result<u64, StoreError> {
        if self.contains_key(name) {
            self.u64(name)
        } else {
            Ok(0)
        }
    }

    fn time(&self, name: &str) -> Result<DateTime<Utc>, StoreError> {
        self.time_opt(name)?
            .ok_or_else(|| corrupt(name, "is missing"))
    }

    fn time_opt(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.str_opt(name) {
            None => Ok(None),
            Some(v) => DateTime::parse_from_rfc3339(v)
                .map(|d| Some(d.with_timezone(&Utc)))
                .map_err(|_| corrupt(name, "is not an RFC 3339 time")),
        }
    }

    fn bool_or(&self, name: &str, default: bool) -> bool {
        match self.get(name) {
            Some(AttributeValue::Bool(b)) => *b,
            _ => default,
        }
    }

    fn str_list(&self, name: &str) -> Vec<&str> {
        match self.get(name) {
            Some(AttributeValue::L(list)) => list
                .iter()
                .filter_map(|v| match v {
                    AttributeValue::S(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}
