//! Sessions shared by API instances: signed in on one, used and ended on another, as behind a
//! load balancer; a session's end; what the session bucket holds; the bucket on a three-node
//! cluster, one instance per node.
//!
//! The cookie is sent by hand here (no cookie jar), so that a refusal is the server's doing and
//! not a jar that dropped the cookie when signing out cleared it.

use crate::support::{Harness, TestDb, profile};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use wasl_api::AppState;
use wasl_api::auth::session::{BUCKET, COOKIE, Sessions};
use wasl_domain::Role;
use wasl_domain::ids::{OrgId, UserId};

const PASSWORD: &str = "test password 0031";

/// A session as a browser holds it: the cookie's secret and the CSRF token.
struct Browser {
    http: reqwest::Client,
    secret: String,
    csrf: String,
}

impl Browser {
    /// Signs in at `base`.
    async fn sign_in(base: &str, username: &str) -> Self {
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{base}/v1/login"))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .expect("the API answers");
        assert_eq!(r.status(), StatusCode::OK);
        let cookie = r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .expect("a session cookie")
            .to_owned();
        let secret = cookie
            .split(';')
            .next()
            .and_then(|pair| pair.strip_prefix(&format!("{COOKIE}=")))
            .expect("the session cookie's value")
            .to_owned();
        let body: Value = r.json().await.expect("JSON");
        let csrf = body["csrf_token"].as_str().expect("a CSRF token").to_owned();
        Self { http, secret, csrf }
    }

    /// Sends the session's cookie (and the CSRF token when `csrf`) to `base`.
    async fn send(
        &self,
        base: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{base}{path}"))
            .header("cookie", format!("{COOKIE}={}", self.secret));
        if csrf {
            request = request.header("x-csrf-token", &self.csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let bytes = response.bytes().await.expect("a body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn me(&self, base: &str) -> (StatusCode, Value) {
        self.send(base, Method::GET, "/v1/me", None, false).await
    }
}

/// A local user of `org`, known to every instance in `states` before this returns.
async fn user(states: &[&AppState], org: OrgId, role: Role) -> (UserId, String) {
    let username = format!("test-sessions-{}", uuid::Uuid::new_v4().simple());
    let user = states[0]
        .accounts()
        .create_user(None, org, &username, &[role], PASSWORD)
        .await
        .expect("create a user");
    for state in states {
        eventually(|| state.accounts().user(user.id).is_some()).await;
    }
    (user.id, username)
}

/// Waits (up to 10 s) until `done`.
async fn eventually(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "not within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_on_one_instance_used_on_another_and_signed_out_there_is_refused_everywhere() {
    let mut h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let (b, b_state) = h.another_instance().await;
    let a = h.base.clone();
    let (id, username) = user(&[&h.state, &b_state], org, Role::Caseworker).await;

    let browser = Browser::sign_in(&a, &username).await;
    let (status, me) = browser.me(&b).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user_id"], id.to_string());
    assert_eq!(me["authenticated_by"], "session");
    assert_eq!(me["csrf_token"], browser.csrf.as_str(), "B knows the CSRF token A gave");

    // A change on B, with the CSRF token from A's sign-in; without it, refused.
    let case = json!({"profile": profile("TEST-3101")});
    let (status, body) = browser
        .send(&b, Method::POST, "/v1/cases", Some(case.clone()), true)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = browser.send(&b, Method::POST, "/v1/cases", Some(case), false).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Signed out on B: refused on A at once, and on B.
    let (status, body) = browser.send(&b, Method::POST, "/v1/logout", None, true).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(browser.me(&a).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(browser.me(&b).await.0, StatusCode::UNAUTHORIZED);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_on_one_instance_ends_their_sessions_on_the_others() {
    let mut h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let (b, b_state) = h.another_instance().await;
    let a = h.base.clone();
    let (id, username) = user(&[&h.state, &b_state], org, Role::Caseworker).await;
    let browser = Browser::sign_in(&b, &username).await;
    assert_eq!(browser.me(&a).await.0, StatusCode::OK);

    let admin = h.token(org, Role::Admin).await;
    let disabled = admin.post(&format!("/v1/users/{id}/disable"), json!(null)).await;
    assert_eq!(disabled.status, StatusCode::NO_CONTENT, "{}", disabled.body);
    assert_eq!(browser.me(&a).await.0, StatusCode::UNAUTHORIZED);
    // B follows the accounts stream: the session stops working there within moments.
    eventually(|| b_state.accounts().user(id).is_some_and(|u| u.disabled)).await;
    assert_eq!(browser.me(&b).await.0, StatusCode::UNAUTHORIZED);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_after_its_lifetime_on_every_instance_and_leaves_the_bucket() {
    let lifetime = Duration::from_secs(3);
    let mut h = Harness::start_full(TestDb::sqlite(), Default::default(), lifetime).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let (b, b_state) = h.another_instance().await;
    let a = h.base.clone();
    let (_, username) = user(&[&h.state, &b_state], org, Role::Caseworker).await;

    let browser = Browser::sign_in(&a, &username).await;
    // The session was stored before the answer: it ends at most a lifetime from now.
    let signed_in = Instant::now();
    assert_eq!(browser.me(&a).await.0, StatusCode::OK);
    assert_eq!(browser.me(&b).await.0, StatusCode::OK);

    tokio::time::sleep_until((signed_in + lifetime + Duration::from_millis(100)).into()).await;
    assert_eq!(browser.me(&a).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(browser.me(&b).await.0, StatusCode::UNAUTHORIZED);

    // JetStream removes it: the bucket's maximum age is the lifetime.
    let js = async_nats::jetstream::new(async_nats::connect(h.nats.url()).await.expect("NATS"));
    let bucket = js.get_key_value(BUCKET).await.expect("the session bucket");
    let key = sha256_hex(&browser.secret);
    let deadline = Instant::now() + Duration::from_secs(10);
    while bucket.entry(key.as_str()).await.expect("a read").is_some() {
        assert!(Instant::now() < deadline, "the session is still in the bucket");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_holds_the_hash_of_a_session_never_its_secret() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let (_, username) = user(&[&h.state], org, Role::Caseworker).await;
    let browser = Browser::sign_in(&h.base, &username).await;
    assert_eq!(browser.me(&h.base).await.0, StatusCode::OK);

    let js = async_nats::jetstream::new(async_nats::connect(h.nats.url()).await.expect("NATS"));
    let bucket = js.get_key_value(BUCKET).await.expect("the session bucket");
    let mut stream = js.get_stream(format!("KV_{BUCKET}")).await.expect("its stream");
    let raw = |message: &async_nats::jetstream::message::StreamMessage| {
        let headers: Vec<String> = message
            .headers
            .iter()
            .flat_map(|(name, values)| values.iter().map(move |v| format!("{name}: {v}")))
            .collect();
        format!(
            "{} {} {}",
            message.subject,
            headers.join("\n"),
            String::from_utf8_lossy(&message.payload)
        )
    };
    let last = stream.info().await.expect("info").state.last_sequence;
    assert_eq!(last, 1, "one session, one message");
    let stored = stream.get_raw_message(1).await.expect("the session");
    assert_eq!(
        stored.subject.as_str(),
        format!("$KV.{BUCKET}.{}", sha256_hex(&browser.secret)),
        "the key is the SHA-256 of the secret"
    );
    let text = raw(&stored);
    assert!(!text.contains(&browser.secret), "the secret is never stored");
    assert!(!text.contains(&browser.csrf), "nor the CSRF token");
    let record: Value = serde_json::from_slice(&stored.payload).expect("a JSON record");
    let fields: Vec<&str> = record
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, ["expires_at", "started_at", "user"]);

    // Signed out, the key is purged: nothing of the session is left but the purge marker.
    let (status, _) = browser.send(&h.base, Method::POST, "/v1/logout", None, true).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(bucket.get(sha256_hex(&browser.secret)).await.expect("a read").is_none());
    let info = stream.info().await.expect("info").state.clone();
    for seq in info.first_sequence..=info.last_sequence {
        if let Ok(message) = stream.get_raw_message(seq).await {
            assert!(message.payload.is_empty(), "only the purge marker is left");
            assert!(!raw(&message).contains(&browser.secret));
        }
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_three_node_cluster_a_session_started_or_ended_through_one_node_is_seen_through_all_at_once() {
    let cluster = wasl_testkit::NatsCluster::start(3).expect("3-node cluster");
    let mut instances = Vec::new();
    for node in 0..3 {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(cluster.url(node))
            .await
            .expect("connect to a node");
        let js = async_nats::jetstream::new(client);
        // The cluster may still be electing its leaders.
        let deadline = Instant::now() + Duration::from_secs(30);
        let sessions = loop {
            match Sessions::open(&js, Duration::from_secs(3600), 3, 1).await {
                Ok(sessions) => break sessions,
                Err(err) if Instant::now() < deadline => {
                    eprintln!("not yet: {err}");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(err) => panic!("the session bucket: {err}"),
            }
        };
        if node == 0 {
            let config = js
                .get_stream(format!("KV_{BUCKET}"))
                .await
                .expect("the bucket's stream")
                .info()
                .await
                .expect("info")
                .config
                .clone();
            assert_eq!(config.num_replicas, 3);
            assert_eq!(config.max_messages_per_subject, 1, "history 1");
            assert_eq!(config.storage, async_nats::jetstream::stream::StorageType::File);
            assert_eq!(config.max_age, Duration::from_secs(3600));
        }
        instances.push(sessions);
    }
    let user: UserId = wasl_domain::testing::fresh();
    for round in 0..30 {
        let (secret, _) = instances[round % 3].start(user).await.expect("a session");
        for (node, sessions) in instances.iter().enumerate() {
            let seen = sessions.get(&secret).await.expect("a read");
            assert_eq!(seen.map(|s| s.user), Some(user), "started, seen through node {node}");
        }
        instances[(round + 1) % 3].end(&secret).await.expect("signed out");
        for (node, sessions) in instances.iter().enumerate() {
            let seen = sessions.get(&secret).await.expect("a read");
            assert!(seen.is_none(), "ended, refused through node {node}");
        }
    }
}
