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
    assert_eq!(wasl_api::audit::verify(stream).await.expect("an intact chain"), 3);

    // Someone with write access to NATS appends a record of their own.
    let js = async_nats::jetstream::new(async_nats::connect(h.nats.url()).await.expect("NATS"));
    let forged = json!({"record": {"at": 0, "user": "x", "org": "x", "roles": [], "action": "case.read",
        "resource": "case/x", "route": "x", "request_id": "x"}, "prev_hash": wasl_api::audit::GENESIS, "hash": "00"});
    js.publish("wasl.audit.forged", forged.to_string().into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    match wasl_api::audit::verify(stream).await {
        Err(wasl_api::audit::AuditError::Broken { sequence, .. }) => assert_eq!(sequence, 4),
        other => panic!("the chain should break at the forged record: {other:?}"),
    }
    h.stop().await;
}
