//! A synthetic network on a fresh nats-server (obviously fake organisations and people),
//! helpers to run routers and read the partner feeds back byte for byte.

#![allow(dead_code)]

use async_nats::jetstream::{self, message::StreamMessage};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasl_domain::case::{Case, CaseCommand, ConsentScope, OpenCase, Scope};
use wasl_domain::catalogue::{EraseCode, Priority, Reason, ServiceCategory};
use wasl_domain::client::{Age, ClientProfile, Language, Nationality, PopulationGroup, Sex, SurvivorCode};
use wasl_domain::directory::{DisplayName, Eligibility, OrgKind, Organisation, OrganisationCommand, ServiceSpec};
use wasl_domain::geo::{District, Governorate, Location};
use wasl_domain::ids::{CaseId, OrgId, ReferralId, ServiceId, UserId, uuid_v7_from_parts};
use wasl_domain::pii::{Cipher, EncryptedPii, KeyId, PersonalData};
use wasl_domain::referral::{Referral, ReferralCommand, RequestReferral};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Context, Role};
use wasl_events::partner::out_stream;
use wasl_router::{Router, RouterConfig};
use wasl_store::{CommandMeta, CommandOutcome, EventStore, StoreConfig};
use wasl_testkit::NatsServer;

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

pub const T0: Timestamp = Timestamp::from_unix_millis(1_767_225_600_000);
pub const WAIT: Duration = Duration::from_secs(60);

pub fn server() -> NatsServer {
    NatsServer::start().expect("start a nats-server (NATS_SERVER_BIN)")
}

pub async fn connect(url: &str) -> async_nats::Client {
    connect_with(url, async_nats::ConnectOptions::new()).await
}

pub async fn connect_with(url: &str, options: async_nats::ConnectOptions) -> async_nats::Client {
    options
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect()
        .connect(url)
        .await
        .expect("connect to the test nats-server")
}

pub async fn open_store(url: &str) -> EventStore {
    EventStore::open(connect(url).await, StoreConfig::default())
        .await
        .expect("open the event store")
}

/// A router configuration with small batches and a small cache, to exercise both.
pub fn router_config() -> RouterConfig {
    RouterConfig {
        api_base_url: "https://wasl.example.invalid/".to_owned(),
        batch_size: 7,
        cache_capacity: 5,
        retry_delay: Duration::from_millis(50),
        ..RouterConfig::default()
    }
}

/// A router running in a task, stopped by `abort` (a crash) or `stop` (a shutdown).
pub struct Running {
    pub router: Arc<Router>,
    task: tokio::task::JoinHandle<Result<(), wasl_router::RouterError>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    pub async fn start(url: &str, config: RouterConfig) -> Self {
        let router = Arc::new(Router::open(connect(url).await, config).await.expect("open the router"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let router = router.clone();
            async move {
                router
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
            }
        });
        Self {
            router,
            task,
            stop: Some(stop),
        }
    }

    /// Waits until the checkpoint reaches `sequence`.
    pub async fn wait_for(&self, sequence: u64) {
        let metrics = self.router.metrics();
        wait_until("the router reaches the sequence", || {
            metrics.position.load(Ordering::Relaxed) >= sequence
        })
        .await;
    }

    /// Kills the task wherever it is (acknowledgements may be in flight).
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Stops gracefully and returns the run's result.
    pub async fn stop(mut self) -> Result<(), wasl_router::RouterError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("the router task does not panic")
    }
}

/// Polls `done` until true, failing after [`WAIT`].
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls an async condition until true, failing after [`WAIT`].
pub async fn wait_until_async<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + WAIT;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The stream's last sequence.
pub async fn last_sequence(store: &EventStore) -> u64 {
    store
        .stream()
        .get_info()
        .await
        .expect("stream info")
        .state
        .last_sequence
}

/// Every message of `org`'s feed, in order (empty when the feed does not exist).
pub async fn feed(js: &jetstream::Context, org: OrgId) -> Vec<StreamMessage> {
    let Ok(stream) = js.get_stream(out_stream(org)).await else {
        return Vec::new();
    };
    let state = stream.cached_info().state.clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return out;
    }
    for sequence in state.first_sequence..=state.last_sequence {
        out.push(stream.get_raw_message(sequence).await.expect("read a feed message"));
    }
    out
}

/// A message as bytes on the wire: every header name and value, then the payload.
pub fn raw_bytes(message: &StreamMessage) -> Vec<u8> {
    let mut bytes = message.subject.as_bytes().to_vec();
    for (name, values) in message.headers.iter() {
        for value in values {
            bytes.extend_from_slice(<_ as AsRef<str>>::as_ref(name).as_bytes());
            bytes.push(b':');
            bytes.extend_from_slice(value.as_str().as_bytes());
            bytes.push(b'\n');
        }
    }
    bytes.extend_from_slice(&message.payload);
    bytes
}

/// A sealed value whose "ciphertext" is the marker itself, so it would show if ever copied.
pub fn sealed(marker: &str) -> EncryptedPii {
    EncryptedPii::new(
        Cipher::XChaCha20Poly1305,
        KeyId::parse("case-test-key-1").expect("key id"),
        vec![7; 24],
        marker.as_bytes().to_vec(),
    )
    .expect("a sealed value")
}

pub fn ctx(user: UserId, org: OrgId, role: Role) -> Context {
    Context {
        now: T0.plus_hours(1),
        actor: Actor {
            user,
            org,
            roles: vec![role],
        },
    }
}

pub fn meta(context: Context) -> CommandMeta {
    CommandMeta {
        command_id: fresh(),
        context,
        traceparent: None,
    }
}

/// The organisations and people of the test network: a referring organisation with a case, a
/// provider with one health service, and a third organisation.
#[derive(Clone)]
pub struct Network {
    pub hub: OrgId,
    pub referring: OrgId,
    pub provider: OrgId,
    pub other: OrgId,
    pub service: ServiceId,
    pub case: CaseId,
    pub caseworker: UserId,
    pub supervisor: UserId,
    pub focal_point: UserId,
}

/// The survivor code planted in the case.
pub const SURVIVOR_CODE: &str = "MRKSURV-7731";

impl Network {
    pub fn caseworker(&self) -> Context {
        ctx(self.caseworker, self.referring, Role::Caseworker)
    }

    pub fn focal_point(&self) -> Context {
        ctx(self.focal_point, self.provider, Role::FocalPoint)
    }

    async fn register(store: &EventStore, coordinator: &Context, org: OrgId, name: &str) {
        let register = OrganisationCommand::Register {
            org_id: org,
            name: DisplayName::parse(name).expect("name"),
            kind: OrgKind::NationalNgo,
        };
        store
            .execute::<Organisation>(org, &register, &meta(coordinator.clone()))
            .await
            .expect("register");
    }

    /// Registers the organisations and the service, opens a case (with personal data that is
    /// all markers) with consent to any referral.
    pub async fn set_up(store: &EventStore) -> Self {
        let net = Network {
            hub: fresh(),
            referring: fresh(),
            provider: fresh(),
            other: fresh(),
            service: fresh(),
            case: fresh(),
            caseworker: fresh(),
            supervisor: fresh(),
            focal_point: fresh(),
        };
        let coordinator = ctx(fresh(), net.hub, Role::Coordinator);
        Self::register(store, &coordinator, net.referring, "Synthetic Referrer (test)").await;
        Self::register(store, &coordinator, net.provider, "Synthetic Health Partner (test)").await;
        Self::register(store, &coordinator, net.other, "Synthetic Other Partner (test)").await;
        net.add_service_with_id(store, net.provider, net.service).await;
        net.open_case_with_id(store, net.case).await;
        net
    }

    /// Opens another case of the referring organisation, like the first one (personal data that
    /// is all markers, consent to any referral).
    pub async fn open_case(&self, store: &EventStore) -> CaseId {
        let case = fresh();
        self.open_case_with_id(store, case).await;
        case
    }

    async fn open_case_with_id(&self, store: &EventStore, case: CaseId) {
        let net = self;
        let district = District::of(Governorate::Ninawa).next().expect("a district of Ninawa");
        let profile = ClientProfile {
            survivor_code: SurvivorCode::parse(SURVIVOR_CODE).expect("code"),
            sex: Sex::Female,
            age: Age::years(30).expect("age"),
            population_group: PopulationGroup::Returnee,
            nationality: Nationality::parse("IQ").expect("nationality"),
            location: Location::new(Governorate::Ninawa, Some(district)).expect("location"),
            language: Language::parse("ar").expect("language"),
            vulnerabilities: vec![],
        };
        let open = CaseCommand::Open(OpenCase {
            case_id: case,
            caseworker: None,
            profile,
            personal: PersonalData {
                name: Some(sealed("MRK-NAME-Zzyzx-Fakename")),
                phone: Some(sealed("MRK-PHONE-0000-000-0000")),
                address: Some(sealed("MRK-ADDRESS-1-Nowhere-Lane")),
                notes: Some(sealed("MRK-CASENOTES-not-a-real-note")),
            },
        });
        store
            .execute::<Case>(case, &open, &meta(net.caseworker()))
            .await
            .expect("open case");
        let consent = CaseCommand::GiveConsent {
            consent_id: fresh(),
            scope: ConsentScope {
                categories: Scope::Any,
                organisations: Scope::Any,
                expires_at: None,
            },
        };
        store
            .execute::<Case>(case, &consent, &meta(net.caseworker()))
            .await
            .expect("consent");
    }

    /// Gives `org` a health service, as the hub's coordinator, and returns its id.
    pub async fn add_service(&self, store: &EventStore, org: OrgId) -> ServiceId {
        let service = fresh();
        self.add_service_with_id(store, org, service).await;
        service
    }

    async fn add_service_with_id(&self, store: &EventStore, org: OrgId, service: ServiceId) {
        let spec = ServiceSpec {
            name: DisplayName::parse("Clinical care (test)").expect("name"),
            category: ServiceCategory::Health,
            areas: vec![Location::governorate_only(Governorate::Ninawa)],
            languages: vec![Language::parse("ar").expect("language")],
            eligibility: Eligibility::everyone(),
        };
        let add = OrganisationCommand::AddService {
            service_id: service,
            spec,
        };
        let coordinator = ctx(fresh(), self.hub, Role::Coordinator);
        store
            .execute::<Organisation>(org, &add, &meta(coordinator))
            .await
            .expect("add service");
    }

    /// Makes a new referral to the provider, with marked notes, and returns its id.
    pub async fn refer(&self, store: &EventStore) -> ReferralId {
        self.refer_case(store, self.case, self.provider, self.service).await
    }

    /// Refers `case` to `service` of `org`, with marked notes, and returns the referral's id.
    pub async fn refer_case(&self, store: &EventStore, case: CaseId, org: OrgId, service: ServiceId) -> ReferralId {
        let referral = fresh();
        let case = store.load::<Case>(case).await.expect("load case").state;
        let provider = store.load::<Organisation>(org).await.expect("load provider").state;
        let request = ReferralCommand::Request(Box::new(RequestReferral {
            referral_id: referral,
            case,
            provider,
            service_id: service,
            priority: Priority::Urgent,
            redirected_from: None,
            consent_override: None,
            notes: Some(sealed("MRK-REFNOTES-not-a-real-note")),
        }));
        store
            .execute::<Referral>(referral, &request, &meta(self.caseworker()))
            .await
            .expect("refer");
        referral
    }

    /// Erases the personal data of `case` as the referring organisation's supervisor, with a
    /// marked reason text.
    pub async fn erase(&self, store: &EventStore, case: CaseId) -> CommandOutcome {
        let erase = CaseCommand::ErasePersonalData {
            reason: Reason {
                code: EraseCode::Other,
                text: Some(sealed("MRK-ERASE-reason-of-an-erasure")),
            },
        };
        store
            .execute::<Case>(
                case,
                &erase,
                &meta(ctx(self.supervisor, self.referring, Role::Supervisor)),
            )
            .await
            .expect("erase the case's personal data")
    }

    /// Acts on a referral as the provider's focal point.
    pub async fn act(&self, store: &EventStore, referral: ReferralId, command: ReferralCommand) -> CommandOutcome {
        store
            .execute::<Referral>(referral, &command, &meta(self.focal_point()))
            .await
            .expect("the provider's command is carried out")
    }

    /// Acts on a referral as the referring caseworker.
    pub async fn refer_side(
        &self,
        store: &EventStore,
        referral: ReferralId,
        command: ReferralCommand,
    ) -> CommandOutcome {
        store
            .execute::<Referral>(referral, &command, &meta(self.caseworker()))
            .await
            .expect("the referring side's command is carried out")
    }
}
