//! Any WebSocket frame: parsed into an event or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = domain::protocol::request_id_of(text);
    let _ = domain::protocol::parse_frame(text);
});
