//! A log holding messages on case subjects that are not readable events: backed up and restored
//! as they are, reported, and the erasures around them re-applied — one that says it is an
//! erasure is taken for one.

use crate::support::*;
use async_nats::HeaderMap;
use wasl_backup::{BackupOptions, ErasureReport, RestoreOptions};
use wasl_vault::erase::UnreadableEvent;
use wasl_vault::{PiiField, Revealed};

async fn publish(parts: &Parts, subject: String, headers: HeaderMap, payload: &[u8]) -> u64 {
    parts
        .js
        .publish_with_headers(subject, headers, payload.to_vec().into())
        .await
        .expect("publish")
        .await
        .expect("stored")
        .sequence
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_case_messages_do_not_stop_a_restore_and_are_reported() {
    let a = server();
    let filled = fill(&a).await;
    let parts = Parts::open(&a).await;
    let (erased, _, _) = filled.opened[0].clone();
    let (garbled, garbled_event, garbled_personal) = filled.opened[1].clone();
    let (typed, typed_event, typed_personal) = filled.opened[2].clone();
    parts.erase(erased, 1).await;

    let garbage = publish(
        &parts,
        format!("wasl.evt.case.{garbled}"),
        HeaderMap::new(),
        b"\xff\xfe\x00garbage",
    )
    .await;
    let mut wrong_version = HeaderMap::new();
    wrong_version.insert("ce-type", "wasl.case.opened.v9");
    wrong_version.insert("wasl-schema", "9");
    let nameless = publish(
        &parts,
        "wasl.evt.case.not-a-case-id".to_owned(),
        wrong_version,
        br#"{"a":"JSON body"}"#,
    )
    .await;
    // Last in the log: not readable, but it says it is an erasure (as one of a newer Wasl would).
    let mut says_erasure = HeaderMap::new();
    says_erasure.insert("ce-type", "wasl.case.personal_data_erased.v2");
    let erasure_like = publish(
        &parts,
        format!("wasl.evt.case.{typed}"),
        says_erasure,
        b"\x08\x01not protobuf of this Wasl",
    )
    .await;

    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("backup");
    wasl_backup::backup(&parts.js, &out, &BackupOptions { with_keys: true })
        .await
        .expect("the backup");
    let b = server();
    let js_b = js(&b).await;
    let restored = wasl_backup::restore(&js_b, &out, &RestoreOptions::default())
        .await
        .expect("the restore goes past unreadable messages");
    let unreadable = vec![
        UnreadableEvent {
            sequence: garbage,
            case: Some(garbled),
            erasure: false,
        },
        UnreadableEvent {
            sequence: nameless,
            case: None,
            erasure: false,
        },
        UnreadableEvent {
            sequence: erasure_like,
            case: Some(typed),
            erasure: true,
        },
    ];
    assert_eq!(
        restored.erasures,
        Some(ErasureReport {
            reapplied: 2,
            keys_withheld: 1,
            unreadable,
        }),
        "the real erasure and the one that says so; the key A still held for it withheld"
    );
    let printed = restored.to_string();
    for sequence in [garbage, nameless, erasure_like] {
        assert!(
            printed.contains(&format!("sequence {sequence} ")),
            "{sequence} is printed"
        );
    }

    // The log came back message for message, the unreadable ones included.
    let log_a = read_stream(&parts.js, "WASL_EVENTS").await;
    let log_b = read_stream(&js_b, "WASL_EVENTS").await;
    assert_eq!(log_a.len(), log_b.len());
    for sequence in [garbage, nameless, erasure_like] {
        let at = |log: &[Stored]| {
            log.iter()
                .find(|m| m.seq == sequence)
                .cloned()
                .map(|m| (m.subject, m.payload))
        };
        assert_eq!(at(&log_a), at(&log_b));
    }

    let parts_b = Parts::open(&b).await;
    let name = |personal: &wasl_domain::pii::PersonalData| personal.name.clone().expect("a sealed name");
    assert!(
        matches!(
            parts_b
                .vault
                .open(garbled, garbled_event, PiiField::NAME, &name(&garbled_personal))
                .await,
            Ok(Revealed::Plain(_))
        ),
        "garbage in a case's history is no erasure"
    );
    assert_eq!(
        parts_b
            .vault
            .open(typed, typed_event, PiiField::NAME, &name(&typed_personal))
            .await
            .expect("reads"),
        Revealed::Erased,
        "what says it is an erasure is taken for one"
    );
}
