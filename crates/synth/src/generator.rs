//! The history generator: a synthetic network of organisations whose caseworkers open cases and
//! make referrals, whose focal points answer them, and whose deadlines pass — every event decided
//! by the domain's `decide` on the state `evolve` built, like the command handler does.
//!
//! How it works: a set of *active* aggregates (open cases and referrals still moving). Each step
//! runs a queued process-manager command if there is one (cancellations after a close or a
//! consent withdrawal, and the directory set-up at the start), sometimes maintains the directory,
//! sometimes opens a new case, and otherwise picks an active aggregate at random, lists what makes
//! sense for it (with weights), and tries those commands with `decide` until one is accepted: a
//! refusal only means the next one is tried. Time moves on by a random amount with every step,
//! on average 12 hours divided by the number of active aggregates, so each case and referral is
//! looked at about twice a day however large the history is, and deadlines pass as they would.

use crate::data::{self, Vocabulary};
use crate::outcomes::{self, Step};
use crate::rng::Rng;
use std::collections::{BTreeMap, HashMap, VecDeque};
use uuid::Uuid;
use wasl_domain::case::{Case, CaseCommand, CaseStatus, CloseCase, OpenCase};
use wasl_domain::catalogue::{
    CancelCode, Decline, DeclineCode, EraseCode, ErrorCode, OverrideCode, Priority, Reason, ServiceCategory,
};
use wasl_domain::directory::{OrgKind, Organisation, OrganisationCommand};
use wasl_domain::geo::Governorate;
use wasl_domain::ids::{CaseId, CommandId, ConsentId, OrgId, ReferralId, ServiceId, UserId, uuid_v7_from_parts};
use wasl_domain::pii::KeyId;
use wasl_domain::referral::{
    ConsentBasis, FollowUp, OverdueKind, Referral, ReferralCommand, ReferralStatus, RequestReferral, Satisfaction,
};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Context, DomainError, Role, ValidationError};
use wasl_events::{EventMeta, StoredEvent};
use wasl_store::StoredAggregate;

/// 2026-01-01T00:00:00Z, the default time of the first event.
const DEFAULT_START: Timestamp = Timestamp::from_unix_millis(1_767_225_600_000);
const HOUR: u64 = 3_600_000;
/// How often, on average, each active case or referral sees a command.
const CADENCE_MS: u64 = 12 * HOUR;

/// What history to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Seeds every random choice: the same configuration gives byte-identical events.
    pub seed: u64,
    /// Organisations in the directory (at least 1), each registered with 1–4 services; together
    /// they cover every service category when there are enough of them (3 or more), and work
    /// in several governorates and languages. The first one also coordinates: the coordinator,
    /// the admin and Wasl's own system account belong to it.
    pub organisations: usize,
    /// How many referrals to request in total (redirects' follow-on referrals included). A case
    /// that cannot place its referrals gives them up, so a few may be missing.
    pub referrals: usize,
    /// The time of the first event. Time then moves on by a random step each time the network
    /// acts: seconds to minutes while many cases are active, up to hours while few are.
    pub start: Timestamp,
    /// Keep the final states of finished cases and their referrals. When false only aggregates
    /// still active (and all organisations) are kept: the memory-lean mode for histories of a
    /// million events.
    pub keep_states: bool,
}

impl HistoryConfig {
    /// `referrals` referrals among 12 organisations, from 2026-01-01T00:00:00Z, keeping states.
    pub fn new(seed: u64, referrals: usize) -> Self {
        Self {
            seed,
            organisations: 12,
            referrals,
            start: DEFAULT_START,
            keep_states: true,
        }
    }
}

/// Generates a history: an iterator over [`StoredEvent`]s in log order, each with the metadata
/// the store would give it (a UUIDv7 command id drawn from the seed and the time, the event id of
/// [`wasl_store::event_id`], the time and the actor). It ends when every referral's lifecycle
/// has ended; some referrals and cases are left open on purpose.
#[derive(Debug)]
pub struct Generator {
    config: HistoryConfig,
    rng: Rng,
    vocabulary: Vocabulary,
    now: Timestamp,
    /// No command was recorded yet: the first one happens at `config.start`.
    first: bool,
    done: bool,
    out: VecDeque<StoredEvent>,
    orgs: Vec<OrgInfo>,
    org_index: HashMap<OrgId, usize>,
    /// Every governorate some service works in, where most clients live.
    places: Vec<Governorate>,
    coordinator: Actor,
    admin: Actor,
    system: Actor,
    organisations: BTreeMap<OrgId, Organisation>,
    cases: BTreeMap<CaseId, Case>,
    referrals: BTreeMap<ReferralId, Referral>,
    case_tracks: HashMap<CaseId, CaseTrack>,
    referral_tracks: HashMap<ReferralId, ReferralTrack>,
    active: Vec<Entry>,
    pending: VecDeque<Job>,
    /// Referrals not yet planned by any case.
    unplanned: usize,
    /// Referrals requested so far.
    requested: usize,
    target_active: usize,
    cases_opened: u64,
    milestones: usize,
    retired: usize,
    service_revisions: u32,
}

/// One organisation of the network and its people.
#[derive(Debug, Clone)]
struct OrgInfo {
    id: OrgId,
    number: usize,
    kind: OrgKind,
    renamed: u32,
    governorates: Vec<Governorate>,
    caseworkers: Vec<UserId>,
    supervisor: UserId,
    focal_point: UserId,
    partner_system: Option<UserId>,
}

/// An aggregate that can still change.
#[derive(Debug, Clone, Copy)]
enum Entry {
    Case(CaseId),
    Referral(ReferralId),
}

/// What the generator remembers about an active case besides its state.
#[derive(Debug, Clone)]
struct CaseTrack {
    org: usize,
    key: KeyId,
    /// Referrals still to make.
    planned: usize,
    referrals: Vec<ReferralId>,
    /// Referrals declined as redirected, with the suggested organisation, awaiting a follow-on.
    redirects: Vec<(ReferralId, OrgId)>,
    /// Referrals of the case still in the active set.
    active_referrals: usize,
    will_close: bool,
    /// One of its referrals was completed.
    served: bool,
    reopened: bool,
    failures: u32,
}

/// What the generator remembers about an active referral besides its state.
#[derive(Debug, Clone, Copy)]
struct ReferralTrack {
    requested_at: Timestamp,
    ended_at: Option<Timestamp>,
}

/// A command queued for the next steps: the directory's set-up, and the process managers'
/// cancellations.
#[derive(Debug, Clone)]
enum Job {
    Directory {
        org: OrgId,
        command: OrganisationCommand,
        actor: Actor,
    },
    Cancel {
        referral: ReferralId,
        code: CancelCode,
    },
}

/// How fast time moves for a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pace {
    /// A person's next action somewhere in the network.
    Normal,
    /// A machine's reaction or a set-up script: seconds.
    Quick,
}

/// Who acts on a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Receiving,
    Referring,
    ReferringSupervisor,
    System,
    Coordinator,
}

/// A choice when an active referral is picked.
#[derive(Debug, Clone)]
enum ReferralMove {
    Do(ReferralCommand, Who),
    /// A command built only once chosen (it draws reasons and sealed texts).
    Build(Lazy, Who),
    Wait,
    /// Leave it open for good.
    Stall,
    /// Its lifecycle is over.
    Finish,
}

/// A referral command whose details are drawn only when it is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lazy {
    Reject,
    Cancel,
    EnteredInError,
    Hold,
    Fail,
    FollowUp,
}

/// A choice when an active case is picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaseMove {
    GiveConsent,
    Request,
    FollowOn,
    Narrow,
    Withdraw,
    UpdateProfile,
    UpdatePersonalData,
    Assign,
    CloseEarly,
    Close,
    LeaveOpen,
    Reopen,
    Erase,
    Finish,
    Wait,
}

/// A change to the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Maintenance {
    Availability,
    UpdateService,
    UpdateOrganisation,
    AddService,
    Retire,
}

/// Directory changes forced at fractions (in per mille) of the referrals requested, so that
/// every kind appears in any history of more than a handful of referrals.
const MILESTONES: &[(usize, Maintenance)] = &[
    (150, Maintenance::UpdateOrganisation),
    (250, Maintenance::UpdateService),
    (350, Maintenance::Availability),
    (450, Maintenance::Availability),
    (600, Maintenance::AddService),
    (750, Maintenance::Retire),
];

const FOLLOW_UP_DUE_HOURS: u64 = 72;

impl Generator {
    /// A generator for `config`. The directory's set-up is queued; nothing is decided until the
    /// first event is asked for.
    pub fn new(config: HistoryConfig) -> Self {
        let mut rng = Rng::new(config.seed);
        let vocabulary = Vocabulary::new();
        let start = config.start;
        let count = config.organisations.max(1);
        let id_at = |rng: &mut Rng| new_uuid(rng, start);
        let orgs: Vec<OrgInfo> = (0..count)
            .map(|n| {
                let caseworkers = (0..rng.between(2, 4)).map(|_| user(id_at(&mut rng))).collect();
                OrgInfo {
                    id: org(id_at(&mut rng)),
                    number: n + 1,
                    kind: if n == 0 {
                        OrgKind::UnAgency
                    } else {
                        *rng.weighted(&[
                            (OrgKind::InternationalNgo, 35),
                            (OrgKind::NationalNgo, 45),
                            (OrgKind::Government, 15),
                            (OrgKind::Other, 5),
                        ])
                    },
                    renamed: 0,
                    governorates: {
                        let n = rng.between(2, 4) as usize;
                        data::governorates(&mut rng, n)
                    },
                    caseworkers,
                    supervisor: user(id_at(&mut rng)),
                    focal_point: user(id_at(&mut rng)),
                    partner_system: rng.chance_per_mille(400).then(|| user(id_at(&mut rng))),
                }
            })
            .collect();
        let hub = orgs[0].id;
        let person = |rng: &mut Rng, role: Role| Actor {
            user: user(new_uuid(rng, start)),
            org: hub,
            roles: vec![role],
        };
        let coordinator = person(&mut rng, Role::Coordinator);
        let admin = person(&mut rng, Role::Admin);
        let system = person(&mut rng, Role::System);
        let mut places: Vec<Governorate> = orgs.iter().flat_map(|o| o.governorates.iter().copied()).collect();
        places.sort();
        places.dedup();
        let org_index = orgs.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
        let target_active = (config.referrals / 40).clamp(24, 2_000);
        let mut generator = Self {
            rng,
            vocabulary,
            now: start,
            first: true,
            done: false,
            out: VecDeque::new(),
            orgs,
            org_index,
            places,
            coordinator,
            admin,
            system,
            organisations: BTreeMap::new(),
            cases: BTreeMap::new(),
            referrals: BTreeMap::new(),
            case_tracks: HashMap::new(),
            referral_tracks: HashMap::new(),
            active: Vec::new(),
            pending: VecDeque::new(),
            unplanned: config.referrals,
            requested: 0,
            target_active,
            cases_opened: 0,
            milestones: 0,
            retired: 0,
            service_revisions: 0,
            config,
        };
        generator.queue_directory_set_up();
        generator
    }

    /// Final (or current) domain states of every case generated so far; complete only when
    /// [`HistoryConfig::keep_states`] is set, otherwise only the cases still active.
    pub fn cases(&self) -> &BTreeMap<CaseId, Case> {
        &self.cases
    }

    /// Final (or current) domain states of every referral generated so far; complete only when
    /// [`HistoryConfig::keep_states`] is set, otherwise only the referrals of active cases.
    pub fn referrals(&self) -> &BTreeMap<ReferralId, Referral> {
        &self.referrals
    }

    /// Current domain states of every organisation (always complete).
    pub fn organisations(&self) -> &BTreeMap<OrgId, Organisation> {
        &self.organisations
    }

    /// Registers every organisation and adds its services: 1–4 each, the first ones covering
    /// every category.
    fn queue_directory_set_up(&mut self) {
        let count = self.orgs.len();
        let mut services: Vec<usize> = (0..count).map(|_| self.rng.between(1, 4) as usize).collect();
        let wanted = ServiceCategory::ALL.len().min(4 * count);
        while services.iter().sum::<usize>() < wanted {
            let i = self.rng.index(count);
            if services[i] < 4 {
                services[i] += 1;
            }
        }
        let mut categories = ServiceCategory::ALL.to_vec();
        // A random order of all categories first, then random ones.
        for i in (1..categories.len()).rev() {
            let j = self.rng.index(i + 1);
            categories.swap(i, j);
        }
        let mut next_category = 0;
        for (i, &n) in services.iter().enumerate() {
            let info = self.orgs[i].clone();
            let actor = if self.rng.chance_per_mille(500) {
                self.coordinator.clone()
            } else {
                self.admin.clone()
            };
            self.pending.push_back(Job::Directory {
                org: info.id,
                command: OrganisationCommand::Register {
                    org_id: info.id,
                    name: data::name(&format!("Synthetic Partner {:02}", info.number)),
                    kind: info.kind,
                },
                actor: actor.clone(),
            });
            for _ in 0..n {
                let category = categories
                    .get(next_category)
                    .copied()
                    .unwrap_or_else(|| *self.rng.pick(ServiceCategory::ALL));
                next_category += 1;
                let command = self.add_service_command(i, category);
                self.pending.push_back(Job::Directory {
                    org: info.id,
                    command,
                    actor: actor.clone(),
                });
            }
        }
    }

    fn add_service_command(&mut self, org: usize, category: ServiceCategory) -> OrganisationCommand {
        let info = &self.orgs[org];
        let spec = data::service_spec(
            &mut self.rng,
            &self.vocabulary,
            category,
            info.number,
            0,
            &info.governorates,
        );
        OrganisationCommand::AddService {
            service_id: service(new_uuid(&mut self.rng, self.now)),
            spec,
        }
    }

    // ---- time, ids and recording -------------------------------------------------------------

    /// Moves the clock on by a random step and returns the time of the next command (the start
    /// for the very first). Time passes with every step, also when nobody acts in it.
    fn tick(&mut self, pace: Pace) -> Timestamp {
        if self.first {
            return self.now;
        }
        let delta = match pace {
            Pace::Quick => self.rng.between(200, 30_000),
            Pace::Normal => {
                let mean = CADENCE_MS / self.active.len().max(1) as u64;
                let lo = (mean / 16).max(500);
                let k = self.rng.below(6);
                (lo << k) + self.rng.below(lo << k)
            }
        };
        self.now = self.now.plus_millis(delta as i64);
        self.now
    }

    /// Decides `command` on aggregate `id` at `now` as `actor`; on success applies and emits the
    /// events.
    fn record<A>(&mut self, id: A::Id, command: &A::Command, actor: &Actor, now: Timestamp) -> Result<(), DomainError>
    where
        A: Tracked,
    {
        let context = Context {
            now,
            actor: actor.clone(),
        };
        let states = A::states(self);
        let events = match states.get(&id) {
            Some(state) => state.decide(command, &context)?,
            None => A::default().decide(command, &context)?,
        };
        let state = states.entry(id).or_default();
        *state = events.iter().fold(std::mem::take(state), |s, e| s.evolve(e));
        let command_id: CommandId = typed(new_uuid(&mut self.rng, now));
        for (index, event) in events.into_iter().enumerate() {
            self.out.push_back(StoredEvent {
                meta: EventMeta {
                    event_id: wasl_store::event_id(command_id, now, index),
                    command_id,
                    occurred_at: now,
                    actor: context.actor.clone(),
                },
                event: A::wrap(id, event),
            });
        }
        self.first = false;
        Ok(())
    }

    // ---- the step ------------------------------------------------------------------------------

    fn step(&mut self) {
        if let Some(job) = self.pending.pop_front() {
            self.run_job(job);
            return;
        }
        if let Some(&(per_mille, kind)) = MILESTONES.get(self.milestones)
            && self.requested * 1000 >= per_mille * self.config.referrals.max(1)
            && self.requested > 0
        {
            self.milestones += 1;
            self.maintain(kind);
            return;
        }
        if self.rng.chance_per_mille(3) {
            let kind = *self.rng.weighted(&[
                (Maintenance::Availability, 75),
                (Maintenance::UpdateService, 12),
                (Maintenance::UpdateOrganisation, 5),
                (Maintenance::AddService, 5),
                (Maintenance::Retire, 3),
            ]);
            self.maintain(kind);
            return;
        }
        if self.unplanned > 0
            && (self.active.is_empty() || (self.active.len() < self.target_active && self.rng.chance_per_mille(300)))
        {
            self.open_case();
            return;
        }
        if self.active.is_empty() {
            self.done = self.unplanned == 0;
            return;
        }
        let slot = self.rng.index(self.active.len());
        match self.active[slot] {
            Entry::Case(id) => self.act_on_case(slot, id),
            Entry::Referral(id) => self.act_on_referral(slot, id),
        }
    }

    fn run_job(&mut self, job: Job) {
        let now = self.tick(Pace::Quick);
        match job {
            Job::Directory { org, command, actor } => {
                // The set-up is valid by construction; a refusal would only leave a gap.
                let _ = self.record::<Organisation>(org, &command, &actor, now);
            }
            Job::Cancel { referral, code } => {
                let system = self.system.clone();
                // Refused when the referral ended meanwhile: nothing to cancel then.
                let _ = self.record::<Referral>(referral, &ReferralCommand::Cancel(Reason::coded(code)), &system, now);
            }
        }
    }

    // ---- the directory -------------------------------------------------------------------------

    /// Live services: `(org index, service, category, accepting)`, in directory order.
    fn live_services(&self) -> Vec<(usize, ServiceId, ServiceCategory, bool)> {
        let mut out = Vec::new();
        for (org_id, org) in &self.organisations {
            let (Some(state), Some(&i)) = (org.state(), self.org_index.get(org_id)) else {
                continue;
            };
            for (id, s) in &state.services {
                if !s.retired {
                    out.push((i, *id, s.spec.category, s.accepting));
                }
            }
        }
        out
    }

    fn directory_actor(&mut self, org: usize, roles: &[Role]) -> Actor {
        let info = &self.orgs[org];
        let own: Vec<Actor> = roles
            .iter()
            .filter_map(|role| {
                let user = match role {
                    Role::Supervisor => Some(info.supervisor),
                    Role::FocalPoint => Some(info.focal_point),
                    Role::PartnerSystem => info.partner_system,
                    _ => None,
                }?;
                Some(Actor {
                    user,
                    org: info.id,
                    roles: vec![*role],
                })
            })
            .collect();
        if own.is_empty() || self.rng.chance_per_mille(250) {
            if self.rng.chance_per_mille(700) {
                self.coordinator.clone()
            } else {
                self.admin.clone()
            }
        } else {
            self.rng.pick(&own).clone()
        }
    }

    fn maintain(&mut self, kind: Maintenance) {
        let live = self.live_services();
        if live.is_empty() {
            return;
        }
        let now = self.tick(Pace::Normal);
        match kind {
            Maintenance::Availability => {
                // Reopen a closed service first; close one only when its category stays open
                // elsewhere; otherwise publish new capacity.
                let closed: Vec<_> = live.iter().filter(|s| !s.3).collect();
                let (org, service_id, accepting, capacity) = if !closed.is_empty() && self.rng.chance_per_mille(600) {
                    let s = *self.rng.pick(&closed);
                    (
                        s.0,
                        s.1,
                        true,
                        self.rng.chance_per_mille(600).then(|| self.rng.between(1, 40) as u32),
                    )
                } else {
                    let s = *self.rng.pick(&live);
                    let others_open = live.iter().any(|o| o.1 != s.1 && o.2 == s.2 && o.3);
                    if s.3 && others_open && self.rng.chance_per_mille(450) {
                        (s.0, s.1, false, self.rng.chance_per_mille(500).then_some(0))
                    } else {
                        (s.0, s.1, true, Some(self.rng.between(0, 60) as u32))
                    }
                };
                let actor = self.directory_actor(org, &[Role::FocalPoint, Role::PartnerSystem, Role::Supervisor]);
                let command = OrganisationCommand::SetAvailability {
                    service_id,
                    accepting,
                    capacity,
                };
                let _ = self.record::<Organisation>(self.orgs[org].id, &command, &actor, now);
            }
            Maintenance::UpdateService => {
                let (org, service_id, category, _) = *self.rng.pick(&live);
                self.service_revisions += 1;
                let info = &self.orgs[org];
                let spec = data::service_spec(
                    &mut self.rng,
                    &self.vocabulary,
                    category,
                    info.number,
                    self.service_revisions,
                    &info.governorates,
                );
                let actor = self.directory_actor(org, &[Role::FocalPoint, Role::Supervisor]);
                let command = OrganisationCommand::UpdateService { service_id, spec };
                let _ = self.record::<Organisation>(self.orgs[org].id, &command, &actor, now);
            }
            Maintenance::UpdateOrganisation => {
                let org = self.rng.index(self.orgs.len());
                self.orgs[org].renamed += 1;
                let info = &self.orgs[org];
                let name = data::name(&format!(
                    "Synthetic Partner {:02} (renamed {})",
                    info.number, info.renamed
                ));
                let kind = if self.rng.chance_per_mille(300) && org != 0 {
                    *self
                        .rng
                        .pick(&[OrgKind::NationalNgo, OrgKind::InternationalNgo, OrgKind::Other])
                } else {
                    info.kind
                };
                self.orgs[org].kind = kind;
                let actor = self.directory_actor(org, &[Role::Supervisor]);
                let command = OrganisationCommand::Update { name, kind };
                let _ = self.record::<Organisation>(self.orgs[org].id, &command, &actor, now);
            }
            Maintenance::AddService => {
                // Organisations offer a handful of services, not dozens.
                let org = self.rng.index(self.orgs.len());
                if live.iter().filter(|s| s.0 == org).count() >= 6 {
                    return;
                }
                let category = *self.rng.pick(ServiceCategory::ALL);
                let command = self.add_service_command(org, category);
                let actor = self.directory_actor(org, &[Role::Supervisor, Role::FocalPoint]);
                let _ = self.record::<Organisation>(self.orgs[org].id, &command, &actor, now);
            }
            Maintenance::Retire => {
                // Late in the history only, a few at most, and never an organisation's last
                // service or a category's last open one: later requests still find services.
                let late = self.requested * 10 >= self.config.referrals * 6;
                if !late || self.retired >= (live.len() / 10).max(1) {
                    return;
                }
                let candidates: Vec<_> = live
                    .iter()
                    .filter(|s| {
                        live.iter().filter(|o| o.0 == s.0).count() > 1
                            && live.iter().any(|o| o.1 != s.1 && o.2 == s.2 && o.3)
                    })
                    .collect();
                if candidates.is_empty() {
                    return;
                }
                let (org, service_id, _, _) = **self.rng.pick(&candidates);
                let actor = self.directory_actor(org, &[Role::Supervisor]);
                let command = OrganisationCommand::RetireService { service_id };
                if self
                    .record::<Organisation>(self.orgs[org].id, &command, &actor, now)
                    .is_ok()
                {
                    self.retired += 1;
                }
            }
        }
    }

    // ---- cases ---------------------------------------------------------------------------------

    fn open_case(&mut self) {
        let org = self.rng.index(self.orgs.len());
        let planned = (self.rng.between(1, 3) as usize).min(self.unplanned);
        let now = self.tick(Pace::Normal);
        let case_id: CaseId = typed(new_uuid(&mut self.rng, now));
        let key = data::case_key(case_id);
        self.cases_opened += 1;
        let profile = data::profile(&mut self.rng, self.cases_opened, &self.places, &key);
        let personal = data::personal_data(&mut self.rng, &key);
        let info = &self.orgs[org];
        let (actor, caseworker) = if self.rng.chance_per_mille(800) {
            let user = *self.rng.pick(&info.caseworkers);
            (actor(user, info.id, Role::Caseworker), None)
        } else {
            let assigned = *self.rng.pick(&info.caseworkers);
            (actor(info.supervisor, info.id, Role::Supervisor), Some(assigned))
        };
        let command = CaseCommand::Open(OpenCase {
            case_id,
            caseworker,
            profile,
            personal,
        });
        if self.record::<Case>(case_id, &command, &actor, now).is_ok() {
            self.unplanned -= planned;
            let will_close = self.rng.chance_per_mille(750);
            self.case_tracks.insert(
                case_id,
                CaseTrack {
                    org,
                    key,
                    planned,
                    referrals: Vec::new(),
                    redirects: Vec::new(),
                    active_referrals: 0,
                    will_close,
                    served: false,
                    reopened: false,
                    failures: 0,
                },
            );
            self.active.push(Entry::Case(case_id));
        }
    }

    /// The case's caseworker (usually) or the organisation's supervisor.
    fn case_actor(&mut self, case_id: CaseId, supervisor_per_mille: u64) -> Option<Actor> {
        let state = self.cases.get(&case_id)?.state()?;
        let info = &self.orgs[self.case_tracks.get(&case_id)?.org];
        Some(if self.rng.chance_per_mille(supervisor_per_mille) {
            actor(info.supervisor, info.id, Role::Supervisor)
        } else {
            actor(state.caseworker, info.id, Role::Caseworker)
        })
    }

    fn act_on_case(&mut self, slot: usize, case_id: CaseId) {
        let now = self.tick(Pace::Normal);
        let (Some(state), Some(track)) = (
            self.cases.get(&case_id).and_then(Case::state),
            self.case_tracks.get(&case_id),
        ) else {
            self.active.swap_remove(slot);
            return;
        };
        let active_consents = state
            .consents
            .values()
            .filter(|c| !c.withdrawn && c.scope.expires_at.is_none_or(|exp| now < exp))
            .count();
        let erased = state.personal_data_erased;
        let settled = track.planned == 0 && track.redirects.is_empty() && track.active_referrals == 0;
        let mut moves: Vec<(CaseMove, u32)> = Vec::new();
        match state.status {
            CaseStatus::Open => {
                let wants = track.planned > 0 || !track.redirects.is_empty();
                if active_consents == 0 {
                    moves.push((CaseMove::GiveConsent, if wants { 400 } else { 2 }));
                    if track.planned > 0 {
                        moves.push((CaseMove::Request, 10));
                    }
                } else {
                    moves.push((CaseMove::GiveConsent, 2));
                    moves.push((CaseMove::Narrow, 3));
                    moves.push((CaseMove::Withdraw, 1));
                    if track.planned > 0 {
                        moves.push((CaseMove::Request, 150));
                    }
                }
                if !track.redirects.is_empty() {
                    moves.push((CaseMove::FollowOn, 150));
                }
                if !erased {
                    moves.push((CaseMove::UpdateProfile, 2));
                    moves.push((CaseMove::UpdatePersonalData, 2));
                }
                if self.orgs[track.org].caseworkers.len() > 1 {
                    moves.push((CaseMove::Assign, 2));
                }
                if track.active_referrals > 0 {
                    moves.push((CaseMove::CloseEarly, 1));
                }
                if settled {
                    let close = if track.will_close {
                        CaseMove::Close
                    } else {
                        CaseMove::LeaveOpen
                    };
                    moves.push((close, 200));
                }
                moves.push((CaseMove::Wait, 200));
            }
            CaseStatus::Closed => {
                if !track.reopened {
                    moves.push((CaseMove::Reopen, 3));
                }
                if !erased {
                    moves.push((CaseMove::Erase, 5));
                }
                if track.active_referrals == 0 {
                    moves.push((CaseMove::Finish, 80));
                }
                moves.push((CaseMove::Wait, 12));
            }
        }
        while let Some(choice) = self.rng.take_weighted(&mut moves) {
            let done = match choice {
                CaseMove::Wait => true,
                CaseMove::LeaveOpen | CaseMove::Finish => {
                    self.settle_case(slot, case_id);
                    true
                }
                CaseMove::Request => self.request_referral(case_id, now, None),
                CaseMove::FollowOn => self.follow_on(case_id, now),
                other => self.case_command(case_id, other, now),
            };
            if done {
                return;
            }
        }
    }

    /// Tries one case command; true when it was recorded.
    fn case_command(&mut self, case_id: CaseId, choice: CaseMove, now: Timestamp) -> bool {
        let (Some(state), Some(track)) = (
            self.cases.get(&case_id).and_then(Case::state),
            self.case_tracks.get(&case_id),
        ) else {
            return false;
        };
        let key = track.key.clone();
        let org = track.org;
        let org_ids: Vec<OrgId> = self.orgs.iter().map(|o| o.id).collect();
        let active_consents: Vec<(ConsentId, wasl_domain::case::ConsentScope)> = state
            .consents
            .iter()
            .filter(|(_, c)| !c.withdrawn && c.scope.expires_at.is_none_or(|exp| now < exp))
            .map(|(id, c)| (*id, c.scope.clone()))
            .collect();
        let profile = state.profile.clone();
        let current_caseworker = state.caseworker;
        let open_referrals: Vec<ReferralId> = track
            .referrals
            .iter()
            .copied()
            .filter(|r| {
                self.referrals
                    .get(r)
                    .and_then(Referral::status)
                    .is_some_and(ReferralStatus::is_open)
            })
            .collect();
        let (command, actor) = match choice {
            CaseMove::GiveConsent => {
                let scope = data::consent_scope(&mut self.rng, &org_ids, now);
                let consent_id = typed(new_uuid(&mut self.rng, now));
                (
                    CaseCommand::GiveConsent { consent_id, scope },
                    self.case_actor(case_id, 100),
                )
            }
            CaseMove::Narrow => {
                let Some((consent_id, scope)) = active_consents.get(self.rng.index(active_consents.len())).cloned()
                else {
                    return false;
                };
                let Some(scope) = data::narrower(&mut self.rng, &scope, &org_ids, now) else {
                    return false;
                };
                (
                    CaseCommand::NarrowConsent { consent_id, scope },
                    self.case_actor(case_id, 100),
                )
            }
            CaseMove::Withdraw => {
                let Some((consent_id, _)) = active_consents.get(self.rng.index(active_consents.len())).cloned() else {
                    return false;
                };
                (
                    CaseCommand::WithdrawConsent { consent_id },
                    self.case_actor(case_id, 100),
                )
            }
            CaseMove::UpdateProfile => (
                CaseCommand::UpdateProfile(data::changed_profile(&mut self.rng, &profile, &self.places, &key)),
                self.case_actor(case_id, 150),
            ),
            CaseMove::UpdatePersonalData => (
                CaseCommand::UpdatePersonalData(data::personal_data(&mut self.rng, &key)),
                self.case_actor(case_id, 150),
            ),
            CaseMove::Assign => {
                let others: Vec<UserId> = self.orgs[org]
                    .caseworkers
                    .iter()
                    .copied()
                    .filter(|u| *u != current_caseworker)
                    .collect();
                if others.is_empty() {
                    return false;
                }
                let caseworker = *self.rng.pick(&others);
                (CaseCommand::Assign { caseworker }, self.case_actor(case_id, 500))
            }
            CaseMove::Close | CaseMove::CloseEarly => {
                let codes = if choice == CaseMove::Close {
                    outcomes::closes(track.served)
                } else {
                    outcomes::EARLY_CLOSES
                };
                let reason = data::reason(&mut self.rng, codes, &key);
                let close = CloseCase {
                    reason,
                    open_referrals: open_referrals.clone(),
                    cancel_open_referrals: true,
                };
                (CaseCommand::Close(close), self.case_actor(case_id, 200))
            }
            CaseMove::Reopen => {
                let reason = self.rng.chance_per_mille(500).then(|| data::text(&mut self.rng, &key));
                (CaseCommand::Reopen { reason }, self.case_actor(case_id, 300))
            }
            CaseMove::Erase => {
                let by_system = self.rng.chance_per_mille(300);
                let codes: &[(EraseCode, u32)] = if by_system {
                    &[(EraseCode::RetentionExpired, 1)]
                } else {
                    &[
                        (EraseCode::ClientRequest, 50),
                        (EraseCode::LegalOrder, 10),
                        (EraseCode::RecordedInError, 25),
                        (EraseCode::Other, 15),
                    ]
                };
                let reason = data::reason(&mut self.rng, codes, &key);
                let actor = if by_system {
                    Some(self.system.clone())
                } else {
                    self.case_actor(case_id, 1000)
                };
                (CaseCommand::ErasePersonalData { reason }, actor)
            }
            _ => return false,
        };
        let Some(actor) = actor else {
            return false;
        };
        if self.record::<Case>(case_id, &command, &actor, now).is_err() {
            return false;
        }
        // What follows from the recorded command.
        let org_id = self.orgs[org].id;
        match command {
            CaseCommand::Assign { caseworker } => {
                // A handover: the previous caseworker keeps seeing the case (need-to-know)
                // until it is closed. Already shared with them: nothing to record.
                let by = self::actor(caseworker, org_id, Role::Caseworker);
                let share = CaseCommand::Share {
                    user: current_caseworker,
                };
                let _ = self.record::<Case>(case_id, &share, &by, now);
            }
            CaseCommand::Close(close) => {
                for referral in close.open_referrals {
                    self.pending.push_back(Job::Cancel {
                        referral,
                        code: CancelCode::CaseClosed,
                    });
                }
                if let Some(track) = self.case_tracks.get_mut(&case_id) {
                    self.unplanned += track.planned;
                    track.planned = 0;
                    track.redirects.clear();
                }
                // A closed case is taken back from whoever it was shared with.
                if let Some(state) = self.cases.get(&case_id).and_then(Case::state) {
                    let by = self::actor(state.caseworker, org_id, Role::Caseworker);
                    let shared: Vec<UserId> = state.shared_with.iter().copied().collect();
                    for user in shared {
                        let _ = self.record::<Case>(case_id, &CaseCommand::Unshare { user }, &by, now);
                    }
                }
            }
            CaseCommand::WithdrawConsent { consent_id } => {
                for referral in open_referrals {
                    let covered = self
                        .referrals
                        .get(&referral)
                        .and_then(Referral::state)
                        .is_some_and(|r| r.consent == ConsentBasis::Consent(consent_id));
                    if covered {
                        self.pending.push_back(Job::Cancel {
                            referral,
                            code: CancelCode::ConsentWithdrawn,
                        });
                    }
                }
            }
            CaseCommand::Reopen { .. } => {
                if let Some(track) = self.case_tracks.get_mut(&case_id) {
                    track.reopened = true;
                    if self.unplanned > 0 {
                        self.unplanned -= 1;
                        track.planned += 1;
                    }
                }
            }
            _ => {}
        }
        true
    }

    /// Ends a case's part in the history: closed for good, or left open. Its referrals are all
    /// settled by now.
    fn settle_case(&mut self, slot: usize, case_id: CaseId) {
        self.active.swap_remove(slot);
        if let Some(track) = self.case_tracks.remove(&case_id) {
            self.unplanned += track.planned;
            if !self.config.keep_states {
                self.cases.remove(&case_id);
                for referral in &track.referrals {
                    self.referrals.remove(referral);
                    self.referral_tracks.remove(referral);
                }
            }
        }
    }

    /// Requests a referral for the case (to `to` only, when given); true when it was recorded.
    fn request_referral(&mut self, case_id: CaseId, now: Timestamp, follow: Option<(ReferralId, OrgId)>) -> bool {
        let made = self.try_request(case_id, now, follow);
        if let Some(track) = self.case_tracks.get_mut(&case_id)
            && !made
            && follow.is_none()
        {
            track.failures += 1;
            if track.failures > 8 {
                // Nothing fits this client: the case gives its remaining referrals up.
                track.planned = 0;
            }
        }
        made
    }

    fn try_request(&mut self, case_id: CaseId, now: Timestamp, follow: Option<(ReferralId, OrgId)>) -> bool {
        let (Some(case), Some(track)) = (self.cases.get(&case_id), self.case_tracks.get(&case_id)) else {
            return false;
        };
        let Some(state) = case.state() else {
            return false;
        };
        let owner = track.org;
        let priority = *self.rng.weighted(&[
            (Priority::Routine, 60),
            (Priority::Urgent, 30),
            (Priority::Emergency, 10),
        ]);
        let own_too = self.orgs.len() == 1 || self.rng.chance_per_mille(50);
        let (sex, age) = (state.profile.sex, state.profile.age_group);
        let mut candidates: Vec<(usize, ServiceId, ServiceCategory)> = Vec::new();
        for (org_id, org) in &self.organisations {
            let Some(&i) = self.org_index.get(org_id) else {
                continue;
            };
            let wanted = match follow {
                Some((_, to)) => *org_id == to,
                None => i != owner || own_too,
            };
            let Some(org_state) = org.state().filter(|_| wanted) else {
                continue;
            };
            for (id, s) in &org_state.services {
                if !s.retired && (s.accepting || priority == Priority::Emergency) {
                    candidates.push((i, *id, s.spec.category));
                }
            }
        }
        // Prefer services the client is eligible for; the domain leaves that to people.
        let eligible: Vec<_> = candidates
            .iter()
            .copied()
            .filter(|(i, id, _)| {
                self.organisations
                    .get(&self.orgs[*i].id)
                    .and_then(Organisation::state)
                    .and_then(|o| o.services.get(id))
                    .is_some_and(|s| s.spec.eligibility.admits(sex, age))
            })
            .collect();
        if !eligible.is_empty() && self.rng.chance_per_mille(900) {
            candidates = eligible;
        }
        let covered: Vec<_> = candidates
            .iter()
            .copied()
            .filter(|(i, _, category)| state.covering_consent(self.orgs[*i].id, *category, now).is_some())
            .collect();
        let key = track.key.clone();
        let (choice, consent_override) = if !covered.is_empty() {
            (*self.rng.pick(&covered), None)
        } else if !candidates.is_empty() && self.rng.chance_per_mille(400) {
            let codes = [
                (OverrideCode::LifeThreatening, 40),
                (OverrideCode::ChildBestInterest, 30),
                (OverrideCode::LacksCapacity, 20),
                (OverrideCode::Other, 10),
            ];
            (
                *self.rng.pick(&candidates),
                Some(data::reason(&mut self.rng, &codes, &key)),
            )
        } else {
            return false;
        };
        let (to, service_id, _) = choice;
        let actor = if consent_override.is_some() {
            let info = &self.orgs[owner];
            Some(actor(info.supervisor, info.id, Role::Supervisor))
        } else {
            self.case_actor(case_id, 150)
        };
        let Some(actor) = actor else {
            return false;
        };
        let referral_id: ReferralId = typed(new_uuid(&mut self.rng, now));
        let notes = self.rng.chance_per_mille(400).then(|| data::text(&mut self.rng, &key));
        let redirected_from = match follow {
            Some((earlier, _)) => self.referrals.get(&earlier).cloned(),
            None => None,
        };
        let request = RequestReferral {
            referral_id,
            case: self.cases.get(&case_id).cloned().unwrap_or_default(),
            provider: self.organisations.get(&self.orgs[to].id).cloned().unwrap_or_default(),
            service_id,
            priority,
            redirected_from,
            consent_override,
            notes,
        };
        let command = ReferralCommand::Request(Box::new(request));
        if self.record::<Referral>(referral_id, &command, &actor, now).is_err() {
            return false;
        }
        self.requested += 1;
        if let Some(track) = self.case_tracks.get_mut(&case_id) {
            if follow.is_none() {
                track.planned -= 1;
            }
            track.referrals.push(referral_id);
            track.active_referrals += 1;
        }
        self.referral_tracks.insert(
            referral_id,
            ReferralTrack {
                requested_at: now,
                ended_at: None,
            },
        );
        self.active.push(Entry::Referral(referral_id));
        true
    }

    /// Makes the follow-on referral of a redirect, to the suggested organisation. It counts
    /// against the referrals to make; with none left, the redirect ends there.
    fn follow_on(&mut self, case_id: CaseId, now: Timestamp) -> bool {
        let Some(track) = self.case_tracks.get_mut(&case_id) else {
            return false;
        };
        let Some(redirect) = track.redirects.pop() else {
            return false;
        };
        let budget = if track.planned > 0 {
            track.planned -= 1;
            true
        } else if self.unplanned > 0 {
            self.unplanned -= 1;
            true
        } else {
            false
        };
        if !budget {
            return false;
        }
        if self.try_request(case_id, now, Some(redirect)) {
            true
        } else {
            // The suggested organisation has nothing open for the client now: the caseworker
            // refers elsewhere instead, as a planned referral.
            if let Some(track) = self.case_tracks.get_mut(&case_id) {
                track.planned += 1;
            }
            false
        }
    }

    // ---- referrals -----------------------------------------------------------------------------

    fn act_on_referral(&mut self, slot: usize, referral_id: ReferralId) {
        let now = self.tick(Pace::Normal);
        let (Some(state), Some(track)) = (
            self.referrals.get(&referral_id).and_then(Referral::state),
            self.referral_tracks.get(&referral_id).copied(),
        ) else {
            self.active.swap_remove(slot);
            return;
        };
        let status = state.status;
        let (to, case_id) = (state.to_org, state.case_id);
        let kinds = [
            OverdueKind::Acknowledgement,
            OverdueKind::Decision,
            OverdueKind::FollowUp,
        ];
        let overdue = kinds.map(|k| state.overdue.contains(&k));
        let escalated = kinds.map(|k| state.escalated.contains(&k));
        let acknowledged = kinds.map(|k| state.acknowledged.contains(&k));
        let followed_up = state.followed_up;
        let (ack_hours, decision_hours) = match state.priority {
            Priority::Emergency => (2, 24),
            Priority::Urgent => (24, 72),
            Priority::Routine => (72, 168),
        };

        let mut moves: Vec<(ReferralMove, u32)> = Vec::with_capacity(12);
        let mut add = |w: u32, command: ReferralCommand, who: Who| moves.push((ReferralMove::Do(command, who), w));
        use ReferralStatus as S;
        // Deadlines passed and their escalation (the followup service's part).
        let ack_due = track.requested_at.plus_hours(ack_hours);
        let decision_due = track.requested_at.plus_hours(decision_hours);
        if status == S::Requested && !overdue[0] && now >= ack_due {
            add(
                40,
                ReferralCommand::MarkResponseOverdue {
                    kind: OverdueKind::Acknowledgement,
                    due_at: ack_due,
                },
                Who::System,
            );
        }
        if matches!(status, S::Requested | S::Received) && !overdue[1] && now >= decision_due {
            add(
                30,
                ReferralCommand::MarkResponseOverdue {
                    kind: OverdueKind::Decision,
                    due_at: decision_due,
                },
                Who::System,
            );
        }
        if matches!(status, S::Completed | S::Failed)
            && !followed_up
            && !overdue[2]
            && let Some(ended) = track.ended_at
        {
            let due = ended.plus_hours(FOLLOW_UP_DUE_HOURS as i64);
            if now >= due {
                add(40, ReferralCommand::MarkFollowUpOverdue { due_at: due }, Who::System);
            }
        }
        for (i, kind) in kinds.into_iter().enumerate() {
            if overdue[i] && !escalated[i] {
                add(30, ReferralCommand::Escalate { kind }, Who::System);
            }
            if escalated[i] && !acknowledged[i] {
                add(
                    25,
                    ReferralCommand::AcknowledgeEscalation { kind, note: None },
                    Who::Coordinator,
                );
            }
        }
        // Marking entered-in-error is rare: a few in a hundred referrals.
        let error = self.rng.chance_per_mille(300);
        // What the parties do next, from the outcome weights every synthetic referral follows,
        // and how often nothing happens yet (or ever: a stall leaves the referral open).
        let mut choices: Vec<(ReferralMove, u32)> = outcomes::next_steps(status, followed_up)
            .iter()
            .map(|(step, w)| (referral_move(*step), *w))
            .collect();
        let (wait, stall) = match status {
            S::Requested => (25, 2),
            S::Received => (20, 2),
            S::Accepted => (10, 2),
            S::InProgress => (15, 2),
            S::OnHold => (15, 3),
            S::Completed | S::Failed if !followed_up => (35, 0),
            _ => (0, 0),
        };
        if wait > 0 {
            choices.push((ReferralMove::Wait, wait));
        }
        if stall > 0 {
            choices.push((ReferralMove::Stall, stall));
        }
        if choices.is_empty() {
            let weight = if status == S::EnteredInError { 60 } else { 100 };
            choices.push((ReferralMove::Finish, weight));
        }
        if error && status != S::EnteredInError {
            choices.push((ReferralMove::Build(Lazy::EnteredInError, Who::ReferringSupervisor), 1));
        }
        moves.append(&mut choices);

        while let Some(choice) = self.rng.take_weighted(&mut moves) {
            let (command, who) = match choice {
                ReferralMove::Wait => return,
                ReferralMove::Stall => {
                    self.settle_referral(slot, referral_id, case_id, true);
                    return;
                }
                ReferralMove::Finish => {
                    self.settle_referral(slot, referral_id, case_id, false);
                    return;
                }
                ReferralMove::Do(command, who) => (command, who),
                ReferralMove::Build(lazy, who) => match self.build_referral_command(referral_id, lazy) {
                    Some(command) => (command, who),
                    None => continue,
                },
            };
            let Some(actor) = self.referral_actor(who, to, case_id) else {
                continue;
            };
            if self.record::<Referral>(referral_id, &command, &actor, now).is_ok() {
                self.after_referral_command(referral_id, case_id, &command, now);
                return;
            }
        }
    }

    /// Builds a command with a reason (sealed text sometimes) or a follow-up, once chosen.
    fn build_referral_command(&mut self, referral_id: ReferralId, lazy: Lazy) -> Option<ReferralCommand> {
        let state = self.referrals.get(&referral_id)?.state()?;
        let (to, from, category) = (state.to_org, state.from_org, state.category);
        let key = self.case_tracks.get(&state.case_id)?.key.clone();
        let rng = &mut self.rng;
        Some(match lazy {
            Lazy::Reject => {
                // Redirect to an organisation with an open service of the same category.
                let elsewhere: Vec<OrgId> = self
                    .organisations
                    .iter()
                    .filter(|(id, _)| **id != to && **id != from)
                    .filter(|(_, o)| {
                        o.state().is_some_and(|o| {
                            o.services
                                .values()
                                .any(|s| !s.retired && s.accepting && s.spec.category == category)
                        })
                    })
                    .map(|(id, _)| *id)
                    .collect();
                let code = outcomes::decline(rng, !elsewhere.is_empty());
                let suggested_org = (code == DeclineCode::Redirected).then(|| *rng.pick(&elsewhere));
                let decline = Decline {
                    reason: data::coded(rng, code, &key),
                    suggested_org,
                };
                ReferralCommand::Reject(decline)
            }
            Lazy::Cancel => ReferralCommand::Cancel(data::reason(rng, outcomes::CANCELS, &key)),
            Lazy::EnteredInError => ReferralCommand::MarkEnteredInError(data::reason(
                rng,
                &[
                    (ErrorCode::Duplicate, 35),
                    (ErrorCode::WrongCase, 20),
                    (ErrorCode::WrongOrganisation, 20),
                    (ErrorCode::TestData, 15),
                    (ErrorCode::Other, 10),
                ],
                &key,
            )),
            Lazy::Hold => ReferralCommand::Hold(data::reason(rng, outcomes::HOLDS, &key)),
            Lazy::Fail => ReferralCommand::Fail(data::reason(rng, outcomes::FAILS, &key)),
            Lazy::FollowUp => {
                let completed = state.status == ReferralStatus::Completed;
                ReferralCommand::RecordFollowUp(follow_up(rng, completed, &key))
            }
        })
    }

    fn referral_actor(&mut self, who: Who, to: OrgId, case_id: CaseId) -> Option<Actor> {
        Some(match who {
            Who::Receiving => {
                let info = &self.orgs[*self.org_index.get(&to)?];
                let mut people = vec![
                    (actor(info.focal_point, info.id, Role::FocalPoint), 60),
                    (actor(info.supervisor, info.id, Role::Supervisor), 10),
                    (actor(info.caseworkers[0], info.id, Role::Caseworker), 5),
                ];
                if let Some(machine) = info.partner_system {
                    people.push((actor(machine, info.id, Role::PartnerSystem), 40));
                }
                self.rng.weighted(&people).clone()
            }
            Who::Referring => self.case_actor(case_id, 150)?,
            Who::ReferringSupervisor => self.case_actor(case_id, 1000)?,
            Who::System => self.system.clone(),
            Who::Coordinator => self.coordinator.clone(),
        })
    }

    fn after_referral_command(
        &mut self,
        referral_id: ReferralId,
        case_id: CaseId,
        command: &ReferralCommand,
        now: Timestamp,
    ) {
        match command {
            ReferralCommand::Complete | ReferralCommand::Fail(_) => {
                if let Some(track) = self.referral_tracks.get_mut(&referral_id) {
                    track.ended_at = Some(now);
                }
                if matches!(command, ReferralCommand::Complete)
                    && let Some(track) = self.case_tracks.get_mut(&case_id)
                {
                    track.served = true;
                }
            }
            ReferralCommand::Reject(Decline {
                suggested_org: Some(org),
                ..
            }) => {
                if let Some(track) = self.case_tracks.get_mut(&case_id) {
                    track.redirects.push((referral_id, *org));
                }
            }
            _ => {}
        }
    }

    /// Takes a referral out of the active set: finished, or left open (stalled) on purpose.
    fn settle_referral(&mut self, slot: usize, referral_id: ReferralId, case_id: CaseId, stalled: bool) {
        self.active.swap_remove(slot);
        self.referral_tracks.remove(&referral_id);
        if let Some(track) = self.case_tracks.get_mut(&case_id) {
            track.active_referrals = track.active_referrals.saturating_sub(1);
            // A referral left hanging usually belongs to a case nobody closes.
            if stalled && self.rng.chance_per_mille(600) {
                track.will_close = false;
            }
        }
    }
}

/// The history of `referrals` referrals from the first seed, counting from 11, that leaves a
/// referral still waiting for its receipt, with its events: for the partner demos and tests that
/// answer one, whatever one seed's history holds. The same code always gives the same history.
pub fn history_with_a_waiting_referral(referrals: usize) -> (Generator, Vec<StoredEvent>) {
    let mut last = None;
    for seed in 11..111 {
        let mut generator = Generator::new(HistoryConfig::new(seed, referrals));
        let events: Vec<StoredEvent> = generator.by_ref().collect();
        let waits = generator
            .referrals()
            .values()
            .filter_map(Referral::state)
            .any(|s| s.status == ReferralStatus::Requested);
        if waits {
            return (generator, events);
        }
        last = Some((generator, events));
    }
    // A hundred histories without one is not a history a seed can change: give the last.
    last.unwrap_or_else(|| unreachable!("the range of seeds is not empty"))
}

impl Iterator for Generator {
    type Item = StoredEvent;

    fn next(&mut self) -> Option<StoredEvent> {
        loop {
            if let Some(event) = self.out.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            self.step();
        }
    }
}

/// How the generator carries out a step of the outcome weights.
fn referral_move(step: Step) -> ReferralMove {
    let receiving = |command| ReferralMove::Do(command, Who::Receiving);
    match step {
        Step::Receive => receiving(ReferralCommand::Receive),
        Step::Accept => receiving(ReferralCommand::Accept),
        Step::Decline => ReferralMove::Build(Lazy::Reject, Who::Receiving),
        Step::Cancel => ReferralMove::Build(Lazy::Cancel, Who::Referring),
        Step::Start => receiving(ReferralCommand::Start),
        Step::Hold => ReferralMove::Build(Lazy::Hold, Who::Receiving),
        Step::Resume => receiving(ReferralCommand::Resume),
        Step::Complete => receiving(ReferralCommand::Complete),
        Step::Fail => ReferralMove::Build(Lazy::Fail, Who::Receiving),
        Step::FollowUp => ReferralMove::Build(Lazy::FollowUp, Who::Referring),
        Step::NoFollowUp => ReferralMove::Finish,
    }
}

/// Follow-up as a caseworker records it, with a sealed note sometimes.
fn follow_up(rng: &mut Rng, completed: bool, key: &KeyId) -> FollowUp {
    let draw = outcomes::follow_up(rng, completed);
    FollowUp {
        client_reached: draw.client_reached,
        service_received: draw.service_received,
        satisfaction: draw.satisfaction.and_then(|s| Satisfaction::new(s).ok()),
        note: draw.with_note.then(|| data::text(rng, key)),
    }
}

/// Where each kind of aggregate's states live in the generator.
trait Tracked: StoredAggregate<Id: Ord> {
    fn states(generator: &mut Generator) -> &mut BTreeMap<Self::Id, Self>;
}

impl Tracked for Case {
    fn states(generator: &mut Generator) -> &mut BTreeMap<CaseId, Case> {
        &mut generator.cases
    }
}

impl Tracked for Referral {
    fn states(generator: &mut Generator) -> &mut BTreeMap<ReferralId, Referral> {
        &mut generator.referrals
    }
}

impl Tracked for Organisation {
    fn states(generator: &mut Generator) -> &mut BTreeMap<OrgId, Organisation> {
        &mut generator.organisations
    }
}

fn actor(user: UserId, org: OrgId, role: Role) -> Actor {
    Actor {
        user,
        org,
        roles: vec![role],
    }
}

/// A UUIDv7 at `at` with random bits from the generator's PRNG.
fn new_uuid(rng: &mut Rng, at: Timestamp) -> Uuid {
    let mut random = [0u8; 10];
    rng.fill(&mut random);
    uuid_v7_from_parts(u64::try_from(at.unix_millis()).unwrap_or(0), random)
}

/// A typed id from a UUIDv7 (which `uuid_v7_from_parts` always builds).
fn typed<T: TryFrom<Uuid, Error = ValidationError>>(uuid: Uuid) -> T {
    T::try_from(uuid).unwrap_or_else(|_| unreachable!("uuid_v7_from_parts builds version 7 UUIDs"))
}

fn user(uuid: Uuid) -> UserId {
    typed(uuid)
}

fn org(uuid: Uuid) -> OrgId {
    typed(uuid)
}

fn service(uuid: Uuid) -> ServiceId {
    typed(uuid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use wasl_events::EventType;

    #[test]
    fn a_ten_thousand_referral_history_has_every_event_type() {
        let mut seen = BTreeSet::new();
        let mut generator = Generator::new(HistoryConfig {
            keep_states: false,
            ..HistoryConfig::new(10, 10_000)
        });
        for event in generator.by_ref() {
            seen.insert(event.event.kind());
        }
        let missing: Vec<&str> = EventType::ALL
            .iter()
            .filter(|t| !seen.contains(t))
            .map(|t| t.as_str())
            .collect();
        assert!(missing.is_empty(), "never generated: {missing:?}");
    }
}
