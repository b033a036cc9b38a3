//! What other OneWay.Cab systems tell us about customers (SPEC §3 internal
//! webhooks): profile changes, bookings, context changes. Each payload is
//! parsed into a typed value or a list of field-level errors.

use crate::error::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::channel::Stakeholder;

/// Field name → what is wrong with it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FieldErrors(pub BTreeMap<String, String>);

impl FieldErrors {
    pub(crate) fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| problem.into());
    }

    pub(crate) fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, FieldErrors> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }

    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn object(body: &Value) -> Result<&Map<String, Value>, FieldErrors> {
    body.as_object().ok_or_else(|| {
        let mut e = FieldErrors::default();
        e.add("body", "must be a JSON object");
        e
    })
}

/// A customer's number: 10 to 15 digits, an optional leading `+` dropped.
fn mobile(obj: &Map<String, Value>, field: &str, errors: &mut FieldErrors) -> String {
    let raw = match obj.get(field) {
        Some(Value::String(s)) => s.trim().trim_start_matches('+').to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            errors.add(field, "must be a string of digits");
            return String::new();
        }
        None => {
            errors.add(field, "is required");
            return String::new();
        }
    };
    if !(10..=15).contains(&raw.len()) || !raw.bytes().all(|b| b.is_ascii_digit()) {
        errors.add(field, "must be 10 to 15 digits");
        return raw;
    }
    canonical_mobile(&raw)
}

/// A customer's number as WhatsApp names them (`wa_id`): OneWay.Cab's
/// systems send Indian mobiles as 10 digits, WhatsApp adds the country
/// code 91. Profiles, rides and context changes are keyed by this form so
/// they join with chats.
pub fn canonical_mobile(digits: &str) -> String {
    if digits.len() == 10 {
        format!("91{digits}")
    } else {
        digits.to_owned()
    }
}

/// The profile fields the dashboard's special filters read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomerProfile {
    pub documents_status: Option<String>,
    pub dco_status: Option<String>,
    pub in_journey_status: Option<bool>,
    /// WhatsApp told us this customer now writes from another number.
    pub changed_number_to: Option<String>,
    /// …or that this number replaced an earlier one.
    pub changed_number_from: Option<String>,
}

fn short_text(
    obj: &Map<String, Value>,
    field: &str,
    required: bool,
    errors: &mut FieldErrors,
) -> Option<String> {
    match obj.get(field) {
        None | Some(Value::Null) if !required => None,
        None | Some(Value::Null) => {
            errors.add(field, "is required");
            None
        }
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 64 => {
            Some(s.trim().to_owned())
        }
        Some(Value::String(_)) => {
            errors.add(field, "must be 1 to 64 characters");
            None
        }
        Some(_) => {
            errors.add(field, "must be a string");
            None
        }
    }
}

fn one_of(
    obj: &Map<String, Value>,
    field: &str,
    allowed: &[&str],
    errors: &mut FieldErrors,
) -> Option<String> {
    let v = short_text(obj, field, true, errors)?;
    let lower = v.to_ascii_lowercase();
    if allowed.contains(&lower.as_str()) {
        Some(lower)
    } else {
        errors.add(field, format!("must be one of {}", allowed.join(", ")));
        None
    }
}

/// `POST /api/webhook/user/update`: only the fields present change.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProfileUpdate {
    pub mobile: String,
    pub documents_status: Option<String>,
    pub dco_status: Option<String>,
    pub in_journey_status: Option<bool>,
    /// Any other scalar fields, kept as sent (at most 32).
    pub other: BTreeMap<String, Value>,
}

const PROFILE_KNOWN: [&str; 5] = [
    "mobile",
    "customer",
    "documents_status",
    "dco_status",
    "in_journey_status",
];

impl ProfileUpdate {
    /// WhatsApp said `old` now writes from `new`: each profile names the
    /// other, so agents of either chat can find the history.
    pub fn number_changed(old: &str, new: &str) -> [Self; 2] {
        let link = |mobile: &str, field: &str, other: &str| Self {
            mobile: mobile.to_owned(),
            documents_status: None,
            dco_status: None,
            in_journey_status: None,
            other: BTreeMap::from([(field.to_owned(), Value::String(other.to_owned()))]),
        };
        [
            link(old, "changed_number_to", new),
            link(new, "changed_number_from", old),
        ]
    }

    pub fn parse(body: &Value) -> Result<Self, FieldErrors> {
        let obj = object(body)?;
        let mut errors = FieldErrors::default();
        let field = if obj.contains_key("mobile") {
            "mobile"
        } else {
            "customer"
        };
        let mobile = if obj.contains_key(field) {
            self::mobile(obj, field, &mut errors)
        } else {
            errors.add("mobile", "is required");
            String::new()
        };
        let documents_status = short_text(obj, "documents_status", false, &mut errors);
        let dco_status = short_text(obj, "dco_status", false, &mut errors);
        let in_journey_status = match obj.get("in_journey_status") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if s == "true" || s == "false" => Some(s == "true"),
            Some(_) => {
                errors.add("in_journey_status", "must be true or false");
                None
            }
        };
        let mut other = BTreeMap::new();
        for (k, v) in obj
            .iter()
            .filter(|(k, _)| !PROFILE_KNOWN.contains(&k.as_str()))
        {
            if k.len() > 64 || !(v.is_string() || v.is_number() || v.is_boolean() || v.is_null()) {
                errors.add(
                    k,
                    "extra fields must be scalars with names up to 64 characters",
                );
            } else if other.len() < 32 {
                other.insert(k.clone(), v.clone());
            } else {
                errors.add(k, "at most 32 extra fields");
            }
        }
        if documents_status.is_none()
            && dco_status.is_none()
            && in_journey_status.is_none()
            && other.is_empty()
        {
            errors.add("body", "nothing to update");
        }
        errors.into_result(|| ProfileUpdate {
            mobile,
            documents_status,
            dco_status,
            in_journey_status,
            other,
        })
    }
}

/// `POST /api/webhook/booking`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BookingEvent {
    pub event: String,
    pub customer_number: String,
    pub booking_id: String,
    pub ride_datetime: DateTime<Utc>,
    pub ride_status: String,
}

impl BookingEvent {
    pub fn parse(body: &Value) -> Result<Self, FieldErrors> {
        let obj = object(body)?;
        let mut errors = FieldErrors::default();
        let event = one_of(
            obj,
            "event",
            &["created", "modified", "cancelled"],
            &mut errors,
        );
        let customer_number = mobile(obj, "customer_number", &mut errors);
        let booking_id = short_text(obj, "booking_id", true, &mut errors);
        let ride_datetime = match obj.get("ride_datetime") {
            Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    errors.add(
                        "ride_datetime",
                        "must be an RFC 3339 time such as 2026-02-20T14:30:00Z",
                    );
                    None
                }
            },
            Some(_) => {
                errors.add("ride_datetime", "must be a string");
                None
            }
            None => {
                errors.add("ride_datetime", "is required");
                None
            }
        };
        let mut ride_status = one_of(
            obj,
            "ride_status",
            &["upcoming", "ongoing", "completed", "cancelled"],
            &mut errors,
        );
        // A cancellation is a cancelled ride whatever status came with it.
        if event.as_deref() == Some("cancelled") {
            ride_status = Some("cancelled".to_owned());
        }
        match (event, booking_id, ride_datetime, ride_status) {
            (Some(event), Some(booking_id), Some(ride_datetime), Some(ride_status))
                if errors.0.is_empty() =>
            {
                Ok(BookingEvent {
                    event,
                    customer_number,
                    booking_id,
                    ride_datetime,
                    ride_status,
                })
            }
            _ => Err(errors),
        }
    }
}

/// `POST /api/webhook/context_change`: only the fields that changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContextChange {
    pub customer: String,
    pub customer_type: Stakeholder,
    pub context: BTreeMap<String, Value>,
}

impl ContextChange {
    pub fn parse(body: &Value) -> Result<Self, FieldErrors> {
        let obj = object(body)?;
        let mut errors = FieldErrors::default();
        let customer = mobile(obj, "customer", &mut errors);
        let customer_type = match short_text(obj, "customer_type", true, &mut errors)
            .map(|s| Stakeholder::parse(&s))
        {
            Some(Ok(s)) if s.is_staffed() => Some(s),
            Some(_) => {
                errors.add("customer_type", "must be Partner, Customer, Vendor or SRDP");
                None
            }
            None => None,
        };
        let mut context = BTreeMap::new();
        match obj.get("context") {
            Some(Value::Object(fields)) if !fields.is_empty() && fields.len() <= 32 => {
                for (k, v) in fields {
                    if k.is_empty() || k.len() > 64 {
                        errors.add(
                            &format!("context.{}", k.chars().take(64).collect::<String>()),
                            "field names are 1 to 64 characters",
                        );
                    } else if !(v.is_string() || v.is_number() || v.is_boolean() || v.is_null()) {
                        errors.add(
                            &format!("context.{k}"),
                            "must be a string, number, boolean or null",
                        );
                    } else {
                        context.insert(k.clone(), v.clone());
                    }
                }
            }
            Some(Value::Object(fields)) if fields.is_empty() => {
                errors.add("context", "must name at least one changed field")
            }
            Some(Value::Object(_)) => errors.add("context", "at most 32 fields"),
            Some(_) => errors.add("context", "must be an object of changed fields"),
            None => errors.add("context", "is required"),
        }
        match customer_type {
            Some(customer_type) if errors.0.is_empty() => Ok(ContextChange {
                customer,
                customer_type,
                context,
            }),
            _ => Err(errors),
        }
    }
}

/// Who wrote: a phone number (`wa_id`) or, for WhatsApp username users, a
/// user id. Letters, digits and `.`, `_`, `-`, `+`, at most 64.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SenderId(String);

crate::newtype::string_newtype!(SenderId, String);

impl SenderId {
    pub fn parse(value: &str) -> Result<Self, String> {
        let v = value.trim();
        if v.is_empty() || v.len() > 64 {
            return Err("sender id must be 1 to 64 characters".into());
        }
        if !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
        {
            return Err("sender id has characters other than letters, digits, . _ - +".into());
        }
        Ok(Self(v.to_owned()))
    }

    /// What WhatsApp sent, made into an id: characters outside the
    /// alphabet dropped (`91 98100/00001` → `919810000001`), an over-long
    /// id replaced by a hash of itself. `None` when nothing is left.
    pub fn lenient(value: &str) -> Option<Self> {
        let kept: String = value
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
            .collect();
        match kept.len() {
            0 => None,
            1..=64 => Some(Self(kept)),
            _ => Some(Self(format!("h.{}", &hash_hex(value)[..40]))),
        }
    }
}

/// SHA-256 of `value`, in hex: how over-long ids are made to fit.
pub(crate) fn hash_hex(value: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(value.as_bytes()))
}

/// What other systems tell us about customers.
pub trait CustomerStore: Send + Sync {
    /// Sets the fields the update carries, leaves the others.
    fn upsert_profile(
        &self,
        update: &ProfileUpdate,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records the booking's latest state (one item per booking).
    fn put_ride(
        &self,
        booking: &BookingEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The profiles of these customers (those that have one).
    fn profiles(
        &self,
        customers: &[SenderId],
    ) -> impl Future<Output = Result<HashMap<SenderId, CustomerProfile>, StoreError>> + Send;

    /// Keeps a context change (a log line) and merges it into the
    /// customer's current context for the team.
    fn record_context_change(
        &self,
        change: &ContextChange,
        received_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The customer's current context for `team`: every field any context
    /// change set, at its latest value. `None` when nothing was ever told.
    fn current_context(
        &self,
        customer: &SenderId,
        team: Stakeholder,
    ) -> impl Future<Output = Result<Option<BTreeMap<String, Value>>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn profile_updates_take_only_what_is_sent() {
        let p = ProfileUpdate::parse(
            &json!({"mobile": "+919812345678", "dco_status": "Active", "city": "Pune"}),
        )
        .unwrap();
        assert_eq!(p.mobile, "919812345678");
        assert_eq!(p.dco_status.as_deref(), Some("Active"));
        assert_eq!(p.documents_status, None);
        assert_eq!(p.other.get("city"), Some(&json!("Pune")));
    }

    #[test]
    fn bad_payloads_name_every_bad_field() {
        let e = BookingEvent::parse(
            &json!({"event": "teleported", "customer_number": "12", "ride_datetime": "tomorrow"}),
        )
        .unwrap_err();
        let fields: Vec<_> = e.0.keys().cloned().collect();
        assert_eq!(
            fields,
            vec![
                "booking_id",
                "customer_number",
                "event",
                "ride_datetime",
                "ride_status"
            ]
        );
        let e = ContextChange::parse(
            &json!({"customer": "9812345678", "customer_type": "Martian", "context": {}}),
        )
        .unwrap_err();
        assert!(e.0.contains_key("customer_type") && e.0.contains_key("context"));
        let e = ProfileUpdate::parse(&json!({"mobile": "9812345678"})).unwrap_err();
        assert_eq!(e.summary(), "body: nothing to update");
        assert!(ProfileUpdate::parse(&json!([1])).is_err());
    }

    #[test]
    fn a_cancelled_booking_is_a_cancelled_ride() {
        let b = BookingEvent::parse(
            &json!({"event": "cancelled", "customer_number": "9638120888", "booking_id": "BK1",
            "ride_datetime": "2026-02-20T14:30:00Z", "ride_status": "upcoming"}),
        )
        .unwrap();
        assert_eq!(b.ride_status, "cancelled");
    }
}
