//! Referrals: a filtered list, one referral and its timeline, the partner inbox (what was sent
//! to an organisation), the caseworker worklist (own referrals waiting for the caseworker) and
//! the coordinators' escalation list.

use super::page::{Cursor, Key, KeyKind, Keyset, Page, PageRequest, Select, qualified};
use crate::db::ReadModels;
use crate::error::ProjectionError;
use crate::rows::referral::{HistoryRow, ReferralRow};
use sqlx::Row;
use wasl_domain::catalogue::{DeclineCode, Priority, ServiceCategory};
use wasl_domain::geo::Governorate;
use wasl_domain::ids::{CaseId, OrgId, ReferralId, UserId};
use wasl_domain::referral::ReferralStatus;

/// The statuses of a referral still waiting for the receiving organisation or being served:
/// what the inbox shows when no status is asked for.
pub const OPEN_STATUSES: &[ReferralStatus] = &[
    ReferralStatus::Requested,
    ReferralStatus::Received,
    ReferralStatus::Accepted,
    ReferralStatus::InProgress,
    ReferralStatus::OnHold,
];

/// Which referrals to list; every field left empty matches any referral.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferralFilter {
    /// Of this case.
    pub case_id: Option<CaseId>,
    /// Made by this organisation.
    pub from_org: Option<OrgId>,
    /// Addressed to this organisation.
    pub to_org: Option<OrgId>,
    /// Made by this caseworker.
    pub from_user: Option<UserId>,
    /// Only the referrals of cases this user needs to know (see
    /// [`CaseFilter::assigned_to`](super::CaseFilter::assigned_to)).
    pub case_assigned_to: Option<UserId>,
    /// In one of these statuses (empty: any).
    pub statuses: Vec<ReferralStatus>,
    /// For a service of this category.
    pub category: Option<ServiceCategory>,
    /// With this priority.
    pub priority: Option<Priority>,
}

/// Why a referral is on its caseworker's worklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkNeed {
    /// Completed or failed, and follow-up with the client is not recorded yet.
    FollowUpDue,
    /// Declined with a code other than `redirected` (or `redirected` without a suggested
    /// organisation), and the client was not referred again for that category since.
    Declined,
    /// Declined as `redirected` with a suggested organisation, and the client was not referred
    /// again (to it or anyone else for that category): a follow-on referral the caseworker may
    /// make. Nothing is sent without them.
    SuggestedReferral,
    /// Still waiting for the receiving organisation after a deadline that still applies passed:
    /// acknowledgement or decision while requested, decision while received (the domain's
    /// rule for which overdue still applies).
    Overdue,
}

impl WorkNeed {
    /// Every need, in declaration order.
    pub const ALL: &'static [Self] = &[
        Self::FollowUpDue,
        Self::Declined,
        Self::SuggestedReferral,
        Self::Overdue,
    ];

    /// The code the API shows.
    pub const fn code(self) -> &'static str {
        match self {
            Self::FollowUpDue => "follow_up_due",
            Self::Declined => "declined",
            Self::SuggestedReferral => "suggested_referral",
            Self::Overdue => "overdue",
        }
    }
}

/// Which escalations to list; every field left empty matches any escalated referral.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EscalationFilter {
    /// The client's governorate.
    pub governorate: Option<Governorate>,
    /// The service category.
    pub category: Option<ServiceCategory>,
    /// Addressed to this (receiving) organisation.
    pub to_org: Option<OrgId>,
    /// `Some(true)`: every escalation of the referral is acknowledged; `Some(false)`: at least
    /// one is not; `None`: both.
    pub acknowledged: Option<bool>,
}

/// A referral on a caseworker's worklist, with what it needs.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct WorkItem {
    pub referral: ReferralRow,
    /// What it needs.
    pub need: WorkNeed,
}

const LIST: Keyset = Keyset {
    scope: "referrals",
    from: "referrals",
    group: None,
    key: "updated_at",
    kind: KeyKind::Int,
    id: "id",
    descending: true,
};

// Overdue first (response_overdue = 1), then the newest request.
const INBOX: Keyset = Keyset {
    scope: "inbox",
    from: "referrals",
    group: Some("response_overdue"),
    key: "requested_at",
    kind: KeyKind::Int,
    id: "id",
    descending: true,
};

const WORKLIST: Keyset = Keyset {
    scope: "worklist",
    from: "referrals r",
    group: None,
    key: "r.updated_at",
    kind: KeyKind::Int,
    id: "r.id",
    descending: true,
};

const ESCALATIONS: Keyset = Keyset {
    scope: "escalations",
    from: "referrals",
    group: None,
    key: "escalated_at",
    kind: KeyKind::Int,
    id: "id",
    descending: true,
};

fn codes(statuses: &[ReferralStatus]) -> Vec<&'static str> {
    statuses.iter().map(|s| s.code()).collect()
}

fn updated_cursor(row: &ReferralRow) -> Cursor {
    Cursor::at(Key::Int(row.updated_at), row.id.clone())
}

fn unknown_status() -> ProjectionError {
    ProjectionError::Corrupt {
        table: "referrals",
        reason: "the status column holds an unknown code".to_owned(),
    }
}

impl ReadModels {
    /// The referrals `filter` matches, most recently changed first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn referrals(
        &self,
        filter: &ReferralFilter,
        page: &PageRequest,
    ) -> Result<Page<ReferralRow>, ProjectionError> {
        let mut select = Select::default();
        select.eq("case_id", filter.case_id.map(|c| c.to_string()));
        select.eq("from_org", filter.from_org.map(|o| o.to_string()));
        select.eq("to_org", filter.to_org.map(|o| o.to_string()));
        select.eq("from_user", filter.from_user.map(|u| u.to_string()));
        if let Some(user) = filter.case_assigned_to {
            let assigned = super::cases::assigned_to(&mut select, user, "c.");
            select.filter(format!("case_id IN (SELECT c.id FROM cases c WHERE {assigned})"));
        }
        select.one_of("status", &codes(&filter.statuses));
        select.eq("category", filter.category.map(|c| c.code().to_owned()));
        select.eq("priority", filter.priority.map(|p| p.code().to_owned()));
        select
            .fetch_page(
                self,
                &ReferralRow::COLUMNS.join(", "),
                LIST,
                page,
                ReferralRow::from_row,
                updated_cursor,
            )
            .await
    }

    /// One referral, if the read model holds it.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn referral(&self, id: ReferralId) -> Result<Option<ReferralRow>, ProjectionError> {
        let mut select = Select::default();
        select.eq("id", Some(id.to_string()));
        let rows = select
            .fetch_all(
                self,
                &ReferralRow::COLUMNS.join(", "),
                "referrals",
                "",
                ReferralRow::from_row,
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    /// The timeline of a referral: one row per event, in log order. Empty for an unknown id.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn history(&self, id: ReferralId) -> Result<Vec<HistoryRow>, ProjectionError> {
        let mut select = Select::default();
        select.eq("referral_id", Some(id.to_string()));
        select
            .fetch_all(
                self,
                &HistoryRow::COLUMNS.join(", "),
                "referral_history",
                "ORDER BY seq",
                HistoryRow::from_row,
            )
            .await
    }

    /// The partner inbox: referrals addressed to `org` in one of `statuses` (empty: the
    /// [`OPEN_STATUSES`]). Those whose response deadline passed and still applies
    /// ([`ReferralRow::response_overdue`]) come first, then the rest; each part newest request
    /// first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn inbox(
        &self,
        org: OrgId,
        statuses: &[ReferralStatus],
        page: &PageRequest,
    ) -> Result<Page<ReferralRow>, ProjectionError> {
        let statuses = if statuses.is_empty() { OPEN_STATUSES } else { statuses };
        let mut select = Select::default();
        select.eq("to_org", Some(org.to_string()));
        select.one_of("status", &codes(statuses));
        // Says the same as the status list, in the terms of the inbox's index (to_org, is_open,
        // requested_at, id): without it the walk in request order reads every closed referral.
        if statuses.iter().all(|s| OPEN_STATUSES.contains(s)) {
            select.filter("is_open = 1".to_owned());
        } else if statuses.iter().all(|s| !OPEN_STATUSES.contains(s)) {
            select.filter("is_open = 0".to_owned());
        }
        select
            .fetch_page(
                self,
                &ReferralRow::COLUMNS.join(", "),
                INBOX,
                page,
                ReferralRow::from_row,
                |row| Cursor {
                    group: Some(row.response_overdue),
                    key: Key::Int(row.requested_at),
                    id: row.id.clone(),
                },
            )
            .await
    }

    /// How many referrals addressed to `org` are in each status, for the inbox's tabs: every
    /// status in declaration order, zeros included.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn inbox_counts(&self, org: OrgId) -> Result<Vec<(ReferralStatus, u64)>, ProjectionError> {
        let mut select = Select::default();
        select.eq("to_org", Some(org.to_string()));
        let counted = select
            .fetch_all(self, "status, COUNT(*) AS n", "referrals", "GROUP BY status", |row| {
                Ok((row.try_get::<String, _>("status")?, row.try_get::<i64, _>("n")?))
            })
            .await?;
        let mut counts: Vec<(ReferralStatus, u64)> = ReferralStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for (code, n) in counted {
            let status = ReferralStatus::parse(&code).map_err(|_| unknown_status())?;
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(counts)
    }

    /// The worklist of caseworker `user`: their own referrals that wait for them (see
    /// [`WorkNeed`]), newest first by the referral's latest event. With `need_to_know` (a
    /// caseworker who is not a supervisor), only those whose case they still need to know:
    /// responsible for it, or it is shared with them (see
    /// [`CaseFilter::assigned_to`](super::CaseFilter::assigned_to)); a case assigned to someone
    /// else takes its referrals off their list.
    ///
    /// A decline stays until the client is referred again for the same category (a referral of
    /// the same case requested after the decline, to any organisation) or a follow-on referral
    /// names it as `redirected_from`.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn worklist(
        &self,
        user: UserId,
        need_to_know: bool,
        page: &PageRequest,
    ) -> Result<Page<WorkItem>, ProjectionError> {
        let mut select = Select::default();
        select.eq("r.from_user", Some(user.to_string()));
        if need_to_know {
            let assigned = super::cases::assigned_to(&mut select, user, "c.");
            select.filter(format!("r.case_id IN (SELECT c.id FROM cases c WHERE {assigned})"));
        }
        let completed = select.bind(ReferralStatus::Completed.code().to_owned());
        let failed = select.bind(ReferralStatus::Failed.code().to_owned());
        let rejected = select.bind(ReferralStatus::Rejected.code().to_owned());
        select.filter(format!(
            "((r.status IN ({completed}, {failed}) AND r.followed_up = 0) \
             OR r.response_overdue = 1 \
             OR (r.status = {rejected} \
                 AND NOT EXISTS (SELECT 1 FROM referrals f WHERE f.redirected_from = r.id) \
                 AND NOT EXISTS (SELECT 1 FROM referrals f WHERE f.case_id = r.case_id \
                     AND f.category = r.category AND f.requested_at > r.rejected_at)))"
        ));
        select
            .fetch_page(
                self,
                &qualified("r", ReferralRow::COLUMNS),
                WORKLIST,
                page,
                |row| {
                    let referral = ReferralRow::from_row(row)?;
                    let need = match ReferralStatus::parse(&referral.status) {
                        Ok(ReferralStatus::Completed | ReferralStatus::Failed) => WorkNeed::FollowUpDue,
                        Ok(ReferralStatus::Rejected)
                            if referral.decline_code.as_deref() == Some(DeclineCode::Redirected.code())
                                && referral.suggested_org.is_some() =>
                        {
                            WorkNeed::SuggestedReferral
                        }
                        Ok(ReferralStatus::Rejected) => WorkNeed::Declined,
                        // The WHERE clause leaves only a response overdue that still applies.
                        _ => WorkNeed::Overdue,
                    };
                    Ok(WorkItem { referral, need })
                },
                |item| updated_cursor(&item.referral),
            )
            .await
    }

    /// The coordinators' escalation list: every referral that was escalated, open and
    /// acknowledged alike unless `filter` says, newest escalation first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn escalations(
        &self,
        filter: &EscalationFilter,
        page: &PageRequest,
    ) -> Result<Page<ReferralRow>, ProjectionError> {
        let mut select = Select::default();
        select.filter("escalated_at IS NOT NULL".to_owned());
        select.eq("governorate", filter.governorate.map(|g| g.code().to_owned()));
        select.eq("category", filter.category.map(|c| c.code().to_owned()));
        select.eq("to_org", filter.to_org.map(|o| o.to_string()));
        match filter.acknowledged {
            Some(true) => select.filter("open_escalations = 0".to_owned()),
            Some(false) => select.filter("open_escalations > 0".to_owned()),
            None => {}
        }
        select
            .fetch_page(
                self,
                &ReferralRow::COLUMNS.join(", "),
                ESCALATIONS,
                page,
                ReferralRow::from_row,
                |row| Cursor::at(Key::Int(row.escalated_at.unwrap_or_default()), row.id.clone()),
            )
            .await
    }
}
