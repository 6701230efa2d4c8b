//! `organisations` and `services`: the service directory.

use super::{ApplyError, EventAt};
use crate::sql::{list, row};
use wasl_domain::case::Scope;
use wasl_domain::directory::{OrganisationEvent, ServiceSpec};

row!(
    /// An organisation of the directory.
    OrganisationRow {
        /// Organisation id.
        id: String,
        name: String,
        kind: String,
        /// When registered (Unix ms).
        registered_at: i64,
        /// Time of the last event.
        updated_at: i64,
        /// Number of events.
        version: i64,
        /// Stream sequence of the last event.
        position: i64,
    }
);

row!(
    /// A service of an organisation.
    ServiceRow {
        /// Service id.
        id: String,
        org_id: String,
        name: String,
        category: String,
        /// Areas served: `IQ-BG` for a whole governorate, `IQ-BG/<district>` for a district.
        areas: String,
        /// Governorates it works in (of its areas), as a list column.
        governorates: String,
        /// Languages, as a list column.
        languages: String,
        /// Sex codes served as a list column, or `any`.
        sexes: String,
        /// Youngest age served.
        min_age: i64,
        /// Oldest age served.
        max_age: i64,
        /// 1 while it takes referrals.
        accepting: i64,
        /// Free places, when published.
        capacity: Option<i64>,
        /// 1 once retired.
        retired: i64,
        /// Time of the last event.
        updated_at: i64,
        /// Stream sequence of the last event.
        position: i64,
    }
);

fn set_spec(row: &mut ServiceRow, spec: &ServiceSpec) {
    row.name = spec.name.as_str().to_owned();
    row.category = spec.category.code().to_owned();
    let areas: Vec<String> = spec
        .areas
        .iter()
        .map(|a| match a.district() {
            Some(d) => format!("{}/{}", a.governorate().code(), d.code()),
            None => a.governorate().code().to_owned(),
        })
        .collect();
    row.areas = list(areas.iter().map(String::as_str));
    let mut governorates: Vec<&str> = spec.areas.iter().map(|a| a.governorate().code()).collect();
    governorates.sort_unstable();
    governorates.dedup();
    row.governorates = list(governorates);
    row.languages = list(spec.languages.iter().map(|l| l.as_str()));
    row.sexes = match &spec.eligibility.sexes {
        Scope::Any => "any".to_owned(),
        Scope::Only(set) => list(set.iter().map(|s| s.code())),
    };
    row.min_age = i64::from(spec.eligibility.min_age);
    row.max_age = i64::from(spec.eligibility.max_age);
}

/// What one organisation event changed.
pub(crate) enum Touched {
    /// The organisation row.
    Organisation,
    /// A service row, by id.
    Service(String),
}

/// Applies one event of organisation `id`. `service` is the row of the service the event
/// names (loaded by the caller), if it names one. On error nothing is changed.
pub(crate) fn apply(
    org: &mut Option<OrganisationRow>,
    service: Option<&mut Option<ServiceRow>>,
    id: &str,
    event: &OrganisationEvent,
    at: &EventAt,
) -> Result<Touched, ApplyError> {
    if let OrganisationEvent::Registered { name, kind, .. } = event {
        if org.is_some() {
            return Err(ApplyError::Exists("the organisation"));
        }
        *org = Some(OrganisationRow {
            id: id.to_owned(),
            name: name.as_str().to_owned(),
            kind: kind.code().to_owned(),
            registered_at: at.at,
            updated_at: at.at,
            version: 1,
            position: at.seq,
        });
        return Ok(Touched::Organisation);
    }
    let row = org.as_mut().ok_or(ApplyError::Missing("the organisation"))?;
    let touched = match event {
        OrganisationEvent::Registered { .. } => unreachable!("handled above"),
        OrganisationEvent::Updated { name, kind } => {
            row.name = name.as_str().to_owned();
            row.kind = kind.code().to_owned();
            Touched::Organisation
        }
        OrganisationEvent::ServiceAdded { service_id, spec } => {
            let slot = service.ok_or(ApplyError::Missing("the service"))?;
            if slot.is_some() {
                return Err(ApplyError::Exists("the service"));
            }
            let mut new = ServiceRow {
                id: service_id.to_string(),
                org_id: id.to_owned(),
                name: String::new(),
                category: String::new(),
                areas: String::new(),
                governorates: String::new(),
                languages: String::new(),
                sexes: String::new(),
                min_age: 0,
                max_age: 0,
                accepting: 1,
                capacity: None,
                retired: 0,
                updated_at: at.at,
                position: at.seq,
            };
            set_spec(&mut new, spec);
            *slot = Some(new);
            Touched::Service(service_id.to_string())
        }
        OrganisationEvent::ServiceUpdated { service_id, spec } => {
            let s = existing(service)?;
            set_spec(s, spec);
            stamp(s, at);
            Touched::Service(service_id.to_string())
        }
        OrganisationEvent::ServiceAvailabilityChanged {
            service_id,
            accepting,
            capacity,
        } => {
            let s = existing(service)?;
            s.accepting = i64::from(*accepting);
            s.capacity = capacity.map(i64::from);
            stamp(s, at);
            Touched::Service(service_id.to_string())
        }
        OrganisationEvent::ServiceRetired { service_id } => {
            let s = existing(service)?;
            s.retired = 1;
            stamp(s, at);
            Touched::Service(service_id.to_string())
        }
    };
    row.updated_at = at.at;
    row.version += 1;
    row.position = at.seq;
    Ok(touched)
}

fn existing(service: Option<&mut Option<ServiceRow>>) -> Result<&mut ServiceRow, ApplyError> {
    service
        .and_then(Option::as_mut)
        .ok_or(ApplyError::Missing("the service"))
}

fn stamp(row: &mut ServiceRow, at: &EventAt) {
    row.updated_at = at.at;
    row.position = at.seq;
}

/// The service an organisation event names, if any.
pub(crate) fn service_of(event: &OrganisationEvent) -> Option<String> {
    match event {
        OrganisationEvent::ServiceAdded { service_id, .. }
        | OrganisationEvent::ServiceUpdated { service_id, .. }
        | OrganisationEvent::ServiceAvailabilityChanged { service_id, .. }
        | OrganisationEvent::ServiceRetired { service_id } => Some(service_id.to_string()),
        OrganisationEvent::Registered { .. } | OrganisationEvent::Updated { .. } => None,
    }
}
