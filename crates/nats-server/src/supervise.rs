//! One supervised nats-server: started from a thread of its own with a parent-death signal and
//! the store's lock, checked to be the server it started, restarted when it dies.

use crate::config::{NatsConfig, server_name};
use crate::procfs::holders_of_port;
use crate::{Error, StoreLock};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The nats-server binary ([`crate::find_nats_server`]).
    pub binary: PathBuf,
    /// Its directory: `nats.conf`, `nats.log` and the JetStream store `store/` go here.
    pub dir: PathBuf,
    /// The client port, on 127.0.0.1 only.
    pub port: u16,
    /// Fsync every write before acknowledging it (`sync_interval: always`). Turning it off
    /// loses acknowledged writes on a power cut.
    pub sync_always: bool,
    /// How long a start may take until the server answers.
    pub ready_timeout: Duration,
    /// The public NKeys of the only users who may connect (see [`crate::NatsConfig::nkey_users`]).
    pub nkey_users: Vec<String>,
}

impl ServerConfig {
    /// Durable settings for `binary` in `dir` on `port`.
    pub fn new(binary: PathBuf, dir: PathBuf, port: u16) -> Self {
        Self {
            binary,
            dir,
            port,
            sync_always: true,
            ready_timeout: Duration::from_secs(30),
            nkey_users: Vec::new(),
        }
    }

    /// The configuration file the server reads.
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("nats.conf")
    }

    /// The server's log.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("nats.log")
    }

    /// The JetStream store.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.join("store")
    }

    /// The configuration for a start under `server_name`.
    fn render(&self, server_name: &str) -> String {
        let mut config = NatsConfig::new("`wasl up`", server_name, self.port, self.store_dir());
        config.sync_always = self.sync_always;
        config.nkey_users.clone_from(&self.nkey_users);
        config.render()
    }
}

/// A nats-server under supervision. Dropping it (or [`Supervised::stop`]) stops the server.
#[derive(Debug)]
pub struct Supervised {
    url: String,
    pid: Arc<AtomicU32>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Supervised {
    /// Starts the server under `lock` (the lock of the data directory that holds `config.dir`)
    /// and returns once it answers with the name it was given. Refuses when something else
    /// listens on the port. From then on a thread restarts it whenever it dies, after a pause
    /// that grows while it keeps dying.
    pub fn start(config: ServerConfig, lock: &StoreLock) -> Result<Self, Error> {
        fs::create_dir_all(&config.dir).map_err(Error::io(format!("cannot create {}", config.dir.display())))?;
        // A second handle on the same open file: the server inherits it, and with it the lock.
        let lock = File::from(
            lock.as_fd()
                .try_clone_to_owned()
                .map_err(Error::io("cannot share the data directory's lock"))?,
        );
        let url = format!("nats://127.0.0.1:{}", config.port);
        let pid = Arc::new(AtomicU32::new(0));
        let (stop, stopped) = mpsc::channel();
        let (ready, first_start) = mpsc::sync_channel(1);
        let thread = {
            let pid = pid.clone();
            std::thread::Builder::new()
                .name("nats-server".to_owned())
                // This thread starts every server: the parent-death signal is tied to it, so it
                // lives exactly as long as the supervision.
                .spawn(move || supervise(&config, &lock, &pid, &stopped, ready))
                .map_err(Error::io("cannot start the supervising thread"))?
        };
        match first_start.recv() {
            Ok(Ok(())) => Ok(Self {
                url,
                pid,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Error::Start {
                    reason: "the supervising thread ended".to_owned(),
                })
            }
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The running server's process id (`None` between a death and the restart).
    pub fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::SeqCst)).filter(|p| *p != 0)
    }

    /// Stops the server (SIGTERM, then SIGKILL after 30 s) and waits until it has exited.
    /// Blocks: call it from a blocking context.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The supervising thread: start, watch, restart, until told to stop (or its handle is gone).
fn supervise(
    config: &ServerConfig,
    lock: &File,
    pid: &AtomicU32,
    stop: &mpsc::Receiver<()>,
    ready: mpsc::SyncSender<Result<(), Error>>,
) {
    let mut first = Some(ready);
    let mut failures: u32 = 0;
    loop {
        match start_once(config, lock.as_raw_fd()) {
            Ok(mut child) => {
                // Known before anyone is told it runs.
                pid.store(child.id(), Ordering::SeqCst);
                if let Some(first) = first.take() {
                    let _ = first.send(Ok(()));
                } else {
                    tracing::warn!(pid = child.id(), "nats-server started again on the same store");
                }
                let began = Instant::now();
                let status = loop {
                    match stop.recv_timeout(Duration::from_millis(100)) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                            terminate(&mut child);
                            pid.store(0, Ordering::SeqCst);
                            return;
                        }
                    }
                    if let Ok(Some(status)) = child.try_wait() {
                        break status;
                    }
                };
                pid.store(0, Ordering::SeqCst);
                tracing::error!(%status, log = %config.log_file().display(), "nats-server exited; starting it again");
                failures = if began.elapsed() > Duration::from_secs(30) {
                    1
                } else {
                    failures + 1
                };
            }
            Err(error) => {
                if let Some(first) = first.take() {
                    let _ = first.send(Err(error));
                    return;
                }
                tracing::error!(%error, "cannot start nats-server again; trying later");
                failures += 1;
            }
        }
        // 0.5 s, 1 s, 2 s … up to 30 s while it keeps dying.
        let pause = Duration::from_millis(250 << failures.min(7)).min(Duration::from_secs(30));
        match stop.recv_timeout(pause) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// One start: the port must be free, the server must come up and introduce itself by the fresh
/// name it was given.
fn start_once(config: &ServerConfig, lock: RawFd) -> Result<Child, Error> {
    ensure_port_free(config.port)?;
    let mut nonce = [0u8; 6];
    getrandom::fill(&mut nonce).map_err(|e| Error::Start {
        reason: format!("no randomness for the server's name: {e}"),
    })?;
    let name = format!(
        "wasl-up-{}",
        nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let config_file = config.config_file();
    fs::write(&config_file, config.render(&name))
        .map_err(Error::io(format!("cannot write {}", config_file.display())))?;
    let mut child = spawn(config, lock)?;
    match wait_ready(config, &name, &mut child) {
        Ok(()) => Ok(child),
        Err(error) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(error)
        }
    }
}

/// Refuses a port that something listens on: that is never our server (ours are all gone
/// before a start), and a second server on our store must never be started beside it.
fn ensure_port_free(port: u16) -> Result<(), Error> {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::PortInUse {
            port,
            holders: holders_of_port(port),
        }),
    }
}

#[allow(unsafe_code)]
fn spawn(config: &ServerConfig, lock: RawFd) -> Result<Child, Error> {
    let log = config.log_file();
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(Error::io(format!("cannot open {}", log.display())))?;
    let err = out.try_clone().map_err(Error::io("cannot share the server's log"))?;
    let parent = rustix::process::getpid();
    let mut command = Command::new(&config.binary);
    command
        .arg("-c")
        .arg(config.config_file())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: Ctrl-C in the terminal reaches `wasl up` alone, which stops the
        // services first and the server last.
        .process_group(0);
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed. It makes three raw system calls through rustix (prctl, getppid, fcntl),
    // allocates nothing and takes no lock; its errors are plain errno values.
    unsafe {
        command.pre_exec(move || {
            // Dies (cleanly: SIGTERM) when the thread that started it ends, which happens only
            // when `wasl up` stops it or dies itself.
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))?;
            // The parent may have died before the line above: then nobody supervises this server.
            if rustix::process::getppid() != Some(parent) {
                return Err(rustix::io::Errno::SRCH.into());
            }
            // Keep the data directory's lock open across exec: the directory stays locked until
            // this server has exited too.
            let lock = std::os::fd::BorrowedFd::borrow_raw(lock);
            rustix::io::fcntl_setfd(lock, rustix::io::FdFlags::empty())?;
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(Error::io(format!("cannot run {}", config.binary.display())))
}

/// Waits until the server accepts clients and its `INFO` names it `name`.
fn wait_ready(config: &ServerConfig, name: &str, child: &mut Child) -> Result<(), Error> {
    let began = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::Start {
                reason: format!(
                    "it exited ({status}); its log ends with:\n{}",
                    log_tail(&config.log_file())
                ),
            });
        }
        if server_name(config.port, Duration::from_millis(500)).as_deref() == Some(name) {
            return Ok(());
        }
        if began.elapsed() > config.ready_timeout {
            return Err(Error::Start {
                reason: format!(
                    "it did not answer as {name} within {:?}; its log ends with:\n{}",
                    config.ready_timeout,
                    log_tail(&config.log_file())
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM (the server finishes its writes and exits), then SIGKILL after 30 s.
fn terminate(child: &mut Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::error!("nats-server did not stop within 30 s of SIGTERM; killing it");
    let _ = child.kill();
    let _ = child.wait();
}

/// The end of a server's log (its last 4 KiB), for an error message.
pub fn log_tail(path: &Path) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port() -> u16 {
        crate::free_ports(1).expect("a free port")[0]
    }

    fn name_at(port: u16) -> Option<String> {
        server_name(port, Duration::from_millis(500))
    }

    fn config(dir: &Path) -> ServerConfig {
        let binary = crate::find_nats_server()
            .expect("the pinned nats-server (./scripts/install-nats-server)")
            .path;
        ServerConfig::new(binary, dir.join("nats"), free_port())
    }

    fn alive(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
            && !fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
    }

    #[test]
    fn the_configuration_is_durable_unless_asked_and_quotes_paths() {
        let mut config = ServerConfig::new("/bin/nats-server".into(), "/tmp/a \"b\"".into(), 4333);
        let text = config.render("wasl-up-01");
        assert!(text.contains("sync_interval: always"), "{text}");
        assert!(text.contains("listen: \"127.0.0.1:4333\""), "{text}");
        assert!(text.contains(r#"store_dir: "/tmp/a \"b\"/store""#), "{text}");
        assert!(text.contains("server_name: \"wasl-up-01\""), "{text}");
        config.sync_always = false;
        let text = config.render("wasl-up-01");
        assert!(!text.contains("sync_interval: always"), "{text}");
        assert!(text.contains("UNSAFE"), "{text}");
    }

    #[test]
    fn the_server_starts_answers_by_its_name_holds_the_lock_restarts_and_stops() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lock = StoreLock::acquire(dir.path(), Duration::ZERO).expect("lock");
        let config = config(dir.path());
        let server = Supervised::start(config.clone(), &lock).expect("starts");
        let first = server.pid().expect("running");
        let name = name_at(config.port).expect("it answers");
        assert!(name.starts_with("wasl-up-"), "{name}");
        assert!(
            fs::read_to_string(config.config_file())
                .expect("config")
                .contains(&name)
        );

        // It holds the lock too: with ours dropped, the directory is still locked.
        drop(lock);
        assert!(matches!(
            StoreLock::acquire(dir.path(), Duration::ZERO),
            Err(Error::Locked { holders, .. }) if holders.iter().any(|h| h.pid == first)
        ));

        // Killed, it comes back under a new name, on the same port.
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(first as i32).expect("pid"),
            rustix::process::Signal::KILL,
        );
        let began = Instant::now();
        let second = loop {
            if let Some(pid) = server.pid().filter(|p| *p != first) {
                break pid;
            }
            assert!(began.elapsed() < Duration::from_secs(30), "not restarted");
            std::thread::sleep(Duration::from_millis(50));
        };
        let renamed = name_at(config.port).expect("it answers again");
        assert_ne!(renamed, name);

        server.stop();
        assert!(!alive(second), "stopped");
        StoreLock::acquire(dir.path(), Duration::ZERO).expect("free once the server is gone");
    }

    #[test]
    fn a_taken_port_is_refused_and_its_holder_named_without_starting_a_server() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lock = StoreLock::acquire(dir.path(), Duration::ZERO).expect("lock");
        let squatter = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut config = config(dir.path());
        config.port = squatter.local_addr().expect("addr").port();
        let refused = Supervised::start(config.clone(), &lock);
        assert!(
            matches!(refused, Err(Error::PortInUse { port, .. }) if port == config.port),
            "{refused:?}"
        );
        assert!(!config.config_file().exists(), "no server was started");
    }
}
