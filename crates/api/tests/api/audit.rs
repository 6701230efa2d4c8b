//! The access audit: written before personal data leaves, hash-chained, and a read that cannot
//! be audited is not answered.

use crate::support::{Harness, TestDb, profile};
use reqwest::StatusCode;
use serde_json::json;
use wasl_domain::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_of_personal_data_fails_with_503_when_the_audit_cannot_be_written() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let opened = caseworker
        .post(
            "/v1/cases",
            json!({"profile": profile("TEST-5001"), "personal": {"name": "Test Person Delta"}}),
        )
        .await;
    let case = opened.id();
    let read = caseworker.get_at(&format!("/v1/cases/{case}"), opened.position()).await;
    assert_eq!(read.status, StatusCode::OK);

    // The audit stream disappears (an operator's mistake, a lost volume).
    let js = async_nats::jetstream::new(async_nats::connect(h.nats.url()).await.expect("NATS"));
    js.delete_stream(wasl_api::audit::STREAM)
        .await
        .expect("delete the audit stream");
    let refused = caseworker.get(&format!("/v1/cases/{case}")).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.body);
    assert_eq!(refused.problem(), "urn:wasl:problem:unavailable");
    assert!(!refused.body.to_string().contains("Test Person Delta"));
    // A page of cases names clients (survivor code, age, place, vulnerabilities): it is not
    // sent either.
    let list = caseworker.get("/v1/cases").await;
    assert_eq!(list.status, StatusCode::SERVICE_UNAVAILABLE, "{}", list.body);
    assert!(!list.body.to_string().contains("TEST-5001"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_cases_and_a_search_by_survivor_code_are_audited() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let opened = caseworker
        .post("/v1/cases", json!({"profile": profile("TEST-5101")}))
        .await;
    let case = opened.id();
    let page = caseworker.get_at("/v1/cases", opened.position()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let missing = caseworker.get("/v1/cases?survivor_code=TEST-5199").await;
    assert_eq!(missing.status, StatusCode::OK, "{}", missing.body);
    let js = async_nats::jetstream::new(async_nats::connect(h.nats.url()).await.expect("NATS"));
    let stream = js.get_stream(wasl_api::audit::STREAM).await.expect("the audit");
    let records = wasl_api::audit::records(&stream).await.expect("records");
    let listed = records
        .iter()
        .find(|r| r.action == "case.list")
        .expect("the page was audited");
    assert!(listed.resource.contains(&case), "{}", listed.resource);
    let looked_up = records
        .iter()
        .find(|r| r.action == "case.lookup")
        .expect("the search was audited, though it found nothing");
    assert!(
        !records.iter().any(|r| r.resource.contains("TEST-5199")),
        "the searched code is the client's and is not written down"
    );
    assert_eq!(looked_up.route, "GET /v1/cases");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_slipped_into_the_audit_breaks_the_chain_where_it_was_put() {
    // Forged as the API chains (claiming the chain key's id), and as records were chained
    // before the chain was keyed.
    for claims_the_key in [true, false] {
        let h = Harness::start(TestDb::sqlite()).await;
        let (org, _) = h.organisation("Test Referring NGO", "health").await;
        let caseworker = h.user(org, Role::Caseworker).await;
        let opened = caseworker
            .post("/v1/cases", json!({"profile": profile("TEST-5002")}))
            .await;
        let case = opened.id();
        for _ in 0..3 {
            let read = caseworker.get_at(&format!("/v1/cases/{case}"), opened.position()).await;
            assert_eq!(read.status, StatusCode::OK);
        }
        let stream = h.state.audit().stream();
        let key = h.state.audit().key();
        let head = wasl_api::audit::verify(stream, key, None)
            .await
            .expect("an intact chain");
        // The organisation's registration and first service (audited directory changes),
        // then the three reads.
        assert_eq!(head.sequence, 2 + 3);

        // Someone with write access to NATS appends a record of their own, chained onto the
        // head — without the chain key, which is never in NATS.
        let js = async_nats::jetstream::new(async_nats::connect(h.nats.url()).await.expect("NATS"));
        let record = json!({"at": 0, "user": "x", "org": "x", "roles": [], "action": "case.read",
            "resource": "case/x", "route": "x", "request_id": "x"});
        let guessed = {
            use sha2::Digest as _;
            let mut hash = sha2::Sha256::new();
            hash.update(head.hash.as_bytes());
            hash.update(b"\n");
            hash.update(record.to_string().as_bytes());
            hex::encode(hash.finalize())
        };
        let mut forged = json!({"record": record, "prev_hash": head.hash, "hash": guessed});
        if claims_the_key {
            forged["key_id"] = json!(key.id());
        }
        js.publish("wasl.audit.forged", forged.to_string().into())
            .await
            .expect("publish")
            .await
            .expect("stored");
        match wasl_api::audit::verify(stream, key, None).await {
            Err(wasl_api::audit::AuditError::Broken { sequence, .. }) => assert_eq!(sequence, head.sequence + 1),
            other => panic!("the chain should break at the forged record: {other:?}"),
        }
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_and_restarted_audit_is_detected_against_the_head_verified_before() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let opened = caseworker
        .post("/v1/cases", json!({"profile": profile("TEST-5003")}))
        .await;
    let case = opened.id();
    let read = caseworker.get_at(&format!("/v1/cases/{case}"), opened.position()).await;
    assert_eq!(read.status, StatusCode::OK);
    let key = h.state.audit().key();
    let seen = wasl_api::audit::verify(h.state.audit().stream(), key, None)
        .await
        .expect("an intact chain");
    // The organisation's registration and first service (audited directory changes), then the
    // read.
    assert_eq!(seen.sequence, 3);
    // Printed and parsed as an operator keeps it.
    let seen: wasl_api::audit::ChainHead = seen.to_string().parse().expect("a head");

    // The stream is deleted (a stranger with NATS access, covering their reads) and starts
    // again from nothing with the next read.
    let js = async_nats::jetstream::new(async_nats::connect(h.nats.url()).await.expect("NATS"));
    js.delete_stream(wasl_api::audit::STREAM).await.expect("deleted");
    let audit = wasl_api::audit::Audit::open(
        js.clone(),
        1,
        wasl_api::audit::AuditKey::from_master(
            &wasl_vault::LocalMasterKey::from_hex("test-master", crate::support::MASTER_KEY).expect("key"),
        ),
    )
    .await
    .expect("a new audit stream");
    for _ in 0..seen.sequence + 1 {
        audit
            .record(
                &wasl_domain::testing::actor(wasl_domain::testing::fresh(), org, Role::Caseworker),
                "case.read",
                format!("case/{case}"),
                "GET /v1/cases/{case_id}",
                "req",
            )
            .await
            .expect("recorded");
    }
    // On its own the new chain is intact; against the head seen before it is not the same chain.
    wasl_api::audit::verify(audit.stream(), audit.key(), None)
        .await
        .expect("a chain of its own");
    assert!(matches!(
        wasl_api::audit::verify(audit.stream(), audit.key(), Some(&seen)).await,
        Err(wasl_api::audit::AuditError::Broken { sequence, .. }) if sequence == seen.sequence
    ));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reads_who_of_their_organisation_read_which_record() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let (other, _) = h.organisation("Test Other NGO", "legal").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let reader = caseworker.get("/v1/me").await.body["user_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let opened = caseworker
        .post("/v1/cases", json!({"profile": profile("TEST-5201")}))
        .await;
    let case = opened.id();
    let read = caseworker.get_at(&format!("/v1/cases/{case}"), opened.position()).await;
    assert_eq!(read.status, StatusCode::OK);

    let admin = h.user(org, Role::Admin).await;
    let page = admin.get(&format!("/v1/audit?record={case}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let items = page.body["items"].as_array().expect("items");
    assert!(
        items.iter().any(|r| r["action"] == "case.read"
            && r["user"] == reader.as_str()
            && r["resource"] == format!("case/{case}")),
        "{}",
        page.body
    );
    let by_user = admin.get(&format!("/v1/audit?user={reader}&limit=500")).await;
    assert!(
        by_user.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|r| r["user"] == reader.as_str()),
        "{}",
        by_user.body
    );
    // Another organisation's admin sees none of it; a caseworker may not look at all.
    let outsider = h.user(other, Role::Admin).await;
    let theirs = outsider.get(&format!("/v1/audit?record={case}")).await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert_eq!(theirs.body["items"], json!([]));
    assert_eq!(caseworker.get("/v1/audit").await.status, StatusCode::FORBIDDEN);
    // Reading the audit is itself recorded.
    let records = wasl_api::audit::records(h.state.audit().stream())
        .await
        .expect("records");
    assert!(records.iter().any(|r| r.action == "audit.read"));
    h.stop().await;
}
