//! The service directory's rules.

use crate::support::Given;
use crate::support::*;
use wasl_domain::case::Scope;
use wasl_domain::catalogue::ServiceCategory;
use wasl_domain::client::{AgeGroup, Sex};
use wasl_domain::directory::{
    DisplayName, Eligibility, OrgKind, Organisation, OrganisationCommand as C, OrganisationEvent as E,
};
use wasl_domain::{Aggregate, DomainError, Forbidden};

fn register() -> C {
    C::Register {
        org_id: receiving_org(),
        name: DisplayName::parse("Test Health Partner").expect("name"),
        kind: OrgKind::NationalNgo,
    }
}

fn registered() -> Vec<E> {
    vec![provider_registered()]
}

fn with_service() -> Vec<E> {
    vec![
        provider_registered(),
        E::ServiceAdded {
            service_id: health_service(),
            spec: health_spec(),
        },
    ]
}

#[test]
fn coordinators_and_admins_register_organisations_and_caseworkers_do_not() {
    fresh::<Organisation>()
        .when(register(), &coordinator())
        .then(registered());
    fresh::<Organisation>().when(register(), &admin()).then(registered());
    fresh::<Organisation>()
        .when(register(), &caseworker())
        .then_refused(DomainError::Forbidden(Forbidden::MissingRole));
    given(registered())
        .when(register(), &admin())
        .then_refused(DomainError::AlreadyExists);
}

#[test]
fn an_organisation_maintains_its_own_services_but_not_anothers() {
    let add = || C::AddService {
        service_id: health_service(),
        spec: health_spec(),
    };
    given(registered())
        .when(add(), &focal_point())
        .then(vec![E::ServiceAdded {
            service_id: health_service(),
            spec: health_spec(),
        }]);
    given(registered())
        .when(add(), &outsider_caseworker())
        .then_refused(DomainError::Forbidden(Forbidden::NotDirectoryMaintainer));
    let mut own_caseworker = focal_point();
    own_caseworker.actor.roles = vec![wasl_domain::Role::Caseworker];
    given(registered())
        .when(add(), &own_caseworker)
        .then_refused(DomainError::Forbidden(Forbidden::MissingRole));
    given(with_service())
        .when(add(), &coordinator())
        .then_refused(DomainError::AlreadyExists);
}

#[test]
fn a_service_needs_an_area_a_language_and_a_sane_age_range() {
    let mut no_area = health_spec();
    no_area.areas.clear();
    given(registered())
        .when(
            C::AddService {
                service_id: health_service(),
                spec: no_area,
            },
            &coordinator(),
        )
        .then_invalid("areas");
    let mut no_language = health_spec();
    no_language.languages.clear();
    given(registered())
        .when(
            C::AddService {
                service_id: health_service(),
                spec: no_language,
            },
            &coordinator(),
        )
        .then_invalid("languages");
    let mut upside_down = health_spec();
    upside_down.eligibility = Eligibility {
        sexes: Scope::Any,
        min_age: 18,
        max_age: 12,
    };
    given(registered())
        .when(
            C::AddService {
                service_id: health_service(),
                spec: upside_down,
            },
            &coordinator(),
        )
        .then_invalid("eligibility");
}

#[test]
fn a_partner_system_publishes_availability_and_a_repeat_changes_nothing() {
    let set = |accepting, capacity| C::SetAvailability {
        service_id: health_service(),
        accepting,
        capacity,
    };
    let org = given(with_service())
        .when(set(true, Some(3)), &partner_system())
        .then(vec![E::ServiceAvailabilityChanged {
            service_id: health_service(),
            accepting: true,
            capacity: Some(3),
        }]);
    let service = &org.state().expect("org").services[&health_service()];
    assert_eq!((service.accepting, service.capacity), (true, Some(3)));
    Given::from_state(org)
        .when(set(true, Some(3)), &partner_system())
        .then_refused(DomainError::NothingToChange);
}

#[test]
fn a_retired_service_stops_accepting_and_cannot_be_changed() {
    let org = given(with_service())
        .when(
            C::RetireService {
                service_id: health_service(),
            },
            &supervisor_of_provider(),
        )
        .then(vec![E::ServiceRetired {
            service_id: health_service(),
        }]);
    assert!(!org.state().expect("org").services[&health_service()].accepting);
    Given::from_state(org)
        .when(
            C::UpdateService {
                service_id: health_service(),
                spec: health_spec(),
            },
            &coordinator(),
        )
        .then_refused(DomainError::ServiceRetired);
}

#[test]
fn an_unknown_service_cannot_be_changed() {
    given(registered())
        .when(
            C::SetAvailability {
                service_id: health_service(),
                accepting: false,
                capacity: None,
            },
            &coordinator(),
        )
        .then_refused(DomainError::UnknownService);
}

#[test]
fn renaming_to_the_same_name_changes_nothing() {
    let same = C::Update {
        name: DisplayName::parse(" Test Health Partner ").expect("name"),
        kind: OrgKind::NationalNgo,
    };
    given(registered())
        .when(same, &admin())
        .then_refused(DomainError::NothingToChange);
}

#[test]
fn eligibility_admits_clients_whose_age_band_overlaps_the_range() {
    let women = Eligibility {
        sexes: Scope::only([Sex::Female], "sexes").expect("scope"),
        min_age: 18,
        max_age: 59,
    };
    assert!(women.admits(Sex::Female, AgeGroup::Age25To59));
    assert!(!women.admits(Sex::Male, AgeGroup::Age25To59));
    assert!(!women.admits(Sex::Female, AgeGroup::Age12To17));
    assert!(Eligibility::everyone().admits(Sex::Other, AgeGroup::Under5));
    assert_eq!(health_spec().category, ServiceCategory::Health);
}

#[test]
fn display_names_are_trimmed_and_bounded() {
    assert_eq!(DisplayName::parse("  Test NGO ").expect("name").as_str(), "Test NGO");
    assert!(DisplayName::parse("   ").is_err());
    assert!(DisplayName::parse(&"x".repeat(201)).is_err());
    assert!(DisplayName::parse("bad\u{7}name").is_err());
}

fn supervisor_of_provider() -> wasl_domain::Context {
    let mut ctx = focal_point();
    ctx.actor.roles = vec![wasl_domain::Role::Supervisor];
    ctx
}

#[test]
fn events_that_do_not_start_an_organisation_build_nothing() {
    assert_eq!(
        Organisation::replay(&[E::ServiceRetired {
            service_id: health_service()
        }]),
        Organisation::default()
    );
}
