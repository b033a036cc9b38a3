//! Parsing a webhook body and turning it into queue entries: the work the
//! webhook function does per request before it calls SQS.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use shared::channel::ChannelTable;
use shared::inbound::QueuedEvent;
use shared::whatsapp::parse_webhook;

fn bench(c: &mut Criterion) {
    let body = include_bytes!("../../tests/data/webhook_text.json");
    let channels = ChannelTable::embedded().expect("channel table");
    let now = chrono::Utc::now();
    c.bench_function("parse + route + encode a text webhook", |b| {
        b.iter(|| {
            let channel = channels
                .get(black_box("9099039188"))
                .expect("known channel");
            let events = parse_webhook(black_box(body)).expect("valid body");
            let entries: Vec<_> = events
                .into_iter()
                .map(|event| {
                    QueuedEvent {
                        channel: channel.id.clone(),
                        received_at: now,
                        position: 0,
                        event,
                    }
                    .to_entry()
                })
                .collect();
            black_box(entries)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
