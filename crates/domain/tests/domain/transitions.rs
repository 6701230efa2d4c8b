//! Every lifecycle action tried from every status, against the table of DESIGN.md written out
//! here independently of the code.

use crate::support::*;
use wasl_domain::catalogue::{CancelCode, Decline, DeclineCode, ErrorCode, FailCode, HoldCode, Reason};
use wasl_domain::referral::{Referral, ReferralAction, ReferralCommand, ReferralEvent, ReferralStatus as S};
use wasl_domain::{Aggregate, Context, DomainError};

/// The allowed moves of the design: requested → received | accepted | rejected | cancelled;
/// received → accepted | rejected | cancelled; accepted → in-progress | on-hold | completed |
/// failed | cancelled; in-progress → on-hold | completed | failed | cancelled; on-hold →
/// in-progress | completed | failed | cancelled; any state → entered-in-error.
const ALLOWED: &[(S, ReferralAction, S)] = {
    use ReferralAction as A;
    &[
        (S::Requested, A::Receive, S::Received),
        (S::Requested, A::Accept, S::Accepted),
        (S::Requested, A::Reject, S::Rejected),
        (S::Requested, A::Cancel, S::Cancelled),
        (S::Received, A::Accept, S::Accepted),
        (S::Received, A::Reject, S::Rejected),
        (S::Received, A::Cancel, S::Cancelled),
        (S::Accepted, A::Start, S::InProgress),
        (S::Accepted, A::Hold, S::OnHold),
        (S::Accepted, A::Complete, S::Completed),
        (S::Accepted, A::Fail, S::Failed),
        (S::Accepted, A::Cancel, S::Cancelled),
        (S::InProgress, A::Hold, S::OnHold),
        (S::InProgress, A::Complete, S::Completed),
        (S::InProgress, A::Fail, S::Failed),
        (S::InProgress, A::Cancel, S::Cancelled),
        (S::OnHold, A::Resume, S::InProgress),
        (S::OnHold, A::Complete, S::Completed),
        (S::OnHold, A::Fail, S::Failed),
        (S::OnHold, A::Cancel, S::Cancelled),
        (S::Requested, A::MarkEnteredInError, S::EnteredInError),
        (S::Received, A::MarkEnteredInError, S::EnteredInError),
        (S::Accepted, A::MarkEnteredInError, S::EnteredInError),
        (S::InProgress, A::MarkEnteredInError, S::EnteredInError),
        (S::OnHold, A::MarkEnteredInError, S::EnteredInError),
        (S::Completed, A::MarkEnteredInError, S::EnteredInError),
        (S::Failed, A::MarkEnteredInError, S::EnteredInError),
        (S::Rejected, A::MarkEnteredInError, S::EnteredInError),
        (S::Cancelled, A::MarkEnteredInError, S::EnteredInError),
    ]
};

/// A history that leads to `status`.
pub fn history_to(status: S) -> Vec<ReferralEvent> {
    let mut h = vec![requested()];
    let then = |h: &mut Vec<ReferralEvent>, events: &[ReferralEvent]| h.extend_from_slice(events);
    use ReferralEvent as E;
    match status {
        S::Requested => {}
        S::Received => then(&mut h, &[E::Received]),
        S::Accepted => then(&mut h, &[E::Received, E::Accepted]),
        S::InProgress => then(&mut h, &[E::Accepted, E::Started]),
        S::OnHold => then(
            &mut h,
            &[E::Accepted, E::Started, E::PutOnHold(Reason::coded(HoldCode::Security))],
        ),
        S::Completed => then(&mut h, &[E::Accepted, E::Started, E::Completed]),
        S::Failed => then(
            &mut h,
            &[E::Accepted, E::Failed(Reason::coded(FailCode::ClientRelocated))],
        ),
        S::Rejected => then(
            &mut h,
            &[E::Rejected(Decline {
                reason: Reason::coded(DeclineCode::NoCapacity),
                suggested_org: None,
            })],
        ),
        S::Cancelled => then(&mut h, &[E::Cancelled(Reason::coded(CancelCode::ClientRequest))]),
        S::EnteredInError => then(&mut h, &[E::EnteredInError(Reason::coded(ErrorCode::Duplicate))]),
    }
    h
}

/// A well-formed command for a lifecycle action, with the actor entitled to it.
fn command_for(action: ReferralAction) -> (ReferralCommand, Context) {
    use ReferralAction as A;
    match action {
        A::Receive => (ReferralCommand::Receive, focal_point()),
        A::Accept => (ReferralCommand::Accept, focal_point()),
        A::Reject => (
            ReferralCommand::Reject(Decline {
                reason: Reason::coded(DeclineCode::NotEligible),
                suggested_org: None,
            }),
            focal_point(),
        ),
        A::Start => (ReferralCommand::Start, partner_system()),
        A::Hold => (
            ReferralCommand::Hold(Reason::coded(HoldCode::AwaitingDocuments)),
            focal_point(),
        ),
        A::Resume => (ReferralCommand::Resume, focal_point()),
        A::Complete => (ReferralCommand::Complete, partner_system()),
        A::Fail => (
            ReferralCommand::Fail(Reason::coded(FailCode::ClientUnreachable)),
            focal_point(),
        ),
        A::Cancel => (
            ReferralCommand::Cancel(Reason::coded(CancelCode::NoLongerNeeded)),
            caseworker(),
        ),
        A::MarkEnteredInError => (
            ReferralCommand::MarkEnteredInError(Reason::coded(ErrorCode::WrongCase)),
            supervisor(),
        ),
        other => unreachable!("{other} is not a lifecycle action"),
    }
}

const LIFECYCLE: &[ReferralAction] = {
    use ReferralAction as A;
    &[
        A::Receive,
        A::Accept,
        A::Reject,
        A::Start,
        A::Hold,
        A::Resume,
        A::Complete,
        A::Fail,
        A::Cancel,
        A::MarkEnteredInError,
    ]
};

#[test]
fn every_lifecycle_action_from_every_status_follows_the_design_table() {
    let mut checked = 0;
    for from in S::ALL {
        let state = Referral::replay(&history_to(*from));
        assert_eq!(state.status(), Some(*from), "history_to({from}) is wrong");
        for action in LIFECYCLE {
            let (command, ctx) = command_for(*action);
            let expected = ALLOWED
                .iter()
                .find(|(f, a, _)| f == from && a == action)
                .map(|(_, _, to)| *to);
            let result = state.decide(&command, &ctx);
            match (expected, result) {
                (Some(to), Ok(events)) => {
                    let after = events.iter().fold(state.clone(), |s, e| s.evolve(e));
                    assert_eq!(after.status(), Some(to), "{from} --{action}--> should reach {to}");
                }
                (None, Err(err)) => assert_eq!(
                    err,
                    DomainError::InvalidTransition {
                        from: *from,
                        action: *action
                    },
                    "{from} --{action}--> should be refused as an invalid transition"
                ),
                (Some(to), Err(err)) => panic!("{from} --{action}--> {to} is allowed but was refused: {err:?}"),
                (None, Ok(_)) => panic!("{from} --{action}--> is forbidden but was accepted"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, S::ALL.len() * LIFECYCLE.len());
}

#[test]
fn the_code_table_and_the_design_table_agree_entry_for_entry() {
    for from in S::ALL {
        for action in ReferralAction::ALL {
            let expected = ALLOWED
                .iter()
                .find(|(f, a, _)| f == from && a == action)
                .map(|(_, _, to)| *to);
            assert_eq!(
                wasl_domain::referral::transition(*from, *action),
                expected,
                "{from} --{action}-->"
            );
        }
    }
}

#[test]
fn terminal_states_are_exactly_rejected_completed_failed_cancelled_and_entered_in_error() {
    let terminal: Vec<S> = S::ALL.iter().copied().filter(|s| s.is_terminal()).collect();
    assert_eq!(
        terminal,
        vec![S::Completed, S::Failed, S::Rejected, S::Cancelled, S::EnteredInError]
    );
    for from in terminal {
        let allowed: Vec<_> = ALLOWED
            .iter()
            .filter(|(f, _, _)| *f == from)
            .map(|(_, a, _)| *a)
            .collect();
        let only_error = allowed.iter().all(|a| *a == ReferralAction::MarkEnteredInError);
        assert!(only_error, "{from} is terminal but allows {allowed:?}");
    }
}
