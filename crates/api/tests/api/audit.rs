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

/// The API on `nats` and `db`, as `wasl api` builds it (with `--accept-audit-reset` when
/// `accept_reset`).
async fn build(
    nats: &wasl_testkit::NatsServer,
    db: &TestDb,
    accept_reset: bool,
) -> Result<wasl_api::Application, wasl_api::StartError> {
    let client = async_nats::connect(nats.url()).await.expect("connect to NATS");
    let master = wasl_vault::LocalMasterKey::from_hex("test-master", crate::support::MASTER_KEY).expect("key");
    let settings = wasl_api::AppSettings {
        accept_audit_reset: accept_reset,
        ..wasl_api::AppSettings::new(db.url.clone(), master)
    };
    wasl_api::Application::build(client, settings, ([127, 0, 0, 1], 0).into()).await
}

/// `reads` audited reads of one case.
async fn read(audit: &wasl_api::audit::Audit, reads: usize) {
    let org = wasl_domain::testing::fresh();
    for _ in 0..reads {
        audit
            .record(
                &wasl_domain::testing::actor(wasl_domain::testing::fresh(), org, Role::Caseworker),
                "case.read",
                "case/test-case".to_owned(),
                "GET /v1/cases/{case_id}",
                "req",
            )
            .await
            .expect("recorded");
    }
}

/// Runs `app` and stops it as a signal would.
async fn stop(app: wasl_api::Application) {
    let shutdown = wasl_api::CancellationToken::new();
    let running = tokio::spawn(app.run(shutdown.clone()));
    shutdown.cancel();
    running.await.expect("the API task").expect("the API stops cleanly");
}

/// A new audit stream in place of the old one, holding `records` records of its own.
async fn replace_the_stream(nats: &wasl_testkit::NatsServer, records: usize) {
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.expect("NATS"));
    js.delete_stream(wasl_api::audit::STREAM).await.expect("deleted");
    if records > 0 {
        let key = wasl_api::audit::AuditKey::from_master(
            &wasl_vault::LocalMasterKey::from_hex("test-master", crate::support::MASTER_KEY).expect("key"),
        );
        let audit = wasl_api::audit::Audit::open(js, 1, key).await.expect("a new stream");
        read(&audit, records).await;
    }
}

fn refused_as_gone_back(started: Result<wasl_api::Application, wasl_api::StartError>) {
    match started {
        Err(err @ wasl_api::StartError::AuditWentBack { .. }) => {
            assert!(!err.is_transient(), "an operator must look; retrying cannot help");
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("the API started on an audit that went backwards"),
    }
}

async fn restarts_and_refusals_on(db: TestDb) {
    let nats = wasl_testkit::NatsServer::start().expect("a nats-server");

    // The first start anchors the checkpoint; a normal restart finds it and carries on.
    let app = build(&nats, &db, false).await.expect("the first start");
    read(app.state().audit(), 3).await;
    stop(app).await;
    let app = build(&nats, &db, false).await.expect("a normal restart");
    read(app.state().audit(), 2).await;
    let head = wasl_api::audit::verify(app.state().audit().stream(), app.state().audit().key(), None)
        .await
        .expect("one chain across the restart");
    assert_eq!(head.sequence, 5);
    stop(app).await;

    // The stream is deleted: it is created again empty, and refused on every start.
    replace_the_stream(&nats, 0).await;
    refused_as_gone_back(build(&nats, &db, false).await);
    refused_as_gone_back(build(&nats, &db, false).await);
    // Deleted and recreated with fewer records than were seen.
    replace_the_stream(&nats, 2).await;
    refused_as_gone_back(build(&nats, &db, false).await);
    // Deleted and recreated with more: another record stands where the checkpoint's was.
    replace_the_stream(&nats, 7).await;
    refused_as_gone_back(build(&nats, &db, false).await);

    // The operator's override starts, and anchors at the stream as it is now: the next start
    // needs no override.
    let app = build(&nats, &db, true).await.expect("the override starts");
    read(app.state().audit(), 1).await;
    stop(app).await;
    let app = build(&nats, &db, false).await.expect("a normal start after the reset");
    stop(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_refuses_to_start_on_an_audit_that_went_backwards_on_sqlite() {
    restarts_and_refusals_on(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_refuses_to_start_on_an_audit_that_went_backwards_on_postgres() {
    if let Some(db) = TestDb::new(wasl_testkit::db::Kind::Postgres).await {
        restarts_and_refusals_on(db).await;
    }
}

/// The checkpoint `app` keeps in its database.
async fn checkpoint_in(app: &wasl_api::Application) -> wasl_api::audit::ChainHead {
    wasl_api::audit::Checkpoint::open(app.state().models().pool().clone())
        .await
        .expect("the checkpoint table")
        .load()
        .await
        .expect("readable")
        .expect("written")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_slipped_into_the_audit_do_not_keep_the_api_down_but_a_deletion_still_does() {
    let nats = wasl_testkit::NatsServer::start().expect("a nats-server");
    let first = TestDb::sqlite();
    let app = build(&nats, &first, false).await.expect("the first start");
    read(app.state().audit(), 2).await;
    stop(app).await;
    // A record chained onto the head by someone without the chain key, and bytes that are no
    // record at all: `wasl audit verify` names them; they must not keep the API from starting.
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.expect("NATS"));
    let stream = js.get_stream(wasl_api::audit::STREAM).await.expect("the audit");
    let key = wasl_api::audit::AuditKey::from_master(
        &wasl_vault::LocalMasterKey::from_hex("test-master", crate::support::MASTER_KEY).expect("key"),
    );
    let head = wasl_api::audit::verify(&stream, &key, None).await.expect("intact");
    let record = json!({"at": 0, "user": "x", "org": "x", "roles": [], "action": "case.read",
        "resource": "case/x", "route": "x", "request_id": "x"});
    let forged_hash = "00".repeat(32);
    let forged = json!({"record": record, "prev_hash": head.hash, "hash": forged_hash, "key_id": "test-master"});
    for payload in [forged.to_string(), "not a record".to_owned()] {
        js.publish("wasl.audit.forged", payload.into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
    assert!(matches!(
        wasl_api::audit::verify(&stream, &key, None).await,
        Err(wasl_api::audit::AuditError::Broken { sequence: 3, .. })
    ));

    // The API that saw the chain before starts, and so does one on a new database, which walks
    // the whole chain; both anchor at the last record they could read.
    for db in [&first, &TestDb::sqlite()] {
        let app = build(&nats, db, false).await.expect("a start over the slipped records");
        let anchored = checkpoint_in(&app).await;
        assert_eq!((anchored.sequence, anchored.hash.as_str()), (3, forged_hash.as_str()));
        stop(app).await;
    }
    // Audited reads go on: the next record chains onto the last readable one, past the bytes
    // at the head, and verification names only what was slipped in.
    let app = build(&nats, &first, false).await.expect("a start");
    read(app.state().audit(), 2).await;
    stop(app).await;
    match wasl_api::audit::verify(&stream, &key, None).await {
        Err(wasl_api::audit::AuditError::Broken { sequence: 3, .. }) => {}
        other => panic!("verification should name the forged record: {other:?}"),
    }
    let mut stream = stream;
    assert_eq!(stream.info().await.expect("info").state.last_sequence, 6);
    // That anchor still holds the stream to where it was.
    replace_the_stream(&nats, 0).await;
    refused_as_gone_back(build(&nats, &first, false).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_a_database_only_move_the_checkpoint_forward() {
    let nats = wasl_testkit::NatsServer::start().expect("a nats-server");
    let db = TestDb::sqlite();
    let first = build(&nats, &db, false).await.expect("one instance");
    let second = build(&nats, &db, false).await.expect("another");
    read(first.state().audit(), 1).await;
    read(second.state().audit(), 2).await;
    let models = second.state().models().clone();
    stop(second).await;
    // The first instance stops last, knowing only the head it appended itself.
    stop(first).await;
    let checkpoint = wasl_api::audit::Checkpoint::open(models.pool().clone())
        .await
        .expect("the checkpoint table")
        .load()
        .await
        .expect("readable")
        .expect("written");
    assert_eq!(checkpoint.sequence, 3, "the furthest head stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_their_own_address_only() {
    // What a process with a recorder renders (the `wasl` binary installs Prometheus's).
    wasl_telemetry::set_metrics_renderer(|| "wasl_test_scraped 1\n".to_owned());
    let nats = wasl_testkit::NatsServer::start().expect("a nats-server");
    let db = TestDb::sqlite();
    let client = async_nats::connect(nats.url()).await.expect("connect to NATS");
    let master = wasl_vault::LocalMasterKey::from_hex("test-master", crate::support::MASTER_KEY).expect("key");
    let settings = wasl_api::AppSettings {
        metrics_listen: Some(([127, 0, 0, 1], 0).into()),
        ..wasl_api::AppSettings::new(db.url.clone(), master)
    };
    let app = wasl_api::Application::build(client, settings, ([127, 0, 0, 1], 0).into())
        .await
        .expect("the API");
    let public = format!("http://{}", app.address());
    let metrics = format!("http://{}", app.metrics_address().expect("a metrics address"));
    let shutdown = wasl_api::CancellationToken::new();
    let running = tokio::spawn(app.run(shutdown.clone()));
    let http = reqwest::Client::new();
    let healthz = http.get(format!("{public}/healthz")).send().await.expect("healthz");
    assert_eq!(healthz.status(), StatusCode::OK);
    let hidden = http
        .get(format!("{public}/metrics"))
        .send()
        .await
        .expect("public /metrics");
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    let scraped = http.get(format!("{metrics}/metrics")).send().await.expect("/metrics");
    assert_eq!(scraped.status(), StatusCode::OK);
    let text = scraped.text().await.expect("the text");
    assert!(text.contains("wasl_test_scraped 1"), "{text}");
    // The metrics listener serves nothing else.
    let other = http.get(format!("{metrics}/healthz")).send().await.expect("other path");
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    shutdown.cancel();
    running.await.expect("the API task").expect("stopped");
}
