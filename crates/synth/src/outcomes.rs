//! How referrals and cases turn out: the one set of outcome weights for Wasl's synthetic data.
//!
//! A referral's life is a walk over its statuses: from each status, [`next_steps`] lists what
//! its parties do next, with weights, and the walk ends in a final status (or with the follow-up).
//! The history generator takes those steps one at a time among its other business (deadlines
//! passing, waiting, stalling); the demo walks them through at once when it plans a referral, and
//! the window's end leaves the most recent ones open. Reasons, follow-ups and case closes are
//! drawn from the weights here too, so both say the same about how often a referral is declined
//! for capacity or a client is satisfied.
//!
//! Weights are relative; chances are per mille.

use crate::rng::Rng;
use wasl_domain::catalogue::{CancelCode, CloseCode, DeclineCode, FailCode, HoldCode};
use wasl_domain::referral::{ReferralStatus, ServiceReceived};

/// What a referral's parties can do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The receiving organisation acknowledges it.
    Receive,
    /// The receiving organisation accepts it.
    Accept,
    /// The receiving organisation declines it ([`decline`] says why).
    Decline,
    /// The referring organisation cancels it ([`CANCELS`] say why).
    Cancel,
    /// The service starts.
    Start,
    /// The service is put on hold ([`HOLDS`] say why).
    Hold,
    /// The service resumes after a hold.
    Resume,
    /// The service is delivered.
    Complete,
    /// The service could not be delivered ([`FAILS`] say why).
    Fail,
    /// The caseworker records the follow-up of a completed or failed referral ([`follow_up`]).
    FollowUp,
    /// Nobody ever records the follow-up.
    NoFollowUp,
}

impl Step {
    /// The status the step leaves the referral in; `None` for the follow-up steps, which leave
    /// it where it is.
    pub fn status(self) -> Option<ReferralStatus> {
        use ReferralStatus as S;
        match self {
            Self::Receive => Some(S::Received),
            Self::Accept => Some(S::Accepted),
            Self::Decline => Some(S::Rejected),
            Self::Cancel => Some(S::Cancelled),
            Self::Start | Self::Resume => Some(S::InProgress),
            Self::Hold => Some(S::OnHold),
            Self::Complete => Some(S::Completed),
            Self::Fail => Some(S::Failed),
            Self::FollowUp | Self::NoFollowUp => None,
        }
    }
}

/// What can happen next to a referral in `status`, with weights; empty once nothing more will
/// (a final status, or completed or failed and `followed_up`).
pub fn next_steps(status: ReferralStatus, followed_up: bool) -> &'static [(Step, u32)] {
    use ReferralStatus as S;
    use Step::*;
    match status {
        S::Requested => &[(Receive, 45), (Accept, 12), (Decline, 4), (Cancel, 1)],
        S::Received => &[(Accept, 50), (Decline, 6), (Cancel, 1)],
        S::Accepted => &[(Start, 50), (Hold, 6), (Complete, 6), (Fail, 2), (Cancel, 1)],
        S::InProgress => &[(Complete, 45), (Fail, 4), (Hold, 10), (Cancel, 1)],
        S::OnHold => &[(Resume, 35), (Complete, 6), (Fail, 5), (Cancel, 2)],
        S::Completed | S::Failed if !followed_up => &[(FollowUp, 20), (NoFollowUp, 2)],
        S::Completed | S::Failed | S::Rejected | S::Cancelled | S::EnteredInError => &[],
    }
}

/// How often a decline redirects the client, when another organisation offers the service.
pub const REDIRECT_PER_MILLE: u64 = 300;

/// Why a receiving organisation declines, when it does not redirect.
pub const DECLINES: &[(DeclineCode, u32)] = &[
    (DeclineCode::NoCapacity, 30),
    (DeclineCode::NotEligible, 20),
    (DeclineCode::ServiceNotOffered, 8),
    (DeclineCode::ClientUnreachable, 15),
    (DeclineCode::ClientDeclined, 15),
    (DeclineCode::Other, 12),
];

/// Why a referral is declined: [`DeclineCode::Redirected`] (at most when `can_redirect`, that is
/// when another organisation offers the service; the caller names it) or one of [`DECLINES`].
pub fn decline(rng: &mut Rng, can_redirect: bool) -> DeclineCode {
    if can_redirect && rng.chance_per_mille(REDIRECT_PER_MILLE) {
        DeclineCode::Redirected
    } else {
        *rng.weighted(DECLINES)
    }
}

/// Why the referring organisation cancels.
pub const CANCELS: &[(CancelCode, u32)] = &[
    (CancelCode::ClientRequest, 30),
    (CancelCode::NoLongerNeeded, 30),
    (CancelCode::ReferredElsewhere, 20),
    (CancelCode::Duplicate, 10),
    (CancelCode::Other, 10),
];

/// Why a service is put on hold.
pub const HOLDS: &[(HoldCode, u32)] = &[
    (HoldCode::ClientUnavailable, 35),
    (HoldCode::AwaitingDocuments, 25),
    (HoldCode::AwaitingCapacity, 20),
    (HoldCode::Security, 10),
    (HoldCode::Other, 10),
];

/// Why a service could not be delivered.
pub const FAILS: &[(FailCode, u32)] = &[
    (FailCode::ClientUnreachable, 30),
    (FailCode::ClientDeclined, 20),
    (FailCode::ClientRelocated, 15),
    (FailCode::ServiceUnavailable, 15),
    (FailCode::Security, 10),
    (FailCode::Other, 10),
];

/// Why a case is closed once its referrals are finished: `served` when one of them was
/// completed.
pub fn closes(served: bool) -> &'static [(CloseCode, u32)] {
    if served {
        &[
            (CloseCode::NeedsMet, 80),
            (CloseCode::ClientRelocated, 8),
            (CloseCode::ClientRequest, 6),
            (CloseCode::Transferred, 6),
        ]
    } else {
        &[
            (CloseCode::LostContact, 35),
            (CloseCode::ClientRequest, 25),
            (CloseCode::Transferred, 20),
            (CloseCode::ClientRelocated, 12),
            (CloseCode::Other, 8),
        ]
    }
}

/// Why a case is closed while referrals are still open.
pub const EARLY_CLOSES: &[(CloseCode, u32)] = &[
    (CloseCode::ClientRelocated, 35),
    (CloseCode::LostContact, 25),
    (CloseCode::ClientRequest, 20),
    (CloseCode::Duplicate, 10),
    (CloseCode::Other, 10),
];

/// What a follow-up records, before any note is written and sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowUpDraw {
    /// The caseworker reached the client.
    pub client_reached: bool,
    /// Whether the client received the service.
    pub service_received: ServiceReceived,
    /// The client's satisfaction, 1 to 5, when reached and asked.
    pub satisfaction: Option<u8>,
    /// The caseworker writes a note.
    pub with_note: bool,
}

/// The follow-up of a referral that was `completed` (else it failed).
pub fn follow_up(rng: &mut Rng, completed: bool) -> FollowUpDraw {
    use ServiceReceived as R;
    let client_reached = rng.chance_per_mille(850);
    let service_received = *rng.weighted(match (client_reached, completed) {
        (true, true) => &[(R::Yes, 75), (R::Partly, 20), (R::No, 3), (R::Unknown, 2)],
        (true, false) => &[(R::No, 80), (R::Partly, 10), (R::Unknown, 10)],
        (false, _) => &[(R::Unknown, 80), (R::No, 20)],
    });
    let satisfaction = (client_reached && rng.chance_per_mille(850)).then(|| {
        *rng.weighted(if completed {
            &[(5, 30), (4, 37), (3, 20), (2, 8), (1, 5)]
        } else {
            &[(3, 30), (2, 40), (1, 30)]
        })
    });
    FollowUpDraw {
        client_reached,
        service_received,
        satisfaction,
        with_note: rng.chance_per_mille(300),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_leads_somewhere_the_table_continues_from() {
        for status in ReferralStatus::ALL {
            for (step, weight) in next_steps(*status, false) {
                assert!(*weight > 0);
                if let Some(next) = step.status() {
                    assert_ne!(next, *status, "{step:?} from {status:?} goes nowhere");
                }
            }
        }
        for status in [ReferralStatus::Completed, ReferralStatus::Failed] {
            assert!(!next_steps(status, false).is_empty());
            assert!(next_steps(status, true).is_empty());
        }
    }

    #[test]
    fn every_step_is_a_transition_the_domain_allows() {
        use wasl_domain::referral::{ReferralAction as A, transition};
        for status in ReferralStatus::ALL {
            for (step, _) in next_steps(*status, false) {
                let action = match step {
                    Step::Receive => A::Receive,
                    Step::Accept => A::Accept,
                    Step::Decline => A::Reject,
                    Step::Cancel => A::Cancel,
                    Step::Start => A::Start,
                    Step::Hold => A::Hold,
                    Step::Resume => A::Resume,
                    Step::Complete => A::Complete,
                    Step::Fail => A::Fail,
                    Step::FollowUp | Step::NoFollowUp => continue,
                };
                assert_eq!(transition(*status, action), step.status(), "{step:?} from {status:?}");
            }
        }
    }

    #[test]
    fn walking_the_steps_completes_most_referrals_and_ends_every_walk() {
        let mut rng = Rng::new(9);
        let mut completed = 0;
        for _ in 0..10_000 {
            let mut status = ReferralStatus::Requested;
            let mut steps = 0;
            loop {
                let table = next_steps(status, false);
                if table.is_empty() {
                    break;
                }
                match rng.weighted(table).status() {
                    Some(next) => status = next,
                    None => break,
                }
                steps += 1;
                assert!(steps < 200, "a walk that does not end");
            }
            completed += usize::from(status == ReferralStatus::Completed);
        }
        assert!((6_500..7_400).contains(&completed), "{completed} of 10000 completed");
    }

    #[test]
    fn declines_redirect_only_when_they_can() {
        let mut rng = Rng::new(10);
        assert!((0..2_000).all(|_| decline(&mut rng, false) != DeclineCode::Redirected));
        assert!((0..2_000).any(|_| decline(&mut rng, true) == DeclineCode::Redirected));
    }

    #[test]
    fn only_a_reached_client_says_how_satisfied_they_are() {
        let mut rng = Rng::new(11);
        for completed in [true, false] {
            for _ in 0..2_000 {
                let f = follow_up(&mut rng, completed);
                assert!(f.client_reached || f.satisfaction.is_none());
                assert!(f.satisfaction.is_none_or(|s| (1..=5).contains(&s)));
            }
        }
    }
}
