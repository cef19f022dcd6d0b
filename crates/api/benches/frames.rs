//! Micro-benchmarks of the pure code on the fan-out path (issue 6): what every instance does
//! once per event: decode it from the bus and render the gateway frame.
//! Run with `cargo bench -p chat-api --bench frames`; figures are in BENCHMARKS.md.
//!
//! (`criterion_group!` defines an undocumented public function.)
#![expect(
    missing_docs,
    reason = "criterion_group! defines an undocumented public function"
)]
#![expect(
    clippy::expect_used,
    reason = "a benchmark whose input does not serialize must stop"
)]

use chat_domain::{ChatId, MessageId, MessageKind, UserId};
use chat_selectors::{AuthorView, ChatEvent, MessageView};
use criterion::{Criterion, black_box, criterion_group, criterion_main};

fn event() -> ChatEvent {
    ChatEvent::MessageCreated {
        chat_id: ChatId(42),
        message: MessageView {
            id: MessageId(1_234_567),
            chat_id: ChatId(42),
            seq: 98_765,
            author: Some(AuthorView {
                id: UserId(7),
                username: "alice".into(),
            }),
            kind: MessageKind::Text,
            text: "L12:345:1763700000000000 — a message of ordinary length, with \"quotes\"".into(),
            client_id: Some("c-0a1b2c3d".into()),
            created_at: chrono::Utc::now(),
            edited_at: None,
            deleted: false,
        },
        support_customer: None,
    }
}

/// The gateway frame as it was rendered before (through a `serde_json::Value` tree): kept here as
/// the baseline the direct rendering is compared with.
fn frame_via_value(event: &ChatEvent) -> Option<String> {
    let mut value = serde_json::to_value(event).ok()?;
    if let Some(seq) = value.get("message").and_then(|m| m.get("seq")).cloned() {
        value["seq"] = seq;
    }
    Some(value.to_string())
}

fn frames(c: &mut Criterion) {
    let event = event();
    let wire = serde_json::to_string(&event).expect("event serializes");
    c.bench_function("bus: decode a message.created event", |b| {
        b.iter(|| serde_json::from_str::<ChatEvent>(black_box(&wire)).expect("decodes"))
    });
    c.bench_function("bus: encode a message.created event", |b| {
        b.iter(|| serde_json::to_string(black_box(&event)).expect("encodes"))
    });
    c.bench_function("gateway frame: direct (now)", |b| {
        b.iter(|| chat_api::doors::native::gateway::event_frame(black_box(&event)))
    });
    c.bench_function("gateway frame: via serde_json::Value (before)", |b| {
        b.iter(|| frame_via_value(black_box(&event)))
    });
}

criterion_group!(benches, frames);
criterion_main!(benches);
