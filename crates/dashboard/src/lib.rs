//! The coordinators' dashboards and the GCM indicator report. The read models count
//! (`wasl_projections::query`, over `dashboard_referrals`); this crate turns the counts into
//! what may be published, and nothing leaves the server any other way:
//!
//! - every count is in a table with its totals and goes through small-cell suppression
//!   (`wasl_domain::suppression`): `<5` for a small count, `x` for one withheld to protect it,
//!   never 0 ([`tables`]);
//! - a rate is shown only when at least k referrals stand behind it and neither its part nor the
//!   rest is a small count; a median or percentile only from at least k durations
//!   ([`figures`]);
//! - no output names a case, a referral, a survivor code or any personal field: the inputs hold
//!   only codes, organisations, periods and counts.
//!
//! `docs/indicators.md` defines each number.

mod csv;
pub mod figures;
pub mod reports;
pub mod tables;

pub use figures::{Count, Figure, Suppressed};
pub use reports::{HeadlineReport, IndicatorReport, PartnerReport};
pub use tables::{Breakdown, BreakdownRow, breakdown};
