//! The loop moves on its own under `wasl up`: a client withdraws consent, and the follow-up
//! service cancels the three open referrals it covered, at two organisations — one reading its
//! feed over NATS, one receiving webhooks — and both are told to redact; nothing else changes.

use crate::http::http;
use crate::up::{Up, free_port, settled_log_position, sign_in};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("JSON ({e}): {text}"))
}

/// A webhook receiver: answers 200 to every POST and keeps the bodies.
fn webhook_receiver() -> (u16, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(value) = serde_json::from_slice(&body)
            {
                kept.lock().expect("bodies").push(value);
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (port, bodies)
}

/// The partner messages in an organisation's feed, by referral, in order.
async fn feed(client: &async_nats::Client, org: &str) -> BTreeMap<String, Vec<serde_json::Value>> {
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js.get_stream(format!("WASL_OUT_{org}")).await.expect("the feed");
    let last = stream.info().await.expect("info").state.last_sequence;
    let mut out: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    if last == 0 {
        return out;
    }
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    while let Some(message) = messages.next().await {
        let message = message.expect("message");
        let seq = message.info().expect("info").stream_sequence;
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&message.payload)
            && let Some(id) = value["referral_id"].as_str()
        {
            out.entry(id.to_owned()).or_default().push(value.clone());
        }
        if seq >= last {
            break;
        }
    }
    out
}

#[test]
fn withdrawing_consent_cancels_the_referrals_it_covered_and_both_partners_are_told_to_redact() {
    let runtime = crate::durability::runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (api, nats) = (free_port(), free_port());
    let url = format!("nats://127.0.0.1:{nats}");
    // The webhook receiver below is on loopback: allowed explicitly.
    let (up, banner) = Up::start(&data, api, nats, &["--demo", "--webhook-allow-net", "127.0.0.0/8"]);
    let password = banner
        .split("Password for all: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the demo password")
        .to_owned();
    settled_log_position(api);
    let (cookie, csrf) = sign_in(api, "demo.caseworker.erbil", &password);
    let headers = |key: &'static str| {
        vec![
            ("cookie", cookie.clone()),
            ("x-csrf-token", csrf.clone()),
            ("content-type", "application/json".to_owned()),
            ("idempotency-key", key.to_owned()),
        ]
    };
    let post = |path: &str, key: &'static str, body: &str| {
        let headers = headers(key);
        let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, answer) = http(api, "POST", path, &refs, body);
        assert!(status == 200 || status == 201, "POST {path}: {status} {answer}");
        json(&answer)
    };
    let get = |path: &str| {
        let (status, _, answer) = http(api, "GET", path, &[("cookie", &cookie)], "");
        assert_eq!(status, 200, "GET {path}: {answer}");
        json(&answer)
    };

    // A new case with one consent, and three referrals under it to two organisations.
    let case = post(
        "/v1/cases",
        "followup-e2e-case",
        r#"{"profile": {"survivor_code": "TEST-FU-0001", "sex": "female", "age_group": "25_59",
            "population_group": "idp", "nationality": "IQ", "governorate": "IQ-AR", "language": "ar",
            "vulnerabilities": []}}"#,
    )["id"]
        .as_str()
        .expect("case id")
        .to_owned();
    let consent = post(&format!("/v1/cases/{case}/consents"), "followup-e2e-consent", "{}")["id"]
        .as_str()
        .expect("consent id")
        .to_owned();
    let mut by_org: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for category in [
        "health",
        "psychosocial",
        "legal",
        "shelter",
        "civil_documentation",
        "cash",
    ] {
        let candidates = get(&format!("/v1/referrals/candidates?case_id={case}&category={category}"));
        for candidate in candidates.as_array().into_iter().flatten() {
            let org = candidate["org_id"].as_str().expect("org").to_owned();
            let service = candidate["service_id"].as_str().expect("service").to_owned();
            by_org.entry(org).or_default().push((category.to_owned(), service));
        }
    }
    let mut orgs = by_org.iter().filter(|(_, services)| !services.is_empty());
    let (nats_org, nats_services) = orgs.next().expect("a first organisation");
    let (hook_org, hook_services) = orgs.next().expect("a second organisation");
    let keys = ["followup-e2e-r1", "followup-e2e-r2", "followup-e2e-r3"];
    let plan = [
        (nats_org, &nats_services[0].1),
        (nats_org, &nats_services[nats_services.len() - 1].1),
        (hook_org, &hook_services[0].1),
    ];
    let mut referrals = Vec::new();
    for ((org, service), key) in plan.iter().zip(keys) {
        let body =
            format!(r#"{{"case_id": "{case}", "to_org": "{org}", "service_id": "{service}", "priority": "urgent"}}"#);
        referrals.push((
            org.to_string(),
            post("/v1/referrals", key, &body)["id"]
                .as_str()
                .expect("referral id")
                .to_owned(),
        ));
    }

    // The second organisation receives its feed by webhook.
    let (hook_port, hooked) = webhook_receiver();
    let (ok, _, err) = crate::run(&[
        "webhooks",
        "set",
        hook_org,
        &format!("http://127.0.0.1:{hook_port}/wasl"),
        "--nats-url",
        &url,
        "--nats-nkey",
        crate::up::seed(&data).to_str().expect("utf-8"),
        "--master-key-file",
        data.join("master.key").to_str().expect("utf-8"),
        "--webhook-allow-net",
        "127.0.0.0/8",
    ]);
    assert!(ok, "{err}");
    let client = runtime.block_on(crate::up::nats_client(&url, Some(&crate::up::seed(&data))));
    let began = Instant::now();
    while hooked
        .lock()
        .expect("bodies")
        .iter()
        .filter(|b| b["status"] == "requested")
        .count()
        < 1
    {
        assert!(began.elapsed() < Duration::from_secs(60), "the webhook never delivered");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The NATS partner has its referrals, as requested, before the withdrawal.
    let began = Instant::now();
    let before = loop {
        let before = runtime.block_on(feed(&client, nats_org));
        let delivered = referrals.iter().filter(|(org, _)| org == nats_org).all(|(_, id)| {
            before
                .get(id)
                .is_some_and(|m| m.len() == 1 && m[0]["status"] == "requested")
        });
        if delivered {
            break before;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the NATS partner never got its referrals"
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    // The client withdraws consent.
    post(
        &format!("/v1/cases/{case}/consents/{consent}/withdraw"),
        "followup-e2e-withdraw",
        "{}",
    );
    let began = Instant::now();
    for (_, referral) in &referrals {
        loop {
            let status = get(&format!("/v1/referrals/{referral}"))["status"].clone();
            if status == "cancelled" {
                break;
            }
            assert!(began.elapsed() < Duration::from_secs(60), "{referral} is {status}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let history = get(&format!("/v1/referrals/{}/history", referrals[0].1));
    assert!(history.to_string().contains("consent_withdrawn"), "{history}");

    // The NATS partner's feed: each of its referrals once more, cancelled and to be redacted;
    // nothing else new.
    let began = Instant::now();
    let after = loop {
        let after = runtime.block_on(feed(&client, nats_org));
        let told = referrals.iter().filter(|(org, _)| org == nats_org).all(|(_, id)| {
            after
                .get(id)
                .and_then(|m| m.last())
                .is_some_and(|m| m["redact"] == true)
        });
        if told {
            break after;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the NATS partner was not told"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for (id, messages) in &after {
        let earlier = before.get(id).cloned().unwrap_or_default();
        let ours = referrals.iter().any(|(_, r)| r == id);
        if ours {
            assert_eq!(messages.len(), earlier.len() + 1, "referral {id}: one new message");
            let last = messages.last().expect("a message");
            assert_eq!(
                (last["status"].as_str(), last["redact"].as_bool()),
                (Some("cancelled"), Some(true))
            );
        } else {
            // Other referrals may be marked overdue meanwhile (the demo's old ones are), but
            // none is cancelled or redacted by the withdrawal.
            let was = earlier.last().map(|m| (m["status"].clone(), m["redact"].clone()));
            for new in &messages[earlier.len()..] {
                assert_eq!(
                    Some((new["status"].clone(), new["redact"].clone())),
                    was,
                    "referral {id} changed"
                );
            }
        }
    }

    // The webhook partner: told by webhook, once.
    let (_, hook_referral) = referrals
        .iter()
        .find(|(org, _)| org == hook_org)
        .expect("one at the webhook org");
    let began = Instant::now();
    loop {
        let bodies = hooked.lock().expect("bodies").clone();
        let redacts: Vec<_> = bodies
            .iter()
            .filter(|b| b["referral_id"] == hook_referral.as_str() && b["redact"] == true)
            .collect();
        if !redacts.is_empty() {
            assert_eq!(redacts.len(), 1, "told once");
            assert_eq!(redacts[0]["status"], "cancelled");
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the webhook partner was not told: {bodies:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // /readyz reports the follow-up service.
    let (status, _, ready) = http(api, "GET", "/readyz", &[], "");
    assert_eq!(status, 200, "{ready}");
    assert!(
        json(&ready)["services"]["followup"]["position"].as_u64().is_some(),
        "{ready}"
    );
    assert!(up.interrupt().success());
}

#[test]
fn wasl_up_mails_the_focal_point_of_a_new_referral_without_personal_data() {
    let sink = wasl_testkit::smtp::SmtpSink::start().expect("an SMTP sink");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (api, nats) = (free_port(), free_port());
    let (up, banner) = Up::start(&data, api, nats, &["--demo", "--smtp-url", &sink.url()]);
    let password = banner
        .split("Password for all: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the demo password")
        .to_owned();
    settled_log_position(api);

    // A caseworker opens a case with planted personal data.
    let (cookie, csrf) = sign_in(api, "demo.caseworker.erbil", &password);
    let post = |path: &str, key: &str, body: &str| {
        let (status, _, answer) = http(
            api,
            "POST",
            path,
            &[
                ("cookie", &cookie),
                ("x-csrf-token", &csrf),
                ("content-type", "application/json"),
                ("idempotency-key", key),
            ],
            body,
        );
        assert!(status == 200 || status == 201, "POST {path}: {status} {answer}");
        json(&answer)
    };
    let case = post(
        "/v1/cases",
        "mail-e2e-case",
        r#"{"profile": {"survivor_code": "MRK-MAIL-0001", "sex": "female", "age_group": "25_59",
            "population_group": "idp", "nationality": "IQ", "governorate": "IQ-AR", "language": "ar",
            "vulnerabilities": []}, "personal": {"name": "MRK-Name-Zzyzx"}}"#,
    )["id"]
        .as_str()
        .expect("case id")
        .to_owned();
    post(&format!("/v1/cases/{case}/consents"), "mail-e2e-consent", "{}");
    let mut services: BTreeMap<String, String> = BTreeMap::new();
    for category in [
        "health",
        "psychosocial",
        "legal",
        "shelter",
        "civil_documentation",
        "cash",
        "livelihoods",
        "education",
        "child_protection",
    ] {
        let (_, _, page) = http(
            api,
            "GET",
            &format!("/v1/referrals/candidates?case_id={case}&category={category}"),
            &[("cookie", &cookie)],
            "",
        );
        for candidate in json(&page).as_array().into_iter().flatten() {
            services
                .entry(candidate["org_id"].as_str().expect("org").to_owned())
                .or_insert_with(|| candidate["service_id"].as_str().expect("service").to_owned());
        }
    }

    // The focal point of one of those organisations gives an address for notifications.
    let (focal, org, service) = [
        "medrelief",
        "unchildren",
        "protection",
        "legalaid",
        "safehouse",
        "ninewa",
        "basrah",
        "health.duhok",
        "social.anbar",
        "civil.kirkuk",
    ]
    .iter()
    .find_map(|name| {
        let session = sign_in(api, &format!("demo.focal.{name}"), &password);
        let (_, _, me) = http(api, "GET", "/v1/me", &[("cookie", &session.0)], "");
        let org = json(&me)["org"].as_str()?.to_owned();
        let service = services.get(&org)?.clone();
        Some((session, org, service))
    })
    .expect("a demo focal point whose organisation can take the case");
    let (status, _, answer) = http(
        api,
        "PUT",
        "/v1/me/notifications",
        &[
            ("cookie", &focal.0),
            ("x-csrf-token", &focal.1),
            ("content-type", "application/json"),
        ],
        r#"{"email": "focal-test@example.org", "enabled": true}"#,
    );
    assert!(status == 200 || status == 204, "{status} {answer}");

    let referral = post(
        "/v1/referrals",
        "mail-e2e-referral",
        &format!(r#"{{"case_id": "{case}", "to_org": "{org}", "service_id": "{service}", "priority": "urgent", "notes": "MRK-Notes-Secret"}}"#),
    )["id"]
        .as_str()
        .expect("referral id")
        .to_owned();

    let began = Instant::now();
    let mail = loop {
        if let Some(mail) = sink
            .messages()
            .into_iter()
            .find(|m| m.to.iter().any(|to| to == "focal-test@example.org") && m.text().contains(&referral))
        {
            break mail;
        }
        assert!(began.elapsed() < Duration::from_secs(60), "no mail for the focal point");
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = mail.text();
    assert!(
        text.contains(&format!("/v1/referrals/{referral}")),
        "a link to the referral"
    );
    assert!(!text.contains("MRK-"), "no personal data in the mail");
    assert!(up.interrupt().success());
}

/// `wasl followup policy` prints the defaults `docs/followup.md` lists, and the policy file of
/// its example works as written; a file with a mistake is refused, naming it.
#[test]
fn the_policy_command_prints_the_documented_defaults_and_takes_the_documented_file() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/followup.md"))
        .expect("docs/followup.md");
    let (ok, table, err) = crate::run(&["followup", "policy"]);
    assert!(ok, "{err}");
    let row = |table: &str, category: &str, priority: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| {
                let mut words = l.split_whitespace();
                words.next() == Some(category) && words.next() == Some(priority)
            })
            .unwrap_or_else(|| panic!("no row {category} {priority} in:\n{table}"))
            .split_whitespace()
            .skip(2)
            .map(str::to_owned)
            .collect()
    };
    // The defaults, row by row ("every category" in the docs: education stands for it).
    for (category, priority, windows) in [
        ("education", "emergency", ["1h", "4h", "12h", "24h"]),
        ("health", "emergency", ["1h", "2h", "4h", "24h"]),
        ("shelter", "emergency", ["1h", "2h", "4h", "24h"]),
        ("education", "urgent", ["8h", "24h", "72h", "72h"]),
        ("education", "routine", ["48h", "120h", "336h", "168h"]),
        ("legal", "routine", ["72h", "240h", "720h", "336h"]),
        ("civil_documentation", "routine", ["72h", "240h", "720h", "336h"]),
    ] {
        assert_eq!(row(&table, category, priority), windows, "{category} {priority}");
    }
    // The docs' table says the same.
    for line in [
        "| every category | emergency | 1 h | 4 h | 12 h | 24 h |",
        "| health, shelter | emergency | 1 h | **2 h** | **4 h** | 24 h |",
        "| every category | urgent | 8 h | 24 h | 72 h | 72 h |",
        "| every category | routine | 48 h | 120 h (5 days) | 336 h (14 days) | 168 h (7 days) |",
        "| legal, civil documentation | routine | 72 h | **240 h (10 days)** | **720 h (30 days)** | 336 h (14 days) |",
    ] {
        assert!(doc.contains(line), "docs/followup.md lists: {line}");
    }

    // The example file of the docs, as written.
    let example = doc
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a JSON example in docs/followup.md");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("policy.json");
    std::fs::write(&file, example).expect("write");
    let (ok, table, err) = crate::run(&["followup", "policy", "--policy", file.to_str().expect("path")]);
    assert!(ok, "the documented example is refused: {err}");
    assert_eq!(row(&table, "education", "routine"), ["48h", "120h", "336h", "168h"]);
    assert_eq!(row(&table, "health", "emergency"), ["1h", "2h", "4h", "24h"]);
    assert!(table.contains("cancelled as expired after 2 escalation(s)"), "{table}");

    std::fs::write(&file, r#"{"priorities": {"routine": {"progres": "3days"}}}"#).expect("write");
    let (ok, _, err) = crate::run(&["followup", "policy", "--policy", file.to_str().expect("path")]);
    assert!(!ok);
    assert!(err.contains("progres"), "the mistake is named: {err}");
}
