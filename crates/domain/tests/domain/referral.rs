//! The referral's rules, one sentence each.

use crate::support::Given;
use crate::support::*;
use crate::transitions::history_to;
use wasl_domain::case::{Case, CaseEvent, ConsentScope, Scope};
use wasl_domain::catalogue::{
    AcknowledgeCode, CancelCode, CloseCode, Decline, DeclineCode, ErrorCode, FailCode, HoldCode, OverrideCode,
    Priority, Reason, ServiceCategory,
};
use wasl_domain::directory::{Organisation, OrganisationEvent};
use wasl_domain::referral::{
    ConsentBasis, FollowUp, OverdueKind, Referral, ReferralAction, ReferralCommand as C, ReferralEvent as E,
    ReferralStatus, Satisfaction, ServiceReceived,
};
use wasl_domain::{Aggregate, DomainError, Forbidden};

fn req(case: Case, provider: Organisation) -> C {
    C::Request(Box::new(request(case, provider)))
}

fn case_with(events: Vec<CaseEvent>) -> Case {
    let mut history = vec![case_opened()];
    history.extend(events);
    Case::replay(&history)
}

fn requested_event(events: Vec<E>) -> Box<wasl_domain::referral::ReferralRequested> {
    match events.into_iter().next() {
        Some(E::Requested(r)) => r,
        other => panic!("expected ReferralRequested, got {other:?}"),
    }
}

#[test]
fn a_caseworker_refers_a_consenting_client_and_only_minimum_data_travels() {
    let r = requested_event(
        fresh::<Referral>()
            .when(req(consenting_case(), provider()), &caseworker())
            .events(),
    );
    assert_eq!(r.referral_id, referral_id());
    assert_eq!(r.case_id, case_id());
    assert_eq!(r.from_org, referring_org());
    assert_eq!(r.from_user, caseworker().actor.user);
    assert_eq!(r.to_org, receiving_org());
    assert_eq!(r.category, ServiceCategory::Health);
    assert_eq!(r.priority, Priority::Urgent);
    assert_eq!(r.consent, ConsentBasis::Consent(consent_id()));
    assert_eq!(r.client.location, mosul());
    assert_eq!(r.client.age_group, profile().age_group);
    let state = Referral::replay(&[E::Requested(r)]);
    assert_eq!(state.status(), Some(ReferralStatus::Requested));
}

#[test]
fn a_referral_without_any_consent_is_refused() {
    fresh::<Referral>()
        .when(req(case_with(vec![]), provider()), &caseworker())
        .then_refused(DomainError::ConsentRequired);
}

#[test]
fn consent_for_another_category_does_not_cover_the_referral() {
    let legal_only = ConsentScope {
        categories: Scope::only([ServiceCategory::Legal], "categories").expect("scope"),
        ..any_consent()
    };
    let case = case_with(vec![consent_given(legal_only)]);
    fresh::<Referral>()
        .when(req(case, provider()), &caseworker())
        .then_refused(DomainError::ConsentRequired);
}

#[test]
fn consent_for_another_organisation_does_not_cover_the_referral() {
    let other_only = ConsentScope {
        organisations: Scope::only([other_org()], "organisations").expect("scope"),
        ..any_consent()
    };
    let case = case_with(vec![consent_given(other_only)]);
    fresh::<Referral>()
        .when(req(case, provider()), &caseworker())
        .then_refused(DomainError::ConsentRequired);
}

#[test]
fn an_expired_consent_does_not_cover_the_referral() {
    let until_t0 = ConsentScope {
        expires_at: Some(T0),
        ..any_consent()
    };
    let case = case_with(vec![consent_given(until_t0)]);
    fresh::<Referral>()
        .when(req(case, provider()), &caseworker())
        .then_refused(DomainError::ConsentRequired);
}

#[test]
fn a_withdrawn_consent_does_not_cover_the_referral() {
    let case = case_with(vec![
        consent_given(any_consent()),
        CaseEvent::ConsentWithdrawn {
            consent_id: consent_id(),
        },
    ]);
    fresh::<Referral>()
        .when(req(case, provider()), &caseworker())
        .then_refused(DomainError::ConsentRequired);
}

#[test]
fn a_supervisor_may_override_missing_consent_and_the_reason_is_recorded() {
    let mut request = request(case_with(vec![]), provider());
    request.consent_override = Some(Reason::coded(OverrideCode::LifeThreatening));
    let r = requested_event(
        fresh::<Referral>()
            .when(C::Request(Box::new(request)), &supervisor())
            .events(),
    );
    assert_eq!(
        r.consent,
        ConsentBasis::Override(Reason::coded(OverrideCode::LifeThreatening))
    );
}

#[test]
fn a_caseworker_cannot_override_missing_consent() {
    let mut request = request(case_with(vec![]), provider());
    request.consent_override = Some(Reason::coded(OverrideCode::LifeThreatening));
    fresh::<Referral>()
        .when(C::Request(Box::new(request)), &caseworker())
        .then_refused(DomainError::OverrideNeedsSupervisor);
}

#[test]
fn an_override_for_another_reason_must_explain_it() {
    let mut request = request(case_with(vec![]), provider());
    request.consent_override = Some(Reason {
        code: OverrideCode::Other,
        text: Some(empty_pii()),
    });
    fresh::<Referral>()
        .when(C::Request(Box::new(request)), &supervisor())
        .then_refused(DomainError::ReasonRequired);
}

#[test]
fn a_covering_consent_is_used_even_when_an_override_is_offered() {
    let mut request = request(consenting_case(), provider());
    request.consent_override = Some(Reason::coded(OverrideCode::LifeThreatening));
    let r = requested_event(
        fresh::<Referral>()
            .when(C::Request(Box::new(request)), &supervisor())
            .events(),
    );
    assert_eq!(r.consent, ConsentBasis::Consent(consent_id()));
}

#[test]
fn a_closed_case_cannot_be_referred() {
    let closed = CaseEvent::Closed {
        reason: Reason::coded(CloseCode::NeedsMet),
        cancelled_referrals: vec![],
    };
    let case = case_with(vec![consent_given(any_consent()), closed]);
    fresh::<Referral>()
        .when(req(case, provider()), &caseworker())
        .then_refused(DomainError::CaseClosed);
}

#[test]
fn another_organisation_cannot_refer_the_case() {
    fresh::<Referral>()
        .when(req(consenting_case(), provider()), &outsider_caseworker())
        .then_refused(DomainError::Forbidden(Forbidden::NotCaseOwner));
}

#[test]
fn a_focal_point_of_the_owning_organisation_cannot_refer() {
    let mut ctx = caseworker();
    ctx.actor.roles = vec![wasl_domain::Role::FocalPoint];
    fresh::<Referral>()
        .when(req(consenting_case(), provider()), &ctx)
        .then_refused(DomainError::Forbidden(Forbidden::MissingRole));
}

#[test]
fn a_referral_to_an_unknown_or_retired_service_is_refused() {
    let no_service = Organisation::replay(&[provider_registered()]);
    fresh::<Referral>()
        .when(req(consenting_case(), no_service), &caseworker())
        .then_refused(DomainError::UnknownService);
    let retired = provider().evolve(&OrganisationEvent::ServiceRetired {
        service_id: health_service(),
    });
    fresh::<Referral>()
        .when(req(consenting_case(), retired), &caseworker())
        .then_refused(DomainError::ServiceRetired);
}

#[test]
fn a_service_that_closed_its_intake_refuses_routine_referrals_but_not_emergencies() {
    let closed = provider().evolve(&OrganisationEvent::ServiceAvailabilityChanged {
        service_id: health_service(),
        accepting: false,
        capacity: Some(0),
    });
    fresh::<Referral>()
        .when(req(consenting_case(), closed.clone()), &caseworker())
        .then_refused(DomainError::ServiceNotAccepting);
    let mut emergency = request(consenting_case(), closed);
    emergency.priority = Priority::Emergency;
    let r = requested_event(
        fresh::<Referral>()
            .when(C::Request(Box::new(emergency)), &caseworker())
            .events(),
    );
    assert_eq!(r.priority, Priority::Emergency);
}

#[test]
fn a_referral_cannot_be_requested_twice() {
    given([requested()])
        .when(req(consenting_case(), provider()), &caseworker())
        .then_refused(DomainError::AlreadyExists);
}

#[test]
fn nothing_can_be_done_to_a_referral_that_does_not_exist() {
    fresh::<Referral>()
        .when(C::Accept, &focal_point())
        .then_refused(DomainError::NotFound);
}

#[test]
fn the_receiving_organisation_acknowledges_accepts_starts_and_completes() {
    let state = given([requested()])
        .when(C::Receive, &focal_point())
        .then(vec![E::Received]);
    let state = given_state(state)
        .when(C::Accept, &focal_point())
        .then(vec![E::Accepted]);
    let state = given_state(state)
        .when(C::Start, &partner_system())
        .then(vec![E::Started]);
    let state = given_state(state)
        .when(C::Complete, &focal_point())
        .then(vec![E::Completed]);
    assert_eq!(state.status(), Some(ReferralStatus::Completed));
}

fn given_state(state: Referral) -> Given<Referral> {
    Given::from_state(state)
}

#[test]
fn the_referring_organisation_cannot_accept_its_own_referral() {
    given([requested()])
        .when(C::Accept, &caseworker())
        .then_refused(DomainError::Forbidden(Forbidden::NotReceivingOrganisation));
    given([requested()])
        .when(C::Accept, &supervisor())
        .then_refused(DomainError::Forbidden(Forbidden::NotReceivingOrganisation));
}

#[test]
fn a_third_organisation_cannot_touch_the_referral() {
    given([requested()])
        .when(C::Receive, &outsider_caseworker())
        .then_refused(DomainError::Forbidden(Forbidden::NotReceivingOrganisation));
    given([requested()])
        .when(C::Cancel(Reason::coded(CancelCode::Duplicate)), &outsider_caseworker())
        .then_refused(DomainError::Forbidden(Forbidden::NotReferringOrganisation));
}

#[test]
fn only_the_referring_organisation_cancels() {
    given([requested()])
        .when(C::Cancel(Reason::coded(CancelCode::ClientRequest)), &focal_point())
        .then_refused(DomainError::Forbidden(Forbidden::NotReferringOrganisation));
    given([requested()])
        .when(C::Cancel(Reason::coded(CancelCode::ClientRequest)), &caseworker())
        .then(vec![E::Cancelled(Reason::coded(CancelCode::ClientRequest))]);
}

#[test]
fn a_declined_referral_cannot_be_accepted() {
    given(history_to(ReferralStatus::Rejected))
        .when(C::Accept, &focal_point())
        .then_refused(DomainError::InvalidTransition {
            from: ReferralStatus::Rejected,
            action: ReferralAction::Accept,
        });
}

#[test]
fn a_completed_referral_cannot_be_cancelled() {
    given(history_to(ReferralStatus::Completed))
        .when(C::Cancel(Reason::coded(CancelCode::ClientRequest)), &caseworker())
        .then_refused(DomainError::InvalidTransition {
            from: ReferralStatus::Completed,
            action: ReferralAction::Cancel,
        });
}

#[test]
fn a_decline_needs_a_coded_reason_and_other_needs_text() {
    let other = Decline {
        reason: Reason::coded(DeclineCode::Other),
        suggested_org: None,
    };
    given([requested()])
        .when(C::Reject(other), &focal_point())
        .then_refused(DomainError::ReasonRequired);
    let explained_other = Decline {
        reason: explained(DeclineCode::Other),
        suggested_org: None,
    };
    given([requested()])
        .when(C::Reject(explained_other.clone()), &focal_point())
        .then(vec![E::Rejected(explained_other)]);
}

#[test]
fn a_redirect_names_the_suggested_organisation_and_the_new_referral_points_back() {
    let bare = Decline {
        reason: Reason::coded(DeclineCode::Redirected),
        suggested_org: None,
    };
    given([requested()])
        .when(C::Reject(bare), &focal_point())
        .then_refused(DomainError::ReasonRequired);
    let redirect = Decline {
        reason: Reason::coded(DeclineCode::Redirected),
        suggested_org: Some(other_org()),
    };
    given([requested()])
        .when(C::Reject(redirect.clone()), &focal_point())
        .then(vec![E::Rejected(redirect)]);

    let declined = Referral::replay(&[
        requested(),
        E::Rejected(Decline {
            reason: Reason::coded(DeclineCode::Redirected),
            suggested_org: Some(other_org()),
        }),
    ]);
    let mut again = request(consenting_case(), provider());
    again.referral_id = id(21);
    again.redirected_from = Some(declined);
    let r = requested_event(
        fresh::<Referral>()
            .when(C::Request(Box::new(again)), &caseworker())
            .events(),
    );
    assert_eq!(r.redirected_from, Some(referral_id()));
}

#[test]
fn only_a_referral_of_the_same_case_declined_as_redirected_can_be_redirected() {
    let redirect_from = |earlier: Referral, new_id| {
        let mut again = request(consenting_case(), provider());
        again.referral_id = new_id;
        again.redirected_from = Some(earlier);
        C::Request(Box::new(again))
    };
    let declined_for_capacity = Referral::replay(&history_to(ReferralStatus::Rejected));
    fresh::<Referral>()
        .when(redirect_from(declined_for_capacity, id(21)), &caseworker())
        .then_invalid("redirected_from");
    let redirected = Referral::replay(&[
        requested(),
        E::Rejected(Decline {
            reason: Reason::coded(DeclineCode::Redirected),
            suggested_org: Some(other_org()),
        }),
    ]);
    fresh::<Referral>()
        .when(redirect_from(redirected.clone(), referral_id()), &caseworker())
        .then_invalid("redirected_from");
    fresh::<Referral>()
        .when(redirect_from(Referral::default(), id(21)), &caseworker())
        .then_invalid("redirected_from");
    let mut other_case = requested();
    if let E::Requested(r) = &mut other_case {
        r.case_id = id(11);
    }
    let elsewhere = Referral::replay(&[
        other_case,
        E::Rejected(Decline {
            reason: Reason::coded(DeclineCode::Redirected),
            suggested_org: Some(other_org()),
        }),
    ]);
    fresh::<Referral>()
        .when(redirect_from(elsewhere, id(21)), &caseworker())
        .then_invalid("redirected_from");
}

#[test]
fn hold_fail_and_cancel_need_reasons_and_other_needs_text() {
    given(history_to(ReferralStatus::InProgress))
        .when(
            C::Hold(Reason {
                code: HoldCode::Other,
                text: None,
            }),
            &focal_point(),
        )
        .then_refused(DomainError::ReasonRequired);
    given(history_to(ReferralStatus::InProgress))
        .when(
            C::Fail(Reason {
                code: FailCode::Other,
                text: Some(empty_pii()),
            }),
            &focal_point(),
        )
        .then_refused(DomainError::ReasonRequired);
    given([requested()])
        .when(C::Cancel(Reason::coded(CancelCode::Other)), &caseworker())
        .then_refused(DomainError::ReasonRequired);
    given(history_to(ReferralStatus::InProgress))
        .when(C::Hold(explained(HoldCode::Other)), &focal_point())
        .then(vec![E::PutOnHold(explained(HoldCode::Other))]);
}

#[test]
fn only_a_supervisor_of_the_referring_organisation_marks_entered_in_error() {
    let reason = || Reason::coded(ErrorCode::Duplicate);
    given([requested()])
        .when(C::MarkEnteredInError(reason()), &caseworker())
        .then_refused(DomainError::Forbidden(Forbidden::MissingRole));
    let mut receiving_supervisor = focal_point();
    receiving_supervisor.actor.roles = vec![wasl_domain::Role::Supervisor];
    given([requested()])
        .when(C::MarkEnteredInError(reason()), &receiving_supervisor)
        .then_refused(DomainError::Forbidden(Forbidden::NotReferringOrganisation));
    given(history_to(ReferralStatus::Completed))
        .when(C::MarkEnteredInError(reason()), &supervisor())
        .then(vec![E::EnteredInError(reason())]);
}

#[test]
fn entered_in_error_is_final() {
    given(history_to(ReferralStatus::EnteredInError))
        .when(
            C::MarkEnteredInError(Reason::coded(ErrorCode::Duplicate)),
            &supervisor(),
        )
        .then_refused(DomainError::InvalidTransition {
            from: ReferralStatus::EnteredInError,
            action: ReferralAction::MarkEnteredInError,
        });
}

fn follow_up() -> FollowUp {
    FollowUp {
        client_reached: true,
        service_received: ServiceReceived::Yes,
        satisfaction: Some(Satisfaction::new(4).expect("score")),
        note: Some(pii(9)),
    }
}

#[test]
fn follow_up_after_completion_closes_the_loop_once() {
    let state = given(history_to(ReferralStatus::Completed))
        .when(C::RecordFollowUp(follow_up()), &caseworker())
        .then(vec![E::FollowUpRecorded(follow_up())]);
    assert!(state.state().expect("exists").followed_up);
    given_state(state)
        .when(C::RecordFollowUp(follow_up()), &supervisor())
        .then_refused(DomainError::FollowUpAlreadyRecorded);
}

#[test]
fn follow_up_after_failure_is_recorded_too() {
    let unreached = FollowUp {
        client_reached: false,
        service_received: ServiceReceived::Unknown,
        satisfaction: None,
        note: None,
    };
    given(history_to(ReferralStatus::Failed))
        .when(C::RecordFollowUp(unreached.clone()), &caseworker())
        .then(vec![E::FollowUpRecorded(unreached)]);
}

#[test]
fn follow_up_before_the_service_ends_is_refused() {
    given(history_to(ReferralStatus::InProgress))
        .when(C::RecordFollowUp(follow_up()), &caseworker())
        .then_refused(DomainError::InvalidTransition {
            from: ReferralStatus::InProgress,
            action: ReferralAction::RecordFollowUp,
        });
}

#[test]
fn follow_up_is_recorded_by_the_referring_organisation_only() {
    given(history_to(ReferralStatus::Completed))
        .when(C::RecordFollowUp(follow_up()), &focal_point())
        .then_refused(DomainError::Forbidden(Forbidden::NotReferringOrganisation));
}

#[test]
fn satisfaction_cannot_be_known_when_the_client_was_not_reached() {
    let odd = FollowUp {
        client_reached: false,
        ..follow_up()
    };
    given(history_to(ReferralStatus::Completed))
        .when(C::RecordFollowUp(odd), &caseworker())
        .then_invalid("satisfaction");
    assert!(Satisfaction::new(0).is_err() && Satisfaction::new(6).is_err());
}

#[test]
fn an_unanswered_referral_becomes_overdue_then_escalated_then_acknowledged() {
    let due = T0.plus_hours(1);
    let overdue = C::MarkResponseOverdue {
        kind: OverdueKind::Acknowledgement,
        due_at: due,
    };
    let state = given([requested()])
        .when(overdue.clone(), &at(system(), 2))
        .then(vec![E::ResponseOverdue {
            kind: OverdueKind::Acknowledgement,
            due_at: due,
        }]);
    given_state(state.clone())
        .when(overdue, &at(system(), 3))
        .then_refused(DomainError::AlreadyRecorded);
    let state = given_state(state)
        .when(
            C::Escalate {
                kind: OverdueKind::Acknowledgement,
            },
            &system(),
        )
        .then(vec![E::Escalated {
            kind: OverdueKind::Acknowledgement,
        }]);
    given_state(state.clone())
        .when(
            C::AcknowledgeEscalation {
                kind: OverdueKind::Acknowledgement,
                note: None,
            },
            &focal_point(),
        )
        .then_refused(DomainError::Forbidden(Forbidden::MissingRole));
    let state = given_state(state)
        .when(
            C::AcknowledgeEscalation {
                kind: OverdueKind::Acknowledgement,
                note: None,
            },
            &coordinator(),
        )
        .then(vec![E::EscalationAcknowledged {
            kind: OverdueKind::Acknowledgement,
            note: None,
        }]);
    given_state(state)
        .when(
            C::AcknowledgeEscalation {
                kind: OverdueKind::Acknowledgement,
                note: None,
            },
            &coordinator(),
        )
        .then_refused(DomainError::AlreadyRecorded);
}

/// An escalated decision deadline, ready for a coordinator.
fn escalated_decision() -> Vec<E> {
    vec![
        requested(),
        E::ResponseOverdue {
            kind: OverdueKind::Decision,
            due_at: T0.plus_hours(1),
        },
        E::Escalated {
            kind: OverdueKind::Decision,
        },
    ]
}

#[test]
fn a_coordinator_acknowledges_with_a_coded_note_and_sealed_text() {
    let acknowledge = |note| C::AcknowledgeEscalation {
        kind: OverdueKind::Decision,
        note: Some(note),
    };
    let coded = Reason::coded(AcknowledgeCode::PartnerContacted);
    given(escalated_decision())
        .when(acknowledge(coded.clone()), &coordinator())
        .then(vec![E::EscalationAcknowledged {
            kind: OverdueKind::Decision,
            note: Some(coded),
        }]);
    let explained = Reason {
        code: AcknowledgeCode::Other,
        text: Some(pii(3)),
    };
    given(escalated_decision())
        .when(acknowledge(explained.clone()), &coordinator())
        .then(vec![E::EscalationAcknowledged {
            kind: OverdueKind::Decision,
            note: Some(explained),
        }]);
}

#[test]
fn an_acknowledgement_note_coded_other_needs_its_text() {
    given(escalated_decision())
        .when(
            C::AcknowledgeEscalation {
                kind: OverdueKind::Decision,
                note: Some(Reason::coded(AcknowledgeCode::Other)),
            },
            &coordinator(),
        )
        .then_refused(DomainError::ReasonRequired);
}

#[test]
fn only_wasls_own_services_mark_overdue_and_only_after_the_deadline() {
    let overdue = |due| C::MarkResponseOverdue {
        kind: OverdueKind::Decision,
        due_at: due,
    };
    given([requested()])
        .when(overdue(T0), &coordinator())
        .then_refused(DomainError::Forbidden(Forbidden::MissingRole));
    given([requested()])
        .when(overdue(T0.plus_hours(5)), &at(system(), 4))
        .then_invalid("due_at");
    given([requested()])
        .when(
            C::MarkResponseOverdue {
                kind: OverdueKind::FollowUp,
                due_at: T0,
            },
            &system(),
        )
        .then_invalid("kind");
}

#[test]
fn an_acknowledged_referral_is_not_overdue_for_acknowledgement_but_may_be_for_decision() {
    let received = history_to(ReferralStatus::Received);
    given(received.clone())
        .when(
            C::MarkResponseOverdue {
                kind: OverdueKind::Acknowledgement,
                due_at: T0,
            },
            &system(),
        )
        .then_refused(DomainError::InvalidTransition {
            from: ReferralStatus::Received,
            action: ReferralAction::MarkResponseOverdue,
        });
    given(received)
        .when(
            C::MarkResponseOverdue {
                kind: OverdueKind::Decision,
                due_at: T0,
            },
            &system(),
        )
        .then(vec![E::ResponseOverdue {
            kind: OverdueKind::Decision,
            due_at: T0,
        }]);
}

#[test]
fn an_overdue_answered_meanwhile_is_not_escalated() {
    let mut history = vec![
        requested(),
        E::ResponseOverdue {
            kind: OverdueKind::Decision,
            due_at: T0,
        },
        E::Accepted,
    ];
    given(history.clone())
        .when(
            C::Escalate {
                kind: OverdueKind::Decision,
            },
            &system(),
        )
        .then_refused(DomainError::NothingEscalated);
    history.truncate(1);
    given(history)
        .when(
            C::Escalate {
                kind: OverdueKind::Decision,
            },
            &system(),
        )
        .then_refused(DomainError::NothingEscalated);
}

#[test]
fn follow_up_becomes_overdue_only_after_the_service_ended_without_follow_up() {
    given(history_to(ReferralStatus::InProgress))
        .when(C::MarkFollowUpOverdue { due_at: T0 }, &system())
        .then_refused(DomainError::InvalidTransition {
            from: ReferralStatus::InProgress,
            action: ReferralAction::MarkFollowUpOverdue,
        });
    given(history_to(ReferralStatus::Completed))
        .when(C::MarkFollowUpOverdue { due_at: T0 }, &system())
        .then(vec![E::FollowUpOverdue { due_at: T0 }]);
    let mut followed = history_to(ReferralStatus::Completed);
    followed.push(E::FollowUpRecorded(follow_up()));
    given(followed)
        .when(C::MarkFollowUpOverdue { due_at: T0 }, &system())
        .then_refused(DomainError::InvalidTransition {
            from: ReferralStatus::Completed,
            action: ReferralAction::MarkFollowUpOverdue,
        });
}

#[test]
fn events_that_do_not_start_a_referral_build_nothing() {
    assert_eq!(Referral::replay(&[E::Accepted, E::Completed]), Referral::default());
}

#[test]
fn wasls_process_managers_cancel_only_for_withdrawn_consent_a_closed_case_or_expiry() {
    for code in [
        CancelCode::ConsentWithdrawn,
        CancelCode::CaseClosed,
        CancelCode::Expired,
    ] {
        given(history_to(ReferralStatus::Accepted))
            .when(C::Cancel(Reason::coded(code)), &system())
            .then(vec![E::Cancelled(Reason::coded(code))]);
    }
    // The usual expiry: nobody ever answered the request.
    given([requested()])
        .when(C::Cancel(Reason::coded(CancelCode::Expired)), &system())
        .then(vec![E::Cancelled(Reason::coded(CancelCode::Expired))]);
    given([requested()])
        .when(C::Cancel(Reason::coded(CancelCode::NoLongerNeeded)), &system())
        .then_refused(DomainError::Forbidden(Forbidden::NotReferringOrganisation));
    given(history_to(ReferralStatus::Completed))
        .when(C::Cancel(Reason::coded(CancelCode::CaseClosed)), &system())
        .then_refused(DomainError::InvalidTransition {
            from: ReferralStatus::Completed,
            action: ReferralAction::Cancel,
        });
}
