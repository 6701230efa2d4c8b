//! The plan: every command of the demo, with its time, worked out from the seed before anything
//! is sent. Times are kept relative to the start of the window (midnight UTC, `days` before the
//! anchor's day) while planning, so the plan is a pure function of seed, days and anchor.

use crate::ids;
use crate::network::{ORGS, OrgDef, ServiceDef};
use std::collections::BTreeSet;
use wasl_domain::case::{ConsentScope, Scope};
use wasl_domain::catalogue::{CancelCode, CloseCode, DeclineCode, FailCode, HoldCode, Priority, ServiceCategory};
use wasl_domain::client::{
    Age, ClientProfile, Language, Nationality, PopulationGroup, Sex, SurvivorCode, Vulnerability,
};
use wasl_domain::geo::{District, Governorate, Location};
use wasl_domain::ids::{CaseId, ConsentId, OrgId, ReferralId, ServiceId};
use wasl_domain::referral::{ReferralStatus, ServiceReceived};
use wasl_domain::time::Timestamp;
use wasl_synth::Rng;

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

/// Follow-up as the caseworker records it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FollowUpPlan {
    pub reached: bool,
    pub received: ServiceReceived,
    pub satisfaction: Option<u8>,
    pub with_note: bool,
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
    },
    Cancel {
        referral: usize,
        code: CancelCode,
    },
    FollowUp {
        referral: usize,
        plan: FollowUpPlan,
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
            Self::Respond { referral, step } => format!("cmd/referral/{referral}/{}", step.label()),
            Self::Cancel { referral, .. } => format!("cmd/referral/{referral}/cancel"),
            Self::FollowUp { referral, .. } => format!("cmd/referral/{referral}/follow-up"),
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

    fn profile(&mut self, org: &OrgDef, number: u32) -> (ClientProfile, &'static str) {
        let Some(referring) = org.referring else {
            unreachable!("only referring organisations open cases")
        };
        let areas: Vec<((&str, &str), u32)> = referring.client_areas.iter().map(|(g, d, w)| ((*g, *d), *w)).collect();
        let (gov, district) = *self.rng.weighted(&areas);
        let loc = location(gov, Some(district));
        let place = loc.district().map_or("Iraq", |d| d.name_en());
        let sex = *self
            .rng
            .weighted(&[(Sex::Female, 65), (Sex::Male, 33), (Sex::Undisclosed, 2)]);
        let years = match *self.rng.weighted(&[(0u8, 20), (1, 70), (2, 10)]) {
            0 => self.rng.between(3, 17),
            1 => self.rng.between(18, 59),
            _ => self.rng.between(60, 82),
        };
        let years = u8::try_from(years).unwrap_or(30);
        let group = match gov {
            "IQ-DA" | "IQ-AR" => *self.rng.weighted(&[
                (PopulationGroup::Idp, 45),
                (PopulationGroup::Refugee, 20),
                (PopulationGroup::Returnee, 10),
                (PopulationGroup::HostCommunity, 20),
                (PopulationGroup::Migrant, 5),
            ]),
            "IQ-NI" | "IQ-AN" => *self.rng.weighted(&[
                (PopulationGroup::Returnee, 50),
                (PopulationGroup::Idp, 30),
                (PopulationGroup::HostCommunity, 20),
            ]),
            "IQ-KI" => *self.rng.weighted(&[
                (PopulationGroup::Idp, 40),
                (PopulationGroup::Returnee, 35),
                (PopulationGroup::HostCommunity, 25),
            ]),
            _ => *self.rng.weighted(&[
                (PopulationGroup::HostCommunity, 40),
                (PopulationGroup::Idp, 25),
                (PopulationGroup::Returnee, 20),
                (PopulationGroup::Migrant, 15),
            ]),
        };
        let nationality = match group {
            PopulationGroup::Refugee => "SY",
            PopulationGroup::Migrant => *self.rng.weighted(&[("IR", 3), ("TR", 1), ("SY", 2), ("XX", 1)]),
            _ => "IQ",
        };
        let tag = match (gov, district, nationality) {
            (_, _, "SY") => *self.rng.weighted(&[("kmr", 1), ("ar", 1)]),
            (_, _, "IR") => "fa",
            (_, "sinjar", _) => *self.rng.weighted(&[("kmr", 7), ("ar", 3)]),
            ("IQ-DA", _, _) => *self.rng.weighted(&[("kmr", 6), ("ar", 4)]),
            ("IQ-AR", _, _) => *self.rng.weighted(&[("ckb", 4), ("ar", 5), ("kmr", 1)]),
            ("IQ-KI", _, _) => *self.rng.weighted(&[("ar", 5), ("ckb", 3), ("tr", 2)]),
            _ => "ar",
        };
        let mut vulnerabilities = Vec::new();
        let adult_woman = sex == Sex::Female && years >= 18;
        if sex == Sex::Female && years >= 12 && self.rng.chance_per_mille(400) {
            vulnerabilities.push(Vulnerability::GbvSurvivor);
        }
        if adult_woman && self.rng.chance_per_mille(250) {
            vulnerabilities.push(Vulnerability::FemaleHeadedHousehold);
        }
        if adult_woman && years < 45 && self.rng.chance_per_mille(100) {
            vulnerabilities.push(Vulnerability::PregnantOrLactating);
        }
        if years < 18 && self.rng.chance_per_mille(150) {
            vulnerabilities.push(Vulnerability::SeparatedChild);
        }
        if years >= 60 && self.rng.chance_per_mille(500) {
            vulnerabilities.push(Vulnerability::OlderPersonAtRisk);
        }
        if self.rng.chance_per_mille(250) {
            vulnerabilities.push(Vulnerability::MissingDocumentation);
        }
        if self.rng.chance_per_mille(100) {
            vulnerabilities.push(Vulnerability::ChronicIllness);
        }
        if self.rng.chance_per_mille(80) {
            vulnerabilities.push(Vulnerability::Disability);
        }
        let profile = ClientProfile {
            survivor_code: parse(SurvivorCode::parse(&format!("DEMO-{number:06}")), "survivor code"),
            sex,
            age: parse(Age::years(years), "age"),
            population_group: group,
            nationality: parse(Nationality::parse(nationality), "nationality"),
            location: loc,
            language: language(tag),
            vulnerabilities,
        }
        .normalised();
        (profile, place)
    }

    /// The categories a client needs, most pressing first (at most three).
    fn needs(&mut self, profile: &ClientProfile) -> Vec<ServiceCategory> {
        let has = |v| profile.vulnerabilities.contains(&v);
        let years = profile.age.exact_years().unwrap_or(30);
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
        if years < 18 && self.rng.chance_per_mille(500) {
            needs.push(ServiceCategory::ChildProtection);
        }
        if (6..18).contains(&years) && self.rng.chance_per_mille(350) {
            needs.push(ServiceCategory::Education);
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

    fn admits(def: &ServiceDef, profile: &ClientProfile) -> bool {
        let years = profile.age.exact_years().unwrap_or(30);
        (def.sexes.is_empty() || def.sexes.contains(&profile.sex.code()))
            && def.min_age <= years
            && years <= def.max_age
    }

    fn covers(def: &ServiceDef, profile: &ClientProfile) -> bool {
        let gov = profile.location.governorate().code();
        def.areas.iter().any(|(g, _)| *g == gov)
    }

    /// A service of `category` for the client, from another organisation than `not`: one that
    /// works where the client lives if there is one.
    fn choose_service(
        &mut self,
        category: ServiceCategory,
        profile: &ClientProfile,
        not: &[usize],
        at: i64,
        emergency: bool,
    ) -> Option<usize> {
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
        let pool = if near.is_empty() { eligible } else { near };
        if pool.is_empty() {
            None
        } else {
            Some(pool[self.rng.index(pool.len())])
        }
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
                && profile.vulnerabilities.contains(&Vulnerability::GbvSurvivor)
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
            let code = if any_completed {
                *self
                    .rng
                    .weighted(&[(CloseCode::NeedsMet, 85), (CloseCode::ClientRelocated, 15)])
            } else {
                *self.rng.weighted(&[
                    (CloseCode::LostContact, 5),
                    (CloseCode::ClientRequest, 3),
                    (CloseCode::Transferred, 2),
                ])
            };
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
        let age = self.end - t;
        let urgent = priority != Priority::Routine;
        let small = self.plan.services[service].def.capacity <= 8;
        let category = self.plan.services[service].category;
        let outcome = self.outcome(age, small, redirected_from.is_some());

        // Steps of the whole lifecycle; those at or after the anchor are not sent.
        let mut steps: Vec<(i64, Action)> = Vec::new();
        let mut now = t;
        let respond = |planner: &mut Self, now: &mut i64, lo: i64, hi: i64| {
            let (lo, hi) = if urgent { (lo / 8, hi / 8) } else { (lo, hi) };
            *now = planner.later(*now, lo, hi, urgent);
            *now
        };
        let receive = outcome == Outcome::WaitReceived
            || !matches!(outcome, Outcome::WaitRequested) && self.rng.chance_per_mille(800);
        if receive {
            let at = respond(self, &mut now, 20 * MINUTE, 26 * HOUR);
            steps.push((
                at,
                Action::Respond {
                    referral: index,
                    step: Move::Receive,
                },
            ));
        }
        let duration = match category {
            ServiceCategory::Health => (HOUR, 5 * DAY),
            ServiceCategory::Cash => (3 * DAY, 15 * DAY),
            ServiceCategory::Shelter => (5 * DAY, 30 * DAY),
            _ => (10 * DAY, 45 * DAY),
        };
        let follow_up = |planner: &mut Self, completed: bool| {
            let reached = planner.rng.chance_per_mille(880);
            FollowUpPlan {
                reached,
                received: match (reached, completed) {
                    (false, _) => ServiceReceived::Unknown,
                    (true, true) => *planner
                        .rng
                        .weighted(&[(ServiceReceived::Yes, 85), (ServiceReceived::Partly, 15)]),
                    (true, false) => ServiceReceived::No,
                },
                satisfaction: reached.then(|| {
                    if completed {
                        *planner.rng.weighted(&[(5u8, 4), (4, 4), (3, 2), (2, 1)])
                    } else {
                        *planner.rng.weighted(&[(3u8, 2), (2, 2), (1, 1)])
                    }
                }),
                with_note: planner.rng.chance_per_mille(300),
            }
        };
        match outcome {
            Outcome::WaitRequested | Outcome::WaitReceived => {}
            Outcome::Declined(code) => {
                let at = respond(self, &mut now, HOUR, 48 * HOUR);
                steps.push((
                    at,
                    Action::Respond {
                        referral: index,
                        step: Move::Reject(code, None),
                    },
                ));
            }
            Outcome::Redirected => {
                let from_org = self.plan.cases[case].org;
                let to_org = self.plan.services[service].org;
                let at = respond(self, &mut now, HOUR, 48 * HOUR);
                // The follow-on referral comes within three days: the service must still take it.
                let emergency = priority == Priority::Emergency;
                let alternative = self.choose_service(category, profile, &[from_org, to_org], at + 3 * DAY, emergency);
                let step = match alternative {
                    Some(alt) => Move::Reject(DeclineCode::Redirected, Some(alt)),
                    None => Move::Reject(DeclineCode::NoCapacity, None),
                };
                steps.push((at, Action::Respond { referral: index, step }));
            }
            Outcome::Cancelled => {
                if self.rng.chance_per_mille(500) {
                    let at = respond(self, &mut now, HOUR, 48 * HOUR);
                    steps.push((
                        at,
                        Action::Respond {
                            referral: index,
                            step: Move::Accept,
                        },
                    ));
                }
                let code = *self.rng.weighted(&[
                    (CancelCode::ClientRequest, 4),
                    (CancelCode::NoLongerNeeded, 3),
                    (CancelCode::ReferredElsewhere, 2),
                    (CancelCode::Duplicate, 1),
                ]);
                let at = self.later(now, 6 * HOUR, 6 * DAY, false);
                steps.push((at, Action::Cancel { referral: index, code }));
            }
            Outcome::Accepted | Outcome::InProgress | Outcome::OnHold | Outcome::Completed { .. } | Outcome::Failed => {
                let at = respond(self, &mut now, HOUR, 48 * HOUR);
                steps.push((
                    at,
                    Action::Respond {
                        referral: index,
                        step: Move::Accept,
                    },
                ));
                if outcome == Outcome::Accepted {
                    // Waits for a free slot.
                } else {
                    let at = respond(self, &mut now, HOUR, 4 * DAY);
                    steps.push((
                        at,
                        Action::Respond {
                            referral: index,
                            step: Move::Start,
                        },
                    ));
                    let hold = matches!(outcome, Outcome::OnHold | Outcome::Completed { hold: true, .. });
                    if hold {
                        let code = *self.rng.weighted(&[
                            (HoldCode::AwaitingDocuments, 3),
                            (HoldCode::ClientUnavailable, 3),
                            (HoldCode::AwaitingCapacity, 2),
                            (HoldCode::Security, 1),
                        ]);
                        let at = self.later(now, DAY, 7 * DAY, false);
                        now = at;
                        steps.push((
                            at,
                            Action::Respond {
                                referral: index,
                                step: Move::Hold(code),
                            },
                        ));
                    }
                    match outcome {
                        Outcome::Completed {
                            hold,
                            follow_up: follow,
                        } => {
                            if hold {
                                let at = self.later(now, 2 * DAY, 10 * DAY, false);
                                now = at;
                                steps.push((
                                    at,
                                    Action::Respond {
                                        referral: index,
                                        step: Move::Resume,
                                    },
                                ));
                            }
                            let at = self.later(now, duration.0, duration.1, urgent);
                            now = at;
                            steps.push((
                                at,
                                Action::Respond {
                                    referral: index,
                                    step: Move::Complete,
                                },
                            ));
                            if follow {
                                let plan = follow_up(self, true);
                                let at = self.later(now, 2 * DAY, 10 * DAY, false);
                                steps.push((at, Action::FollowUp { referral: index, plan }));
                            }
                        }
                        Outcome::Failed => {
                            let code = *self.rng.weighted(&[
                                (FailCode::ClientUnreachable, 4),
                                (FailCode::ClientRelocated, 2),
                                (FailCode::ClientDeclined, 2),
                                (FailCode::ServiceUnavailable, 1),
                            ]);
                            let at = self.later(now, 2 * DAY, 14 * DAY, false);
                            now = at;
                            steps.push((
                                at,
                                Action::Respond {
                                    referral: index,
                                    step: Move::Fail(code),
                                },
                            ));
                            let plan = follow_up(self, false);
                            let at = self.later(now, 2 * DAY, 10 * DAY, false);
                            steps.push((at, Action::FollowUp { referral: index, plan }));
                        }
                        _ => {}
                    }
                }
            }
        }

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

    fn outcome(&mut self, age: i64, small: bool, redirected: bool) -> Outcome {
        let no_capacity = if small { 18 } else { 6 };
        let redirect = if redirected { 0 } else { 7 };
        let mut table = vec![
            (
                Outcome::Completed {
                    hold: false,
                    follow_up: true,
                },
                48,
            ),
            (
                Outcome::Completed {
                    hold: false,
                    follow_up: false,
                },
                5,
            ),
            (
                Outcome::Completed {
                    hold: true,
                    follow_up: true,
                },
                5,
            ),
            (Outcome::Declined(DeclineCode::NoCapacity), no_capacity),
            (Outcome::Declined(DeclineCode::NotEligible), 2),
            (Outcome::Declined(DeclineCode::ClientUnreachable), 1),
            (Outcome::Redirected, redirect),
            (Outcome::Failed, 5),
            (Outcome::Cancelled, 5),
        ];
        if age < 60 * DAY {
            table.push((Outcome::InProgress, 6));
            table.push((Outcome::OnHold, 4));
        }
        if age < 12 * DAY {
            table.push((Outcome::Accepted, 14));
        }
        if age < 4 * DAY {
            table.push((Outcome::WaitRequested, 30));
            table.push((Outcome::WaitReceived, 30));
        }
        *self.rng.weighted(&table)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    WaitRequested,
    WaitReceived,
    Accepted,
    InProgress,
    OnHold,
    Completed { hold: bool, follow_up: bool },
    Declined(DeclineCode),
    Redirected,
    Failed,
    Cancelled,
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
            action,
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
