//! The service directory: services found by category, place, language and availability, the
//! organisations offering them, and the candidates for a referral, ranked and explained.

use super::page::{Cursor, Key, KeyKind, Keyset, Page, PageRequest, Select, qualified};
use crate::db::ReadModels;
use crate::error::ProjectionError;
use crate::rows::directory::{OrganisationRow, ServiceRow};
use sqlx::Row;
use wasl_domain::catalogue::ServiceCategory;
use wasl_domain::client::{AgeGroup, Language, Sex};
use wasl_domain::geo::{Governorate, Location};
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
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ServiceListing {
    pub service: ServiceRow,
    /// The organisation's name.
    pub org_name: String,
    /// The organisation's kind code.
    pub org_kind: String,
}

const SERVICES: Keyset = Keyset {
    scope: "services",
    from: "services s JOIN organisations o ON o.id = s.org_id",
    group: None,
    key: "o.name",
    kind: KeyKind::Text,
    id: "s.id",
    descending: false,
};

const ORGANISATIONS: Keyset = Keyset {
    scope: "organisations",
    from: "organisations",
    group: None,
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
                |listing| Cursor::at(Key::Text(listing.org_name.clone()), listing.service.id.clone()),
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
                |row| Cursor::at(Key::Text(row.name.clone()), row.id.clone()),
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

/// Who a referral is for, as the directory matches services to it: never a name, only what
/// eligibility and reach depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The service category asked for.
    pub category: ServiceCategory,
    /// The client's sex.
    pub sex: Sex,
    /// The client's age group.
    pub age_group: AgeGroup,
    /// The client's preferred language.
    pub language: Language,
    /// Where the client lives.
    pub location: Location,
}

/// A service that could take a referral, with why it is proposed and what to check.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The service and its organisation.
    pub listing: ServiceListing,
    /// Why it fits, in ranking order of importance.
    pub reasons: Vec<String>,
    /// What speaks against it (it is still eligible): another district, another language, no
    /// free places published.
    pub cautions: Vec<String>,
}

impl ReadModels {
    /// The services that could take a referral for `need`, best first: of the category,
    /// working in the client's governorate, accepting referrals, not retired, and admitting
    /// the client's sex and age group (others are left out). Ranked by: serving the client's
    /// own district (or the whole governorate), working in the client's language, free
    /// places (published and above zero, then not published, then none), then more free
    /// places, then the organisation's name. Each candidate says why.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn candidates(&self, need: &Need) -> Result<Vec<Candidate>, ProjectionError> {
        let search = DirectorySearch {
            category: Some(need.category),
            governorate: Some(need.location.governorate()),
            accepting_only: true,
            ..DirectorySearch::default()
        };
        let mut listings = Vec::new();
        let mut page = PageRequest::first(super::page::MAX_LIMIT);
        loop {
            let found = self.search_services(&search, &page).await?;
            listings.extend(found.items);
            match found.next {
                Some(next) => page = PageRequest::continuing(super::page::MAX_LIMIT, next),
                None => break,
            }
        }
        let mut ranked: Vec<((bool, bool, u8, i64), Candidate)> = listings
            .into_iter()
            .filter_map(|listing| judge(need, listing))
            .collect();
        // Best first; a stable sort keeps the directory's order (organisation name) on ties.
        ranked.sort_by(|(a, _), (b, _)| b.cmp(a));
        Ok(ranked.into_iter().map(|(_, c)| c).collect())
    }
}

/// Whether `listing` admits the client of `need` and, if so, its rank key and explanation.
fn judge(need: &Need, listing: ServiceListing) -> Option<((bool, bool, u8, i64), Candidate)> {
    let s = &listing.service;
    let holds = |list: &str, item: &str| list.split(',').any(|x| !x.is_empty() && x == item);
    let admits_sex = s.sexes == "any" || holds(&s.sexes, need.sex.code());
    let (lo, hi) = need.age_group.bounds();
    let admits_age = i64::from(lo) <= s.max_age && i64::from(hi) >= s.min_age;
    if !admits_sex || !admits_age {
        return None;
    }
    let governorate = need.location.governorate().code();
    let whole_governorate = holds(&s.areas, governorate);
    let own_district = need
        .location
        .district()
        .is_some_and(|d| holds(&s.areas, &format!("{governorate}/{}", d.code())));
    let serves_area = whole_governorate || own_district || need.location.district().is_none();
    let language = need.language.primary();
    let speaks = s
        .languages
        .split(',')
        .any(|l| !l.is_empty() && l.split('-').next() == Some(language));
    let (places, free) = match s.capacity {
        Some(n) if n > 0 => (2, n),
        None => (1, 0),
        Some(_) => (0, 0),
    };
    let mut reasons = vec![format!("offers {}", need.category.code())];
    let mut cautions = Vec::new();
    match (own_district, whole_governorate) {
        (true, _) => reasons.push(format!("serves the client's district ({})", need.location_code())),
        (false, true) => reasons.push(format!("serves all of {governorate}")),
        (false, false) if serves_area => reasons.push(format!("works in {governorate}")),
        (false, false) => cautions.push(format!(
            "works in {governorate} but does not list the client's district ({})",
            need.location_code()
        )),
    }
    if speaks {
        reasons.push(format!("works in the client's language ({language})"));
    } else {
        cautions.push(format!("does not list the client's language ({language})"));
    }
    reasons.push(format!(
        "admits {} clients aged {}",
        need.sex.code(),
        need.age_group.code()
    ));
    reasons.push("accepting referrals".to_owned());
    match places {
        2 => reasons.push(format!("{free} free place(s) published")),
        1 => cautions.push("free places not published".to_owned()),
        _ => cautions.push("no free places published".to_owned()),
    }
    let candidate = Candidate {
        listing,
        reasons,
        cautions,
    };
    Some(((serves_area, speaks, places, free), candidate))
}

impl Need {
    /// The client's place as the directory writes it: `IQ-NI` or `IQ-NI/<district>`.
    fn location_code(&self) -> String {
        match self.location.district() {
            Some(d) => format!("{}/{}", self.location.governorate().code(), d.code()),
            None => self.location.governorate().code().to_owned(),
        }
    }
}
