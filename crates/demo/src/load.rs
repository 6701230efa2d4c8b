//! Sending the plan: logins first, then every command in time order through the store.

use crate::network::{HUB, LoginDef, ORGS, logins};
use crate::plan::{self, Action, Move, Plan, Step};
use crate::report::{DemoLogin, DemoReport};
use crate::{DemoConfig, DemoError, DemoParts, ids};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;
use wasl_api::auth::accounts::{AccountError, User};
use wasl_domain::case::{Case, CaseCommand, CloseCase, OpenCase, Scope};
use wasl_domain::catalogue::{Decline, Reason, ReasonCode};
use wasl_domain::client::Sex;
use wasl_domain::directory::{DisplayName, Eligibility, Organisation, OrganisationCommand, ServiceSpec};
use wasl_domain::ids::{CaseId, CommandId, EventId};
use wasl_domain::pii::{EncryptedPii, PersonalData};
use wasl_domain::referral::{FollowUp, Referral, ReferralCommand, RequestReferral, Satisfaction};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, AggregateKind, Context, Role};
use wasl_store::{CommandMeta, StoreError, StoredAggregate};
use wasl_vault::{MasterKey, PiiField};

/// Loads the demo network and its history; running it again adds nothing.
///
/// Logins that exist (with the same organisation and role) are left alone. Commands already in
/// the log are recognised by their ids and counted as already present.
#[tracing::instrument(skip_all, fields(seed = config.seed, days = config.days), err)]
pub async fn load<M: MasterKey>(parts: DemoParts<'_, M>, config: &DemoConfig) -> Result<DemoReport, DemoError> {
    if config.days == 0 {
        return Err(DemoError::Config("days must be at least 1"));
    }
    let started = Instant::now();
    let password = config.password();
    let org_ids: Vec<_> = ORGS
        .iter()
        .map(|o| ids::id(config.seed, &format!("org/{}", o.key)))
        .collect();
    let (anchor, anchor_reused) = anchor(&parts, org_ids[HUB], config).await?;
    let plan = plan::build(config.seed, config.days, anchor);
    let (users, created) = ensure_logins(&parts, &plan, &password).await?;
    let password_verified = users
        .first()
        .is_some_and(|(_, user)| wasl_api::auth::password::verify(&password, &user.password_hash));

    let before = last_sequence(&parts).await?;
    let mut loader = Loader {
        parts: &parts,
        plan: &plan,
        seed: config.seed,
        actors: users
            .iter()
            .map(|(def, user)| ((def.org, def.role), user.actor()))
            .collect(),
        executed: 0,
        present: 0,
    };
    for step in &plan.steps {
        loader.run(step).await?;
    }
    let (executed, present) = (loader.executed, loader.present);
    let after = last_sequence(&parts).await?;
    tracing::info!(
        commands = plan.steps.len(),
        executed,
        present,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "demo data loaded"
    );

    let mut statuses = BTreeMap::new();
    for r in &plan.referrals {
        *statuses.entry(r.status).or_insert(0) += 1;
    }
    let mut declines = BTreeMap::new();
    for code in plan.referrals.iter().filter_map(|r| r.decline) {
        *declines.entry(code).or_insert(0) += 1;
    }
    Ok(DemoReport {
        seed: config.seed,
        days: config.days,
        anchor,
        anchor_reused,
        organisations: plan.orgs.len(),
        services: plan.services.len(),
        cases: plan.cases.len(),
        closed_cases: plan.cases.iter().filter(|c| c.closed).count(),
        referrals: plan.referrals.len(),
        redirects: plan.referrals.iter().filter(|r| r.redirected_from.is_some()).count(),
        followed_up: plan.referrals.iter().filter(|r| r.followed_up).count(),
        statuses: statuses.into_iter().collect(),
        declines: declines.into_iter().collect(),
        commands: plan.steps.len(),
        commands_executed: executed,
        commands_already_present: present,
        events_appended: after.saturating_sub(before),
        logins: users
            .iter()
            .map(|(def, user)| DemoLogin {
                username: user.username.clone(),
                role: def.role,
                org_id: user.org,
                organisation: ORGS[def.org].name.to_owned(),
            })
            .collect(),
        logins_created: created,
        password,
        password_verified,
        elapsed: started.elapsed(),
    })
}

/// The window's end: found again from the hub's registration when an earlier run loaded the
/// demo, else `config.now`.
async fn anchor<M: MasterKey>(
    parts: &DemoParts<'_, M>,
    hub: wasl_domain::ids::OrgId,
    config: &DemoConfig,
) -> Result<(Timestamp, bool), DemoError> {
    let subject = wasl_store::aggregate::subject(AggregateKind::Organisation, hub.as_uuid());
    let recorded = parts.store.read_history(&subject, 1).await?;
    Ok(match recorded.first() {
        Some(first) => (plan::anchor_of(first.event.meta.occurred_at, config.days), true),
        None => (config.now, false),
    })
}

async fn last_sequence<M: MasterKey>(parts: &DemoParts<'_, M>) -> Result<u64, DemoError> {
    let info = parts
        .store
        .stream()
        .get_info()
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(info.state.last_sequence)
}

/// Makes the demo logins that do not exist yet; the admin first, who is then recorded as the
/// maker of the others.
async fn ensure_logins<M: MasterKey>(
    parts: &DemoParts<'_, M>,
    plan: &Plan,
    password: &str,
) -> Result<(Vec<(LoginDef, User)>, usize), DemoError> {
    let mut out = Vec::new();
    let mut created = 0;
    let mut admin = None;
    for def in logins() {
        let org = plan.orgs[def.org];
        let user = match parts.accounts.user_by_name(&def.username) {
            Some(user) => user,
            None => match parts
                .accounts
                .create_user(admin, org, &def.username, &[def.role], password)
                .await
            {
                Ok(user) => {
                    created += 1;
                    user
                }
                // Made meanwhile by another process: use that one.
                Err(AccountError::UsernameTaken) => {
                    parts
                        .accounts
                        .user_by_name(&def.username)
                        .ok_or_else(|| DemoError::LoginTaken {
                            username: def.username.clone(),
                        })?
                }
                Err(err) => return Err(err.into()),
            },
        };
        if user.org != org || !user.roles.contains(&def.role) {
            return Err(DemoError::LoginTaken {
                username: def.username.clone(),
            });
        }
        if def.role == Role::Admin {
            admin = Some(user.id);
        }
        out.push((def, user));
    }
    Ok((out, created))
}

struct Loader<'a, 'p, M: MasterKey> {
    parts: &'a DemoParts<'p, M>,
    plan: &'a Plan,
    seed: u64,
    actors: HashMap<(usize, Role), Actor>,
    executed: usize,
    present: usize,
}

const NOTES: &str = "Synthetic demo case: not a real person.";
/// The explanation of every `other` reason.
const REASON: &str = "Synthetic demo reason: not about a real person.";

impl<M: MasterKey> Loader<'_, '_, M> {
    fn actor(&self, org: usize, role: Role) -> Actor {
        match self.actors.get(&(org, role)) {
            Some(actor) => actor.clone(),
            None => unreachable!("every organisation the plan acts for has its logins"),
        }
    }

    /// Whether the command is in the aggregate's history already.
    async fn present<A: StoredAggregate>(&self, id: A::Id, command: CommandId) -> Result<bool, DemoError> {
        Ok(self.parts.store.cached::<A>(id).await?.outcome_of(command).is_some())
    }

    async fn execute<A: StoredAggregate>(
        &mut self,
        id: A::Id,
        command: &A::Command,
        meta: &CommandMeta,
        label: String,
    ) -> Result<(), DemoError> {
        let outcome = self
            .parts
            .store
            .execute::<A>(id, command, meta)
            .await
            .map_err(|source| DemoError::Command { label, source })?;
        if outcome.replayed {
            self.present += 1;
        } else {
            self.executed += 1;
        }
        Ok(())
    }

    async fn seal(&self, case: CaseId, event: EventId, field: PiiField, text: &str) -> Result<EncryptedPii, DemoError> {
        Ok(self.parts.vault.seal(case, event, field, text).await?)
    }

    /// A coded reason; `other` comes with the explanation the domain requires, sealed like any
    /// reason text. (Check first that the command is not in the log yet: a second run must not
    /// seal again.)
    async fn reason<C: ReasonCode>(&self, case: CaseId, event: EventId, code: C) -> Result<Reason<C>, DemoError> {
        let text = if code.needs_text() {
            Some(self.seal(case, event, PiiField::REASON_TEXT, REASON).await?)
        } else {
            None
        };
        Ok(Reason { code, text })
    }

    async fn run(&mut self, step: &Step) -> Result<(), DemoError> {
        let label = step.action.label();
        let command_id: CommandId = ids::id(self.seed, &label);
        let plan = self.plan;
        let meta = |actor: Actor| CommandMeta {
            command_id,
            context: Context { now: step.at, actor },
            traceparent: None,
        };
        // The id of the event the command will write, which sealed values are bound to.
        let event = wasl_store::event_id(command_id, step.at, 0);
        match step.action {
            Action::Register { org } => {
                let def = &ORGS[org];
                let command = OrganisationCommand::Register {
                    org_id: plan.orgs[org],
                    name: display_name(def.name),
                    kind: def.kind,
                };
                let meta = meta(self.actor(HUB, Role::Admin));
                self.execute::<Organisation>(plan.orgs[org], &command, &meta, label)
                    .await
            }
            Action::AddService { service } => {
                let s = &plan.services[service];
                let def = &s.def;
                let sexes = if def.sexes.is_empty() {
                    Scope::Any
                } else {
                    Scope::Only(def.sexes.iter().filter_map(|c| Sex::parse(c).ok()).collect())
                };
                let command = OrganisationCommand::AddService {
                    service_id: s.id,
                    spec: ServiceSpec {
                        name: display_name(def.name),
                        category: s.category,
                        areas: def.areas.iter().map(|(g, d)| plan::location(g, *d)).collect(),
                        languages: def.languages.iter().map(|t| plan::language(t)).collect(),
                        eligibility: Eligibility {
                            sexes,
                            min_age: def.min_age,
                            max_age: def.max_age,
                        },
                    },
                };
                let meta = meta(self.actor(s.org, Role::FocalPoint));
                self.execute::<Organisation>(plan.orgs[s.org], &command, &meta, label)
                    .await
            }
            Action::SetAvailability {
                service,
                accepting,
                capacity,
                ..
            } => {
                let s = &plan.services[service];
                let command = OrganisationCommand::SetAvailability {
                    service_id: s.id,
                    accepting,
                    capacity: Some(capacity),
                };
                let meta = meta(self.actor(s.org, Role::FocalPoint));
                self.execute::<Organisation>(plan.orgs[s.org], &command, &meta, label)
                    .await
            }
            Action::OpenCase { case } => {
                let c = &plan.cases[case];
                if self.present::<Case>(c.id, command_id).await? {
                    self.present += 1;
                    return Ok(());
                }
                let n = c.number;
                let personal = PersonalData {
                    name: Some(
                        self.seal(c.id, event, PiiField::NAME, &format!("Test Person {n:04}"))
                            .await?,
                    ),
                    phone: Some(
                        self.seal(c.id, event, PiiField::PHONE, &format!("+964 000 000 {n:04}"))
                            .await?,
                    ),
                    address: Some(
                        self.seal(c.id, event, PiiField::ADDRESS, &format!("Demo Street {n}, {}", c.place))
                            .await?,
                    ),
                    notes: Some(self.seal(c.id, event, PiiField::NOTES, NOTES).await?),
                };
                let profile = self.parts.vault.seal_profile(c.id, event, c.profile.clone()).await?;
                let command = CaseCommand::Open(OpenCase {
                    case_id: c.id,
                    caseworker: None,
                    profile,
                    personal,
                });
                let meta = meta(self.actor(c.org, Role::Caseworker));
                self.execute::<Case>(c.id, &command, &meta, label).await
            }
            Action::GiveConsent { case } => {
                let c = &plan.cases[case];
                let command = CaseCommand::GiveConsent {
                    consent_id: c.consent_id,
                    scope: c.consent.clone(),
                };
                let meta = meta(self.actor(c.org, Role::Caseworker));
                self.execute::<Case>(c.id, &command, &meta, label).await
            }
            Action::CloseCase {
                case,
                code,
                by_supervisor,
            } => {
                let c = &plan.cases[case];
                if code.needs_text() && self.present::<Case>(c.id, command_id).await? {
                    self.present += 1;
                    return Ok(());
                }
                let command = CaseCommand::Close(CloseCase {
                    reason: self.reason(c.id, event, code).await?,
                    open_referrals: Vec::new(),
                    cancel_open_referrals: false,
                });
                let role = if by_supervisor {
                    Role::Supervisor
                } else {
                    Role::Caseworker
                };
                let meta = meta(self.actor(c.org, role));
                self.execute::<Case>(c.id, &command, &meta, label).await
            }
            Action::Request { referral } => {
                let r = &plan.referrals[referral];
                if self.present::<Referral>(r.id, command_id).await? {
                    self.present += 1;
                    return Ok(());
                }
                let c = &plan.cases[r.case];
                let s = &plan.services[r.service];
                let store = self.parts.store;
                let case = store.load::<Case>(c.id).await?.state;
                let provider = store.load::<Organisation>(plan.orgs[s.org]).await?.state;
                let redirected_from = match r.redirected_from {
                    Some(earlier) => Some(store.load::<Referral>(plan.referrals[earlier].id).await?.state),
                    None => None,
                };
                let notes = if r.with_notes {
                    let text = format!(
                        "Demo referral note for Test Person {:04}: synthetic, not a real person.",
                        c.number
                    );
                    Some(self.seal(c.id, event, PiiField::REFERRAL_NOTES, &text).await?)
                } else {
                    None
                };
                let command = ReferralCommand::Request(Box::new(RequestReferral {
                    referral_id: r.id,
                    case,
                    provider,
                    service_id: s.id,
                    priority: r.priority,
                    redirected_from,
                    consent_override: None,
                    notes,
                }));
                let meta = meta(self.actor(c.org, Role::Caseworker));
                self.execute::<Referral>(r.id, &command, &meta, label).await
            }
            Action::Respond { referral, step: mv, .. } => {
                let r = &plan.referrals[referral];
                let to_org = plan.services[r.service].org;
                if mv.needs_text() && self.present::<Referral>(r.id, command_id).await? {
                    self.present += 1;
                    return Ok(());
                }
                let case = plan.cases[r.case].id;
                let command = match mv {
                    Move::Receive => ReferralCommand::Receive,
                    Move::Accept => ReferralCommand::Accept,
                    Move::Start => ReferralCommand::Start,
                    Move::Hold(code) => ReferralCommand::Hold(self.reason(case, event, code).await?),
                    Move::Resume => ReferralCommand::Resume,
                    Move::Complete => ReferralCommand::Complete,
                    Move::Fail(code) => ReferralCommand::Fail(self.reason(case, event, code).await?),
                    Move::Reject(code, suggested) => ReferralCommand::Reject(Decline {
                        reason: self.reason(case, event, code).await?,
                        suggested_org: suggested.map(|s| plan.orgs[plan.services[s].org]),
                    }),
                };
                let meta = meta(self.actor(to_org, Role::FocalPoint));
                self.execute::<Referral>(r.id, &command, &meta, label).await
            }
            Action::Cancel { referral, code } => {
                let r = &plan.referrals[referral];
                if code.needs_text() && self.present::<Referral>(r.id, command_id).await? {
                    self.present += 1;
                    return Ok(());
                }
                let reason = self.reason(plan.cases[r.case].id, event, code).await?;
                let command = ReferralCommand::Cancel(reason);
                let meta = meta(self.actor(plan.cases[r.case].org, Role::Caseworker));
                self.execute::<Referral>(r.id, &command, &meta, label).await
            }
            Action::Overdue { referral, kind, due_at } => {
                let command = ReferralCommand::MarkResponseOverdue {
                    kind,
                    due_at: Timestamp::from_unix_millis(due_at),
                };
                let meta = meta(system_actor());
                self.execute::<Referral>(plan.referrals[referral].id, &command, &meta, label)
                    .await
            }
            Action::Escalate { referral, kind } => {
                let command = ReferralCommand::Escalate { kind };
                let meta = meta(system_actor());
                self.execute::<Referral>(plan.referrals[referral].id, &command, &meta, label)
                    .await
            }
            Action::AcknowledgeEscalation { referral, kind } => {
                let command = ReferralCommand::AcknowledgeEscalation { kind, note: None };
                let meta = meta(self.actor(HUB, Role::Coordinator));
                self.execute::<Referral>(plan.referrals[referral].id, &command, &meta, label)
                    .await
            }
            Action::FollowUp { referral, plan: f } => {
                let r = &plan.referrals[referral];
                if self.present::<Referral>(r.id, command_id).await? {
                    self.present += 1;
                    return Ok(());
                }
                let c = &plan.cases[r.case];
                let note = if f.with_note {
                    let text = format!(
                        "Demo follow-up note for Test Person {:04}: synthetic, not a real person.",
                        c.number
                    );
                    Some(self.seal(c.id, event, PiiField::FOLLOW_UP_NOTE, &text).await?)
                } else {
                    None
                };
                let command = ReferralCommand::RecordFollowUp(FollowUp {
                    client_reached: f.client_reached,
                    service_received: f.service_received,
                    satisfaction: f.satisfaction.and_then(|s| Satisfaction::new(s).ok()),
                    note,
                });
                let meta = meta(self.actor(c.org, Role::Caseworker));
                self.execute::<Referral>(r.id, &command, &meta, label).await
            }
        }
    }
}

/// The follow-up service's actor: the demo records what it would have recorded.
fn system_actor() -> Actor {
    use wasl_domain::ids::{OrgId, UserId};
    let parse = |user: &str, org: &str| Some((UserId::parse(user).ok()?, OrgId::parse(org).ok()?));
    match parse(wasl_followup::SYSTEM_USER, wasl_followup::SYSTEM_ORG) {
        Some((user, org)) => Actor {
            user,
            org,
            roles: vec![Role::System],
        },
        None => unreachable!("the follow-up service's ids are valid"),
    }
}

fn display_name(name: &str) -> DisplayName {
    match DisplayName::parse(name) {
        Ok(name) => name,
        Err(_) => unreachable!("the demo network's names are valid"),
    }
}
