//! A referral's whole journey, and the ways it can end early, through the stored log.

use crate::log::Log;
use wasl_domain::case::{Case, CaseCommand, CloseCase, ConsentScope, OpenCase, Scope};
use wasl_domain::catalogue::{CancelCode, CloseCode, Priority, Reason, ServiceCategory};
use wasl_domain::client::Language;
use wasl_domain::directory::{DisplayName, Eligibility, OrgKind, Organisation, OrganisationCommand, ServiceSpec};
use wasl_domain::geo::{Governorate, Location};
use wasl_domain::ids::{CaseId, ConsentId, OrgId, ReferralId, ServiceId};
use wasl_domain::pii::{Cipher, EncryptedPii, KeyId, PersonalData};
use wasl_domain::referral::{
    FollowUp, Referral, ReferralAction, ReferralCommand, ReferralStatus, RequestReferral, Satisfaction, ServiceReceived,
};
use wasl_domain::testing::{at, ctx, id, profile};
use wasl_domain::{Context, DomainError, Role};

/// A survivor code that must never reach the receiving organisation's events.
const MARKER: &str = "TEST-MARKER-4242";

/// The fixed id `n`, as the log keys aggregates.
fn uuid(n: u8) -> uuid::Uuid {
    id::<CaseId>(n).as_uuid()
}

struct World {
    log: Log,
    referring: OrgId,
    provider: OrgId,
    service: ServiceId,
    case: CaseId,
    hour: i64,
}

impl World {
    fn ctx(&mut self, user: u8, org: OrgId, role: Role) -> Context {
        self.hour += 1;
        at(ctx(id(100 + user), org, role), self.hour)
    }
    fn caseworker(&mut self) -> Context {
        self.ctx(1, self.referring, Role::Caseworker)
    }
    fn focal_point(&mut self) -> Context {
        self.ctx(2, self.provider, Role::FocalPoint)
    }
    fn partner_system(&mut self) -> Context {
        self.ctx(3, self.provider, Role::PartnerSystem)
    }
    fn system(&mut self) -> Context {
        self.ctx(4, id(9), Role::System)
    }

    /// A network with a health provider and an open case that consented to health referrals.
    fn new() -> Self {
        let mut w = World {
            log: Log::default(),
            referring: id(1),
            provider: id(2),
            service: id(30),
            case: id(10),
            hour: 0,
        };
        let coordinator = w.ctx(5, id(9), Role::Coordinator);
        let register = OrganisationCommand::Register {
            org_id: w.provider,
            name: DisplayName::parse("Test Health Partner").expect("name"),
            kind: OrgKind::NationalNgo,
        };
        w.log
            .execute::<Organisation>(uuid(2), &register, &coordinator)
            .expect("registered");
        let spec = ServiceSpec {
            name: DisplayName::parse("Clinical care (test)").expect("name"),
            category: ServiceCategory::Health,
            areas: vec![Location::governorate_only(Governorate::Ninawa)],
            languages: vec![Language::parse("ar").expect("language")],
            eligibility: Eligibility::everyone(),
        };
        let focal = w.focal_point();
        w.log
            .execute::<Organisation>(
                uuid(2),
                &OrganisationCommand::AddService {
                    service_id: w.service,
                    spec,
                },
                &focal,
            )
            .expect("service added");

        let sealed = EncryptedPii::new(
            Cipher::XChaCha20Poly1305,
            KeyId::parse("case:test:1").expect("key"),
            vec![1; 24],
            vec![2; 40],
        )
        .expect("sealed");
        let open = CaseCommand::Open(OpenCase {
            case_id: w.case,
            caseworker: None,
            profile: profile(MARKER),
            personal: PersonalData {
                name: Some(sealed),
                ..PersonalData::default()
            },
        });
        let cw = w.caseworker();
        w.log.execute::<Case>(uuid(10), &open, &cw).expect("opened");
        let consent = CaseCommand::GiveConsent {
            consent_id: id::<ConsentId>(40),
            scope: ConsentScope {
                categories: Scope::only([ServiceCategory::Health], "categories").expect("scope"),
                organisations: Scope::Any,
                expires_at: None,
            },
        };
        let cw = w.caseworker();
        w.log.execute::<Case>(uuid(10), &consent, &cw).expect("consent given");
        w
    }

    fn refer(&mut self, referral: u8) -> Result<(), DomainError> {
        let request = RequestReferral {
            referral_id: id::<ReferralId>(referral),
            case: self.log.load(uuid(10)),
            provider: self.log.load(uuid(2)),
            service_id: self.service,
            priority: Priority::Urgent,
            redirected_from: None,
            consent_override: None,
            notes: None,
        };
        let cw = self.caseworker();
        self.log
            .execute::<Referral>(uuid(referral), &ReferralCommand::Request(Box::new(request)), &cw)
            .map(|_| ())
    }

    fn act(&mut self, referral: u8, command: ReferralCommand, ctx: Context) -> Result<(), DomainError> {
        self.log.execute::<Referral>(uuid(referral), &command, &ctx).map(|_| ())
    }

    fn status(&self, referral: u8) -> Option<ReferralStatus> {
        self.log.load::<Referral>(uuid(referral)).status()
    }
}

#[test]
fn a_referral_travels_from_request_to_closed_loop_through_the_stored_log() {
    let mut w = World::new();
    w.refer(20).expect("referred");
    let fp = w.focal_point();
    w.act(20, ReferralCommand::Receive, fp).expect("received");
    let fp = w.focal_point();
    w.act(20, ReferralCommand::Accept, fp).expect("accepted");
    let ps = w.partner_system();
    w.act(20, ReferralCommand::Start, ps).expect("started");
    let ps = w.partner_system();
    w.act(20, ReferralCommand::Complete, ps).expect("completed");
    let follow_up = FollowUp {
        client_reached: true,
        service_received: ServiceReceived::Yes,
        satisfaction: Some(Satisfaction::new(5).expect("score")),
        note: None,
    };
    let cw = w.caseworker();
    w.act(20, ReferralCommand::RecordFollowUp(follow_up), cw)
        .expect("followed up");

    let referral = w.log.load::<Referral>(uuid(20));
    let state = referral.state().expect("stored referral");
    assert_eq!(state.status, ReferralStatus::Completed);
    assert!(state.followed_up, "the loop is closed");
    assert_eq!((state.from_org, state.to_org), (w.referring, w.provider));

    let cw = w.caseworker();
    let again = w.act(
        20,
        ReferralCommand::Cancel(Reason::coded(CancelCode::ClientRequest)),
        cw,
    );
    assert_eq!(
        again,
        Err(DomainError::InvalidTransition {
            from: ReferralStatus::Completed,
            action: ReferralAction::Cancel
        })
    );
}

#[test]
fn the_survivor_code_stays_in_the_case_and_never_travels_with_the_referral() {
    let mut w = World::new();
    w.refer(20).expect("referred");
    let mut case_has_it = false;
    for (subject, message) in w.log.messages() {
        let in_body = message
            .body
            .windows(MARKER.len())
            .any(|window| window == MARKER.as_bytes());
        let in_headers = message.headers.iter().any(|(_, v)| v.contains(MARKER));
        assert!(!in_headers, "a header on {subject} carries the survivor code");
        if subject.starts_with("wasl.evt.referral.") {
            assert!(!in_body, "a referral event carries the survivor code");
        }
        case_has_it |= subject.starts_with("wasl.evt.case.") && in_body;
    }
    assert!(
        case_has_it,
        "the marker search must be able to find the code where it is stored"
    );
}

#[test]
fn withdrawn_consent_stops_new_referrals_and_lets_wasl_cancel_the_open_one() {
    let mut w = World::new();
    w.refer(20).expect("referred");
    let cw = w.caseworker();
    w.log
        .execute::<Case>(uuid(10), &CaseCommand::WithdrawConsent { consent_id: id(40) }, &cw)
        .expect("withdrawn");
    assert_eq!(w.refer(21), Err(DomainError::ConsentRequired));
    let sys = w.system();
    w.act(
        20,
        ReferralCommand::Cancel(Reason::coded(CancelCode::ConsentWithdrawn)),
        sys,
    )
    .expect("cancelled");
    assert_eq!(w.status(20), Some(ReferralStatus::Cancelled));
    assert_eq!(w.status(21), None, "the refused referral left nothing in the log");
}

#[test]
fn a_case_closes_only_with_its_open_referrals_cancelled() {
    let mut w = World::new();
    w.refer(20).expect("referred");
    let close = |cancel| {
        CaseCommand::Close(CloseCase {
            reason: Reason::coded(CloseCode::NeedsMet),
            open_referrals: vec![id(20)],
            cancel_open_referrals: cancel,
        })
    };
    let cw = w.caseworker();
    assert_eq!(
        w.log.execute::<Case>(uuid(10), &close(false), &cw).err(),
        Some(DomainError::OpenReferrals { count: 1 })
    );
    let cw = w.caseworker();
    let closed = w.log.execute::<Case>(uuid(10), &close(true), &cw).expect("closed");
    let wasl_events::DomainEvent::Case(
        _,
        wasl_domain::case::CaseEvent::Closed {
            cancelled_referrals, ..
        },
    ) = &closed[0].event
    else {
        panic!("expected the case to close");
    };
    assert_eq!(cancelled_referrals, &vec![id::<ReferralId>(20)]);
    let sys = w.system();
    w.act(20, ReferralCommand::Cancel(Reason::coded(CancelCode::CaseClosed)), sys)
        .expect("cancelled");
    assert_eq!(w.status(20), Some(ReferralStatus::Cancelled));
    assert_eq!(w.refer(22), Err(DomainError::CaseClosed));
}
