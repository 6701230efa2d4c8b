//! A small synthetic network for tests, built through the real command path (feature `testing`;
//! fixtures for tests, never in production builds).
//!
//! Where [`Generator`](crate::Generator) plays a large network by the domain alone, [`Network`]
//! sets up a handful of organisations on a live [`EventStore`] with `EventStore::execute`, the
//! command handler every service uses: a referring organisation with a case that consented to
//! any referral, providers with services, a coordinators' hub, and the people who act for them.
//! Tests then refer and act on referrals through the same path. Names, survivor codes and ids
//! are obviously synthetic (`wasl_domain::testing`); personal data is whatever a test plants.
//!
//! ```ignore
//! let net = Network::set_up(&store).await;          // one provider with a health service
//! let referral = net.refer(&store).await;
//! net.act(&store, referral, ReferralCommand::Receive).await;
//! ```

use std::sync::Arc;
use wasl_domain::case::{Case, CaseCommand, CloseCase, OpenCase};
use wasl_domain::catalogue::{CloseCode, Priority, Reason, ServiceCategory};
use wasl_domain::client::{ClientProfile, Language};
use wasl_domain::directory::{DisplayName, Eligibility, OrgKind, Organisation, OrganisationCommand, ServiceSpec};
use wasl_domain::geo::{Governorate, Location};
use wasl_domain::ids::{CaseId, ConsentId, OrgId, ReferralId, ServiceId, UserId};
use wasl_domain::pii::{EncryptedPii, PersonalData};
use wasl_domain::referral::{Referral, ReferralCommand, RequestReferral};
use wasl_domain::testing::{T0, actor, any_consent, fresh, profile};
use wasl_domain::time::Timestamp;
use wasl_domain::{Context, Role};
use wasl_store::testing::meta;
use wasl_store::{CommandError, CommandMeta, CommandOutcome, EventStore};

/// Where the network's commands take their time from.
type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The organisations, people and the first case of a test network, and the commands they give.
///
/// Every command is carried out by `EventStore::execute` with a fresh command id, at the time of
/// the network's clock (an hour after [`T0`] unless the builder was given another), and must
/// succeed, except through [`Network::try_act`].
#[derive(Clone)]
pub struct Network {
    /// The coordinators' organisation (not registered in the directory).
    pub hub: OrgId,
    /// The referring organisation, owner of the cases.
    pub referring: OrgId,
    /// The receiving organisations, each with a service of every configured category.
    pub providers: Vec<OrgId>,
    /// Organisations registered without services.
    pub others: Vec<OrgId>,
    /// Every provider's services: (organisation, category, service).
    pub services: Vec<(OrgId, ServiceCategory, ServiceId)>,
    /// The first case (opened at set-up unless the builder was told not to).
    pub case: CaseId,
    /// The first case's consent to any referral.
    pub consent: ConsentId,
    /// The referring organisation's caseworker.
    pub caseworker: UserId,
    /// The referring organisation's supervisor.
    pub supervisor: UserId,
    /// The focal point of every provider.
    pub focal_point: UserId,
    /// The hub's coordinator, who keeps the directory.
    pub coordinator: UserId,
    /// The profile of every case the network opens.
    pub profile: ClientProfile,
    /// The personal data of every case the network opens with [`Network::open_case`].
    pub personal: PersonalData,
    /// The notes of every referral made with [`Network::ask`].
    pub notes: Option<EncryptedPii>,
    clock: Clock,
}

/// A referral to make: which case, to which service, how urgent, with what notes.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Ask {
    /// The case referred.
    pub case: CaseId,
    /// The receiving organisation.
    pub org: OrgId,
    pub service: ServiceId,
    /// How urgent.
    pub priority: Priority,
    /// The referral's notes.
    pub notes: Option<EncryptedPii>,
}

/// How to set a [`Network`] up; [`Network::builder`] starts from one provider with a health
/// service, fresh ids, the profile `TEST-0001` without personal data, and an hour after [`T0`].
pub struct NetworkBuilder {
    net: Network,
    categories: Vec<ServiceCategory>,
    others: usize,
    open_case: bool,
}

impl NetworkBuilder {
    /// Uses `org` as the referring organisation.
    pub fn referring(mut self, org: OrgId) -> Self {
        self.net.referring = org;
        self
    }

    /// Uses these organisations as the providers (in this order).
    pub fn providers(mut self, orgs: impl IntoIterator<Item = OrgId>) -> Self {
        self.net.providers = orgs.into_iter().collect();
        self
    }

    /// Registers `count` more organisations, without services.
    pub fn others(mut self, count: usize) -> Self {
        self.others = count;
        self
    }

    /// Gives every provider one service of each of `categories` (in this order).
    pub fn categories(mut self, categories: &[ServiceCategory]) -> Self {
        self.categories = categories.to_vec();
        self
    }

    /// Uses `user` as the referring organisation's caseworker.
    pub fn caseworker(mut self, user: UserId) -> Self {
        self.net.caseworker = user;
        self
    }

    /// Uses `user` as every provider's focal point.
    pub fn focal_point(mut self, user: UserId) -> Self {
        self.net.focal_point = user;
        self
    }

    /// Opens the cases with this profile.
    pub fn profile(mut self, profile: ClientProfile) -> Self {
        self.net.profile = profile;
        self
    }

    /// Opens the cases with this personal data.
    pub fn personal(mut self, personal: PersonalData) -> Self {
        self.net.personal = personal;
        self
    }

    /// Makes referrals with these notes.
    pub fn notes(mut self, notes: EncryptedPii) -> Self {
        self.net.notes = Some(notes);
        self
    }

    /// Takes the time of every command from `now` (a test clock, the wall clock).
    pub fn clock(mut self, now: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.net.clock = Arc::new(now);
        self
    }

    /// Leaves the first case for the test to open (with [`Network::open_case_as`], for data
    /// sealed for the opening event), and its consent to give.
    pub fn without_case(mut self) -> Self {
        self.open_case = false;
        self
    }

    /// Registers the organisations (the referring one, the providers, the others), adds the
    /// services, and opens the first case with its consent.
    pub async fn build(self, store: &EventStore) -> Network {
        let mut net = self.net;
        for _ in 0..self.others {
            net.others.push(fresh());
        }
        net.register(store, net.referring, "Synthetic Referrer (test)").await;
        for (n, org) in net.providers.iter().enumerate() {
            net.register(store, *org, &format!("Synthetic Provider {} (test)", n + 1))
                .await;
        }
        for (n, org) in net.others.iter().enumerate() {
            net.register(store, *org, &format!("Synthetic Other Partner {} (test)", n + 1))
                .await;
        }
        let mut services = Vec::new();
        for org in &net.providers {
            for category in &self.categories {
                services.push((*org, *category, net.add_service(store, *org, *category).await));
            }
        }
        net.services = services;
        if self.open_case {
            net.open_case_with_ids(store, net.case, net.consent).await;
        }
        net
    }
}

impl Network {
    /// A network to configure; see [`NetworkBuilder`].
    pub fn builder() -> NetworkBuilder {
        NetworkBuilder {
            net: Network {
                hub: fresh(),
                referring: fresh(),
                providers: vec![fresh()],
                others: Vec::new(),
                services: Vec::new(),
                case: fresh(),
                consent: fresh(),
                caseworker: fresh(),
                supervisor: fresh(),
                focal_point: fresh(),
                coordinator: fresh(),
                profile: profile("TEST-0001"),
                personal: PersonalData::default(),
                notes: None,
                clock: Arc::new(|| T0.plus_hours(1)),
            },
            categories: vec![ServiceCategory::Health],
            others: 0,
            open_case: true,
        }
    }

    /// The standard network: one provider with a health service, a case with consent.
    pub async fn set_up(store: &EventStore) -> Self {
        Self::builder().build(store).await
    }

    /// The time by the network's clock.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// `user` of `org` acting as `role`, now.
    pub fn context(&self, user: UserId, org: OrgId, role: Role) -> Context {
        Context {
            now: self.now(),
            actor: actor(user, org, role),
        }
    }

    /// The referring organisation's caseworker, now.
    pub fn caseworker(&self) -> Context {
        self.context(self.caseworker, self.referring, Role::Caseworker)
    }

    /// The referring organisation's supervisor, now.
    pub fn supervisor(&self) -> Context {
        self.context(self.supervisor, self.referring, Role::Supervisor)
    }

    /// The first provider's focal point, now.
    pub fn focal_point(&self) -> Context {
        self.focal_point_of(0)
    }

    /// The focal point of provider `provider` (an index into [`Network::providers`]), now.
    pub fn focal_point_of(&self, provider: usize) -> Context {
        self.context(self.focal_point, self.providers[provider], Role::FocalPoint)
    }

    /// The hub's coordinator, now.
    pub fn coordinator(&self) -> Context {
        self.context(self.coordinator, self.hub, Role::Coordinator)
    }

    /// The first provider.
    pub fn provider(&self) -> OrgId {
        self.providers[0]
    }

    /// The first provider's first service.
    pub fn service(&self) -> ServiceId {
        self.services[0].2
    }

    /// `org`'s service of `category`.
    pub fn service_of(&self, org: OrgId, category: ServiceCategory) -> ServiceId {
        self.services
            .iter()
            .find(|(o, c, _)| *o == org && *c == category)
            .unwrap_or_else(|| panic!("the network has no {category:?} service of {org}"))
            .2
    }

    /// Registers `org` as a national NGO called `name`, as the coordinator.
    pub async fn register(&self, store: &EventStore, org: OrgId, name: &str) {
        let register = OrganisationCommand::Register {
            org_id: org,
            name: DisplayName::parse(name).expect("a display name"),
            kind: OrgKind::NationalNgo,
        };
        store
            .execute::<Organisation>(org, &register, &meta(self.coordinator()))
            .await
            .expect("register the organisation");
    }

    /// Gives `org` a service of `category` for all of Ninawa in Arabic, open to everyone, as the
    /// coordinator, and returns its id.
    pub async fn add_service(&self, store: &EventStore, org: OrgId, category: ServiceCategory) -> ServiceId {
        let service = fresh();
        let add = OrganisationCommand::AddService {
            service_id: service,
            spec: ServiceSpec {
                name: DisplayName::parse("Synthetic service (test)").expect("a display name"),
                category,
                areas: vec![Location::governorate_only(Governorate::Ninawa)],
                languages: vec![Language::parse("ar").expect("a language")],
                eligibility: Eligibility::everyone(),
            },
        };
        store
            .execute::<Organisation>(org, &add, &meta(self.coordinator()))
            .await
            .expect("add the service");
        service
    }

    /// Opens another case like the first (profile, personal data, consent to any referral) and
    /// returns its id.
    pub async fn open_case(&self, store: &EventStore) -> CaseId {
        let case = fresh();
        self.open_case_with_ids(store, case, fresh()).await;
        case
    }

    /// Opens `case` like the first, with consent `consent` to any referral.
    pub async fn open_case_with_ids(&self, store: &EventStore, case: CaseId, consent: ConsentId) {
        self.open_case_as(store, case, self.personal.clone(), &meta(self.caseworker()))
            .await;
        self.give_consent(store, case, consent).await;
    }

    /// Opens `case` with the network's profile and `personal`, under `meta` (whose command id
    /// names the opening event, for data sealed for it), without consent.
    pub async fn open_case_as(&self, store: &EventStore, case: CaseId, personal: PersonalData, meta: &CommandMeta) {
        let open = CaseCommand::Open(OpenCase {
            case_id: case,
            caseworker: None,
            profile: self.profile.clone(),
            personal,
        });
        store.execute::<Case>(case, &open, meta).await.expect("open the case");
    }

    /// Records `case`'s consent `consent` to any referral, as the caseworker.
    pub async fn give_consent(&self, store: &EventStore, case: CaseId, consent: ConsentId) {
        let give = CaseCommand::GiveConsent {
            consent_id: consent,
            scope: any_consent(),
        };
        store
            .execute::<Case>(case, &give, &meta(self.caseworker()))
            .await
            .expect("give consent");
    }

    /// Withdraws `case`'s consent `consent`, as the caseworker.
    pub async fn withdraw_consent(&self, store: &EventStore, case: CaseId, consent: ConsentId) {
        let withdraw = CaseCommand::WithdrawConsent { consent_id: consent };
        store
            .execute::<Case>(case, &withdraw, &meta(self.caseworker()))
            .await
            .expect("withdraw consent");
    }

    /// Closes `case` as the caseworker (needs met), cancelling its `open` referrals.
    pub async fn close_case(&self, store: &EventStore, case: CaseId, open: Vec<ReferralId>) {
        let close = CaseCommand::Close(CloseCase {
            reason: Reason::coded(CloseCode::NeedsMet),
            open_referrals: open,
            cancel_open_referrals: true,
        });
        store
            .execute::<Case>(case, &close, &meta(self.caseworker()))
            .await
            .expect("close the case");
    }

    /// The standard referral: the first case to the first provider's first service, urgent,
    /// with the network's notes.
    pub fn ask(&self) -> Ask {
        Ask {
            case: self.case,
            org: self.provider(),
            service: self.service(),
            priority: Priority::Urgent,
            notes: self.notes.clone(),
        }
    }

    /// The first case to provider `provider`'s service of `category` at `priority`, with the
    /// network's notes.
    pub fn ask_of(&self, provider: usize, category: ServiceCategory, priority: Priority) -> Ask {
        let org = self.providers[provider];
        Ask {
            org,
            service: self.service_of(org, category),
            priority,
            ..self.ask()
        }
    }

    /// The command that makes `ask` as `referral`, on the case's and the provider's states as
    /// stored now.
    pub async fn request(&self, store: &EventStore, referral: ReferralId, ask: &Ask) -> ReferralCommand {
        let case = store.load::<Case>(ask.case).await.expect("load the case").state;
        let provider = store
            .load::<Organisation>(ask.org)
            .await
            .expect("load the provider")
            .state;
        ReferralCommand::Request(Box::new(RequestReferral {
            referral_id: referral,
            case,
            provider,
            service_id: ask.service,
            priority: ask.priority,
            redirected_from: None,
            consent_override: None,
            notes: ask.notes.clone(),
        }))
    }

    /// Makes the standard referral ([`Network::ask`]) as the caseworker and returns its id.
    pub async fn refer(&self, store: &EventStore) -> ReferralId {
        self.refer_as(store, &self.ask(), &meta(self.caseworker())).await
    }

    /// Refers the first case to provider `provider`'s service of `category` at `priority`, as
    /// the caseworker, and returns the referral's id.
    pub async fn refer_to(
        &self,
        store: &EventStore,
        provider: usize,
        category: ServiceCategory,
        priority: Priority,
    ) -> ReferralId {
        let ask = self.ask_of(provider, category, priority);
        self.refer_as(store, &ask, &meta(self.caseworker())).await
    }

    /// Refers `case` to `service` of `org`, urgent, with the network's notes, as the caseworker,
    /// and returns the referral's id.
    pub async fn refer_case(&self, store: &EventStore, case: CaseId, org: OrgId, service: ServiceId) -> ReferralId {
        let ask = Ask {
            case,
            org,
            service,
            ..self.ask()
        };
        self.refer_as(store, &ask, &meta(self.caseworker())).await
    }

    /// Makes `ask` under `meta` (whose command id names the event, for notes sealed for it) and
    /// returns the referral's id.
    pub async fn refer_as(&self, store: &EventStore, ask: &Ask, meta: &CommandMeta) -> ReferralId {
        let referral = fresh();
        let request = self.request(store, referral, ask).await;
        store
            .execute::<Referral>(referral, &request, meta)
            .await
            .expect("refer");
        referral
    }

    /// Acts on a referral as the first provider's focal point.
    pub async fn act(&self, store: &EventStore, referral: ReferralId, command: ReferralCommand) -> CommandOutcome {
        self.act_by(store, referral, 0, command).await
    }

    /// Acts on a referral as the focal point of provider `provider`.
    pub async fn act_by(
        &self,
        store: &EventStore,
        referral: ReferralId,
        provider: usize,
        command: ReferralCommand,
    ) -> CommandOutcome {
        store
            .execute::<Referral>(referral, &command, &meta(self.focal_point_of(provider)))
            .await
            .expect("the provider's command is carried out")
    }

    /// Acts on a referral as the first provider's focal point, and returns what the store says.
    pub async fn try_act(
        &self,
        store: &EventStore,
        referral: ReferralId,
        command: ReferralCommand,
    ) -> Result<CommandOutcome, CommandError> {
        store
            .execute::<Referral>(referral, &command, &meta(self.focal_point()))
            .await
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
