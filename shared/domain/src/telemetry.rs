//! Logging: one JSON line per event on stdout (CloudWatch reads it).

use tracing_subscriber::EnvFilter;

/// JSON logs, level from `RUST_LOG` (default `info`). Safe to call twice.
pub fn init_json() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Human-readable logs for the local stack.
pub fn init_pretty() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// A phone number (or WhatsApp user id) as logs show it: the last four
/// characters, the rest hidden (`••••5678`).
pub struct Masked<'a>(pub &'a str);

impl std::fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tail: String = {
            let chars: Vec<char> = self.0.chars().collect();
            chars[chars.len().saturating_sub(4)..].iter().collect()
        };
        write!(f, "••••{tail}")
    }
}

/// CloudWatch metric namespace of every count below.
pub const METRIC_NAMESPACE: &str = "SmartChat";

/// An Embedded Metric Format document counting `value` of `name`:
/// CloudWatch turns the log line into a metric, no API call needed.
pub fn emf_count(name: &str, value: u64, at: chrono::DateTime<chrono::Utc>) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [[]],
                "Metrics": [{"Name": name, "Unit": "Count"}],
            }],
        },
        name: value,
    })
    .to_string()
}

/// Counts `value` of metric `name`: an EMF line on stdout inside Lambda,
/// a debug log elsewhere (the local stack has no CloudWatch).
pub fn count(name: &str, value: u64) {
    if value == 0 {
        return;
    }
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        println!("{}", emf_count(name, value, chrono::Utc::now()));
    } else {
        tracing::debug!(metric = name, value, "metric");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn phone_numbers_show_only_their_last_four_digits() {
        assert_eq!(super::Masked("919812345678").to_string(), "••••5678");
        assert_eq!(super::Masked("12").to_string(), "••••12");
    }

    #[test]
    fn emf_documents_name_their_metric_and_value() {
        let at = chrono::DateTime::from_timestamp(1_763_700_000, 0).unwrap_or_default();
        let doc: serde_json::Value =
            serde_json::from_str(&super::emf_count("WebhookItemsSkipped", 2, at)).unwrap();
        assert_eq!(doc["WebhookItemsSkipped"], 2);
        assert_eq!(doc["_aws"]["Timestamp"], 1_763_700_000_000_i64);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "WebhookItemsSkipped"
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            super::METRIC_NAMESPACE
        );
    }
}
