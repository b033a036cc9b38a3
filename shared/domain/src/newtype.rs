//! The conversions every string newtype needs: serde goes through
//! `parse` (`#[serde(try_from = "String", into = "String")]`), so an
//! invalid value cannot be deserialised either.

/// Implements `TryFrom<String>` (via `parse`), `From<T> for String`,
/// `as_str` and `Display` for a `struct T(String)` newtype.
macro_rules! string_newtype {
    ($name:ident, $error:ty) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

pub(crate) use string_newtype;
