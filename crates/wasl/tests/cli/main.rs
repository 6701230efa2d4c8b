//! The `wasl` command as a user runs it.

mod api;
mod audit;
mod backup;
#[cfg(feature = "bench")]
mod bench_api;
#[cfg(feature = "bench")]
mod bench_dashboard;
#[cfg(feature = "bench")]
mod bench_followup;
#[cfg(feature = "bench")]
mod bench_partners;
#[cfg(feature = "bench")]
mod bench_projections;
#[cfg(feature = "bench")]
mod bench_signin;
mod cluster;
mod durability;
mod followup;
mod http;
mod nats_config;
mod observability;
mod partner;
mod projections;
mod up;
mod up_poison;

use std::process::Command;

/// Runs `wasl` with `args`: whether it succeeded, its stdout and its stderr.
fn run(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wasl"))
        .args(args)
        .output()
        .expect("wasl runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn wasl(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wasl"))
        .args(args)
        .output()
        .expect("wasl runs");
    (
        output.status.success(),
        String::from_utf8(output.stdout).expect("utf-8 output"),
    )
}

#[test]
fn lifecycle_lists_the_transitions_the_domain_enforces() {
    let (ok, out) = wasl(&["lifecycle"]);
    assert!(ok);
    let moves: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains("-->"))
        .collect();
    let arrows = moves.len();
    assert_eq!(
        arrows, 29,
        "the design allows 29 moves, counting entered-in-error from every other state"
    );
    assert!(out.contains(&format!("{:<16} --received--> received", "requested")));
    assert!(out.contains(&format!("{:<16} --resumed--> in_progress", "on_hold")));
    let from_to = |from: &str, action: &str| {
        moves
            .iter()
            .any(|l| l.trim_start().starts_with(from) && l.contains(action))
    };
    assert!(
        !from_to("on_hold", "--started-->"),
        "on-hold resumes, it does not start again"
    );
    assert!(!from_to("rejected", "--accepted-->"));
}

#[test]
fn places_lists_every_governorate_with_its_districts() {
    let (ok, out) = wasl(&["places"]);
    assert!(ok);
    assert!(out.contains("IQ-NI   Ninawa / نينوى"));
    assert!(out.contains("mosul (Mosul)"));
    assert!(out.contains("IQ-HAL"));
}

#[test]
fn an_unknown_subcommand_fails_with_usage() {
    let output = Command::new(env!("CARGO_BIN_EXE_wasl"))
        .arg("launch")
        .output()
        .expect("wasl runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("Usage"));
}

#[cfg(feature = "bench")]
#[test]
fn bench_store_help_lists_its_options_and_refuses_contradictions() {
    let (ok, out) = wasl(&["bench", "store", "--help"]);
    assert!(ok);
    for option in [
        "--messages",
        "--aggregates",
        "--in-flight",
        "--sync-always",
        "--nats-url",
        "--json",
    ] {
        assert!(out.contains(option), "{option} missing from:\n{out}");
    }
    let (ok, _) = wasl(&["bench", "store", "--sync-always", "--nats-url", "nats://127.0.0.1:1"]);
    assert!(!ok, "--sync-always cannot change a server given by URL");
}

mod retention {
    //! `wasl retention` against a real nats-server: a dry run lists, --apply erases.

    use super::run;
    use wasl_domain::case::{Case, CaseCommand, CloseCase, OpenCase};
    use wasl_domain::catalogue::{CloseCode, Reason};
    use wasl_domain::ids::{CaseId, CommandId, OrgId, UserId, uuid_v7_from_parts};
    use wasl_domain::pii::PersonalData;
    use wasl_domain::testing::{actor, profile};
    use wasl_domain::time::Timestamp;
    use wasl_domain::{Context, Role};
    use wasl_store::{CommandMeta, EventStore, StoreConfig};
    use wasl_testkit::NatsServer;
    use wasl_vault::{KeyState, LocalMasterKey, PiiField, Vault, VaultConfig};

    fn id<T: TryFrom<uuid::Uuid, Error = wasl_domain::ValidationError>>(n: u8) -> T {
        T::try_from(uuid_v7_from_parts(1_600_000_000_000, [n; 10])).expect("v7")
    }

    const MASTER_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    /// A case opened and closed in 2020 (long past two years), with a sealed name.
    async fn closed_case(url: &str) -> CaseId {
        let client = async_nats::connect(url).await.expect("connect");
        let store = EventStore::open(client.clone(), StoreConfig::default())
            .await
            .expect("store");
        let master = LocalMasterKey::from_hex("local-1", MASTER_HEX).expect("key");
        let vault = Vault::connect(&async_nats::jetstream::new(client), master, &VaultConfig::default())
            .await
            .expect("vault");
        let case: CaseId = id(10);
        let actor = actor(id(20), id(30), Role::Caseworker);
        let at = |n: u8, ms: i64| CommandMeta {
            command_id: id::<CommandId>(n),
            context: Context {
                now: Timestamp::from_unix_millis(ms),
                actor: actor.clone(),
            },
            traceparent: None,
        };
        let open_meta = at(40, 1_600_000_000_000);
        let event = wasl_store::event_id(open_meta.command_id, open_meta.context.now, 0);
        let name = vault
            .seal(case, event, PiiField::NAME, "MARKER-CLI-NAME")
            .await
            .expect("sealed");
        let open = CaseCommand::Open(OpenCase {
            case_id: case,
            caseworker: None,
            profile: profile("TEST-0099"),
            personal: PersonalData {
                name: Some(name),
                ..PersonalData::default()
            },
        });
        store.execute::<Case>(case, &open, &open_meta).await.expect("opened");
        let close = CaseCommand::Close(CloseCase {
            reason: Reason::coded(CloseCode::NeedsMet),
            open_referrals: vec![],
            cancel_open_referrals: false,
        });
        store
            .execute::<Case>(case, &close, &at(41, 1_600_000_100_000))
            .await
            .expect("closed");
        case
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dry_run_lists_the_case_and_apply_erases_it() {
        let server = NatsServer::start().expect("nats-server");
        let url = server.url();
        let case = closed_case(&url).await;

        let (ok, out, err) = run(&["retention", "--nats-url", &url]);
        assert!(ok, "{err}");
        assert!(out.starts_with("1 case(s)"), "{out}");
        assert!(out.contains(&case.to_string()) && out.contains("dry run"), "{out}");
        assert!(!out.contains("erased\n"), "a dry run erases nothing");

        let dir = std::env::temp_dir().join(format!("wasl-cli-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key_file = dir.join("master.hex");
        std::fs::write(&key_file, MASTER_HEX).expect("key file");
        let org: OrgId = id(50);
        let user: UserId = id(51);
        let (ok, out, err) = run(&[
            "retention",
            "--nats-url",
            &url,
            "--apply",
            "--master-key-file",
            key_file.to_str().expect("utf-8 path"),
            "--system-org",
            &org.to_string(),
            "--system-user",
            &user.to_string(),
        ]);
        std::fs::remove_dir_all(&dir).ok();
        assert!(ok, "{err}");
        assert!(out.contains(&format!("case {case}")) && out.contains("erased"), "{out}");

        let client = async_nats::connect(url.as_str()).await.expect("connect");
        let master = LocalMasterKey::from_hex("local-1", MASTER_HEX).expect("key");
        let vault = Vault::connect(&async_nats::jetstream::new(client), master, &VaultConfig::default())
            .await
            .expect("vault");
        assert!(matches!(vault.key(case).await.expect("state"), KeyState::Erased));
        let (ok, out, _) = run(&["retention", "--nats-url", &url]);
        assert!(ok && out.starts_with("0 case(s)"), "{out}");
    }

    #[tokio::test]
    async fn a_dry_run_on_a_server_without_an_event_log_lists_nothing_and_creates_nothing() {
        let server = NatsServer::start().expect("nats-server");
        let (ok, out, err) = run(&["retention", "--nats-url", &server.url()]);
        assert!(ok, "{err}");
        assert!(out.starts_with("0 case(s)"), "{out}");
        let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.expect("connect"));
        assert!(
            js.get_stream("WASL_EVENTS").await.is_err(),
            "a dry run must not create the event log"
        );
    }

    #[test]
    fn apply_without_a_master_key_is_refused_before_anything_is_touched() {
        let (ok, _, err) = run(&["retention", "--nats-url", "nats://127.0.0.1:1", "--apply"]);
        assert!(!ok);
        assert!(err.contains("--master-key-file"), "{err}");
    }
}
