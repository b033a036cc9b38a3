//! The WhatsApp provider (Pinbot): media download today; sending arrives
//! with outbound messaging. One pooled HTTP client per container, the
//! seeds' timeouts, keys per channel from the environment.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use domain::channel::{Channel, ChannelTable};
use domain::secret::Secret;

pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The provider's media host when `PINBOT_BASE_URL` does not replace it.
pub const DEFAULT_MEDIA_BASE: &str = "https://partners.pinbot.ai";
/// What an API Gateway HTTP API Lambda response can carry once base64
/// encoded (6 MB payload limit).
pub const MAX_MEDIA_BYTES: usize = 4 * 1024 * 1024;

/// A media file as the provider served it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MediaError {
    #[error("no such media")]
    NotFound,
    #[error("no provider key is configured for channel {0}")]
    NoKey(String),
    #[error("media is larger than {MAX_MEDIA_BYTES} bytes")]
    TooLarge,
    #[error("the provider refused our key ({0})")]
    Refused(u16),
    /// Timeouts, connection failures, 429 and 5xx: worth retrying.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

pub trait MediaSource: Send + Sync {
    fn download(
        &self,
        channel: &Channel,
        media_id: &str,
    ) -> impl Future<Output = Result<Media, MediaError>> + Send;
}

/// Provider keys by the environment variable name the channel table uses.
#[derive(Clone, Debug, Default)]
pub struct ProviderKeys(HashMap<String, Secret>);

impl ProviderKeys {
    /// Every key the channel table names that is set in the environment.
    pub fn from_env(env: &domain::config::Env, channels: &ChannelTable) -> Self {
        let mut keys = HashMap::new();
        for c in channels.iter() {
            if let Some(k) = env.secret(&c.api_key_env) {
                keys.insert(c.api_key_env.clone(), k);
            }
        }
        Self(keys)
    }

    /// Obviously fake keys for the local stack, where the recorder answers.
    pub fn local_dev() -> Self {
        let mut keys = Self::default();
        for name in ["WA_API_KEY_1", "WA_API_KEY_2"] {
            keys.insert(
                name,
                Secret::new(format!("local-dev-{}", name.to_ascii_lowercase())),
            );
        }
        keys
    }

    pub fn insert(&mut self, env_name: &str, key: Secret) {
        self.0.insert(env_name.to_owned(), key);
    }

    /// Every key, by the environment variable name it stands for.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Secret)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn for_channel(&self, channel: &Channel) -> Option<&Secret> {
        self.0.get(&channel.api_key_env)
    }
}

#[derive(Clone, Debug)]
pub struct PinbotClient {
    http: reqwest::Client,
    /// Replaces the provider's host (`PINBOT_BASE_URL`, the local recorder).
    base_url: Option<String>,
    keys: ProviderKeys,
}

/// The pooled client for calls to other services, with the seeds' timeouts
/// (10 s total, 5 s to connect). Build it once per container.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(TOTAL_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
}

impl PinbotClient {
    pub fn new(base_url: Option<String>, keys: ProviderKeys) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: http_client()?,
            base_url: base_url.map(|b| b.trim_end_matches('/').to_owned()),
            keys,
        })
    }

    /// `PINBOT_BASE_URL` (unset: the provider's own hosts) and the keys
    /// the channel table names.
    pub fn from_env(
        env: &domain::config::Env,
        channels: &ChannelTable,
    ) -> Result<Self, reqwest::Error> {
        let base = env.get("PINBOT_BASE_URL").map(str::to_owned);
        Self::new(base, ProviderKeys::from_env(env, channels))
    }

    fn media_url(&self, media_id: &str) -> String {
        let base = self.base_url.as_deref().unwrap_or(DEFAULT_MEDIA_BASE);
        format!("{base}/v1/downloadmedia/{}", urlencoding::encode(media_id))
    }
}

impl MediaSource for PinbotClient {
    async fn download(&self, channel: &Channel, media_id: &str) -> Result<Media, MediaError> {
        let key = self
            .keys
            .for_channel(channel)
            .ok_or_else(|| MediaError::NoKey(channel.id.to_string()))?;
        let res = self
            .http
            .get(self.media_url(media_id))
            .header("apikey", key.expose())
            .send()
            .await
            .map_err(|e| MediaError::Unavailable(e.to_string()))?;
        let status = res.status();
        match status.as_u16() {
            200..=299 => {}
            404 => return Err(MediaError::NotFound),
            401 | 403 => return Err(MediaError::Refused(status.as_u16())),
            code => return Err(MediaError::Unavailable(format!("provider answered {code}"))),
        }
        if res
            .content_length()
            .is_some_and(|l| l > MAX_MEDIA_BYTES as u64)
        {
            return Err(MediaError::TooLarge);
        }
        let content_type = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| MediaError::Unavailable(e.to_string()))?;
        if bytes.len() > MAX_MEDIA_BYTES {
            return Err(MediaError::TooLarge);
        }
        Ok(Media {
            content_type,
            bytes: bytes.to_vec(),
        })
    }
}

impl domain::sending::Sender for PinbotClient {
    async fn send(
        &self,
        channel: &Channel,
        to: &str,
        message: &domain::outbound::Outbound,
        callback: &str,
    ) -> Result<String, domain::sending::SendError> {
        use domain::sending::{SendError, classify};
        let key = self.keys.for_channel(channel).ok_or_else(|| {
            SendError::Permanent(format!(
                "no provider key is configured for channel {} ({})",
                channel.id, channel.api_key_env
            ))
        })?;
        let route = domain::outbound::Route::for_channel(channel, self.base_url.as_deref());
        let mut body = message.body(to);
        if let Some(fields) = body.as_object_mut() {
            fields.insert("biz_opaque_callback_data".into(), callback.into());
        }
        let mut request = self
            .http
            .post(&route.url)
            .header("apikey", key.expose())
            .json(&body);
        if let Some(number) = &route.wanumber {
            request = request.header("wanumber", number);
        }
        let res = request.send().await.map_err(|e| {
            if e.is_connect() {
                // No connection, so no request: safe to send again.
                SendError::Retryable {
                    reason: format!("provider unreachable: {e}"),
                    retry_after: None,
                }
            } else {
                SendError::Ambiguous(format!("no answer from the provider after sending: {e}"))
            }
        })?;
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = res
            .text()
            .await
            .map_err(|e| SendError::Ambiguous(format!("provider answer cut short: {e}")))?;
        if !(200..300).contains(&status) {
            return Err(classify(status, &body, retry_after));
        }
        accepted_id(&body).ok_or_else(|| {
            // It may have been sent: sending again could send it twice.
            SendError::Ambiguous(format!(
                "provider answered {status} without a message id: {}",
                body.chars().take(200).collect::<String>()
            ))
        })
    }
}

/// `messages[0].id` of a send's success answer.
fn accepted_id(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.pointer("/messages/0/id")?
        .as_str()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::accepted_id;

    #[test]
    fn a_success_answer_names_the_message() {
        let body = r#"{"messaging_product":"whatsapp","contacts":[{"input":"919812345678","wa_id":"919812345678"}],
            "messages":[{"id":"wamid.HBgM","message_status":"accepted"}]}"#;
        assert_eq!(accepted_id(body).as_deref(), Some("wamid.HBgM"));
        assert_eq!(accepted_id(r#"{"messages":[]}"#), None);
        assert_eq!(accepted_id(r#"{"messages":[{"id":""}]}"#), None);
        assert_eq!(accepted_id("not json"), None);
    }
}
