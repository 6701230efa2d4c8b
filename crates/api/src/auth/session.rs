//! Sessions of local accounts, and the back-off after failed logins.
//!
//! A session is a random 256-bit secret in an `HttpOnly`, `SameSite=Strict` cookie (`Secure`
//! when Wasl is served over TLS), kept in memory as its SHA-256 with the user, a CSRF token and
//! an expiry. A state-changing request authenticated by the cookie must repeat the CSRF token in
//! `X-CSRF-Token`, so another site cannot make a signed-in browser act. Sessions live in the
//! process: a restart signs everyone out, which loses no data.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
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

/// After this many failures in a row, each further attempt must wait.
const FREE_ATTEMPTS: u32 = 5;
/// The longest wait.
const MAX_LOCK: Duration = Duration::from_secs(15 * 60);

/// The sessions and the failure counters of this process.
#[derive(Debug)]
pub struct Sessions {
    lifetime: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Failures>>,
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
    /// Sessions that last `lifetime` after sign-in.
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
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

    /// Seconds the login name must still wait before another attempt, if any.
    pub fn locked_for(&self, username: &str) -> Option<u64> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let f = failures.get(username)?;
        let wait = lock_after(f.count)?;
        let until = f.last + wait;
        let now = Instant::now();
        (until > now).then(|| (until - now).as_secs().max(1))
    }

    /// Records a failed attempt.
    pub fn failed(&self, username: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let entry = failures.entry(username.to_owned()).or_insert(Failures {
            count: 0,
            last: Instant::now(),
        });
        entry.count = entry.count.saturating_add(1);
        entry.last = Instant::now();
    }

    /// Clears the failures after a successful sign-in.
    pub fn succeeded(&self, username: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(username);
    }
}

/// The wait after `count` failures: none for the first few, then doubling from 1 s to 15 min.
fn lock_after(count: u32) -> Option<Duration> {
    let over = count.checked_sub(FREE_ATTEMPTS)?;
    Some(Duration::from_secs(1u64 << over.min(10)).min(MAX_LOCK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_after_five_failures_and_is_capped() {
        assert_eq!(lock_after(4), None);
        assert_eq!(lock_after(5), Some(Duration::from_secs(1)));
        assert_eq!(lock_after(6), Some(Duration::from_secs(2)));
        assert_eq!(lock_after(40), Some(MAX_LOCK));
    }

    #[test]
    fn five_failures_lock_the_name_and_success_clears_it() {
        let sessions = Sessions::new(Duration::from_secs(60));
        for _ in 0..5 {
            sessions.failed("test-user");
        }
        assert!(sessions.locked_for("test-user").is_some());
        assert!(sessions.locked_for("someone-else").is_none());
        sessions.succeeded("test-user");
        assert!(sessions.locked_for("test-user").is_none());
    }

    #[test]
    fn an_ended_session_is_gone() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let user = UserId::from_uuid(uuid::Uuid::now_v7()).expect("v7");
        let (secret, _) = sessions.start(user);
        assert_eq!(sessions.get(&secret).map(|s| s.user), Some(user));
        sessions.end(&secret);
        assert!(sessions.get(&secret).is_none());
    }
}
