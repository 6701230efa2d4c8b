//! Backups that come back: message for message, with the event log's sequences, the read
//! models rebuilt to the same counts, personal data opening with the same master key — and
//! erased data staying erased, also when the key backup is older than the erasure.

use crate::support::*;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wasl_backup::format::{self, is_wasl_stream};
use wasl_backup::{BackupOptions, ErasureReport, RestoreOptions};
use wasl_testkit::files::{contains, files_below};
use wasl_vault::{LocalMasterKey, PiiField, Revealed, Vault, VaultConfig, VaultError};

/// The streams a running Wasl has after the demo, the router, a webhook endpoint and audited
/// reads (feeds aside: one per organisation that received a referral).
const EXPECTED: &[&str] = &[
    "KV_WASL_KEYS",
    "KV_WASL_ROUTER",
    "KV_WASL_WEBHOOKS",
    "KV_WASL_WEBHOOK_STATUS",
    "WASL_ACCOUNTS",
    "WASL_AUDIT",
    "WASL_EVENTS",
    "WASL_WEBHOOK_DEAD",
];

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_network_comes_back_message_for_message_and_erased_stays_erased() {
    let a = server();
    let filled = fill(&a).await;
    let parts = Parts::open(&a).await;
    let (erased, _, _) = filled.opened[0].clone();
    parts.erase(erased, 1).await;
    let (kept_case, kept_event, kept_personal) = filled.opened[1].clone();
    let sealed_name = kept_personal.name.clone().expect("a sealed name");
    let name_on_a = parts
        .vault
        .open(kept_case, kept_event, PiiField::NAME, &sealed_name)
        .await
        .expect("opens on A");
    assert!(matches!(name_on_a, Revealed::Plain(_)));

    // Backup, with the keys.
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("backup");
    let report = wasl_backup::backup(&parts.js, &out, &BackupOptions { with_keys: true })
        .await
        .expect("the backup");
    eprintln!("{report}");
    let on_a: Vec<String> = stream_names(&parts.js)
        .await
        .into_iter()
        .filter(|n| is_wasl_stream(n))
        .collect();
    for name in EXPECTED {
        assert!(on_a.iter().any(|n| n == name), "{name} is on A");
    }
    assert!(on_a.iter().any(|n| n.starts_with("WASL_OUT_")), "feeds on A");
    let mut backed_up: Vec<String> = report.streams.iter().map(|s| s.name.clone()).collect();
    // Derived state first, the log after it, the keys last.
    assert_eq!(backed_up.first().map(String::as_str), Some("KV_WASL_ROUTER"));
    assert_eq!(backed_up.last().map(String::as_str), Some("KV_WASL_KEYS"));
    assert_eq!(backed_up[backed_up.len() - 2], "WASL_EVENTS");
    backed_up.sort();
    assert_eq!(backed_up, on_a, "every Wasl stream is in the backup");
    assert!(report.with_keys);
    assert_eq!(
        report
            .streams
            .iter()
            .find(|s| s.name == "WASL_EVENTS")
            .map(|s| s.messages),
        Some(parts.last_sequence().await)
    );
    // The webhook signing secret is in the backup only sealed (the bucket keeps no old
    // revisions either): the files never hold it in plain text, not even its base64 part.
    let secret_part = filled.webhook_secret.trim_start_matches("whsec_").as_bytes().to_vec();
    for (path, bytes) in files_below(&out) {
        assert!(
            !contains(&bytes, &secret_part),
            "{}: a plain signing secret",
            path.display()
        );
    }
    // Private: sealed data and webhook secrets.
    assert_eq!(mode(&out), 0o700);
    for entry in std::fs::read_dir(&out).expect("the backup dir") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        leftovers,
        vec![std::ffi::OsString::from("backup")],
        "no temporary dir left"
    );

    // Restore into a fresh server.
    let b = server();
    let js_b = js(&b).await;
    let restored = wasl_backup::restore(&js_b, &out, &RestoreOptions::default())
        .await
        .expect("the restore");
    eprintln!("{restored}");
    assert_eq!(
        restored.erasures,
        Some(ErasureReport {
            reapplied: 1,
            keys_withheld: 0,
            unreadable: vec![]
        })
    );
    assert_eq!(restored.messages(), report.messages());
    assert_eq!(restored.streams.first().map(|s| s.name.as_str()), Some("WASL_EVENTS"));
    assert_eq!(restored.streams.last().map(|s| s.name.as_str()), Some("KV_WASL_ROUTER"));
    for name in ["WASL_EVENTS", "WASL_AUDIT"] {
        assert!(
            restored.streams.iter().any(|s| s.name == name && s.sequences_kept),
            "{name} keeps its sequences"
        );
    }

    // Message for message.
    let a_streams = contents(&parts.js, is_wasl_stream).await;
    let b_streams = contents(&js_b, is_wasl_stream).await;
    assert_eq!(
        a_streams.keys().collect::<Vec<_>>(),
        b_streams.keys().collect::<Vec<_>>()
    );
    for (name, a_messages) in &a_streams {
        let b_messages = &b_streams[name];
        assert_eq!(a_messages.len(), b_messages.len(), "{name}: message count");
        let strip = |m: &Stored| (m.subject.clone(), m.headers.clone(), m.payload.clone());
        if name == "KV_WASL_KEYS" {
            // The erased case's purge marker was written again at the end.
            let mut a_set: Vec<_> = a_messages.iter().map(strip).collect();
            let mut b_set: Vec<_> = b_messages.iter().map(strip).collect();
            a_set.sort();
            b_set.sort();
            assert!(a_set == b_set, "{name}: the same keys and markers");
            continue;
        }
        let a_plain: Vec<_> = a_messages.iter().map(strip).collect();
        let b_plain: Vec<_> = b_messages.iter().map(strip).collect();
        assert!(a_plain == b_plain, "{name}: the same messages in the same order");
        let kept = restored
            .streams
            .iter()
            .find(|s| &s.name == name)
            .is_some_and(|s| s.sequences_kept);
        if format::keeps_sequences(name) || kept {
            let a_seqs: Vec<u64> = a_messages.iter().map(|m| m.seq).collect();
            let b_seqs: Vec<u64> = b_messages.iter().map(|m| m.seq).collect();
            assert_eq!(a_seqs, b_seqs, "{name}: the same sequences");
        }
    }
    let feeds = b_streams.keys().filter(|n| n.starts_with("WASL_OUT_")).count();
    assert!(feeds > 1, "{feeds} feeds");
    // Feeds have no gaps: they keep their numbers, which dead letters refer to.
    for s in restored.streams.iter().filter(|s| s.name.starts_with("WASL_OUT_")) {
        assert!(s.sequences_kept, "{} keeps its sequences", s.name);
    }

    // The audit chain verifies on B, and the webhook endpoint is there.
    let audit = js_b.get_stream("WASL_AUDIT").await.expect("the audit");
    let key =
        wasl_api::audit::AuditKey::from_master(&LocalMasterKey::from_hex("test-master", MASTER_KEY).expect("key"));
    assert_eq!(
        wasl_api::audit::verify(&audit, &key, None)
            .await
            .expect("the chain holds")
            .sequence,
        3
    );
    let webhooks = wasl_webhooks::Webhooks::connect(
        js_b.clone(),
        crate::support::webhooks_config(),
        crate::support::webhooks_key(),
    )
    .await
    .expect("webhooks on B");
    assert!(
        webhooks
            .endpoint(filled.organisations[1])
            .await
            .expect("read")
            .is_some()
    );

    // The router on B resumes from the restored checkpoint and routes nothing twice: the one
    // event after its checkpoint is the erasure, which sends a redaction notice to each
    // organisation that received a referral of the case, and nothing else.
    let feeds_before = contents(&js_b, |name| name.starts_with("WASL_OUT_")).await;
    let parts_b = Parts::open(&b).await;
    let last_b = parts_b.last_sequence().await;
    let router = std::sync::Arc::new(
        wasl_router::Router::open(parts_b.client.clone(), wasl_router::RouterConfig::default())
            .await
            .expect("the router on B"),
    );
    // The erasure came after the router's last run on A: its checkpoint is one behind.
    assert_eq!(router.checkpoint().await.expect("checkpoint"), filled.routed_to);
    assert_eq!(filled.routed_to + 1, last_b);
    route_until(&router, last_b).await;
    let feeds_after = contents(&js_b, |name| name.starts_with("WASL_OUT_")).await;
    let mut new = Vec::new();
    for (feed, messages) in &feeds_after {
        let before = feeds_before.get(feed).map_or(0, Vec::len);
        new.extend(messages[before..].iter().map(|m| m.subject.clone()));
    }
    assert!(
        new.iter().all(|subject| subject.contains(".redaction.")),
        "only redaction notices are new: {new:?}"
    );
    assert_eq!(
        router.metrics().routed.load(Ordering::Relaxed),
        new.len() as u64,
        "nothing routed twice"
    );

    // The read models rebuilt from B are those rebuilt from A.
    let counts_a = rebuilt_counts(&a).await;
    let counts_b = rebuilt_counts(&b).await;
    assert_eq!(counts_a, counts_b);
    assert_eq!((counts_b.0, counts_b.1), (filled.demo.cases, filled.demo.referrals));

    // Personal data opens on B with the same master key; the erased case reads erased.
    let name_on_b = parts_b
        .vault
        .open(kept_case, kept_event, PiiField::NAME, &sealed_name)
        .await
        .expect("opens on B");
    assert!(name_on_b == name_on_a, "the same name");
    let (_, erased_event, erased_personal) = filled.opened[0].clone();
    let erased_name = erased_personal.name.expect("a sealed name");
    assert_eq!(
        parts_b
            .vault
            .open(erased, erased_event, PiiField::NAME, &erased_name)
            .await
            .expect("reads"),
        Revealed::Erased
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_sealed_fields_read_as_missing_keys_and_the_rest_survives() {
    let a = server();
    let filled = fill(&a).await;
    let parts = Parts::open(&a).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("backup");
    let report = wasl_backup::backup(&parts.js, &out, &BackupOptions::default())
        .await
        .expect("the backup");
    assert!(!report.with_keys);
    assert!(report.streams.iter().all(|s| s.name != "KV_WASL_KEYS"));
    assert!(report.skipped.iter().any(|(name, _)| name == "KV_WASL_KEYS"));
    assert!(!out.join("KV_WASL_KEYS.jsonl").exists());

    let b = server();
    let js_b = js(&b).await;
    let restored = wasl_backup::restore(&js_b, &out, &RestoreOptions::default())
        .await
        .expect("the restore");
    assert_eq!(restored.erasures, None);
    assert!(!stream_names(&js_b).await.iter().any(|n| n == "KV_WASL_KEYS"));

    // Cases and referrals survive.
    let counts = rebuilt_counts(&b).await;
    assert_eq!((counts.0, counts.1), (filled.demo.cases, filled.demo.referrals));

    // Sealed fields: a missing key, never "erased".
    let parts_b = Parts::open(&b).await;
    for (case, event, personal) in filled.opened.iter().take(5) {
        let sealed = personal.name.as_ref().expect("a sealed name");
        let read = parts_b.vault.open(*case, *event, PiiField::NAME, sealed).await;
        assert!(matches!(read, Err(VaultError::KeyMissing(_))), "{read:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_backup_older_than_an_erasure_does_not_bring_the_data_back() {
    let a = server();
    let filled = fill(&a).await;
    let parts = Parts::open(&a).await;
    let (case, event, personal) = filled.opened[2].clone();
    let sealed = personal.name.expect("a sealed name");
    let keys = parts.js.get_key_value("WASL_KEYS").await.expect("the key bucket");
    let subject = format!("case.{case}");
    let old_key = keys
        .entry(subject.as_str())
        .await
        .expect("read")
        .expect("the case has a key")
        .value;

    parts.erase(case, 2).await;
    // The key backup was taken before the erasure: simulated by putting the old key back.
    keys.put(subject.as_str(), old_key.clone()).await.expect("put");
    let fresh = Vault::connect(
        &parts.js,
        LocalMasterKey::from_hex("test-master", MASTER_KEY).expect("key"),
        &VaultConfig::default(),
    )
    .await
    .expect("vault");
    assert!(
        matches!(
            fresh.open(case, event, PiiField::NAME, &sealed).await,
            Ok(Revealed::Plain(_))
        ),
        "the stale key opens the data on A: the danger the restore must avert"
    );

    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("backup");
    wasl_backup::backup(&parts.js, &out, &BackupOptions { with_keys: true })
        .await
        .expect("the backup");
    let b = server();
    let js_b = js(&b).await;
    let restored = wasl_backup::restore(&js_b, &out, &RestoreOptions::default())
        .await
        .expect("the restore");
    assert_eq!(
        restored.erasures,
        Some(ErasureReport {
            reapplied: 1,
            keys_withheld: 1,
            unreadable: vec![]
        })
    );
    assert!(
        restored
            .to_string()
            .contains("1 erasure(s) recorded in the log re-applied")
    );

    let parts_b = Parts::open(&b).await;
    assert_eq!(
        parts_b
            .vault
            .open(case, event, PiiField::NAME, &sealed)
            .await
            .expect("reads"),
        Revealed::Erased
    );
    // The stale key was never written on B: not in any file of its store.
    let wrapped: wasl_vault::keys::WrappedKey = serde_json::from_slice(&old_key).expect("a wrapped key");
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        for (path, bytes) in files_below(b.store_dir()) {
            assert!(
                !contains(&bytes, wrapped.ciphertext.as_bytes()),
                "the erased case's key is in {}",
                path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Other cases still open.
    let (other, other_event, other_personal) = filled.opened[3].clone();
    let read = parts_b
        .vault
        .open(
            other,
            other_event,
            PiiField::NAME,
            other_personal.name.as_ref().expect("sealed"),
        )
        .await
        .expect("opens");
    assert!(matches!(read, Revealed::Plain(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_message_id_loses_no_message_and_the_ids_are_kept() {
    // JetStream would drop the second message with the same id inside its duplicate window; a
    // stream can hold both when they were published further apart than that.
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("backup");
    let dead = async_nats::jetstream::stream::Config {
        name: "WASL_WEBHOOK_DEAD".to_owned(),
        subjects: vec!["wasl.webhook.dead.>".to_owned()],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    let subject = "wasl.webhook.dead.org";
    write_backup(
        &out,
        vec![(
            dead,
            1,
            4,
            vec![
                record(1, subject, &[("Nats-Msg-Id", "a")]),
                record(2, subject, &[("Nats-Msg-Id", "a"), ("Wasl-Webhook-Attempts", "2")]),
                record(3, subject, &[("Nats-Msg-Id", "b")]),
                record(4, subject, &[("Nats-Expected-Last-Sequence", "3")]),
            ],
        )],
    );
    let b = server();
    let js_b = js(&b).await;
    let restored = wasl_backup::restore(&js_b, &out, &RestoreOptions::default())
        .await
        .expect("the restore");
    assert_eq!(restored.messages(), 4);
    assert!(restored.streams[0].sequences_kept);
    let stored = read_stream(&js_b, "WASL_WEBHOOK_DEAD").await;
    let headers: Vec<Vec<(String, String)>> = stored.iter().map(|m| m.raw_headers.clone()).collect();
    let pair = |n: &str, v: &str| (n.to_owned(), v.to_owned());
    assert_eq!(
        headers,
        vec![
            vec![pair("Nats-Msg-Id", "a")],
            vec![pair("Wasl-Webhook-Attempts", "2")],
            vec![pair("Nats-Msg-Id", "b")],
            vec![],
        ]
    );
    assert_eq!(stored.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
}
