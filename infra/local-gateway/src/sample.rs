//! WhatsApp webhook bodies the local tools and tests post, as the Cloud API
//! sends them.

use serde_json::{Value, json};

/// One customer's text in a webhook: who (number and profile name), the
/// message's WhatsApp id and its text.
pub struct Text<'a> {
    pub from: &'a str,
    pub name: &'a str,
    pub id: &'a str,
    pub body: &'a str,
}

/// A webhook to the Partner number carrying `texts`, stamped `timestamp`
/// (seconds since the epoch).
pub fn text_webhook(texts: &[Text<'_>], timestamp: i64) -> Value {
    let contacts: Vec<Value> = texts
        .iter()
        .map(|t| json!({"profile": {"name": t.name}, "wa_id": t.from}))
        .collect();
    let messages: Vec<Value> = texts
        .iter()
        .map(|t| {
            json!({"from": t.from, "id": t.id, "timestamp": timestamp.to_string(),
                   "type": "text", "text": {"body": t.body}})
        })
        .collect();
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "919099039188", "phone_number_id": "1"},
            "contacts": contacts,
            "messages": messages
        }}]}]
    })
}
