//! Referral events (`referral.proto`).

use super::common::{
    opt_pii_from_pb, opt_pii_to_pb, reason_from_pb, reason_to_pb, required_reason, summary_from_pb, summary_to_pb,
};
use super::{At, ProtoEnum, id, opt_id, required, required_timestamp, small, timestamp_to_pb};
use crate::error::DecodeError;
use crate::pb;
use crate::pb::event::Payload as P;
use crate::pb::referral_requested::ConsentBasis as PbBasis;
use wasl_domain::catalogue::{Decline, Priority, ServiceCategory};
use wasl_domain::gcm::{GcmObjective, check_objectives};
use wasl_domain::referral::{
    ConsentBasis, FollowUp, OverdueKind, ReferralEvent, ReferralRequested, Satisfaction, ServiceReceived,
};

pub(super) fn to_pb(event: &ReferralEvent) -> P {
    match event {
        ReferralEvent::Requested(r) => P::ReferralRequested(requested_to_pb(r)),
        ReferralEvent::Received => P::ReferralReceived(pb::ReferralReceived {}),
        ReferralEvent::Accepted => P::ReferralAccepted(pb::ReferralAccepted {}),
        ReferralEvent::Rejected(decline) => P::ReferralRejected(pb::ReferralRejected {
            reason: Some(reason_to_pb(&decline.reason)),
            suggested_org_id: decline.suggested_org.map(|o| o.to_string()),
        }),
        ReferralEvent::Started => P::ReferralStarted(pb::ReferralStarted {}),
        ReferralEvent::PutOnHold(reason) => P::ReferralPutOnHold(pb::ReferralPutOnHold {
            reason: Some(reason_to_pb(reason)),
        }),
        ReferralEvent::Resumed => P::ReferralResumed(pb::ReferralResumed {}),
        ReferralEvent::Completed => P::ReferralCompleted(pb::ReferralCompleted {}),
        ReferralEvent::Failed(reason) => P::ReferralFailed(pb::ReferralFailed {
            reason: Some(reason_to_pb(reason)),
        }),
        ReferralEvent::Cancelled(reason) => P::ReferralCancelled(pb::ReferralCancelled {
            reason: Some(reason_to_pb(reason)),
        }),
        ReferralEvent::FollowUpRecorded(f) => P::FollowUpRecorded(pb::FollowUpRecorded {
            client_reached: f.client_reached,
            service_received: f.service_received.to_pb(),
            satisfaction: f.satisfaction.map(|s| u32::from(s.score())),
            note: opt_pii_to_pb(f.note.as_ref()),
        }),
        ReferralEvent::EnteredInError(reason) => P::ReferralEnteredInError(pb::ReferralEnteredInError {
            reason: Some(reason_to_pb(reason)),
        }),
        ReferralEvent::ResponseOverdue { kind, due_at } => P::ReferralResponseOverdue(pb::ReferralResponseOverdue {
            kind: kind.to_pb(),
            due_at: Some(timestamp_to_pb(*due_at)),
        }),
        ReferralEvent::FollowUpOverdue { due_at } => P::FollowUpOverdue(pb::FollowUpOverdue {
            due_at: Some(timestamp_to_pb(*due_at)),
        }),
        ReferralEvent::Escalated { kind } => P::ReferralEscalated(pb::ReferralEscalated { kind: kind.to_pb() }),
        ReferralEvent::EscalationAcknowledged { kind, note } => P::EscalationAcknowledged(pb::EscalationAcknowledged {
            kind: kind.to_pb(),
            note: note.as_ref().map(reason_to_pb),
        }),
    }
}

fn requested_to_pb(r: &ReferralRequested) -> pb::ReferralRequested {
    pb::ReferralRequested {
        referral_id: r.referral_id.to_string(),
        case_id: r.case_id.to_string(),
        from_org_id: r.from_org.to_string(),
        from_user_id: r.from_user.to_string(),
        to_org_id: r.to_org.to_string(),
        service_id: r.service_id.to_string(),
        category: r.category.to_pb(),
        priority: r.priority.to_pb(),
        client: Some(summary_to_pb(&r.client)),
        consent_basis: Some(match &r.consent {
            ConsentBasis::Consent(consent_id) => PbBasis::ConsentId(consent_id.to_string()),
            ConsentBasis::Override(reason) => PbBasis::ConsentOverride(reason_to_pb(reason)),
        }),
        redirected_from_referral_id: r.redirected_from.map(|id| id.to_string()),
        notes: opt_pii_to_pb(r.notes.as_ref()),
        gcm_objectives: r.gcm_objectives.iter().map(|o| o.number()).collect(),
    }
}

pub(super) fn requested(m: pb::ReferralRequested) -> Result<ReferralEvent, DecodeError> {
    let consent = match required(m.consent_basis, "ReferralRequested.consent_basis")? {
        PbBasis::ConsentId(consent_id) => ConsentBasis::Consent(id(&consent_id, "ReferralRequested.consent_id")?),
        PbBasis::ConsentOverride(reason) => ConsentBasis::Override(reason_from_pb(reason)?),
    };
    Ok(ReferralEvent::Requested(Box::new(ReferralRequested {
        referral_id: id(&m.referral_id, "ReferralRequested.referral_id")?,
        case_id: id(&m.case_id, "ReferralRequested.case_id")?,
        from_org: id(&m.from_org_id, "ReferralRequested.from_org_id")?,
        from_user: id(&m.from_user_id, "ReferralRequested.from_user_id")?,
        to_org: id(&m.to_org_id, "ReferralRequested.to_org_id")?,
        service_id: id(&m.service_id, "ReferralRequested.service_id")?,
        category: ServiceCategory::from_pb(m.category, "ReferralRequested.category")?,
        priority: Priority::from_pb(m.priority, "ReferralRequested.priority")?,
        client: summary_from_pb(required(m.client, "ReferralRequested.client")?)?,
        consent,
        redirected_from: opt_id(
            m.redirected_from_referral_id.as_deref(),
            "ReferralRequested.redirected_from_referral_id",
        )?,
        notes: opt_pii_from_pb(m.notes)?,
        gcm_objectives: objectives_from_pb(&m.gcm_objectives)?,
    })))
}

/// The objectives of a request: each 1 to 23, ascending, no duplicates.
fn objectives_from_pb(numbers: &[u32]) -> Result<Vec<GcmObjective>, DecodeError> {
    const FIELD: &str = "ReferralRequested.gcm_objectives";
    let objectives = numbers
        .iter()
        .map(|n| GcmObjective::new(*n).at(FIELD))
        .collect::<Result<Vec<_>, _>>()?;
    check_objectives(&objectives).at(FIELD)?;
    Ok(objectives)
}

pub(super) fn rejected(m: pb::ReferralRejected) -> Result<ReferralEvent, DecodeError> {
    Ok(ReferralEvent::Rejected(Decline {
        reason: required_reason::<_, pb::DeclineReason>(m.reason, "ReferralRejected.reason")?,
        suggested_org: opt_id(m.suggested_org_id.as_deref(), "ReferralRejected.suggested_org_id")?,
    }))
}

pub(super) fn put_on_hold(m: pb::ReferralPutOnHold) -> Result<ReferralEvent, DecodeError> {
    Ok(ReferralEvent::PutOnHold(required_reason::<_, pb::HoldReason>(
        m.reason,
        "ReferralPutOnHold.reason",
    )?))
}

pub(super) fn failed(m: pb::ReferralFailed) -> Result<ReferralEvent, DecodeError> {
    Ok(ReferralEvent::Failed(required_reason::<_, pb::FailReason>(
        m.reason,
        "ReferralFailed.reason",
    )?))
}

pub(super) fn cancelled(m: pb::ReferralCancelled) -> Result<ReferralEvent, DecodeError> {
    Ok(ReferralEvent::Cancelled(required_reason::<_, pb::CancelReason>(
        m.reason,
        "ReferralCancelled.reason",
    )?))
}

pub(super) fn follow_up_recorded(m: pb::FollowUpRecorded) -> Result<ReferralEvent, DecodeError> {
    const SATISFACTION: &str = "FollowUpRecorded.satisfaction";
    let satisfaction = m
        .satisfaction
        .map(|s| Satisfaction::new(small(s, SATISFACTION)?).at(SATISFACTION))
        .transpose()?;
    Ok(ReferralEvent::FollowUpRecorded(FollowUp {
        client_reached: m.client_reached,
        service_received: ServiceReceived::from_pb(m.service_received, "FollowUpRecorded.service_received")?,
        satisfaction,
        note: opt_pii_from_pb(m.note)?,
    }))
}

pub(super) fn entered_in_error(m: pb::ReferralEnteredInError) -> Result<ReferralEvent, DecodeError> {
    Ok(ReferralEvent::EnteredInError(required_reason::<_, pb::ErrorReason>(
        m.reason,
        "ReferralEnteredInError.reason",
    )?))
}

pub(super) fn response_overdue(m: pb::ReferralResponseOverdue) -> Result<ReferralEvent, DecodeError> {
    Ok(ReferralEvent::ResponseOverdue {
        kind: OverdueKind::from_pb(m.kind, "ReferralResponseOverdue.kind")?,
        due_at: required_timestamp(m.due_at, "ReferralResponseOverdue.due_at")?,
    })
}

pub(super) fn follow_up_overdue(m: pb::FollowUpOverdue) -> Result<ReferralEvent, DecodeError> {
    Ok(ReferralEvent::FollowUpOverdue {
        due_at: required_timestamp(m.due_at, "FollowUpOverdue.due_at")?,
    })
}

pub(super) fn escalated(m: &pb::ReferralEscalated) -> Result<ReferralEvent, DecodeError> {
    Ok(ReferralEvent::Escalated {
        kind: OverdueKind::from_pb(m.kind, "ReferralEscalated.kind")?,
    })
}

pub(super) fn escalation_acknowledged(m: pb::EscalationAcknowledged) -> Result<ReferralEvent, DecodeError> {
    Ok(ReferralEvent::EscalationAcknowledged {
        kind: OverdueKind::from_pb(m.kind, "EscalationAcknowledged.kind")?,
        // Absent in events written before notes existed: no note.
        note: m.note.map(reason_from_pb::<_, pb::AcknowledgeReason>).transpose()?,
    })
}
