//! `wasl audit verify|export` against a real nats-server: the keyed chain holds, a forged record
//! and a restarted chain are named, and the records come out as JSON lines.

use crate::run;
use wasl_domain::Role;
use wasl_domain::testing::{actor, fresh};
use wasl_testkit::NatsServer;

const MASTER: &str = "0505050505050505050505050505050505050505050505050505050505050505";
const OTHER: &str = "0606060606060606060606060606060606060606060606060606060606060606";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_forged_record_and_a_restarted_chain_and_export_prints_the_reads() {
    let server = NatsServer::start().expect("a nats-server");
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("master.key");
    let other_file = dir.path().join("other.key");
    std::fs::write(&key_file, MASTER).expect("key");
    std::fs::write(&other_file, OTHER).expect("key");
    let master = wasl_vault::LocalMasterKey::from_hex("local-1", MASTER).expect("key");
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.expect("connect"));
    let audit = wasl_api::audit::Audit::open(js.clone(), 1, wasl_api::audit::AuditKey::from_master(&master))
        .await
        .expect("audit");
    let (case, org) = (fresh::<wasl_domain::ids::CaseId>(), fresh::<wasl_domain::ids::OrgId>());
    let reader = actor(fresh(), org, Role::Caseworker);
    for _ in 0..2 {
        audit
            .record(
                &reader,
                "case.read",
                format!("case/{case}"),
                "GET /v1/cases/{case_id}",
                "req",
            )
            .await
            .expect("recorded");
    }
    let url = server.url();
    let key = key_file.to_str().expect("utf-8");
    let verify = |extra: &[&str]| {
        let mut args = vec!["audit", "verify", "--nats-url", &url, "--master-key-file", key];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (ok, out, err) = verify(&[]);
    assert!(ok, "{err}");
    assert!(out.contains("2 record(s)"), "{out}");
    let head = out
        .lines()
        .find_map(|l| l.strip_prefix("head "))
        .expect("the head is printed")
        .to_owned();
    assert!(verify(&["--since", &head]).0, "the same chain holds its own head");

    // Another master key cannot vouch for this chain.
    let (ok, _, err) = run(&[
        "audit",
        "verify",
        "--nats-url",
        &url,
        "--master-key-file",
        other_file.to_str().expect("utf-8"),
        "--master-key-id",
        "local-2",
    ]);
    assert!(!ok);
    assert!(err.contains("sequence 1") && err.contains("local-1"), "{err}");

    // The export: JSON lines, filtered by the record read.
    let (ok, out, err) = run(&["audit", "export", "--nats-url", &url, "--record", &case.to_string()]);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["user"], reader.user.to_string());
    let (ok, out, _) = run(&[
        "audit",
        "export",
        "--nats-url",
        &url,
        "--record",
        &fresh::<wasl_domain::ids::CaseId>().to_string(),
    ]);
    assert!(ok && out.is_empty(), "{out}");

    // A record slipped in without the key is named.
    js.publish(
        "wasl.audit.x",
        serde_json::json!({"record": {"at": 0, "user": "x", "org": "x", "roles": [], "action": "case.read",
            "resource": "case/x", "route": "x", "request_id": "x"}, "prev_hash": head.split(':').nth(1), "hash": "00", "key_id": "local-1"})
        .to_string()
        .into(),
    )
    .await
    .expect("publish")
    .await
    .expect("stored");
    let (ok, _, err) = verify(&[]);
    assert!(!ok);
    assert!(err.contains("broken at sequence 3"), "{err}");

    // Deleted and started again: intact on its own, not the chain seen before.
    js.delete_stream(wasl_api::audit::STREAM).await.expect("deleted");
    let audit = wasl_api::audit::Audit::open(js.clone(), 1, wasl_api::audit::AuditKey::from_master(&master))
        .await
        .expect("audit");
    audit
        .record(
            &reader,
            "case.read",
            format!("case/{case}"),
            "GET /v1/cases/{case_id}",
            "req",
        )
        .await
        .expect("recorded");
    assert!(verify(&[]).0);
    let (ok, _, err) = verify(&["--since", &head]);
    assert!(!ok);
    assert!(err.contains("deleted or cut short"), "{err}");
}
