//! The `Referral` aggregate and its lifecycle (after HL7 FHIR Task and Gravity closed-loop
//! referral):
//!
//! ```text
//! requested ──► received ──► accepted ──► in-progress ──► completed
//!     │            │            │    ╲         │  ▲
//!     │            │            │     ╲        ▼  │
//!     │            │            │      ╲──► on-hold ──► completed / failed
//!     ├──► rejected (reason)    ├──► failed (reason)
//!     └──► cancelled (reason, by the referring organisation, from any non-terminal state)
//! any state ──► entered-in-error (supervisor of the referring organisation)
//! ```
//!
//! Only the receiving organisation moves a referral from requested through failed; only the
//! referring organisation cancels and records follow-up. Follow-up after completed or failed
//! closes the loop. Overdue and escalation are events, not states.

use crate::case::{Case, CaseStatus};
use crate::catalogue::{
    AcknowledgeCode, CancelCode, Decline, DeclineCode, ErrorCode, FailCode, HoldCode, OverrideCode, Priority, Reason,
    ServiceCategory,
};
use crate::client::{AgeGroup, Language, PopulationGroup, Sex};
use crate::codes::code_enum;
use crate::directory::Organisation;
use crate::error::{DomainError, Forbidden, ValidationError};
use crate::geo::Location;
use crate::ids::{CaseId, ConsentId, OrgId, ReferralId, ServiceId, UserId};
use crate::pii::EncryptedPii;
use crate::time::Timestamp;
use crate::{Aggregate, AggregateKind, Context, Role};
use std::collections::BTreeSet;

code_enum!(
    /// Where a referral stands. Codes follow FHIR Task status where one exists.
    ReferralStatus, "status" {
        /// Sent, not yet acknowledged.
        Requested => "requested",
        /// Acknowledged by the receiving organisation.
        Received => "received",
        /// Accepted; the service will be given.
        Accepted => "accepted",
        /// The service is being given.
        InProgress => "in_progress",
        /// Paused, with a reason.
        OnHold => "on_hold",
        /// The service was given.
        Completed => "completed",
        /// The service could not be given.
        Failed => "failed",
        /// Declined by the receiving organisation.
        Rejected => "rejected",
        /// Withdrawn by the referring organisation.
        Cancelled => "cancelled",
        /// Should never have existed.
        EnteredInError => "entered_in_error",
    }
);

impl ReferralStatus {
    /// Whether nothing can move the referral on (except marking it entered-in-error).
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Rejected | Self::Completed | Self::Failed | Self::Cancelled | Self::EnteredInError
        )
    }

    /// Whether the referral is still open: not terminal.
    pub const fn is_open(self) -> bool {
        !self.is_terminal()
    }
}

code_enum!(
    /// What can be done to a referral; used in errors and the transition table.
    ReferralAction, "action" {
        /// Make it.
        Request => "requested",
        /// Acknowledge it.
        Receive => "received",
        /// Accept it.
        Accept => "accepted",
        /// Decline it.
        Reject => "rejected",
        /// Start the service.
        Start => "started",
        /// Put it on hold.
        Hold => "put_on_hold",
        /// Resume after a hold.
        Resume => "resumed",
        /// Complete the service.
        Complete => "completed",
        /// Record that the service failed.
        Fail => "failed",
        /// Cancel it.
        Cancel => "cancelled",
        /// Record follow-up.
        RecordFollowUp => "followed_up",
        /// Mark it entered-in-error.
        MarkEnteredInError => "marked_entered_in_error",
        /// Record that a response is overdue.
        MarkResponseOverdue => "marked_response_overdue",
        /// Record that follow-up is overdue.
        MarkFollowUpOverdue => "marked_follow_up_overdue",
        /// Escalate an overdue to the coordinator.
        Escalate => "escalated",
        /// Acknowledge an escalation.
        AcknowledgeEscalation => "escalation_acknowledged",
    }
);

/// The status a lifecycle action leads to from `from`, or `None` when it is not allowed.
/// This is the transition table of the design, in one place.
pub const fn transition(from: ReferralStatus, action: ReferralAction) -> Option<ReferralStatus> {
    use ReferralAction as A;
    use ReferralStatus as S;
    match (from, action) {
        (S::Requested, A::Receive) => Some(S::Received),
        (S::Requested | S::Received, A::Accept) => Some(S::Accepted),
        (S::Requested | S::Received, A::Reject) => Some(S::Rejected),
        (S::Accepted, A::Start) => Some(S::InProgress),
        (S::Accepted | S::InProgress, A::Hold) => Some(S::OnHold),
        (S::OnHold, A::Resume) => Some(S::InProgress),
        (S::Accepted | S::InProgress | S::OnHold, A::Complete) => Some(S::Completed),
        (S::Accepted | S::InProgress | S::OnHold, A::Fail) => Some(S::Failed),
        (S::Requested | S::Received | S::Accepted | S::InProgress | S::OnHold, A::Cancel) => Some(S::Cancelled),
        (S::Requested | S::Received | S::Accepted | S::InProgress | S::OnHold, A::MarkEnteredInError)
        | (S::Completed | S::Failed | S::Rejected | S::Cancelled, A::MarkEnteredInError) => Some(S::EnteredInError),
        _ => None,
    }
}

code_enum!(
    /// Which deadline passed.
    OverdueKind, "overdue_kind" {
        /// The receiving organisation did not acknowledge in time.
        Acknowledgement => "acknowledgement",
        /// The receiving organisation did not accept or decline in time.
        Decision => "decision",
        /// The referring organisation did not record follow-up in time.
        FollowUp => "follow_up",
        /// The receiving organisation accepted, or put on hold, and did not move the referral
        /// on in time (start, resume, complete or fail it).
        Stalled => "stalled",
    }
);

code_enum!(
    /// Whether the client received the service, as learnt at follow-up.
    ServiceReceived, "service_received" {
        /// Fully.
        Yes => "yes",
        /// In part.
        Partly => "partly",
        /// Not at all.
        No => "no",
        /// Not known (for example, the client could not be reached).
        Unknown => "unknown",
    }
);

/// Client satisfaction, 1 (very unsatisfied) to 5 (very satisfied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Satisfaction(u8);

impl Satisfaction {
    /// A score from 1 to 5.
    pub fn new(score: u8) -> Result<Self, ValidationError> {
        if (1..=5).contains(&score) {
            Ok(Self(score))
        } else {
            Err(ValidationError::new("satisfaction", "must be 1 to 5"))
        }
    }

    /// The score.
    pub const fn score(self) -> u8 {
        self.0
    }
}

/// What the referring caseworker learnt when following up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// Whether the client was reached.
    pub client_reached: bool,
    /// Whether they got the service.
    pub service_received: ServiceReceived,
    /// How satisfied they were; only when reached.
    pub satisfaction: Option<Satisfaction>,
    /// Notes, encrypted.
    pub note: Option<EncryptedPii>,
}

impl FollowUp {
    fn validate(&self) -> Result<(), ValidationError> {
        if !self.client_reached && self.satisfaction.is_some() {
            return Err(ValidationError::new(
                "satisfaction",
                "cannot be known when the client was not reached",
            ));
        }
        Ok(())
    }
}

/// On what ground the client's data may go to the receiving organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentBasis {
    /// A consent of the client covers it.
    Consent(ConsentId),
    /// A supervisor overrode missing consent, with this reason.
    Override(Reason<OverrideCode>),
}

/// The minimum, non-identifying facts about the client that travel with a referral to the
/// receiving organisation. No name, no survivor code, no free text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ClientSummary {
    pub sex: Sex,
    pub age_group: AgeGroup,
    pub population_group: PopulationGroup,
    /// Preferred language.
    pub language: Language,
    /// Where the client lives.
    pub location: Location,
}

/// The state of an existing referral.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ReferralState {
    pub id: ReferralId,
    /// The case it belongs to.
    pub case_id: CaseId,
    /// The referring organisation.
    pub from_org: OrgId,
    /// The referring caseworker.
    pub from_user: UserId,
    /// The receiving organisation.
    pub to_org: OrgId,
    /// The service asked for.
    pub service_id: ServiceId,
    pub category: ServiceCategory,
    pub priority: Priority,
    /// Current status.
    pub status: ReferralStatus,
    /// The ground for sharing.
    pub consent: ConsentBasis,
    /// The referral this one replaces after a redirect.
    pub redirected_from: Option<ReferralId>,
    /// The decline, once rejected.
    pub decline: Option<Decline>,
    /// Whether follow-up was recorded (the loop is closed).
    pub followed_up: bool,
    /// Deadlines recorded as missed.
    pub overdue: BTreeSet<OverdueKind>,
    /// Escalations made.
    pub escalated: BTreeSet<OverdueKind>,
    /// Escalations acknowledged by a coordinator.
    pub acknowledged: BTreeSet<OverdueKind>,
}

impl ReferralState {
    fn overdue_still_applies(&self, kind: OverdueKind) -> bool {
        match kind {
            OverdueKind::Acknowledgement => self.status == ReferralStatus::Requested,
            OverdueKind::Decision => matches!(self.status, ReferralStatus::Requested | ReferralStatus::Received),
            OverdueKind::FollowUp => {
                matches!(self.status, ReferralStatus::Completed | ReferralStatus::Failed) && !self.followed_up
            }
            OverdueKind::Stalled => matches!(self.status, ReferralStatus::Accepted | ReferralStatus::OnHold),
        }
    }
}

/// A referral, or the absence of one before it is requested.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Referral(Option<ReferralState>);

impl Referral {
    /// The state, if the referral exists.
    pub fn state(&self) -> Option<&ReferralState> {
        self.0.as_ref()
    }

    /// The status, if the referral exists.
    pub fn status(&self) -> Option<ReferralStatus> {
        self.0.as_ref().map(|s| s.status)
    }
}

/// Make a referral. The command handler loads the case and the receiving organisation and
/// passes their current state, so that consent and the directory are checked here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct RequestReferral {
    /// The new referral's id.
    pub referral_id: ReferralId,
    /// The case, as loaded.
    pub case: Case,
    /// The receiving organisation, as loaded.
    pub provider: Organisation,
    /// The service asked for.
    pub service_id: ServiceId,
    pub priority: Priority,
    /// The referral this one replaces, as loaded: it must belong to the same case and have been
    /// declined as `redirected`.
    pub redirected_from: Option<Referral>,
    /// A supervisor's reason to refer without covering consent.
    pub consent_override: Option<Reason<OverrideCode>>,
    /// Notes for the receiving organisation, encrypted (fetched over the API, never routed).
    pub notes: Option<EncryptedPii>,
}

/// What can be asked of a referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferralCommand {
    /// Make it.
    Request(Box<RequestReferral>),
    /// Acknowledge receipt.
    Receive,
    /// Accept.
    Accept,
    /// Decline, with a coded reason.
    Reject(Decline),
    /// Start the service.
    Start,
    /// Put on hold, with a reason.
    Hold(Reason<HoldCode>),
    /// Resume after a hold.
    Resume,
    /// Complete the service.
    Complete,
    /// Record failure, with a reason.
    Fail(Reason<FailCode>),
    /// Cancel, with a reason.
    Cancel(Reason<CancelCode>),
    /// Record follow-up.
    RecordFollowUp(FollowUp),
    /// Mark entered-in-error.
    MarkEnteredInError(Reason<ErrorCode>),
    /// Record that the receiving organisation missed a response deadline.
    MarkResponseOverdue {
        /// Acknowledgement or decision.
        kind: OverdueKind,
        /// The deadline that passed.
        due_at: Timestamp,
    },
    /// Record that the referring organisation missed the follow-up deadline.
    MarkFollowUpOverdue {
        /// The deadline that passed.
        due_at: Timestamp,
    },
    /// Escalate a recorded overdue to the coordinator.
    Escalate {
        /// Which overdue.
        kind: OverdueKind,
    },
    /// A coordinator acknowledges an escalation.
    AcknowledgeEscalation {
        /// Which one.
        kind: OverdueKind,
        /// What the coordinator did about it: a code, and text (sealed under the case's key)
        /// required for `other`.
        note: Option<Reason<AcknowledgeCode>>,
    },
}

impl ReferralCommand {
    /// The action the command performs.
    pub fn action(&self) -> ReferralAction {
        match self {
            Self::Request(_) => ReferralAction::Request,
            Self::Receive => ReferralAction::Receive,
            Self::Accept => ReferralAction::Accept,
            Self::Reject(_) => ReferralAction::Reject,
            Self::Start => ReferralAction::Start,
            Self::Hold(_) => ReferralAction::Hold,
            Self::Resume => ReferralAction::Resume,
            Self::Complete => ReferralAction::Complete,
            Self::Fail(_) => ReferralAction::Fail,
            Self::Cancel(_) => ReferralAction::Cancel,
            Self::RecordFollowUp(_) => ReferralAction::RecordFollowUp,
            Self::MarkEnteredInError(_) => ReferralAction::MarkEnteredInError,
            Self::MarkResponseOverdue { .. } => ReferralAction::MarkResponseOverdue,
            Self::MarkFollowUpOverdue { .. } => ReferralAction::MarkFollowUpOverdue,
            Self::Escalate { .. } => ReferralAction::Escalate,
            Self::AcknowledgeEscalation { .. } => ReferralAction::AcknowledgeEscalation,
        }
    }
}

/// The facts of a new referral.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ReferralRequested {
    /// Its id.
    pub referral_id: ReferralId,
    pub case_id: CaseId,
    /// The referring organisation.
    pub from_org: OrgId,
    /// The referring caseworker.
    pub from_user: UserId,
    /// The receiving organisation.
    pub to_org: OrgId,
    pub service_id: ServiceId,
    pub category: ServiceCategory,
    pub priority: Priority,
    /// Minimum facts about the client.
    pub client: ClientSummary,
    /// The ground for sharing.
    pub consent: ConsentBasis,
    /// The referral this one replaces after a redirect.
    pub redirected_from: Option<ReferralId>,
    /// Notes, encrypted.
    pub notes: Option<EncryptedPii>,
    /// The GCM objectives its service served when it was made, ascending; empty in referrals
    /// recorded before objectives were (read them with [`crate::gcm::objectives_or_default`]).
    pub gcm_objectives: Vec<crate::gcm::GcmObjective>,
}

/// What a referral records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferralEvent {
    /// Made.
    Requested(Box<ReferralRequested>),
    /// Acknowledged by the receiving organisation.
    Received,
    /// Accepted.
    Accepted,
    /// Declined.
    Rejected(Decline),
    /// Service started.
    Started,
    /// Put on hold.
    PutOnHold(Reason<HoldCode>),
    /// Resumed.
    Resumed,
    /// Service completed.
    Completed,
    /// Service failed.
    Failed(Reason<FailCode>),
    /// Cancelled by the referring organisation.
    Cancelled(Reason<CancelCode>),
    /// Follow-up recorded: the loop is closed.
    FollowUpRecorded(FollowUp),
    /// Marked entered-in-error.
    EnteredInError(Reason<ErrorCode>),
    /// A response deadline passed.
    ResponseOverdue {
        /// Acknowledgement or decision.
        kind: OverdueKind,
        /// The deadline.
        due_at: Timestamp,
    },
    /// The follow-up deadline passed.
    FollowUpOverdue {
        /// The deadline.
        due_at: Timestamp,
    },
    /// An overdue was escalated to the coordinator.
    Escalated {
        /// Which overdue.
        kind: OverdueKind,
    },
    /// A coordinator acknowledged an escalation.
    EscalationAcknowledged {
        /// Which one.
        kind: OverdueKind,
        /// What the coordinator did about it, if they said; absent in events written before
        /// notes existed.
        note: Option<Reason<AcknowledgeCode>>,
    },
}

/// Roles with which the receiving organisation handles a referral.
const RECEIVING_ROLES: &[Role] = &[
    Role::FocalPoint,
    Role::PartnerSystem,
    Role::Supervisor,
    Role::Caseworker,
];
/// Roles with which the referring organisation makes, cancels and follows up a referral.
const REFERRING_ROLES: &[Role] = &[Role::Caseworker, Role::Supervisor];

impl Aggregate for Referral {
    type Command = ReferralCommand;
    type Event = ReferralEvent;
    const KIND: AggregateKind = AggregateKind::Referral;

    fn decide(&self, command: &ReferralCommand, ctx: &Context) -> Result<Vec<ReferralEvent>, DomainError> {
        let Some(referral) = &self.0 else {
            return match command {
                ReferralCommand::Request(request) => decide_request(request, ctx),
                _ => Err(DomainError::NotFound),
            };
        };
        let actor = &ctx.actor;
        let action = command.action();
        let receiving = || {
            if actor.org != referral.to_org {
                return Err(DomainError::Forbidden(Forbidden::NotReceivingOrganisation));
            }
            actor.require_any(RECEIVING_ROLES)
        };
        let referring = |roles: &[Role]| {
            if actor.org != referral.from_org {
                return Err(DomainError::Forbidden(Forbidden::NotReferringOrganisation));
            }
            actor.require_any(roles)
        };
        let moving = || {
            transition(referral.status, action)
                .map(|_| ())
                .ok_or(DomainError::InvalidTransition {
                    from: referral.status,
                    action,
                })
        };
        let event = match command {
            ReferralCommand::Request(_) => return Err(DomainError::AlreadyExists),
            ReferralCommand::Receive => {
                receiving()?;
                moving()?;
                ReferralEvent::Received
            }
            ReferralCommand::Accept => {
                receiving()?;
                moving()?;
                ReferralEvent::Accepted
            }
            ReferralCommand::Reject(decline) => {
                receiving()?;
                moving()?;
                decline.validate()?;
                ReferralEvent::Rejected(decline.clone())
            }
            ReferralCommand::Start => {
                receiving()?;
                moving()?;
                ReferralEvent::Started
            }
            ReferralCommand::Hold(reason) => {
                receiving()?;
                moving()?;
                reason.validate()?;
                ReferralEvent::PutOnHold(reason.clone())
            }
            ReferralCommand::Resume => {
                receiving()?;
                moving()?;
                ReferralEvent::Resumed
            }
            ReferralCommand::Complete => {
                receiving()?;
                moving()?;
                ReferralEvent::Completed
            }
            ReferralCommand::Fail(reason) => {
                receiving()?;
                moving()?;
                reason.validate()?;
                ReferralEvent::Failed(reason.clone())
            }
            ReferralCommand::Cancel(reason) => {
                // Wasl's process managers cancel on the client's behalf when consent is withdrawn,
                // the case is closed with its referrals, or no organisation answered in time
                // (expired), and for nothing else.
                let on_behalf = matches!(
                    reason.code,
                    CancelCode::ConsentWithdrawn | CancelCode::CaseClosed | CancelCode::Expired
                );
                if !(on_behalf && actor.has(Role::System)) {
                    referring(REFERRING_ROLES)?;
                }
                moving()?;
                reason.validate()?;
                ReferralEvent::Cancelled(reason.clone())
            }
            ReferralCommand::MarkEnteredInError(reason) => {
                referring(&[Role::Supervisor])?;
                moving()?;
                reason.validate()?;
                ReferralEvent::EnteredInError(reason.clone())
            }
            ReferralCommand::RecordFollowUp(follow_up) => {
                referring(REFERRING_ROLES)?;
                if !matches!(referral.status, ReferralStatus::Completed | ReferralStatus::Failed) {
                    return Err(DomainError::InvalidTransition {
                        from: referral.status,
                        action,
                    });
                }
                if referral.followed_up {
                    return Err(DomainError::FollowUpAlreadyRecorded);
                }
                follow_up.validate()?;
                ReferralEvent::FollowUpRecorded(follow_up.clone())
            }
            ReferralCommand::MarkResponseOverdue { kind, due_at } => {
                actor.require_any(&[Role::System])?;
                if *kind == OverdueKind::FollowUp {
                    return Err(ValidationError::new("kind", "follow-up is not a response deadline").into());
                }
                overdue(referral, *kind, *due_at, ctx.now, action)?;
                ReferralEvent::ResponseOverdue {
                    kind: *kind,
                    due_at: *due_at,
                }
            }
            ReferralCommand::MarkFollowUpOverdue { due_at } => {
                actor.require_any(&[Role::System])?;
                overdue(referral, OverdueKind::FollowUp, *due_at, ctx.now, action)?;
                ReferralEvent::FollowUpOverdue { due_at: *due_at }
            }
            ReferralCommand::Escalate { kind } => {
                actor.require_any(&[Role::System])?;
                if referral.escalated.contains(kind) {
                    return Err(DomainError::AlreadyRecorded);
                }
                if !referral.overdue.contains(kind) || !referral.overdue_still_applies(*kind) {
                    return Err(DomainError::NothingEscalated);
                }
                ReferralEvent::Escalated { kind: *kind }
            }
            ReferralCommand::AcknowledgeEscalation { kind, note } => {
                actor.require_any(&[Role::Coordinator])?;
                if !referral.escalated.contains(kind) {
                    return Err(DomainError::NothingEscalated);
                }
                if referral.acknowledged.contains(kind) {
                    return Err(DomainError::AlreadyRecorded);
                }
                if let Some(note) = note {
                    note.validate()?;
                }
                ReferralEvent::EscalationAcknowledged {
                    kind: *kind,
                    note: note.clone(),
                }
            }
        };
        Ok(vec![event])
    }

    fn evolve(self, event: &ReferralEvent) -> Self {
        let Some(mut r) = self.0 else {
            return match event {
                ReferralEvent::Requested(req) => Self(Some(ReferralState {
                    id: req.referral_id,
                    case_id: req.case_id,
                    from_org: req.from_org,
                    from_user: req.from_user,
                    to_org: req.to_org,
                    service_id: req.service_id,
                    category: req.category,
                    priority: req.priority,
                    status: ReferralStatus::Requested,
                    consent: req.consent.clone(),
                    redirected_from: req.redirected_from,
                    decline: None,
                    followed_up: false,
                    overdue: BTreeSet::new(),
                    escalated: BTreeSet::new(),
                    acknowledged: BTreeSet::new(),
                })),
                // A stream that does not start with Requested is not a referral; keep it absent.
                _ => Self(None),
            };
        };
        match event {
            ReferralEvent::Requested(_) => {}
            ReferralEvent::Received => r.status = ReferralStatus::Received,
            ReferralEvent::Accepted => r.status = ReferralStatus::Accepted,
            ReferralEvent::Rejected(decline) => {
                r.status = ReferralStatus::Rejected;
                r.decline = Some(decline.clone());
            }
            ReferralEvent::Started | ReferralEvent::Resumed => r.status = ReferralStatus::InProgress,
            ReferralEvent::PutOnHold(_) => r.status = ReferralStatus::OnHold,
            ReferralEvent::Completed => r.status = ReferralStatus::Completed,
            ReferralEvent::Failed(_) => r.status = ReferralStatus::Failed,
            ReferralEvent::Cancelled(_) => r.status = ReferralStatus::Cancelled,
            ReferralEvent::EnteredInError(_) => r.status = ReferralStatus::EnteredInError,
            ReferralEvent::FollowUpRecorded(_) => r.followed_up = true,
            ReferralEvent::ResponseOverdue { kind, .. } => {
                r.overdue.insert(*kind);
            }
            ReferralEvent::FollowUpOverdue { .. } => {
                r.overdue.insert(OverdueKind::FollowUp);
            }
            ReferralEvent::Escalated { kind } => {
                r.escalated.insert(*kind);
            }
            ReferralEvent::EscalationAcknowledged { kind, .. } => {
                r.acknowledged.insert(*kind);
            }
        }
        Self(Some(r))
    }
}

fn overdue(
    referral: &ReferralState,
    kind: OverdueKind,
    due_at: Timestamp,
    now: Timestamp,
    action: ReferralAction,
) -> Result<(), DomainError> {
    if referral.overdue.contains(&kind) {
        return Err(DomainError::AlreadyRecorded);
    }
    if due_at > now {
        return Err(ValidationError::new("due_at", "has not passed yet").into());
    }
    if !referral.overdue_still_applies(kind) {
        return Err(DomainError::InvalidTransition {
            from: referral.status,
            action,
        });
    }
    Ok(())
}

/// A redirect continues a referral that the receiving organisation declined as `redirected`,
/// for the same case.
fn check_redirect(earlier: &Referral, new_id: ReferralId, case_id: CaseId) -> Result<ReferralId, DomainError> {
    let invalid = |problem| DomainError::from(ValidationError::new("redirected_from", problem));
    let earlier = earlier.state().ok_or_else(|| invalid("is not an existing referral"))?;
    if earlier.id == new_id {
        return Err(invalid("cannot be the referral itself"));
    }
    if earlier.case_id != case_id {
        return Err(invalid("belongs to another case"));
    }
    let redirected = earlier
        .decline
        .as_ref()
        .is_some_and(|d| d.reason.code == DeclineCode::Redirected);
    if earlier.status != ReferralStatus::Rejected || !redirected {
        return Err(invalid("was not declined as redirected"));
    }
    Ok(earlier.id)
}

fn decide_request(request: &RequestReferral, ctx: &Context) -> Result<Vec<ReferralEvent>, DomainError> {
    let actor = &ctx.actor;
    let case = request.case.state().ok_or(DomainError::NotFound)?;
    let redirected_from = match &request.redirected_from {
        None => None,
        Some(earlier) => Some(check_redirect(earlier, request.referral_id, case.id)?),
    };
    if actor.org != case.owner_org {
        return Err(DomainError::Forbidden(Forbidden::NotCaseOwner));
    }
    actor.require_any(REFERRING_ROLES)?;
    if case.status == CaseStatus::Closed {
        return Err(DomainError::CaseClosed);
    }
    let provider = request.provider.state().ok_or(DomainError::UnknownService)?;
    let service = provider
        .services
        .get(&request.service_id)
        .ok_or(DomainError::UnknownService)?;
    if service.retired {
        return Err(DomainError::ServiceRetired);
    }
    // A life-saving referral goes through even when the service has closed its intake: the
    // receiving organisation can still decline, but must see it.
    if !service.accepting && request.priority != Priority::Emergency {
        return Err(DomainError::ServiceNotAccepting);
    }
    let category = service.spec.category;
    let consent = match case.covering_consent(provider.id, category, ctx.now) {
        Some(consent_id) => ConsentBasis::Consent(consent_id),
        None => match &request.consent_override {
            None => return Err(DomainError::ConsentRequired),
            Some(_) if !actor.has(Role::Supervisor) => return Err(DomainError::OverrideNeedsSupervisor),
            Some(reason) => {
                reason.validate()?;
                ConsentBasis::Override(reason.clone())
            }
        },
    };
    let profile = &case.profile;
    Ok(vec![ReferralEvent::Requested(Box::new(ReferralRequested {
        referral_id: request.referral_id,
        case_id: case.id,
        from_org: case.owner_org,
        from_user: actor.user,
        to_org: provider.id,
        service_id: request.service_id,
        category,
        priority: request.priority,
        client: ClientSummary {
            sex: profile.sex,
            age_group: profile.age_group,
            population_group: profile.population_group,
            language: profile.language.clone(),
            location: profile.location,
        },
        consent,
        redirected_from,
        notes: request.notes.clone(),
        gcm_objectives: crate::gcm::default_objectives(category).to_vec(),
    }))])
}
