//! A small given / when / then harness and a fixed, obviously synthetic world: a referring
//! organisation, a receiving one, their staff, one case and one health service.

use wasl_domain::case::{Case, CaseCommand, CaseEvent, ConsentScope, OpenCase};
use wasl_domain::catalogue::{Priority, Reason, ReasonCode, ServiceCategory};
use wasl_domain::client::{ClientProfile, Identifying, IdentifyingFacts, Language, Vulnerability};
use wasl_domain::directory::{DisplayName, Eligibility, OrgKind, Organisation, OrganisationEvent, ServiceSpec};
use wasl_domain::geo::{Governorate, Location};
use wasl_domain::ids::{CaseId, ConsentId, OrgId, ReferralId, ServiceId};
use wasl_domain::pii::{Cipher, EncryptedPii, KeyId, PersonalData};
use wasl_domain::referral::{Referral, ReferralCommand, ReferralEvent, RequestReferral};
use wasl_domain::testing::ctx;
use wasl_domain::{Aggregate, Context, DomainError, Role};

pub use wasl_domain::testing::{T0, any_consent, at, id, mosul};

pub fn referring_org() -> OrgId {
    id(1)
}
pub fn receiving_org() -> OrgId {
    id(2)
}
pub fn other_org() -> OrgId {
    id(3)
}
pub fn hub_org() -> OrgId {
    id(9)
}
pub fn case_id() -> CaseId {
    id(10)
}
pub fn referral_id() -> ReferralId {
    id(20)
}
pub fn health_service() -> ServiceId {
    id(30)
}
pub fn consent_id() -> ConsentId {
    id(40)
}

/// Staff member `n` of `org`, acting as `role` an hour after [`T0`].
fn staff(n: u8, org: OrgId, role: Role) -> Context {
    ctx(id(100 + n), org, role)
}

pub fn caseworker() -> Context {
    staff(1, referring_org(), Role::Caseworker)
}
pub fn supervisor() -> Context {
    staff(2, referring_org(), Role::Supervisor)
}
pub fn focal_point() -> Context {
    staff(3, receiving_org(), Role::FocalPoint)
}
pub fn partner_system() -> Context {
    staff(4, receiving_org(), Role::PartnerSystem)
}
pub fn outsider_caseworker() -> Context {
    let mut outsider = staff(5, other_org(), Role::Caseworker);
    outsider.actor.roles = vec![Role::Caseworker, Role::Supervisor, Role::FocalPoint];
    outsider
}
pub fn coordinator() -> Context {
    staff(6, hub_org(), Role::Coordinator)
}
pub fn system() -> Context {
    staff(7, hub_org(), Role::System)
}
pub fn admin() -> Context {
    staff(8, hub_org(), Role::Admin)
}

/// A sealed value with dummy bytes; `n` varies the bytes. Stands for encrypted personal data.
pub fn pii(n: u8) -> EncryptedPii {
    EncryptedPii::new(
        Cipher::XChaCha20Poly1305,
        KeyId::parse("case:test:1").expect("key id"),
        vec![n; 24],
        vec![n; 32],
    )
    .expect("valid sealed value")
}

/// A sealed empty string: present, but says nothing.
pub fn empty_pii() -> EncryptedPii {
    EncryptedPii::new(
        Cipher::XChaCha20Poly1305,
        KeyId::parse("case:test:1").expect("key id"),
        vec![0; 24],
        vec![0; 16],
    )
    .expect("valid sealed value")
}

/// A reason with explanatory text.
pub fn explained<C: ReasonCode>(code: C) -> Reason<C> {
    Reason {
        code,
        text: Some(pii(7)),
    }
}

/// The standard client, living in a district (which travels with a referral) and with a
/// vulnerability recorded (which does not).
pub fn profile() -> ClientProfile {
    ClientProfile {
        location: mosul(),
        identifying: Identifying::sealed(wasl_domain::testing::sealed_facts(&facts(vec![
            Vulnerability::GbvSurvivor,
        ]))),
        ..wasl_domain::testing::profile("TEST-0001")
    }
}

/// The standard client's identifying facts (code `TEST-0001`, 30 years) with `vulnerabilities`.
pub fn facts(vulnerabilities: Vec<Vulnerability>) -> IdentifyingFacts {
    IdentifyingFacts {
        survivor_code: wasl_domain::client::SurvivorCode::parse("TEST-0001").expect("code"),
        age_years: Some(30),
        vulnerabilities,
    }
}

pub fn case_opened() -> CaseEvent {
    CaseEvent::Opened {
        case_id: case_id(),
        owner_org: referring_org(),
        caseworker: caseworker().actor.user,
        profile: profile(),
        personal: PersonalData {
            name: Some(pii(1)),
            ..PersonalData::default()
        },
    }
}

pub fn consent_given(scope: ConsentScope) -> CaseEvent {
    CaseEvent::ConsentGiven {
        consent_id: consent_id(),
        scope,
    }
}

pub fn open_case_command() -> CaseCommand {
    CaseCommand::Open(OpenCase {
        case_id: case_id(),
        caseworker: None,
        profile: profile(),
        personal: PersonalData {
            name: Some(pii(1)),
            ..PersonalData::default()
        },
    })
}

/// The case with consent to any service of any organisation.
pub fn consenting_case() -> Case {
    Case::replay(&[case_opened(), consent_given(any_consent())])
}

pub fn health_spec() -> ServiceSpec {
    ServiceSpec {
        name: DisplayName::parse("Clinical care (test clinic)").expect("name"),
        category: ServiceCategory::Health,
        areas: vec![Location::governorate_only(Governorate::Ninawa)],
        languages: vec![
            Language::parse("ar").expect("language"),
            Language::parse("ckb").expect("language"),
        ],
        eligibility: Eligibility::everyone(),
    }
}

pub fn provider_registered() -> OrganisationEvent {
    OrganisationEvent::Registered {
        org_id: receiving_org(),
        name: DisplayName::parse("Test Health Partner").expect("name"),
        kind: OrgKind::NationalNgo,
    }
}

/// The receiving organisation with its accepting health service.
pub fn provider() -> Organisation {
    Organisation::replay(&[
        provider_registered(),
        OrganisationEvent::ServiceAdded {
            service_id: health_service(),
            spec: health_spec(),
        },
    ])
}

pub fn request(case: Case, provider: Organisation) -> RequestReferral {
    RequestReferral {
        referral_id: referral_id(),
        case,
        provider,
        service_id: health_service(),
        priority: Priority::Urgent,
        redirected_from: None,
        consent_override: None,
        notes: Some(pii(3)),
    }
}

/// The event a caseworker's referral of the consenting case to the health service records.
pub fn requested() -> ReferralEvent {
    let events = Referral::default()
        .decide(
            &ReferralCommand::Request(Box::new(request(consenting_case(), provider()))),
            &caseworker(),
        )
        .expect("the standard referral is allowed");
    events.into_iter().next().expect("one event")
}

/// Ties an event type to its aggregate, so `given(events)` knows which aggregate to build.
pub trait EventOf: Sized {
    type Aggregate: Aggregate<Event = Self>;
}

impl EventOf for CaseEvent {
    type Aggregate = Case;
}
impl EventOf for ReferralEvent {
    type Aggregate = Referral;
}
impl EventOf for OrganisationEvent {
    type Aggregate = Organisation;
}

/// Starts a scenario from a history.
pub fn given<E: EventOf>(history: impl IntoIterator<Item = E>) -> Given<E::Aggregate> {
    let history: Vec<E> = history.into_iter().collect();
    Given {
        state: E::Aggregate::replay(&history),
    }
}

/// Starts a scenario before the aggregate exists.
pub fn fresh<A: Aggregate>() -> Given<A> {
    Given { state: A::default() }
}

pub struct Given<A> {
    state: A,
}

impl<A: Aggregate> Given<A> {
    /// Starts a scenario from a state reached earlier in the same test.
    pub fn from_state(state: A) -> Self {
        Self { state }
    }

    pub fn when(&self, command: A::Command, ctx: &Context) -> Then<A> {
        Then {
            state: self.state.clone(),
            result: self.state.decide(&command, ctx),
        }
    }
}

pub struct Then<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, DomainError>,
}

impl<A: Aggregate> Then<A> {
    /// Asserts the command was accepted with exactly `expected`, and returns the new state.
    #[track_caller]
    pub fn then(self, expected: Vec<A::Event>) -> A {
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "the command recorded other events than expected");
                events.iter().fold(self.state, |s, e| s.evolve(e))
            }
            Err(err) => panic!(
                "the command was refused ({}: {err}), expected it to succeed",
                err.code()
            ),
        }
    }

    /// Asserts the command was refused with `expected`.
    #[track_caller]
    pub fn then_refused(self, expected: DomainError) {
        match self.result {
            Ok(events) => panic!(
                "the command was accepted with {} events, expected {expected:?}",
                events.len()
            ),
            Err(err) => assert_eq!(err, expected),
        }
    }

    /// Asserts the command was refused for an invalid field.
    #[track_caller]
    pub fn then_invalid(self, field: &str) {
        match self.result {
            Err(DomainError::Invalid(err)) => assert_eq!(err.field, field),
            other => panic!("expected an invalid {field}, got {other:?}"),
        }
    }

    /// The events, for tests that look at one detail.
    #[track_caller]
    pub fn events(self) -> Vec<A::Event> {
        self.result
            .unwrap_or_else(|err| panic!("the command was refused: {err:?}"))
    }
}

/// Property-test settings: `PROPTEST_CASES` cases (default 1000), no failure files in the tree.
pub fn proptest_config() -> proptest::prelude::ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    proptest::prelude::ProptestConfig {
        cases,
        failure_persistence: None,
        ..Default::default()
    }
}
