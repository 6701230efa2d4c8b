//! Case events (`case.proto`).

use super::common::{
    consent_scope_from_pb, consent_scope_to_pb, opt_pii_from_pb, opt_pii_to_pb, personal_from_pb, personal_to_pb,
    profile_from_pb, profile_to_pb, reason_to_pb, required_reason,
};
use super::{id, ids, required};
use crate::error::DecodeError;
use crate::pb;
use crate::pb::event::Payload as P;
use wasl_domain::case::CaseEvent;

pub(super) fn to_pb(event: &CaseEvent) -> P {
    match event {
        CaseEvent::Opened {
            case_id,
            owner_org,
            caseworker,
            profile,
            personal,
        } => P::CaseOpened(pb::CaseOpened {
            case_id: case_id.to_string(),
            owner_org_id: owner_org.to_string(),
            caseworker_id: caseworker.to_string(),
            profile: Some(profile_to_pb(profile)),
            personal: Some(personal_to_pb(personal)),
        }),
        CaseEvent::ProfileUpdated { profile } => P::CaseProfileUpdated(pb::CaseProfileUpdated {
            profile: Some(profile_to_pb(profile)),
        }),
        CaseEvent::PersonalDataUpdated { personal } => P::CasePersonalDataUpdated(pb::CasePersonalDataUpdated {
            personal: Some(personal_to_pb(personal)),
        }),
        CaseEvent::Assigned { caseworker } => P::CaseAssigned(pb::CaseAssigned {
            caseworker_id: caseworker.to_string(),
        }),
        CaseEvent::Shared { user } => P::CaseShared(pb::CaseShared {
            user_id: user.to_string(),
        }),
        CaseEvent::Unshared { user } => P::CaseUnshared(pb::CaseUnshared {
            user_id: user.to_string(),
        }),
        CaseEvent::ConsentGiven { consent_id, scope } => P::ConsentGiven(pb::ConsentGiven {
            consent_id: consent_id.to_string(),
            scope: Some(consent_scope_to_pb(scope)),
        }),
        CaseEvent::ConsentNarrowed { consent_id, scope } => P::ConsentNarrowed(pb::ConsentNarrowed {
            consent_id: consent_id.to_string(),
            scope: Some(consent_scope_to_pb(scope)),
        }),
        CaseEvent::ConsentWithdrawn { consent_id } => P::ConsentWithdrawn(pb::ConsentWithdrawn {
            consent_id: consent_id.to_string(),
        }),
        CaseEvent::Closed {
            reason,
            cancelled_referrals,
        } => P::CaseClosed(pb::CaseClosed {
            reason: Some(reason_to_pb(reason)),
            cancelled_referral_ids: cancelled_referrals.iter().map(ToString::to_string).collect(),
        }),
        CaseEvent::Reopened { reason } => P::CaseReopened(pb::CaseReopened {
            reason: opt_pii_to_pb(reason.as_ref()),
        }),
        CaseEvent::PersonalDataErased { reason } => P::CasePersonalDataErased(pb::CasePersonalDataErased {
            reason: Some(reason_to_pb(reason)),
        }),
    }
}

pub(super) fn opened(m: pb::CaseOpened) -> Result<CaseEvent, DecodeError> {
    Ok(CaseEvent::Opened {
        case_id: id(&m.case_id, "CaseOpened.case_id")?,
        owner_org: id(&m.owner_org_id, "CaseOpened.owner_org_id")?,
        caseworker: id(&m.caseworker_id, "CaseOpened.caseworker_id")?,
        profile: profile_from_pb(required(m.profile, "CaseOpened.profile")?)?,
        personal: personal_from_pb(required(m.personal, "CaseOpened.personal")?)?,
    })
}

pub(super) fn profile_updated(m: pb::CaseProfileUpdated) -> Result<CaseEvent, DecodeError> {
    Ok(CaseEvent::ProfileUpdated {
        profile: profile_from_pb(required(m.profile, "CaseProfileUpdated.profile")?)?,
    })
}

pub(super) fn personal_data_updated(m: pb::CasePersonalDataUpdated) -> Result<CaseEvent, DecodeError> {
    Ok(CaseEvent::PersonalDataUpdated {
        personal: personal_from_pb(required(m.personal, "CasePersonalDataUpdated.personal")?)?,
    })
}

pub(super) fn assigned(m: &pb::CaseAssigned) -> Result<CaseEvent, DecodeError> {
    Ok(CaseEvent::Assigned {
        caseworker: id(&m.caseworker_id, "CaseAssigned.caseworker_id")?,
    })
}

pub(super) fn shared(m: &pb::CaseShared) -> Result<CaseEvent, DecodeError> {
    Ok(CaseEvent::Shared {
        user: id(&m.user_id, "CaseShared.user_id")?,
    })
}

pub(super) fn unshared(m: &pb::CaseUnshared) -> Result<CaseEvent, DecodeError> {
    Ok(CaseEvent::Unshared {
        user: id(&m.user_id, "CaseUnshared.user_id")?,
    })
}

pub(super) fn consent_given(m: pb::ConsentGiven) -> Result<CaseEvent, DecodeError> {
    Ok(CaseEvent::ConsentGiven {
        consent_id: id(&m.consent_id, "ConsentGiven.consent_id")?,
        scope: consent_scope_from_pb(required(m.scope, "ConsentGiven.scope")?)?,
    })
}

pub(super) fn consent_narrowed(m: pb::ConsentNarrowed) -> Result<CaseEvent, DecodeError> {
    Ok(CaseEvent::ConsentNarrowed {
        consent_id: id(&m.consent_id, "ConsentNarrowed.consent_id")?,
        scope: consent_scope_from_pb(required(m.scope, "ConsentNarrowed.scope")?)?,
    })
}

pub(super) fn consent_withdrawn(m: &pb::ConsentWithdrawn) -> Result<CaseEvent, DecodeError> {
    Ok(CaseEvent::ConsentWithdrawn {
        consent_id: id(&m.consent_id, "ConsentWithdrawn.consent_id")?,
    })
}

pub(super) fn closed(m: pb::CaseClosed) -> Result<CaseEvent, DecodeError> {
    Ok(CaseEvent::Closed {
        reason: required_reason::<_, pb::CloseReason>(m.reason, "CaseClosed.reason")?,
        cancelled_referrals: ids(&m.cancelled_referral_ids, "CaseClosed.cancelled_referral_ids")?,
    })
}

pub(super) fn reopened(m: pb::CaseReopened) -> Result<CaseEvent, DecodeError> {
    Ok(CaseEvent::Reopened {
        reason: opt_pii_from_pb(m.reason)?,
    })
}

pub(super) fn personal_data_erased(m: pb::CasePersonalDataErased) -> Result<CaseEvent, DecodeError> {
    Ok(CaseEvent::PersonalDataErased {
        reason: required_reason::<_, pb::EraseReason>(m.reason, "CasePersonalDataErased.reason")?,
    })
}
