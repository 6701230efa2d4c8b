//! Service categories, priorities and the coded reasons a referral or case moves with.

use crate::codes::code_enum;
use crate::error::DomainError;
use crate::ids::OrgId;
use crate::pii::EncryptedPii;

code_enum!(
    /// What kind of service a referral asks for. New categories are added as new variants (and
    /// new protobuf enum values); existing codes never change meaning.
    ServiceCategory, "category" {
        /// Health care, including clinical management of rape.
        Health => "health",
        /// Legal aid and counselling.
        Legal => "legal",
        /// Mental health and psychosocial support.
        Psychosocial => "psychosocial",
        /// Safe shelter and housing.
        Shelter => "shelter",
        /// Civil documentation (ID, civil status, property papers).
        CivilDocumentation => "civil_documentation",
        /// Livelihoods and economic support.
        Livelihoods => "livelihoods",
        /// Education.
        Education => "education",
        /// Child protection case management.
        ChildProtection => "child_protection",
        /// Cash assistance.
        Cash => "cash",
    }
);

code_enum!(
    /// How fast a referral needs an answer.
    Priority, "priority" {
        /// Routine.
        Routine => "routine",
        /// Urgent.
        Urgent => "urgent",
        /// Life-saving, e.g. clinical care after sexual violence.
        Emergency => "emergency",
    }
);

/// A coded reason whose `other` value needs an explanation in text.
pub trait ReasonCode: Copy {
    /// Whether this code must come with a text.
    fn needs_text(self) -> bool;
}

/// A coded reason with optional (encrypted) explanatory text. Text is required for `other`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Reason<C> {
    pub code: C,
    /// Explanation; free text may hold personal data, so it is always encrypted.
    pub text: Option<EncryptedPii>,
}

impl<C: ReasonCode> Reason<C> {
    /// A reason with just a code.
    pub fn coded(code: C) -> Self {
        Self { code, text: None }
    }

    /// Checks that a code that needs text has a non-empty one.
    pub fn validate(&self) -> Result<(), DomainError> {
        let has_text = self.text.as_ref().is_some_and(|t| !t.is_empty());
        if self.code.needs_text() && !has_text {
            Err(DomainError::ReasonRequired)
        } else {
            Ok(())
        }
    }
}

macro_rules! reason_codes {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($(#[$vdoc:meta])* $variant:ident => $code:literal),* $(,)? }) => {
        code_enum!($(#[$doc])* $name, $field { $($(#[$vdoc])* $variant => $code),* });
        impl ReasonCode for $name {
            fn needs_text(self) -> bool {
                self.code() == "other"
            }
        }
    };
}

reason_codes!(
    /// Why a receiving organisation declines a referral.
    DeclineCode, "decline_reason" {
        /// No capacity now.
        NoCapacity => "no_capacity",
        /// The client does not meet the eligibility criteria.
        NotEligible => "not_eligible",
        /// The organisation does not offer this service.
        ServiceNotOffered => "service_not_offered",
        /// The client could not be reached.
        ClientUnreachable => "client_unreachable",
        /// The client declined the service.
        ClientDeclined => "client_declined",
        /// Another organisation is better placed; it is named in the decline.
        Redirected => "redirected",
        /// Another reason, explained in text.
        Other => "other",
    }
);

/// A decline: coded reason, the suggested organisation for `redirected`, optional text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Decline {
    pub reason: Reason<DeclineCode>,
    /// The organisation suggested instead; required exactly when the code is `redirected`.
    pub suggested_org: Option<OrgId>,
}

impl Decline {
    /// Checks the reason and that a redirect names an organisation (and nothing else does).
    pub fn validate(&self) -> Result<(), DomainError> {
        self.reason.validate()?;
        match (self.reason.code, self.suggested_org) {
            (DeclineCode::Redirected, None) => Err(DomainError::ReasonRequired),
            (DeclineCode::Redirected, Some(_)) | (_, None) => Ok(()),
            (_, Some(_)) => Err(crate::error::ValidationError::new(
                "suggested_org",
                "is only given with the reason redirected",
            )
            .into()),
        }
    }
}

reason_codes!(
    /// Why the referring organisation cancels a referral.
    CancelCode, "cancel_reason" {
        /// The client asked for it.
        ClientRequest => "client_request",
        /// The client withdrew consent.
        ConsentWithdrawn => "consent_withdrawn",
        /// The case was closed.
        CaseClosed => "case_closed",
        /// The need is met another way.
        NoLongerNeeded => "no_longer_needed",
        /// Referred to another organisation instead.
        ReferredElsewhere => "referred_elsewhere",
        /// Made twice by mistake.
        Duplicate => "duplicate",
        /// Another reason, explained in text.
        Other => "other",
        /// No organisation answered in time: the follow-up service cancelled it after the
        /// escalations its deadline policy allows, so the caseworker can refer elsewhere.
        Expired => "expired",
    }
);

reason_codes!(
    /// What a coordinator did about an escalation, recorded with its acknowledgement. A code, so
    /// that coordinators and dashboards can read it without the case's key; any text beside it
    /// is sealed under the case's key like every other free text.
    AcknowledgeCode, "acknowledge_reason" {
        /// The coordinator contacted the receiving organisation.
        PartnerContacted => "partner_contacted",
        /// The coordinator contacted the referring organisation.
        ReferrerContacted => "referrer_contacted",
        /// The coordinator advised the referring organisation to refer the client elsewhere.
        RedirectAdvised => "redirect_advised",
        /// Recorded as a gap in services: no organisation can answer in time.
        ServiceGap => "service_gap",
        /// Already resolved: the overdue no longer applies.
        Resolved => "resolved",
        /// Another action, explained in text.
        Other => "other",
    }
);

reason_codes!(
    /// Why a service is put on hold.
    HoldCode, "hold_reason" {
        /// The client is temporarily unavailable.
        ClientUnavailable => "client_unavailable",
        /// Waiting for documents.
        AwaitingDocuments => "awaiting_documents",
        /// Waiting for capacity.
        AwaitingCapacity => "awaiting_capacity",
        /// Security situation.
        Security => "security",
        /// Another reason, explained in text.
        Other => "other",
    }
);

reason_codes!(
    /// Why a service could not be delivered.
    FailCode, "fail_reason" {
        /// The client could not be reached.
        ClientUnreachable => "client_unreachable",
        /// The client stopped the service.
        ClientDeclined => "client_declined",
        /// The client moved away.
        ClientRelocated => "client_relocated",
        /// The service became unavailable.
        ServiceUnavailable => "service_unavailable",
        /// Security situation.
        Security => "security",
        /// Another reason, explained in text.
        Other => "other",
    }
);

reason_codes!(
    /// Why a referral is marked entered-in-error.
    ErrorCode, "error_reason" {
        /// A duplicate record.
        Duplicate => "duplicate",
        /// Entered on the wrong case.
        WrongCase => "wrong_case",
        /// Addressed to the wrong organisation.
        WrongOrganisation => "wrong_organisation",
        /// Test or training data.
        TestData => "test_data",
        /// Another reason, explained in text.
        Other => "other",
    }
);

reason_codes!(
    /// Why a supervisor refers without covering consent.
    OverrideCode, "override_reason" {
        /// Life-threatening emergency; the client cannot consent in time.
        LifeThreatening => "life_threatening",
        /// In the best interest of a child, as determined by a best-interest procedure.
        ChildBestInterest => "child_best_interest",
        /// The client lacks capacity to consent; a guardian agreed.
        LacksCapacity => "lacks_capacity",
        /// Another reason, explained in text.
        Other => "other",
    }
);

reason_codes!(
    /// Why a case is closed.
    CloseCode, "close_reason" {
        /// The client's needs are met.
        NeedsMet => "needs_met",
        /// The client asked to close.
        ClientRequest => "client_request",
        /// The client moved away.
        ClientRelocated => "client_relocated",
        /// Contact was lost.
        LostContact => "lost_contact",
        /// Transferred to another organisation's case management.
        Transferred => "transferred",
        /// A duplicate of another case.
        Duplicate => "duplicate",
        /// Another reason, explained in text.
        Other => "other",
    }
);

reason_codes!(
    /// Why a case's personal data is erased.
    EraseCode, "erase_reason" {
        /// The client asked for it.
        ClientRequest => "client_request",
        /// The retention period after closure has passed.
        RetentionExpired => "retention_expired",
        /// A court or data-protection authority ordered it.
        LegalOrder => "legal_order",
        /// The data was recorded on the wrong case or should never have been recorded.
        RecordedInError => "recorded_in_error",
        /// Another reason, explained in text.
        Other => "other",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_needs_text_and_coded_reasons_do_not() {
        assert_eq!(
            Reason::coded(CancelCode::Other).validate(),
            Err(DomainError::ReasonRequired)
        );
        assert!(Reason::coded(CancelCode::Duplicate).validate().is_ok());
    }

    #[test]
    fn a_redirect_must_name_the_organisation_and_only_a_redirect_may() {
        let org = OrgId::parse("0190c1a0-0000-7000-8000-000000000001").unwrap();
        let redirect = |org| Decline {
            reason: Reason::coded(DeclineCode::Redirected),
            suggested_org: org,
        };
        assert_eq!(redirect(None).validate(), Err(DomainError::ReasonRequired));
        assert!(redirect(Some(org)).validate().is_ok());
        let full = Decline {
            reason: Reason::coded(DeclineCode::NoCapacity),
            suggested_org: Some(org),
        };
        assert!(matches!(full.validate(), Err(DomainError::Invalid(_))));
    }
}
