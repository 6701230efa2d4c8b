//! Sessions of local accounts, and the back-off after failed logins: per login name, per client
//! address (password spraying across many names from one place) and across everyone, each
//! counter bounded in memory, and a cap on the passwords checked at once (argon2id takes 19 MiB
//! each).
//!
//! A session is a random 256-bit secret in an `HttpOnly`, `SameSite=Strict` cookie (`Secure`
//! when Wasl is served over TLS). It is kept in the JetStream KV bucket [`BUCKET`], shared by
//! every API instance: the key is the SHA-256 of the secret (hex), the value the user and when
//! the session started and ends; the secret itself is never stored or logged. Any instance
//! serves any session, and signing out purges the key, which every instance sees at its next
//! request: a session is read from the stream's leader on every request (never from a cache or a
//! replica that may lag). The bucket's maximum age is the session lifetime, so JetStream removes
//! a session when it ends; the end recorded in the value is checked as well, so a session never
//! outlives it even before JetStream has removed it. A restart of the API signs no one out.
//!
//! A state-changing request authenticated by the cookie must repeat the CSRF token in
//! `X-CSRF-Token`, so another site cannot make a signed-in browser act. The token is derived
//! from the secret ([`csrf_token`]), so it is not stored either, and every instance knows it.
//!
//! The sign-in back-off and the password checks stay in each process: behind a load balancer,
//! a name's back-off counts the failures each instance saw.

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wasl_domain::ids::UserId;

/// The KV bucket holding the sessions (its stream is `KV_WASL_SESSIONS`).
pub const BUCKET: &str = "WASL_SESSIONS";
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
}

/// Why the session store failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// NATS cannot serve the request now.
    #[error("the session store is unavailable: {0}")]
    Unavailable(String),
}

fn unavailable(err: impl std::fmt::Display) -> SessionError {
    SessionError::Unavailable(err.to_string())
}

/// A session as stored in [`BUCKET`], under the SHA-256 of its secret.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    /// The user's id.
    user: String,
    /// When it started (Unix ms).
    started_at: i64,
    /// When it ends (Unix ms).
    expires_at: i64,
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

impl Failed {
    fn new() -> Self {
        Self {
            names: Counters::new(FREE_ATTEMPTS),
            clients: Counters::new(FREE_CLIENT_ATTEMPTS),
            everyone: VecDeque::new(),
        }
    }

    fn locked_for(&mut self, username: &str, client: Option<IpAddr>, now: Instant) -> Option<Throttled> {
        let throttled = |wait: Duration, why| Throttled {
            retry_after: wait.as_secs().max(1),
            why,
        };
        if let Some(wait) = self.names.wait(&username.to_owned(), now) {
            return Some(throttled(wait, "name"));
        }
        if let Some(wait) = client.and_then(|c| self.clients.wait(&c, now)) {
            return Some(throttled(wait, "client"));
        }
        while self
            .everyone
            .front()
            .is_some_and(|t| now.duration_since(*t) >= EVERYONE_WINDOW)
        {
            self.everyone.pop_front();
        }
        if self.everyone.len() >= EVERYONE_MAX_FAILURES {
            let oldest = *self.everyone.front()?;
            return Some(throttled(
                EVERYONE_WINDOW.saturating_sub(now.duration_since(oldest)),
                "everyone",
            ));
        }
        None
    }

    fn failed(&mut self, username: &str, client: Option<IpAddr>, now: Instant) {
        self.names.failed(username.to_owned(), now);
        if let Some(client) = client {
            self.clients.failed(client, now);
        }
        self.everyone.push_back(now);
        if self.everyone.len() > EVERYONE_MAX_FAILURES {
            self.everyone.pop_front();
        }
    }

    fn succeeded(&mut self, username: &str) {
        self.names.by_key.remove(username);
    }
}

/// The sessions (in [`BUCKET`]), and this process's failure counters and password checks.
pub struct Sessions {
    lifetime: Duration,
    bucket: kv::Store,
    failures: Mutex<Failed>,
    checks: tokio::sync::Semaphore,
    checker: PasswordChecker,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
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

/// The bucket's key of a session: SHA-256 of its secret, hex.
fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The CSRF token of a session: SHA-256 of a fixed label and the secret, hex. Only the holder
/// of the cookie can know it; it reveals nothing of the secret, and it differs from the
/// bucket's key.
pub fn csrf_token(secret: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"wasl csrf token\0");
    digest.update(secret.as_bytes());
    hex::encode(digest.finalize())
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // getrandom fails only without an OS entropy source, where nothing secure can run at all.
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    hex::encode(bytes)
}

/// Opens the session bucket, creating it when missing: file storage, `replicas`, one revision
/// per key, and `lifetime` as its maximum age (changed to it when the bucket has another).
async fn open_bucket(js: &jetstream::Context, lifetime: Duration, replicas: usize) -> Result<kv::Store, SessionError> {
    let store = match js.get_key_value(BUCKET).await {
        Ok(store) => store,
        Err(_) => {
            let created = js
                .create_key_value(kv::Config {
                    bucket: BUCKET.to_owned(),
                    description: "Wasl sessions: the SHA-256 of a session secret, its user and end".to_owned(),
                    history: 1,
                    max_age: lifetime,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas.max(1),
                    ..Default::default()
                })
                .await;
            match created {
                Ok(store) => store,
                // Created meanwhile by another instance.
                Err(err) => js.get_key_value(BUCKET).await.map_err(|_| unavailable(err))?,
            }
        }
    };
    let mut stream = js.get_stream(&store.stream_name).await.map_err(unavailable)?;
    let mut config = stream.info().await.map_err(unavailable)?.config.clone();
    if config.max_age != lifetime {
        tracing::info!(
            bucket = BUCKET,
            lifetime = %humantime::format_duration(lifetime),
            "the session bucket's maximum age follows the session lifetime"
        );
        config.max_age = lifetime;
        // JetStream refuses a duplicate window longer than the maximum age.
        config.duplicate_window = config.duplicate_window.min(lifetime);
        js.update_stream(config).await.map_err(unavailable)?;
    }
    Ok(store)
}

impl Sessions {
    /// Opens the session bucket ([`BUCKET`], created when missing with `replicas`): sessions
    /// that last `lifetime` after sign-in. At most `concurrent_checks` passwords are checked at
    /// once.
    pub async fn open(
        js: &jetstream::Context,
        lifetime: Duration,
        replicas: usize,
        concurrent_checks: usize,
    ) -> Result<Self, SessionError> {
        Ok(Self {
            lifetime,
            bucket: open_bucket(js, lifetime, replicas).await?,
            failures: Mutex::new(Failed::new()),
            checks: tokio::sync::Semaphore::new(concurrent_checks.max(1)),
            checker: PasswordChecker::new(concurrent_checks),
        })
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

    /// Starts a session, stored before this returns (so every instance knows it): the cookie
    /// secret and the session.
    pub async fn start(&self, user: UserId) -> Result<(String, Session), SessionError> {
        let secret = random_hex();
        let now = super::accounts::now_millis();
        let lifetime = i64::try_from(self.lifetime.as_millis()).unwrap_or(i64::MAX);
        let record = Record {
            user: user.to_string(),
            started_at: now,
            expires_at: now.saturating_add(lifetime),
        };
        let value = serde_json::to_vec(&record).map_err(unavailable)?;
        self.bucket
            .put(hash(&secret), value.into())
            .await
            .map_err(unavailable)?;
        let session = Session {
            user,
            csrf: csrf_token(&secret),
        };
        Ok((secret, session))
    }

    /// The live session a cookie secret belongs to, read from the bucket's stream leader (so a
    /// session ended on another instance is seen ended at once).
    pub async fn get(&self, secret: &str) -> Result<Option<Session>, SessionError> {
        let subject = format!("{}{}", self.bucket.prefix, hash(secret));
        let message = match self.bucket.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => message,
            Err(err) if err.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(err) => return Err(unavailable(err)),
        };
        // A purge (sign-out) or delete marker carries `KV-Operation`; a session never does.
        if message.headers.get("KV-Operation").is_some() {
            return Ok(None);
        }
        let Ok(record) = serde_json::from_slice::<Record>(&message.payload) else {
            // Not a session this code wrote (anyone allowed `$KV.>` could put one): no session.
            tracing::warn!(sequence = message.sequence, "an unreadable session record; refused");
            return Ok(None);
        };
        if record.expires_at <= super::accounts::now_millis() {
            return Ok(None);
        }
        let Ok(user) = UserId::parse(&record.user) else {
            tracing::warn!(
                sequence = message.sequence,
                "a session record without a valid user; refused"
            );
            return Ok(None);
        };
        Ok(Some(Session {
            user,
            csrf: csrf_token(secret),
        }))
    }

    /// Ends a session: its key is purged from the bucket before this returns.
    pub async fn end(&self, secret: &str) -> Result<(), SessionError> {
        self.bucket.purge(hash(secret)).await.map_err(unavailable)
    }

    /// Whether a sign-in as `username` from `client` must wait first, and why: the name's
    /// back-off, the client's, or everyone's when too many sign-ins failed in the last minute.
    pub fn locked_for(&self, username: &str, client: Option<IpAddr>) -> Option<Throttled> {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .locked_for(username, client, Instant::now())
    }

    /// Records a failed attempt as `username` from `client`.
    pub fn failed(&self, username: &str, client: Option<IpAddr>) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failed(username, client, Instant::now());
    }

    /// Clears the name's failures after a successful sign-in (the client's stay: one good
    /// password does not excuse spraying the others).
    pub fn succeeded(&self, username: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .succeeded(username);
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
        let mut failures = Failed::new();
        let now = Instant::now();
        for _ in 0..5 {
            failures.failed("test-user", None, now);
        }
        assert_eq!(failures.locked_for("test-user", None, now).map(|t| t.why), Some("name"));
        assert!(failures.locked_for("someone-else", None, now).is_none());
        failures.succeeded("test-user");
        assert!(failures.locked_for("test-user", None, now).is_none());
    }

    #[test]
    fn spraying_many_names_from_one_client_locks_the_client_not_the_others() {
        let mut failures = Failed::new();
        let now = Instant::now();
        let sprayer: IpAddr = "192.0.2.7".parse().expect("an address");
        let bystander: IpAddr = "192.0.2.8".parse().expect("an address");
        for n in 0..FREE_CLIENT_ATTEMPTS {
            assert!(
                failures
                    .locked_for(&format!("test-name-{n}"), Some(sprayer), now)
                    .is_none()
            );
            failures.failed(&format!("test-name-{n}"), Some(sprayer), now);
        }
        assert_eq!(
            failures
                .locked_for("test-fresh-name", Some(sprayer), now)
                .map(|t| t.why),
            Some("client")
        );
        assert!(failures.locked_for("test-fresh-name", Some(bystander), now).is_none());
    }

    #[test]
    fn too_many_failures_everywhere_slow_everyone_and_memory_stays_bounded() {
        let mut failures = Failed::new();
        let now = Instant::now();
        for n in 0..(MAX_TRACKED + 500) {
            let client = IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
            failures.failed(&format!("test-name-{n}"), Some(client), now);
        }
        assert!(failures.names.by_key.len() <= MAX_TRACKED);
        assert!(failures.clients.by_key.len() <= MAX_TRACKED);
        assert!(failures.everyone.len() <= EVERYONE_MAX_FAILURES);
        assert_eq!(
            failures.locked_for("test-another-name", None, now).map(|t| t.why),
            Some("everyone")
        );
    }

    #[test]
    fn the_csrf_token_is_neither_the_secret_nor_its_key() {
        let secret = random_hex();
        let csrf = csrf_token(&secret);
        assert_eq!(csrf, csrf_token(&secret), "every instance derives the same token");
        assert_ne!(csrf, secret);
        assert_ne!(csrf, hash(&secret));
        assert_ne!(csrf, csrf_token(&random_hex()));
    }
}
