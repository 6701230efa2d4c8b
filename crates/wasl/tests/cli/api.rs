//! `wasl users add`, `wasl tokens issue` and `wasl api` as an operator runs them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wasl_testkit::NatsServer;

/// A plain HTTP/1.1 GET: the status code and the body.
fn get(port: u16, path: &str, bearer: Option<&str>) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

fn add_user(url: &str, org: &str, password: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasl"))
        .args([
            "users",
            "add",
            "--nats-url",
            url,
            "--username",
            "test-admin",
            "--org",
            org,
            "--role",
            "admin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wasl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("the password is written");
    let output = child.wait_with_output().expect("wasl ends");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_operator_creates_the_first_admin_issues_a_token_and_serves_the_api() {
    let nats = NatsServer::start().expect("a nats-server");
    let url = nats.url();
    let org = uuid::Uuid::now_v7().to_string();

    let (ok, _, err) = add_user(&url, &org, "short");
    assert!(!ok, "a short password is refused");
    assert!(err.contains("at least 12 characters"), "{err}");
    let (ok, out, err) = add_user(&url, &org, "test password 0007");
    assert!(ok, "{err}");
    assert!(out.contains("created user test-admin"), "{out}");
    assert!(!out.contains("test password 0007") && !err.contains("test password 0007"));

    let (ok, secret, err) = crate::run(&[
        "tokens",
        "issue",
        "--nats-url",
        &url,
        "--org",
        &org,
        "--role",
        "partner_system",
        "--label",
        "test system",
    ]);
    assert!(ok, "{err}");
    let secret = secret.trim().to_owned();
    assert!(secret.starts_with("wasl_pat_"), "the secret is printed: {secret}");
    let (ok, _, err) = crate::run(&[
        "tokens",
        "issue",
        "--nats-url",
        &url,
        "--org",
        &org,
        "--role",
        "admin",
        "--label",
        "x",
    ]);
    assert!(!ok && err.contains("cannot administer"), "{err}");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let key = dir.path().join("master.key");
    std::fs::write(
        &key,
        "0202020202020202020202020202020202020202020202020202020202020202\n",
    )
    .expect("a key file");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut api = Command::new(env!("CARGO_BIN_EXE_wasl"))
        .args(["api", "--listen", &format!("127.0.0.1:{port}"), "--nats-url", &url])
        .arg("--database-url")
        .arg(format!("sqlite:{}", dir.path().join("wasl.db").display()))
        .arg("--master-key-file")
        .arg(&key)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wasl api starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(port, "/healthz", None).is_none_or(|(s, _)| s != 200) {
        assert!(Instant::now() < deadline, "the API did not come up");
        assert!(api.try_wait().expect("status").is_none(), "wasl api exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = get(port, "/readyz", None).expect("readyz");
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(port, "/v1/me", Some(&secret)).expect("me");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("partner_system") && body.contains(&org), "{body}");
    let (status, body) = get(port, "/openapi.json", None).expect("the document");
    assert_eq!(status, 200);
    assert!(body.contains("\"openapi\":\"3.1"), "OpenAPI 3.1");

    let terminated = Command::new("kill")
        .args(["-TERM", &api.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(terminated.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = api.try_wait().expect("status") {
            assert!(status.success(), "a clean stop after SIGTERM: {status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "wasl api did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_decides_a_role_request_of_a_single_admin_organisation_and_the_log_says_so() {
    use wasl_domain::Role;
    let nats = NatsServer::start().expect("a nats-server");
    let url = nats.url();
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.expect("NATS"));
    let accounts = wasl_api::auth::accounts::Accounts::open(js.clone(), 1)
        .await
        .expect("accounts");
    let org = wasl_domain::testing::fresh();
    let admin = accounts
        .create_user(None, org, "test-sole-admin", &[Role::Admin], "test password 0008")
        .await
        .expect("the only admin");
    let colleague = accounts
        .create_user(None, org, "test-colleague", &[Role::Caseworker], "test password 0009")
        .await
        .expect("a caseworker");
    let request = accounts
        .request_roles(admin.id, colleague.id, &[Role::Caseworker, Role::Admin])
        .await
        .expect("a pending request");
    let decide = |user: String, request: String| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            crate::run(&[
                "users",
                "decide-roles",
                "--nats-url",
                &url,
                "--user",
                &user,
                "--request",
                &request,
            ])
        })
    };
    // A request that is not the user's is refused.
    let (ok, _, err) = decide(admin.id.to_string(), request.id.to_string())
        .await
        .expect("wasl ran");
    assert!(!ok && err.contains("no pending role request"), "{err}");
    let (ok, out, err) = decide(colleague.id.to_string(), request.id.to_string())
        .await
        .expect("wasl ran");
    assert!(ok, "{err}");
    assert!(out.contains("approved"), "{out}");

    // A fresh reader of the log sees the new roles and that the operator decided.
    let reread = wasl_api::auth::accounts::Accounts::open(js.clone(), 1)
        .await
        .expect("accounts");
    assert_eq!(
        reread.user(colleague.id).expect("the colleague").roles,
        [Role::Caseworker, Role::Admin]
    );
    assert!(reread.role_requests_for(colleague.id).is_empty());
    let stream = js
        .get_stream(wasl_api::auth::accounts::STREAM)
        .await
        .expect("the stream");
    let last = stream.get_info().await.expect("info").state.last_sequence;
    let record: wasl_api::auth::accounts::AccountRecord =
        serde_json::from_slice(&stream.get_raw_message(last).await.expect("the record").payload).expect("a record");
    assert_eq!(record.by, None);
    assert!(matches!(
        record.event,
        wasl_api::auth::accounts::AccountEvent::RoleRequestDecided {
            approved: true,
            by_operator: true,
            ..
        }
    ));
}
