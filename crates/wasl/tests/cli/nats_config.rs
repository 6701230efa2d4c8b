//! `wasl nats-config` as an operator runs it: the organisations of the directory in the event
//! log each get a credential folder, a second run keeps every seed, and the server accepts the
//! configuration; with the services' `WASL_NATS_URL` and `WASL_NATS_NKEY` exported, the first run
//! still works.

use crate::run;
use std::collections::BTreeSet;
use std::path::Path;
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

/// Runs `wasl nats-config` with the services' NATS variables exported, as an operator who
/// loaded the deploy env files would: whether it succeeded, its stdout and its stderr.
fn nats_config_with_services_env(url: &str, seed: &Path, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wasl"))
        .arg("nats-config")
        .args(args)
        .env("WASL_NATS_URL", url)
        .env("WASL_NATS_NKEY", seed)
        .env_remove("WASL_NATS_CONFIG_DIR")
        .output()
        .expect("wasl runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_services_environment_the_first_run_creates_the_hub_seed_and_the_next_reads_the_directory_with_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("nats");
    let out_arg = out.to_str().expect("utf-8 path");
    let seed = out.join("hub.nk");
    let early = "0190b2c4-0000-7000-8000-0000000000e1";

    // First run: the server that will include auth.conf is not running yet, and the seed
    // WASL_NATS_NKEY names is the one this run writes.
    let nowhere = "nats://127.0.0.1:1";
    let (ok, stdout, stderr) = nats_config_with_services_env(
        nowhere,
        &seed,
        &["--out", out_arg, "--org", &format!("{early}=Test Early")],
    );
    assert!(
        ok,
        "the first run with WASL_NATS_URL and WASL_NATS_NKEY exported: {stderr}"
    );
    assert!(stdout.contains("the directory was not read"), "says why: {stdout}");
    assert!(
        !stdout.contains(nowhere),
        "never prints the URL (it may hold a password): {stdout}"
    );
    assert!(seed.exists() && out.join("auth.conf").exists());
    assert!(out.join("partners").join(early).join(format!("{early}.nk")).exists());

    // The server runs with that auth.conf and holds a directory the hub wrote.
    let mut generator = wasl_synth::Generator::new(wasl_synth::HistoryConfig::new(5, 12));
    let events: Vec<_> = generator.by_ref().collect();
    let orgs: Vec<String> = generator.organisations().keys().map(ToString::to_string).collect();
    let auth = std::fs::read_to_string(out.join("auth.conf")).expect("auth.conf");
    let server = NatsServer::builder().extra_config(auth).start().expect("nats-server");
    let hub_seed = std::fs::read_to_string(&seed).expect("hub.nk");
    let hub = async_nats::ConnectOptions::with_nkey(hub_seed.trim().to_owned())
        .connect(server.url().as_str())
        .await
        .expect("the hub connects with the new seed");
    let js = async_nats::jetstream::new(hub);
    let config = StoreConfig::default();
    wasl_store::provision::ensure_stream(&js, &config)
        .await
        .expect("event log");
    wasl_synth::publish(&js, &config, events).await.expect("published");

    // The same command again: it connects with the hub's seed and adds the directory.
    let (ok, stdout, stderr) = nats_config_with_services_env(&server.url(), &seed, &["--out", out_arg, "--org", early]);
    assert!(ok, "the second run: {stderr}");
    assert!(!stdout.contains("the directory was not read"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(&seed).expect("hub.nk"),
        hub_seed,
        "the hub's seed is kept"
    );
    for org in orgs.iter().map(String::as_str).chain([early]) {
        assert!(
            out.join("partners").join(org).join(format!("{org}.nk")).exists(),
            "{org} has a credential"
        );
    }
}

#[test]
fn a_missing_seed_that_is_not_the_one_to_create_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("nats");
    let out_arg = out.to_str().expect("utf-8 path");

    // A seed somewhere else that is not there: a mistake, named.
    let elsewhere = dir.path().join("secrets").join("hub_nk");
    let (ok, _, stderr) = nats_config_with_services_env("nats://127.0.0.1:1", &elsewhere, &["--out", out_arg]);
    assert!(!ok);
    assert!(stderr.contains(elsewhere.to_str().expect("utf-8")), "{stderr}");
    assert!(!out.exists(), "nothing written");

    // The hub's seed gone from a folder that already has an auth.conf: regenerating now would
    // leave the directory's organisations out, so it is refused and auth.conf stays as it was.
    let (ok, _, stderr) = run(&["nats-config", "--out", out_arg]);
    assert!(ok, "{stderr}");
    let auth = std::fs::read_to_string(out.join("auth.conf")).expect("auth.conf");
    std::fs::remove_file(out.join("hub.nk")).expect("remove hub.nk");
    let (ok, _, stderr) = nats_config_with_services_env("nats://127.0.0.1:1", &out.join("hub.nk"), &["--out", out_arg]);
    assert!(!ok, "refused");
    assert!(stderr.contains("auth.conf"), "{stderr}");
    assert_eq!(std::fs::read_to_string(out.join("auth.conf")).expect("auth.conf"), auth);
    assert!(!out.join("hub.nk").exists());
}
