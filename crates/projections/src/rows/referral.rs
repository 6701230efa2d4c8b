//! `referrals` (one row per referral) and `referral_history` (one row per referral event).

use super::{ApplyError, EventAt, add_to_list, first};
use crate::sql::row;
use wasl_domain::catalogue::Reason;
use wasl_domain::pii::EncryptedPii;
use wasl_domain::referral::{ConsentBasis, OverdueKind, ReferralEvent, ReferralStatus};
use wasl_events::encode_sealed;

row!(
    /// A referral as the read model holds it. Times are Unix milliseconds; each `*_at` of a
    /// status is the first time the referral reached it.
    ReferralRow {
        /// Referral id.
        id: String,
        case_id: String,
        /// Referring organisation.
        from_org: String,
        /// Referring caseworker.
        from_user: String,
        /// Receiving organisation.
        to_org: String,
        /// Service asked for.
        service_id: String,
        /// Service category code.
        category: String,
        priority: String,
        /// Current status code.
        status: String,
        /// Client's sex code.
        sex: String,
        /// Client's age group code.
        age_group: String,
        /// Client's population group code.
        population_group: String,
        /// Client's preferred language.
        language: String,
        /// Client's governorate code.
        governorate: String,
        /// Client's district code.
        district: Option<String>,
        /// `consent` or `override:<code>`.
        consent_basis: String,
        /// Requested.
        requested_at: i64,
        /// Received.
        received_at: Option<i64>,
        /// Accepted.
        accepted_at: Option<i64>,
        /// Rejected.
        rejected_at: Option<i64>,
        /// In progress.
        in_progress_at: Option<i64>,
        /// On hold.
        on_hold_at: Option<i64>,
        /// Completed.
        completed_at: Option<i64>,
        /// Failed.
        failed_at: Option<i64>,
        /// Cancelled.
        cancelled_at: Option<i64>,
        /// Entered in error.
        entered_in_error_at: Option<i64>,
        /// Decline reason code.
        decline_code: Option<String>,
        /// Organisation suggested by a `redirected` decline.
        suggested_org: Option<String>,
        /// Failure reason code.
        failure_code: Option<String>,
        /// Cancellation reason code.
        cancel_code: Option<String>,
        /// Latest hold reason code.
        hold_code: Option<String>,
        /// Entered-in-error reason code.
        error_code: Option<String>,
        /// The referral this one replaces.
        redirected_from: Option<String>,
        /// 1 once follow-up was recorded (the loop is closed).
        followed_up: i64,
        /// When follow-up was recorded.
        followed_up_at: Option<i64>,
        /// Service received code, from follow-up.
        service_received: Option<String>,
        /// Satisfaction 1–5, from follow-up.
        satisfaction: Option<i64>,
        /// Deadlines missed (`,acknowledgement,decision,follow_up,` subset).
        overdue: String,
        /// Escalations made.
        escalated: String,
        /// Escalations acknowledged.
        acknowledged: String,
        /// 1 while a response deadline the receiving organisation missed still applies
        /// (acknowledgement while requested, decision while requested or received, stalled
        /// while accepted or on hold), else 0:
        /// what the partner inbox puts first and the worklist shows as overdue.
        response_overdue: i64,
        /// The acknowledgement deadline recorded as missed.
        acknowledgement_due_at: Option<i64>,
        /// The decision deadline recorded as missed.
        decision_due_at: Option<i64>,
        /// The follow-up deadline recorded as missed.
        follow_up_due_at: Option<i64>,
        /// The deadline to move an accepted or held referral on, recorded as missed.
        stalled_due_at: Option<i64>,
        /// When the latest escalation was made; set once the referral was escalated.
        escalated_at: Option<i64>,
        /// Escalations not yet acknowledged by a coordinator.
        open_escalations: i64,
        /// When a coordinator last acknowledged an escalation.
        acknowledged_at: Option<i64>,
        /// The code of the latest acknowledgement's note (`AcknowledgeCode`), if it had one.
        acknowledge_code: Option<String>,
        /// Notes for the receiving organisation, sealed (`wasl.v1.EncryptedPii` bytes).
        notes: Option<Vec<u8>>,
        /// Time of the last event.
        updated_at: i64,
        /// Number of events.
        version: i64,
        /// Stream sequence of the last event.
        position: i64,
    }
);

row!(
    /// One event of a referral, for its timeline.
    HistoryRow {
        /// Stream sequence of the event.
        seq: i64,
        referral_id: String,
        case_id: String,
        /// The referral's version after the event.
        version: i64,
        /// Event type name.
        event_type: String,
        /// When.
        at: i64,
        /// Who.
        actor_user: String,
        /// Their organisation.
        actor_org: String,
        /// Status before (none for the request).
        from_status: Option<String>,
        /// Status after.
        to_status: String,
        /// The event's reason code, if it has one.
        reason_code: Option<String>,
        /// The event's free text (reason, follow-up note or acknowledgement note), sealed.
        reason_text: Option<Vec<u8>>,
    }
);

fn sealed(text: Option<&EncryptedPii>) -> Option<Vec<u8>> {
    text.map(encode_sealed)
}

fn reason<C: Copy + std::fmt::Display>(reason: &Reason<C>) -> (Option<String>, Option<Vec<u8>>) {
    (Some(reason.code.to_string()), sealed(reason.text.as_ref()))
}

/// Applies one event of referral `id` to its row (`None` before the request) and returns the
/// timeline row. On error the row is unchanged.
pub(crate) fn apply(
    slot: &mut Option<ReferralRow>,
    id: &str,
    event: &ReferralEvent,
    at: &EventAt,
) -> Result<HistoryRow, ApplyError> {
    if let ReferralEvent::Requested(req) = event {
        if slot.is_some() {
            return Err(ApplyError::Exists("the referral"));
        }
        let row = ReferralRow {
            id: id.to_owned(),
            case_id: req.case_id.to_string(),
            from_org: req.from_org.to_string(),
            from_user: req.from_user.to_string(),
            to_org: req.to_org.to_string(),
            service_id: req.service_id.to_string(),
            category: req.category.code().to_owned(),
            priority: req.priority.code().to_owned(),
            status: ReferralStatus::Requested.code().to_owned(),
            sex: req.client.sex.code().to_owned(),
            age_group: req.client.age_group.code().to_owned(),
            population_group: req.client.population_group.code().to_owned(),
            language: req.client.language.as_str().to_owned(),
            governorate: req.client.location.governorate().code().to_owned(),
            district: req.client.location.district().map(|d| d.code().to_owned()),
            consent_basis: match &req.consent {
                ConsentBasis::Consent(_) => "consent".to_owned(),
                ConsentBasis::Override(r) => format!("override:{}", r.code),
            },
            requested_at: at.at,
            received_at: None,
            accepted_at: None,
            rejected_at: None,
            in_progress_at: None,
            on_hold_at: None,
            completed_at: None,
            failed_at: None,
            cancelled_at: None,
            entered_in_error_at: None,
            decline_code: None,
            suggested_org: None,
            failure_code: None,
            cancel_code: None,
            hold_code: None,
            error_code: None,
            redirected_from: req.redirected_from.map(|r| r.to_string()),
            followed_up: 0,
            followed_up_at: None,
            service_received: None,
            satisfaction: None,
            overdue: crate::sql::list([]),
            escalated: crate::sql::list([]),
            acknowledged: crate::sql::list([]),
            response_overdue: 0,
            acknowledgement_due_at: None,
            decision_due_at: None,
            follow_up_due_at: None,
            stalled_due_at: None,
            escalated_at: None,
            open_escalations: 0,
            acknowledged_at: None,
            acknowledge_code: None,
            notes: sealed(req.notes.as_ref()),
            updated_at: at.at,
            version: 1,
            position: at.seq,
        };
        let history = history(&row, at, None, None, None);
        *slot = Some(row);
        return Ok(history);
    }
    let row = slot.as_mut().ok_or(ApplyError::Missing("the referral"))?;
    let before = row.status.clone();
    let moved = |row: &mut ReferralRow, status: ReferralStatus| {
        row.status = status.code().to_owned();
        let stamp = match status {
            ReferralStatus::Requested => None,
            ReferralStatus::Received => Some(&mut row.received_at),
            ReferralStatus::Accepted => Some(&mut row.accepted_at),
            ReferralStatus::Rejected => Some(&mut row.rejected_at),
            ReferralStatus::InProgress => Some(&mut row.in_progress_at),
            ReferralStatus::OnHold => Some(&mut row.on_hold_at),
            ReferralStatus::Completed => Some(&mut row.completed_at),
            ReferralStatus::Failed => Some(&mut row.failed_at),
            ReferralStatus::Cancelled => Some(&mut row.cancelled_at),
            ReferralStatus::EnteredInError => Some(&mut row.entered_in_error_at),
        };
        if let Some(stamp) = stamp {
            first(stamp, at.at);
        }
    };
    let (code, text) = match event {
        ReferralEvent::Requested(_) => unreachable!("handled above"),
        ReferralEvent::Received => {
            moved(row, ReferralStatus::Received);
            (None, None)
        }
        ReferralEvent::Accepted => {
            moved(row, ReferralStatus::Accepted);
            (None, None)
        }
        ReferralEvent::Rejected(decline) => {
            moved(row, ReferralStatus::Rejected);
            row.decline_code = Some(decline.reason.code.to_string());
            row.suggested_org = decline.suggested_org.map(|o| o.to_string());
            reason(&decline.reason)
        }
        ReferralEvent::Started | ReferralEvent::Resumed => {
            moved(row, ReferralStatus::InProgress);
            (None, None)
        }
        ReferralEvent::PutOnHold(r) => {
            moved(row, ReferralStatus::OnHold);
            row.hold_code = Some(r.code.to_string());
            reason(r)
        }
        ReferralEvent::Completed => {
            moved(row, ReferralStatus::Completed);
            (None, None)
        }
        ReferralEvent::Failed(r) => {
            moved(row, ReferralStatus::Failed);
            row.failure_code = Some(r.code.to_string());
            reason(r)
        }
        ReferralEvent::Cancelled(r) => {
            moved(row, ReferralStatus::Cancelled);
            row.cancel_code = Some(r.code.to_string());
            reason(r)
        }
        ReferralEvent::EnteredInError(r) => {
            moved(row, ReferralStatus::EnteredInError);
            row.error_code = Some(r.code.to_string());
            reason(r)
        }
        ReferralEvent::FollowUpRecorded(f) => {
            row.followed_up = 1;
            first(&mut row.followed_up_at, at.at);
            row.service_received = Some(f.service_received.code().to_owned());
            row.satisfaction = f.satisfaction.map(|s| i64::from(s.score()));
            (Some(f.service_received.code().to_owned()), sealed(f.note.as_ref()))
        }
        ReferralEvent::ResponseOverdue { kind, due_at } => {
            add_to_list(&mut row.overdue, kind.code());
            first(due_slot(row, *kind), due_at.unix_millis());
            (Some(kind.code().to_owned()), None)
        }
        ReferralEvent::FollowUpOverdue { due_at } => {
            let kind = OverdueKind::FollowUp;
            add_to_list(&mut row.overdue, kind.code());
            first(due_slot(row, kind), due_at.unix_millis());
            (Some(kind.code().to_owned()), None)
        }
        ReferralEvent::Escalated { kind } => {
            add_to_list(&mut row.escalated, kind.code());
            row.escalated_at = Some(at.at);
            (Some(kind.code().to_owned()), None)
        }
        ReferralEvent::EscalationAcknowledged { kind, note } => {
            add_to_list(&mut row.acknowledged, kind.code());
            row.acknowledged_at = Some(at.at);
            row.acknowledge_code = note.as_ref().map(|n| n.code.code().to_owned());
            (
                Some(kind.code().to_owned()),
                note.as_ref().and_then(|n| sealed(n.text.as_ref())),
            )
        }
    };
    row.response_overdue = i64::from(response_overdue(row));
    row.open_escalations = crate::sql::items(&row.escalated)
        .filter(|kind| !crate::sql::items(&row.acknowledged).any(|k| k == *kind))
        .count() as i64;
    row.updated_at = at.at;
    row.version += 1;
    row.position = at.seq;
    Ok(history(row, at, Some(before), code, text))
}

/// The column that keeps the missed deadline of `kind`.
fn due_slot(row: &mut ReferralRow, kind: OverdueKind) -> &mut Option<i64> {
    match kind {
        OverdueKind::Acknowledgement => &mut row.acknowledgement_due_at,
        OverdueKind::Decision => &mut row.decision_due_at,
        OverdueKind::FollowUp => &mut row.follow_up_due_at,
        OverdueKind::Stalled => &mut row.stalled_due_at,
    }
}

/// Whether a response deadline the receiving organisation missed still applies: the domain's
/// rule (`ReferralState::overdue_still_applies`) for acknowledgement and decision.
fn response_overdue(row: &ReferralRow) -> bool {
    let recorded = |kind: OverdueKind| crate::sql::items(&row.overdue).any(|k| k == kind.code());
    match ReferralStatus::parse(&row.status) {
        Ok(ReferralStatus::Requested) => recorded(OverdueKind::Acknowledgement) || recorded(OverdueKind::Decision),
        Ok(ReferralStatus::Received) => recorded(OverdueKind::Decision),
        Ok(ReferralStatus::Accepted | ReferralStatus::OnHold) => recorded(OverdueKind::Stalled),
        _ => false,
    }
}

fn history(
    row: &ReferralRow,
    at: &EventAt,
    from_status: Option<String>,
    reason_code: Option<String>,
    reason_text: Option<Vec<u8>>,
) -> HistoryRow {
    HistoryRow {
        seq: at.seq,
        referral_id: row.id.clone(),
        case_id: row.case_id.clone(),
        version: row.version,
        event_type: at.event_type.to_owned(),
        at: at.at,
        actor_user: at.actor_user.clone(),
        actor_org: at.actor_org.clone(),
        from_status,
        to_status: row.status.clone(),
        reason_code,
        reason_text,
    }
}
