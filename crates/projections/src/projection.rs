//! The projections: which read models exist, their tables and which events they read.

use crate::error::ProjectionError;
use std::fmt;
use std::str::FromStr;
use wasl_domain::AggregateKind;

/// A read model kept by the projector. Each has its own tables, generation and checkpoint and
/// can be rebuilt on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Projection {
    /// `cases`.
    Cases,
    /// `referrals` and `referral_history` (the partner inbox and the caseworker worklist are
    /// queries over them).
    Referrals,
    /// `organisations` and `services`: the service directory.
    Directory,
    /// `dashboard_referrals`: what the coordinators' dashboards and indicator report count.
    Dashboard,
}

impl Projection {
    /// Every projection.
    pub const ALL: &'static [Projection] = &[Self::Cases, Self::Referrals, Self::Directory, Self::Dashboard];

    /// Its name, as `wasl projections rebuild NAME` takes it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Cases => "cases",
            Self::Referrals => "referrals",
            Self::Directory => "directory",
            Self::Dashboard => "dashboard",
        }
    }

    /// The tables it owns, each read through a view of the same name.
    pub const fn tables(self) -> &'static [&'static str] {
        match self {
            Self::Cases => &["cases"],
            Self::Referrals => &["referrals", "referral_history", "referral_erased_cases"],
            Self::Directory => &["organisations", "services"],
            Self::Dashboard => &["dashboard_referrals"],
        }
    }

    /// The version of its table layout. Raising it makes the next start build a fresh
    /// generation from sequence 1.
    pub const fn schema_version(self) -> i64 {
        match self {
            // 2: `referrals.is_open` and the inbox's index on it.
            // 3: missed deadlines, escalation times and `response_overdue` (the inbox's order,
            //    the worklist, the coordinators' escalation list).
            // 4: the `stalled` deadline (`stalled_due_at`).
            Self::Referrals => 4,
            // 2: `cases.shared_with`, the caseworkers a case is shared with (need-to-know).
            // 3: the profile's identifying facts sealed (`sealed_*`, `survivor_code_lookup`,
            //    `profile_event`).
            Self::Cases => 3,
            Self::Directory => 1,
            Self::Dashboard => 1,
        }
    }

    /// Whether it reads events of aggregates of `kind` (an unreadable event of such a subject
    /// is parked in it). The referrals projection reads case events for erasure only.
    pub const fn reads(self, kind: AggregateKind) -> bool {
        matches!(
            (self, kind),
            (Self::Cases, AggregateKind::Case)
                | (Self::Referrals, AggregateKind::Referral | AggregateKind::Case)
                | (Self::Directory, AggregateKind::Organisation)
                | (Self::Dashboard, AggregateKind::Referral)
        )
    }

    /// The table-creation SQL of one generation (schema/<backend>/<name>.sql).
    pub(crate) fn ddl(self, backend: crate::Backend) -> &'static str {
        use crate::Backend::{Postgres, Sqlite};
        match (self, backend) {
            (Self::Cases, Postgres) => include_str!("../schema/postgres/cases.sql"),
            (Self::Referrals, Postgres) => include_str!("../schema/postgres/referrals.sql"),
            (Self::Directory, Postgres) => include_str!("../schema/postgres/directory.sql"),
            (Self::Cases, Sqlite) => include_str!("../schema/sqlite/cases.sql"),
            (Self::Referrals, Sqlite) => include_str!("../schema/sqlite/referrals.sql"),
            (Self::Directory, Sqlite) => include_str!("../schema/sqlite/directory.sql"),
            (Self::Dashboard, Postgres) => include_str!("../schema/postgres/dashboard.sql"),
            (Self::Dashboard, Sqlite) => include_str!("../schema/sqlite/dashboard.sql"),
        }
    }

    /// The projections a command-line argument names: one by name, or all when `None`.
    pub fn selection(name: Option<&str>) -> Result<Vec<Projection>, ProjectionError> {
        match name {
            None | Some("all") => Ok(Self::ALL.to_vec()),
            Some(name) => Ok(vec![name.parse()?]),
        }
    }
}

impl fmt::Display for Projection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Projection {
    type Err = ProjectionError;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.name() == name)
            .ok_or_else(|| ProjectionError::UnknownProjection(name.to_owned()))
    }
}

/// The physical name of `table` in generation `generation`.
pub(crate) fn physical(table: &str, generation: i64) -> String {
    format!("{table}_g{generation}")
}
