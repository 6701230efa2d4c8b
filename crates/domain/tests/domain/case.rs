//! The case's rules: opening, profile, assignment, consent, closing and reopening.

use crate::support::Given;
use crate::support::*;
use wasl_domain::case::OpenCase;
use wasl_domain::case::{Case, CaseCommand as C, CaseEvent as E, CaseStatus, CloseCase, ConsentScope, Scope};
use wasl_domain::catalogue::{CloseCode, Reason, ServiceCategory};
use wasl_domain::client::{ClientProfile, Identifying, Vulnerability};
use wasl_domain::ids::ConsentId;
use wasl_domain::pii::PersonalData;
use wasl_domain::testing::sealed_facts;
use wasl_domain::{Aggregate, DomainError, Forbidden};

fn open() -> Vec<E> {
    vec![case_opened()]
}

fn close(open_referrals: Vec<wasl_domain::ids::ReferralId>, cancel: bool) -> C {
    C::Close(CloseCase {
        reason: Reason::coded(CloseCode::NeedsMet),
        open_referrals,
        cancel_open_referrals: cancel,
    })
}

fn closed() -> Vec<E> {
    vec![
        case_opened(),
        E::Closed {
            reason: Reason::coded(CloseCode::NeedsMet),
            cancelled_referrals: vec![],
        },
    ]
}

#[test]
fn a_caseworker_opens_a_case_owned_by_their_organisation_and_assigned_to_them() {
    let case = fresh::<Case>()
        .when(open_case_command(), &caseworker())
        .then(vec![case_opened()]);
    let state = case.state().expect("opened");
    assert_eq!(state.owner_org, referring_org());
    assert_eq!(state.caseworker, caseworker().actor.user);
    assert_eq!(state.status, CaseStatus::Open);
}

#[test]
fn a_partner_focal_point_cannot_open_a_case() {
    fresh::<Case>()
        .when(open_case_command(), &focal_point())
        .then_refused(DomainError::Forbidden(Forbidden::MissingRole));
}

#[test]
fn a_case_cannot_be_opened_twice() {
    given(open())
        .when(open_case_command(), &caseworker())
        .then_refused(DomainError::AlreadyExists);
}

#[test]
fn nothing_can_be_done_to_a_case_that_does_not_exist() {
    fresh::<Case>()
        .when(close(vec![], false), &caseworker())
        .then_refused(DomainError::NotFound);
}

#[test]
fn another_organisation_cannot_see_or_change_the_case() {
    given(open())
        .when(C::Assign { caseworker: id(99) }, &outsider_caseworker())
        .then_refused(DomainError::Forbidden(Forbidden::NotCaseOwner));
}

#[test]
fn the_profile_is_replaced_and_an_unchanged_profile_is_refused() {
    let changed = ClientProfile {
        identifying: Identifying::sealed(sealed_facts(&facts(vec![
            Vulnerability::Disability,
            Vulnerability::GbvSurvivor,
        ]))),
        ..profile()
    };
    given(open())
        .when(C::UpdateProfile(changed.clone()), &caseworker())
        .then(vec![E::ProfileUpdated { profile: changed }]);
    given(open())
        .when(C::UpdateProfile(profile()), &caseworker())
        .then_refused(DomainError::NothingToChange);
}

#[test]
fn a_profile_with_the_identifying_facts_in_the_clear_is_refused_so_they_are_never_written_so() {
    let clear = ClientProfile {
        identifying: Identifying::Clear(facts(vec![Vulnerability::GbvSurvivor])),
        ..profile()
    };
    let refused = |result: Result<Vec<E>, DomainError>| {
        assert!(
            matches!(&result, Err(DomainError::Invalid(v)) if v.field == "profile"),
            "{result:?}"
        );
    };
    refused(Case::default().decide(
        &C::Open(OpenCase {
            case_id: case_id(),
            caseworker: None,
            profile: clear.clone(),
            personal: PersonalData::default(),
        }),
        &caseworker(),
    ));
    refused(Case::replay(&[case_opened()]).decide(&C::UpdateProfile(clear), &caseworker()));
}

#[test]
fn personal_data_is_replaced_as_sealed_values() {
    let personal = PersonalData {
        name: Some(pii(1)),
        phone: Some(pii(2)),
        ..PersonalData::default()
    };
    given(open())
        .when(C::UpdatePersonalData(personal.clone()), &supervisor())
        .then(vec![E::PersonalDataUpdated { personal }]);
}

#[test]
fn a_supervisor_reassigns_the_case() {
    let case = given(open())
        .when(C::Assign { caseworker: id(99) }, &supervisor())
        .then(vec![E::Assigned { caseworker: id(99) }]);
    assert_eq!(case.state().expect("case").caseworker, id(99));
    given(open())
        .when(
            C::Assign {
                caseworker: caseworker().actor.user,
            },
            &supervisor(),
        )
        .then_refused(DomainError::NothingToChange);
}

#[test]
fn the_responsible_caseworker_shares_the_case_once_and_takes_the_share_back() {
    let colleague = id(98);
    let case = given(open())
        .when(C::Share { user: colleague }, &caseworker())
        .then(vec![E::Shared { user: colleague }]);
    assert!(case.state().expect("case").shared_with.contains(&colleague));
    given(vec![case_opened(), E::Shared { user: colleague }])
        .when(C::Share { user: colleague }, &supervisor())
        .then_refused(DomainError::AlreadyRecorded);
    let case = given(vec![case_opened(), E::Shared { user: colleague }])
        .when(C::Unshare { user: colleague }, &supervisor())
        .then(vec![E::Unshared { user: colleague }]);
    assert!(case.state().expect("case").shared_with.is_empty());
    given(open())
        .when(C::Unshare { user: colleague }, &caseworker())
        .then_refused(DomainError::NothingToChange);
    given(open())
        .when(
            C::Share {
                user: caseworker().actor.user,
            },
            &supervisor(),
        )
        .then_refused(DomainError::NothingToChange);
}

#[test]
fn only_a_supervisor_or_the_responsible_caseworker_shares_a_case() {
    let colleague = id(98);
    let mut shared_colleague = caseworker();
    shared_colleague.actor.user = colleague;
    given(vec![case_opened(), E::Shared { user: colleague }])
        .when(C::Share { user: id(97) }, &shared_colleague)
        .then_refused(DomainError::Forbidden(Forbidden::MissingRole));
    given(vec![case_opened(), E::Shared { user: colleague }])
        .when(C::Unshare { user: colleague }, &shared_colleague)
        .then_refused(DomainError::Forbidden(Forbidden::MissingRole));
    given(open())
        .when(C::Share { user: colleague }, &outsider_caseworker())
        .then_refused(DomainError::Forbidden(Forbidden::NotCaseOwner));
}

#[test]
fn consent_is_given_with_a_scope_and_a_future_expiry() {
    let scope = ConsentScope {
        expires_at: Some(T0.plus_hours(24 * 90)),
        ..any_consent()
    };
    let case = given(open())
        .when(
            C::GiveConsent {
                consent_id: consent_id(),
                scope: scope.clone(),
            },
            &caseworker(),
        )
        .then(vec![E::ConsentGiven {
            consent_id: consent_id(),
            scope,
        }]);
    let state = case.state().expect("case");
    assert_eq!(
        state.covering_consent(receiving_org(), ServiceCategory::Shelter, T0),
        Some(consent_id())
    );
    assert_eq!(
        state.covering_consent(receiving_org(), ServiceCategory::Shelter, T0.plus_hours(24 * 91)),
        None
    );
}

#[test]
fn consent_that_has_already_expired_or_covers_nothing_is_refused() {
    let past = ConsentScope {
        expires_at: Some(T0),
        ..any_consent()
    };
    given(open())
        .when(
            C::GiveConsent {
                consent_id: consent_id(),
                scope: past,
            },
            &caseworker(),
        )
        .then_invalid("expires_at");
    let nothing = ConsentScope {
        categories: Scope::Only(Default::default()),
        ..any_consent()
    };
    given(open())
        .when(
            C::GiveConsent {
                consent_id: consent_id(),
                scope: nothing,
            },
            &caseworker(),
        )
        .then_invalid("categories");
    assert!(Scope::<ServiceCategory>::only([], "categories").is_err());
}

#[test]
fn the_same_consent_cannot_be_given_twice() {
    given(vec![case_opened(), consent_given(any_consent())])
        .when(
            C::GiveConsent {
                consent_id: consent_id(),
                scope: any_consent(),
            },
            &caseworker(),
        )
        .then_refused(DomainError::AlreadyRecorded);
}

fn health_and_legal() -> ConsentScope {
    ConsentScope {
        categories: Scope::only([ServiceCategory::Health, ServiceCategory::Legal], "categories").expect("scope"),
        organisations: Scope::Any,
        expires_at: Some(T0.plus_hours(1000)),
    }
}

#[test]
fn consent_can_be_narrowed_but_never_widened() {
    let history = vec![case_opened(), consent_given(health_and_legal())];
    let health_only = ConsentScope {
        categories: Scope::only([ServiceCategory::Health], "categories").expect("scope"),
        ..health_and_legal()
    };
    let case = given(history.clone())
        .when(
            C::NarrowConsent {
                consent_id: consent_id(),
                scope: health_only.clone(),
            },
            &caseworker(),
        )
        .then(vec![E::ConsentNarrowed {
            consent_id: consent_id(),
            scope: health_only,
        }]);
    let state = case.state().expect("case");
    assert!(
        state
            .covering_consent(receiving_org(), ServiceCategory::Legal, T0)
            .is_none()
    );

    let wider = ConsentScope {
        categories: Scope::Any,
        ..health_and_legal()
    };
    given(history.clone())
        .when(
            C::NarrowConsent {
                consent_id: consent_id(),
                scope: wider,
            },
            &caseworker(),
        )
        .then_refused(DomainError::NotANarrowing);
    let longer = ConsentScope {
        expires_at: None,
        ..health_and_legal()
    };
    given(history.clone())
        .when(
            C::NarrowConsent {
                consent_id: consent_id(),
                scope: longer,
            },
            &caseworker(),
        )
        .then_refused(DomainError::NotANarrowing);
    given(history)
        .when(
            C::NarrowConsent {
                consent_id: consent_id(),
                scope: health_and_legal(),
            },
            &caseworker(),
        )
        .then_refused(DomainError::NothingToChange);
}

#[test]
fn an_unknown_or_withdrawn_consent_cannot_be_narrowed() {
    let unknown: ConsentId = id(41);
    given(open())
        .when(
            C::NarrowConsent {
                consent_id: unknown,
                scope: any_consent(),
            },
            &caseworker(),
        )
        .then_refused(DomainError::UnknownConsent);
    let withdrawn = vec![
        case_opened(),
        consent_given(health_and_legal()),
        E::ConsentWithdrawn {
            consent_id: consent_id(),
        },
    ];
    given(withdrawn)
        .when(
            C::NarrowConsent {
                consent_id: consent_id(),
                scope: health_and_legal(),
            },
            &caseworker(),
        )
        .then_refused(DomainError::ConsentNotActive);
}

#[test]
fn consent_is_withdrawn_once_even_after_the_case_closed() {
    let mut history = closed();
    history.push(consent_given(any_consent()));
    let case = given(history)
        .when(
            C::WithdrawConsent {
                consent_id: consent_id(),
            },
            &caseworker(),
        )
        .then(vec![E::ConsentWithdrawn {
            consent_id: consent_id(),
        }]);
    assert!(case.state().expect("case").consents[&consent_id()].withdrawn);
    Given::from_state(case)
        .when(
            C::WithdrawConsent {
                consent_id: consent_id(),
            },
            &caseworker(),
        )
        .then_refused(DomainError::ConsentNotActive);
}

#[test]
fn a_case_with_open_referrals_does_not_close_unless_the_close_cancels_them() {
    let open_referrals = vec![id(20), id(21), id(20)];
    given(open())
        .when(close(open_referrals.clone(), false), &caseworker())
        .then_refused(DomainError::OpenReferrals { count: 2 });
    given(open())
        .when(close(open_referrals, true), &caseworker())
        .then(vec![E::Closed {
            reason: Reason::coded(CloseCode::NeedsMet),
            cancelled_referrals: vec![id(20), id(21)],
        }]);
}

#[test]
fn closing_for_another_reason_needs_text() {
    let other = C::Close(CloseCase {
        reason: Reason::coded(CloseCode::Other),
        open_referrals: vec![],
        cancel_open_referrals: false,
    });
    given(open())
        .when(other, &caseworker())
        .then_refused(DomainError::ReasonRequired);
}

#[test]
fn a_closed_case_refuses_changes_until_reopened() {
    given(closed())
        .when(C::UpdateProfile(profile()), &caseworker())
        .then_refused(DomainError::CaseClosed);
    given(closed())
        .when(C::Assign { caseworker: id(99) }, &supervisor())
        .then_refused(DomainError::CaseClosed);
    given(closed())
        .when(close(vec![], false), &caseworker())
        .then_refused(DomainError::CaseClosed);
    given(closed())
        .when(
            C::GiveConsent {
                consent_id: consent_id(),
                scope: any_consent(),
            },
            &caseworker(),
        )
        .then_refused(DomainError::CaseClosed);
    let case = given(closed())
        .when(C::Reopen { reason: Some(pii(5)) }, &caseworker())
        .then(vec![E::Reopened { reason: Some(pii(5)) }]);
    assert_eq!(case.state().expect("case").status, CaseStatus::Open);
    given(open())
        .when(C::Reopen { reason: None }, &caseworker())
        .then_refused(DomainError::CaseOpen);
}

#[test]
fn events_that_do_not_start_a_case_build_nothing() {
    assert_eq!(Case::replay(&[E::Reopened { reason: None }]), Case::default());
}

fn erase() -> C {
    C::ErasePersonalData {
        reason: Reason::coded(wasl_domain::catalogue::EraseCode::ClientRequest),
    }
}

#[test]
fn a_supervisor_erases_the_personal_data_once_and_the_case_stays_countable() {
    let case = given(open())
        .when(erase(), &supervisor())
        .then(vec![E::PersonalDataErased {
            reason: Reason::coded(wasl_domain::catalogue::EraseCode::ClientRequest),
        }]);
    let state = case.state().expect("the case still exists");
    assert!(state.personal_data_erased);
    assert_eq!(state.personal, PersonalData::default());
    assert_eq!(state.profile, profile(), "non-identifying fields stay");
    Given::from_state(case.clone())
        .when(erase(), &supervisor())
        .then_refused(DomainError::AlreadyRecorded);
    Given::from_state(case.clone())
        .when(
            C::UpdatePersonalData(PersonalData {
                name: Some(pii(4)),
                ..PersonalData::default()
            }),
            &supervisor(),
        )
        .then_refused(DomainError::PersonalDataErased);
}

#[test]
fn an_erased_case_takes_no_new_profile_so_the_survivor_code_stays_forgotten() {
    let erased = given(open())
        .when(erase(), &supervisor())
        .then(vec![E::PersonalDataErased {
            reason: Reason::coded(wasl_domain::catalogue::EraseCode::ClientRequest),
        }]);
    let changed = ClientProfile {
        identifying: Identifying::sealed(sealed_facts(&facts(Vec::new()))),
        ..profile()
    };
    Given::from_state(erased)
        .when(C::UpdateProfile(changed), &supervisor())
        .then_refused(DomainError::PersonalDataErased);
}

#[test]
fn erasure_is_for_supervisors_admins_and_the_retention_job_not_caseworkers_or_other_organisations() {
    given(open())
        .when(erase(), &caseworker())
        .then_refused(DomainError::Forbidden(Forbidden::MissingRole));
    given(open())
        .when(erase(), &outsider_caseworker())
        .then_refused(DomainError::Forbidden(Forbidden::NotCaseOwner));
    given(closed())
        .when(erase(), &admin())
        .then(vec![E::PersonalDataErased {
            reason: Reason::coded(wasl_domain::catalogue::EraseCode::ClientRequest),
        }]);
    let retention = C::ErasePersonalData {
        reason: Reason::coded(wasl_domain::catalogue::EraseCode::RetentionExpired),
    };
    given(closed())
        .when(retention, &system())
        .then(vec![E::PersonalDataErased {
            reason: Reason::coded(wasl_domain::catalogue::EraseCode::RetentionExpired),
        }]);
    let other = C::ErasePersonalData {
        reason: Reason::coded(wasl_domain::catalogue::EraseCode::Other),
    };
    given(open())
        .when(other, &supervisor())
        .then_refused(DomainError::ReasonRequired);
}
