//! The one clock of the service. Production reads the system's; tests hold a [`TestClock`] and
//! move it, so no test waits on real time for a deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use wasl_domain::time::Timestamp;

/// A source of the current time that can also wait for a time to come.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;

    /// Completes once [`Clock::now`] has reached `at` (at once if it has).
    fn sleep_until(&self, at: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        Timestamp::from_unix_millis(millis)
    }

    fn sleep_until(&self, at: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let wait = at.unix_millis().saturating_sub(self.now().unix_millis()).max(0) as u64;
        // Never sleep for ever on one reading: a clock stepped forward (NTP after a night
        // without power) is noticed within a minute.
        Box::pin(tokio::time::sleep(Duration::from_millis(wait.min(60_000))))
    }
}

/// A clock that moves only when told to; waiters wake when it passes their time.
#[derive(Debug, Clone)]
pub struct TestClock {
    now: Arc<watch::Sender<Timestamp>>,
}

impl TestClock {
    /// A clock standing at `start`.
    pub fn at(start: Timestamp) -> Self {
        Self {
            now: Arc::new(watch::channel(start).0),
        }
    }

    /// Moves it forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now
            .send_modify(|now| *now = now.plus_millis(by.as_millis() as i64));
    }

    /// Moves it to `to` (never backwards).
    pub fn set(&self, to: Timestamp) {
        self.now.send_modify(|now| *now = (*now).max(to));
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.now.borrow()
    }

    fn sleep_until(&self, at: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut changes = self.now.subscribe();
        Box::pin(async move {
            let _ = changes.wait_for(|now| *now >= at).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_test_clock_wakes_its_sleepers_when_moved_past_their_time() {
        let clock = TestClock::at(Timestamp::from_unix_millis(1_000));
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(Timestamp::from_unix_millis(5_000)).await })
        };
        tokio::task::yield_now().await;
        clock.advance(Duration::from_millis(3_000));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "4 s is not 5 s");
        clock.advance(Duration::from_millis(1_000));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woken")
            .expect("no panic");
        clock.set(Timestamp::from_unix_millis(1));
        assert_eq!(clock.now(), Timestamp::from_unix_millis(5_000), "never backwards");
    }
}
