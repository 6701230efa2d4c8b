//! The coordinators' aggregates over `dashboard_referrals`: counts by one or two dimensions,
//! the headline numbers, durations, partner responsiveness and the GCM indicator counts. These
//! are raw numbers for the `wasl-dashboard` crate, which suppresses small cells before anything
//! leaves the server; nothing here returns a referral id or any per-referral row.
//!
//! Referrals entered in error count nowhere.

use super::page::Select;
use crate::db::ReadModels;
use crate::error::ProjectionError;
use sqlx::Row;
use wasl_domain::catalogue::{DeclineCode, Priority, ServiceCategory};
use wasl_domain::client::{AgeGroup, PopulationGroup, Sex};
use wasl_domain::gcm::GcmObjective;
use wasl_domain::geo::{District, Governorate};
use wasl_domain::ids::{OrgId, ServiceId};
use wasl_domain::time::Timestamp;

const TABLE: &str = "dashboard_referrals";

/// Which referrals count; every field left empty matches any. The period is of the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct DashboardFilter {
    /// Requested at or after.
    pub from: Option<Timestamp>,
    /// Requested before.
    pub until: Option<Timestamp>,
    pub governorate: Option<Governorate>,
    pub district: Option<District>,
    pub category: Option<ServiceCategory>,
    pub service: Option<ServiceId>,
    /// Addressed to this organisation.
    pub receiving_org: Option<OrgId>,
    /// Made by this organisation.
    pub referring_org: Option<OrgId>,
    /// Made by or addressed to this organisation.
    pub organisation: Option<OrgId>,
    pub population_group: Option<PopulationGroup>,
    pub sex: Option<Sex>,
    pub age_group: Option<AgeGroup>,
    pub priority: Option<Priority>,
    /// Serving this GCM objective.
    pub objective: Option<GcmObjective>,
    /// Declined with this reason.
    pub decline_reason: Option<DeclineCode>,
}

impl DashboardFilter {
    fn select(&self) -> Select {
        let mut select = Select::default();
        select.filter("in_error = 0".to_owned());
        if let Some(from) = self.from {
            let p = select.bind(from.unix_millis());
            select.filter(format!("requested_at >= {p}"));
        }
        if let Some(until) = self.until {
            let p = select.bind(until.unix_millis());
            select.filter(format!("requested_at < {p}"));
        }
        select.eq("governorate", self.governorate.map(|g| g.code().to_owned()));
        select.eq("district", self.district.map(|d| d.code().to_owned()));
        select.eq("category", self.category.map(|c| c.code().to_owned()));
        select.eq("service_id", self.service.map(|s| s.to_string()));
        select.eq("to_org", self.receiving_org.map(|o| o.to_string()));
        select.eq("from_org", self.referring_org.map(|o| o.to_string()));
        if let Some(org) = self.organisation {
            let p = select.bind(org.to_string());
            select.filter(format!("(to_org = {p} OR from_org = {p})"));
        }
        select.eq("population_group", self.population_group.map(|g| g.code().to_owned()));
        select.eq("sex", self.sex.map(|s| s.code().to_owned()));
        select.eq("age_group", self.age_group.map(|a| a.code().to_owned()));
        select.eq("priority", self.priority.map(|p| p.code().to_owned()));
        if let Some(objective) = self.objective {
            select.list_holds("objectives", objective.to_string());
        }
        select.eq("decline_code", self.decline_reason.map(|d| d.code().to_owned()));
        select
    }
}

/// What a table is broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the codes say what they are
pub enum Dimension {
    Week,
    Quarter,
    Governorate,
    District,
    Category,
    Service,
    ReceivingOrg,
    ReferringOrg,
    Priority,
    Status,
    PopulationGroup,
    Sex,
    AgeGroup,
    DeclineReason,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: &'static [Self] = &[
        Self::Week,
        Self::Quarter,
        Self::Governorate,
        Self::District,
        Self::Category,
        Self::Service,
        Self::ReceivingOrg,
        Self::ReferringOrg,
        Self::Priority,
        Self::Status,
        Self::PopulationGroup,
        Self::Sex,
        Self::AgeGroup,
        Self::DeclineReason,
    ];

    /// Its code, as the API takes it.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Week => "week",
            Self::Quarter => "quarter",
            Self::Governorate => "governorate",
            Self::District => "district",
            Self::Category => "category",
            Self::Service => "service",
            Self::ReceivingOrg => "receiving_org",
            Self::ReferringOrg => "referring_org",
            Self::Priority => "priority",
            Self::Status => "status",
            Self::PopulationGroup => "population_group",
            Self::Sex => "sex",
            Self::AgeGroup => "age_group",
            Self::DeclineReason => "decline_reason",
        }
    }

    /// Parses a code.
    pub fn parse(code: &str) -> Result<Self, wasl_domain::ValidationError> {
        Self::ALL
            .iter()
            .copied()
            .find(|d| d.code() == code)
            .ok_or_else(|| wasl_domain::ValidationError::new("dimension", "is not a known dimension"))
    }

    /// The column (an empty string stands for "not given": a district or a decline reason).
    const fn column(self) -> &'static str {
        match self {
            Self::Week => "week",
            Self::Quarter => "quarter",
            Self::Governorate => "governorate",
            Self::District => "district",
            Self::Category => "category",
            Self::Service => "service_id",
            Self::ReceivingOrg => "to_org",
            Self::ReferringOrg => "from_org",
            Self::Priority => "priority",
            Self::Status => "status",
            Self::PopulationGroup => "population_group",
            Self::Sex => "sex",
            Self::AgeGroup => "age_group",
            Self::DeclineReason => "COALESCE(decline_code, '')",
        }
    }
}

/// Which referrals a table counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    /// Every referral made.
    Made,
    /// Acknowledged by the receiving organisation.
    Received,
    /// Accepted.
    Accepted,
    /// Declined.
    Declined,
    /// Completed.
    Completed,
    /// Failed.
    Failed,
    /// Cancelled.
    Cancelled,
    /// Still waiting for or being served by the receiving organisation.
    Open,
    /// Declined for want of capacity, because the service is not offered or the client is not
    /// eligible: the service gaps.
    ServiceGap,
    /// Declined for want of capacity or because the service is not offered: unmet need.
    UnmetNeed,
}

impl Measure {
    /// Every measure.
    pub const ALL: &'static [Self] = &[
        Self::Made,
        Self::Received,
        Self::Accepted,
        Self::Declined,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::Open,
        Self::ServiceGap,
        Self::UnmetNeed,
    ];

    /// Its code, as the API takes it.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Made => "made",
            Self::Received => "received",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Open => "open",
            Self::ServiceGap => "service_gap",
            Self::UnmetNeed => "unmet_need",
        }
    }

    /// Parses a code.
    pub fn parse(code: &str) -> Result<Self, wasl_domain::ValidationError> {
        Self::ALL
            .iter()
            .copied()
            .find(|m| m.code() == code)
            .ok_or_else(|| wasl_domain::ValidationError::new("measure", "is not a known measure"))
    }

    /// The condition a referral meets to count.
    const fn condition(self) -> &'static str {
        match self {
            Self::Made => "1 = 1",
            Self::Received => "received_at IS NOT NULL",
            Self::Accepted => "accepted_at IS NOT NULL",
            Self::Declined => "rejected_at IS NOT NULL",
            Self::Completed => "completed_at IS NOT NULL",
            Self::Failed => "failed_at IS NOT NULL",
            Self::Cancelled => "cancelled_at IS NOT NULL",
            Self::Open => OPEN,
            Self::ServiceGap => "decline_code IN ('no_capacity', 'service_not_offered', 'not_eligible')",
            Self::UnmetNeed => UNMET,
        }
    }
}

const OPEN: &str = "status IN ('requested', 'received', 'accepted', 'in_progress', 'on_hold')";
const UNMET: &str = "decline_code IN ('no_capacity', 'service_not_offered')";

/// One count of a breakdown: the row's and the column's value (the column's is empty for a
/// one-way breakdown) and how many referrals.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Count {
    pub row: String,
    pub column: String,
    pub count: u64,
}

/// The headline numbers of the dashboard: counts of the referrals the filter matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Headline {
    pub made: u64,
    pub received: u64,
    /// Accepted or declined.
    pub answered: u64,
    /// Answered before the follow-up service recorded the decision deadline as missed.
    pub answered_in_time: u64,
    pub accepted: u64,
    pub declined: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Follow-up recorded.
    pub followed_up: u64,
    /// Follow-up reached the client.
    pub reached: u64,
    pub open: u64,
    /// Referrals with a missed deadline that still applies, per kind.
    pub overdue_acknowledgement: u64,
    pub overdue_decision: u64,
    pub overdue_stalled: u64,
    pub overdue_follow_up: u64,
    /// Referrals with an escalation no coordinator has acknowledged.
    pub open_escalations: u64,
}

/// A span of a referral's life whose length the dashboards report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    /// Request to acknowledgement.
    ToReceive,
    /// Request to acceptance or decline.
    ToAnswer,
    /// Request to the service starting (or completing without a recorded start).
    ToService,
    /// Request to completion.
    ToComplete,
}

impl Span {
    /// Every span.
    pub const ALL: &'static [Self] = &[Self::ToReceive, Self::ToAnswer, Self::ToService, Self::ToComplete];

    /// Its code.
    pub const fn code(self) -> &'static str {
        match self {
            Self::ToReceive => "to_receive",
            Self::ToAnswer => "to_answer",
            Self::ToService => "to_service",
            Self::ToComplete => "to_complete",
        }
    }

    const fn end(self) -> &'static str {
        match self {
            Self::ToReceive => "received_at",
            Self::ToAnswer => "answered_at",
            Self::ToService => "served_at",
            Self::ToComplete => "completed_at",
        }
    }
}

/// A receiving organisation's answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Responsiveness {
    pub org: String,
    /// Referrals addressed to it.
    pub addressed: u64,
    /// Accepted or declined.
    pub answered: u64,
    /// Answered before the decision deadline was recorded as missed.
    pub answered_in_time: u64,
    /// Request-to-answer times (ms), ascending.
    pub answer_millis: Vec<i64>,
}

/// The indicator counts of one GCM objective in one governorate and quarter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct IndicatorCounts {
    pub objective: GcmObjective,
    pub governorate: String,
    pub quarter: String,
    pub made: u64,
    pub accepted: u64,
    pub completed: u64,
    /// Declined for want of capacity or because the service is not offered.
    pub unmet_need: u64,
    /// Request-to-service times (ms), ascending.
    pub service_millis: Vec<i64>,
}

fn count(row: &sqlx::any::AnyRow, column: &str) -> Result<u64, sqlx::Error> {
    // SUM over no rows is NULL.
    Ok(row.try_get::<Option<i64>, _>(column)?.unwrap_or(0).max(0) as u64)
}

fn sum(condition: &str, name: &str) -> String {
    format!("SUM(CASE WHEN {condition} THEN 1 ELSE 0 END) AS {name}")
}

impl ReadModels {
    /// Counts of `measure` by `rows` (and `columns`, when given), for the referrals `filter`
    /// matches. Only combinations with at least one referral are returned.
    pub async fn dashboard_counts(
        &self,
        filter: &DashboardFilter,
        measure: Measure,
        rows: Dimension,
        columns: Option<Dimension>,
    ) -> Result<Vec<Count>, ProjectionError> {
        let mut select = filter.select();
        select.filter(measure.condition().to_owned());
        let (r, c) = (rows.column(), columns.map_or("''", Dimension::column));
        select
            .fetch_all(
                self,
                &format!("{r} AS row_value, {c} AS column_value, COUNT(*) AS n"),
                TABLE,
                &match columns {
                    Some(_) => format!("GROUP BY {r}, {c}"),
                    None => format!("GROUP BY {r}"),
                },
                |row| {
                    Ok(Count {
                        row: row.try_get("row_value")?,
                        column: row.try_get("column_value")?,
                        count: count(row, "n")?,
                    })
                },
            )
            .await
    }

    /// The headline numbers for the referrals `filter` matches.
    pub async fn dashboard_headline(&self, filter: &DashboardFilter) -> Result<Headline, ProjectionError> {
        let overdue = |kind: &str| format!("overdue_now LIKE '%,{kind},%'");
        let in_time = "answered_at IS NOT NULL AND (decision_overdue_at IS NULL OR answered_at < decision_overdue_at)";
        let columns = [
            "COUNT(*) AS made".to_owned(),
            sum("received_at IS NOT NULL", "received"),
            sum("answered_at IS NOT NULL", "answered"),
            sum(in_time, "answered_in_time"),
            sum("accepted_at IS NOT NULL", "accepted"),
            sum("rejected_at IS NOT NULL", "declined"),
            sum("completed_at IS NOT NULL", "completed"),
            sum("failed_at IS NOT NULL", "failed"),
            sum("cancelled_at IS NOT NULL", "cancelled"),
            sum("followed_up_at IS NOT NULL", "followed_up"),
            sum("client_reached = 1", "reached"),
            sum(OPEN, "open"),
            sum(&overdue("acknowledgement"), "overdue_acknowledgement"),
            sum(&overdue("decision"), "overdue_decision"),
            sum(&overdue("stalled"), "overdue_stalled"),
            sum(&overdue("follow_up"), "overdue_follow_up"),
            sum("open_escalations > 0", "open_escalations"),
        ]
        .join(", ");
        let rows = filter
            .select()
            .fetch_all(self, &columns, TABLE, "", |row| {
                Ok(Headline {
                    made: count(row, "made")?,
                    received: count(row, "received")?,
                    answered: count(row, "answered")?,
                    answered_in_time: count(row, "answered_in_time")?,
                    accepted: count(row, "accepted")?,
                    declined: count(row, "declined")?,
                    completed: count(row, "completed")?,
                    failed: count(row, "failed")?,
                    cancelled: count(row, "cancelled")?,
                    followed_up: count(row, "followed_up")?,
                    reached: count(row, "reached")?,
                    open: count(row, "open")?,
                    overdue_acknowledgement: count(row, "overdue_acknowledgement")?,
                    overdue_decision: count(row, "overdue_decision")?,
                    overdue_stalled: count(row, "overdue_stalled")?,
                    overdue_follow_up: count(row, "overdue_follow_up")?,
                    open_escalations: count(row, "open_escalations")?,
                })
            })
            .await?;
        Ok(rows.into_iter().next().unwrap_or_default())
    }

    /// The lengths (ms) of `span` for the referrals `filter` matches that reached its end,
    /// ascending.
    pub async fn dashboard_durations(&self, filter: &DashboardFilter, span: Span) -> Result<Vec<i64>, ProjectionError> {
        let end = span.end();
        let mut select = filter.select();
        select.filter(format!("{end} IS NOT NULL"));
        select
            .fetch_all(
                self,
                &format!("{end} - requested_at AS d"),
                TABLE,
                "ORDER BY 1",
                |row| row.try_get::<i64, _>("d"),
            )
            .await
    }

    /// Each receiving organisation's answers, for the referrals `filter` matches.
    pub async fn dashboard_responsiveness(
        &self,
        filter: &DashboardFilter,
    ) -> Result<Vec<Responsiveness>, ProjectionError> {
        let in_time = "answered_at IS NOT NULL AND (decision_overdue_at IS NULL OR answered_at < decision_overdue_at)";
        let columns = format!(
            "to_org, COUNT(*) AS addressed, {}, {}",
            sum("answered_at IS NOT NULL", "answered"),
            sum(in_time, "answered_in_time")
        );
        let mut out = filter
            .select()
            .fetch_all(self, &columns, TABLE, "GROUP BY to_org ORDER BY to_org", |row| {
                Ok(Responsiveness {
                    org: row.try_get("to_org")?,
                    addressed: count(row, "addressed")?,
                    answered: count(row, "answered")?,
                    answered_in_time: count(row, "answered_in_time")?,
                    answer_millis: Vec::new(),
                })
            })
            .await?;
        let mut select = filter.select();
        select.filter("answered_at IS NOT NULL".to_owned());
        let times = select
            .fetch_all(
                self,
                "to_org, answered_at - requested_at AS d",
                TABLE,
                "ORDER BY to_org, 2",
                |row| Ok((row.try_get::<String, _>("to_org")?, row.try_get::<i64, _>("d")?)),
            )
            .await?;
        for (org, millis) in times {
            if let Some(r) = out.iter_mut().find(|r| r.org == org) {
                r.answer_millis.push(millis);
            }
        }
        Ok(out)
    }

    /// The indicator counts per GCM objective, governorate and quarter, for the referrals
    /// `filter` matches. A referral counts under each objective it serves.
    pub async fn indicator_counts(&self, filter: &DashboardFilter) -> Result<Vec<IndicatorCounts>, ProjectionError> {
        let columns = format!(
            "objectives, governorate, quarter, COUNT(*) AS made, {}, {}, {}",
            sum("accepted_at IS NOT NULL", "accepted"),
            sum("completed_at IS NOT NULL", "completed"),
            sum(UNMET, "unmet_need"),
        );
        let grouped = filter
            .select()
            .fetch_all(
                self,
                &columns,
                TABLE,
                "GROUP BY objectives, governorate, quarter",
                |row| {
                    Ok((
                        row.try_get::<String, _>("objectives")?,
                        row.try_get::<String, _>("governorate")?,
                        row.try_get::<String, _>("quarter")?,
                        [
                            count(row, "made")?,
                            count(row, "accepted")?,
                            count(row, "completed")?,
                            count(row, "unmet_need")?,
                        ],
                    ))
                },
            )
            .await?;
        let mut select = filter.select();
        select.filter("served_at IS NOT NULL".to_owned());
        let times = select
            .fetch_all(
                self,
                "objectives, governorate, quarter, served_at - requested_at AS d",
                TABLE,
                "ORDER BY 4",
                |row| {
                    Ok((
                        row.try_get::<String, _>("objectives")?,
                        row.try_get::<String, _>("governorate")?,
                        row.try_get::<String, _>("quarter")?,
                        row.try_get::<i64, _>("d")?,
                    ))
                },
            )
            .await?;
        let mut out: std::collections::BTreeMap<(GcmObjective, String, String), IndicatorCounts> =
            std::collections::BTreeMap::new();
        let objectives_of = |list: &str| -> Vec<GcmObjective> {
            crate::sql::items(list)
                .filter_map(|o| GcmObjective::parse(o).ok())
                .filter(|o| filter.objective.is_none_or(|wanted| wanted == *o))
                .collect()
        };
        for (objectives, governorate, quarter, [made, accepted, completed, unmet_need]) in grouped {
            for objective in objectives_of(&objectives) {
                let entry = out
                    .entry((objective, governorate.clone(), quarter.clone()))
                    .or_insert_with(|| IndicatorCounts {
                        objective,
                        governorate: governorate.clone(),
                        quarter: quarter.clone(),
                        made: 0,
                        accepted: 0,
                        completed: 0,
                        unmet_need: 0,
                        service_millis: Vec::new(),
                    });
                entry.made += made;
                entry.accepted += accepted;
                entry.completed += completed;
                entry.unmet_need += unmet_need;
            }
        }
        // Times arrive ascending; each entry's list stays ascending.
        for (objectives, governorate, quarter, millis) in times {
            for objective in objectives_of(&objectives) {
                if let Some(entry) = out.get_mut(&(objective, governorate.clone(), quarter.clone())) {
                    entry.service_millis.push(millis);
                }
            }
        }
        Ok(out.into_values().collect())
    }
}
