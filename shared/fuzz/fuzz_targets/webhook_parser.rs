//! Anything a webhook can carry: the parser must answer Ok or Err, never
//! panic, and everything it accepts must survive the trip through the queue.
#![no_main]

use libfuzzer_sys::fuzz_target;
use domain::channel::ChannelId;
use domain::inbound::QueuedEvent;
use domain::whatsapp::{InboundEvent, parse_webhook};

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = parse_webhook(data) else { return };
    let Ok(channel) = ChannelId::parse("9099039188") else { return };
    for (position, event) in parsed.events.into_iter().enumerate() {
        if let InboundEvent::Message(m) = &event {
            let preview = m.content.preview();
            assert!(preview.chars().count() <= domain::chat::PREVIEW_CHARS + 1);
            let _ = m.content.kind();
            assert!(m.wa_message_id.len() <= domain::whatsapp::ID_MAX);
        }
        let queued = QueuedEvent {
            channel: channel.clone(),
            received_at: chrono::Utc::now(),
            position: position as u32,
            event,
        };
        let entry = queued.to_entry().expect("an accepted event encodes");
        assert!(entry.group_id.len() <= 128 && entry.dedup_id.len() <= 128);
        let back: QueuedEvent = serde_json::from_str(&entry.body).expect("and decodes");
        assert_eq!(back, queued);
    }
});
