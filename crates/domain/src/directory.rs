//! The service directory: the `Organisation` aggregate and the services it offers, with where
//! they work, in which languages, for whom, and whether they take referrals now. Shaped after the
//! Open Referral HSDS (organization, service, service_area, languages, eligibility, capacity).

use crate::case::Scope;
use crate::catalogue::ServiceCategory;
use crate::client::{AgeGroup, Language, Sex};
use crate::codes::code_enum;
use crate::error::{DomainError, Forbidden, ValidationError};
use crate::geo::Location;
use crate::ids::{OrgId, ServiceId};
use crate::{Aggregate, AggregateKind, Context, Role};
use std::collections::BTreeMap;

/// A display name of an organisation or service: 1 to 200 characters after trimming, no
/// control characters. Not personal data.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// Validates a name.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 200 {
            return Err(ValidationError::new("name", "must be 1 to 200 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ValidationError::new("name", "must not contain control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

code_enum!(
    /// What kind of organisation.
    OrgKind, "org_kind" {
        /// A United Nations agency.
        UnAgency => "un_agency",
        /// An international NGO.
        InternationalNgo => "international_ngo",
        /// A national or local NGO.
        NationalNgo => "national_ngo",
        /// A government service.
        Government => "government",
        /// Any other kind.
        Other => "other",
    }
);

/// Who a service is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eligibility {
    /// Sexes served.
    pub sexes: Scope<Sex>,
    /// Youngest age served, in years.
    pub min_age: u8,
    /// Oldest age served, in years.
    pub max_age: u8,
}

impl Eligibility {
    /// Everyone.
    pub fn everyone() -> Self {
        Self {
            sexes: Scope::Any,
            min_age: 0,
            max_age: 120,
        }
    }

    /// Whether a client of `sex` in `age` could be eligible (their band overlaps the range).
    pub fn admits(&self, sex: Sex, age: AgeGroup) -> bool {
        let (lo, hi) = age.bounds();
        self.sexes.contains(&sex) && lo <= self.max_age && hi >= self.min_age
    }
}

/// What a service is: category, area, languages, eligibility.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ServiceSpec {
    /// The service's name.
    pub name: DisplayName,
    pub category: ServiceCategory,
    /// Where it works (at least one place).
    pub areas: Vec<Location>,
    /// Languages it works in (at least one).
    pub languages: Vec<Language>,
    /// Who it serves.
    pub eligibility: Eligibility,
}

impl ServiceSpec {
    fn validate(&self) -> Result<(), DomainError> {
        if self.areas.is_empty() {
            return Err(ValidationError::new("areas", "must list at least one area").into());
        }
        if self.languages.is_empty() {
            return Err(ValidationError::new("languages", "must list at least one language").into());
        }
        let e = &self.eligibility;
        if e.min_age > e.max_age || e.max_age > 120 {
            return Err(ValidationError::new("eligibility", "needs min_age <= max_age <= 120").into());
        }
        if matches!(&e.sexes, Scope::Only(s) if s.is_empty()) {
            return Err(ValidationError::new("eligibility", "must admit at least one sex").into());
        }
        Ok(())
    }
}

/// A service as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// What it is.
    pub spec: ServiceSpec,
    /// Whether it takes new referrals.
    pub accepting: bool,
    /// Free places, when the organisation publishes them.
    pub capacity: Option<u32>,
    /// Whether it was retired (kept for the history of old referrals).
    pub retired: bool,
}

/// The state of a registered organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct OrganisationState {
    pub id: OrgId,
    pub name: DisplayName,
    pub kind: OrgKind,
    pub services: BTreeMap<ServiceId, Service>,
}

/// An organisation, or the absence of one before it is registered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Organisation(Option<OrganisationState>);

impl Organisation {
    /// The state, if registered.
    pub fn state(&self) -> Option<&OrganisationState> {
        self.0.as_ref()
    }
}

/// What can be asked of an organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum OrganisationCommand {
    /// Register it in the directory.
    Register {
        /// Its id.
        org_id: OrgId,
        name: DisplayName,
        kind: OrgKind,
    },
    /// Change name or kind.
    Update { name: DisplayName, kind: OrgKind },
    /// Add a service.
    AddService {
        /// The new service's id.
        service_id: ServiceId,
        /// What it is.
        spec: ServiceSpec,
    },
    /// Change what a service is.
    UpdateService {
        service_id: ServiceId,
        /// What it is now.
        spec: ServiceSpec,
    },
    /// Open or close a service to referrals, and publish its free places.
    SetAvailability {
        service_id: ServiceId,
        /// Takes referrals.
        accepting: bool,
        /// Free places, if published.
        capacity: Option<u32>,
    },
    /// Retire a service.
    RetireService { service_id: ServiceId },
}

/// What an organisation records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum OrganisationEvent {
    /// Registered in the directory.
    Registered {
        /// Its id.
        org_id: OrgId,
        name: DisplayName,
        kind: OrgKind,
    },
    /// Name or kind changed.
    Updated { name: DisplayName, kind: OrgKind },
    /// A service was added; it accepts referrals from the start.
    ServiceAdded {
        /// Its id.
        service_id: ServiceId,
        /// What it is.
        spec: ServiceSpec,
    },
    /// A service changed.
    ServiceUpdated {
        /// Its id.
        service_id: ServiceId,
        /// What it is now.
        spec: ServiceSpec,
    },
    /// A service opened or closed to referrals, or published its free places.
    ServiceAvailabilityChanged {
        /// Its id.
        service_id: ServiceId,
        /// Takes referrals.
        accepting: bool,
        /// Free places, if published.
        capacity: Option<u32>,
    },
    /// A service was retired.
    ServiceRetired {
        /// Its id.
        service_id: ServiceId,
    },
}

const DIRECTORY_MAINTAINERS: &[Role] = &[Role::Admin, Role::Coordinator];

impl Aggregate for Organisation {
    type Command = OrganisationCommand;
    type Event = OrganisationEvent;
    const KIND: AggregateKind = AggregateKind::Organisation;

    fn decide(&self, command: &OrganisationCommand, ctx: &Context) -> Result<Vec<OrganisationEvent>, DomainError> {
        let actor = &ctx.actor;
        let Some(org) = &self.0 else {
            return match command {
                OrganisationCommand::Register { org_id, name, kind } => {
                    actor.require_any(DIRECTORY_MAINTAINERS)?;
                    Ok(vec![OrganisationEvent::Registered {
                        org_id: *org_id,
                        name: name.clone(),
                        kind: *kind,
                    }])
                }
                _ => Err(DomainError::NotFound),
            };
        };
        // Admins and coordinators maintain every entry; an organisation maintains its own.
        let own = actor.org == org.id;
        let may = |own_roles: &[Role]| {
            if actor.has_any(DIRECTORY_MAINTAINERS) || (own && actor.has_any(own_roles)) {
                Ok(())
            } else if !own && !actor.has_any(DIRECTORY_MAINTAINERS) {
                Err(DomainError::Forbidden(Forbidden::NotDirectoryMaintainer))
            } else {
                Err(DomainError::Forbidden(Forbidden::MissingRole))
            }
        };
        let live_service = |id: &ServiceId| -> Result<&Service, DomainError> {
            let service = org.services.get(id).ok_or(DomainError::UnknownService)?;
            if service.retired {
                Err(DomainError::ServiceRetired)
            } else {
                Ok(service)
            }
        };
        match command {
            OrganisationCommand::Register { .. } => Err(DomainError::AlreadyExists),
            OrganisationCommand::Update { name, kind } => {
                may(&[Role::Supervisor])?;
                if *name == org.name && *kind == org.kind {
                    return Err(DomainError::NothingToChange);
                }
                Ok(vec![OrganisationEvent::Updated {
                    name: name.clone(),
                    kind: *kind,
                }])
            }
            OrganisationCommand::AddService { service_id, spec } => {
                may(&[Role::Supervisor, Role::FocalPoint])?;
                if org.services.contains_key(service_id) {
                    return Err(DomainError::AlreadyExists);
                }
                spec.validate()?;
                Ok(vec![OrganisationEvent::ServiceAdded {
                    service_id: *service_id,
                    spec: normalised(spec),
                }])
            }
            OrganisationCommand::UpdateService { service_id, spec } => {
                may(&[Role::Supervisor, Role::FocalPoint])?;
                let service = live_service(service_id)?;
                spec.validate()?;
                let spec = normalised(spec);
                if spec == service.spec {
                    return Err(DomainError::NothingToChange);
                }
                Ok(vec![OrganisationEvent::ServiceUpdated {
                    service_id: *service_id,
                    spec,
                }])
            }
            OrganisationCommand::SetAvailability {
                service_id,
                accepting,
                capacity,
            } => {
                may(&[Role::Supervisor, Role::FocalPoint, Role::PartnerSystem])?;
                let service = live_service(service_id)?;
                if service.accepting == *accepting && service.capacity == *capacity {
                    return Err(DomainError::NothingToChange);
                }
                Ok(vec![OrganisationEvent::ServiceAvailabilityChanged {
                    service_id: *service_id,
                    accepting: *accepting,
                    capacity: *capacity,
                }])
            }
            OrganisationCommand::RetireService { service_id } => {
                may(&[Role::Supervisor])?;
                live_service(service_id)?;
                Ok(vec![OrganisationEvent::ServiceRetired {
                    service_id: *service_id,
                }])
            }
        }
    }

    fn evolve(self, event: &OrganisationEvent) -> Self {
        let Some(mut org) = self.0 else {
            return match event {
                OrganisationEvent::Registered { org_id, name, kind } => Self(Some(OrganisationState {
                    id: *org_id,
                    name: name.clone(),
                    kind: *kind,
                    services: BTreeMap::new(),
                })),
                _ => Self(None),
            };
        };
        match event {
            OrganisationEvent::Registered { .. } => {}
            OrganisationEvent::Updated { name, kind } => {
                org.name = name.clone();
                org.kind = *kind;
            }
            OrganisationEvent::ServiceAdded { service_id, spec } => {
                org.services.insert(
                    *service_id,
                    Service {
                        spec: spec.clone(),
                        accepting: true,
                        capacity: None,
                        retired: false,
                    },
                );
            }
            OrganisationEvent::ServiceUpdated { service_id, spec } => {
                if let Some(s) = org.services.get_mut(service_id) {
                    s.spec = spec.clone();
                }
            }
            OrganisationEvent::ServiceAvailabilityChanged {
                service_id,
                accepting,
                capacity,
            } => {
                if let Some(s) = org.services.get_mut(service_id) {
                    s.accepting = *accepting;
                    s.capacity = *capacity;
                }
            }
            OrganisationEvent::ServiceRetired { service_id } => {
                if let Some(s) = org.services.get_mut(service_id) {
                    s.retired = true;
                    s.accepting = false;
                }
            }
        }
        Self(Some(org))
    }
}

fn normalised(spec: &ServiceSpec) -> ServiceSpec {
    let mut spec = spec.clone();
    spec.areas.sort();
    spec.areas.dedup();
    spec.languages.sort();
    spec.languages.dedup();
    spec
}
