//! Nothing acknowledged is lost, as a field office lives with `wasl up`: killed again and again
//! under load (`wasl up` alone, its nats-server alone, both at once), started twice on the same
//! data, and a power cut simulated by copying the store as it is on disk at one instant.

use crate::up::{Up, free_port, nats_client, seed};
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasl_domain::Role;
use wasl_domain::directory::{DisplayName, OrgKind, Organisation, OrganisationCommand};
use wasl_domain::ids::{CommandId, OrgId};
use wasl_domain::testing::{at, ctx, fresh};
use wasl_store::testing::meta;
use wasl_store::{EventStore, StoreConfig};

/// A runtime for a plain `#[test]` that talks to NATS beside a `wasl up` process.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// What a load run sent and what was acknowledged.
#[derive(Default)]
struct Ledger {
    sent: HashSet<CommandId>,
    acknowledged: HashSet<CommandId>,
}

/// Registers organisations (one event per command, a new aggregate each) with `workers`
/// commands in flight until `stop`; records every command sent and every one acknowledged.
async fn load(url: String, seed: Option<PathBuf>, workers: usize, stop: Arc<AtomicBool>, ledger: Arc<Mutex<Ledger>>) {
    let mut options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(2));
    if let Some(seed) = seed {
        options = options.nkey(std::fs::read_to_string(seed).expect("seed").trim().to_owned());
    }
    let Ok(client) = options.connect(url.as_str()).await else {
        return;
    };
    // Short time-outs: a command in flight when its server dies gives up (its outcome unknown,
    // so neither counted lost nor acknowledged) instead of waiting out the production retries.
    let config = StoreConfig {
        request_timeout: Duration::from_millis(500),
        max_unsettled_retries: 1,
        ..StoreConfig::default()
    };
    let Ok(store) = EventStore::open(client, config).await else {
        return;
    };
    let store = Arc::new(store);
    let coordinator = at(ctx(fresh(), fresh(), Role::Coordinator), 0);
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (store, stop, ledger, coordinator) = (store.clone(), stop.clone(), ledger.clone(), coordinator.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let org: OrgId = fresh();
                let meta = meta(coordinator.clone());
                let register = OrganisationCommand::Register {
                    org_id: org,
                    name: DisplayName::parse("Durability Test Partner (test)").expect("name"),
                    kind: OrgKind::NationalNgo,
                };
                ledger.lock().expect("ledger").sent.insert(meta.command_id);
                match store.execute::<Organisation>(org, &register, &meta).await {
                    Ok(_) => {
                        ledger.lock().expect("ledger").acknowledged.insert(meta.command_id);
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Counts, every few milliseconds, the nats-servers running on one configuration file; keeps
/// the most seen at once.
struct ServerCensus {
    most: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn servers_on(config: &Path) -> Vec<u32> {
    let needle = config.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        let zombie = std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|s| s.contains(") Z "));
        if !zombie && cmdline.contains("nats-server") && cmdline.contains(&needle) {
            pids.push(pid);
        }
    }
    pids
}

impl ServerCensus {
    fn start(config: PathBuf) -> Self {
        let (most, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let thread = {
            let (most, stop) = (most.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    most.fetch_max(servers_on(&config).len(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Self {
            most,
            stop,
            thread: Some(thread),
        }
    }

    fn most(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.most.load(Ordering::Relaxed)
    }
}

/// The event log's last sequence.
async fn log_end(url: &str, seed: &Path) -> u64 {
    let client = nats_client(url, Some(seed)).await;
    let store = EventStore::open_existing(client, StoreConfig::default())
        .await
        .expect("store")
        .expect("an event log");
    store.stream().get_info().await.expect("info").state.last_sequence
}

/// How many events each command id has in the log.
async fn events_per_command(url: &str, seed: Option<&Path>) -> HashMap<CommandId, usize> {
    let client = nats_client(url, seed).await;
    let store = EventStore::open_existing(client, StoreConfig::default())
        .await
        .expect("store")
        .expect("an event log");
    let last = store.stream().get_info().await.expect("info").state.last_sequence;
    let mut feed = wasl_store::subscribe::subscribe(store.stream(), 1, None)
        .await
        .expect("subscribe");
    let mut out: HashMap<CommandId, usize> = HashMap::new();
    let mut seen = 0;
    while seen < last {
        let recorded = tokio::time::timeout(Duration::from_secs(30), feed.next())
            .await
            .expect("the log is read in time")
            .expect("more")
            .expect("a readable event");
        seen = recorded.sequence;
        *out.entry(recorded.event.meta.command_id).or_default() += 1;
    }
    out
}

fn kill_servers_on(config: &Path) {
    for pid in servers_on(config) {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
}

#[test]
fn killing_wasl_up_under_load_twenty_times_loses_and_doubles_nothing() {
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (api, nats) = (free_port(), free_port());
    let url = format!("nats://127.0.0.1:{nats}");
    std::fs::create_dir_all(data.join("nats")).expect("data");
    let config = data.canonicalize().expect("data").join("nats").join("nats.conf");
    let census = ServerCensus::start(config.clone());
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut log_ends = Vec::new();
    for round in 0..20 {
        let began = Instant::now();
        let (up, _) = Up::start(&data, api, nats, &[]);
        let started = began.elapsed();
        log_ends.push(runtime.block_on(log_end(&url, &seed(&data))));
        let stop = Arc::new(AtomicBool::new(false));
        let load = runtime.spawn(load(url.clone(), Some(seed(&data)), 8, stop.clone(), ledger.clone()));
        std::thread::sleep(Duration::from_millis(600));
        match round % 4 {
            // The nats-server alone: wasl up starts it again on the same store, load goes on.
            1 => {
                kill_servers_on(&config);
                let began = Instant::now();
                while servers_on(&config).is_empty() {
                    assert!(began.elapsed() < Duration::from_secs(30), "not restarted");
                    std::thread::sleep(Duration::from_millis(20));
                }
                std::thread::sleep(Duration::from_millis(600));
                up.kill();
            }
            // Both at once, as a power cut would.
            2 => {
                let pid = up.pid().to_string();
                let servers: Vec<String> = servers_on(&config).iter().map(u32::to_string).collect();
                let mut args = vec!["-KILL".to_owned(), pid];
                args.extend(servers);
                let _ = Command::new("kill").args(&args).status();
                up.kill();
            }
            // wasl up alone: its server must not outlive it.
            _ => up.kill(),
        }
        stop.store(true, Ordering::Relaxed);
        // A command whose server died answers within the store's time-outs: none hangs.
        runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(120), load).await })
            .expect("every command in flight answered within 2 minutes")
            .expect("the load task ends");
        eprintln!(
            "round {round}: up in {started:?}, round {:?}, {} acknowledged so far",
            began.elapsed(),
            ledger.lock().expect("ledger").acknowledged.len()
        );
    }
    let (up, _) = Up::start(&data, api, nats, &[]);
    log_ends.push(runtime.block_on(log_end(&url, &seed(&data))));
    let counts = runtime.block_on(events_per_command(&url, Some(&seed(&data))));
    let status = up.interrupt();
    let most = census.most();

    let ledger = ledger.lock().expect("ledger");
    assert!(
        ledger.acknowledged.len() > 500,
        "a real load: {} acknowledged",
        ledger.acknowledged.len()
    );
    let lost: Vec<_> = ledger
        .acknowledged
        .iter()
        .filter(|id| counts.get(id).copied().unwrap_or(0) == 0)
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged commands lost",
        lost.len(),
        ledger.acknowledged.len()
    );
    let doubled = counts.values().filter(|n| **n > 1).count();
    assert_eq!(doubled, 0, "a command's event stored twice");
    assert!(
        counts.keys().all(|id| ledger.sent.contains(id)),
        "the log holds only what was sent"
    );
    assert!(
        log_ends.windows(2).all(|w| w[0] <= w[1]),
        "the log's end never went backwards: {log_ends:?}"
    );
    assert_eq!(most, 1, "never a second nats-server on the store");
    assert!(status.success(), "a clean stop at the end: {status}");
    eprintln!(
        "killed 20 times: {} commands acknowledged, {} sent, 0 lost, 0 doubled; log ends {:?}",
        ledger.acknowledged.len(),
        ledger.sent.len(),
        log_ends
    );
}

#[test]
fn a_second_wasl_up_on_the_same_data_refuses_and_names_the_holder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (api, nats) = (free_port(), free_port());
    let (up, _) = Up::start(&data, api, nats, &[]);
    let config = data.join("nats").join("nats.conf").canonicalize().expect("config");

    // The same data directory, other ports.
    let second = Command::new(env!("CARGO_BIN_EXE_wasl"))
        .args(["up", "--data"])
        .arg(&data)
        .args([
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--nats-port",
            &free_port().to_string(),
        ])
        .env("WASL_LOG", "warn")
        .output()
        .expect("wasl up runs");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("is in use by"), "{err}");
    assert!(err.contains(&format!("process {}", up.pid())), "names wasl up: {err}");
    assert_eq!(servers_on(&config).len(), 1, "no second server was started");

    // Another data directory, the same NATS port.
    let other = dir.path().join("other");
    let third = Command::new(env!("CARGO_BIN_EXE_wasl"))
        .args(["up", "--data"])
        .arg(&other)
        .args([
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--nats-port",
            &nats.to_string(),
        ])
        .env("WASL_LOG", "warn")
        .output()
        .expect("wasl up runs");
    assert!(!third.status.success());
    let err = String::from_utf8_lossy(&third.stderr);
    assert!(
        err.contains(&format!("port {nats}")) && err.contains("nats-server"),
        "{err}"
    );
    assert!(up.interrupt().success());
}

/// A small ext4 file system in an image file on a loop device, mounted: the disk of a
/// simulated machine. Copying the image file while it is mounted gives what that disk holds at
/// that instant — what the file system wrote to the device — without what sits only in the
/// page cache above it, which a power cut loses.
struct LoopDisk {
    device: String,
    mount: PathBuf,
}

fn sh(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl LoopDisk {
    /// Attaches `image` (formatting it first when `format`) and mounts it at `mount`. Journal
    /// commits every 60 s, so that what was not fsynced in a short test run stays in the page
    /// cache and is not written out by a periodic commit.
    fn attach(image: &Path, mount: &Path, format: bool) -> Result<Self, String> {
        std::fs::create_dir_all(mount).map_err(|e| e.to_string())?;
        let device = sh("losetup", &["--find", "--show", &image.to_string_lossy()])?;
        let disk = Self {
            device,
            mount: mount.to_owned(),
        };
        if format {
            sh("mkfs.ext4", &["-q", "-F", &disk.device])?;
        }
        sh("mount", &["-o", "commit=60", &disk.device, &mount.to_string_lossy()])?;
        Ok(disk)
    }

    /// A new 256 MiB disk in `dir`.
    fn create(dir: &Path, name: &str) -> Result<(Self, PathBuf), String> {
        let image = dir.join(format!("{name}.img"));
        let file = std::fs::File::create(&image).map_err(|e| e.to_string())?;
        file.set_len(256 << 20).map_err(|e| e.to_string())?;
        let disk = Self::attach(&image, &dir.join(name), true)?;
        Ok((disk, image))
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let _ = sh("umount", &["-l", &self.mount.to_string_lossy()]);
        let _ = sh("losetup", &["-d", &self.device]);
    }
}

/// Whether this machine lets the test make loop disks (root, loop devices, ext4). In CI it must;
/// elsewhere the power-cut tests are skipped with a loud line.
fn loop_disks_available(dir: &Path) -> bool {
    match LoopDisk::create(dir, "probe") {
        Ok(_) => true,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the power-cut tests need loop devices and ext4 (root) in CI: {why}")
        }
        Err(why) => {
            eprintln!("!!! SKIPPED: the power-cut test needs loop devices and ext4 (run as root): {why} !!!");
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_cut_with_fsync_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    if !loop_disks_available(dir.path()) {
        return;
    }
    let (acknowledged, recovered) = power_cut(dir.path(), true).await;
    let lost = acknowledged.difference(&recovered).count();
    assert!(acknowledged.len() > 200, "a real load: {}", acknowledged.len());
    assert_eq!(lost, 0, "{lost} of {} acknowledged commands lost", acknowledged.len());
    eprintln!(
        "power cut with sync_interval: always: {} acknowledged, 0 lost",
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_power_cut_without_fsync_loses_acknowledged_commands() {
    // The control: the cut is real enough to lose what `--unsafe-no-fsync` acknowledged.
    let dir = tempfile::tempdir().expect("temp dir");
    if !loop_disks_available(dir.path()) {
        return;
    }
    let (acknowledged, recovered) = power_cut(dir.path(), false).await;
    let lost = acknowledged.difference(&recovered).count();
    assert!(acknowledged.len() > 200, "a real load: {}", acknowledged.len());
    assert!(
        lost > 0,
        "without fsync the cut lost nothing: the test would not see a missing fsync"
    );
    eprintln!(
        "power cut without fsync: {} acknowledged, {lost} lost",
        acknowledged.len()
    );
}

/// Runs the load against a nats-server configured as `wasl up` configures it (fsync per write,
/// or not), its store on a loop disk; freezes the server at one instant (SIGSTOP: no
/// acknowledgement can leave it after); copies the disk's image as the device holds it at that
/// instant — without the page cache above it, as a power cut would; kills the server; mounts the
/// copy (ext4 replays its journal) and starts a new server from it. Returns the commands
/// acknowledged before the instant and those the copy holds.
///
/// What it shows: that an acknowledged write had reached the block device (the file system
/// wrote it out because nats-server fsynced it), and that a server recovers it from there. What
/// it cannot show: what the physical disk does with a flush — a drive that acknowledges a cache
/// flush it did not carry out loses data whatever Wasl does; the image here sits in the host's
/// page cache, below the simulated disk.
async fn power_cut(dir: &Path, sync_always: bool) -> (HashSet<CommandId>, HashSet<CommandId>) {
    let (disk, image) = LoopDisk::create(dir, "live").expect("a loop disk");
    let binary = wasl_nats_server::find_nats_server()
        .expect("the pinned nats-server")
        .path;
    let lock = wasl_nats_server::StoreLock::acquire(&disk.mount, Duration::ZERO).expect("lock");
    let mut config = wasl_nats_server::ServerConfig::new(binary.clone(), disk.mount.join("nats"), free_port());
    config.sync_always = sync_always;
    let url = format!("nats://127.0.0.1:{}", config.port);
    let server = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || wasl_nats_server::Supervised::start(config, &lock).map(|s| (s, lock)))
            .await
            .expect("join")
            .expect("the server starts")
    };
    let pid = server.0.pid().expect("running");

    let (stop, ledger) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(Mutex::new(Ledger::default())),
    );
    let load_task = tokio::spawn(load(url, None, 8, stop.clone(), ledger.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The instant of the power cut.
    Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .expect("kill -STOP");
    let acknowledged = ledger.lock().expect("ledger").acknowledged.clone();
    let snapshot = dir.join("after-the-cut.img");
    sh(
        "cp",
        &["--sparse=always", &image.to_string_lossy(), &snapshot.to_string_lossy()],
    )
    .expect("copy the disk");
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill -KILL");
    stop.store(true, Ordering::Relaxed);
    let _ = load_task.await;
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .expect("stopped");
    drop(disk);

    // The machine comes back: the disk as it was at the cut.
    let disk = LoopDisk::attach(&snapshot, &dir.join("after"), false).expect("mount the copy");
    let lock = wasl_nats_server::StoreLock::acquire(&disk.mount, Duration::ZERO).expect("lock the copy");
    let mut config = wasl_nats_server::ServerConfig::new(binary, disk.mount.join("nats"), free_port());
    config.sync_always = sync_always;
    let url = format!("nats://127.0.0.1:{}", config.port);
    let restored =
        tokio::task::spawn_blocking(move || wasl_nats_server::Supervised::start(config, &lock).map(|s| (s, lock)))
            .await
            .expect("join")
            .expect("a server starts from the copy");
    let recovered = recovered_commands(&url).await;
    tokio::task::spawn_blocking(move || drop(restored))
        .await
        .expect("stopped");
    drop(disk);
    (acknowledged, recovered)
}

/// The command ids in the log at `url` (none when the log itself was lost).
async fn recovered_commands(url: &str) -> HashSet<CommandId> {
    let client = nats_client(url, None).await;
    match EventStore::open_existing(client, StoreConfig::default()).await {
        Ok(Some(_)) => events_per_command(url, None).await.into_keys().collect(),
        _ => HashSet::new(),
    }
}

/// Registers organisations for a moment against the NATS at `url`.
fn some_load(runtime: &tokio::runtime::Runtime, url: &str, seed: &Path) -> usize {
    let (stop, ledger) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(Mutex::new(Ledger::default())),
    );
    let task = runtime.spawn(load(
        url.to_owned(),
        Some(seed.to_owned()),
        4,
        stop.clone(),
        ledger.clone(),
    ));
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    runtime.block_on(task).expect("load");
    let acknowledged = ledger.lock().expect("ledger").acknowledged.len();
    assert!(acknowledged > 0);
    acknowledged
}

/// `/readyz`'s status and body.
fn readyz(api: u16) -> (u16, serde_json::Value) {
    let (status, _, body) = crate::http::http(api, "GET", "/readyz", &[], "");
    (status, serde_json::from_str(&body).expect("JSON"))
}

#[test]
fn an_older_backup_restored_under_live_read_models_stops_the_projector_until_rebuilt() {
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (api, nats) = (free_port(), free_port());
    let url = format!("nats://127.0.0.1:{nats}");
    let (up, _) = Up::start(&data, api, nats, &[]);
    let key = seed(&data);
    let key_arg = key.to_str().expect("utf-8").to_owned();
    some_load(&runtime, &url, &key);
    let older = crate::up::settled_log_position(api);
    let backup = dir.path().join("backup");
    let (ok, _, err) = crate::run(&[
        "backup",
        backup.to_str().expect("utf-8"),
        "--nats-url",
        &url,
        "--nats-nkey",
        &key_arg,
    ]);
    assert!(ok, "{err}");
    some_load(&runtime, &url, &key);
    let newer = crate::up::settled_log_position(api);
    assert!(newer > older);
    assert!(up.interrupt().success());

    // The store is lost and the older backup restored into a fresh one; the read models
    // (wasl.db) stay as they were, at the newer position.
    std::fs::remove_dir_all(data.join("nats").join("store")).expect("remove the store");
    {
        let lock = wasl_nats_server::StoreLock::acquire(&data, Duration::ZERO).expect("lock");
        let config = wasl_nats_server::ServerConfig::new(
            wasl_nats_server::find_nats_server().expect("nats-server").path,
            data.join("nats"),
            nats,
        );
        let server = wasl_nats_server::Supervised::start(config, &lock).expect("a bare server on the store");
        let (ok, _, err) = crate::run(&[
            "restore",
            backup.to_str().expect("utf-8"),
            "--nats-url",
            &url,
            "--nats-nkey",
            &key_arg,
        ]);
        assert!(ok, "{err}");
        server.stop();
    }

    let (up, _) = Up::start_unready(&data, api, nats);
    let began = Instant::now();
    let detail = loop {
        let (status, body) = readyz(api);
        assert_eq!(
            status, 503,
            "never ready while the read models are ahead of the log: {body}"
        );
        let detail = body["detail"].as_str().unwrap_or_default().to_owned();
        if detail.contains("stopped projecting") {
            break detail;
        }
        assert!(began.elapsed() < Duration::from_secs(60), "{body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(detail.contains(&format!("ends at sequence {older}")), "{detail}");

    let database = format!("sqlite:{}", data.join("wasl.db").display());
    let (ok, status, err) = crate::run(&[
        "projections",
        "status",
        "--nats-url",
        &url,
        "--nats-nkey",
        &key_arg,
        "--database-url",
        &database,
    ]);
    assert!(ok, "{err}");
    assert!(status.contains("STOPPED"), "{status}");
    assert!(
        status.contains("wasl projections rebuild"),
        "says how to recover: {status}"
    );

    // The operator accepts the log as it is: rebuild the read models, and have the follow-up
    // service (stopped too) derive its deadlines again; wasl up is ready again by itself.
    let (ok, _, err) = crate::run(&[
        "projections",
        "rebuild",
        "--nats-url",
        &url,
        "--nats-nkey",
        &key_arg,
        "--database-url",
        &database,
    ]);
    assert!(ok, "{err}");
    let (status, body) = readyz(api);
    assert_eq!(
        status, 503,
        "the follow-up service still waits for the operator: {body}"
    );
    assert!(
        body["detail"].as_str().unwrap_or_default().starts_with("followup:"),
        "{body}"
    );
    let (ok, _, err) = crate::run(&["followup", "reset", "--database-url", &database]);
    assert!(ok, "{err}");
    let began = Instant::now();
    while readyz(api).0 != 200 {
        assert!(began.elapsed() < Duration::from_secs(60), "{:?}", readyz(api));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(crate::up::settled_log_position(api), older);
    // New commands are projected again.
    some_load(&runtime, &url, &key);
    assert!(crate::up::settled_log_position(api) > older);
    assert!(up.interrupt().success());
}
