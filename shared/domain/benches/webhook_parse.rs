//! Parsing a webhook body and turning it into queue entries: the work the
//! webhook function does per request before it calls SQS.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use domain::channel::ChannelTable;
use domain::inbound::QueueEntry;
use domain::inbound::QueuedEvent;
use domain::whatsapp::parse_webhook;

/// What the webhook does between receiving a body and calling SQS.
fn parse_route_encode(channels: &ChannelTable, channel: &str, body: &[u8]) -> Vec<QueueEntry> {
    let channel = channels.get(channel).expect("known channel");
    let now = chrono::Utc::now();
    parse_webhook(body)
        .expect("valid body")
        .events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            QueuedEvent {
                channel: channel.id.clone(),
                received_at: now,
                position: i as u32,
                event,
            }
            .to_entry()
            .expect("encodes")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let channels = ChannelTable::embedded().expect("channel table");
    let cases: [(&str, &[u8]); 2] = [
        (
            "a one-message text body",
            include_bytes!("../../../tests/data/webhook_text.json"),
        ),
        (
            "a 19-message body of every shape",
            include_bytes!("../../../tests/data/webhook_all_shapes.json"),
        ),
    ];
    for (name, body) in cases {
        c.bench_function(&format!("parse + route + encode {name}"), |b| {
            b.iter(|| {
                black_box(parse_route_encode(
                    &channels,
                    black_box("9099039188"),
                    black_box(body),
                ))
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
