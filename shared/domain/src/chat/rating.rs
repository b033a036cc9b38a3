//! The customer's rating of a resolution (CSAT): which teams ask for one
//! and for how long an answer counts, and what counts as an answer.
//!
//! Resolving a chat of a team that asks sends the resolution template
//! ([`RatingSettings::template`]) and marks the chat (`rating_asked_at`).
//! Within the window, a customer message that is a rating is stored as the
//! chat's rating without reopening it (a later rating replaces it); any
//! other message reopens the chat as always.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::Stakeholder;
use crate::chat::{Chat, ChatStatus, Content};
use crate::config::{ConfigError, Env};

const EMBEDDED: &str = include_str!("../../../config/automations.yaml");

/// Who is asked to rate, with which template, and for how long an answer
/// counts. Seeded from `automations.yaml` (`AUTOMATIONS_FILE`); an admin's
/// change is stored and wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingSettings {
    /// The approved template resolving sends.
    pub template: String,
    /// How long after resolving a 1–5 answer is a rating, in seconds.
    pub window_secs: u64,
    /// The teams whose chats ask for a rating when resolved.
    pub teams: BTreeSet<Stakeholder>,
}

/// The longest window an admin may set: a week.
pub const MAX_WINDOW_SECS: u64 = 7 * 24 * 3600;

#[derive(Deserialize)]
struct File {
    rating: RatingSettings,
}

impl RatingSettings {
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let file: File = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        file.rating.validated()
    }

    /// The settings shipped with the code, or `AUTOMATIONS_FILE`'s.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        env.config_file("AUTOMATIONS_FILE", EMBEDDED, Self::from_yaml)
    }

    /// Refuses what cannot work: no template, a window of nothing or more
    /// than a week, a team nobody staffs.
    pub fn validated(self) -> Result<Self, String> {
        if self.template.trim().is_empty() {
            return Err("rating.template must name an approved template".into());
        }
        if self.window_secs == 0 || self.window_secs > MAX_WINDOW_SECS {
            return Err(format!(
                "rating.window_secs must be 1 to {MAX_WINDOW_SECS} seconds"
            ));
        }
        if let Some(team) = self.teams.iter().find(|t| !t.is_staffed()) {
            return Err(format!(
                "rating.teams: {team} chats are not resolved by agents"
            ));
        }
        Ok(self)
    }

    /// Whether resolving a chat of `team` asks for a rating.
    pub fn asks(&self, team: Stakeholder) -> bool {
        self.teams.contains(&team)
    }

    /// Whether a customer message at `at` may be a rating of `chat`: it
    /// is resolved, was asked, and the window has not passed.
    pub fn awaits_rating(&self, chat: &Chat, at: DateTime<Utc>) -> bool {
        let window = Duration::seconds(i64::try_from(self.window_secs).unwrap_or(i64::MAX));
        chat.status == ChatStatus::Resolved
            && chat
                .rating_asked_at
                .is_some_and(|asked| at >= asked && at - asked <= window)
    }
}

impl crate::settings::Named for RatingSettings {
    const NAME: &'static str = "RATING";
}

/// The rating in what the customer sent, if it is one: a score 1–5 as a
/// digit (ASCII or Devanagari), alone or with "star(s)", "/5" or
/// "out of 5"; a run of one to five ⭐; or a button whose text or payload
/// is one of these. Anything else (words around it, two numbers, 0, 6)
/// is no rating.
pub fn parse_rating(content: &Content) -> Option<u8> {
    match content {
        Content::Text { body } => score_of(body),
        Content::Button { payload, text } => {
            score_of(text).or_else(|| payload.as_deref().and_then(score_of))
        }
        Content::InteractiveReply {
            reply_id, title, ..
        } => score_of(title).or_else(|| score_of(reply_id)),
        _ => None,
    }
}

fn score_of(text: &str) -> Option<u8> {
    let t = text.trim().to_lowercase();
    if t.is_empty() || t.chars().count() > 24 {
        return None;
    }
    // A run of stars: ⭐ (U+2B50), optionally with variation selectors.
    let stars: Vec<char> = t.chars().filter(|c| *c != '\u{fe0f}').collect();
    if stars.iter().all(|c| *c == '⭐' || *c == '★') {
        return u8::try_from(stars.len())
            .ok()
            .filter(|n| (1..=5).contains(n));
    }
    let mut digits = t.chars().filter_map(digit);
    let score = digits.next()?;
    if digits.next().is_some() && !t.contains("/5") && !t.contains("out of 5") {
        return None;
    }
    // What may surround the digit: nothing, or a scale.
    let rest: String = t
        .chars()
        .filter(|c| digit(*c).is_none())
        .collect::<String>()
        .replace("out of", "")
        .replace(['/', '.', '!', '⭐', '\u{fe0f}'], "")
        .replace("stars", "")
        .replace("star", "")
        .replace("स्टार", "");
    rest.trim()
        .is_empty()
        .then_some(score)
        .filter(|n| (1..=5).contains(n))
}

/// A decimal digit, ASCII or Devanagari.
fn digit(c: char) -> Option<u8> {
    match c {
        '0'..='9' => u8::try_from(c as u32 - '0' as u32).ok(),
        '०'..='९' => u8::try_from(c as u32 - '०' as u32).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(body: &str) -> Content {
        Content::Text { body: body.into() }
    }

    #[test]
    fn ratings_as_customers_type_them() {
        for (typed, score) in [
            ("5", 5),
            (" 4 ", 4),
            ("१", 1),
            ("५", 5),
            ("3 stars", 3),
            ("1 star", 1),
            ("5/5", 5),
            ("4 out of 5", 4),
            ("⭐⭐⭐⭐", 4),
            ("⭐️⭐️⭐️⭐️⭐️", 5),
            ("2⭐", 2),
            ("5!", 5),
            ("3 स्टार", 3),
        ] {
            assert_eq!(parse_rating(&text(typed)), Some(score), "{typed:?}");
        }
    }

    #[test]
    fn what_is_not_a_rating() {
        for typed in [
            "",
            "0",
            "6",
            "10",
            "ok",
            "5 days and still no refund",
            "call me on 98100 00001",
            "⭐⭐⭐⭐⭐⭐",
            "thanks",
            "1 2",
        ] {
            assert_eq!(parse_rating(&text(typed)), None, "{typed:?}");
        }
        assert_eq!(
            parse_rating(&Content::Location {
                latitude: 18.5,
                longitude: 73.8,
                name: None,
                address: None
            }),
            None
        );
    }

    #[test]
    fn a_quick_reply_button_is_a_rating() {
        let button = Content::Button {
            payload: Some("RATE_4".into()),
            text: "4".into(),
        };
        assert_eq!(parse_rating(&button), Some(4));
        let reply = Content::InteractiveReply {
            reply_kind: "button_reply".into(),
            reply_id: "rate-2".into(),
            title: "⭐⭐".into(),
        };
        assert_eq!(parse_rating(&reply), Some(2));
    }

    #[test]
    fn the_seeded_settings_ask_every_staffed_team_for_a_day() {
        let s = RatingSettings::from_env(&Env::default()).expect("the shipped file is valid");
        assert_eq!(s.window_secs, 24 * 3600);
        assert!(
            Stakeholder::ALL
                .iter()
                .all(|t| s.asks(*t) == t.is_staffed())
        );
        let bad = RatingSettings {
            teams: BTreeSet::from([Stakeholder::Discount]),
            ..s.clone()
        };
        assert!(bad.validated().is_err());
        assert!(
            RatingSettings {
                window_secs: 0,
                ..s
            }
            .validated()
            .is_err()
        );
    }
}
