//! Local accounts, sessions and partner tokens, as their users meet them.

use crate::support::{Client, Harness, TestDb, profile};
use reqwest::{Method, StatusCode};
use serde_json::json;
use wasl_domain::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_a_user_who_signs_in_and_out() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let admin = h.token(org, Role::Admin).await;
    let created = admin
        .post(
            "/v1/users",
            json!({"username": "Test-Caseworker-1", "password": "test password 0004", "roles": ["caseworker"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["username"], "test-caseworker-1");
    assert!(!created.body.to_string().contains("argon2"), "the hash is never shown");
    let taken = admin
        .post(
            "/v1/users",
            json!({"username": "test-caseworker-1", "password": "test password 0005", "roles": ["caseworker"]}),
        )
        .await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(taken.body["errors"][0]["field"], "/username");

    let user = Client::login(&h.base, "test-caseworker-1", "test password 0004").await;
    let me = user.get("/v1/me").await;
    assert_eq!(me.body["roles"], json!(["caseworker"]));
    assert_eq!(me.body["org"], org.to_string());
    assert_eq!(me.body["authenticated_by"], "session");
    let opened = user.post("/v1/cases", json!({"profile": profile("TEST-2001")})).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    let out = user.send(Method::POST, "/v1/logout", None, &[]).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    assert_eq!(user.get("/v1/me").await.status, StatusCode::UNAUTHORIZED);

    // A disabled user's session stops working at once.
    let again = Client::login(&h.base, "test-caseworker-1", "test password 0004").await;
    let id = created.body["id"].as_str().expect("an id");
    assert_eq!(
        admin.post(&format!("/v1/users/{id}/disable"), json!(null)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(again.get("/v1/me").await.status, StatusCode::UNAUTHORIZED);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_sign_ins_make_the_name_wait() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    h.state
        .accounts()
        .create_user(None, org, "test-locked", &[Role::Caseworker], "test password 0006")
        .await
        .expect("a user");
    let anon = h.anonymous();
    for _ in 0..5 {
        let r = anon
            .post(
                "/v1/login",
                json!({"username": "test-locked", "password": "wrong password 01"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right password now waits: the name is locked for a while.
    let r = anon
        .post(
            "/v1/login",
            json!({"username": "test-locked", "password": "test password 0006"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.headers.get("retry-after").is_some());
    // An unknown name fails exactly like a wrong password.
    let r = anon
        .post(
            "/v1/login",
            json!({"username": "test-nobody", "password": "test password 0006"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_shown_once_works_until_revoked_and_is_stored_hashed() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Health Partner", "health").await;
    let admin = h.token(org, Role::Admin).await;
    let issued = admin
        .post(
            "/v1/tokens",
            json!({"label": "test partner system", "role": "partner_system", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    let secret = issued.body["secret"].as_str().expect("the secret").to_owned();
    assert!(secret.starts_with("wasl_pat_"));
    let system = Client::bearer(&h.base, &secret);
    let inbox = system.get("/v1/inbox").await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
    let listed = admin.get("/v1/tokens").await;
    assert!(
        !listed.body.to_string().contains(&secret),
        "the secret is never shown again"
    );

    // The account stream holds the token's hash, never the secret.
    let js = async_nats::jetstream::new(async_nats::connect(h.nats.url()).await.expect("NATS"));
    let mut stream = js.get_stream("WASL_ACCOUNTS").await.expect("the account stream");
    let last = stream.info().await.expect("info").state.last_sequence;
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await.expect("a record");
        assert!(!String::from_utf8_lossy(&message.payload).contains(&secret));
    }

    let id = issued.body["id"].as_str().expect("an id");
    let revoked = admin.send(Method::DELETE, &format!("/v1/tokens/{id}"), None, &[]).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    assert_eq!(system.get("/v1/inbox").await.status, StatusCode::UNAUTHORIZED);
    h.stop().await;
}
