//! Building, validating and serialising each outbound message type: the
//! work the sender does per message before it calls the provider.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use domain::outbound::{
    ContactCard, ListRow, ListSection, MediaKind, MediaSource, Outbound, ReplyButton,
    TemplateButton, TemplateParams,
};

fn messages() -> Vec<Outbound> {
    vec![
        Outbound::Text {
            body: "Your driver is on the way 🚕 — ETA 12 minutes.".into(),
            preview_url: false,
        },
        Outbound::ask_issue_resolved(),
        Outbound::Template {
            name: "booking_update".into(),
            language: "en".into(),
            params: TemplateParams {
                body: vec!["Ravi".into(), "BK123456".into(), "21 Nov, 3:30 PM".into()],
                buttons: vec![TemplateButton {
                    index: 0,
                    sub_type: "url".into(),
                    value: "BK123456".into(),
                }],
            },
        },
        Outbound::Buttons {
            header: None,
            body: "क्या आपकी समस्या हल हो गई?".into(),
            footer: Some("Inter-City Experts".into()),
            buttons: vec![
                ReplyButton {
                    id: "resolved_yes".into(),
                    title: "Yes".into(),
                },
                ReplyButton {
                    id: "resolved_no".into(),
                    title: "No".into(),
                },
            ],
        },
        Outbound::List {
            header: Some("Routes".into()),
            body: "Pick your route".into(),
            footer: None,
            button: "See routes".into(),
            sections: vec![ListSection {
                title: Some("Popular".into()),
                rows: (0..10)
                    .map(|i| ListRow {
                        id: format!("route_{i}"),
                        title: format!("Route {i}"),
                        description: Some("One way, AC sedan".into()),
                    })
                    .collect(),
            }],
        },
        Outbound::CtaUrl {
            header: None,
            body: "Delhi → Agra from ₹2,199. Use code ONEWAY300.".into(),
            footer: Some("Inter-City Experts".into()),
            display_text: "Book now".into(),
            url: "https://oneway.cab/app".into(),
        },
        Outbound::Contact(ContactCard::oneway_cab()),
        Outbound::Media {
            kind: MediaKind::Document,
            source: MediaSource::Link("https://oneway.cab/invoice.pdf".into()),
            caption: Some("Your invoice".into()),
            filename: Some("invoice.pdf".into()),
        },
    ]
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("outbound: validate + body + serialise");
    for (i, message) in messages().into_iter().enumerate() {
        // Two templates (static and with parameters): number every case.
        group.bench_function(format!("{i} {}", message.kind()), |b| {
            b.iter(|| {
                let m = black_box(&message);
                m.validate().expect("valid");
                serde_json::to_vec(&m.body(black_box("919812345678"))).expect("serialises")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
