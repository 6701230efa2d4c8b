//! The shared synthetic network (`wasl_synth::network`) on a fresh nats-server, its commands on
//! a test clock; a follow-up service on that clock, and reading back what it did from the log.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wasl_domain::catalogue::ServiceCategory;
use wasl_domain::ids::ReferralId;
use wasl_domain::referral::ReferralEvent;
use wasl_domain::testing::profile;
use wasl_domain::time::Timestamp;
use wasl_events::DomainEvent;
use wasl_followup::{Clock, Followup, FollowupConfig, TestClock};
use wasl_store::{EventStore, StoreConfig};
use wasl_testkit::NatsServer;
use wasl_testkit::db::TestDb;

pub use wasl_domain::testing::{T0, fresh};
pub use wasl_store::testing::{last_sequence, meta, open_store};
pub use wasl_synth::network::Network;

pub const WAIT: Duration = Duration::from_secs(60);
pub const HOUR: Duration = Duration::from_secs(3_600);

/// A nats-server, its event store, a database, a test clock.
pub struct World {
    pub server: NatsServer,
    pub store: Arc<EventStore>,
    pub db: TestDb,
    pub clock: TestClock,
}

impl World {
    pub async fn start(db: TestDb) -> Self {
        // Quiet by default; TEST_LOG=1 shows the service's logs.
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("wasl_followup=debug,wasl_store=info")
                .with_test_writer()
                .try_init();
        }
        let server = NatsServer::start().expect("start a nats-server (NATS_SERVER_BIN)");
        let store = Arc::new(open_store(&server.url(), StoreConfig::default()).await);
        Self {
            server,
            store,
            db,
            clock: TestClock::at(T0),
        }
    }

    /// A follow-up service on this world (its own store connection), running in a task.
    pub async fn followup(&self, config: FollowupConfig) -> Running {
        let store = Arc::new(open_store(&self.server.url(), StoreConfig::default()).await);
        let service = Followup::open(&self.db.url, store, Arc::new(self.clock.clone()), config)
            .await
            .expect("open the follow-up service");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let service = service.clone();
            async move {
                service
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
            }
        });
        Running {
            service,
            task,
            stop: Some(stop),
        }
    }

    /// The shared network on this world, its commands at the clock's now: a referring
    /// organisation with a case and its consent, and two providers offering every category.
    pub async fn network(&self) -> Network {
        let clock = self.clock.clone();
        Network::builder()
            .providers([fresh(), fresh()])
            .categories(ServiceCategory::ALL)
            .profile(profile("TEST-0042"))
            .clock(move || clock.now())
            .build(&self.store)
            .await
    }

    pub fn clock_now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The log's last sequence.
    pub async fn log_end(&self) -> u64 {
        last_sequence(&self.store).await
    }

    /// The referral's events, in order.
    pub async fn events(&self, referral: ReferralId) -> Vec<ReferralEvent> {
        self.store
            .read_history(&format!("wasl.evt.referral.{referral}"), 1)
            .await
            .expect("history")
            .into_iter()
            .filter_map(|r| match r.event.event {
                DomainEvent::Referral(_, event) => Some(event),
                _ => None,
            })
            .collect()
    }
}

/// A follow-up service running in a task.
pub struct Running {
    pub service: Followup,
    task: tokio::task::JoinHandle<Result<(), wasl_followup::FollowupError>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    /// Waits until it has taken the log up to `sequence` into account, fired every deadline
    /// due by `now` and emptied its outbox.
    pub async fn settled(&self, sequence: u64, now: Timestamp) {
        let metrics = self.service.metrics();
        let began = Instant::now();
        loop {
            let pending = self.service.pending().await.expect("pending");
            if metrics.position.load(Ordering::Relaxed) >= sequence
                && pending.outbox == 0
                && pending.next_due.is_none_or(|due| due > now)
            {
                return;
            }
            assert!(
                began.elapsed() < WAIT,
                "the follow-up service did not settle: {pending:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the task wherever it is.
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("no panic").expect("a clean stop");
    }
}

/// Polls `done` until true, failing after [`WAIT`].
pub async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let began = Instant::now();
    while !done().await {
        assert!(began.elapsed() < WAIT, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Running {
    /// Waits until the service has nothing left to do for the log as it is: everything read,
    /// the outbox empty, and nothing new appended meanwhile.
    pub async fn quiet(&self, world: &World) {
        loop {
            let end = world.log_end().await;
            self.settled(end, world.clock_now()).await;
            if world.log_end().await == end {
                return;
            }
        }
    }
}

/// How many of the events are overdue marks and escalations of `kind`.
pub fn count(events: &[ReferralEvent], what: &str, kind: wasl_domain::referral::OverdueKind) -> usize {
    events
        .iter()
        .filter(|e| match (what, e) {
            ("overdue", ReferralEvent::ResponseOverdue { kind: k, .. }) => *k == kind,
            ("overdue", ReferralEvent::FollowUpOverdue { .. }) => kind == wasl_domain::referral::OverdueKind::FollowUp,
            ("escalated", ReferralEvent::Escalated { kind: k }) => *k == kind,
            _ => false,
        })
        .count()
}
