//! `wasl nats-config` as an operator runs it: the organisations of the directory in the event
//! log each get a credential folder, a second run keeps every seed, and the server accepts the
//! configuration.

use crate::run;
use std::collections::BTreeSet;
use wasl_store::StoreConfig;
use wasl_testkit::NatsServer;

/// The organisation ids of a synthetic network written to the event log.
async fn network(url: &str) -> BTreeSet<String> {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.expect("connect"));
    let config = StoreConfig::default();
    wasl_store::provision::ensure_stream(&js, &config)
        .await
        .expect("event log");
    let generator = wasl_synth::Generator::new(wasl_synth::HistoryConfig::new(7, 20));
    let events: Vec<_> = generator.collect();
    let orgs = events
        .iter()
        .filter_map(|e| match &e.event {
            wasl_events::DomainEvent::Organisation(id, _) => Some(id.to_string()),
            _ => None,
        })
        .collect();
    wasl_synth::publish(&js, &config, events).await.expect("published");
    orgs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_organisation_gets_a_credential_that_survives_regeneration() {
    let server = NatsServer::start().expect("nats-server");
    let orgs = network(&server.url()).await;
    assert!(orgs.len() >= 3, "the network has organisations");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("nats");
    let out_arg = out.to_str().expect("utf-8 path");
    let extra = "0190b2c4-0000-7000-8000-0000000000ee";
    let generate = || {
        let (ok, stdout, stderr) = run(&[
            "nats-config",
            "--nats-url",
            &server.url(),
            "--out",
            out_arg,
            "--org",
            &format!("{extra}=Test Extra Partner"),
        ]);
        assert!(ok, "wasl nats-config failed: {stderr}");
        stdout
    };
    let first = generate();
    let mut seeds = Vec::new();
    for org in orgs.iter().chain([&extra.to_owned()]) {
        let seed = out.join("partners").join(org).join(format!("{org}.nk"));
        let text = std::fs::read_to_string(&seed).unwrap_or_else(|_| panic!("a seed for {org}"));
        assert!(text.trim().starts_with("SU"), "an NKey user seed");
        seeds.push((seed, text));
        assert!(first.contains(org.as_str()), "{org} is listed");
    }
    assert!(first.contains("(new)"));
    let auth = std::fs::read_to_string(out.join("auth.conf")).expect("auth.conf");
    for org in &orgs {
        assert!(auth.contains(&format!("wasl.cmd.{org}.>")), "{org}'s command subjects");
    }

    // Again: nothing handed out is replaced.
    let second = generate();
    assert!(!second.contains("(new)"), "{second}");
    for (seed, text) in &seeds {
        assert_eq!(
            &std::fs::read_to_string(seed).expect("seed"),
            text,
            "{} kept",
            seed.display()
        );
    }

    // The server accepts it.
    let config = out.join("server.conf");
    std::fs::write(
        &config,
        "listen: \"127.0.0.1:-1\"\njetstream: enabled\ninclude ./auth.conf\n",
    )
    .expect("write");
    let binary = wasl_testkit::find_nats_server().expect("nats-server binary");
    let check = std::process::Command::new(&binary.path)
        .args(["-t", "-c"])
        .arg(&config)
        .output()
        .expect("nats-server -t");
    assert!(
        check.status.success(),
        "nats-server -t: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn without_organisations_only_the_hub_gets_a_credential_and_bad_ids_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().to_str().expect("utf-8");
    let (ok, stdout, stderr) = run(&["nats-config", "--out", out]);
    assert!(ok, "a first set-up before any partner: {stderr}");
    assert!(stdout.contains("no partner organisations yet"), "{stdout}");
    assert!(dir.path().join("hub.nk").exists() && dir.path().join("auth.conf").exists());
    assert!(
        !dir.path().join("partners").exists()
            || std::fs::read_dir(dir.path().join("partners"))
                .expect("dir")
                .next()
                .is_none()
    );
    let (ok, _, stderr) = run(&["nats-config", "--out", out, "--org", "nope"]);
    assert!(!ok);
    assert!(stderr.contains("not an organisation id"), "{stderr}");
}
