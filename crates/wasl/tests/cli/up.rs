//! `wasl up` as a new user runs it: everything comes up on loopback with its own nats-server and
//! SQLite under the data folder, answers over HTTP, stops on Ctrl-C, and comes back with the
//! same data.

use crate::http::http;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The NKey seed of `wasl up`'s services in `data`: the only credential its NATS accepts.
pub(crate) fn seed(data: &Path) -> std::path::PathBuf {
    data.join("nats.nk")
}

/// A client of the NATS at `url`, with the NKey seed in `seed` when given (`wasl up`'s; the
/// bare servers some tests start take anyone).
pub(crate) async fn nats_client(url: &str, seed: Option<&Path>) -> async_nats::Client {
    let mut options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(2));
    if let Some(seed) = seed {
        let text = std::fs::read_to_string(seed).expect("the NKey seed wasl up wrote");
        options = options.nkey(text.trim().to_owned());
    }
    options.connect(url).await.expect("connect")
}

pub(crate) struct Up {
    child: Child,
    stdout: std::sync::mpsc::Receiver<String>,
    /// Its standard error, kept for a failure's message.
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Up {
    /// Starts `wasl up` with `extra` options and waits until it has printed its banner (once
    /// every service runs) and the API is ready; returns it and the banner.
    pub(crate) fn start(data: &Path, api: u16, nats: u16, extra: &[&str]) -> (Self, String) {
        Self::start_with_env(data, api, nats, extra, &[])
    }

    /// [`Up::start`] with extra environment variables.
    pub(crate) fn start_with_env(
        data: &Path,
        api: u16,
        nats: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> (Self, String) {
        let (up, banner) = Self::spawn(data, api, nats, extra, env);
        let began = Instant::now();
        while http(api, "GET", "/readyz", &[], "").0 != 200 {
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "wasl up was not ready within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        (up, banner)
    }

    /// Runs `wasl up` and reads its banner.
    fn spawn(data: &Path, api: u16, nats: u16, extra: &[&str], env: &[(&str, &str)]) -> (Self, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasl"))
            .arg("up")
            .args(extra)
            .arg("--data")
            .arg(data)
            .args([
                "--listen",
                &format!("127.0.0.1:{api}"),
                "--nats-port",
                &nats.to_string(),
            ])
            .env("WASL_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wasl up starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, stdout) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let err = child.stderr.take().expect("stderr");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut kept = stderr.lock().expect("stderr");
                    kept.push_str(&line);
                    kept.push('\n');
                }
            });
        }
        let up = Self { child, stdout, stderr };
        let banner = up.banner();
        (up, banner)
    }

    /// Starts `wasl up` and returns once it has printed its banner, ready or not.
    pub(crate) fn start_unready(data: &Path, api: u16, nats: u16) -> (Self, String) {
        Self::spawn(data, api, nats, &[], &[])
    }

    /// Reads standard output up to the end of the banner.
    fn banner(&self) -> String {
        let mut banner = String::new();
        while !banner.contains("Ctrl-C stops everything") {
            let line = self.stdout.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|e| {
                // Its last words, once it has exited.
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "no banner from wasl up ({e}); its stderr:\n{}",
                    self.stderr.lock().expect("stderr")
                )
            });
            banner.push_str(&line);
            banner.push('\n');
        }
        banner
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a power button or the OOM killer would, and the reaping of the process.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Ctrl-C, and the exit.
    pub(crate) fn interrupt(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().expect("kill -INT");
        let began = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "wasl up did not stop within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Signs in as `username`; true when the API accepted the password.
fn signs_in(api: u16, username: &str, password: &str) -> bool {
    let body = format!(r#"{{"username":"{username}","password":"{password}"}}"#);
    let (status, _, _) = http(api, "POST", "/v1/login", &[("content-type", "application/json")], &body);
    status == 200
}

/// `wasl users add` against up's NATS with its services' key; whether it succeeded.
fn add_user(data: &Path, nats: u16, username: &str, password: &str) -> bool {
    let mut add = Command::new(env!("CARGO_BIN_EXE_wasl"))
        .args([
            "users",
            "add",
            "--nats-url",
            &format!("nats://127.0.0.1:{nats}"),
            "--nats-nkey",
            seed(data).to_str().expect("utf-8"),
            "--username",
            username,
            "--org",
            "0190b2c4-0000-7000-8000-0000000000aa",
            "--role",
            "admin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("wasl users add");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("password");
    add.wait().expect("users add").success()
}

#[test]
fn up_serves_everything_stops_on_ctrl_c_and_comes_back_with_the_same_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (api, nats) = (free_port(), free_port());
    let (up, banner) = Up::start(&data, api, nats, &[]);
    assert!(banner.contains(&format!("http://127.0.0.1:{api}")), "{banner}");
    assert!(banner.contains(&format!("nats://127.0.0.1:{nats}")), "{banner}");
    assert!(
        banner.contains(&data.canonicalize().expect("data").display().to_string()),
        "{banner}"
    );
    let (status, _, document) = http(api, "GET", "/openapi.json", &[], "");
    assert_eq!(status, 200);
    assert!(document.contains("\"openapi\""));
    for part in ["nats/store", "wasl.db", "master.key", "nats.nk"] {
        assert!(data.join(part).exists(), "{part} under the data folder");
    }
    let key = std::fs::read_to_string(data.join("master.key")).expect("master key");
    // Owner-only, as another user of the machine must not read any of it.
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |part: &str| std::fs::metadata(data.join(part)).expect("there").permissions().mode() & 0o777;
        assert_eq!(mode(""), 0o700, "the data folder");
        assert_eq!(mode("nats"), 0o700, "the NATS folder");
        for file in ["wasl.db", "master.key", "nats.nk"] {
            assert_eq!(mode(file), 0o600, "{file}");
        }
    }
    // Its NATS takes no anonymous client, and no client with another key.
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let url = format!("nats://127.0.0.1:{nats}");
        let anonymous = runtime.block_on(
            async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(2))
                .max_reconnects(Some(1))
                .connect(url.as_str()),
        );
        assert!(anonymous.is_err(), "an anonymous client was let in");
        let stranger = nkeys::KeyPair::new_user().seed().expect("a seed");
        let other = runtime.block_on(
            async_nats::ConnectOptions::with_nkey(stranger)
                .connection_timeout(Duration::from_secs(2))
                .max_reconnects(Some(1))
                .connect(url.as_str()),
        );
        assert!(other.is_err(), "a client with another NKey was let in");
        let (ok, _, err) = crate::run(&["log", "skipped", "--nats-url", &url]);
        assert!(!ok, "a wasl command without the key read the log");
        assert!(err.contains("cannot connect to NATS"), "{err}");
        let key = seed(&data);
        let (ok, _, err) = crate::run(&[
            "log",
            "skipped",
            "--nats-url",
            &url,
            "--nats-nkey",
            key.to_str().expect("utf-8"),
        ]);
        assert!(ok, "with the key it does: {err}");
        // With the key, as the banner says, a client reads the log.
        assert!(
            banner.contains(&seed(&data.canonicalize().expect("data")).display().to_string()),
            "{banner}"
        );
        runtime.block_on(nats_client(&url, Some(&seed(&data))));
    }

    // The first admin, made as the banner says, against up's own NATS.
    assert!(add_user(&data, nats, "test.admin", "test-password-not-real-1"));
    assert!(signs_in(api, "test.admin", "test-password-not-real-1"));

    // NATS dies: the supervisor starts it again on the same store, and writes work again.
    let config = data.canonicalize().expect("data").join("nats").join("nats.conf");
    let killed = Command::new("pkill")
        .args(["-KILL", "-f", &config.display().to_string()])
        .status()
        .expect("pkill");
    assert!(killed.success(), "the nats-server of wasl up was found");
    let began = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(250));
        if add_user(&data, nats, "test.second", "test-password-not-real-2") {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(30), "NATS did not come back");
    }
    // The API follows the accounts stream across the restart.
    let began = Instant::now();
    while !signs_in(api, "test.second", "test-password-not-real-2") {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the API never saw the new account"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let status = up.interrupt();
    assert!(status.success(), "a clean stop: {status}");
    assert!(TcpStream::connect(("127.0.0.1", nats)).is_err(), "NATS stopped with it");

    // Again: the same key, the same account.
    let (up, _) = Up::start(&data, api, nats, &[]);
    assert_eq!(std::fs::read_to_string(data.join("master.key")).expect("key"), key);
    assert!(signs_in(api, "test.admin", "test-password-not-real-1"));
    assert!(!signs_in(api, "test.admin", "a-wrong-password-000"));
    assert!(up.interrupt().success());
}

/// The log's last position once every read model has caught up with it.
pub(crate) fn settled_log_position(api: u16) -> u64 {
    let began = Instant::now();
    loop {
        let (status, _, body) = http(api, "GET", "/readyz", &[], "");
        if status == 200 {
            let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            if v["projections"]
                .as_array()
                .is_some_and(|p| p.iter().all(|p| p["lag"] == 0))
            {
                return v["log_position"].as_u64().expect("log position");
            }
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the read models never caught up: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Signs in as `username` (which must succeed); the session cookie and its CSRF token.
pub(crate) fn sign_in(api: u16, username: &str, password: &str) -> (String, String) {
    let body = format!(r#"{{"username":"{username}","password":"{password}"}}"#);
    let (status, headers, answer) = http(api, "POST", "/v1/login", &[("content-type", "application/json")], &body);
    assert_eq!(status, 200, "{username} signs in: {answer}");
    let value: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    let csrf = value["csrf_token"].as_str().expect("a CSRF token").to_owned();
    let cookie = headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with("wasl_session="))
        .map(|(_, v)| v.split(';').next().expect("cookie").to_owned())
        .expect("a session cookie");
    (cookie, csrf)
}

/// The events in the log of a running `wasl up` not made by the follow-up service.
fn people_events(data: &Path, nats: u16) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        use futures_util::StreamExt;
        let client = nats_client(&format!("nats://127.0.0.1:{nats}"), Some(&seed(data))).await;
        let store = wasl_store::EventStore::open_existing(client, wasl_store::StoreConfig::default())
            .await
            .expect("store")
            .expect("a log");
        let last = store.stream().get_info().await.expect("info").state.last_sequence;
        let mut feed = wasl_store::subscribe::subscribe(store.stream(), 1, None)
            .await
            .expect("subscribe");
        let mut people = 0;
        let mut seen = 0;
        while seen < last {
            let recorded = feed.next().await.expect("more").expect("readable");
            seen = recorded.sequence;
            if recorded.event.meta.actor.user.to_string() != wasl_followup::SYSTEM_USER {
                people += 1;
            }
        }
        people
    })
}

/// The ids on the first page of cases a demo caseworker sees.
fn caseworker_cases(api: u16, password: &str) -> Vec<String> {
    let (cookie, _) = sign_in(api, "demo.caseworker.erbil", password);
    let (status, _, page) = http(api, "GET", "/v1/cases", &[("cookie", &cookie)], "");
    assert_eq!(status, 200, "{page}");
    let v: serde_json::Value = serde_json::from_str(&page).expect("JSON");
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn up_with_demo_data_twice_adds_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (api, nats) = (free_port(), free_port());
    let start = || Up::start(&data, api, nats, &["--demo"]);
    let (up, banner) = start();
    assert!(banner.contains("demo.caseworker.erbil"), "{banner}");
    let password = banner
        .split("Password for all: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the demo password is printed")
        .to_owned();
    let position = settled_log_position(api);
    assert!(
        position > 500,
        "90 days of referrals are in the log ({position} events)"
    );
    let cases = caseworker_cases(api, &password);
    assert!(!cases.is_empty(), "the demo caseworker has cases");
    let demo = people_events(&data, nats);
    assert!(up.interrupt().success());

    let (up, banner) = start();
    assert!(banner.contains(" 0 carried out now"), "{banner}");
    settled_log_position(api);
    // The follow-up service marks the demo's old open referrals overdue (its own events); the
    // demo itself adds nothing.
    assert_eq!(
        people_events(&data, nats),
        demo,
        "nothing of the demo was appended the second time"
    );
    assert_eq!(caseworker_cases(api, &password), cases);
    assert!(up.interrupt().success());
}

#[test]
fn up_refuses_an_audit_that_went_backwards_until_the_operator_accepts_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (api, nats) = (free_port(), free_port());
    let (up, _) = Up::start(&data, api, nats, &[]);
    assert!(add_user(&data, nats, "test-auditor", "test password 0001"));
    let (cookie, _) = sign_in(api, "test-auditor", "test password 0001");
    // Reading the audit is itself audited: the stream holds a record, the checkpoint its head.
    let (status, _, body) = http(api, "GET", "/v1/audit", &[("cookie", &cookie)], "");
    assert_eq!(status, 200, "{body}");
    assert!(up.interrupt().success());

    // The NATS store is lost (or swapped for an older one); wasl.db, with the checkpoint, stays.
    std::fs::remove_dir_all(data.join("nats").join("store")).expect("remove the store");
    let (ok, _, err) = crate::run(&[
        "up",
        "--data",
        data.to_str().expect("utf-8"),
        "--listen",
        &format!("127.0.0.1:{api}"),
        "--nats-port",
        &nats.to_string(),
    ]);
    assert!(!ok, "wasl up must not start on an audit that went backwards");
    // The operator is told how to check and how to accept a deliberate reset.
    assert!(
        err.contains("wasl audit verify --since 1:") && err.contains("--accept-audit-reset"),
        "{err}"
    );

    // Accepted once, the audit is anchored again: the next start needs nothing.
    let (up, _) = Up::start(&data, api, nats, &["--accept-audit-reset"]);
    assert!(up.interrupt().success());
    let (up, _) = Up::start(&data, api, nats, &[]);
    assert!(up.interrupt().success());
}
