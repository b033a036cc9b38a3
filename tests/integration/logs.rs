//! What the functions log at info level: ids and masked numbers, never a
//! customer's full number or what anyone wrote.

use std::io::Write;
use std::sync::{Arc, Mutex};

use domain::secret::Secret;
use serde_json::json;
use smart_chat_tests::*;

/// Log lines written into memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn info_logs_mask_phone_numbers_and_never_carry_message_texts() -> anyhow::Result<()> {
    let captured = Captured::default();
    let writer = captured.clone();
    // This test's runtime runs on one thread, and so does every task the
    // stack spawns: a thread-local subscriber sees them all.
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let token = "internal-token-for-log-tests";
    let stack = Stack::start_with(|c| c.internal_token = Some(Secret::new(token.into()))).await?;
    // Other tests in this process log from their own threads. A log line
    // first reached there while this subscriber was being set can keep the
    // "nobody listens" it was registered with (tracing caches each line's
    // interest); asking every registered line again, now that this
    // subscriber exists, makes the capture complete.
    tracing::callsite::rebuild_interest_cache();
    let customer = "919812340077";
    let chat = stack
        .customer_writes(
            PARTNER_CHANNEL,
            customer,
            "wamid.log-1",
            "meter tampered near Khed",
        )
        .await?;
    let mut dash = stack.connect(&stack.admin_token().await?).await?;
    dash.request(
        "send_message",
        json!({"chat_id": chat.chat_id, "message": "we are checking the meter"}),
    )
    .await?;
    for (path, body) in [
        (
            "/api/webhook/user/update",
            json!({"mobile": "9812340077", "documents_status": "Pending"}),
        ),
        (
            "/api/webhook/context_change",
            json!({"customer": "9812340077", "customer_type": "Partner",
            "context": {"documents_status": "Approved"}}),
        ),
    ] {
        let res = stack
            .http
            .post(stack.url(path))
            .header("x-internal-token", token)
            .json(&body)
            .send()
            .await?;
        assert_eq!(res.status().as_u16(), 200, "{path}");
    }
    stack.settled().await?;
    dash.close().await;
    stack.stop().await;

    let logs = String::from_utf8(captured.0.lock().map(|v| v.clone()).unwrap_or_default())?;
    assert!(logs.contains("message stored"), "the flow was logged");
    assert!(logs.contains("••••0077"), "numbers appear masked");
    assert!(!logs.contains("9812340077"), "a full number was logged");
    for text in ["meter tampered", "checking the meter"] {
        assert!(!logs.contains(text), "message text `{text}` was logged");
    }
    Ok(())
}
