//! The partner story as people run it, on a nats-server configured by `wasl nats-config`: the
//! hub runs `wasl router` with its own NKey; a partner runs `wasl partner listen` with its
//! credential and sees its referrals (and only its own) and the redaction notices of erased
//! cases, then answers one with `wasl partner receive`; another organisation's credential can
//! neither answer it nor speak for the first organisation.

use crate::run;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wasl_domain::case::CaseEvent;
use wasl_domain::ids::{CaseId, OrgId, ReferralId};
use wasl_domain::referral::{ReferralEvent, ReferralStatus};
use wasl_events::{DomainEvent, StoredEvent};
use wasl_store::StoreConfig;
use wasl_testkit::NatsServer;

struct Router(Child);

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn seed(out: &Path, org: OrgId) -> PathBuf {
    out.join("partners").join(org.to_string()).join(format!("{org}.nk"))
}

/// The redaction notices `org` must get from a history, in log order: for each erased case it
/// received referrals of, those referrals.
fn expected_notices(events: &[StoredEvent], org: OrgId) -> Vec<BTreeSet<String>> {
    let mut of_case: std::collections::HashMap<CaseId, BTreeSet<String>> = Default::default();
    let mut notices = Vec::new();
    for event in events {
        match &event.event {
            DomainEvent::Referral(id, ReferralEvent::Requested(request)) if request.to_org == org => {
                of_case.entry(request.case_id).or_default().insert(id.to_string());
            }
            DomainEvent::Case(case, CaseEvent::PersonalDataErased { .. }) => {
                notices.extend(of_case.get(case).cloned());
            }
            _ => {}
        }
    }
    notices
}

/// The referral ids of the redaction notices among the lines `wasl partner listen` printed.
fn notice_lines(stdout: &str) -> Vec<BTreeSet<String>> {
    stdout
        .lines()
        .filter_map(|l| l.split(" referrals ").nth(1))
        .filter_map(|rest| rest.split("  ").next())
        .map(|ids| ids.split(' ').map(str::to_owned).collect())
        .collect()
}

/// `wasl partner listen --until-idle` with `org`'s credential: the referral ids printed
/// (none while the router has not created the feed yet).
fn listen(url: &str, out: &Path, org: OrgId) -> Vec<String> {
    listen_all(url, out, org).0
}

/// [`listen`], and the referral ids of each redaction notice printed.
fn listen_all(url: &str, out: &Path, org: OrgId) -> (Vec<String>, Vec<BTreeSet<String>>) {
    let creds = seed(out, org);
    let (ok, stdout, stderr) = run(&[
        "partner",
        "listen",
        "--nats-url",
        url,
        "--creds",
        creds.to_str().expect("utf-8"),
        "--until-idle",
    ]);
    if !ok && stderr.contains("stream not found") {
        return (Vec::new(), Vec::new());
    }
    assert!(ok, "wasl partner listen failed: {stderr}");
    let referrals = stdout
        .lines()
        .filter_map(|l| l.split("referral ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    (referrals, notice_lines(&stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_listens_to_its_own_feed_and_answers_over_nats() {
    // A synthetic network; its organisations get credentials before the server starts.
    // A small history with a referral still waiting for a receipt (answered below).
    let (generator, events) = wasl_synth::history_with_a_waiting_referral(30);
    let orgs: Vec<OrgId> = generator.organisations().keys().copied().collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("nats");
    let mut args = vec![
        "nats-config".to_owned(),
        "--out".to_owned(),
        out.to_str().expect("utf-8").to_owned(),
    ];
    for org in &orgs {
        args.extend(["--org".to_owned(), org.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, stderr) = run(&args);
    assert!(ok, "wasl nats-config: {stderr}");
    let auth = std::fs::read_to_string(out.join("auth.conf")).expect("auth.conf");
    let server = NatsServer::builder().extra_config(auth).start().expect("nats-server");
    let url = server.url();

    // The hub writes the log with its NKey.
    let hub_seed = std::fs::read_to_string(out.join("hub.nk")).expect("hub.nk");
    let hub = async_nats::ConnectOptions::with_nkey(hub_seed.trim().to_owned())
        .connect(url.as_str())
        .await
        .expect("the hub connects");
    let js = async_nats::jetstream::new(hub);
    let config = StoreConfig::default();
    wasl_store::provision::ensure_stream(&js, &config)
        .await
        .expect("event log");
    wasl_synth::publish(&js, &config, events.clone())
        .await
        .expect("published");

    // What each organisation should see: the referrals addressed to it.
    let mut addressed: std::collections::BTreeMap<OrgId, BTreeSet<String>> = Default::default();
    for referral in generator.referrals().values() {
        if let Some(state) = referral.state() {
            addressed.entry(state.to_org).or_default().insert(state.id.to_string());
        }
    }
    // The busiest organisation with a referral still waiting for its receipt (answered below),
    // whatever the seed's history holds.
    let waits = |org: &OrgId| {
        generator
            .referrals()
            .values()
            .filter_map(|r| r.state())
            .any(|s| s.to_org == *org && s.status == ReferralStatus::Requested)
    };
    let (partner, expected) = addressed
        .iter()
        .filter(|(org, _)| waits(org))
        .max_by_key(|(_, ids)| ids.len())
        .map(|(org, ids)| (*org, ids.clone()))
        .expect("referrals");
    let other = *orgs.iter().find(|o| **o != partner).expect("another organisation");

    let health = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let router = Router(
        Command::new(env!("CARGO_BIN_EXE_wasl"))
            .args([
                "router",
                "--nats-url",
                &url,
                "--webhooks",
                "false",
                "--health-listen",
                &format!("127.0.0.1:{health}"),
                "--nats-nkey",
            ])
            .arg(out.join("router.nk"))
            // The command service appends the partners' answers with the store's user.
            .arg("--commands-nkey")
            .arg(out.join("store.nk"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("wasl router starts"),
    );

    // The partner's feed fills; listening prints each of its referrals, and only those.
    let referral_events = events
        .iter()
        .filter(|e| matches!(&e.event, DomainEvent::Referral(id, _) if expected.contains(&id.to_string())))
        .count();
    let notices = expected_notices(&events, partner);
    let began = Instant::now();
    let (mut seen, mut seen_notices) = (Vec::new(), Vec::new());
    while seen.len() < referral_events || seen_notices.len() < notices.len() {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "{} of {referral_events} partner messages and {} of {} notices after 60 s",
            seen.len(),
            seen_notices.len(),
            notices.len()
        );
        let (referrals, redactions) = listen_all(&url, &out, partner);
        seen.extend(referrals);
        seen_notices.extend(redactions);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(seen.len(), referral_events, "one line per referral event, none twice");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(seen_notices, notices, "one line per erased case, naming its referrals");
    // The durable consumer remembers: nothing is printed twice.
    assert!(listen(&url, &out, partner).is_empty());
    // The router says it is ready, and catches up with the log to lag 0.
    let began = Instant::now();
    loop {
        let (status, _, body) = crate::http::http(health, "GET", "/readyz", &[], "");
        assert_eq!(status, 200, "{body}");
        let ready: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        if ready["lag"] == 0 {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the router never caught up: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Its metrics count the feed messages it published.
    let (status, _, metrics) = crate::http::http(health, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    let published: Option<f64> = metrics
        .lines()
        .find(|l| l.starts_with("wasl_partner_messages_total{outcome=\"published\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok());
    assert!(published >= Some(referral_events as f64), "{metrics}");

    // Answer one still waiting for a receipt.
    let waiting: ReferralId = generator
        .referrals()
        .values()
        .filter_map(|r| r.state())
        .find(|s| s.to_org == partner && s.status == ReferralStatus::Requested)
        .map(|s| s.id)
        .expect("a referral waiting for the partner");
    let answer = |verb: &str, creds: &Path, org: Option<OrgId>| {
        let mut args = vec![
            "partner".to_owned(),
            verb.to_owned(),
            waiting.to_string(),
            "--nats-url".to_owned(),
            url.clone(),
            "--creds".to_owned(),
            creds.to_str().expect("utf-8").to_owned(),
            "--command-id".to_owned(),
            "0190b2c4-0000-7000-8000-00000000c0de".to_owned(),
        ];
        if let Some(org) = org {
            args.extend(["--org".to_owned(), org.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    };
    let (ok, stdout, stderr) = answer("receive", &seed(&out, partner), None);
    assert!(ok, "wasl partner receive: {stderr}");
    // The receipt is the referral's next event.
    let version = 1 + events
        .iter()
        .filter(|e| matches!(&e.event, wasl_events::DomainEvent::Referral(id, _) if *id == waiting))
        .count();
    assert!(stdout.contains(&format!("done (version {version}")), "{stdout}");
    // The same command again: the same answer, nothing new.
    let (ok, again, _) = answer("receive", &seed(&out, partner), None);
    assert!(ok);
    assert_eq!(again, stdout);
    // The receipt reaches the partner's feed.
    let began = Instant::now();
    loop {
        let lines = listen(&url, &out, partner);
        if lines.iter().any(|id| *id == waiting.to_string()) {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the receipt never reached the feed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Another organisation: not its referral; and it cannot speak as the partner.
    let (ok, _, stderr) = answer("accept", &seed(&out, other), None);
    assert!(!ok);
    assert!(stderr.contains("not_found"), "{stderr}");
    let (ok, _, stderr) = answer("accept", &seed(&out, other), Some(partner));
    assert!(!ok, "a command under another organisation's subject must fail");
    assert!(!stderr.contains("done"), "{stderr}");
    // Nor read the partner's feed.
    let (ok, _, _) = run(&[
        "partner",
        "listen",
        "--nats-url",
        &url,
        "--creds",
        seed(&out, other).to_str().expect("utf-8"),
        "--org",
        &partner.to_string(),
        "--until-idle",
    ]);
    assert!(!ok, "another organisation's credential read the partner's feed");
    drop(router);
}

/// A request as received: headers (lower-cased names) and body.
type Received = (Vec<(String, String)>, Vec<u8>);

/// A loopback HTTP receiver answering 200 to every POST.
struct Receiver {
    url: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start() -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/wasl-hook", listener.local_addr().expect("address"));
        let got: std::sync::Arc<std::sync::Mutex<Vec<_>>> = Default::default();
        let sink = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let sink = sink.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut writer = stream;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut headers = Vec::new();
                        loop {
                            let mut h = String::new();
                            reader.read_line(&mut h).expect("header");
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                headers.push((k.trim().to_lowercase(), v.trim().to_owned()));
                            }
                        }
                        let length: usize = headers
                            .iter()
                            .find(|(k, _)| k == "content-length")
                            .and_then(|(_, v)| v.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).expect("body");
                        sink.lock().expect("sink").push((headers, body));
                        writer
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .expect("answer");
                    }
                });
            }
        });
        Self { url, got }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_without_nats_gets_its_referrals_by_signed_webhook() {
    let server = NatsServer::start().expect("nats-server");
    let url = server.url();
    // A history in which a case the partner had referrals of is erased. Whether a history of
    // ten referrals erases one is down to the seed: the first seed from 14 on that does (the
    // search is deterministic, and survives changes to what the generator makes).
    let (generator, events) = (14..214)
        .map(|seed| {
            let mut generator = wasl_synth::Generator::new(wasl_synth::HistoryConfig::new(seed, 10));
            let events: Vec<_> = generator.by_ref().collect();
            (generator, events)
        })
        .find(|(generator, events)| {
            generator
                .referrals()
                .values()
                .filter_map(|r| r.state())
                .any(|r| !expected_notices(events, r.to_org).is_empty())
        })
        .expect("a seed whose history erases a case with a referral");
    let mut addressed: std::collections::BTreeMap<OrgId, usize> = Default::default();
    let to_org: std::collections::HashMap<ReferralId, OrgId> = generator
        .referrals()
        .values()
        .filter_map(|r| r.state())
        .map(|s| (s.id, s.to_org))
        .collect();
    for event in &events {
        if let DomainEvent::Referral(id, _) = &event.event {
            *addressed.entry(to_org[id]).or_default() += 1;
        }
    }
    let (partner, referral_events) = addressed
        .into_iter()
        .max_by_key(|(org, n)| (expected_notices(&events, *org).len(), *n))
        .expect("referrals");
    let notices = expected_notices(&events, partner);
    assert!(
        !notices.is_empty(),
        "the history erases a case with a referral to the partner"
    );
    let expected = referral_events + notices.len();

    // The admin sets the endpoint; the secret is printed once.
    // The receiver is on loopback, which an operator must allow (public addresses only by
    // default); the signing secrets are sealed with the master key.
    let receiver = Receiver::start();
    let keys = tempfile::tempdir().expect("key dir");
    let master_key = keys.path().join("master.key");
    std::fs::write(&master_key, "04".repeat(32)).expect("master key");
    let master_key = master_key.to_str().expect("utf-8");
    let set = [
        "webhooks",
        "set",
        &partner.to_string(),
        &receiver.url,
        "--nats-url",
        &url,
        "--master-key-file",
        master_key,
    ];
    let (ok, _, _) = run(&set);
    assert!(!ok, "an endpoint on loopback is refused unless loopback is allowed");
    let (ok, stdout, stderr) = run(&[&set[..], &["--webhook-allow-net", "127.0.0.0/8"]].concat());
    assert!(ok, "wasl webhooks set: {stderr}");
    let secret = stdout
        .split_whitespace()
        .find(|w| w.starts_with("whsec_"))
        .expect("the secret is printed")
        .to_owned();
    let secret = wasl_webhooks::Secret::parse(&secret).expect("a secret");

    let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.expect("connect"));
    let config = StoreConfig::default();
    wasl_store::provision::ensure_stream(&js, &config)
        .await
        .expect("event log");
    wasl_synth::publish(&js, &config, events.clone())
        .await
        .expect("published");
    let router = Router(
        Command::new(env!("CARGO_BIN_EXE_wasl"))
            .args([
                "router",
                "--nats-url",
                &url,
                "--master-key-file",
                master_key,
                "--webhook-allow-net",
                "127.0.0.0/8",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("wasl router starts"),
    );
    let began = Instant::now();
    while receiver.got.lock().expect("got").len() < expected {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "{} of {expected} webhooks after 60 s",
            receiver.got.lock().expect("got").len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = receiver.got.lock().expect("got").clone();
    assert_eq!(
        got.len(),
        expected,
        "one POST per referral event addressed to the organisation and per erased case it got referrals of"
    );
    let mut posted_notices = Vec::new();
    for (headers, body) in &got {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        wasl_webhooks::verify(
            &secret,
            headers.as_slice(),
            body,
            std::time::SystemTime::now(),
            wasl_webhooks::DEFAULT_TOLERANCE,
        )
        .expect("a valid signature");
        let message: serde_json::Value = serde_json::from_slice(body).expect("JSON");
        if message["schema"] == "wasl.partner.redaction.v1" {
            let webhook_id = headers.iter().find(|(k, _)| *k == "webhook-id").map(|(_, v)| *v);
            assert_eq!(webhook_id, message["notice_id"].as_str());
            let ids: BTreeSet<String> = message["referral_ids"]
                .as_array()
                .expect("referral ids")
                .iter()
                .map(|id| id.as_str().expect("an id").to_owned())
                .collect();
            posted_notices.push(ids);
            continue;
        }
        assert_eq!(message["schema"], "wasl.partner.referral.v1");
        assert_eq!(
            to_org[&message["referral_id"].as_str().expect("id").parse().expect("id")],
            partner
        );
    }
    assert_eq!(posted_notices, notices, "each notice once, in log order");

    // The admin sees it delivered.
    let (ok, status, stderr) = run(&[
        "webhooks",
        "status",
        &partner.to_string(),
        "--nats-url",
        &url,
        "--master-key-file",
        master_key,
    ]);
    assert!(ok, "{stderr}");
    assert!(status.contains(&receiver.url) && status.contains("enabled"), "{status}");
    assert!(
        status.contains("pending 0") && status.contains("dead letters 0"),
        "{status}"
    );
    assert!(!status.contains("last success never"), "{status}");
    assert!(!status.contains("whsec_"), "the status never shows the secret");
    drop(router);
}

/// A router started before its NATS server (a machine booting, a cluster restarting) waits for
/// it instead of exiting, and serves once the server is up.
#[test]
fn a_router_started_before_nats_waits_for_it() {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    };
    let (nats, health) = (free(), free());
    let store = tempfile::tempdir().expect("store dir");
    let mut router = Router(
        Command::new(env!("CARGO_BIN_EXE_wasl"))
            .args([
                "router",
                "--nats-url",
                &format!("nats://127.0.0.1:{nats}"),
                "--webhooks",
                "false",
                "--health-listen",
                &format!("127.0.0.1:{health}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("wasl router starts"),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        router.0.try_wait().expect("wait").is_none(),
        "the router gave up while NATS was not there yet"
    );
    let binary = wasl_testkit::find_nats_server().expect("the pinned nats-server");
    let _server = Router(
        Command::new(&binary.path)
            .args(["-a", "127.0.0.1", "-p", &nats.to_string(), "-js", "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts"),
    );
    let began = Instant::now();
    while !matches!(
        crate::http::try_http(health, "GET", "/readyz", &[], ""),
        Ok((200, _, _))
    ) {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the router did not come up once NATS was there"
        );
        assert!(router.0.try_wait().expect("wait").is_none(), "the router exited");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A synthetic partner message about referral `n` (codes only, nothing personal).
fn partner_message(n: u128) -> (ReferralId, wasl_router::PartnerMessage) {
    let id = |base: u128| uuid::Uuid::from_u128(base + n).to_string();
    let referral = ReferralId::parse(&id(0x0190_b2c4_0000_7000_8000_0000_00d0_0000)).expect("an id");
    let message = wasl_router::PartnerMessage {
        schema: "wasl.partner.referral.v1".to_owned(),
        event_id: id(0x0190_b2c4_0000_7000_8000_0000_00e0_0000),
        event_type: "wasl.referral.requested.v1".to_owned(),
        referral_id: referral.to_string(),
        version: 1,
        occurred_at: "2026-01-01T00:00:00.000Z".to_owned(),
        status: "requested".to_owned(),
        category: "health".to_owned(),
        service_id: id(0x0190_b2c4_0000_7000_8000_0000_00a0_0000),
        priority: "routine".to_owned(),
        client: wasl_router::PartnerClient {
            sex: "female".to_owned(),
            age_group: "25_59".to_owned(),
            language: "ar".to_owned(),
            governorate: "IQ-NI".to_owned(),
            district: None,
        },
        overdue: vec![],
        details_url: format!("https://wasl.example.invalid/v1/referrals/{referral}"),
        redact: false,
    };
    (referral, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listening_names_what_is_not_a_partner_message_and_goes_on() {
    let org = OrgId::parse("0190b2c4-0000-7000-8000-0000000000c7").expect("an org id");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("nats");
    let org_text = org.to_string();
    let (ok, _, stderr) = run(&["nats-config", "--out", out.to_str().expect("utf-8"), "--org", &org_text]);
    assert!(ok, "wasl nats-config: {stderr}");
    let auth = std::fs::read_to_string(out.join("auth.conf")).expect("auth.conf");
    let server = NatsServer::builder().extra_config(auth).start().expect("nats-server");
    let url = server.url();
    let hub_seed = std::fs::read_to_string(out.join("hub.nk")).expect("hub.nk");
    let hub = async_nats::ConnectOptions::with_nkey(hub_seed.trim().to_owned())
        .connect(url.as_str())
        .await
        .expect("the hub connects");
    let js = async_nats::jetstream::new(hub);
    let feed = js
        .create_stream(wasl_router::out_stream_config(org, &Default::default()))
        .await
        .expect("the feed");
    wasl_router::keep_partner_consumers(&feed)
        .await
        .expect("the consumers the router keeps");

    // Two partner messages and a redaction notice, and between them what anyone allowed to
    // publish could put there.
    let (first, before) = partner_message(1);
    let (second, after) = partner_message(2);
    let subject = |referral: ReferralId| wasl_events::partner::out_subject(org, referral);
    let another_schema = serde_json::to_string(&after)
        .expect("JSON")
        .replace("wasl.partner.referral.v1", "wasl.partner.referral.v9")
        .into_bytes();
    let notice_id = uuid::Uuid::from_u128(0x0190_b2c4_0000_7000_8000_0000_00c0_0001);
    let notice = serde_json::json!({
        "schema": "wasl.partner.redaction.v1",
        "notice_id": notice_id.to_string(),
        "event_type": "wasl.case.personal_data_erased.v1",
        "occurred_at": "2026-01-01T00:01:00.000Z",
        "referral_ids": [first.to_string(), second.to_string()],
        "redact": true,
    });
    let mut sequences = Vec::new();
    for (subject, payload) in [
        (subject(first), serde_json::to_vec(&before).expect("JSON")),
        (subject(first), b"\xff\xfe\x00garbage".to_vec()),
        (subject(first), br#"{"hello":"world"}"#.to_vec()),
        (subject(second), another_schema),
        (subject(second), serde_json::to_vec(&after).expect("JSON")),
        (
            wasl_events::partner::redaction_subject(org, notice_id),
            serde_json::to_vec(&notice).expect("JSON"),
        ),
    ] {
        let ack = js
            .publish(subject, payload.into())
            .await
            .expect("publish")
            .await
            .expect("stored");
        sequences.push(ack.sequence);
    }
    let poison = &sequences[1..4];
    let notice_ids = format!("{first} {second}");

    let creds = seed(&out, org);
    for json in [false, true] {
        // The two consumers the hub keeps, each with its own position.
        let consumer = if json { "referrals" } else { "wasl-partner-cli" };
        let mut args = vec![
            "partner",
            "listen",
            "--nats-url",
            &url,
            "--creds",
            creds.to_str().expect("utf-8"),
            "--consumer",
            consumer,
            "--until-idle",
        ];
        if json {
            args.push("--json");
        }
        let (ok, stdout, stderr) = run(&args);
        assert!(ok, "listening goes on past what it cannot read: {stderr}");
        let printed: Vec<String> = if json {
            stdout
                .lines()
                // The closing summary is not a message.
                .filter(|l| !l.starts_with("wasl partner:"))
                .map(|l| {
                    let m: serde_json::Value = serde_json::from_str(l).expect("one JSON message per line");
                    match m["referral_id"].as_str() {
                        Some(id) => id.to_owned(),
                        None => {
                            assert_eq!(m, notice, "the notice as it arrived");
                            "notice".to_owned()
                        }
                    }
                })
                .collect()
        } else {
            assert_eq!(
                notice_lines(&stdout),
                vec![notice_ids.split(' ').map(str::to_owned).collect::<BTreeSet<_>>()],
                "the notice names its referrals"
            );
            assert!(stdout.contains("  redact       referrals "), "{stdout}");
            stdout
                .lines()
                .filter_map(|l| {
                    if l.contains(" referrals ") {
                        return Some("notice".to_owned());
                    }
                    l.split("referral ")
                        .nth(1)?
                        .split_whitespace()
                        .next()
                        .map(str::to_owned)
                })
                .collect()
        };
        assert_eq!(
            printed,
            vec![first.to_string(), second.to_string(), "notice".to_owned()],
            "before and after, and the notice"
        );
        for sequence in poison {
            assert!(
                stderr.contains(&format!("error: message {sequence} of")),
                "message {sequence} is named: {stderr}"
            );
        }
        assert!(
            !stderr.contains("garbage") && !stderr.contains("hello"),
            "never its contents"
        );
    }
}
