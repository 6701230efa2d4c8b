//! Cases: a filtered list, newest change first, and one case by id.

use super::page::{Cursor, Key, KeyKind, Keyset, Page, PageRequest, Select};
use crate::db::ReadModels;
use crate::error::ProjectionError;
use crate::rows::case::{CaseRow, status_code};
use wasl_domain::case::CaseStatus;
use wasl_domain::client::{SurvivorCode, SurvivorCodeLookup};
use wasl_domain::geo::Governorate;
use wasl_domain::ids::{CaseId, OrgId, UserId};

/// Which cases to list; every field left empty matches any case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    /// Owned by this organisation.
    pub owner_org: Option<OrgId>,
    /// With this responsible caseworker.
    pub caseworker: Option<UserId>,
    /// Only the cases this user needs to know: those they are the responsible caseworker of,
    /// or that are shared with them (a caseworker's own list).
    pub assigned_to: Option<UserId>,
    /// Open or closed.
    pub status: Option<CaseStatus>,
    /// The client lives in this governorate.
    pub governorate: Option<Governorate>,
    /// Exactly this survivor code: its keyed hash for a sealed profile, the code itself for a
    /// profile recorded in the clear before sealing.
    pub survivor_code: Option<SurvivorCodeQuery>,
}

/// A survivor code to find, with its keyed hash (which only the api can compute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurvivorCodeQuery {
    /// The code, for profiles recorded in the clear.
    pub code: SurvivorCode,
    /// Its keyed hash, for sealed profiles.
    pub lookup: SurvivorCodeLookup,
}

const KEYSET: Keyset = Keyset {
    scope: "cases",
    from: "cases",
    group: None,
    key: "updated_at",
    kind: KeyKind::Int,
    id: "id",
    descending: true,
};

/// The condition that the case row (its columns prefixed by `prefix`, e.g. `c.`) is one `user`
/// needs to know: they are its responsible caseworker, or it is shared with them.
pub(crate) fn assigned_to(select: &mut Select, user: UserId, prefix: &str) -> String {
    let p = select.bind(user.to_string());
    // User ids are UUIDs: no `%` or `_` to escape, and the list column's commas delimit them.
    format!("({prefix}caseworker = {p} OR {prefix}shared_with LIKE '%,' || {p} || ',%')")
}

impl ReadModels {
    /// The cases `filter` matches, most recently changed first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn cases(&self, filter: &CaseFilter, page: &PageRequest) -> Result<Page<CaseRow>, ProjectionError> {
        let mut select = Select::default();
        select.eq("owner_org", filter.owner_org.map(|o| o.to_string()));
        select.eq("caseworker", filter.caseworker.map(|u| u.to_string()));
        if let Some(user) = filter.assigned_to {
            let condition = assigned_to(&mut select, user, "");
            select.filter(condition);
        }
        select.eq("status", filter.status.map(|s| status_code(s).to_owned()));
        select.eq("governorate", filter.governorate.map(|g| g.code().to_owned()));
        if let Some(query) = &filter.survivor_code {
            let lookup = select.bind(query.lookup.to_hex());
            let code = select.bind(query.code.as_str().to_owned());
            select.filter(format!("(survivor_code_lookup = {lookup} OR survivor_code = {code})"));
        }
        select
            .fetch_page(
                self,
                &CaseRow::COLUMNS.join(", "),
                KEYSET,
                page,
                CaseRow::from_row,
                |row| Cursor::at(Key::Int(row.updated_at), row.id.clone()),
            )
            .await
    }

    /// One case, if the read model holds it.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn case(&self, id: CaseId) -> Result<Option<CaseRow>, ProjectionError> {
        let mut select = Select::default();
        select.eq("id", Some(id.to_string()));
        let rows = select
            .fetch_all(self, &CaseRow::COLUMNS.join(", "), "cases", "", CaseRow::from_row)
            .await?;
        Ok(rows.into_iter().next())
    }
}
