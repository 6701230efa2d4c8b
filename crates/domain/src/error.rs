//! Domain errors. Messages never contain the value that was refused: it may be personal data.

use crate::referral::{ReferralAction, ReferralStatus};

/// A value that failed validation: which field, and what is wrong with it (never the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {problem}")]
pub struct ValidationError {
    /// The field, as named in the API and the event schema.
    pub field: &'static str,
    /// What is wrong, in words safe to show and to log.
    pub problem: &'static str,
}

impl ValidationError {
    /// A validation error for `field`.
    pub const fn new(field: &'static str, problem: &'static str) -> Self {
        Self { field, problem }
    }
}

/// Why the actor may not do this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    /// The actor does not belong to the organisation that owns the case.
    NotCaseOwner,
    /// Only the organisation that made the referral may do this.
    NotReferringOrganisation,
    /// Only the organisation the referral is addressed to may do this.
    NotReceivingOrganisation,
    /// The actor's organisation does not run this part of the directory.
    NotDirectoryMaintainer,
    /// The actor lacks the role this needs.
    MissingRole,
}

impl Forbidden {
    /// Stable snake_case code.
    pub const fn code(self) -> &'static str {
        match self {
            Self::NotCaseOwner => "not_case_owner",
            Self::NotReferringOrganisation => "not_referring_organisation",
            Self::NotReceivingOrganisation => "not_receiving_organisation",
            Self::NotDirectoryMaintainer => "not_directory_maintainer",
            Self::MissingRole => "missing_role",
        }
    }
}

/// A command the domain refuses. Each variant has a stable [`DomainError::code`] for APIs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field of the command is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The aggregate does not exist yet; only its creating command is allowed.
    #[error("it does not exist")]
    NotFound,
    /// The aggregate exists already; a creating command was sent twice with different ids.
    #[error("it exists already")]
    AlreadyExists,
    /// The actor may not do this.
    #[error("not permitted: {}", .0.code())]
    Forbidden(Forbidden),
    /// The referral's status does not allow this action.
    #[error("a referral that is {} cannot be {}", .from.code(), .action.code())]
    InvalidTransition {
        /// Where the referral is.
        from: ReferralStatus,
        /// What was asked.
        action: ReferralAction,
    },
    /// A reason must be given (and, for `other`, explained in text).
    #[error("a reason is required")]
    ReasonRequired,
    /// No active consent of the client covers this organisation and service category.
    #[error("no active consent covers this organisation and service category")]
    ConsentRequired,
    /// Only a supervisor may override missing consent.
    #[error("only a supervisor may override consent")]
    OverrideNeedsSupervisor,
    /// The consent does not exist on this case.
    #[error("no such consent on this case")]
    UnknownConsent,
    /// The consent was withdrawn (or has expired) and cannot change any more.
    #[error("the consent is no longer active")]
    ConsentNotActive,
    /// A narrowed consent must not cover anything the original did not.
    #[error("a narrowed consent must stay within the original scope")]
    NotANarrowing,
    /// The case is closed; reopen it first.
    #[error("the case is closed")]
    CaseClosed,
    /// The case is open already.
    #[error("the case is open")]
    CaseOpen,
    /// The case has open referrals; close them, or close the case with `cancel_open_referrals`.
    #[error("the case has {count} open referrals")]
    OpenReferrals {
        /// How many referrals are open.
        count: usize,
    },
    /// The command would change nothing.
    #[error("nothing to change")]
    NothingToChange,
    /// Follow-up was already recorded; the loop is closed.
    #[error("follow-up was already recorded")]
    FollowUpAlreadyRecorded,
    /// The same overdue or escalation was already recorded.
    #[error("already recorded")]
    AlreadyRecorded,
    /// There is nothing overdue to escalate, or no escalation to acknowledge.
    #[error("nothing is overdue or escalated")]
    NothingEscalated,
    /// The service does not exist in this organisation.
    #[error("no such service in this organisation")]
    UnknownService,
    /// The service was retired.
    #[error("the service is retired")]
    ServiceRetired,
    /// The case's personal data was erased; no new personal data can be recorded on it.
    #[error("the case's personal data was erased")]
    PersonalDataErased,
    /// The service does not accept referrals now.
    #[error("the service does not accept referrals now")]
    ServiceNotAccepting,
}

impl DomainError {
    /// Stable snake_case code, the `type` suffix of problem+json responses.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::Forbidden(_) => "forbidden",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::ReasonRequired => "reason_required",
            Self::ConsentRequired => "consent_required",
            Self::OverrideNeedsSupervisor => "override_needs_supervisor",
            Self::UnknownConsent => "unknown_consent",
            Self::ConsentNotActive => "consent_not_active",
            Self::NotANarrowing => "not_a_narrowing",
            Self::CaseClosed => "case_closed",
            Self::CaseOpen => "case_open",
            Self::OpenReferrals { .. } => "open_referrals",
            Self::NothingToChange => "nothing_to_change",
            Self::FollowUpAlreadyRecorded => "follow_up_already_recorded",
            Self::AlreadyRecorded => "already_recorded",
            Self::NothingEscalated => "nothing_escalated",
            Self::UnknownService => "unknown_service",
            Self::ServiceRetired => "service_retired",
            Self::PersonalDataErased => "personal_data_erased",
            Self::ServiceNotAccepting => "service_not_accepting",
        }
    }
}
