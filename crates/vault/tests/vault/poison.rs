//! Retention over a log with messages on case subjects that are not readable events: each is
//! reported, its case left alone, and every other case is listed and erased as usual.

use crate::support::*;
use async_nats::HeaderMap;
use std::time::Duration;
use wasl_domain::Role;
use wasl_domain::case::{Case, CaseCommand, CloseCase};
use wasl_domain::catalogue::{CloseCode, Reason};
use wasl_domain::ids::CaseId;
use wasl_vault::erase::{UnreadableEvent, run_retention};
use wasl_vault::{KeyState, LocalMasterKey};

const TWO_YEARS: Duration = Duration::from_secs(730 * 24 * 3600);

async fn close(w: &World, case: CaseId, hours: i64) {
    let close = CaseCommand::Close(CloseCase {
        reason: Reason::coded(CloseCode::NeedsMet),
        open_referrals: vec![],
        cancel_open_referrals: false,
    });
    w.store
        .execute::<Case>(case, &close, &w.meta(Role::Caseworker, hours))
        .await
        .expect("closed");
}

/// Publishes straight into the log, as anyone allowed to publish on `wasl.evt.>` could.
async fn publish(w: &World, subject: String, headers: HeaderMap, payload: Vec<u8>) -> u64 {
    w.js.publish_with_headers(subject, headers, payload.into())
        .await
        .expect("publish")
        .await
        .expect("stored")
        .sequence
}

/// The headers of a stored event, less JetStream's own, with `change` applied.
fn copied(headers: &HeaderMap, change: impl Fn(&str, &str) -> Option<String>) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, values) in headers.iter() {
        let name: &str = name.as_ref();
        if name.starts_with("Nats-") {
            continue;
        }
        for value in values {
            let value = change(name, value.as_str()).unwrap_or_else(|| value.as_str().to_owned());
            out.append(name, value.as_str());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_case_events_are_reported_and_retention_goes_on() {
    let w = World::start().await;
    let old_a = w.open_case("MARKER-A", "MARKER-PA", "MARKER-NA").await;
    let poisoned = w.open_case("MARKER-POISONED", "MARKER-PP", "MARKER-NP").await;
    let old_b = w.open_case("MARKER-B", "MARKER-PB", "MARKER-NB").await;
    let recent = w.open_case("MARKER-RECENT", "MARKER-PR", "MARKER-NR").await;
    close(&w, old_a, 10).await;
    close(&w, poisoned, 10).await;
    let real = w
        .store
        .stream()
        .get_last_raw_message_by_subject(&format!("wasl.evt.case.{old_a}"))
        .await
        .expect("old_a's last event");

    let case_subject = |case: CaseId| format!("wasl.evt.case.{case}");
    // Garbage, no headers at all.
    let garbage = publish(
        &w,
        case_subject(poisoned),
        HeaderMap::new(),
        b"\xff\xfe\x00garbage".to_vec(),
    )
    .await;
    // A real event's headers naming an unknown schema version, on a subject naming no case.
    let unknown_version = publish(
        &w,
        "wasl.evt.case.not-a-case-id".to_owned(),
        copied(&real.headers, |name, _| {
            name.eq_ignore_ascii_case("wasl-schema").then(|| "99".to_owned())
        }),
        real.payload.to_vec(),
    )
    .await;
    close(&w, old_b, 11).await;
    // A valid event, of another case.
    let misplaced = publish(
        &w,
        case_subject(poisoned),
        copied(&real.headers, |_, _| None),
        real.payload.to_vec(),
    )
    .await;
    // Last in the log: garbage that says it is an erasure.
    let mut says_erasure = HeaderMap::new();
    says_erasure.insert("ce-type", "wasl.case.personal_data_erased.v2");
    let typed_erasure = publish(&w, case_subject(recent), says_erasure, b"\x08\x01garbage".to_vec()).await;

    let expected = vec![
        UnreadableEvent {
            sequence: garbage,
            case: Some(poisoned),
            erasure: false,
        },
        UnreadableEvent {
            sequence: unknown_version,
            case: None,
            erasure: false,
        },
        UnreadableEvent {
            sequence: misplaced,
            case: Some(poisoned),
            erasure: false,
        },
        UnreadableEvent {
            sequence: typed_erasure,
            case: Some(recent),
            erasure: true,
        },
    ];
    assert_eq!(
        expected[3].erased_case(),
        Some(recent),
        "what a restore takes for an erasure"
    );

    let now = T0.plus_hours(24 * 731);
    let dry = run_retention::<LocalMasterKey>(&w.store, None, TWO_YEARS, now)
        .await
        .expect("a dry run over the poison");
    assert_eq!(dry.due.iter().map(|d| d.case).collect::<Vec<_>>(), vec![old_a, old_b]);
    assert_eq!(dry.unreadable, expected);

    let system = w.ctx(Role::System, 24 * 731).actor;
    let applied = run_retention(&w.store, Some((&w.vault, &system)), TWO_YEARS, now)
        .await
        .expect("retention over the poison");
    assert_eq!(applied.erased, vec![old_a, old_b]);
    assert_eq!(applied.unreadable, expected);
    for erased in [old_a, old_b] {
        assert!(matches!(w.vault.key(erased).await.expect("state"), KeyState::Erased));
    }
    for left in [poisoned, recent] {
        assert!(
            matches!(w.vault.key(left).await.expect("state"), KeyState::Active(_)),
            "a case with an unreadable message is left alone"
        );
    }

    let again = run_retention(&w.store, Some((&w.vault, &system)), TWO_YEARS, now)
        .await
        .expect("again");
    assert!(again.due.is_empty() && again.erased.is_empty());
    assert_eq!(again.unreadable.len(), expected.len(), "reported every time");
}
