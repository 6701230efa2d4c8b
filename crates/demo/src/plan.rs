//! The plan: every command of the demo, with its time, worked out from the seed before anything
//! is sent. Times are kept relative to the start of the window (midnight UTC, `days` before the
//! anchor's day) while planning, so the plan is a pure function of seed, days and anchor.

use crate::ids;
use crate::network::{LATE_PARTNER, ORGS, OrgDef, SHORT_OF_SERVICES, ServiceDef};
use std::collections::BTreeSet;
use wasl_domain::case::{ConsentScope, Scope};
use wasl_domain::catalogue::{
    CancelCode, CloseCode, DeclineCode, FailCode, HoldCode, Priority, ReasonCode, ServiceCategory,
};
use wasl_domain::client::{ClientProfile, Identifying, IdentifyingFacts, Language, SurvivorCode, Vulnerability};
use wasl_domain::geo::{District, Governorate, Location};
use wasl_domain::ids::{CaseId, ConsentId, OrgId, ReferralId, ServiceId};
use wasl_domain::referral::{OverdueKind, ReferralStatus};
use wasl_domain::time::Timestamp;
use wasl_synth::Rng;
use wasl_synth::outcomes::{self, FollowUpDraw};

pub(crate) const MINUTE: i64 = 60_000;
pub(crate) const HOUR: i64 = 60 * MINUTE;
pub(crate) const DAY: i64 = 24 * HOUR;
/// The directory is set up this long before the window starts.
pub(crate) const SETUP_LEAD_DAYS: i64 = 7;

/// A service of the plan.
#[derive(Debug, Clone)]
pub(crate) struct ServicePlan {
    pub id: ServiceId,
    pub org: usize,
    pub def: ServiceDef,
    pub category: ServiceCategory,
    /// From when (relative ms) it takes no new routine referrals.
    pub closed_from: Option<i64>,
}

/// A case of the plan.
#[derive(Debug, Clone)]
pub(crate) struct CasePlan {
    pub number: u32,
    pub id: CaseId,
    pub org: usize,
    pub profile: ClientProfile,
    pub consent_id: ConsentId,
    pub consent: ConsentScope,
    /// The district's name, for the synthetic address.
    pub place: &'static str,
    pub closed: bool,
}

/// A referral of the plan.
#[derive(Debug, Clone)]
pub(crate) struct ReferralPlan {
    pub id: ReferralId,
    pub case: usize,
    pub service: usize,
    pub priority: Priority,
    pub redirected_from: Option<usize>,
    pub with_notes: bool,
    /// The status after the planned steps up to the anchor.
    pub status: ReferralStatus,
    pub decline: Option<DeclineCode>,
    pub followed_up: bool,
}

/// A receiving-side step.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Move {
    Receive,
    Accept,
    Start,
    Hold(HoldCode),
    Resume,
    Complete,
    Fail(FailCode),
    Reject(DeclineCode, Option<usize>),
}

impl Move {
    fn label(self) -> &'static str {
        match self {
            Self::Receive => "receive",
            Self::Accept => "accept",
            Self::Start => "start",
            Self::Hold(_) => "hold",
            Self::Resume => "resume",
            Self::Complete => "complete",
            Self::Fail(_) => "fail",
            Self::Reject(..) => "reject",
        }
    }

    /// Its reason is `other`, which needs a (sealed) text.
    pub(crate) fn needs_text(self) -> bool {
        match self {
            Self::Hold(code) => code.needs_text(),
            Self::Fail(code) => code.needs_text(),
            Self::Reject(code, _) => code.needs_text(),
            _ => false,
        }
    }

    fn status(self) -> ReferralStatus {
        match self {
            Self::Receive => ReferralStatus::Received,
            Self::Accept => ReferralStatus::Accepted,
            Self::Start | Self::Resume => ReferralStatus::InProgress,
            Self::Hold(_) => ReferralStatus::OnHold,
            Self::Complete => ReferralStatus::Completed,
            Self::Fail(_) => ReferralStatus::Failed,
            Self::Reject(..) => ReferralStatus::Rejected,
        }
    }
}

/// One command to send.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Action {
    Register {
        org: usize,
    },
    AddService {
        service: usize,
    },
    SetAvailability {
        service: usize,
        accepting: bool,
        capacity: u32,
        change: u8,
    },
    OpenCase {
        case: usize,
    },
    GiveConsent {
        case: usize,
    },
    Request {
        referral: usize,
    },
    Respond {
        referral: usize,
        step: Move,
        /// How many times the referral took this step so far, this one included (a referral can
        /// be put on hold and resumed more than once).
        round: u8,
    },
    Cancel {
        referral: usize,
        code: CancelCode,
    },
    FollowUp {
        referral: usize,
        plan: FollowUpDraw,
    },
    /// The follow-up service records a missed response deadline (as the system).
    Overdue {
        referral: usize,
        kind: OverdueKind,
        /// The deadline: relative ms while planning, Unix ms in the plan's steps.
        due_at: i64,
    },
    /// The follow-up service escalates it to the coordinators.
    Escalate {
        referral: usize,
        kind: OverdueKind,
    },
    /// A coordinator acknowledges the escalation.
    AcknowledgeEscalation {
        referral: usize,
        kind: OverdueKind,
    },
    CloseCase {
        case: usize,
        code: CloseCode,
        by_supervisor: bool,
    },
}

impl Action {
    /// The label the command id is derived from: unique per command of the plan.
    pub(crate) fn label(&self) -> String {
        match self {
            Self::Register { org } => format!("cmd/org/{}/register", ORGS[*org].key),
            Self::AddService { service } => format!("cmd/service/{service}/add"),
            Self::SetAvailability { service, change, .. } => format!("cmd/service/{service}/availability/{change}"),
            Self::OpenCase { case } => format!("cmd/case/{case}/open"),
            Self::GiveConsent { case } => format!("cmd/case/{case}/consent"),
            Self::Request { referral } => format!("cmd/referral/{referral}/request"),
            Self::Respond {
                referral,
                step,
                round: 1,
                ..
            } => format!("cmd/referral/{referral}/{}", step.label()),
            Self::Respond { referral, step, round } => format!("cmd/referral/{referral}/{}/{round}", step.label()),
            Self::Cancel { referral, .. } => format!("cmd/referral/{referral}/cancel"),
            Self::FollowUp { referral, .. } => format!("cmd/referral/{referral}/follow-up"),
            Self::Overdue { referral, kind, .. } => format!("cmd/referral/{referral}/overdue/{kind}"),
            Self::Escalate { referral, kind } => format!("cmd/referral/{referral}/escalate/{kind}"),
            Self::AcknowledgeEscalation { referral, kind } => {
                format!("cmd/referral/{referral}/acknowledge-escalation/{kind}")
            }
            Self::CloseCase { case, .. } => format!("cmd/case/{case}/close"),
        }
    }
}

/// A command at its time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    pub at: Timestamp,
    pub action: Action,
}

/// Everything the demo sends.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub orgs: Vec<OrgId>,
    pub services: Vec<ServicePlan>,
    pub cases: Vec<CasePlan>,
    pub referrals: Vec<ReferralPlan>,
    pub steps: Vec<Step>,
}

/// Where the window starts for an anchor: midnight UTC, `days` before the anchor's day.
pub(crate) fn window_start(anchor: Timestamp, days: u32) -> i64 {
    anchor.unix_millis().div_euclid(DAY) * DAY - i64::from(days) * DAY
}

/// When the hub is registered, for an anchor; the anchor is found again from it.
pub(crate) fn hub_registered_at(anchor: Timestamp, days: u32) -> Timestamp {
    anchor.plus_millis(-(i64::from(days) + SETUP_LEAD_DAYS) * DAY)
}

/// The anchor a hub registered at `at` belongs to.
pub(crate) fn anchor_of(at: Timestamp, days: u32) -> Timestamp {
    at.plus_millis((i64::from(days) + SETUP_LEAD_DAYS) * DAY)
}

fn parse<T, E>(value: Result<T, E>, what: &str) -> T {
    match value {
        Ok(v) => v,
        Err(_) => panic!("the demo network's {what} is invalid"),
    }
}

pub(crate) fn language(tag: &str) -> Language {
    parse(Language::parse(tag), "language")
}

pub(crate) fn location(gov: &str, district: Option<&str>) -> Location {
    let gov = parse(Governorate::parse(gov), "governorate");
    let district = district.map(|d| parse(District::parse(d), "district"));
    parse(Location::new(gov, district), "location")
}

struct Planner {
    seed: u64,
    rng: Rng,
    /// Relative ms of the anchor: nothing at or after it is sent.
    end: i64,
    start: i64,
    plan: Plan,
    /// Steps with their relative time and insertion order.
    raw: Vec<(i64, usize, Action)>,
}

/// The vulnerabilities of a planned client, whose profile is in the clear until the loader
/// seals it.
fn vulnerabilities(profile: &ClientProfile) -> &[Vulnerability] {
    match &profile.identifying {
        Identifying::Clear(facts) => &facts.vulnerabilities,
        Identifying::Sealed(_) => &[],
    }
}

/// The client's age in years, as a range: one year when known exactly, else the band.
fn age_range(profile: &ClientProfile) -> (u8, u8) {
    match &profile.identifying {
        Identifying::Clear(IdentifyingFacts {
            age_years: Some(years), ..
        }) => (*years, *years),
        _ => profile.age_group.bounds(),
    }
}

/// A span of `lo..=hi` milliseconds (both at least 0).
fn millis(rng: &mut Rng, lo: i64, hi: i64) -> i64 {
    let lo = u64::try_from(lo).unwrap_or(0);
    let hi = u64::try_from(hi).unwrap_or(0).max(lo);
    i64::try_from(rng.between(lo, hi)).unwrap_or(i64::MAX)
}

/// Moves `t` into working hours (08:00–17:00 in Iraq, UTC+3) unless `urgent`.
fn office_hours(t: i64, rng: &mut Rng, urgent: bool) -> i64 {
    if urgent {
        return t;
    }
    let day = t.div_euclid(DAY) * DAY;
    let hour = t - day;
    if hour < 5 * HOUR {
        day + 5 * HOUR + millis(rng, 0, 3 * HOUR)
    } else if hour >= 14 * HOUR {
        day + DAY + 5 * HOUR + millis(rng, 0, 3 * HOUR)
    } else {
        t
    }
}

impl Planner {
    fn push(&mut self, at: i64, action: Action) {
        let order = self.raw.len();
        self.raw.push((at, order, action));
    }

    fn later(&mut self, t: i64, lo: i64, hi: i64, urgent: bool) -> i64 {
        let t = t + millis(&mut self.rng, lo, hi).max(MINUTE);
        office_hours(t, &mut self.rng, urgent)
    }

    /// When the receiving organisation answers something sent at `t`: eight times sooner for an
    /// urgent or emergency referral, and then at any hour; five times later for the late
    /// partner.
    fn respond(&mut self, t: i64, lo: i64, hi: i64, urgent: bool, late: bool) -> i64 {
        let (lo, hi) = if urgent { (lo / 8, hi / 8) } else { (lo, hi) };
        let (lo, hi) = if late { (lo * 5, hi * 5) } else { (lo, hi) };
        self.later(t, lo, hi, urgent)
    }

    fn directory(&mut self) {
        let hub_at = self.end - (i64::from(self.days()) + SETUP_LEAD_DAYS) * DAY;
        for (i, _) in ORGS.iter().enumerate() {
            // The hub first, at exactly `hub_registered_at`: the anchor is found again from it.
            self.push(
                hub_at + i64::try_from(i).unwrap_or(0) * 7 * MINUTE,
                Action::Register { org: i },
            );
        }
        let mut t = hub_at + 2 * HOUR;
        for service in 0..self.plan.services.len() {
            self.push(t, Action::AddService { service });
            self.push(
                t + 5 * MINUTE,
                Action::SetAvailability {
                    service,
                    accepting: true,
                    capacity: self.plan.services[service].def.capacity,
                    change: 0,
                },
            );
            t += 17 * MINUTE;
        }
        // Capacity moves during the window; one shelter fills up near the end.
        for service in 0..self.plan.services.len() {
            let def = self.plan.services[service].def;
            let mut capacity = def.capacity;
            for change in 1..=2u8 {
                if !self.rng.chance_per_mille(400) {
                    continue;
                }
                let third = (self.end - self.start) / 3;
                let at = office_hours(
                    self.start + i64::from(change) * third + millis(&mut self.rng, 0, 5 * DAY),
                    &mut self.rng,
                    false,
                );
                if at >= self.end - MINUTE {
                    continue;
                }
                let spread = u64::from(def.capacity / 3 + 1);
                let delta = u32::try_from(self.rng.below(spread)).unwrap_or(0) + 1;
                let next = if self.rng.chance_per_mille(500) {
                    capacity.saturating_sub(delta)
                } else {
                    capacity + delta
                };
                if next == capacity {
                    continue;
                }
                capacity = next;
                self.push(
                    at,
                    Action::SetAvailability {
                        service,
                        accepting: true,
                        capacity,
                        change,
                    },
                );
            }
            if def.closes_near_end {
                let at = self.end - 4 * DAY;
                self.plan.services[service].closed_from = Some(at);
                self.push(
                    at,
                    Action::SetAvailability {
                        service,
                        accepting: false,
                        capacity: 0,
                        change: 3,
                    },
                );
            }
        }
    }

    fn days(&self) -> u32 {
        u32::try_from((self.end - self.start) / DAY).unwrap_or(0)
    }

    /// A client of `org`'s caseworkers: living in one of its client areas, the rest drawn by
    /// synth's profile model.
    fn profile(&mut self, org: &OrgDef, number: u32) -> (ClientProfile, &'static str) {
        let Some(referring) = org.referring else {
            unreachable!("only referring organisations open cases")
        };
        let areas: Vec<((&str, &str), u32)> = referring.client_areas.iter().map(|(g, d, w)| ((*g, *d), *w)).collect();
        let (gov, district) = *self.rng.weighted(&areas);
        let home = location(gov, Some(district));
        let place = home.district().map_or("Iraq", |d| d.name_en());
        let survivor_code = parse(SurvivorCode::parse(&format!("DEMO-{number:06}")), "survivor code");
        (
            wasl_synth::profile::client_profile(&mut self.rng, survivor_code, home),
            place,
        )
    }

    /// The categories a client needs, most pressing first (at most three).
    fn needs(&mut self, profile: &ClientProfile) -> Vec<ServiceCategory> {
        let has = |v| vulnerabilities(profile).contains(&v);
        let (youngest, oldest) = age_range(profile);
        let mut needs = Vec::new();
        if has(Vulnerability::GbvSurvivor) {
            if self.rng.chance_per_mille(450) {
                needs.push(ServiceCategory::Health);
            }
            needs.push(ServiceCategory::Psychosocial);
            if self.rng.chance_per_mille(250) {
                needs.push(ServiceCategory::Shelter);
            }
            if self.rng.chance_per_mille(200) {
                needs.push(ServiceCategory::Legal);
            }
        }
        if has(Vulnerability::UnaccompaniedChild) || (oldest < 18 && self.rng.chance_per_mille(500)) {
            needs.push(ServiceCategory::ChildProtection);
        }
        if youngest >= 6 && oldest < 18 && self.rng.chance_per_mille(350) {
            needs.push(ServiceCategory::Education);
        }
        if has(Vulnerability::TraffickingSurvivor) || has(Vulnerability::DetentionSurvivor) {
            needs.push(ServiceCategory::Psychosocial);
            needs.push(ServiceCategory::Legal);
        }
        if has(Vulnerability::PerceivedAffiliation) {
            needs.push(ServiceCategory::Legal);
        }
        if has(Vulnerability::MissingDocumentation) {
            needs.push(if self.rng.chance_per_mille(700) {
                ServiceCategory::CivilDocumentation
            } else {
                ServiceCategory::Legal
            });
        }
        if has(Vulnerability::PregnantOrLactating)
            || has(Vulnerability::ChronicIllness)
            || has(Vulnerability::Disability)
            || has(Vulnerability::OlderPersonAtRisk)
        {
            needs.push(ServiceCategory::Health);
        }
        if has(Vulnerability::FemaleHeadedHousehold) {
            needs.push(if self.rng.chance_per_mille(650) {
                ServiceCategory::Cash
            } else {
                ServiceCategory::Livelihoods
            });
        }
        if needs.is_empty() {
            needs.push(*self.rng.weighted(&[
                (ServiceCategory::Cash, 3),
                (ServiceCategory::Livelihoods, 2),
                (ServiceCategory::Health, 3),
                (ServiceCategory::Legal, 1),
                (ServiceCategory::Psychosocial, 2),
                (ServiceCategory::Shelter, 1),
            ]));
        }
        let mut seen = BTreeSet::new();
        needs.retain(|c| seen.insert(*c));
        needs.truncate(3);
        needs
    }

    /// Whether the service is for the client: for a client whose age is known only by its
    /// band, for everyone in the band.
    fn admits(def: &ServiceDef, profile: &ClientProfile) -> bool {
        let (youngest, oldest) = age_range(profile);
        (def.sexes.is_empty() || def.sexes.contains(&profile.sex.code()))
            && def.min_age <= youngest
            && oldest <= def.max_age
    }

    fn covers(def: &ServiceDef, profile: &ClientProfile) -> bool {
        let gov = profile.location.governorate().code();
        def.areas.iter().any(|(g, _)| *g == gov)
    }

    /// The services of `category` for the client, from other organisations than `not`, that
    /// take it at `at`: those that work where the client lives if there are any.
    fn services_for(
        &self,
        category: ServiceCategory,
        profile: &ClientProfile,
        not: &[usize],
        at: i64,
        emergency: bool,
    ) -> Vec<usize> {
        let open = |s: &ServicePlan| emergency || s.closed_from.is_none_or(|from| at < from);
        let eligible: Vec<usize> = (0..self.plan.services.len())
            .filter(|i| {
                let s = &self.plan.services[*i];
                s.category == category && !not.contains(&s.org) && open(s) && Self::admits(&s.def, profile)
            })
            .collect();
        let near: Vec<usize> = eligible
            .iter()
            .copied()
            .filter(|i| Self::covers(&self.plan.services[*i].def, profile))
            .collect();
        if near.is_empty() { eligible } else { near }
    }

    /// One of [`Self::services_for`].
    fn choose_service(
        &mut self,
        category: ServiceCategory,
        profile: &ClientProfile,
        not: &[usize],
        at: i64,
        emergency: bool,
    ) -> Option<usize> {
        let pool = self.services_for(category, profile, not, at, emergency);
        (!pool.is_empty()).then(|| pool[self.rng.index(pool.len())])
    }

    fn cases(&mut self) {
        let span = self.end - self.start;
        let mut openings = Vec::new();
        for (org, def) in ORGS.iter().enumerate() {
            let Some(referring) = def.referring else { continue };
            let count = i64::from(referring.cases_per_100_days) * i64::from(self.days()) / 100;
            for _ in 0..count {
                let at = office_hours(
                    self.start + millis(&mut self.rng, 0, span - 2 * HOUR),
                    &mut self.rng,
                    false,
                );
                if at < self.end - HOUR {
                    openings.push((at, org));
                }
            }
        }
        openings.sort_unstable();
        for (index, (opened, org)) in openings.into_iter().enumerate() {
            self.case(index, opened, org);
        }
    }

    fn case(&mut self, index: usize, opened: i64, org: usize) {
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let (profile, place) = self.profile(&ORGS[org], number);
        let needs = self.needs(&profile);
        let consent_at = opened + millis(&mut self.rng, 3 * MINUTE, 15 * MINUTE);
        let case_index = self.plan.cases.len();
        let categories = if self.rng.chance_per_mille(700) {
            Scope::Any
        } else {
            Scope::Only(needs.iter().copied().collect())
        };
        self.plan.cases.push(CasePlan {
            number,
            id: ids::id(self.seed, &format!("case/{index}")),
            org,
            profile: profile.clone(),
            consent_id: ids::id(self.seed, &format!("consent/{index}")),
            consent: ConsentScope {
                categories,
                organisations: Scope::Any,
                expires_at: None,
            },
            place,
            closed: false,
        });
        self.push(opened, Action::OpenCase { case: case_index });
        self.push(consent_at, Action::GiveConsent { case: case_index });

        let mut t = consent_at;
        for (k, category) in needs.into_iter().enumerate() {
            let gap = if k == 0 {
                (30 * MINUTE, 30 * HOUR)
            } else {
                (2 * HOUR, 6 * DAY)
            };
            let emergency_need = category == ServiceCategory::Health
                && vulnerabilities(&profile).contains(&Vulnerability::GbvSurvivor)
                && self.rng.chance_per_mille(500);
            t = self.later(t, gap.0, gap.1, emergency_need);
            if t >= self.end - 10 * MINUTE {
                break;
            }
            let priority = if emergency_need {
                Priority::Emergency
            } else if self.rng.chance_per_mille(200) {
                Priority::Urgent
            } else {
                Priority::Routine
            };
            let Some(service) = self.choose_service(category, &profile, &[org], t, emergency_need) else {
                continue;
            };
            self.referral(case_index, service, priority, t, None, &profile);
        }
        // With the follow-on referrals of redirects.
        let all: Vec<usize> = (0..self.plan.referrals.len())
            .filter(|r| self.plan.referrals[*r].case == case_index)
            .collect();
        let last = all.iter().map(|r| self.last_step_of(*r)).max().unwrap_or(consent_at);
        let done = !all.is_empty()
            && all.iter().all(|r| {
                let plan = &self.plan.referrals[*r];
                plan.status.is_terminal()
                    && (plan.followed_up || !matches!(plan.status, ReferralStatus::Completed | ReferralStatus::Failed))
            });
        let close_at = self.later(last, 3 * DAY, 20 * DAY, false);
        if done && close_at < self.end - 10 * MINUTE && self.rng.chance_per_mille(650) {
            let any_completed = all
                .iter()
                .any(|r| self.plan.referrals[*r].status == ReferralStatus::Completed);
            let code = *self.rng.weighted(outcomes::closes(any_completed));
            let by_supervisor = ORGS[org].referring.is_some_and(|r| r.supervisor) && self.rng.chance_per_mille(300);
            self.plan.cases[case_index].closed = true;
            self.push(
                close_at,
                Action::CloseCase {
                    case: case_index,
                    code,
                    by_supervisor,
                },
            );
        }
    }

    /// What the follow-up service would have recorded about a referral requested at `t` with
    /// these `steps`, at the time it would have: a response deadline (acknowledgement,
    /// decision) of the default policy that passed while it still applied, and its escalation;
    /// a coordinator acknowledges six escalations in ten within two days. The steps stay in
    /// time order. (Progress and follow-up deadlines are left to the running service.)
    fn deadlines(
        &mut self,
        referral: usize,
        t: i64,
        category: ServiceCategory,
        priority: Priority,
        steps: &mut Vec<(i64, Action)>,
    ) {
        let windows = wasl_followup::DeadlinePolicy::default().windows(category, priority);
        let status_at = |steps: &[(i64, Action)], x: i64| {
            steps.iter().filter(|(at, _)| *at <= x).fold(
                ReferralStatus::Requested,
                |status, (_, action)| match action {
                    Action::Respond { step, .. } => step.status(),
                    Action::Cancel { .. } => ReferralStatus::Cancelled,
                    _ => status,
                },
            )
        };
        let millis = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        for (kind, window) in [
            (OverdueKind::Acknowledgement, windows.acknowledge),
            (OverdueKind::Decision, windows.decide),
        ] {
            let due_at = t.saturating_add(millis(window));
            let applies = |status| match kind {
                OverdueKind::Acknowledgement => status == ReferralStatus::Requested,
                _ => matches!(status, ReferralStatus::Requested | ReferralStatus::Received),
            };
            if due_at + 2 * MINUTE >= self.end || !applies(status_at(steps, due_at + 2 * MINUTE)) {
                continue;
            }
            steps.push((due_at + MINUTE, Action::Overdue { referral, kind, due_at }));
            steps.push((due_at + 2 * MINUTE, Action::Escalate { referral, kind }));
            if self.rng.chance_per_mille(600) {
                let at = self.later(due_at, HOUR, 2 * DAY, false);
                steps.push((at, Action::AcknowledgeEscalation { referral, kind }));
            }
        }
        steps.sort_by_key(|(at, _)| *at);
    }

    fn last_step_of(&self, referral: usize) -> i64 {
        self.raw
            .iter()
            .filter(|(_, _, a)| match a {
                Action::Request { referral: r }
                | Action::Respond { referral: r, .. }
                | Action::Cancel { referral: r, .. }
                | Action::FollowUp { referral: r, .. } => *r == referral,
                _ => false,
            })
            .map(|(t, _, _)| *t)
            .max()
            .unwrap_or(i64::MIN)
    }

    /// Plans one referral requested at `t` and its lifecycle up to the anchor (and, after a
    /// redirect, the referral that follows it).
    fn referral(
        &mut self,
        case: usize,
        service: usize,
        priority: Priority,
        t: i64,
        redirected_from: Option<usize>,
        profile: &ClientProfile,
    ) {
        let index = self.plan.referrals.len();
        self.plan.referrals.push(ReferralPlan {
            id: ids::id(self.seed, &format!("referral/{index}")),
            case,
            service,
            priority,
            redirected_from,
            with_notes: self.rng.chance_per_mille(600),
            status: ReferralStatus::Requested,
            decline: None,
            followed_up: false,
        });
        self.push(t, Action::Request { referral: index });
        let urgent = priority != Priority::Routine;
        let category = self.plan.services[service].category;
        let duration = match category {
            ServiceCategory::Health => (HOUR, 5 * DAY),
            ServiceCategory::Cash => (2 * DAY, 10 * DAY),
            ServiceCategory::Shelter => (DAY, 10 * DAY),
            _ => (2 * DAY, 14 * DAY),
        };

        // The referral's life, step by step from synth's outcome weights, until it ends or
        // passes the anchor; the steps at or after the anchor are not sent.
        let mut steps: Vec<(i64, Action)> = Vec::new();
        let mut now = t;
        let mut status = ReferralStatus::Requested;
        let late = ORGS[self.plan.services[service].org].key == LATE_PARTNER;
        let short = SHORT_OF_SERVICES.contains(&profile.location.governorate().code());
        while now < self.end {
            let next = outcomes::next_steps(status, false);
            if next.is_empty() {
                break;
            }
            let mut step = *self.rng.weighted(next);
            // Where services run short, six in ten are declined for capacity or the service not
            // being offered.
            let gap = short
                && matches!(status, ReferralStatus::Requested | ReferralStatus::Received)
                && step != outcomes::Step::Receive
                && self.rng.chance_per_mille(600);
            if gap {
                step = outcomes::Step::Decline;
            }
            let (at, action) = match step {
                outcomes::Step::Receive => (self.respond(now, HOUR, 48 * HOUR, urgent, late), Move::Receive),
                outcomes::Step::Accept => (self.respond(now, 2 * HOUR, 72 * HOUR, urgent, late), Move::Accept),
                outcomes::Step::Start => (self.respond(now, HOUR, 4 * DAY, urgent, late), Move::Start),
                outcomes::Step::Decline if gap => {
                    let code = if self.rng.chance_per_mille(600) {
                        DeclineCode::NoCapacity
                    } else {
                        DeclineCode::ServiceNotOffered
                    };
                    (
                        self.respond(now, 2 * HOUR, 72 * HOUR, urgent, late),
                        Move::Reject(code, None),
                    )
                }
                outcomes::Step::Decline => {
                    let at = self.respond(now, 2 * HOUR, 72 * HOUR, urgent, late);
                    // A redirect names another organisation's service that takes the client; the
                    // follow-on referral comes within three days, so it must still take it then.
                    let (from_org, to_org) = (self.plan.cases[case].org, self.plan.services[service].org);
                    let emergency = priority == Priority::Emergency;
                    let elsewhere = self.services_for(category, profile, &[from_org, to_org], at + 3 * DAY, emergency);
                    let code = outcomes::decline(&mut self.rng, !elsewhere.is_empty());
                    let suggested =
                        (code == DeclineCode::Redirected).then(|| elsewhere[self.rng.index(elsewhere.len())]);
                    (at, Move::Reject(code, suggested))
                }
                outcomes::Step::Cancel => {
                    let code = *self.rng.weighted(outcomes::CANCELS);
                    let at = self.later(now, 6 * HOUR, 6 * DAY, false);
                    steps.push((at, Action::Cancel { referral: index, code }));
                    break;
                }
                outcomes::Step::Hold => {
                    let code = *self.rng.weighted(outcomes::HOLDS);
                    (self.later(now, DAY, 7 * DAY, false), Move::Hold(code))
                }
                outcomes::Step::Resume => (self.later(now, 2 * DAY, 10 * DAY, false), Move::Resume),
                outcomes::Step::Complete => (self.later(now, duration.0, duration.1, urgent), Move::Complete),
                outcomes::Step::Fail => {
                    let code = *self.rng.weighted(outcomes::FAILS);
                    (self.later(now, 2 * DAY, 14 * DAY, false), Move::Fail(code))
                }
                outcomes::Step::FollowUp => {
                    let plan = outcomes::follow_up(&mut self.rng, status == ReferralStatus::Completed);
                    let at = self.later(now, 2 * DAY, 10 * DAY, false);
                    steps.push((at, Action::FollowUp { referral: index, plan }));
                    break;
                }
                outcomes::Step::NoFollowUp => break,
            };
            now = at;
            let round = steps
                .iter()
                .filter(|(_, a)| matches!(a, Action::Respond { step, .. } if step.label() == action.label()))
                .count();
            steps.push((
                at,
                Action::Respond {
                    referral: index,
                    step: action,
                    round: u8::try_from(round + 1).unwrap_or(u8::MAX),
                },
            ));
            status = action.status();
        }

        self.deadlines(index, t, category, priority, &mut steps);
        for (at, action) in steps {
            if at >= self.end - MINUTE {
                break;
            }
            let plan = &mut self.plan.referrals[index];
            match action {
                Action::Respond { step, .. } => {
                    plan.status = step.status();
                    if let Move::Reject(code, _) = step {
                        plan.decline = Some(code);
                    }
                }
                Action::Cancel { .. } => plan.status = ReferralStatus::Cancelled,
                Action::FollowUp { .. } => plan.followed_up = true,
                _ => {}
            }
            self.push(at, action);
            // A redirect: the referring caseworker asks the suggested organisation next.
            if let Action::Respond {
                step: Move::Reject(DeclineCode::Redirected, Some(alt)),
                ..
            } = action
            {
                let next = self.later(at, 2 * HOUR, 2 * DAY, urgent);
                if next < self.end - 10 * MINUTE {
                    self.referral(case, alt, priority, next, Some(index), profile);
                }
            }
        }
    }
}

/// Plans the demo for `seed`, `days` and the anchor (the end of the window).
pub(crate) fn build(seed: u64, days: u32, anchor: Timestamp) -> Plan {
    let start_abs = window_start(anchor, days);
    let end = anchor.unix_millis() - start_abs;
    let orgs: Vec<OrgId> = ORGS.iter().map(|o| ids::id(seed, &format!("org/{}", o.key))).collect();
    let mut services = Vec::new();
    for (org, def) in ORGS.iter().enumerate() {
        for (k, service) in def.services.iter().enumerate() {
            services.push(ServicePlan {
                id: ids::id(seed, &format!("service/{}/{k}", def.key)),
                org,
                def: *service,
                category: parse(ServiceCategory::parse(service.category), "service category"),
                closed_from: None,
            });
        }
    }
    let mut planner = Planner {
        seed,
        rng: Rng::new(seed),
        end,
        start: 0,
        plan: Plan {
            orgs,
            services,
            cases: Vec::new(),
            referrals: Vec::new(),
            steps: Vec::new(),
        },
        raw: Vec::new(),
    };
    planner.directory();
    planner.cases();
    let mut raw = std::mem::take(&mut planner.raw);
    raw.sort_unstable_by_key(|(t, order, _)| (*t, *order));
    let mut plan = planner.plan;
    plan.steps = raw
        .into_iter()
        .map(|(t, _, action)| Step {
            at: Timestamp::from_unix_millis(start_abs + t),
            // The one time an action carries, made absolute like the step's.
            action: match action {
                Action::Overdue { referral, kind, due_at } => Action::Overdue {
                    referral,
                    kind,
                    due_at: start_abs + due_at,
                },
                other => other,
            },
        })
        .collect();
    debug_assert_eq!(
        plan.steps.first().map(|s| s.at),
        Some(hub_registered_at(anchor, days)),
        "the hub is registered first"
    );
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::HUB;

    const ANCHOR: Timestamp = Timestamp::from_unix_millis(1_780_000_000_000);

    #[test]
    fn the_same_seed_plans_the_same_commands() {
        let a = build(7, 90, ANCHOR);
        let b = build(7, 90, ANCHOR);
        let labels = |p: &Plan| p.steps.iter().map(|s| (s.at, s.action.label())).collect::<Vec<_>>();
        assert_eq!(labels(&a), labels(&b));
    }

    #[test]
    fn every_command_has_its_own_label_and_nothing_lies_after_the_anchor() {
        let plan = build(42, 90, ANCHOR);
        let mut labels = BTreeSet::new();
        for step in &plan.steps {
            assert!(labels.insert(step.action.label()), "{} twice", step.action.label());
            assert!(step.at < ANCHOR);
        }
    }

    #[test]
    fn the_anchor_is_found_again_from_the_hub() {
        assert_eq!(anchor_of(hub_registered_at(ANCHOR, 90), 90), ANCHOR);
        let plan = build(1, 90, ANCHOR);
        assert_eq!(plan.steps[0].at, hub_registered_at(ANCHOR, 90));
        assert!(matches!(plan.steps[0].action, Action::Register { org: HUB }));
    }

    #[test]
    fn the_mix_holds_every_status_and_a_redirect() {
        let plan = build(crate::DemoConfig::DEFAULT_SEED, 90, ANCHOR);
        let statuses: BTreeSet<ReferralStatus> = plan.referrals.iter().map(|r| r.status).collect();
        for status in [
            ReferralStatus::Requested,
            ReferralStatus::Received,
            ReferralStatus::Accepted,
            ReferralStatus::InProgress,
            ReferralStatus::OnHold,
            ReferralStatus::Completed,
            ReferralStatus::Failed,
            ReferralStatus::Rejected,
            ReferralStatus::Cancelled,
        ] {
            assert!(statuses.contains(&status), "no referral is {status}");
        }
        assert!(plan.referrals.iter().any(|r| r.redirected_from.is_some()));
        assert!(
            plan.referrals
                .iter()
                .any(|r| r.decline == Some(DeclineCode::NoCapacity))
        );
        assert!(plan.cases.iter().any(|c| c.closed));
    }
}
