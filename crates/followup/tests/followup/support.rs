//! A synthetic network on a fresh nats-server (obviously fake organisations and people), a
//! follow-up service on a test clock, and reading back what it did from the log.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasl_domain::case::{Case, CaseCommand, CloseCase, ConsentScope, OpenCase, Scope};
use wasl_domain::catalogue::{CloseCode, Priority, Reason, ServiceCategory};
use wasl_domain::client::{Age, ClientProfile, Language, Nationality, PopulationGroup, Sex, SurvivorCode};
use wasl_domain::directory::{DisplayName, Eligibility, OrgKind, Organisation, OrganisationCommand, ServiceSpec};
use wasl_domain::geo::{Governorate, Location};
use wasl_domain::ids::{CaseId, ConsentId, OrgId, ReferralId, ServiceId, UserId, uuid_v7_from_parts};
use wasl_domain::pii::PersonalData;
use wasl_domain::referral::{Referral, ReferralCommand, ReferralEvent, RequestReferral};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Context, Role};
use wasl_events::DomainEvent;
use wasl_followup::{Followup, FollowupConfig, TestClock};
use wasl_store::{CommandMeta, EventStore, StoreConfig};
use wasl_testkit::NatsServer;
use wasl_testkit::db::TestDb;

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// A fresh UUIDv7-based id, unique in this test process.
pub fn fresh<T: TryFrom<uuid::Uuid>>() -> T
where
    T::Error: std::fmt::Debug,
{
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut random = [0u8; 10];
    random[2..].copy_from_slice(&n.to_be_bytes());
    random[0] = std::process::id().to_be_bytes()[3];
    T::try_from(uuid_v7_from_parts(1_767_225_600_000 + n, random)).expect("a v7 uuid")
}

/// 2026-01-01T00:00:00Z.
pub const T0: Timestamp = Timestamp::from_unix_millis(1_767_225_600_000);
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
        let store = Arc::new(open_store(&server.url()).await);
        Self {
            server,
            store,
            db,
            clock: TestClock::at(T0),
        }
    }

    /// A follow-up service on this world (its own store connection), running in a task.
    pub async fn followup(&self, config: FollowupConfig) -> Running {
        let store = Arc::new(open_store(&self.server.url()).await);
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

    /// A context at the clock's now.
    pub fn ctx(&self, user: UserId, org: OrgId, role: Role) -> Context {
        Context {
            now: self.clock_now(),
            actor: Actor {
                user,
                org,
                roles: vec![role],
            },
        }
    }

    pub fn clock_now(&self) -> Timestamp {
        wasl_followup::Clock::now(&self.clock)
    }

    /// The log's last sequence.
    pub async fn log_end(&self) -> u64 {
        self.store.stream().get_info().await.expect("info").state.last_sequence
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

pub async fn open_store(url: &str) -> EventStore {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .expect("connect");
    EventStore::open(client, StoreConfig::default())
        .await
        .expect("open the store")
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

/// The organisations and people of the test network: a referring organisation with a case and
/// its consent, and two providers offering every category.
pub struct Network {
    pub referring: OrgId,
    pub providers: [OrgId; 2],
    pub services: Vec<(OrgId, ServiceCategory, ServiceId)>,
    pub case: CaseId,
    pub consent: ConsentId,
    pub caseworker: UserId,
    pub focal_point: UserId,
    pub coordinator: UserId,
}

impl Network {
    pub fn caseworker(&self, world: &World) -> CommandMeta {
        meta(world.ctx(self.caseworker, self.referring, Role::Caseworker))
    }

    pub fn focal_point(&self, world: &World, org: OrgId) -> CommandMeta {
        meta(world.ctx(self.focal_point, org, Role::FocalPoint))
    }

    pub async fn set_up(world: &World) -> Self {
        let net = Network {
            referring: fresh(),
            providers: [fresh(), fresh()],
            services: Vec::new(),
            case: fresh(),
            consent: fresh(),
            caseworker: fresh(),
            focal_point: fresh(),
            coordinator: fresh(),
        };
        let coordinator = meta(world.ctx(net.coordinator, fresh(), Role::Coordinator));
        let mut services = Vec::new();
        for (org, name) in [
            (net.referring, "Synthetic Referrer (test)"),
            (net.providers[0], "Synthetic Provider One (test)"),
            (net.providers[1], "Synthetic Provider Two (test)"),
        ] {
            let register = OrganisationCommand::Register {
                org_id: org,
                name: DisplayName::parse(name).expect("name"),
                kind: OrgKind::NationalNgo,
            };
            world
                .store
                .execute::<Organisation>(org, &register, &again(&coordinator))
                .await
                .expect("register");
        }
        for provider in net.providers {
            for category in ServiceCategory::ALL {
                let service: ServiceId = fresh();
                let spec = ServiceSpec {
                    name: DisplayName::parse("A service (test)").expect("name"),
                    category: *category,
                    areas: vec![Location::governorate_only(Governorate::Ninawa)],
                    languages: vec![Language::parse("ar").expect("language")],
                    eligibility: Eligibility::everyone(),
                };
                world
                    .store
                    .execute::<Organisation>(
                        provider,
                        &OrganisationCommand::AddService {
                            service_id: service,
                            spec,
                        },
                        &again(&coordinator),
                    )
                    .await
                    .expect("add service");
                services.push((provider, *category, service));
            }
        }
        let net = Network { services, ..net };
        net.open_case(world, net.case, net.consent).await;
        net
    }

    /// Opens a case with one consent to any referral.
    pub async fn open_case(&self, world: &World, case: CaseId, consent: ConsentId) {
        let profile = ClientProfile {
            survivor_code: SurvivorCode::parse("TEST-0042").expect("code"),
            sex: Sex::Female,
            age: Age::years(30).expect("age"),
            population_group: PopulationGroup::Returnee,
            nationality: Nationality::parse("IQ").expect("nationality"),
            location: Location::governorate_only(Governorate::Ninawa),
            language: Language::parse("ar").expect("language"),
            vulnerabilities: vec![],
        };
        let open = CaseCommand::Open(OpenCase {
            case_id: case,
            caseworker: None,
            profile,
            personal: PersonalData::default(),
        });
        world
            .store
            .execute::<Case>(case, &open, &self.caseworker(world))
            .await
            .expect("open case");
        self.give_consent(world, case, consent).await;
    }

    pub async fn give_consent(&self, world: &World, case: CaseId, consent: ConsentId) {
        let give = CaseCommand::GiveConsent {
            consent_id: consent,
            scope: ConsentScope {
                categories: Scope::Any,
                organisations: Scope::Any,
                expires_at: None,
            },
        };
        world
            .store
            .execute::<Case>(case, &give, &self.caseworker(world))
            .await
            .expect("consent");
    }

    /// Refers the case to provider `provider` for `category` at `priority` (under the case's
    /// consent that covers it).
    pub async fn refer_case(
        &self,
        world: &World,
        case: CaseId,
        provider: usize,
        category: ServiceCategory,
        priority: Priority,
    ) -> ReferralId {
        let referral = fresh();
        let org = self.providers[provider];
        let service = self
            .services
            .iter()
            .find(|(o, c, _)| *o == org && *c == category)
            .expect("a service")
            .2;
        let case_state = world.store.load::<Case>(case).await.expect("load case").state;
        let provider_state = world.store.load::<Organisation>(org).await.expect("load org").state;
        let request = ReferralCommand::Request(Box::new(RequestReferral {
            referral_id: referral,
            case: case_state,
            provider: provider_state,
            service_id: service,
            priority,
            redirected_from: None,
            consent_override: None,
            notes: None,
        }));
        world
            .store
            .execute::<Referral>(referral, &request, &self.caseworker(world))
            .await
            .expect("refer");
        referral
    }

    pub async fn refer(
        &self,
        world: &World,
        provider: usize,
        category: ServiceCategory,
        priority: Priority,
    ) -> ReferralId {
        self.refer_case(world, self.case, provider, category, priority).await
    }

    /// The receiving organisation acts on the referral.
    pub async fn act(&self, world: &World, referral: ReferralId, provider: usize, command: ReferralCommand) {
        world
            .store
            .execute::<Referral>(referral, &command, &self.focal_point(world, self.providers[provider]))
            .await
            .expect("the provider's command is carried out");
    }

    pub async fn withdraw(&self, world: &World, case: CaseId, consent: ConsentId) {
        world
            .store
            .execute::<Case>(
                case,
                &CaseCommand::WithdrawConsent { consent_id: consent },
                &self.caseworker(world),
            )
            .await
            .expect("withdraw");
    }

    /// Closes the case, cancelling its open referrals.
    pub async fn close(&self, world: &World, case: CaseId, open: Vec<ReferralId>) {
        let close = CaseCommand::Close(CloseCase {
            reason: Reason::coded(CloseCode::NeedsMet),
            open_referrals: open,
            cancel_open_referrals: true,
        });
        world
            .store
            .execute::<Case>(case, &close, &self.caseworker(world))
            .await
            .expect("close");
    }
}

pub fn meta(context: Context) -> CommandMeta {
    CommandMeta {
        command_id: fresh(),
        context,
        traceparent: None,
    }
}

fn again(meta: &CommandMeta) -> CommandMeta {
    CommandMeta {
        command_id: fresh(),
        ..meta.clone()
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
