//! The discount bot's routes (channel 9638120888, v1 BRD FR-2) and which
//! one a customer's message names, however they type it: any case, extra
//! spaces, "to" / "-" / "→" between the places, the "Need Discount Code"
//! lead-in and the "@ ₹2199" price present or not, Devanagari digits.
//!
//! Routes are data (`shared/config/discount_routes.yaml`, or
//! `DISCOUNT_ROUTES_FILE`). A route whose code is not known yet is marked
//! `placeholder` and is never offered.

pub mod bot;

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Env};
use crate::error::StoreError;

const EMBEDDED: &str = include_str!("../../../config/discount_routes.yaml");

/// One route with its discounted price and code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscountRoute {
    pub from: String,
    pub to: String,
    /// Rupees.
    pub price: u32,
    pub code: String,
    /// The code is a stand-in the business has not replaced yet: listed,
    /// never offered.
    #[serde(default)]
    pub placeholder: bool,
    /// Switched off by an admin: listed, never offered.
    #[serde(default)]
    pub disabled: bool,
}

impl DiscountRoute {
    /// "Pune to Mumbai Airport", as customers see it.
    pub fn name(&self) -> String {
        format!("{} to {}", self.from, self.to)
    }

    /// The route's words as a normalised message says them.
    fn pattern(&self) -> String {
        normalize(&format!("{} to {}", self.from, self.to))
    }

    /// How admins address the route: `pune-to-mumbai-airport`.
    pub fn route_id(&self) -> String {
        self.pattern().replace(' ', "-")
    }

    /// Whether the bot offers it: a real code, not switched off.
    pub fn offered(&self) -> bool {
        !self.placeholder && !self.disabled
    }

    /// A place of 1–64 characters at each end, a price of 1–100000
    /// rupees, a code of 3–32 of `A-Z`, `0-9`, `-`.
    pub fn check(&self) -> Result<(), String> {
        for place in [&self.from, &self.to] {
            if place.trim().is_empty() || place.chars().count() > 64 || normalize(place).is_empty()
            {
                return Err(format!(
                    "route place `{}` must be 1 to 64 characters",
                    place.chars().take(64).collect::<String>()
                ));
            }
        }
        if self.price == 0 || self.price > 100_000 {
            return Err(format!("{}: price must be 1 to 100000 rupees", self.name()));
        }
        let code_ok = (3..=32).contains(&self.code.len())
            && self
                .code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
        if !code_ok {
            return Err(format!(
                "{}: code must be 3 to 32 of A-Z, 0-9 and -",
                self.name()
            ));
        }
        Ok(())
    }
}

/// Every route the bot knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscountRoutes {
    pub routes: Vec<DiscountRoute>,
}

impl DiscountRoutes {
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        serde_yaml_ng::from_str::<Self>(text)
            .map_err(|e| e.to_string())?
            .validated()
    }

    /// The routes shipped with the code, or `DISCOUNT_ROUTES_FILE`'s.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        env.config_file("DISCOUNT_ROUTES_FILE", EMBEDDED, Self::from_yaml)
    }

    /// Refuses what the bot could not offer sensibly: a place that is
    /// empty or too long, a route listed twice, a price of nothing, a code
    /// that is not 3–32 of `A-Z`, `0-9`, `-`.
    pub fn validated(self) -> Result<Self, String> {
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.routes {
            r.check()?;
            if !seen.insert(r.pattern()) {
                return Err(format!("route {} is listed twice", r.name()));
            }
        }
        Ok(self)
    }

    /// The route `text` names, if any: the longest route whose places
    /// appear in order as whole words ("Pune to Mumbai Airport" wins over
    /// "Pune to Mumbai" in a message naming the airport).
    pub fn matching(&self, text: &str) -> Option<&DiscountRoute> {
        let said = format!(" {} ", normalize(text));
        self.routes
            .iter()
            .filter(|r| said.contains(&format!(" {} ", r.pattern())))
            .max_by_key(|r| r.pattern().len())
    }
}

/// Where the routes are kept once seeded; admins change them there.
pub trait DiscountRouteStore: Send + Sync {
    /// Every route, or `None` when they were never seeded.
    fn discount_routes(
        &self,
    ) -> impl Future<Output = Result<Option<Vec<DiscountRoute>>, StoreError>> + Send;

    /// Seeds the routes unless that has happened already (by anyone).
    fn seed_discount_routes(
        &self,
        routes: &[DiscountRoute],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Creates (`create`: only if absent, else `Conflict`) or replaces a
    /// route, by its id.
    fn put_discount_route(
        &self,
        route: &DiscountRoute,
        create: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The routes in force: the stored ones, seeded from `seeded` the first
/// time anyone asks.
pub async fn routes_in_force<S: DiscountRouteStore>(
    store: &S,
    seeded: &DiscountRoutes,
) -> Result<DiscountRoutes, StoreError> {
    if let Some(routes) = store.discount_routes().await? {
        return Ok(DiscountRoutes { routes });
    }
    store.seed_discount_routes(&seeded.routes).await?;
    Ok(DiscountRoutes {
        routes: store.discount_routes().await?.unwrap_or_default(),
    })
}

/// Lower case, ASCII digits, one space between words; the separators
/// people type between places read as "to"; punctuation and currency
/// marks dropped.
pub(crate) fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '०'..='९' => {
                let digit = (c as u32 - '०' as u32) as u8;
                out.push(char::from(b'0' + digit));
            }
            '-' if chars.peek() == Some(&'>') => {
                chars.next();
                out.push_str(" to ");
            }
            '-' | '–' | '—' | '→' | '⇄' | '↔' => out.push_str(" to "),
            c if c.is_alphanumeric() => out.extend(c.to_lowercase()),
            _ => out.push(' '),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> DiscountRoutes {
        DiscountRoutes::from_env(&Env::default()).expect("the shipped routes are valid")
    }

    #[test]
    fn the_fourteen_routes_ship_and_only_pune_mumbai_has_a_real_code() {
        let r = routes();
        assert_eq!(r.routes.len(), 14);
        let offered: Vec<String> = r
            .routes
            .iter()
            .filter(|r| !r.placeholder)
            .map(|r| format!("{} {}", r.name(), r.code))
            .collect();
        assert_eq!(offered, vec!["Pune to Mumbai TRUST4111"]);
        assert!(
            r.routes
                .iter()
                .filter(|r| r.placeholder)
                .all(|r| r.code.starts_with("PLACEHOLDER-"))
        );
    }

    #[test]
    fn routes_as_customers_type_them() {
        let r = routes();
        for (typed, want) in [
            (
                "Need Discount Code - Pune to Mumbai Airport @ 2199",
                "Pune to Mumbai Airport",
            ),
            (
                "need discount code - pune to mumbai airport @ ₹2199",
                "Pune to Mumbai Airport",
            ),
            ("Pune to Mumbai airport", "Pune to Mumbai Airport"),
            ("  PUNE   TO  MUMBAI AIRPORT  ", "Pune to Mumbai Airport"),
            ("Pune - Mumbai Airport", "Pune to Mumbai Airport"),
            ("Pune→Mumbai Airport", "Pune to Mumbai Airport"),
            ("Pune->Mumbai Airport @2199", "Pune to Mumbai Airport"),
            (
                "Need Discount Code - Pune to Mumbai @ 2199",
                "Pune to Mumbai",
            ),
            ("pune to mumbai @ २१९९", "Pune to Mumbai"),
            ("Pune to Mumbai, please", "Pune to Mumbai"),
            ("Mumbai Airport to Pune", "Mumbai Airport to Pune"),
            ("mumbai to pune", "Mumbai to Pune"),
            ("Nagpur-Raipur", "Nagpur to Raipur"),
            (
                "Raipur Airport to Bilaspur @ Rs. 1499",
                "Raipur Airport to Bilaspur",
            ),
            (
                "Need Discount Code – Shirdi to Pune @ ₹2499",
                "Shirdi to Pune",
            ),
        ] {
            assert_eq!(
                r.matching(typed).map(DiscountRoute::name).as_deref(),
                Some(want),
                "{typed:?}"
            );
        }
    }

    #[test]
    fn what_names_no_route() {
        let r = routes();
        for typed in [
            "",
            "hello",
            "Pune",
            "Mumbai Airport",
            "Pune to Goa",
            "Punes to Mumbai",
            "Mumbai to Punekar",
            "discount code please",
        ] {
            assert_eq!(r.matching(typed), None, "{typed:?}");
        }
    }

    #[test]
    fn bad_route_data_is_refused() {
        let one = |from: &str, price: u32, code: &str| DiscountRoutes {
            routes: vec![DiscountRoute {
                from: from.into(),
                to: "Pune".into(),
                price,
                code: code.into(),
                placeholder: false,
                disabled: false,
            }],
        };
        assert!(one("Mumbai", 2199, "TRUST4111").validated().is_ok());
        assert!(one("", 2199, "TRUST4111").validated().is_err());
        assert!(one("Mumbai", 0, "TRUST4111").validated().is_err());
        assert!(one("Mumbai", 2199, "trust 4111").validated().is_err());
        let twice = DiscountRoutes {
            routes: [
                one("Mumbai", 2199, "A111").routes,
                one("MUMBAI", 1999, "B222").routes,
            ]
            .concat(),
        };
        assert!(twice.validated().is_err(), "the same route in another case");
    }
}
