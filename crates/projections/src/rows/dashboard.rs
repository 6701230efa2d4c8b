//! `dashboard_referrals`: one row per referral holding only what the coordinators' dashboards
//! and indicator report count — codes, reporting periods and the times it moved. No case id, no
//! caseworker, no sealed value: the aggregate queries could not reach a person through it even
//! by mistake, and erasing a case changes nothing here (as in `referrals`, the codes stay).

use super::{ApplyError, EventAt, first};
use crate::sql::row;
use wasl_domain::gcm::objectives_or_default;
use wasl_domain::referral::{OverdueKind, ReferralEvent, ReferralStatus};
use wasl_domain::time::{Date, Timestamp};

row!(
    /// A referral as the dashboards count it. Times are Unix milliseconds; each is the first
    /// time it happened.
    DashboardRow {
        /// Referral id: the key the projector updates by. Never selected by a dashboard query.
        id: String,
        /// The Monday (Iraq time) of the week it was requested, `YYYY-MM-DD`.
        week: String,
        /// The quarter (Iraq time) it was requested, `YYYY-Qn`.
        quarter: String,
        /// Client's governorate code.
        governorate: String,
        /// Client's district code; empty when not given.
        district: String,
        /// Service category code.
        category: String,
        /// Service id.
        service_id: String,
        /// Receiving organisation.
        to_org: String,
        /// Referring organisation.
        from_org: String,
        priority: String,
        /// Current status code.
        status: String,
        /// Client's population group code.
        population_group: String,
        /// Client's sex code.
        sex: String,
        /// Client's age group code.
        age_group: String,
        /// GCM objectives, as a list column (`,7,15,`).
        objectives: String,
        requested_at: i64,
        received_at: Option<i64>,
        /// Decided: accepted or rejected, whichever came first.
        answered_at: Option<i64>,
        accepted_at: Option<i64>,
        rejected_at: Option<i64>,
        /// Service started, or completed without a recorded start.
        served_at: Option<i64>,
        completed_at: Option<i64>,
        failed_at: Option<i64>,
        cancelled_at: Option<i64>,
        /// Decline reason code.
        decline_code: Option<String>,
        /// When the follow-up service recorded the decision deadline as missed.
        decision_overdue_at: Option<i64>,
        /// Follow-up recorded.
        followed_up_at: Option<i64>,
        /// 1 when the follow-up reached the client, 0 when it did not; NULL before follow-up.
        client_reached: Option<i64>,
        /// Deadlines missed that still apply, as a list column (`,decision,stalled,`).
        overdue_now: String,
        /// Escalations not yet acknowledged by a coordinator.
        open_escalations: i64,
        /// Deadlines recorded as missed, as a list column.
        overdue_recorded: String,
        /// Escalations made, as a list column.
        escalated: String,
        /// Escalations acknowledged, as a list column.
        acknowledged: String,
        /// 1 once entered in error: such referrals count nowhere.
        in_error: i64,
    }
);

/// Applies one event of referral `id` to its row (`None` before the request). On error the row
/// is unchanged.
pub(crate) fn apply(
    slot: &mut Option<DashboardRow>,
    id: &str,
    event: &ReferralEvent,
    at: &EventAt,
) -> Result<(), ApplyError> {
    if let ReferralEvent::Requested(req) = event {
        if slot.is_some() {
            return Err(ApplyError::Exists("the referral"));
        }
        let day = Date::of(Timestamp::from_unix_millis(at.at));
        *slot = Some(DashboardRow {
            id: id.to_owned(),
            week: day.week_start().to_string(),
            quarter: day.quarter().to_string(),
            governorate: req.client.location.governorate().code().to_owned(),
            district: req
                .client
                .location
                .district()
                .map(|d| d.code().to_owned())
                .unwrap_or_default(),
            category: req.category.code().to_owned(),
            service_id: req.service_id.to_string(),
            to_org: req.to_org.to_string(),
            from_org: req.from_org.to_string(),
            priority: req.priority.code().to_owned(),
            status: ReferralStatus::Requested.code().to_owned(),
            population_group: req.client.population_group.code().to_owned(),
            sex: req.client.sex.code().to_owned(),
            age_group: req.client.age_group.code().to_owned(),
            objectives: crate::sql::list(
                objectives_or_default(&req.gcm_objectives, req.category)
                    .iter()
                    .map(|o| o.to_string())
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str),
            ),
            requested_at: at.at,
            received_at: None,
            answered_at: None,
            accepted_at: None,
            rejected_at: None,
            served_at: None,
            completed_at: None,
            failed_at: None,
            cancelled_at: None,
            decline_code: None,
            decision_overdue_at: None,
            followed_up_at: None,
            client_reached: None,
            overdue_now: crate::sql::list([]),
            open_escalations: 0,
            overdue_recorded: crate::sql::list([]),
            escalated: crate::sql::list([]),
            acknowledged: crate::sql::list([]),
            in_error: 0,
        });
        return Ok(());
    }
    let row = slot.as_mut().ok_or(ApplyError::Missing("the referral"))?;
    let status = |row: &mut DashboardRow, status: ReferralStatus| row.status = status.code().to_owned();
    match event {
        ReferralEvent::Requested(_) => unreachable!("handled above"),
        ReferralEvent::Received => {
            status(row, ReferralStatus::Received);
            first(&mut row.received_at, at.at);
        }
        ReferralEvent::Accepted => {
            status(row, ReferralStatus::Accepted);
            first(&mut row.accepted_at, at.at);
            first(&mut row.answered_at, at.at);
        }
        ReferralEvent::Rejected(decline) => {
            status(row, ReferralStatus::Rejected);
            first(&mut row.rejected_at, at.at);
            first(&mut row.answered_at, at.at);
            row.decline_code = Some(decline.reason.code.to_string());
        }
        ReferralEvent::Started => {
            status(row, ReferralStatus::InProgress);
            first(&mut row.served_at, at.at);
        }
        ReferralEvent::Resumed => status(row, ReferralStatus::InProgress),
        ReferralEvent::PutOnHold(_) => status(row, ReferralStatus::OnHold),
        ReferralEvent::Completed => {
            status(row, ReferralStatus::Completed);
            first(&mut row.completed_at, at.at);
            first(&mut row.served_at, at.at);
        }
        ReferralEvent::Failed(_) => {
            status(row, ReferralStatus::Failed);
            first(&mut row.failed_at, at.at);
        }
        ReferralEvent::Cancelled(_) => {
            status(row, ReferralStatus::Cancelled);
            first(&mut row.cancelled_at, at.at);
        }
        ReferralEvent::EnteredInError(_) => {
            status(row, ReferralStatus::EnteredInError);
            row.in_error = 1;
        }
        ReferralEvent::FollowUpRecorded(f) => {
            first(&mut row.followed_up_at, at.at);
            if row.client_reached.is_none() {
                row.client_reached = Some(i64::from(f.client_reached));
            }
        }
        ReferralEvent::ResponseOverdue { kind, .. } => {
            if *kind == OverdueKind::Decision {
                first(&mut row.decision_overdue_at, at.at);
            }
            super::add_to_list(&mut row.overdue_recorded, kind.code());
        }
        ReferralEvent::FollowUpOverdue { .. } => {
            super::add_to_list(&mut row.overdue_recorded, OverdueKind::FollowUp.code());
        }
        ReferralEvent::Escalated { kind } => super::add_to_list(&mut row.escalated, kind.code()),
        ReferralEvent::EscalationAcknowledged { kind, .. } => super::add_to_list(&mut row.acknowledged, kind.code()),
    }
    row.overdue_now = crate::sql::list(
        OverdueKind::ALL
            .iter()
            .filter(|kind| crate::sql::items(&row.overdue_recorded).any(|k| k == kind.code()))
            .filter(|kind| still_applies(row, **kind))
            .map(|kind| kind.code()),
    );
    row.open_escalations = crate::sql::items(&row.escalated)
        .filter(|kind| !crate::sql::items(&row.acknowledged).any(|k| k == *kind))
        .count() as i64;
    Ok(())
}

/// Whether a missed deadline of `kind` still applies (the domain's rule,
/// `ReferralState::overdue_still_applies`).
fn still_applies(row: &DashboardRow, kind: OverdueKind) -> bool {
    let status = ReferralStatus::parse(&row.status);
    match kind {
        OverdueKind::Acknowledgement => status == Ok(ReferralStatus::Requested),
        OverdueKind::Decision => matches!(status, Ok(ReferralStatus::Requested | ReferralStatus::Received)),
        OverdueKind::FollowUp => {
            matches!(status, Ok(ReferralStatus::Completed | ReferralStatus::Failed)) && row.followed_up_at.is_none()
        }
        OverdueKind::Stalled => matches!(status, Ok(ReferralStatus::Accepted | ReferralStatus::OnHold)),
    }
}
