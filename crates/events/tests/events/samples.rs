//! One representative sample of every event type, and variations of the optional parts.
//!
//! All data is obviously fake: fixed UUIDv7 ids, survivor code `TEST-0001`, sealed values with
//! dummy bytes. [`sample`] matches on every [`EventType`], and `DomainEvent::kind` matches on
//! every domain event variant, so a new event does not compile until it has a sample here (and
//! the golden-fixture test then asks for its fixture).

use uuid::Uuid;
use wasl_domain::case::{CaseEvent, ConsentScope, Scope};
use wasl_domain::catalogue::{
    AcknowledgeCode, CancelCode, CloseCode, Decline, DeclineCode, EraseCode, ErrorCode, FailCode, HoldCode,
    OverrideCode, Priority, Reason, ServiceCategory,
};
use wasl_domain::client::{
    AgeGroup, ClientProfile, Identifying, IdentifyingFacts, Language, Nationality, PopulationGroup, SealedFacts, Sex,
    SurvivorCode, SurvivorCodeLookup, Vulnerability,
};
use wasl_domain::directory::{DisplayName, Eligibility, OrgKind, OrganisationEvent, ServiceSpec};
use wasl_domain::geo::{Governorate, Location};
use wasl_domain::ids::{CaseId, CommandId, ConsentId, EventId, OrgId, ReferralId, ServiceId, UserId};
use wasl_domain::pii::{Cipher, EncryptedPii, KeyId, PersonalData};
use wasl_domain::referral::{
    ClientSummary, ConsentBasis, FollowUp, OverdueKind, ReferralEvent, ReferralRequested, Satisfaction, ServiceReceived,
};
use wasl_domain::testing::{self, actor, mosul};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Role};
use wasl_events::{DomainEvent, EventMeta, EventType, StoredEvent};

/// 2026-01-01T00:00:00Z, in milliseconds.
pub const T0: i64 = testing::T0.unix_millis();

/// A fixed UUIDv7 whose last bytes are `n`, so that ids are easy to tell apart in hex dumps.
pub fn uuid(n: u64) -> Uuid {
    Uuid::parse_str(&format!("019b7728-0000-7000-8000-{n:012x}")).unwrap()
}

pub fn org_a() -> OrgId {
    OrgId::from_uuid(uuid(0xa1)).unwrap()
}
pub fn org_b() -> OrgId {
    OrgId::from_uuid(uuid(0xb1)).unwrap()
}
pub fn org_c() -> OrgId {
    OrgId::from_uuid(uuid(0xc1)).unwrap()
}
pub fn case_id() -> CaseId {
    CaseId::from_uuid(uuid(0xca5e)).unwrap()
}
pub fn referral_id() -> ReferralId {
    ReferralId::from_uuid(uuid(0x4ef)).unwrap()
}
fn earlier_referral_id() -> ReferralId {
    ReferralId::from_uuid(uuid(0x4ee)).unwrap()
}
fn consent_id() -> ConsentId {
    ConsentId::from_uuid(uuid(0xc045)).unwrap()
}
fn service_id() -> ServiceId {
    ServiceId::from_uuid(uuid(0x5e4)).unwrap()
}
fn user(n: u64) -> UserId {
    UserId::from_uuid(uuid(n)).unwrap()
}

pub fn caseworker() -> Actor {
    actor(user(0xa2), org_a(), Role::Caseworker)
}
fn supervisor() -> Actor {
    Actor {
        roles: vec![Role::Caseworker, Role::Supervisor],
        ..actor(user(0xa3), org_a(), Role::Supervisor)
    }
}
fn focal_point() -> Actor {
    actor(user(0xb2), org_b(), Role::FocalPoint)
}
fn partner_system() -> Actor {
    actor(user(0xb3), org_b(), Role::PartnerSystem)
}
fn system() -> Actor {
    actor(user(0x5157), org_c(), Role::System)
}
fn coordinator() -> Actor {
    actor(user(0xc2), org_c(), Role::Coordinator)
}

/// A dummy sealed value: XChaCha20-Poly1305, a nonce and a 1-byte "plaintext" plus tag, all `tag`.
pub fn pii(tag: u8) -> EncryptedPii {
    EncryptedPii::new(
        Cipher::XChaCha20Poly1305,
        KeyId::parse(&format!("case:{}:1", case_id())).unwrap(),
        vec![tag; 24],
        vec![tag; 17],
    )
    .unwrap()
}

/// A dummy sealed value under AES-256-GCM.
pub fn pii_aes(tag: u8) -> EncryptedPii {
    EncryptedPii::new(
        Cipher::Aes256Gcm,
        KeyId::parse("case-key.2").unwrap(),
        vec![tag; 12],
        vec![tag; 16],
    )
    .unwrap()
}

/// A profile as the golden fixtures hold it: the identifying facts in the clear, as events
/// written before they were sealed have them (the fixtures prove such bytes still read).
pub fn profile() -> ClientProfile {
    ClientProfile {
        age_group: AgeGroup::Age25To59,
        population_group: PopulationGroup::Idp,
        location: mosul(),
        identifying: Identifying::Clear(IdentifyingFacts {
            survivor_code: SurvivorCode::parse("TEST-0001").unwrap(),
            age_years: Some(29),
            vulnerabilities: vec![Vulnerability::GbvSurvivor, Vulnerability::FemaleHeadedHousehold],
        }),
        ..testing::profile("TEST-0001")
    }
}

/// Every field at an edge: undisclosed sex, an age group only, an unknown nationality, a
/// governorate without district, a regional language tag, no vulnerabilities (in the clear).
fn profile_minimal() -> ClientProfile {
    ClientProfile {
        sex: Sex::Undisclosed,
        age_group: AgeGroup::Age12To17,
        nationality: Nationality::parse("XX").unwrap(),
        location: Location::governorate_only(Governorate::Halabja),
        language: Language::parse("ckb-IQ").unwrap(),
        identifying: Identifying::Clear(IdentifyingFacts {
            survivor_code: SurvivorCode::parse("TEST-0002").unwrap(),
            age_years: None,
            vulnerabilities: vec![],
        }),
        ..testing::profile("TEST-0002")
    }
}

/// A profile as every command writes it now: the identifying facts sealed.
pub fn profile_sealed() -> ClientProfile {
    ClientProfile {
        identifying: Identifying::sealed(SealedFacts {
            survivor_code: pii(0x11),
            lookup: SurvivorCodeLookup::from_bytes([0x5a; 32]),
            age_years: pii_aes(0x12),
            vulnerabilities: pii(0x13),
        }),
        ..profile()
    }
}

fn only<T: Ord + Clone>(values: impl IntoIterator<Item = T>) -> Scope<T> {
    Scope::only(values, "scope").unwrap()
}

pub fn requested() -> ReferralRequested {
    ReferralRequested {
        referral_id: referral_id(),
        case_id: case_id(),
        from_org: org_a(),
        from_user: user(0xa2),
        to_org: org_b(),
        service_id: service_id(),
        category: ServiceCategory::Health,
        priority: Priority::Emergency,
        client: ClientSummary {
            sex: Sex::Female,
            age_group: AgeGroup::Age25To59,
            population_group: PopulationGroup::Idp,
            language: Language::parse("ar").unwrap(),
            location: mosul(),
        },
        consent: ConsentBasis::Consent(consent_id()),
        redirected_from: Some(earlier_referral_id()),
        notes: Some(pii(0x40)),
        // As recorded before referrals carried objectives (the golden fixture is that old).
        gcm_objectives: vec![],
    }
}

pub fn service_spec() -> ServiceSpec {
    ServiceSpec {
        name: DisplayName::parse("TEST clinic for clinical management of rape").unwrap(),
        category: ServiceCategory::Health,
        areas: vec![mosul(), Location::governorate_only(Governorate::Duhok)],
        languages: vec![
            Language::parse("ar").unwrap(),
            Language::parse("ckb").unwrap(),
            Language::parse("kmr").unwrap(),
        ],
        eligibility: Eligibility {
            sexes: only([Sex::Female]),
            min_age: 12,
            max_age: 120,
        },
    }
}

/// The stored form: metadata that differs per type (ids, time), an actor who could have caused it.
fn stored(t: EventType, actor: Actor, event: DomainEvent) -> StoredEvent {
    let index = sample_number(t);
    StoredEvent {
        meta: EventMeta {
            event_id: EventId::from_uuid(uuid(0xe0000 + index)).unwrap(),
            command_id: CommandId::from_uuid(uuid(0xc0000 + index)).unwrap(),
            occurred_at: Timestamp::from_unix_millis(T0 + index as i64 * 60_000 + 7),
            actor,
        },
        event,
    }
}

/// A number per event type that never changes, so a fixture's bytes do not move when an event
/// type is added: a new type takes the next free number.
pub fn sample_number(t: EventType) -> u64 {
    use EventType as T;
    match t {
        T::CaseOpened => 0,
        T::CaseProfileUpdated => 1,
        T::CasePersonalDataUpdated => 2,
        T::CaseAssigned => 3,
        T::ConsentGiven => 4,
        T::ConsentNarrowed => 5,
        T::ConsentWithdrawn => 6,
        T::CaseClosed => 7,
        T::CaseReopened => 8,
        T::ReferralRequested => 9,
        T::ReferralReceived => 10,
        T::ReferralAccepted => 11,
        T::ReferralRejected => 12,
        T::ReferralStarted => 13,
        T::ReferralPutOnHold => 14,
        T::ReferralResumed => 15,
        T::ReferralCompleted => 16,
        T::ReferralFailed => 17,
        T::ReferralCancelled => 18,
        T::FollowUpRecorded => 19,
        T::ReferralEnteredInError => 20,
        T::ReferralResponseOverdue => 21,
        T::FollowUpOverdue => 22,
        T::ReferralEscalated => 23,
        T::EscalationAcknowledged => 24,
        T::OrganisationRegistered => 25,
        T::OrganisationUpdated => 26,
        T::ServiceAdded => 27,
        T::ServiceUpdated => 28,
        T::ServiceAvailabilityChanged => 29,
        T::ServiceRetired => 30,
        T::CasePersonalDataErased => 31,
        T::CaseShared => 32,
        T::CaseUnshared => 33,
    }
}

/// The representative sample of an event type, the one its golden fixture holds.
pub fn sample(t: EventType) -> StoredEvent {
    use EventType as T;
    let case = |actor, e| stored(t, actor, DomainEvent::Case(case_id(), e));
    let referral = |actor, e| stored(t, actor, DomainEvent::Referral(referral_id(), e));
    let org = |actor, e| stored(t, actor, DomainEvent::Organisation(org_b(), e));
    let due = Timestamp::from_unix_millis(T0 + 72 * 3_600_000);
    match t {
        T::CaseOpened => case(
            caseworker(),
            CaseEvent::Opened {
                case_id: case_id(),
                owner_org: org_a(),
                caseworker: user(0xa2),
                profile: profile(),
                personal: PersonalData {
                    name: Some(pii(0x01)),
                    phone: Some(pii(0x02)),
                    address: None,
                    notes: None,
                },
            },
        ),
        T::CaseProfileUpdated => case(
            caseworker(),
            CaseEvent::ProfileUpdated {
                profile: profile_minimal(),
            },
        ),
        T::CasePersonalDataUpdated => case(
            caseworker(),
            CaseEvent::PersonalDataUpdated {
                personal: PersonalData {
                    notes: Some(pii(0x04)),
                    ..PersonalData::default()
                },
            },
        ),
        T::CaseAssigned => case(supervisor(), CaseEvent::Assigned { caseworker: user(0xa4) }),
        T::CaseShared => case(supervisor(), CaseEvent::Shared { user: user(0xa5) }),
        T::CaseUnshared => case(caseworker(), CaseEvent::Unshared { user: user(0xa5) }),
        T::ConsentGiven => case(
            caseworker(),
            CaseEvent::ConsentGiven {
                consent_id: consent_id(),
                scope: ConsentScope {
                    categories: only([ServiceCategory::Health, ServiceCategory::Psychosocial]),
                    organisations: Scope::Any,
                    expires_at: Some(Timestamp::from_unix_millis(T0 + 180 * 86_400_000)),
                },
            },
        ),
        T::ConsentNarrowed => case(
            caseworker(),
            CaseEvent::ConsentNarrowed {
                consent_id: consent_id(),
                scope: ConsentScope {
                    categories: only([ServiceCategory::Health]),
                    organisations: only([org_b(), org_c()]),
                    expires_at: Some(Timestamp::from_unix_millis(T0 + 90 * 86_400_000)),
                },
            },
        ),
        T::ConsentWithdrawn => case(
            caseworker(),
            CaseEvent::ConsentWithdrawn {
                consent_id: consent_id(),
            },
        ),
        T::CaseClosed => case(
            caseworker(),
            CaseEvent::Closed {
                reason: Reason::coded(CloseCode::NeedsMet),
                cancelled_referrals: vec![referral_id()],
            },
        ),
        T::CaseReopened => case(
            supervisor(),
            CaseEvent::Reopened {
                reason: Some(pii(0x05)),
            },
        ),
        T::CasePersonalDataErased => case(
            supervisor(),
            CaseEvent::PersonalDataErased {
                reason: Reason::coded(EraseCode::ClientRequest),
            },
        ),
        T::ReferralRequested => referral(caseworker(), ReferralEvent::Requested(Box::new(requested()))),
        T::ReferralReceived => referral(partner_system(), ReferralEvent::Received),
        T::ReferralAccepted => referral(focal_point(), ReferralEvent::Accepted),
        T::ReferralRejected => referral(
            focal_point(),
            ReferralEvent::Rejected(Decline {
                reason: Reason::coded(DeclineCode::Redirected),
                suggested_org: Some(org_c()),
            }),
        ),
        T::ReferralStarted => referral(focal_point(), ReferralEvent::Started),
        T::ReferralPutOnHold => referral(
            focal_point(),
            ReferralEvent::PutOnHold(Reason {
                code: HoldCode::Other,
                text: Some(pii(0x06)),
            }),
        ),
        T::ReferralResumed => referral(focal_point(), ReferralEvent::Resumed),
        T::ReferralCompleted => referral(focal_point(), ReferralEvent::Completed),
        T::ReferralFailed => referral(
            focal_point(),
            ReferralEvent::Failed(Reason::coded(FailCode::ClientRelocated)),
        ),
        T::ReferralCancelled => referral(
            system(),
            ReferralEvent::Cancelled(Reason::coded(CancelCode::ConsentWithdrawn)),
        ),
        T::FollowUpRecorded => referral(
            caseworker(),
            ReferralEvent::FollowUpRecorded(FollowUp {
                client_reached: true,
                service_received: ServiceReceived::Yes,
                satisfaction: Some(Satisfaction::new(4).unwrap()),
                note: None,
            }),
        ),
        T::ReferralEnteredInError => referral(
            supervisor(),
            ReferralEvent::EnteredInError(Reason::coded(ErrorCode::Duplicate)),
        ),
        T::ReferralResponseOverdue => referral(
            system(),
            ReferralEvent::ResponseOverdue {
                kind: OverdueKind::Decision,
                due_at: due,
            },
        ),
        T::FollowUpOverdue => referral(system(), ReferralEvent::FollowUpOverdue { due_at: due }),
        T::ReferralEscalated => referral(
            system(),
            ReferralEvent::Escalated {
                kind: OverdueKind::Acknowledgement,
            },
        ),
        T::EscalationAcknowledged => referral(
            coordinator(),
            // Without a note, as every acknowledgement written before notes existed: the fixture
            // keeps proving that such events still read the same.
            ReferralEvent::EscalationAcknowledged {
                kind: OverdueKind::Acknowledgement,
                note: None,
            },
        ),
        T::OrganisationRegistered => org(
            coordinator(),
            OrganisationEvent::Registered {
                org_id: org_b(),
                name: DisplayName::parse("TEST Partner Organisation B").unwrap(),
                kind: OrgKind::NationalNgo,
            },
        ),
        T::OrganisationUpdated => org(
            coordinator(),
            OrganisationEvent::Updated {
                name: DisplayName::parse("TEST Partner Organisation B (renamed)").unwrap(),
                kind: OrgKind::InternationalNgo,
            },
        ),
        T::ServiceAdded => org(
            focal_point(),
            OrganisationEvent::ServiceAdded {
                service_id: service_id(),
                spec: service_spec(),
            },
        ),
        T::ServiceUpdated => org(
            focal_point(),
            OrganisationEvent::ServiceUpdated {
                service_id: service_id(),
                spec: ServiceSpec {
                    areas: vec![Location::governorate_only(Governorate::Ninawa)],
                    eligibility: Eligibility::everyone(),
                    ..service_spec()
                },
            },
        ),
        T::ServiceAvailabilityChanged => org(
            partner_system(),
            OrganisationEvent::ServiceAvailabilityChanged {
                service_id: service_id(),
                accepting: false,
                capacity: Some(0),
            },
        ),
        T::ServiceRetired => org(
            focal_point(),
            OrganisationEvent::ServiceRetired {
                service_id: service_id(),
            },
        ),
    }
}

/// Every sample, in [`EventType::ALL`] order.
pub fn samples() -> Vec<StoredEvent> {
    EventType::ALL.iter().map(|t| sample(*t)).collect()
}

/// The samples again with the other side of every optional or alternative part.
pub fn variations() -> Vec<StoredEvent> {
    use EventType as T;
    let with = |t: EventType, event: DomainEvent| StoredEvent { event, ..sample(t) };
    let case = |t, e| with(t, DomainEvent::Case(case_id(), e));
    let referral = |t, e| with(t, DomainEvent::Referral(referral_id(), e));
    let org = |t, e| with(t, DomainEvent::Organisation(org_b(), e));
    let mut out = vec![
        case(
            T::CaseOpened,
            CaseEvent::Opened {
                case_id: case_id(),
                owner_org: org_a(),
                caseworker: user(0xa2),
                profile: profile_minimal(),
                personal: PersonalData::default(),
            },
        ),
        case(
            T::CaseOpened,
            CaseEvent::Opened {
                case_id: case_id(),
                owner_org: org_a(),
                caseworker: user(0xa2),
                profile: profile_sealed(),
                personal: PersonalData::default(),
            },
        ),
        case(
            T::CaseProfileUpdated,
            CaseEvent::ProfileUpdated {
                profile: profile_sealed(),
            },
        ),
        case(
            T::CaseOpened,
            CaseEvent::Opened {
                case_id: case_id(),
                owner_org: org_a(),
                caseworker: user(0xa2),
                profile: profile(),
                personal: PersonalData {
                    name: Some(pii_aes(1)),
                    phone: Some(pii_aes(2)),
                    address: Some(pii_aes(3)),
                    notes: Some(pii(4)),
                },
            },
        ),
        case(
            T::ConsentGiven,
            CaseEvent::ConsentGiven {
                consent_id: consent_id(),
                scope: ConsentScope {
                    categories: Scope::Any,
                    organisations: Scope::Any,
                    expires_at: None,
                },
            },
        ),
        case(
            T::CaseClosed,
            CaseEvent::Closed {
                reason: Reason {
                    code: CloseCode::Other,
                    text: Some(pii(7)),
                },
                cancelled_referrals: vec![],
            },
        ),
        case(T::CaseReopened, CaseEvent::Reopened { reason: None }),
        case(
            T::CasePersonalDataErased,
            CaseEvent::PersonalDataErased {
                reason: Reason {
                    code: EraseCode::Other,
                    text: Some(pii(8)),
                },
            },
        ),
        referral(
            T::ReferralRequested,
            ReferralEvent::Requested(Box::new(ReferralRequested {
                consent: ConsentBasis::Override(Reason {
                    code: OverrideCode::Other,
                    text: Some(pii(8)),
                }),
                redirected_from: None,
                notes: None,
                priority: Priority::Routine,
                ..requested()
            })),
        ),
        referral(
            T::ReferralRequested,
            ReferralEvent::Requested(Box::new(ReferralRequested {
                consent: ConsentBasis::Override(Reason::coded(OverrideCode::LifeThreatening)),
                ..requested()
            })),
        ),
        referral(
            T::ReferralRequested,
            ReferralEvent::Requested(Box::new(ReferralRequested {
                gcm_objectives: [7, 15]
                    .into_iter()
                    .map(|n| wasl_domain::gcm::GcmObjective::new(n).unwrap())
                    .collect(),
                ..requested()
            })),
        ),
        referral(
            T::ReferralRejected,
            ReferralEvent::Rejected(Decline {
                reason: Reason {
                    code: DeclineCode::Other,
                    text: Some(pii(9)),
                },
                suggested_org: None,
            }),
        ),
        referral(
            T::ReferralPutOnHold,
            ReferralEvent::PutOnHold(Reason::coded(HoldCode::AwaitingDocuments)),
        ),
        referral(
            T::EscalationAcknowledged,
            ReferralEvent::EscalationAcknowledged {
                kind: OverdueKind::Decision,
                note: Some(Reason::coded(AcknowledgeCode::PartnerContacted)),
            },
        ),
        referral(
            T::EscalationAcknowledged,
            ReferralEvent::EscalationAcknowledged {
                kind: OverdueKind::FollowUp,
                note: Some(Reason {
                    code: AcknowledgeCode::Other,
                    text: Some(pii(11)),
                }),
            },
        ),
        // Cancelled by the follow-up service because nobody answered in time.
        StoredEvent {
            meta: EventMeta {
                actor: system(),
                ..sample(T::ReferralCancelled).meta
            },
            event: DomainEvent::Referral(
                referral_id(),
                ReferralEvent::Cancelled(Reason::coded(CancelCode::Expired)),
            ),
        },
        referral(
            T::FollowUpRecorded,
            ReferralEvent::FollowUpRecorded(FollowUp {
                client_reached: false,
                service_received: ServiceReceived::Unknown,
                satisfaction: None,
                note: Some(pii(10)),
            }),
        ),
        org(
            T::ServiceAvailabilityChanged,
            OrganisationEvent::ServiceAvailabilityChanged {
                service_id: service_id(),
                accepting: true,
                capacity: None,
            },
        ),
    ];
    // Metadata: no roles, every role, the epoch, before it, the far future.
    let meta = |actor: Actor, millis: i64| {
        let mut e = sample(T::ReferralAccepted);
        e.meta.actor = actor;
        e.meta.occurred_at = Timestamp::from_unix_millis(millis);
        e
    };
    out.push(meta(
        Actor {
            roles: vec![],
            ..focal_point()
        },
        0,
    ));
    out.push(meta(
        Actor {
            roles: Role::ALL.to_vec(),
            ..focal_point()
        },
        -1,
    ));
    out.push(meta(focal_point(), 253_402_300_799_999 + 1));
    out
}
