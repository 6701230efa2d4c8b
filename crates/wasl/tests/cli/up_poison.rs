//! Nothing a stranger puts on a subject stops `wasl up`: poison of every kind on every subject
//! family its services read — the event log (cases, referrals, organisations), a partner feed,
//! partner commands, the accounts and the audit — is parked or answered and reported, the rest
//! is served, and an operator can see it and repair it from the command line.

use crate::http::http;
use crate::up::{Up, free_port, settled_log_position, sign_in};
use std::path::Path;
use wasl_domain::ids::{OrgId, ReferralId};
use wasl_store::testing::Poison;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("JSON")
}

/// Gives consent on a case as the caseworker: the status and the problem type, if any.
fn give_consent(api: u16, session: &(String, String), case: &str, key: &str) -> (u16, String) {
    let (status, _, body) = http(
        api,
        "POST",
        &format!("/v1/cases/{case}/consents"),
        &[
            ("cookie", &session.0),
            ("x-csrf-token", &session.1),
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ],
        "{}",
    );
    let kind = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, kind)
}

/// The demo password from the banner.
fn password(banner: &str) -> String {
    banner
        .split("Password for all: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the demo password is printed")
        .to_owned()
}

#[test]
fn poison_on_every_subject_family_is_parked_reported_and_repairable_while_up_serves() {
    let runtime = crate::durability::runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (api, nats) = (free_port(), free_port());
    let url = format!("nats://127.0.0.1:{nats}");
    let (up, banner) = Up::start(&data, api, nats, &["--demo"]);
    // wasl up's NATS takes its services' key only; a tool that writes there holds it.
    let key = crate::up::seed(&data).to_str().expect("utf-8").to_owned();
    let password = password(&banner);
    settled_log_position(api);
    let session = sign_in(api, "demo.caseworker.erbil", &password);
    let (status, _, page) = http(api, "GET", "/v1/cases", &[("cookie", &session.0)], "");
    assert_eq!(status, 200, "{page}");
    let cases: Vec<String> = json(&page)["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|c| c["status"] == "open")
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect();
    assert!(cases.len() >= 2, "the demo caseworker has open cases");
    let (victim, bystander) = (&cases[0], &cases[1]);

    let client = runtime.block_on(crate::up::nats_client(&url, Some(Path::new(&key))));
    let partner: OrgId = runtime.block_on(async {
        let js = async_nats::jetstream::new(client.clone());
        let mut names = js.stream_names();
        let mut found = None;
        while let Some(Ok(name)) = futures_util::StreamExt::next(&mut names).await {
            if let Some(org) = name.strip_prefix("WASL_OUT_") {
                found = Some(org.to_owned());
                break;
            }
        }
        let found = found.expect("a partner feed");
        OrgId::from_uuid(uuid::Uuid::parse_str(&found).expect("a uuid")).expect("an org id")
    });

    // Poison on the event log: a case the caseworker works on, a referral, an organisation.
    let event_subjects = [
        format!("wasl.evt.case.{victim}"),
        format!("wasl.evt.referral.{}", uuid::Uuid::now_v7()),
        format!("wasl.evt.org.{}", uuid::Uuid::now_v7()),
    ];
    let mut in_log = Vec::new();
    let mut on_victim = Vec::new();
    runtime.block_on(async {
        for subject in &event_subjects {
            for kind in Poison::ALL {
                let at = kind.publish(&client, subject).await;
                in_log.push(at);
                if subject.contains(victim.as_str()) {
                    on_victim.push(at);
                }
            }
        }
        // On a partner feed, the accounts and the audit: the same bytes, with and without headers.
        let js = async_nats::jetstream::new(client.clone());
        let fresh: ReferralId = uuid::Uuid::now_v7().try_into().expect("an id");
        for subject in [
            format!("wasl.out.{partner}.referral.{fresh}"),
            "wasl.acct.user.test-poison".to_owned(),
            format!("wasl.audit.{}", uuid::Uuid::now_v7()),
        ] {
            for kind in [Poison::GarbageWithHeaders, Poison::GarbageWithoutHeaders] {
                let (headers, payload) = kind.message(&subject);
                let ack = match headers {
                    Some(headers) => js.publish_with_headers(subject.clone(), headers, payload).await,
                    None => js.publish(subject.clone(), payload).await,
                };
                // A subject no stream holds is simply not stored; what a stream takes must not
                // hurt its reader.
                if let Ok(ack) = ack {
                    let _ = ack.await;
                }
            }
        }
        // Partner commands: garbage as a request is answered, not fatal.
        let seed = std::fs::read_to_string(&key).expect("seed");
        let as_partner = async_nats::ConnectOptions::with_nkey(seed.trim().to_owned())
            .custom_inbox_prefix(wasl_events::partner::inbox_prefix(partner))
            .connect(url.as_str())
            .await
            .expect("connect as the partner");
        let reply = as_partner
            .request(
                format!("wasl.cmd.{partner}.referral.{fresh}.accept"),
                "\u{0}garbage".into(),
            )
            .await;
        assert!(reply.is_ok(), "a garbage partner command gets an answer: {reply:?}");
    });

    // Everything keeps running and the rest is served; the router reports what it parked.
    let log_end = settled_log_position(api);
    let began = std::time::Instant::now();
    loop {
        let (status, _, ready) = http(api, "GET", "/readyz", &[], "");
        let ready = json(&ready);
        assert_eq!(status, 200, "ready all along: {ready}");
        // The follow-up service marks the demo's old referrals overdue meanwhile: the log grows.
        if ready["services"]["router"]["position"] == ready["log_position"]
            && ready["log_position"].as_u64() >= Some(log_end)
            && ready["services"]["router"]["parked"] == in_log.len()
        {
            break;
        }
        assert!(began.elapsed() < std::time::Duration::from_secs(60), "{ready}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(give_consent(api, &session, bystander, "poison-bystander-1").0, 201);

    // The case with poison in its history refuses commands with a clear 503.
    let (status, kind) = give_consent(api, &session, victim, "poison-victim-1");
    assert_eq!((status, kind.as_str()), (503, "urn:wasl:problem:unreadable-history"));

    // The operator sees it…
    let (ok, parked, err) = crate::run(&["router", "parked", "--nats-url", &url, "--nats-nkey", &key]);
    assert!(ok, "{err}");
    assert!(
        parked.starts_with(&format!("{0} parked event(s), {0} not resolved", in_log.len())),
        "{parked}"
    );
    let (ok, shown, err) = crate::run(&[
        "log",
        "show",
        "--seq",
        &on_victim[0].to_string(),
        "--nats-url",
        &url,
        "--nats-nkey",
        &key,
    ]);
    assert!(ok, "{err}");
    assert!(
        shown.contains(&format!("wasl.evt.case.{victim}")) && shown.contains("readable no"),
        "{shown}"
    );
    // …cannot skip a real event…
    let (ok, _, err) = crate::run(&[
        "log",
        "skip",
        "--seq",
        "1",
        "--reason",
        "test",
        "--nats-url",
        &url,
        "--nats-nkey",
        &key,
    ]);
    assert!(!ok && err.contains("readable Wasl event"), "{err}");
    // …and skips the poison on the case, with a reason.
    for seq in &on_victim {
        let (ok, _, err) = crate::run(&[
            "log",
            "skip",
            "--seq",
            &seq.to_string(),
            "--reason",
            "test: stray bytes from a broken tool",
            "--nats-url",
            &url,
            "--nats-nkey",
            &key,
        ]);
        assert!(ok, "{err}");
    }
    assert_eq!(give_consent(api, &session, victim, "poison-victim-2").0, 201);
    let (ok, skipped, _) = crate::run(&["log", "skipped", "--nats-url", &url, "--nats-nkey", &key]);
    assert!(
        ok && skipped.starts_with(&format!("{} skipped", on_victim.len())),
        "{skipped}"
    );
    let (_, parked, _) = crate::run(&["router", "parked", "--nats-url", &url, "--nats-nkey", &key]);
    assert!(
        parked.contains(&format!("{} not resolved", in_log.len() - on_victim.len())),
        "{parked}"
    );
    let database = format!("sqlite:{}", data.join("wasl.db").display());
    let (ok, retried, err) = crate::run(&[
        "projections",
        "retry",
        "cases",
        "--nats-url",
        &url,
        "--nats-nkey",
        &key,
        "--database-url",
        &database,
    ]);
    assert!(ok, "{err}");
    assert!(retried.contains("0 still parked"), "{retried}");

    // And wasl up starts again over all of it.
    assert!(up.interrupt().success());
    let (up, _) = Up::start(&data, api, nats, &[]);
    assert!(settled_log_position(api) >= log_end);
    assert!(up.interrupt().success());
}
