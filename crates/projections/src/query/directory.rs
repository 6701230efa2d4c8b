//! The service directory: services found by category, place, language and availability, and
//! the organisations offering them.

use super::page::{Cursor, Key, KeyKind, Keyset, Page, PageRequest, Select, qualified};
use crate::db::ReadModels;
use crate::error::ProjectionError;
use crate::rows::directory::{OrganisationRow, ServiceRow};
use sqlx::Row;
use wasl_domain::catalogue::ServiceCategory;
use wasl_domain::client::Language;
use wasl_domain::geo::Governorate;
use wasl_domain::ids::OrgId;

/// What a directory search looks for; every field left empty matches any service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectorySearch {
    /// Of this category.
    pub category: Option<ServiceCategory>,
    /// Working in (some area of) this governorate.
    pub governorate: Option<Governorate>,
    /// Offered in this language: a BCP 47 tag, matched exactly as the directory stores it
    /// (primary subtag lower-case). A text that is not a language tag matches no service.
    pub language: Option<String>,
    /// Only services taking referrals now.
    pub accepting_only: bool,
    /// Retired services too (they are left out by default).
    pub include_retired: bool,
}

/// A service found in the directory, with the organisation offering it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceListing {
    /// The service.
    pub service: ServiceRow,
    /// The organisation's name.
    pub org_name: String,
    /// The organisation's kind code.
    pub org_kind: String,
}

const SERVICES: Keyset = Keyset {
    scope: "services",
    from: "services s JOIN organisations o ON o.id = s.org_id",
    key: "o.name",
    kind: KeyKind::Text,
    id: "s.id",
    descending: false,
};

const ORGANISATIONS: Keyset = Keyset {
    scope: "organisations",
    from: "organisations",
    key: "name",
    kind: KeyKind::Text,
    id: "id",
    descending: false,
};

impl ReadModels {
    /// The services `search` matches, by organisation name, then service id.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn search_services(
        &self,
        search: &DirectorySearch,
        page: &PageRequest,
    ) -> Result<Page<ServiceListing>, ProjectionError> {
        let mut select = Select::default();
        select.eq("s.category", search.category.map(|c| c.code().to_owned()));
        if let Some(governorate) = search.governorate {
            select.list_holds("s.governorates", governorate.code().to_owned());
        }
        if let Some(language) = &search.language {
            // A valid tag holds only letters, digits and `-`: nothing a LIKE pattern or a list
            // column gives a meaning to.
            let Ok(language) = Language::parse(language) else {
                SERVICES.check(page)?;
                return Ok(Page::empty());
            };
            select.list_holds("s.languages", language.as_str().to_owned());
        }
        if search.accepting_only {
            let yes = select.bind(1_i64);
            select.filter(format!("s.accepting = {yes}"));
        }
        if !search.include_retired {
            let no = select.bind(0_i64);
            select.filter(format!("s.retired = {no}"));
        }
        let columns = format!(
            "{}, o.name AS org_name, o.kind AS org_kind",
            qualified("s", ServiceRow::COLUMNS)
        );
        select
            .fetch_page(
                self,
                &columns,
                SERVICES,
                page,
                |row| {
                    Ok(ServiceListing {
                        service: ServiceRow::from_row(row)?,
                        org_name: row.try_get("org_name")?,
                        org_kind: row.try_get("org_kind")?,
                    })
                },
                |listing| Cursor {
                    key: Key::Text(listing.org_name.clone()),
                    id: listing.service.id.clone(),
                },
            )
            .await
    }

    /// Every organisation of the directory, by name, then id.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn organisations(&self, page: &PageRequest) -> Result<Page<OrganisationRow>, ProjectionError> {
        Select::default()
            .fetch_page(
                self,
                &OrganisationRow::COLUMNS.join(", "),
                ORGANISATIONS,
                page,
                OrganisationRow::from_row,
                |row| Cursor {
                    key: Key::Text(row.name.clone()),
                    id: row.id.clone(),
                },
            )
            .await
    }

    /// One organisation with all its services (retired ones included, see
    /// [`ServiceRow::retired`]) by name, then id; `None` if the directory does not hold it.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn organisation(&self, id: OrgId) -> Result<Option<(OrganisationRow, Vec<ServiceRow>)>, ProjectionError> {
        let mut select = Select::default();
        select.eq("id", Some(id.to_string()));
        let Some(org) = select
            .fetch_all(
                self,
                &OrganisationRow::COLUMNS.join(", "),
                "organisations",
                "",
                OrganisationRow::from_row,
            )
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let mut select = Select::default();
        select.eq("org_id", Some(org.id.clone()));
        let services = select
            .fetch_all(
                self,
                &ServiceRow::COLUMNS.join(", "),
                "services",
                "ORDER BY name, id",
                ServiceRow::from_row,
            )
            .await?;
        Ok(Some((org, services)))
    }
}
