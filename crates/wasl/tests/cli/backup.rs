//! `wasl backup` and `wasl restore` as an operator runs them: the demo network on server A,
//! backed up, restored into a fresh server B, the read models rebuilt from B.

use crate::run;
use wasl_projections::query::{CaseFilter, PageRequest, ReferralFilter};
use wasl_projections::{ReadModels, ReadModelsConfig};
use wasl_testkit::NatsServer;

/// The number before `label` in `text` (`"… 123 cases …"`).
fn count_before(text: &str, label: &str) -> usize {
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.trim_end_matches(',') == label)
        .unwrap_or_else(|| panic!("{label} in:\n{text}"));
    words[at - 1].parse().expect("a count")
}

/// Cases and referrals in a read-model database, as an operator would count them.
async fn counts(database_url: &str) -> (usize, usize) {
    let models = ReadModels::open(&ReadModelsConfig::new(database_url))
        .await
        .expect("read models");
    let mut cases = 0;
    let mut page = PageRequest::first(500);
    loop {
        let got = models.cases(&CaseFilter::default(), &page).await.expect("cases");
        cases += got.items.len();
        let Some(next) = got.next else { break };
        page = PageRequest::continuing(500, next);
    }
    let mut referrals = 0;
    let mut page = PageRequest::first(500);
    loop {
        let got = models
            .referrals(&ReferralFilter::default(), &page)
            .await
            .expect("referrals");
        referrals += got.items.len();
        let Some(next) = got.next else { break };
        page = PageRequest::continuing(500, next);
    }
    (cases, referrals)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_and_rebuild_bring_the_demo_network_back() {
    let a = NatsServer::start().expect("nats-server A");
    let b = NatsServer::start().expect("nats-server B");
    let (url_a, url_b) = (a.url(), b.url());
    let dir = tempfile::tempdir().expect("dir");
    let key = dir.path().join("master.hex");
    std::fs::write(
        &key,
        "0505050505050505050505050505050505050505050505050505050505050505\n",
    )
    .expect("key file");
    let key = key.to_string_lossy().into_owned();

    let (ok, demo, err) = run(&["demo-data", "--nats-url", &url_a, "--master-key-file", &key]);
    assert!(ok, "{err}");
    let (cases, referrals) = (count_before(&demo, "cases"), count_before(&demo, "referrals"));
    assert!(cases > 0 && referrals > 0, "{demo}");

    // Back up A, keys included.
    let backup = dir.path().join("backup-1");
    let backup = backup.to_string_lossy().into_owned();
    let (ok, out, err) = run(&["backup", &backup, "--nats-url", &url_a, "--with-keys"]);
    assert!(ok, "{err}");
    eprintln!("{out}");
    assert!(out.starts_with("backed up "), "{out}");
    let messages = count_before(&out, "messages");
    assert!(out.contains("WASL_EVENTS") && out.contains("KV_WASL_KEYS"), "{out}");
    assert!(out.contains("WARNING: this backup holds the data keys"), "{out}");
    assert!(std::path::Path::new(&backup).join("manifest.json").exists());

    // A second backup into the same directory is refused.
    let (ok, _, err) = run(&["backup", &backup, "--nats-url", &url_a]);
    assert!(!ok);
    assert!(err.contains("exists and is not empty"), "{err}");

    // Restore into B.
    let (ok, out, err) = run(&["restore", &backup, "--nats-url", &url_b]);
    assert!(ok, "{err}");
    eprintln!("{out}");
    assert!(out.starts_with("restored "), "{out}");
    assert_eq!(count_before(&out, "messages"), messages, "{out}");
    assert!(out.contains("0 erasure(s) recorded in the log re-applied"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("WASL_EVENTS") && l.ends_with("sequences kept")),
        "{out}"
    );

    // Again into B: refused, B unchanged.
    let (ok, _, err) = run(&["restore", &backup, "--nats-url", &url_b]);
    assert!(!ok);
    assert!(
        err.contains("the target already has") && err.contains("WASL_EVENTS"),
        "{err}"
    );

    // The read models, rebuilt from A and from B: the same log, the same tables.
    let mut rebuilt = Vec::new();
    for (url, db) in [(&url_a, "a.db"), (&url_b, "b.db")] {
        let db = format!("sqlite:{}", dir.path().join(db).display());
        let (ok, out, err) = run(&["projections", "rebuild", "--nats-url", url, "--database-url", &db]);
        assert!(ok, "{err}");
        assert!(out.contains(", 0 parked"), "{out}");
        let line = out.split(':').next().expect("the first part").to_owned();
        rebuilt.push((line, counts(&db).await));
    }
    assert_eq!(rebuilt[0], rebuilt[1]);
    assert_eq!(rebuilt[1].1, (cases, referrals));
    assert!(
        rebuilt[1]
            .0
            .starts_with("rebuilt cases, referrals, directory, dashboard up to sequence")
    );
}
