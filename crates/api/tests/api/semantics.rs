//! What clients rely on: idempotent retries, optimistic concurrency, read-your-writes, and
//! problem documents for every kind of error.

use crate::support::{Harness, TestDb, profile};
use reqwest::{Method, StatusCode};
use serde_json::json;
use wasl_domain::Role;
use wasl_testkit::on_both;

on_both!(
    a_retried_post_with_the_same_key_gives_the_same_answer_and_one_case,
    idempotent_retry
);

async fn idempotent_retry(db: TestDb) {
    let h = Harness::start(db).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let key = [("idempotency-key", "test-open-0001".to_owned())];
    let first = caseworker
        .post_with("/v1/cases", json!({"profile": profile("TEST-0002")}), &key)
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = caseworker
        .post_with("/v1/cases", json!({"profile": profile("TEST-0002")}), &key)
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.body["position"], first.body["position"]);
    assert_eq!(again.body["replayed"], true);
    let other = caseworker
        .post_with(
            "/v1/cases",
            json!({"profile": profile("TEST-0002")}),
            &[("idempotency-key", "test-open-0002".to_owned())],
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED);
    let list = caseworker
        .get_at("/v1/cases?survivor_code=TEST-0002", other.position())
        .await;
    assert_eq!(
        list.body["items"].as_array().map(Vec::len),
        Some(2),
        "two keys, two cases: {}",
        list.body
    );
    h.stop().await;
}

/// The command id a route derives from an `Idempotency-Key` is what it was before the command
/// routes took one extractor: a new resource's id is its command id, derived from the key, the
/// user and the route's method and path, so a client retrying across an upgrade finds what it
/// made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_resource_takes_the_command_id_of_its_key_user_and_route() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let me = caseworker.get("/v1/me").await;
    let user = wasl_domain::ids::UserId::parse(me.body["user_id"].as_str().expect("user_id")).expect("a user id");
    let key = wasl_api::http::IdempotencyKey(Some("test-pin-0001".to_owned()));
    let header = [("idempotency-key", "test-pin-0001".to_owned())];
    let opened = caseworker
        .post_with("/v1/cases", json!({"profile": profile("TEST-0010")}), &header)
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    let case = opened.id();
    assert_eq!(case, key.command_id(user, b"POST /v1/cases").to_string());
    let consent = caseworker
        .post_with(&format!("/v1/cases/{case}/consents"), json!({}), &header)
        .await;
    assert_eq!(consent.status, StatusCode::CREATED, "{}", consent.body);
    assert_eq!(
        consent.id(),
        key.command_id(user, format!("POST /v1/cases/{case}/consents").as_bytes())
            .to_string()
    );
    h.stop().await;
}

/// What docs/api.md says of ids, keys, versions, page sizes and bodiless actions holds to the
/// letter: one spelling of an id, visible characters in a key, `If-Match: *`, a `limit` outside
/// 1–500 refused, and a body sent to an action that takes none refused without doing anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_keys_versions_limits_and_bodies_are_taken_as_documented() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let opened = caseworker
        .post("/v1/cases", json!({"profile": profile("TEST-0011")}))
        .await;
    let case = opened.id();
    assert_eq!(
        caseworker
            .get_at(&format!("/v1/cases/{case}"), opened.position())
            .await
            .status,
        StatusCode::OK
    );
    for other_spelling in [
        case.to_uppercase(),
        format!("{{{case}}}"),
        format!("urn:uuid:{case}"),
        case.replace('-', ""),
    ] {
        let answer = caseworker.get(&format!("/v1/cases/{other_spelling}")).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{other_spelling}: {}",
            answer.body
        );
    }

    for key in ["test key", "test\tkey"] {
        let answer = caseworker
            .post_with(
                &format!("/v1/cases/{case}/consents"),
                json!({}),
                &[("idempotency-key", key.to_owned())],
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.body);
        assert_eq!(answer.body["errors"][0]["field"], "Idempotency-Key");
    }

    let given = caseworker
        .post_with(
            &format!("/v1/cases/{case}/consents"),
            json!({}),
            &[("if-match", "*".to_owned())],
        )
        .await;
    assert_eq!(
        given.status,
        StatusCode::CREATED,
        "If-Match: * matches any version: {}",
        given.body
    );
    let consent = given.id();

    for limit in ["0", "501"] {
        let answer = caseworker.get(&format!("/v1/cases?limit={limit}")).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit={limit}: {}",
            answer.body
        );
        assert_eq!(answer.body["errors"][0]["field"], "limit");
    }
    assert_eq!(
        caseworker.get("/v1/cases?limit=-1").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(caseworker.get("/v1/cases?limit=500").await.status, StatusCode::OK);

    let withdraw = format!("/v1/cases/{case}/consents/{consent}/withdraw");
    let with_body = caseworker.post(&withdraw, json!({"reason": "test"})).await;
    assert_eq!(with_body.status, StatusCode::BAD_REQUEST, "{}", with_body.body);
    let read = caseworker.get_at(&format!("/v1/cases/{case}"), given.position()).await;
    assert_eq!(
        read.etag(),
        "2",
        "the refused withdrawal changed nothing: {}",
        read.body
    );
    let withdrawn = caseworker.post(&withdraw, json!({})).await;
    assert_eq!(withdrawn.status, StatusCode::OK, "{}", withdrawn.body);
    h.stop().await;
}

on_both!(if_match_guards_a_change_and_a_stale_version_gets_412, if_match);

async fn if_match(db: TestDb) {
    let h = Harness::start(db).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let opened = caseworker
        .post("/v1/cases", json!({"profile": profile("TEST-0003")}))
        .await;
    let case = opened.id();
    let read = caseworker.get_at(&format!("/v1/cases/{case}"), opened.position()).await;
    assert_eq!(read.etag(), "1");
    let stale = [("if-match", "\"0\"".to_owned())];
    let refused = caseworker
        .post_with(&format!("/v1/cases/{case}/consents"), json!({}), &stale)
        .await;
    assert_eq!(refused.status, StatusCode::PRECONDITION_FAILED, "{}", refused.body);
    assert_eq!(refused.problem(), "urn:wasl:problem:precondition-failed");
    assert_eq!(refused.body["current_version"], 1);
    let current = [("if-match", format!("\"{}\"", read.etag()))];
    let given = caseworker
        .post_with(&format!("/v1/cases/{case}/consents"), json!({}), &current)
        .await;
    assert_eq!(given.status, StatusCode::CREATED, "{}", given.body);
    assert_eq!(given.headers.get("etag").and_then(|v| v.to_str().ok()), Some("\"2\""));
    h.stop().await;
}

on_both!(
    of_two_racing_changes_on_the_same_version_one_wins_and_one_gets_409,
    lost_race
);

async fn lost_race(db: TestDb) {
    let h = Harness::start(db).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let opened = caseworker
        .post("/v1/cases", json!({"profile": profile("TEST-0004")}))
        .await;
    let case = opened.id();
    let version = [("if-match", "\"1\"".to_owned())];
    // Many writers all saw version 1; exactly one may change it.
    let attempts = (0..8).map(|_| {
        let c = caseworker.clone();
        let path = format!("/v1/cases/{case}/consents");
        let headers = version.clone();
        tokio::spawn(async move { c.post_with(&path, json!({}), &headers).await })
    });
    let mut statuses = Vec::new();
    let mut winner = 0;
    for attempt in attempts {
        let answer = attempt.await.expect("the request ran");
        if answer.status == StatusCode::CONFLICT || answer.status == StatusCode::PRECONDITION_FAILED {
            assert!(answer.body["current_version"].as_u64() >= Some(2), "{}", answer.body);
        }
        if answer.status == StatusCode::CREATED {
            winner = answer.position();
        }
        statuses.push(answer.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::CREATED).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [
            StatusCode::CREATED,
            StatusCode::CONFLICT,
            StatusCode::PRECONDITION_FAILED
        ]
        .contains(s)),
        "{statuses:?}"
    );
    let read = caseworker.get_at(&format!("/v1/cases/{case}"), winner).await;
    assert_eq!(read.body["consents"].as_array().map(Vec::len), Some(1), "{}", read.body);
    h.stop().await;
}

on_both!(a_query_with_the_commands_position_sees_the_write, read_your_writes);

async fn read_your_writes(db: TestDb) {
    let h = Harness::start(db).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    for n in 0..20 {
        let opened = caseworker
            .post("/v1/cases", json!({"profile": profile(&format!("TEST-1{n:03}"))}))
            .await;
        assert_eq!(opened.status, StatusCode::CREATED);
        let read = caseworker
            .get_at(&format!("/v1/cases/{}", opened.id()), opened.position())
            .await;
        assert_eq!(
            read.status,
            StatusCode::OK,
            "case {n} is readable at once: {}",
            read.body
        );
        assert_eq!(read.body["profile"]["survivor_code"], format!("TEST-1{n:03}"));
    }
    // A position the log has not reached was never given out: no wait can reach it, so it is
    // the client's error, not a 503 to retry.
    let beyond = caseworker.get_at("/v1/cases", 1_000_000).await;
    assert_eq!(beyond.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", beyond.body);
    assert_eq!(beyond.problem(), "urn:wasl:problem:validation");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_a_problem_document_with_a_request_id() {
    let h = Harness::start_with(
        TestDb::sqlite(),
        wasl_api::Limits {
            body_limit: 4096,
            max_wait: std::time::Duration::from_millis(200),
            ..wasl_api::Limits::default()
        },
    )
    .await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let check = |answer: &crate::support::Answer, status: StatusCode, kind: &str| {
        assert_eq!(answer.status, status, "{}", answer.body);
        assert_eq!(
            answer.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        assert_eq!(answer.problem(), format!("urn:wasl:problem:{kind}"));
        assert_eq!(answer.body["status"], status.as_u16());
        assert!(
            answer.body["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{}",
            answer.body
        );
    };
    let unknown_field = caseworker
        .post(
            "/v1/cases",
            json!({"profile": profile("TEST-0005"), "name": "Test Person Beta"}),
        )
        .await;
    check(&unknown_field, StatusCode::BAD_REQUEST, "bad-request");
    assert_eq!(unknown_field.body["errors"][0]["problem"], "unknown field");
    assert!(!unknown_field.body.to_string().contains("Test Person Beta"));
    let invalid = caseworker
        .post(
            "/v1/cases",
            json!({"profile": {"survivor_code": "TEST-0006", "sex": "female", "age_years": 30,
            "population_group": "idp", "nationality": "IQ", "governorate": "IQ-XX", "language": "ar"}}),
        )
        .await;
    check(&invalid, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(invalid.body["errors"][0]["field"], "/profile/governorate");
    let big = caseworker
        .post(
            "/v1/cases",
            json!({"profile": profile("TEST-0007"), "personal": {"notes": "x".repeat(8000)}}),
        )
        .await;
    check(&big, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
    check(
        &caseworker.get("/v1/no-such-route").await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    check(
        &caseworker.send(Method::DELETE, "/v1/cases", None, &[]).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
    );
    check(
        &h.anonymous().get("/v1/cases").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    check(
        &caseworker.get("/v1/cases/not-a-uuid").await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    // A domain refusal carries the domain's reason code.
    let opened = caseworker
        .post("/v1/cases", json!({"profile": profile("TEST-0008")}))
        .await;
    let case = opened.id();
    let reopen = caseworker.post(&format!("/v1/cases/{case}/reopen"), json!({})).await;
    check(&reopen, StatusCode::UNPROCESSABLE_ENTITY, "refused");
    assert_eq!(reopen.body["code"], "case_open");
    // A change through a session without the CSRF token is refused.
    let no_csrf = caseworker
        .without_csrf()
        .post("/v1/cases", json!({"profile": profile("TEST-0009")}))
        .await;
    check(&no_csrf, StatusCode::FORBIDDEN, "forbidden");
    h.stop().await;
}

// --- Readiness follows the read models' lag -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_error_names_the_field_by_its_json_pointer() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let opened = caseworker
        .post("/v1/cases", json!({"profile": profile("TEST-0021")}))
        .await;
    let case = opened.id();
    let mut no_sex = profile("TEST-0022");
    no_sex.as_object_mut().expect("an object").remove("sex");
    let mut numbered = profile("TEST-0023");
    numbered["vulnerabilities"] = json!(["gbv_survivor", 7]);
    let mut bad_district = profile("TEST-0024");
    bad_district["district"] = json!("IQ-XX-99");
    let close = format!("/v1/cases/{case}/close");
    let consent = format!("/v1/cases/{case}/consents");
    let cases = [
        // Missing fields (400): the pointer of the field that is missing, at any depth.
        (
            "/v1/cases",
            json!({"profile": no_sex}),
            StatusCode::BAD_REQUEST,
            "/profile/sex",
        ),
        ("/v1/cases", json!({}), StatusCode::BAD_REQUEST, "/profile"),
        (close.as_str(), json!({}), StatusCode::BAD_REQUEST, "/reason"),
        (
            close.as_str(),
            json!({"reason": {}}),
            StatusCode::BAD_REQUEST,
            "/reason/code",
        ),
        // A wrong type inside an array: its index.
        (
            "/v1/cases",
            json!({"profile": numbered}),
            StatusCode::BAD_REQUEST,
            "/profile/vulnerabilities/1",
        ),
        // An unknown field: the object holding it, never its name (the client's text).
        (
            close.as_str(),
            json!({"reason": {"code": "needs_met", "Test Name": 1}}),
            StatusCode::BAD_REQUEST,
            "/reason",
        ),
        // Invalid values (422): the pointer of the value.
        (
            "/v1/cases",
            json!({"profile": bad_district}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/profile/district",
        ),
        (
            close.as_str(),
            json!({"reason": {"code": "no_such_code"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/reason/code",
        ),
        (
            consent.as_str(),
            json!({"categories": ["health", "no_such_category"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/categories/1",
        ),
    ];
    for (path, body, status, pointer) in cases {
        let answer = caseworker.post(path, body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert_eq!(answer.body["errors"][0]["field"], pointer, "{body}: {}", answer.body);
        assert!(!answer.body.to_string().contains("Test Name"), "{}", answer.body);
    }
    // A body that is the profile itself names its fields from the root.
    let mut bad_governorate = profile("TEST-0021");
    bad_governorate["governorate"] = json!("IQ-XX");
    let answer = caseworker
        .send(
            Method::PUT,
            &format!("/v1/cases/{case}/profile"),
            Some(bad_governorate),
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.body);
    assert_eq!(answer.body["errors"][0]["field"], "/governorate", "{}", answer.body);
    // A reason whose code needs a text and has none: the domain's refusal, 422 with its code.
    let answer = caseworker.post(&close, json!({"reason": {"code": "other"}})).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.body);
    assert_eq!(answer.body["code"], "reason_required", "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_not_cached_sniffed_or_framed_and_request_ids_are_the_servers() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let opened = caseworker
        .post("/v1/cases", json!({"profile": profile("TEST-0031")}))
        .await;
    let case = caseworker
        .get_at(&format!("/v1/cases/{}", opened.id()), opened.position())
        .await;
    let missing = caseworker.get("/v1/no-such-route").await;
    for answer in [&case, &missing] {
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            header("cache-control").as_deref(),
            Some("no-store"),
            "{:?}",
            answer.headers
        );
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
        assert_eq!(header("referrer-policy").as_deref(), Some("no-referrer"));
        let csp = header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
    }
    // A client's request id is never taken over: the answer carries one the server made.
    let sent = "Test-Name-In-A-Request-Id ".repeat(40);
    let answer = caseworker
        .send(
            Method::GET,
            "/v1/no-such-route",
            None,
            &[("x-request-id", sent.clone())],
        )
        .await;
    let id = answer.body["request_id"].as_str().expect("a request id").to_owned();
    assert!(!id.contains("Test-Name"), "{id}");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert_eq!(
        answer.headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some(id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_are_told_to_keep_to_https_only_when_wasl_is_served_over_it() {
    for https in [true, false] {
        let limits = wasl_api::Limits {
            secure_cookies: https,
            ..wasl_api::Limits::default()
        };
        let h = Harness::start_with(TestDb::sqlite(), limits).await;
        for path in ["/healthz", "/v1/no-such-route"] {
            let answer = h.anonymous().get(path).await;
            let hsts = answer
                .headers
                .get("strict-transport-security")
                .and_then(|v| v.to_str().ok());
            if https {
                assert_eq!(hsts, Some("max-age=31536000; includeSubDomains"), "{path}");
            } else {
                assert_eq!(hsts, None, "{path}: plain HTTP (a local wasl up) sends no HSTS");
            }
        }
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_each_read_models_lag_behind_the_log() {
    let h = Harness::start(TestDb::sqlite()).await;
    h.organisation("Test Health Partner", "health").await;
    let anonymous = h.anonymous();
    // Once the projector has caught up, every read model is ready with no lag.
    let began = std::time::Instant::now();
    let body = loop {
        let r = anonymous.get("/readyz").await;
        if r.status == StatusCode::OK
            && r.body["projections"]
                .as_array()
                .is_some_and(|p| p.iter().all(|p| p["lag"] == 0))
        {
            break r.body;
        }
        assert!(
            began.elapsed() < std::time::Duration::from_secs(20),
            "never ready: {}",
            r.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let log = body["log_position"].as_u64().expect("log position");
    assert!(log >= 2, "the organisation's events are in the log: {body}");
    for p in body["projections"].as_array().expect("projections") {
        assert_eq!(p["position"].as_u64(), Some(log), "{p}");
    }
    h.stop().await;
}
