//! Sessions of local accounts, and the back-off after failed logins: per login name, per client
//! address (password spraying across many names from one place) and across everyone, each
//! counter bounded in memory, and a cap on the passwords checked at once (argon2id takes 19 MiB
//! each).
//!
//! A session is a random 256-bit secret in an `HttpOnly`, `SameSite=Strict` cookie (`Secure`
//! when Wasl is served over TLS), kept in memory as its SHA-256 with the user, a CSRF token and
//! an expiry. A state-changing request authenticated by the cookie must repeat the CSRF token in
//! `X-CSRF-Token`, so another site cannot make a signed-in browser act. Sessions live in the
//! process: a restart signs everyone out, which loses no data.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wasl_domain::ids::UserId;

/// The session cookie's name.
pub const COOKIE: &str = "wasl_session";
/// The header a cookie-authenticated change must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A signed-in session.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Session {
    pub user: UserId,
    /// The token that state-changing requests must echo.
    pub csrf: String,
    expires: Instant,
}

/// Failed logins of one login name.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// After this many failures of one login name in a row, each further attempt must wait.
const FREE_ATTEMPTS: u32 = 5;
/// After this many failures from one client address, each further attempt from it must wait.
const FREE_CLIENT_ATTEMPTS: u32 = 20;
/// More failed sign-ins than this across everyone within [`EVERYONE_WINDOW`], and every
/// sign-in waits until the window has room again.
const EVERYONE_MAX_FAILURES: usize = 300;
/// The window of [`EVERYONE_MAX_FAILURES`].
const EVERYONE_WINDOW: Duration = Duration::from_secs(60);
/// The longest wait.
const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// Login names, and client addresses, whose failures are remembered at most: beyond it the
/// stalest are forgotten, so a flood of made-up names cannot grow memory without bound.
const MAX_TRACKED: usize = 10_000;

/// Why a sign-in must wait, and for how many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds to wait (at least 1).
    pub retry_after: u64,
    /// `name`, `client` or `everyone`.
    pub why: &'static str,
}

/// The failure counters of one kind of key, bounded to [`MAX_TRACKED`] keys.
#[derive(Debug)]
struct Counters<K> {
    free: u32,
    by_key: HashMap<K, Failures>,
}

impl<K: Eq + Hash + Clone> Counters<K> {
    fn new(free: u32) -> Self {
        Self {
            free,
            by_key: HashMap::new(),
        }
    }

    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let f = self.by_key.get(key)?;
        let until = f.last + lock_after(f.count, self.free)?;
        (until > now).then(|| until - now)
    }

    fn failed(&mut self, key: K, now: Instant) {
        if self.by_key.len() >= MAX_TRACKED && !self.by_key.contains_key(&key) {
            // Forget what no longer locks anyone; if that frees nothing, the stalest key.
            self.by_key.retain(|_, f| now.duration_since(f.last) < MAX_LOCK);
            if self.by_key.len() >= MAX_TRACKED
                && let Some(stalest) = self.by_key.iter().min_by_key(|(_, f)| f.last).map(|(k, _)| k.clone())
            {
                self.by_key.remove(&stalest);
            }
        }
        let entry = self.by_key.entry(key).or_insert(Failures { count: 0, last: now });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }
}

/// Failed sign-ins, counted per login name, per client address and across everyone.
#[derive(Debug)]
struct Failed {
    names: Counters<String>,
    clients: Counters<IpAddr>,
    everyone: VecDeque<Instant>,
}

/// The sessions and the failure counters of this process.
#[derive(Debug)]
pub struct Sessions {
    lifetime: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<Failed>,
    checks: tokio::sync::Semaphore,
    checker: PasswordChecker,
}

/// A password to check, the stored hash, and where the answer goes.
type CheckJob = (zeroize::Zeroizing<String>, String, tokio::sync::oneshot::Sender<bool>);

/// Checks passwords on a fixed set of threads, each with argon2id's 19 MiB of memory allocated
/// once and reused. Allocated per check, the allocator kept freed copies (measured on `wasl up`:
/// 39 MiB before, 366 MiB after 200 concurrent sign-ins with two checks at a time, growing with
/// each round).
#[derive(Debug)]
struct PasswordChecker {
    jobs: std::sync::mpsc::Sender<CheckJob>,
}

impl PasswordChecker {
    fn new(threads: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<CheckJob>();
        let queue = std::sync::Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            // The threads end when the checker (the sender) is dropped.
            let started = std::thread::Builder::new()
                .name(format!("wasl-password-{n}"))
                .spawn(move || {
                    // This thread's argon2 memory, allocated once and reused by every check.
                    let mut blocks = Vec::new();
                    loop {
                        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok((password, stored, answer)) = job else { return };
                        let matches = crate::auth::password::verify_with_memory(&password, &stored, &mut blocks);
                        let _ = answer.send(matches);
                    }
                });
            if let Err(error) = started {
                tracing::error!(%error, "cannot start a password-checking thread");
            }
        }
        Self { jobs }
    }
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // getrandom fails only without an OS entropy source, where nothing secure can run at all.
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    hex::encode(bytes)
}

impl Sessions {
    /// Sessions that last `lifetime` after sign-in, with at most `concurrent_checks` passwords
    /// checked at once.
    pub fn new(lifetime: Duration, concurrent_checks: usize) -> Self {
        Self {
            lifetime,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(Failed {
                names: Counters::new(FREE_ATTEMPTS),
                clients: Counters::new(FREE_CLIENT_ATTEMPTS),
                everyone: VecDeque::new(),
            }),
            checks: tokio::sync::Semaphore::new(concurrent_checks.max(1)),
            checker: PasswordChecker::new(concurrent_checks),
        }
    }

    /// Whether `password` matches the PHC hash `stored`, checked on the password threads when a
    /// turn comes within `patience`; `None` when none came (the caller answers 429) or the
    /// threads are gone.
    pub async fn check_password(&self, password: String, stored: String, patience: Duration) -> Option<bool> {
        let password = zeroize::Zeroizing::new(password);
        let _turn = tokio::time::timeout(patience, self.checks.acquire()).await.ok()?.ok()?;
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.checker.jobs.send((password, stored, answer)).ok()?;
        answered.await.ok()
    }

    /// Starts a session: the cookie secret and the session.
    pub fn start(&self, user: UserId) -> (String, Session) {
        let secret = random_hex();
        let session = Session {
            user,
            csrf: random_hex(),
            expires: Instant::now() + self.lifetime,
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(hash(&secret), session.clone());
        (secret, session)
    }

    /// The live session a cookie secret belongs to.
    pub fn get(&self, secret: &str) -> Option<Session> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .get(&hash(secret))
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    /// Ends a session.
    pub fn end(&self, secret: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&hash(secret));
    }

    /// Whether a sign-in as `username` from `client` must wait first, and why: the name's
    /// back-off, the client's, or everyone's when too many sign-ins failed in the last minute.
    pub fn locked_for(&self, username: &str, client: Option<IpAddr>) -> Option<Throttled> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let throttled = |wait: Duration, why| Throttled {
            retry_after: wait.as_secs().max(1),
            why,
        };
        if let Some(wait) = failures.names.wait(&username.to_owned(), now) {
            return Some(throttled(wait, "name"));
        }
        if let Some(wait) = client.and_then(|c| failures.clients.wait(&c, now)) {
            return Some(throttled(wait, "client"));
        }
        while failures
            .everyone
            .front()
            .is_some_and(|t| now.duration_since(*t) >= EVERYONE_WINDOW)
        {
            failures.everyone.pop_front();
        }
        if failures.everyone.len() >= EVERYONE_MAX_FAILURES {
            let oldest = *failures.everyone.front()?;
            return Some(throttled(
                EVERYONE_WINDOW.saturating_sub(now.duration_since(oldest)),
                "everyone",
            ));
        }
        None
    }

    /// Records a failed attempt as `username` from `client`.
    pub fn failed(&self, username: &str, client: Option<IpAddr>) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        failures.names.failed(username.to_owned(), now);
        if let Some(client) = client {
            failures.clients.failed(client, now);
        }
        failures.everyone.push_back(now);
        if failures.everyone.len() > EVERYONE_MAX_FAILURES {
            failures.everyone.pop_front();
        }
    }

    /// Clears the name's failures after a successful sign-in (the client's stay: one good
    /// password does not excuse spraying the others).
    pub fn succeeded(&self, username: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .names
            .by_key
            .remove(username);
    }
}

/// The wait after `count` failures: none for the first `free`, then doubling from 1 s to 15 min.
fn lock_after(count: u32, free: u32) -> Option<Duration> {
    let over = count.checked_sub(free)?;
    Some(Duration::from_secs(1u64 << over.min(10)).min(MAX_LOCK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_after_five_failures_and_is_capped() {
        assert_eq!(lock_after(4, FREE_ATTEMPTS), None);
        assert_eq!(lock_after(5, FREE_ATTEMPTS), Some(Duration::from_secs(1)));
        assert_eq!(lock_after(6, FREE_ATTEMPTS), Some(Duration::from_secs(2)));
        assert_eq!(lock_after(40, FREE_ATTEMPTS), Some(MAX_LOCK));
    }

    #[test]
    fn five_failures_lock_the_name_and_success_clears_it() {
        let sessions = Sessions::new(Duration::from_secs(60), 1);
        for _ in 0..5 {
            sessions.failed("test-user", None);
        }
        assert_eq!(sessions.locked_for("test-user", None).map(|t| t.why), Some("name"));
        assert!(sessions.locked_for("someone-else", None).is_none());
        sessions.succeeded("test-user");
        assert!(sessions.locked_for("test-user", None).is_none());
    }

    #[test]
    fn spraying_many_names_from_one_client_locks_the_client_not_the_others() {
        let sessions = Sessions::new(Duration::from_secs(60), 1);
        let sprayer: IpAddr = "192.0.2.7".parse().expect("an address");
        let bystander: IpAddr = "192.0.2.8".parse().expect("an address");
        for n in 0..FREE_CLIENT_ATTEMPTS {
            assert!(sessions.locked_for(&format!("test-name-{n}"), Some(sprayer)).is_none());
            sessions.failed(&format!("test-name-{n}"), Some(sprayer));
        }
        assert_eq!(
            sessions.locked_for("test-fresh-name", Some(sprayer)).map(|t| t.why),
            Some("client")
        );
        assert!(sessions.locked_for("test-fresh-name", Some(bystander)).is_none());
    }

    #[test]
    fn too_many_failures_everywhere_slow_everyone_and_memory_stays_bounded() {
        let sessions = Sessions::new(Duration::from_secs(60), 1);
        for n in 0..(MAX_TRACKED + 500) {
            let client = IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
            sessions.failed(&format!("test-name-{n}"), Some(client));
        }
        let failures = sessions.failures.lock().expect("lock");
        assert!(failures.names.by_key.len() <= MAX_TRACKED);
        assert!(failures.clients.by_key.len() <= MAX_TRACKED);
        assert!(failures.everyone.len() <= EVERYONE_MAX_FAILURES);
        drop(failures);
        assert_eq!(
            sessions.locked_for("test-another-name", None).map(|t| t.why),
            Some("everyone")
        );
    }

    #[test]
    fn an_ended_session_is_gone() {
        let sessions = Sessions::new(Duration::from_secs(60), 1);
        let user = UserId::from_uuid(uuid::Uuid::now_v7()).expect("v7");
        let (secret, _) = sessions.start(user);
        assert_eq!(sessions.get(&secret).map(|s| s.user), Some(user));
        sessions.end(&secret);
        assert!(sessions.get(&secret).is_none());
    }
}
