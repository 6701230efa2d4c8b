//! The published reports: the dashboard's headline numbers, partner responsiveness and the GCM
//! indicator report.

use crate::figures::{Count, DAY, Figure, HOUR, percentile, rate};
use crate::tables::{Breakdown, breakdown};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use wasl_domain::suppression::Threshold;
use wasl_projections::query::{self, Headline, IndicatorCounts, Responsiveness, Span};

/// The dashboard's headline numbers.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HeadlineReport {
    /// The suppression threshold.
    pub k: u64,
    /// Referrals made, by current status; the total is every referral made.
    pub referrals: Breakdown,
    /// Shares of referrals.
    pub rates: Rates,
    /// How long referrals took, in hours from the request.
    pub hours: Vec<Durations>,
    /// Referrals with a missed deadline that still applies, per kind.
    pub overdue: Overdue,
    /// Referrals with an escalation no coordinator has acknowledged yet.
    pub open_escalations: Count,
}

/// Shares of referrals; see `docs/indicators.md`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Rates {
    /// Accepted ÷ answered (accepted or declined).
    pub acceptance: Figure,
    /// Completed ÷ accepted.
    pub completion: Figure,
    /// Failed ÷ accepted.
    pub failure: Figure,
    /// Answered before the decision deadline was recorded as missed ÷ answered.
    pub answered_in_time: Figure,
    /// Follow-up that reached the client ÷ follow-up recorded.
    pub follow_up_reached: Figure,
}

/// The median and 90th percentile of one span of a referral's life.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Durations {
    /// `to_receive`, `to_answer`, `to_service` or `to_complete`.
    pub span: String,
    /// Median.
    pub median: Figure,
    /// 90th percentile.
    pub p90: Figure,
}

/// Missed deadlines that still apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs)] // one per kind of deadline
pub struct Overdue {
    pub acknowledgement: Count,
    pub decision: Count,
    pub stalled: Count,
    pub follow_up: Count,
}

/// The headline report from the read models' numbers: `by_status` counts referrals by current
/// status, `durations` holds each span's lengths (ms, ascending).
pub fn headline(
    h: &Headline,
    by_status: &[query::Count],
    durations: &[(Span, Vec<i64>)],
    k: Threshold,
) -> HeadlineReport {
    let single = |n| Count::single(n, k);
    HeadlineReport {
        k: k.get(),
        referrals: breakdown(
            by_status.iter().map(|c| ((c.row.clone(), String::new()), c.count)),
            "status",
            None,
            k,
        ),
        rates: Rates {
            acceptance: rate(h.accepted, h.answered, k),
            completion: rate(h.completed, h.accepted, k),
            failure: rate(h.failed, h.accepted, k),
            answered_in_time: rate(h.answered_in_time, h.answered, k),
            follow_up_reached: rate(h.reached, h.followed_up, k),
        },
        hours: durations
            .iter()
            .map(|(span, millis)| Durations {
                span: span.code().to_owned(),
                median: percentile(millis, 0.5, HOUR, k),
                p90: percentile(millis, 0.9, HOUR, k),
            })
            .collect(),
        overdue: Overdue {
            acknowledgement: single(h.overdue_acknowledgement),
            decision: single(h.overdue_decision),
            stalled: single(h.overdue_stalled),
            follow_up: single(h.overdue_follow_up),
        },
        open_escalations: single(h.open_escalations),
    }
}

/// How the receiving organisations answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PartnerReport {
    /// The suppression threshold.
    pub k: u64,
    /// Referrals addressed to each organisation (rows), by how they were answered: `in_time`
    /// (before the decision deadline was recorded as missed), `late`, `not_answered`. The
    /// totals are the network's. For a focal point, only their own organisation's row.
    pub answers: Breakdown,
    /// Each organisation's share answered in time and median time to answer.
    pub organisations: Vec<PartnerFigures>,
    /// The same over the whole network.
    pub network: PartnerFigures,
}

/// One organisation's (or the network's) answering.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PartnerFigures {
    /// The organisation's id; empty for the network.
    pub org: String,
    /// Answered in time ÷ answered.
    pub answered_in_time: Figure,
    /// Median hours from request to answer.
    pub median_hours_to_answer: Figure,
}

/// The partner report; `only` keeps one organisation's row (a focal point's view), computed
/// from the whole network's table so its suppression is the same as the coordinators'.
pub fn partners(rows: &[Responsiveness], only: Option<&str>, k: Threshold) -> PartnerReport {
    let counts = rows.iter().flat_map(|r| {
        let late = r.answered - r.answered_in_time;
        [
            ((r.org.clone(), "in_time".to_owned()), r.answered_in_time),
            ((r.org.clone(), "late".to_owned()), late),
            ((r.org.clone(), "not_answered".to_owned()), r.addressed - r.answered),
        ]
    });
    let mut answers = breakdown(counts, "receiving_org", Some("answer"), k);
    if let Some(org) = only {
        answers.rows.retain(|r| r.key == org);
    }
    let figures = |org: &str, in_time: u64, answered: u64, millis: &[i64]| PartnerFigures {
        org: org.to_owned(),
        answered_in_time: rate(in_time, answered, k),
        median_hours_to_answer: percentile(millis, 0.5, HOUR, k),
    };
    let mut all: Vec<i64> = rows.iter().flat_map(|r| r.answer_millis.iter().copied()).collect();
    all.sort_unstable();
    PartnerReport {
        k: k.get(),
        answers,
        organisations: rows
            .iter()
            .filter(|r| only.is_none_or(|o| o == r.org))
            .map(|r| figures(&r.org, r.answered_in_time, r.answered, &r.answer_millis))
            .collect(),
        network: figures(
            "",
            rows.iter().map(|r| r.answered_in_time).sum(),
            rows.iter().map(|r| r.answered).sum(),
            &all,
        ),
    }
}

/// The GCM indicator report: per objective, each indicator by governorate and quarter.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IndicatorReport {
    /// The suppression threshold.
    pub k: u64,
    /// One per objective with referrals, in order.
    pub objectives: Vec<ObjectiveReport>,
}

/// One objective's indicators.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ObjectiveReport {
    /// The objective's number, 1 to 23.
    pub objective: u32,
    /// Its short title.
    pub title: String,
    /// `made`, `accepted`, `completed` and `unmet_need`, each a table of governorates (rows) by
    /// quarters (columns) with totals.
    pub indicators: Vec<Indicator>,
    /// Median days from request to service, per governorate and quarter.
    pub median_days_to_service: Vec<PlaceAndQuarter>,
}

/// One indicator's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Indicator {
    /// `made`, `accepted`, `completed` or `unmet_need`.
    pub indicator: String,
    /// Governorates by quarters.
    pub table: Breakdown,
}

/// A figure of one governorate in one quarter.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlaceAndQuarter {
    /// Governorate code.
    pub governorate: String,
    /// `YYYY-Qn`.
    pub quarter: String,
    /// The figure.
    pub value: Figure,
}

/// The names of the indicators, in the order they are reported.
pub const INDICATORS: [&str; 4] = ["made", "accepted", "completed", "unmet_need"];

/// The indicator report from the read models' counts.
pub fn indicators(counts: &[IndicatorCounts], k: Threshold) -> IndicatorReport {
    let mut by_objective: BTreeMap<u32, Vec<&IndicatorCounts>> = BTreeMap::new();
    for c in counts {
        by_objective.entry(c.objective.number()).or_default().push(c);
    }
    IndicatorReport {
        k: k.get(),
        objectives: by_objective
            .into_values()
            .filter_map(|cells| {
                let objective = cells.first()?.objective;
                let pick = |i: usize| {
                    cells.iter().map(move |c| {
                        let n = [c.made, c.accepted, c.completed, c.unmet_need][i];
                        ((c.governorate.clone(), c.quarter.clone()), n)
                    })
                };
                Some(ObjectiveReport {
                    objective: objective.number(),
                    title: objective.title().to_owned(),
                    indicators: INDICATORS
                        .iter()
                        .enumerate()
                        .map(|(i, name)| Indicator {
                            indicator: (*name).to_owned(),
                            table: breakdown(pick(i), "governorate", Some("quarter"), k),
                        })
                        .collect(),
                    median_days_to_service: cells
                        .iter()
                        .map(|c| PlaceAndQuarter {
                            governorate: c.governorate.clone(),
                            quarter: c.quarter.clone(),
                            value: percentile(&c.service_millis, 0.5, DAY, k),
                        })
                        .collect(),
                })
            })
            .collect(),
    }
}

impl IndicatorReport {
    /// The report as CSV, one line per number: `objective,indicator,governorate,quarter,value`.
    /// Totals read `total` in place of a governorate or a quarter; hidden numbers read `<5` or
    /// `x`, never 0.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let header = ["objective", "indicator", "governorate", "quarter", "value"].map(str::to_owned);
        crate::csv::line(&mut out, &header);
        for o in &self.objectives {
            let objective = o.objective.to_string();
            for indicator in &o.indicators {
                let t = &indicator.table;
                let mut emit = |governorate: &str, quarter: &str, value: &str| {
                    let fields = [&objective, &indicator.indicator, governorate, quarter, value].map(|s| s.to_owned());
                    crate::csv::line(&mut out, &fields);
                };
                for row in &t.rows {
                    for (quarter, cell) in t.columns.iter().zip(&row.cells) {
                        emit(&row.key, quarter, &cell.display);
                    }
                    emit(&row.key, "total", &row.total.display);
                }
                for (quarter, cell) in t.columns.iter().zip(&t.column_totals) {
                    emit("total", quarter, &cell.display);
                }
                emit("total", "total", &t.total.display);
            }
            for m in &o.median_days_to_service {
                let fields = [
                    objective.clone(),
                    "median_days_to_service".to_owned(),
                    m.governorate.clone(),
                    m.quarter.clone(),
                    m.value.display.clone(),
                ];
                crate::csv::line(&mut out, &fields);
            }
        }
        out
    }
}
