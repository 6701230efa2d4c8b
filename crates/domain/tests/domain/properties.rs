//! Property tests: random command sequences from random actors at random times, checking the
//! invariants that must hold whatever happens.
//!
//! The case count is `PROPTEST_CASES` (default 1000 sequences per property, each up to 40
//! commands).

use crate::support::*;
use proptest::prelude::*;
use proptest::sample::select;
use std::collections::BTreeMap;
use wasl_domain::case::{Case, CaseCommand, CaseEvent, CaseStatus, CloseCase, ConsentScope, Scope};
use wasl_domain::catalogue::{
    AcknowledgeCode, CancelCode, CloseCode, Decline, DeclineCode, ErrorCode, FailCode, HoldCode, OverrideCode,
    Priority, Reason, ReasonCode, ServiceCategory,
};
use wasl_domain::directory::OrganisationEvent;
use wasl_domain::ids::{ConsentId, OrgId, ReferralId};
use wasl_domain::referral::{
    ConsentBasis, FollowUp, OverdueKind, Referral, ReferralCommand, ReferralEvent, ReferralStatus, RequestReferral,
    Satisfaction, ServiceReceived, transition,
};
use wasl_domain::{Aggregate, Context, Role};

use crate::support::proptest_config as config;

fn actors() -> Vec<fn() -> Context> {
    vec![
        caseworker,
        supervisor,
        focal_point,
        partner_system,
        outsider_caseworker,
        coordinator,
        system,
        admin,
    ]
}

fn arb_ctx() -> impl Strategy<Value = Context> {
    (select(actors()), 0i64..3000).prop_map(|(make, hours)| at(make(), hours))
}

fn arb_reason<C: ReasonCode + Clone + std::fmt::Debug + 'static>(
    codes: &'static [C],
) -> impl Strategy<Value = Reason<C>> {
    (
        select(codes),
        prop_oneof![Just(None), Just(Some(pii(7))), Just(Some(empty_pii()))],
    )
        .prop_map(|(code, text)| Reason { code, text })
}

fn arb_org() -> impl Strategy<Value = OrgId> {
    select(vec![referring_org(), receiving_org(), other_org()])
}

fn arb_scope() -> impl Strategy<Value = ConsentScope> {
    let categories = prop_oneof![
        3 => Just(Scope::Any),
        2 => proptest::collection::btree_set(select(ServiceCategory::ALL), 0..3).prop_map(Scope::Only),
    ];
    let organisations = prop_oneof![
        3 => Just(Scope::Any),
        2 => proptest::collection::btree_set(arb_org(), 0..3).prop_map(Scope::Only),
    ];
    let expiry = prop_oneof![Just(None), (0i64..3000).prop_map(|h| Some(T0.plus_hours(h)))];
    (categories, organisations, expiry).prop_map(|(categories, organisations, expires_at)| ConsentScope {
        categories,
        organisations,
        expires_at,
    })
}

fn arb_consent_id() -> impl Strategy<Value = ConsentId> {
    (40u8..43).prop_map(id)
}

fn arb_case_events() -> impl Strategy<Value = Vec<CaseEvent>> {
    let consent =
        (arb_consent_id(), arb_scope()).prop_map(|(consent_id, scope)| CaseEvent::ConsentGiven { consent_id, scope });
    let withdraw = arb_consent_id().prop_map(|consent_id| CaseEvent::ConsentWithdrawn { consent_id });
    let close = Just(CaseEvent::Closed {
        reason: Reason::coded(CloseCode::NeedsMet),
        cancelled_referrals: vec![],
    });
    let reopen = Just(CaseEvent::Reopened { reason: None });
    proptest::collection::vec(prop_oneof![6 => consent, 1 => withdraw, 1 => close, 1 => reopen], 0..5).prop_map(
        |tail| {
            let mut events = vec![case_opened()];
            events.extend(tail);
            events
        },
    )
}

fn arb_request() -> impl Strategy<Value = ReferralCommand> {
    let provider_state = prop_oneof![
        6 => Just(0u8),
        1 => Just(1u8),
        1 => Just(2u8),
    ];
    let case_events = prop_oneof![
        3 => Just(vec![case_opened(), consent_given(any_consent())]),
        2 => arb_case_events(),
    ];
    (
        case_events,
        provider_state,
        select(Priority::ALL),
        proptest::option::of(arb_reason(OverrideCode::ALL)),
    )
        .prop_map(|(case_events, provider_state, priority, consent_override)| {
            let mut provider = provider();
            if provider_state == 1 {
                provider = provider.evolve(&OrganisationEvent::ServiceAvailabilityChanged {
                    service_id: health_service(),
                    accepting: false,
                    capacity: None,
                });
            } else if provider_state == 2 {
                provider = provider.evolve(&OrganisationEvent::ServiceRetired {
                    service_id: health_service(),
                });
            }
            ReferralCommand::Request(Box::new(RequestReferral {
                referral_id: referral_id(),
                case: Case::replay(&case_events),
                provider,
                service_id: health_service(),
                priority,
                redirected_from: None,
                consent_override,
                notes: None,
            }))
        })
}

fn arb_referral_command() -> impl Strategy<Value = ReferralCommand> {
    use ReferralCommand as C;
    let decline = (arb_reason(DeclineCode::ALL), proptest::option::of(arb_org()))
        .prop_map(|(reason, suggested_org)| C::Reject(Decline { reason, suggested_org }));
    let follow_up = (
        any::<bool>(),
        select(ServiceReceived::ALL),
        proptest::option::of(1u8..=5),
    )
        .prop_map(|(client_reached, service_received, score)| {
            C::RecordFollowUp(FollowUp {
                client_reached,
                service_received,
                satisfaction: score.and_then(|s| Satisfaction::new(s).ok()),
                note: None,
            })
        });
    let due = (0i64..3000).prop_map(|h| T0.plus_hours(h));
    prop_oneof![
        1 => arb_request(),
        3 => Just(C::Receive),
        3 => Just(C::Accept),
        2 => decline,
        3 => Just(C::Start),
        2 => arb_reason(HoldCode::ALL).prop_map(C::Hold),
        2 => Just(C::Resume),
        3 => Just(C::Complete),
        2 => arb_reason(FailCode::ALL).prop_map(C::Fail),
        1 => arb_reason(CancelCode::ALL).prop_map(C::Cancel),
        2 => follow_up,
        1 => arb_reason(ErrorCode::ALL).prop_map(C::MarkEnteredInError),
        2 => (select(OverdueKind::ALL), due.clone()).prop_map(|(kind, due_at)| C::MarkResponseOverdue { kind, due_at }),
        1 => due.prop_map(|due_at| C::MarkFollowUpOverdue { due_at }),
        2 => select(OverdueKind::ALL).prop_map(|kind| C::Escalate { kind }),
        1 => (select(OverdueKind::ALL), prop_oneof![Just(None), arb_reason(AcknowledgeCode::ALL).prop_map(Some)])
            .prop_map(|(kind, note)| C::AcknowledgeEscalation { kind, note }),
    ]
}

/// The actor entitled to a command, so that sequences get far; other actors are mixed in.
fn proper_actor(command: &ReferralCommand) -> Context {
    use ReferralCommand as C;
    match command {
        C::Request(_) | C::Cancel(_) | C::RecordFollowUp(_) => caseworker(),
        C::MarkEnteredInError(_) => supervisor(),
        C::MarkResponseOverdue { .. } | C::MarkFollowUpOverdue { .. } | C::Escalate { .. } => system(),
        C::AcknowledgeEscalation { .. } => coordinator(),
        _ => focal_point(),
    }
}

fn arb_referral_step() -> impl Strategy<Value = (ReferralCommand, Context)> {
    arb_referral_command().prop_flat_map(|command| {
        let proper = proper_actor(&command);
        let ctx = prop_oneof![
            3 => (0i64..3000).prop_map(move |hours| at(proper.clone(), hours)),
            1 => arb_ctx(),
        ];
        (Just(command), ctx)
    })
}

/// Checks every invariant of one accepted referral command; returns a description of a breach.
fn check_referral_step(
    before: &Referral,
    command: &ReferralCommand,
    ctx: &Context,
    events: &[ReferralEvent],
    after: &Referral,
) -> Result<(), TestCaseError> {
    prop_assert!(!events.is_empty(), "an accepted command recorded nothing");
    let after_state = after.state();
    prop_assert!(
        after_state.is_some(),
        "evolve lost the referral on events decide produced"
    );
    match (before.status(), after.status()) {
        (Some(from), Some(to)) if from.is_terminal() => {
            prop_assert!(
                to == from || (to == ReferralStatus::EnteredInError && from != ReferralStatus::EnteredInError),
                "terminal {from} moved to {to}"
            );
        }
        (Some(from), Some(to)) => {
            if let Some(expected) = transition(from, command.action()) {
                prop_assert_eq!(to, expected, "{} --{}--> went elsewhere", from, command.action());
            } else {
                prop_assert_eq!(to, from, "a non-lifecycle command changed the status");
            }
        }
        _ => {}
    }
    if let Some(state) = before.state() {
        use ReferralCommand as C;
        let by_receiver = ctx.actor.org == state.to_org;
        let by_referrer = ctx.actor.org == state.from_org;
        match command {
            C::Receive | C::Accept | C::Reject(_) | C::Start | C::Hold(_) | C::Resume | C::Complete | C::Fail(_) => {
                prop_assert!(
                    by_receiver,
                    "{} by another organisation than the receiving one",
                    command.action()
                );
            }
            C::Cancel(_) => prop_assert!(by_referrer || ctx.actor.has(Role::System), "cancelled by an outsider"),
            C::RecordFollowUp(_) => prop_assert!(by_referrer, "follow-up by an outsider"),
            C::MarkEnteredInError(_) => prop_assert!(by_referrer && ctx.actor.has(Role::Supervisor)),
            _ => {}
        }
    }
    if let (ReferralCommand::Request(request), Some(state)) = (command, after_state) {
        match &state.consent {
            ConsentBasis::Consent(consent_id) => {
                let case = request.case.state().expect("a referred case exists");
                let consent = &case.consents[consent_id];
                prop_assert!(!consent.withdrawn, "referred on withdrawn consent");
                prop_assert!(
                    consent.scope.covers(state.to_org, state.category, ctx.now),
                    "consent does not cover"
                );
            }
            ConsentBasis::Override(reason) => {
                prop_assert!(ctx.actor.has(Role::Supervisor), "override by a non-supervisor");
                prop_assert!(reason.validate().is_ok(), "override without a valid reason");
                let case = request.case.state().expect("a referred case exists");
                prop_assert!(case.covering_consent(state.to_org, state.category, ctx.now).is_none());
            }
        }
        prop_assert_eq!(case_open(request), true, "referred a closed case");
    }
    if let Some(ReferralEvent::FollowUpRecorded(_)) = events.first() {
        prop_assert!(
            !before.state().is_some_and(|s| s.followed_up),
            "follow-up recorded twice"
        );
    }
    Ok(())
}

fn case_open(request: &RequestReferral) -> bool {
    request.case.state().is_some_and(|c| c.status == CaseStatus::Open)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn referral_invariants_hold_for_any_command_sequence(
        first in arb_request(),
        first_ctx in prop_oneof![Just(caseworker()), Just(supervisor())],
        steps in proptest::collection::vec(arb_referral_step(), 0..40),
    ) {
        let mut state = Referral::default();
        let mut history: Vec<ReferralEvent> = Vec::new();
        for (command, ctx) in std::iter::once((first, first_ctx)).chain(steps) {
            let decided = state.decide(&command, &ctx);
            prop_assert_eq!(&decided, &state.decide(&command, &ctx), "decide is not deterministic");
            if let Ok(events) = decided {
                let after = events.iter().fold(state.clone(), |s, e| s.evolve(e));
                check_referral_step(&state, &command, &ctx, &events, &after)?;
                history.extend(events);
                state = after;
            }
        }
        prop_assert_eq!(Referral::replay(&history), state, "replaying the history rebuilds another state");
    }
}

fn arb_case_command() -> impl Strategy<Value = CaseCommand> {
    use CaseCommand as C;
    let referrals = proptest::collection::vec((20u8..24).prop_map(id::<ReferralId>), 0..3);
    let close = (arb_reason(CloseCode::ALL), referrals, any::<bool>()).prop_map(|(reason, open_referrals, cancel)| {
        C::Close(CloseCase {
            reason,
            open_referrals,
            cancel_open_referrals: cancel,
        })
    });
    prop_oneof![
        1 => Just(open_case_command()),
        1 => Just(C::UpdateProfile(profile())),
        1 => (0u8..3).prop_map(|n| C::Assign { caseworker: id(100 + n) }),
        4 => (arb_consent_id(), arb_scope()).prop_map(|(consent_id, scope)| C::GiveConsent { consent_id, scope }),
        4 => (arb_consent_id(), arb_scope()).prop_map(|(consent_id, scope)| C::NarrowConsent { consent_id, scope }),
        2 => arb_consent_id().prop_map(|consent_id| C::WithdrawConsent { consent_id }),
        2 => close,
        1 => Just(C::Reopen { reason: None }),
        1 => Just(C::UpdatePersonalData(wasl_domain::pii::PersonalData { phone: Some(pii(2)), ..Default::default() })),
        1 => Just(C::ErasePersonalData { reason: Reason::coded(wasl_domain::catalogue::EraseCode::RetentionExpired) }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn case_invariants_hold_for_any_command_sequence(
        steps in proptest::collection::vec((arb_case_command(), arb_ctx()), 1..40),
    ) {
        let mut state = fresh::<Case>().when(open_case_command(), &caseworker()).then(vec![case_opened()]);
        let mut history = vec![case_opened()];
        let mut first_scope: BTreeMap<ConsentId, ConsentScope> = BTreeMap::new();
        for (command, ctx) in steps {
            let Ok(events) = state.decide(&command, &ctx) else { continue };
            let before = state.state().expect("case exists").clone();
            for event in &events {
                match event {
                    CaseEvent::ProfileUpdated { .. } | CaseEvent::Assigned { .. } | CaseEvent::ConsentGiven { .. } => {
                        prop_assert_eq!(before.status, CaseStatus::Open, "a closed case changed");
                    }
                    CaseEvent::Closed { cancelled_referrals, .. } => {
                        if let CaseCommand::Close(close) = &command {
                            prop_assert!(cancelled_referrals.is_empty() || close.cancel_open_referrals);
                            prop_assert_eq!(cancelled_referrals.is_empty(), close.open_referrals.is_empty());
                        }
                    }
                    _ => {}
                }
                if !matches!(event, CaseEvent::PersonalDataErased { .. }) {
                    prop_assert_eq!(ctx.actor.org, before.owner_org, "another organisation changed the case");
                }
            }
            state = events.iter().fold(state, |s, e| s.evolve(e));
            history.extend(events);
            let after = state.state().expect("case exists");
            if before.personal_data_erased {
                prop_assert!(after.personal_data_erased, "an erasure was undone");
                prop_assert!(after.personal.is_empty(), "personal data came back after erasure");
            }
            for (consent_id, consent) in &after.consents {
                let original = first_scope.entry(*consent_id).or_insert_with(|| consent.scope.clone());
                prop_assert!(consent.scope.is_within(original), "a consent was widened");
                if before.consents.get(consent_id).is_some_and(|c| c.withdrawn) {
                    prop_assert!(consent.withdrawn, "a withdrawn consent came back");
                }
            }
        }
        prop_assert_eq!(Case::replay(&history), state, "replaying the history rebuilds another state");
    }
}
