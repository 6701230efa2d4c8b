//! A world built command by command, for the scenarios of the query tests.

use wasl_domain::case::{Case, CaseCommand, OpenCase};
use wasl_domain::catalogue::{Decline, DeclineCode, Priority, Reason, ServiceCategory};
use wasl_domain::client::Language;
use wasl_domain::directory::{DisplayName, Eligibility, OrgKind, Organisation, OrganisationCommand};
use wasl_domain::geo::{Governorate, Location};
use wasl_domain::ids::{CaseId, CommandId, ConsentId, OrgId, ServiceId, uuid_v7_from_parts};
use wasl_domain::pii::PersonalData;
use wasl_domain::referral::{ReferralCommand, RequestReferral};
use wasl_domain::testing::{self, actor, any_consent, id, profile};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Context, Role};
use wasl_events::{EventMeta, StoredEvent};
use wasl_projections::apply::Entry;
use wasl_projections::{Projection, ReadModels};
use wasl_store::{StoredAggregate, event_id};

/// Records commands as the store would: decided by the domain at a clock that moves a minute
/// per command, wrapped with metadata, numbered in log order, projected on `publish`.
pub struct World {
    now: Timestamp,
    seq: u64,
    commands: u8,
    pending: Vec<Entry>,
}

impl World {
    pub fn new() -> Self {
        Self {
            now: testing::T0,
            seq: 0,
            commands: 0,
            pending: Vec::new(),
        }
    }

    #[track_caller]
    pub fn run<A: StoredAggregate>(&mut self, state: &mut A, id: A::Id, command: A::Command, actor: &Actor) {
        self.now = self.now.plus_millis(60_000);
        self.commands = self.commands.wrapping_add(1);
        let command_id = CommandId::try_from(uuid_v7_from_parts(self.now.unix_millis() as u64, [self.commands; 10]))
            .expect("a v7 uuid");
        let ctx = Context {
            now: self.now,
            actor: actor.clone(),
        };
        let events = state
            .decide(&command, &ctx)
            .unwrap_or_else(|e| panic!("the domain refused a command of the scenario: {e:?}"));
        for (index, event) in events.into_iter().enumerate() {
            *state = std::mem::take(state).evolve(&event);
            self.seq += 1;
            let stored = StoredEvent {
                meta: EventMeta {
                    event_id: event_id(command_id, self.now, index),
                    command_id,
                    occurred_at: self.now,
                    actor: actor.clone(),
                },
                event: A::wrap(id, event),
            };
            self.pending.push(Entry::of(self.seq, stored));
        }
    }

    /// Sets the clock so that the next command runs at `at`.
    pub fn at(&mut self, at: Timestamp) {
        self.now = at.plus_millis(-60_000);
    }

    /// The time the last command ran at.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The events recorded since the last `publish` or `events`, in log order.
    pub fn events(&mut self) -> Vec<StoredEvent> {
        std::mem::take(&mut self.pending)
            .into_iter()
            .map(|entry| entry.event.expect("a recorded event"))
            .collect()
    }

    pub async fn publish(&mut self, models: &ReadModels) {
        let entries = std::mem::take(&mut self.pending);
        models.project(Projection::ALL, &entries).await.expect("project");
    }
}

pub fn name(text: &str) -> DisplayName {
    DisplayName::parse(text).expect("a display name")
}

pub fn languages(tags: &[&str]) -> Vec<Language> {
    tags.iter()
        .map(|t| Language::parse(t).expect("a language tag"))
        .collect()
}

pub fn spec(
    title: &str,
    category: ServiceCategory,
    areas: Vec<Location>,
    tags: &[&str],
) -> wasl_domain::directory::ServiceSpec {
    wasl_domain::directory::ServiceSpec {
        name: name(title),
        category,
        areas,
        languages: languages(tags),
        eligibility: Eligibility::everyone(),
    }
}

pub fn whole(governorate: Governorate) -> Location {
    Location::governorate_only(governorate)
}

pub fn admin() -> Actor {
    actor(id(200), id(9), Role::Admin)
}

/// Registers an organisation with services (`(n, spec)`: the service id is `id(n)`).
pub fn register(
    world: &mut World,
    org_id: OrgId,
    title: &str,
    kind: OrgKind,
    services: Vec<(u8, wasl_domain::directory::ServiceSpec)>,
) -> Organisation {
    let mut org = Organisation::default();
    world.run(
        &mut org,
        org_id,
        OrganisationCommand::Register {
            org_id,
            name: name(title),
            kind,
        },
        &admin(),
    );
    for (n, spec) in services {
        world.run(
            &mut org,
            org_id,
            OrganisationCommand::AddService {
                service_id: id(n),
                spec,
            },
            &admin(),
        );
    }
    org
}

pub fn consenting_case(world: &mut World, case_id: CaseId, caseworker: &Actor) -> Case {
    consenting_case_in(world, case_id, caseworker, whole(Governorate::Ninawa))
}

/// A case of a client living at `location`, with consent to anything in the pathway.
pub fn consenting_case_in(world: &mut World, case_id: CaseId, caseworker: &Actor, location: Location) -> Case {
    let mut case = Case::default();
    let mut profile = profile("SYN-900001");
    profile.location = location;
    world.run(
        &mut case,
        case_id,
        CaseCommand::Open(OpenCase {
            case_id,
            caseworker: None,
            profile,
            personal: PersonalData::default(),
        }),
        caseworker,
    );
    world.run(
        &mut case,
        case_id,
        CaseCommand::GiveConsent {
            consent_id: id::<ConsentId>(40),
            scope: any_consent(),
        },
        caseworker,
    );
    case
}

pub fn referral_request(n: u8, case: &Case, provider: &Organisation, service: ServiceId) -> ReferralCommand {
    ReferralCommand::Request(Box::new(RequestReferral {
        referral_id: id(n),
        case: case.clone(),
        provider: provider.clone(),
        service_id: service,
        priority: Priority::Urgent,
        redirected_from: None,
        consent_override: None,
        notes: None,
    }))
}

pub fn decline(code: DeclineCode, suggested_org: Option<OrgId>) -> ReferralCommand {
    ReferralCommand::Reject(Decline {
        reason: Reason::coded(code),
        suggested_org,
    })
}
