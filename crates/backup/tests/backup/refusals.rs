//! Refusals that lose nothing: a damaged backup, a target that already has Wasl's streams, an
//! existing backup directory, and a restore that fails half-way.

use crate::support::*;
use async_nats::jetstream::stream;
use std::path::Path;
use wasl_backup::{BackupError, BackupOptions, RestoreOptions};

/// A backup of the filled server A in `dir/name`.
async fn backed_up(a: &wasl_testkit::NatsServer, dir: &Path, name: &str) -> std::path::PathBuf {
    let out = dir.join(name);
    wasl_backup::backup(&js(a).await, &out, &BackupOptions { with_keys: true })
        .await
        .expect("the backup");
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_backup_is_refused_by_file_before_anything_is_written() {
    let a = server();
    fill(&a).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let good = backed_up(&a, dir.path(), "good").await;
    let b = server();
    let js_b = js(&b).await;

    // One character of one payload changed: still valid JSON, but not what was backed up.
    let altered = dir.path().join("altered");
    copy_dir(&good, &altered);
    let file = altered.join("WASL_EVENTS.jsonl");
    let mut bytes = std::fs::read(&file).expect("read");
    let at = bytes.len() / 2
        + bytes[bytes.len() / 2..]
            .windows(8)
            .position(|w| w == b"\"data\":\"")
            .expect("a payload")
        + 8;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&file, bytes).expect("write");

    // The end of a feed cut off, as a copy interrupted half-way leaves it.
    let truncated = dir.path().join("truncated");
    copy_dir(&good, &truncated);
    let feed = std::fs::read_dir(&truncated)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("WASL_OUT_"))
        })
        .expect("a feed file");
    let bytes = std::fs::read(&feed).expect("read");
    std::fs::write(&feed, &bytes[..bytes.len() - 40]).expect("write");

    // A file gone.
    let missing = dir.path().join("missing");
    copy_dir(&good, &missing);
    std::fs::remove_file(missing.join("WASL_AUDIT.jsonl")).expect("rm");

    for (backup, damaged) in [
        (&altered, file),
        (&truncated, feed),
        (&missing, missing.join("WASL_AUDIT.jsonl")),
    ] {
        let err = wasl_backup::restore(&js_b, backup, &RestoreOptions::default())
            .await
            .expect_err("refused");
        match &err {
            BackupError::Corrupt { file, .. } => assert_eq!(file, &damaged, "{err}"),
            other => panic!("not a corrupt file: {other}"),
        }
        assert!(stream_names(&js_b).await.is_empty(), "B holds no stream after: {err}");
    }

    // The good copy restores.
    wasl_backup::restore(&js_b, &good, &RestoreOptions::default())
        .await
        .expect("the good backup restores");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_has_the_event_log_is_refused_and_left_untouched() {
    let a = server();
    fill(&a).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = backed_up(&a, dir.path(), "backup").await;

    // B already has an event log and a key bucket, beside a stream of someone else.
    let b = server();
    let parts_b = Parts::open(&b).await;
    let case_stream = parts_b.js.clone();
    case_stream
        .create_stream(stream::Config {
            name: "OTHER".to_owned(),
            subjects: vec!["other.>".to_owned()],
            ..Default::default()
        })
        .await
        .expect("another stream");
    case_stream
        .publish("other.x", "kept".into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    let before = contents(&parts_b.js, |_| true).await;

    let err = wasl_backup::restore(&parts_b.js, &out, &RestoreOptions::default())
        .await
        .expect_err("refused");
    match &err {
        BackupError::StreamsExist(names) => {
            assert!(names.iter().any(|n| n == "WASL_EVENTS"), "{err}");
            assert!(names.iter().any(|n| n == "KV_WASL_KEYS"), "{err}");
        }
        other => panic!("not a refusal for existing streams: {other}"),
    }
    let after = contents(&parts_b.js, |_| true).await;
    assert!(before == after, "the target is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_never_writes_into_an_existing_directory() {
    let a = server();
    let parts = Parts::open(&a).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("backup");
    std::fs::create_dir(&out).expect("mkdir");
    std::fs::write(out.join("notes.txt"), "kept").expect("write");

    let err = wasl_backup::backup(&parts.js, &out, &BackupOptions::default())
        .await
        .expect_err("refused");
    assert!(matches!(&err, BackupError::NotEmpty(path) if path == &out), "{err}");
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).expect("read"), "kept");
    assert_eq!(std::fs::read_dir(&out).expect("dir").count(), 1);
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        1,
        "nothing beside it"
    );

    // An empty existing directory is fine (a mount point made for it).
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let report = wasl_backup::backup(&parts.js, &empty, &BackupOptions::default())
        .await
        .expect("the backup");
    assert_eq!(
        report.streams.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["WASL_EVENTS"]
    );
    assert!(empty.join("manifest.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_fails_half_way_deletes_what_it_created() {
    let a = server();
    fill(&a).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = backed_up(&a, dir.path(), "backup").await;

    // B has a stream that takes the router checkpoint's subjects: the last stream restored
    // cannot be created.
    let b = server();
    let js_b = js(&b).await;
    js_b.create_stream(stream::Config {
        name: "SQUATTER".to_owned(),
        subjects: vec!["$KV.WASL_ROUTER.>".to_owned()],
        ..Default::default()
    })
    .await
    .expect("a conflicting stream");

    let err = wasl_backup::restore(&js_b, &out, &RestoreOptions::default())
        .await
        .expect_err("fails");
    match &err {
        BackupError::Incomplete { cause, left_behind } => {
            assert!(
                matches!(cause.as_ref(), BackupError::Stream { stream, .. } if stream == "KV_WASL_ROUTER"),
                "{err}"
            );
            assert!(left_behind.is_empty(), "{err}");
        }
        other => panic!("not an incomplete restore: {other}"),
    }
    assert_eq!(stream_names(&js_b).await, ["SQUATTER"], "only what was there before");

    // Once the obstacle is gone, the same backup restores.
    js_b.delete_stream("SQUATTER").await.expect("delete");
    wasl_backup::restore(&js_b, &out, &RestoreOptions::default())
        .await
        .expect("the restore");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_log_with_a_gap_is_refused_since_its_positions_are_referred_to() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("backup");
    let log = stream::Config {
        name: "WASL_EVENTS".to_owned(),
        subjects: vec!["wasl.evt.>".to_owned()],
        ..Default::default()
    };
    write_backup(
        &out,
        vec![(
            log,
            1,
            3,
            vec![record(1, "wasl.evt.case.a", &[]), record(3, "wasl.evt.case.a", &[])],
        )],
    );
    let b = server();
    let js_b = js(&b).await;
    let err = wasl_backup::restore(&js_b, &out, &RestoreOptions::default())
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, BackupError::Corrupt { file, .. } if file == &out.join("WASL_EVENTS.jsonl")),
        "{err}"
    );
    assert!(stream_names(&js_b).await.is_empty());
}
