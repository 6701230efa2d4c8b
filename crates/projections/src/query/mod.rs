//! Typed queries over the read models, for the API: cases, referrals and their timeline, the
//! partner inbox, the caseworker worklist, the coordinators' escalation list, the service
//! directory and the dashboards' aggregates.
//!
//! Every filter is a `WHERE` clause and every list is a [`Page`] in a fixed order, read by
//! keyset (the rows after the previous page's last one), never by offset. Filters take the
//! domain's types, so only codes Wasl knows ever reach the database.

mod cases;
mod dashboard;
mod directory;
mod page;
mod referrals;

pub use cases::{CaseFilter, SurvivorCodeQuery};
pub use dashboard::{Count, DashboardFilter, Dimension, Headline, IndicatorCounts, Measure, Responsiveness, Span};
pub use directory::{Candidate, DirectorySearch, Need, ServiceListing};
pub use page::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest};
pub use referrals::{EscalationFilter, OPEN_STATUSES, ReferralFilter, WorkItem, WorkNeed};
