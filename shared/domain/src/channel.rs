//! Channels and stakeholders: which WhatsApp number serves whom (SPEC §2).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The group of people a chat belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Stakeholder {
    Partner,
    Customer,
    Vendor,
    #[serde(rename = "SRDP")]
    Srdp,
    Discount,
}

impl Stakeholder {
    /// The stakeholders whose chats agents handle (Discount is automated).
    pub const SERVED: [Stakeholder; 4] = [
        Stakeholder::Partner,
        Stakeholder::Customer,
        Stakeholder::Vendor,
        Stakeholder::Srdp,
    ];

    /// Every stakeholder, staffed or not.
    pub const ALL: [Stakeholder; 5] = [
        Stakeholder::Partner,
        Stakeholder::Customer,
        Stakeholder::Vendor,
        Stakeholder::Srdp,
        Stakeholder::Discount,
    ];

    /// Whether agents handle this team's chats: they are assigned, watched
    /// by the SLA, and written on from the dashboard. The one place that
    /// says so (Discount is answered by its automation).
    pub fn is_staffed(self) -> bool {
        Self::SERVED.contains(&self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stakeholder::Partner => "Partner",
            Stakeholder::Customer => "Customer",
            Stakeholder::Vendor => "Vendor",
            Stakeholder::Srdp => "SRDP",
            Stakeholder::Discount => "Discount",
        }
    }

    /// Parses a `customer_type` as dashboards and the apps send it: the
    /// stakeholder name (any case) or an app identifier.
    pub fn parse(value: &str) -> Result<Self, UnknownStakeholder> {
        let v = value.trim();
        let found = match v.to_ascii_lowercase().as_str() {
            "partner" | "dco" | "com.oneway.driver" => Stakeholder::Partner,
            "customer" | "com.onewaycab" | "com.onewaycab.ios" => Stakeholder::Customer,
            "vendor" | "com.onewaycab.vendor" => Stakeholder::Vendor,
            "srdp" => Stakeholder::Srdp,
            "discount" => Stakeholder::Discount,
            _ => return Err(UnknownStakeholder(v.chars().take(64).collect())),
        };
        Ok(found)
    }

    /// The dashboard push event for chats of this stakeholder (SPEC §2).
    pub fn room_event(self) -> Option<&'static str> {
        match self {
            Stakeholder::Partner => Some("room_update"),
            Stakeholder::Customer => Some("room_update_customer"),
            Stakeholder::Vendor => Some("room_update_vendor"),
            Stakeholder::Srdp => Some("room_update_srdp"),
            Stakeholder::Discount => None,
        }
    }
}

impl fmt::Display for Stakeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown customer_type `{0}` (expected Partner, Customer, Vendor or SRDP)")]
pub struct UnknownStakeholder(pub String);

/// A webhook path id such as `9099039188`: digits only.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelId(String);

crate::newtype::string_newtype!(ChannelId, InvalidChannelId);

impl ChannelId {
    pub fn parse(value: &str) -> Result<Self, InvalidChannelId> {
        let ok = (6..=15).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidChannelId)
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a channel id is 6 to 15 digits")]
pub struct InvalidChannelId;

/// One row of the channel table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Channel {
    pub id: ChannelId,
    pub stakeholder: Stakeholder,
    pub wa_number: String,
    pub send_type: String,
    pub provider_url: String,
    pub api_key_env: String,
}

/// The channel table, loaded once per cold start.
#[derive(Clone, Debug)]
pub struct ChannelTable {
    channels: Vec<Channel>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelTableError {
    #[error("channel table is not valid YAML")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("channel table lists `{0}` twice")]
    Duplicate(String),
}

const EMBEDDED: &str = include_str!("../../config/channels.yaml");

impl ChannelTable {
    pub fn from_yaml(text: &str) -> Result<Self, ChannelTableError> {
        #[derive(Deserialize)]
        struct File {
            channels: Vec<Channel>,
        }
        let file: File = serde_yaml_ng::from_str(text)?;
        let mut seen = std::collections::HashSet::new();
        for c in &file.channels {
            if !seen.insert(c.id.clone()) {
                return Err(ChannelTableError::Duplicate(c.id.to_string()));
            }
        }
        Ok(Self {
            channels: file.channels,
        })
    }

    /// The table shipped with the code.
    pub fn embedded() -> Result<Self, ChannelTableError> {
        Self::from_yaml(EMBEDDED)
    }

    /// `CHANNELS_FILE` when set, else the embedded table.
    pub fn from_env(env: &crate::config::Env) -> Result<Self, crate::config::ConfigError> {
        env.config_file("CHANNELS_FILE", EMBEDDED, Self::from_yaml)
    }

    pub fn get(&self, id: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id.as_str() == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Channel> {
        self.channels.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_maps_every_spec_path_id_to_its_stakeholder() {
        let t = ChannelTable::embedded().expect("embedded table parses");
        let expect = [
            ("9099039188", Stakeholder::Partner, "chat"),
            ("8690247247", Stakeholder::Partner, "chat"),
            ("8000247247", Stakeholder::Customer, "customer_chat_new"),
            ("9726724247", Stakeholder::Vendor, "vendor_chat"),
            ("9726524247", Stakeholder::Vendor, "vendor_chat"),
            ("9586924247", Stakeholder::Srdp, "srdp_chat"),
            ("9081812247", Stakeholder::Srdp, "srdp_chat"),
            ("9638120888", Stakeholder::Discount, "discount"),
        ];
        for (id, stakeholder, send_type) in expect {
            let c = t.get(id).unwrap_or_else(|| panic!("{id} missing"));
            assert_eq!(c.stakeholder, stakeholder, "{id}");
            assert_eq!(c.send_type, send_type, "{id}");
        }
        assert!(t.get("1234567890").is_none());
    }

    #[test]
    fn stakeholder_parses_names_and_app_ids() {
        assert_eq!(Stakeholder::parse("partner"), Ok(Stakeholder::Partner));
        assert_eq!(Stakeholder::parse("SRDP"), Ok(Stakeholder::Srdp));
        assert_eq!(
            Stakeholder::parse("com.onewaycab.ios"),
            Ok(Stakeholder::Customer)
        );
        assert_eq!(
            Stakeholder::parse("com.onewaycab.vendor"),
            Ok(Stakeholder::Vendor)
        );
        assert!(Stakeholder::parse("martian").is_err());
    }

    #[test]
    fn channel_ids_are_digits_only() {
        assert!(ChannelId::parse("9099039188").is_ok());
        assert!(ChannelId::parse("../etc").is_err());
        assert!(ChannelId::parse("").is_err());
    }

    #[test]
    fn duplicate_channel_ids_are_refused() {
        let yaml = "channels:\n  - {id: '123456', stakeholder: Partner, wa_number: '1', send_type: chat, provider_url: u, api_key_env: K}\n  - {id: '123456', stakeholder: Vendor, wa_number: '1', send_type: chat, provider_url: u, api_key_env: K}\n";
        assert!(matches!(
            ChannelTable::from_yaml(yaml),
            Err(ChannelTableError::Duplicate(_))
        ));
    }
}
