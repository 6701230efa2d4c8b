//! A synthetic network (a health provider, a referring organisation, one consenting case) on a
//! fresh nats-server, and helpers to drive referrals through the real command handler.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasl_domain::case::{Case, CaseCommand, ConsentScope, OpenCase, Scope};
use wasl_domain::catalogue::{Priority, ServiceCategory};
use wasl_domain::client::{Age, ClientProfile, Language, Nationality, PopulationGroup, Sex, SurvivorCode};
use wasl_domain::directory::{DisplayName, Eligibility, OrgKind, Organisation, OrganisationCommand, ServiceSpec};
use wasl_domain::geo::{Governorate, Location};
use wasl_domain::ids::{CaseId, CommandId, OrgId, ReferralId, ServiceId, UserId, uuid_v7_from_parts};
use wasl_domain::pii::PersonalData;
use wasl_domain::referral::{Referral, ReferralCommand, RequestReferral};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Context, Role};
use wasl_store::{CommandError, CommandMeta, CommandOutcome, EventStore, StoreConfig};

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

pub async fn connect(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect()
        .connect(url)
        .await
        .expect("connect to the test nats-server")
}

pub async fn open_store(url: &str, config: StoreConfig) -> EventStore {
    EventStore::open(connect(url).await, config)
        .await
        .expect("open the event store")
}

/// The organisations and people of the test network.
#[derive(Clone)]
pub struct Network {
    pub hub: OrgId,
    pub referring: OrgId,
    pub provider: OrgId,
    pub service: ServiceId,
    pub case: CaseId,
    caseworker: UserId,
    focal_point: UserId,
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

impl Network {
    pub fn caseworker(&self) -> Context {
        ctx(self.caseworker, self.referring, Role::Caseworker)
    }

    pub fn focal_point(&self) -> Context {
        ctx(self.focal_point, self.provider, Role::FocalPoint)
    }

    /// Registers the provider and its service, opens a case with consent to health referrals.
    pub async fn set_up(store: &EventStore) -> Self {
        let net = Network {
            hub: fresh(),
            referring: fresh(),
            provider: fresh(),
            service: fresh(),
            case: fresh(),
            caseworker: fresh(),
            focal_point: fresh(),
        };
        let coordinator = ctx(fresh(), net.hub, Role::Coordinator);
        let register = OrganisationCommand::Register {
            org_id: net.provider,
            name: DisplayName::parse("Test Health Partner").expect("name"),
            kind: OrgKind::NationalNgo,
        };
        store
            .execute::<Organisation>(net.provider, &register, &meta(coordinator.clone()))
            .await
            .expect("register");
        let spec = ServiceSpec {
            name: DisplayName::parse("Clinical care (test)").expect("name"),
            category: ServiceCategory::Health,
            areas: vec![Location::governorate_only(Governorate::Ninawa)],
            languages: vec![Language::parse("ar").expect("language")],
            eligibility: Eligibility::everyone(),
        };
        let add = OrganisationCommand::AddService {
            service_id: net.service,
            spec,
        };
        store
            .execute::<Organisation>(net.provider, &add, &meta(coordinator))
            .await
            .expect("add service");
        let profile = ClientProfile {
            survivor_code: SurvivorCode::parse("TEST-0001").expect("code"),
            sex: Sex::Female,
            age: Age::years(30).expect("age"),
            population_group: PopulationGroup::Returnee,
            nationality: Nationality::parse("IQ").expect("nationality"),
            location: Location::governorate_only(Governorate::Ninawa),
            language: Language::parse("ar").expect("language"),
            vulnerabilities: vec![],
        };
        let open = CaseCommand::Open(OpenCase {
            case_id: net.case,
            caseworker: None,
            profile,
            personal: PersonalData::default(),
        });
        store
            .execute::<Case>(net.case, &open, &meta(net.caseworker()))
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
            .execute::<Case>(net.case, &consent, &meta(net.caseworker()))
            .await
            .expect("consent");
        net
    }

    /// The command that refers the case to the provider's service.
    pub async fn request(&self, store: &EventStore, referral: ReferralId) -> ReferralCommand {
        let case = store.load::<Case>(self.case).await.expect("load case").state;
        let provider = store
            .load::<Organisation>(self.provider)
            .await
            .expect("load provider")
            .state;
        ReferralCommand::Request(Box::new(RequestReferral {
            referral_id: referral,
            case,
            provider,
            service_id: self.service,
            priority: Priority::Urgent,
            redirected_from: None,
            consent_override: None,
            notes: None,
        }))
    }

    /// Makes a new referral and returns its id.
    pub async fn refer(&self, store: &EventStore) -> ReferralId {
        let referral = fresh();
        let request = self.request(store, referral).await;
        store
            .execute::<Referral>(referral, &request, &meta(self.caseworker()))
            .await
            .expect("refer");
        referral
    }

    /// Acts on a referral as the provider's focal point.
    pub async fn act(
        &self,
        store: &EventStore,
        referral: ReferralId,
        command: ReferralCommand,
    ) -> Result<CommandOutcome, CommandError> {
        store
            .execute::<Referral>(referral, &command, &meta(self.focal_point()))
            .await
    }
}

/// The command ids of every event on the stream, in order, read through a subscription.
pub async fn all_events(store: &EventStore) -> Vec<wasl_store::load::Recorded> {
    use futures_util::StreamExt;
    let last = store
        .stream()
        .get_info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    let mut feed = wasl_store::subscribe::subscribe(store.stream(), 1, None)
        .await
        .expect("subscribe");
    let mut out = Vec::new();
    while out
        .last()
        .is_none_or(|r: &wasl_store::load::Recorded| r.sequence < last)
    {
        let next = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("the feed keeps up");
        out.push(next.expect("the feed does not end").expect("a readable event"));
    }
    out
}

/// A unique command id, for tests that send a command twice.
pub fn command_id() -> CommandId {
    fresh()
}
