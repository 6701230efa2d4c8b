//! The `Case` aggregate: one client of one organisation, their profile, personal data (always
//! encrypted), assignment and shares (who needs to know it), consent and open/closed status.
//!
//! Consent is a stream of events. A consent is *given* with a scope (service categories and
//! organisations, each either listed or "any in the pathway") and an optional expiry, may be
//! *narrowed* (never widened: widen by giving a new consent) and *withdrawn*. A referral needs an
//! active consent covering its organisation and category at the time it is made.

use crate::catalogue::{CloseCode, EraseCode, Reason, ServiceCategory};
use crate::client::{ClientProfile, Identifying};
use crate::error::{DomainError, Forbidden, ValidationError};
use crate::ids::{CaseId, ConsentId, OrgId, ReferralId, UserId};
use crate::pii::{EncryptedPii, PersonalData};
use crate::time::Timestamp;
use crate::{Aggregate, AggregateKind, Context, Role};
use std::collections::{BTreeMap, BTreeSet};

/// Either anything in the referral pathway, or only the listed values (never an empty list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope<T: Ord> {
    /// Any value.
    Any,
    /// Only these values.
    Only(BTreeSet<T>),
}

impl<T: Ord + Clone> Scope<T> {
    /// A scope of listed values; an empty list is refused.
    pub fn only(values: impl IntoIterator<Item = T>, field: &'static str) -> Result<Self, ValidationError> {
        let set: BTreeSet<T> = values.into_iter().collect();
        if set.is_empty() {
            Err(ValidationError::new(field, "must list at least one value, or be any"))
        } else {
            Ok(Self::Only(set))
        }
    }

    /// Whether `value` is in scope.
    pub fn contains(&self, value: &T) -> bool {
        match self {
            Self::Any => true,
            Self::Only(set) => set.contains(value),
        }
    }

    /// Whether everything in `self` is also in `other`.
    pub fn is_within(&self, other: &Self) -> bool {
        match (self, other) {
            (_, Self::Any) => true,
            (Self::Any, Self::Only(_)) => false,
            (Self::Only(mine), Self::Only(theirs)) => mine.is_subset(theirs),
        }
    }

    fn is_valid(&self) -> bool {
        !matches!(self, Self::Only(set) if set.is_empty())
    }
}

/// What a consent covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentScope {
    /// Service categories the client agreed to be referred for.
    pub categories: Scope<ServiceCategory>,
    /// Organisations the client agreed to be referred to.
    pub organisations: Scope<OrgId>,
    /// When the consent lapses; `None` for a consent without expiry (it lasts until withdrawn).
    pub expires_at: Option<Timestamp>,
}

impl ConsentScope {
    /// Whether the scope covers a referral to `org` for `category` at `now`.
    pub fn covers(&self, org: OrgId, category: ServiceCategory, now: Timestamp) -> bool {
        self.categories.contains(&category)
            && self.organisations.contains(&org)
            && self.expires_at.is_none_or(|exp| now < exp)
    }

    /// Whether `self` covers nothing that `wider` does not.
    pub fn is_within(&self, wider: &Self) -> bool {
        let expiry_ok = match (self.expires_at, wider.expires_at) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(mine), Some(theirs)) => mine <= theirs,
        };
        expiry_ok && self.categories.is_within(&wider.categories) && self.organisations.is_within(&wider.organisations)
    }

    fn validate(&self, now: Timestamp) -> Result<(), DomainError> {
        if !self.categories.is_valid() {
            return Err(ValidationError::new("categories", "must list at least one value, or be any").into());
        }
        if !self.organisations.is_valid() {
            return Err(ValidationError::new("organisations", "must list at least one value, or be any").into());
        }
        if self.expires_at.is_some_and(|exp| exp <= now) {
            return Err(ValidationError::new("expires_at", "must lie in the future").into());
        }
        Ok(())
    }
}

/// One consent of the client, as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The scope, after any narrowing.
    pub scope: ConsentScope,
    /// Whether it was withdrawn.
    pub withdrawn: bool,
}

/// Open or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStatus {
    /// Open.
    Open,
    /// Closed; reopen to act on it again.
    Closed,
}

/// The state of an existing case.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct CaseState {
    pub id: CaseId,
    /// The organisation that owns the case.
    pub owner_org: OrgId,
    /// The caseworker responsible.
    pub caseworker: UserId,
    /// The other caseworkers of the organisation the case is shared with: they see and work on
    /// it as the responsible caseworker does (need-to-know).
    pub shared_with: BTreeSet<UserId>,
    /// Open or closed.
    pub status: CaseStatus,
    /// The client's non-identifying profile.
    pub profile: ClientProfile,
    /// The client's personal data, encrypted.
    pub personal: PersonalData,
    /// Every consent given, by id.
    pub consents: BTreeMap<ConsentId, Consent>,
    /// Whether the personal data was erased (its key destroyed); none can be added after.
    pub personal_data_erased: bool,
}

impl CaseState {
    /// The first active consent covering a referral to `org` for `category` at `now`.
    pub fn covering_consent(&self, org: OrgId, category: ServiceCategory, now: Timestamp) -> Option<ConsentId> {
        self.consents
            .iter()
            .find(|(_, c)| !c.withdrawn && c.scope.covers(org, category, now))
            .map(|(id, _)| *id)
    }
}

/// A case, or the absence of one before it is opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Case(Option<CaseState>);

impl Case {
    /// The state, if the case exists.
    pub fn state(&self) -> Option<&CaseState> {
        self.0.as_ref()
    }
}

/// Open a case for a client of the actor's organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCase {
    /// The new case's id.
    pub case_id: CaseId,
    /// The responsible caseworker; the actor when `None`.
    pub caseworker: Option<UserId>,
    /// The client's profile.
    pub profile: ClientProfile,
    /// Personal data, encrypted by the caller under the new case's key.
    pub personal: PersonalData,
}

/// Close a case.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct CloseCase {
    pub reason: Reason<CloseCode>,
    /// The case's referrals that are still open, as the command handler found them.
    pub open_referrals: Vec<ReferralId>,
    /// Cancel those referrals with the close (reason `case_closed`) instead of refusing.
    pub cancel_open_referrals: bool,
}

/// What can be asked of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum CaseCommand {
    /// Open the case.
    Open(OpenCase),
    /// Replace the profile.
    UpdateProfile(ClientProfile),
    /// Replace the personal data.
    UpdatePersonalData(PersonalData),
    /// Make another caseworker responsible.
    Assign { caseworker: UserId },
    /// Share the case with another caseworker of the organisation (a supervisor or the
    /// responsible caseworker asks; the caller checks `user` is of the organisation).
    Share { user: UserId },
    /// Take a share back (a supervisor or the responsible caseworker).
    Unshare { user: UserId },
    /// Record a consent.
    GiveConsent {
        /// The consent's id.
        consent_id: ConsentId,
        /// What it covers.
        scope: ConsentScope,
    },
    /// Narrow a consent.
    NarrowConsent {
        consent_id: ConsentId,
        /// The narrower scope.
        scope: ConsentScope,
    },
    /// Withdraw a consent; the referrals it covered are then cancelled by the process manager.
    WithdrawConsent { consent_id: ConsentId },
    /// Close the case.
    Close(CloseCase),
    /// Reopen a closed case.
    Reopen {
        /// Why, optionally.
        reason: Option<EncryptedPii>,
    },
    /// Erase the case's personal data for good: its data key is destroyed after this is
    /// recorded, so every copy of the log reads "erased" from then on. Counts stay.
    ErasePersonalData { reason: Reason<EraseCode> },
}

/// What a case records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum CaseEvent {
    /// A case was opened by `owner_org`.
    Opened {
        case_id: CaseId,
        /// The owning organisation.
        owner_org: OrgId,
        /// The responsible caseworker.
        caseworker: UserId,
        /// The client's profile.
        profile: ClientProfile,
        /// Personal data, encrypted.
        personal: PersonalData,
    },
    /// The profile was replaced.
    ProfileUpdated {
        /// The new profile.
        profile: ClientProfile,
    },
    /// The personal data was replaced.
    PersonalDataUpdated {
        /// The new personal data.
        personal: PersonalData,
    },
    /// Another caseworker became responsible.
    Assigned { caseworker: UserId },
    /// The case was shared with another caseworker of the organisation.
    Shared { user: UserId },
    /// A share was taken back.
    Unshared { user: UserId },
    /// The client gave consent.
    ConsentGiven { consent_id: ConsentId, scope: ConsentScope },
    /// The client narrowed a consent.
    ConsentNarrowed {
        consent_id: ConsentId,
        /// The new, narrower scope.
        scope: ConsentScope,
    },
    /// The client withdrew a consent.
    ConsentWithdrawn { consent_id: ConsentId },
    /// The case was closed; `cancelled_referrals` are to be cancelled with it.
    Closed {
        reason: Reason<CloseCode>,
        /// Open referrals cancelled by the close.
        cancelled_referrals: Vec<ReferralId>,
    },
    /// The case was reopened.
    Reopened {
        /// Why, optionally.
        reason: Option<EncryptedPii>,
    },
    /// The case's personal data was erased: its key is destroyed, every sealed value of the case
    /// reads "erased" from now on.
    PersonalDataErased { reason: Reason<EraseCode> },
}

const CASE_ROLES: &[Role] = &[Role::Caseworker, Role::Supervisor];

impl Aggregate for Case {
    type Command = CaseCommand;
    type Event = CaseEvent;
    const KIND: AggregateKind = AggregateKind::Case;

    fn decide(&self, command: &CaseCommand, ctx: &Context) -> Result<Vec<CaseEvent>, DomainError> {
        let actor = &ctx.actor;
        let Some(case) = &self.0 else {
            return match command {
                CaseCommand::Open(open) => {
                    actor.require_any(CASE_ROLES)?;
                    require_sealed(&open.profile)?;
                    Ok(vec![CaseEvent::Opened {
                        case_id: open.case_id,
                        owner_org: actor.org,
                        caseworker: open.caseworker.unwrap_or(actor.user),
                        profile: open.profile.clone().normalised(),
                        personal: open.personal.clone(),
                    }])
                }
                _ => Err(DomainError::NotFound),
            };
        };
        if let CaseCommand::ErasePersonalData { reason } = command {
            // A supervisor of the owning organisation, an admin, or Wasl's retention job.
            let own_supervisor = actor.org == case.owner_org && actor.has(Role::Supervisor);
            if !(own_supervisor || actor.has_any(&[Role::Admin, Role::System])) {
                return Err(DomainError::Forbidden(if actor.org == case.owner_org {
                    Forbidden::MissingRole
                } else {
                    Forbidden::NotCaseOwner
                }));
            }
            if case.personal_data_erased {
                return Err(DomainError::AlreadyRecorded);
            }
            reason.validate()?;
            return Ok(vec![CaseEvent::PersonalDataErased { reason: reason.clone() }]);
        }
        if actor.org != case.owner_org {
            return Err(DomainError::Forbidden(Forbidden::NotCaseOwner));
        }
        actor.require_any(CASE_ROLES)?;
        let require_open = || match case.status {
            CaseStatus::Open => Ok(()),
            CaseStatus::Closed => Err(DomainError::CaseClosed),
        };
        match command {
            CaseCommand::Open(_) => Err(DomainError::AlreadyExists),
            CaseCommand::UpdateProfile(profile) => {
                require_open()?;
                // The survivor code, exact age and vulnerabilities are forgotten with the
                // personal data; writing them again would undo the erasure.
                if case.personal_data_erased {
                    return Err(DomainError::PersonalDataErased);
                }
                require_sealed(profile)?;
                let profile = profile.clone().normalised();
                if profile == case.profile {
                    return Err(DomainError::NothingToChange);
                }
                Ok(vec![CaseEvent::ProfileUpdated { profile }])
            }
            CaseCommand::UpdatePersonalData(personal) => {
                require_open()?;
                if case.personal_data_erased {
                    return Err(DomainError::PersonalDataErased);
                }
                if *personal == case.personal {
                    return Err(DomainError::NothingToChange);
                }
                Ok(vec![CaseEvent::PersonalDataUpdated {
                    personal: personal.clone(),
                }])
            }
            CaseCommand::Assign { caseworker } => {
                require_open()?;
                if *caseworker == case.caseworker {
                    return Err(DomainError::NothingToChange);
                }
                Ok(vec![CaseEvent::Assigned {
                    caseworker: *caseworker,
                }])
            }
            CaseCommand::Share { user } | CaseCommand::Unshare { user } => {
                // Need-to-know: only who may see the whole case, or answers for it, passes it on.
                if !(actor.has(Role::Supervisor) || actor.user == case.caseworker) {
                    return Err(DomainError::Forbidden(Forbidden::MissingRole));
                }
                let shared = case.shared_with.contains(user);
                match command {
                    CaseCommand::Share { .. } if *user == case.caseworker => Err(DomainError::NothingToChange),
                    CaseCommand::Share { .. } if shared => Err(DomainError::AlreadyRecorded),
                    CaseCommand::Share { .. } => Ok(vec![CaseEvent::Shared { user: *user }]),
                    _ if !shared => Err(DomainError::NothingToChange),
                    _ => Ok(vec![CaseEvent::Unshared { user: *user }]),
                }
            }
            CaseCommand::GiveConsent { consent_id, scope } => {
                require_open()?;
                if case.consents.contains_key(consent_id) {
                    return Err(DomainError::AlreadyRecorded);
                }
                scope.validate(ctx.now)?;
                Ok(vec![CaseEvent::ConsentGiven {
                    consent_id: *consent_id,
                    scope: scope.clone(),
                }])
            }
            CaseCommand::NarrowConsent { consent_id, scope } => {
                let consent = active_consent(case, *consent_id, ctx.now)?;
                scope.validate(ctx.now)?;
                if !scope.is_within(&consent.scope) {
                    return Err(DomainError::NotANarrowing);
                }
                if *scope == consent.scope {
                    return Err(DomainError::NothingToChange);
                }
                Ok(vec![CaseEvent::ConsentNarrowed {
                    consent_id: *consent_id,
                    scope: scope.clone(),
                }])
            }
            CaseCommand::WithdrawConsent { consent_id } => {
                let consent = case.consents.get(consent_id).ok_or(DomainError::UnknownConsent)?;
                if consent.withdrawn {
                    return Err(DomainError::ConsentNotActive);
                }
                // Withdrawing an expired consent is allowed: it still tells the partners to redact.
                Ok(vec![CaseEvent::ConsentWithdrawn {
                    consent_id: *consent_id,
                }])
            }
            CaseCommand::Close(close) => {
                require_open()?;
                close.reason.validate()?;
                let mut open: Vec<ReferralId> = close.open_referrals.clone();
                open.sort();
                open.dedup();
                if !open.is_empty() && !close.cancel_open_referrals {
                    return Err(DomainError::OpenReferrals { count: open.len() });
                }
                Ok(vec![CaseEvent::Closed {
                    reason: close.reason.clone(),
                    cancelled_referrals: open,
                }])
            }
            CaseCommand::ErasePersonalData { .. } => Err(DomainError::AlreadyRecorded),
            CaseCommand::Reopen { reason } => match case.status {
                CaseStatus::Open => Err(DomainError::CaseOpen),
                CaseStatus::Closed => Ok(vec![CaseEvent::Reopened { reason: reason.clone() }]),
            },
        }
    }

    fn evolve(self, event: &CaseEvent) -> Self {
        let Some(mut case) = self.0 else {
            return match event {
                CaseEvent::Opened {
                    case_id,
                    owner_org,
                    caseworker,
                    profile,
                    personal,
                } => Self(Some(CaseState {
                    id: *case_id,
                    owner_org: *owner_org,
                    caseworker: *caseworker,
                    shared_with: BTreeSet::new(),
                    status: CaseStatus::Open,
                    profile: profile.clone(),
                    personal: personal.clone(),
                    consents: BTreeMap::new(),
                    personal_data_erased: false,
                })),
                // A stream that does not start with Opened is not a case; keep it absent.
                _ => Self(None),
            };
        };
        match event {
            CaseEvent::Opened { .. } => {}
            CaseEvent::ProfileUpdated { profile } => case.profile = profile.clone(),
            CaseEvent::PersonalDataUpdated { personal } => case.personal = personal.clone(),
            CaseEvent::Assigned { caseworker } => case.caseworker = *caseworker,
            CaseEvent::Shared { user } => {
                case.shared_with.insert(*user);
            }
            CaseEvent::Unshared { user } => {
                case.shared_with.remove(user);
            }
            CaseEvent::ConsentGiven { consent_id, scope } => {
                case.consents.insert(
                    *consent_id,
                    Consent {
                        scope: scope.clone(),
                        withdrawn: false,
                    },
                );
            }
            CaseEvent::ConsentNarrowed { consent_id, scope } => {
                if let Some(c) = case.consents.get_mut(consent_id) {
                    c.scope = scope.clone();
                }
            }
            CaseEvent::ConsentWithdrawn { consent_id } => {
                if let Some(c) = case.consents.get_mut(consent_id) {
                    c.withdrawn = true;
                }
            }
            CaseEvent::Closed { .. } => case.status = CaseStatus::Closed,
            CaseEvent::Reopened { .. } => case.status = CaseStatus::Open,
            CaseEvent::PersonalDataErased { .. } => {
                case.personal = PersonalData::default();
                case.personal_data_erased = true;
            }
        }
        Self(Some(case))
    }
}

/// The survivor code, exact age and vulnerabilities are written sealed, never in the clear: the
/// clear form exists only for events written before they were sealed.
fn require_sealed(profile: &ClientProfile) -> Result<(), ValidationError> {
    match profile.identifying {
        Identifying::Sealed(_) => Ok(()),
        Identifying::Clear(_) => Err(ValidationError::new(
            "profile",
            "the survivor code, exact age and vulnerabilities must be sealed",
        )),
    }
}

fn active_consent(case: &CaseState, id: ConsentId, now: Timestamp) -> Result<&Consent, DomainError> {
    let consent = case.consents.get(&id).ok_or(DomainError::UnknownConsent)?;
    if consent.withdrawn || consent.scope.expires_at.is_some_and(|exp| exp <= now) {
        return Err(DomainError::ConsentNotActive);
    }
    Ok(consent)
}
