//! Who may do what: the one place that decides, over the actor, the action and the resource.
//!
//! Every route names its [`Action`] and calls [`authorize`] before it touches data; list routes
//! turn the actor's scope into SQL filters with [`case_scope`] and [`referral_scope`], so
//! nothing outside it is ever loaded. The rules follow docs/api.md:
//!
//! - need-to-know: a caseworker works on the cases of their organisation they are responsible
//!   for or that are shared with them, and the referrals made for those cases; a supervisor on
//!   every case of the organisation and every referral it made; only supervisors mark
//!   entered-in-error and override consent (the domain checks the override);
//! - focal points and partner systems see and answer only the referrals addressed to their
//!   organisation;
//! - coordinators and admins keep the directory (as the domain's rule has it); an
//!   organisation's supervisors and focal points keep its own services, and its partner systems
//!   their availability;
//! - coordinators acknowledge escalations and see no case or referral; they and admins list the
//!   escalations, which name referrals by id and codes only, never a client;
//! - coordinators and admins read the network's dashboards and indicator report (aggregates
//!   only, suppressed); a focal point reads how their own organisation answers its referrals;
//! - admins manage their own organisation's users and tokens;
//! - anyone signed in may read the directory and `/v1/me`.
//!
//! A resource outside the actor's scope is [`Decision::Hidden`] (404): its existence does not
//! leak. An action the role never has on a collection is [`Decision::Forbidden`] (403).

use wasl_domain::ids::{OrgId, UserId};
use wasl_domain::{Actor, Role};

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Open a case.
    CaseOpen,
    /// List cases.
    CaseList,
    /// Read a case with its personal data.
    CaseRead,
    /// Change a case: profile, personal data, assignment, consent, close, reopen.
    CaseChange,
    /// Make a referral for a case.
    ReferralRequest,
    /// List referrals made by or addressed to the organisation.
    ReferralList,
    /// Read a referral and its timeline.
    ReferralRead,
    /// Move a referral as the receiving organisation (receive … fail).
    ReferralRespond,
    /// Cancel a referral or record its follow-up, as the referring organisation.
    ReferralManage,
    /// Mark a referral entered-in-error (a supervisor of the referring organisation).
    ReferralMarkError,
    /// Acknowledge an escalation (a coordinator).
    ReferralAcknowledgeEscalation,
    /// List the network's escalations (coordinators and admins).
    EscalationList,
    /// Read the network's dashboards and indicator report (coordinators and admins).
    DashboardRead,
    /// Read how organisations answer their referrals (coordinators and admins: every
    /// organisation; focal points: their own beside the network's).
    PartnerReportRead,
    /// Read the partner inbox.
    InboxRead,
    /// Read the caseworker worklist.
    WorklistRead,
    /// Search and read the directory.
    DirectoryRead,
    /// Register an organisation (coordinators and admins).
    DirectoryMaintain,
    /// Add or change an organisation's services (coordinators, admins, or the organisation's
    /// supervisors and focal points).
    ServiceChange,
    /// Update a service's availability and capacity (as [`Action::ServiceChange`], and the
    /// organisation's partner systems).
    AvailabilityChange,
    /// Read one's own identity.
    MeRead,
    /// Manage users of the organisation.
    UserAdmin,
    /// Manage API tokens of the organisation.
    TokenAdmin,
    /// Read the access audit of the organisation's users (admins).
    AuditRead,
    /// Erase a case's personal data on the person's request (a supervisor of the owning
    /// organisation).
    CaseErase,
    /// Export everything Wasl holds about a case for the person (a supervisor of the owning
    /// organisation).
    CaseExport,
}

/// What an action is done to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A collection, or something that is not yet there (a new case).
    Collection,
    /// A case.
    Case {
        /// The organisation that owns it.
        owner_org: OrgId,
        /// The actor is its responsible caseworker or it is shared with them
        /// ([`knows_case`]).
        assigned: bool,
    },
    /// A referral.
    Referral {
        /// The organisation that made it.
        from_org: OrgId,
        /// The organisation it is addressed to.
        to_org: OrgId,
        /// The actor is the responsible caseworker of the referral's case or it is shared with
        /// them ([`knows_case`]); only the referring side asks.
        assigned: bool,
    },
    /// An organisation's directory entry, users or tokens.
    Organisation(OrgId),
}

/// The policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// The role never does this (403).
    Forbidden,
    /// Outside the actor's scope: answered as if it did not exist (404).
    Hidden,
}

const CASEWORK: &[Role] = &[Role::Caseworker, Role::Supervisor];
const PARTNER: &[Role] = &[Role::FocalPoint, Role::PartnerSystem];
const MAINTAINERS: &[Role] = &[Role::Coordinator, Role::Admin];

/// Decides whether `actor` may do `action` to `resource`.
pub fn authorize(actor: &Actor, action: Action, resource: Resource) -> Decision {
    use Action as A;
    use Resource as R;
    let org = actor.org;
    let roles_allow = |roles: &[Role]| actor.has_any(roles);
    // Need-to-know on the referring side: a supervisor sees every case of the organisation, a
    // caseworker only those assigned or shared to them.
    let knows = |assigned: bool| assigned || actor.has(Role::Supervisor);
    let scoped = |allowed_roles: bool, in_scope: bool| match (allowed_roles, in_scope, resource) {
        (true, true, _) => Decision::Allow,
        // On an id, a wrong role or organisation looks like a missing resource.
        (_, _, R::Case { .. } | R::Referral { .. }) => Decision::Hidden,
        (false, _, _) => Decision::Forbidden,
        (true, false, _) => Decision::Hidden,
    };
    match (action, resource) {
        (A::MeRead | A::DirectoryRead, _) => Decision::Allow,
        (A::CaseOpen | A::CaseList | A::ReferralList | A::WorklistRead, R::Collection) => {
            let roles: &[Role] = match action {
                A::ReferralList => &[
                    Role::Caseworker,
                    Role::Supervisor,
                    Role::FocalPoint,
                    Role::PartnerSystem,
                ],
                _ => CASEWORK,
            };
            scoped(roles_allow(roles), true)
        }
        (A::InboxRead, R::Collection) => scoped(roles_allow(PARTNER), true),
        (A::EscalationList | A::DashboardRead, R::Collection) => scoped(roles_allow(MAINTAINERS), true),
        (A::PartnerReportRead, R::Collection) => scoped(roles_allow(MAINTAINERS) || actor.has(Role::FocalPoint), true),
        (A::CaseErase | A::CaseExport, R::Case { owner_org, .. }) => {
            scoped(actor.has(Role::Supervisor), owner_org == org)
        }
        (A::CaseRead | A::CaseChange | A::ReferralRequest, R::Case { owner_org, assigned }) => {
            scoped(roles_allow(CASEWORK), owner_org == org && knows(assigned))
        }
        (
            A::ReferralRead,
            R::Referral {
                from_org,
                to_org,
                assigned,
            },
        ) => scoped(
            (roles_allow(CASEWORK) && from_org == org && knows(assigned)) || (roles_allow(PARTNER) && to_org == org),
            true,
        ),
        (A::ReferralRespond, R::Referral { to_org, .. }) => scoped(roles_allow(PARTNER), to_org == org),
        (A::ReferralManage, R::Referral { from_org, assigned, .. }) => {
            scoped(roles_allow(CASEWORK), from_org == org && knows(assigned))
        }
        (A::ReferralMarkError, R::Referral { from_org, .. }) => scoped(actor.has(Role::Supervisor), from_org == org),
        (A::ReferralAcknowledgeEscalation, R::Referral { .. }) => scoped(actor.has(Role::Coordinator), true),
        // The coordination hub keeps the directory; an organisation's admin only its own entry.
        (A::DirectoryMaintain, R::Collection) => scoped(roles_allow(MAINTAINERS), true),
        (A::DirectoryMaintain, R::Organisation(target)) => scoped(
            actor.has(Role::Coordinator) || (actor.has(Role::Admin) && target == org),
            true,
        ),
        (A::ServiceChange | A::AvailabilityChange, R::Organisation(target)) => {
            let own_roles: &[Role] = if action == A::ServiceChange {
                &[Role::Supervisor, Role::FocalPoint]
            } else {
                &[Role::Supervisor, Role::FocalPoint, Role::PartnerSystem]
            };
            // The directory is public: another organisation's entry is refused openly. Only the
            // organisation itself and the coordination hub change its services: another
            // organisation's admin cannot close a safe house's intake.
            scoped(
                actor.has(Role::Coordinator) || (target == org && (roles_allow(own_roles) || actor.has(Role::Admin))),
                true,
            )
        }
        (A::UserAdmin | A::TokenAdmin | A::AuditRead, R::Collection) => scoped(actor.has(Role::Admin), true),
        (A::UserAdmin | A::TokenAdmin, R::Organisation(target)) => scoped(actor.has(Role::Admin), target == org),
        // An action paired with a resource it is never done to: a route bug, refused.
        _ => Decision::Forbidden,
    }
}

/// Whether `actor` needs to know a case whose responsible caseworker is `caseworker` and
/// which is shared with `shared_with`: the [`Resource::Case`]'s `assigned`.
pub fn knows_case(actor: &Actor, caseworker: UserId, shared_with: &[UserId]) -> bool {
    caseworker == actor.user || shared_with.contains(&actor.user)
}

/// The cases an actor may list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseScope {
    /// Always their own organisation's.
    pub org: OrgId,
    /// For a caseworker who is not a supervisor: only those this user is responsible for or
    /// that are shared with them.
    pub assigned_to: Option<UserId>,
}

/// How a list of cases (and of the referrals made for them) is narrowed for the actor: to
/// their organisation's cases, and for a caseworker to those assigned or shared to them.
/// `None` when the actor may not list cases at all.
pub fn case_scope(actor: &Actor) -> Option<CaseScope> {
    (authorize(actor, Action::CaseList, Resource::Collection) == Decision::Allow).then(|| CaseScope {
        org: actor.org,
        assigned_to: (!actor.has(Role::Supervisor)).then_some(actor.user),
    })
}

/// Which side of a referral the actor sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralSide {
    /// Referrals the organisation made, for the cases the actor may see.
    Sent(CaseScope),
    /// Referrals addressed to the organisation.
    Received(OrgId),
}

/// The sides of referrals an actor may list; empty when they may list none.
pub fn referral_scope(actor: &Actor) -> Vec<ReferralSide> {
    let mut sides = Vec::new();
    if let Some(cases) = case_scope(actor) {
        sides.push(ReferralSide::Sent(cases));
    }
    if actor.has_any(PARTNER) {
        sides.push(ReferralSide::Received(actor.org));
    }
    sides
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> OrgId {
        OrgId::from_uuid(uuid::Uuid::now_v7()).expect("v7")
    }

    fn actor(org: OrgId, role: Role) -> Actor {
        Actor {
            user: UserId::from_uuid(uuid::Uuid::now_v7()).expect("v7"),
            org,
            roles: vec![role],
        }
    }

    #[test]
    fn a_caseworker_sees_only_their_organisations_cases() {
        let (own, other) = (org(), org());
        let cw = actor(own, Role::Caseworker);
        let case = |owner_org| Resource::Case {
            owner_org,
            assigned: true,
        };
        assert_eq!(authorize(&cw, Action::CaseRead, case(own)), Decision::Allow);
        assert_eq!(authorize(&cw, Action::CaseRead, case(other)), Decision::Hidden);
    }

    #[test]
    fn a_caseworker_does_not_see_a_colleagues_case_but_a_supervisor_does() {
        let own = org();
        let colleagues = Resource::Case {
            owner_org: own,
            assigned: false,
        };
        let referral = Resource::Referral {
            from_org: own,
            to_org: org(),
            assigned: false,
        };
        let cw = actor(own, Role::Caseworker);
        for action in [Action::CaseRead, Action::CaseChange, Action::ReferralRequest] {
            assert_eq!(authorize(&cw, action, colleagues), Decision::Hidden, "{action:?}");
        }
        for action in [Action::ReferralRead, Action::ReferralManage] {
            assert_eq!(authorize(&cw, action, referral), Decision::Hidden, "{action:?}");
        }
        assert_eq!(case_scope(&cw).and_then(|s| s.assigned_to), Some(cw.user));
        let supervisor = actor(own, Role::Supervisor);
        assert_eq!(authorize(&supervisor, Action::CaseRead, colleagues), Decision::Allow);
        assert_eq!(authorize(&supervisor, Action::ReferralRead, referral), Decision::Allow);
        assert_eq!(case_scope(&supervisor).and_then(|s| s.assigned_to), None);
    }

    #[test]
    fn a_case_is_known_to_its_caseworker_and_those_it_is_shared_with() {
        let cw = actor(org(), Role::Caseworker);
        let other = actor(cw.org, Role::Caseworker).user;
        assert!(knows_case(&cw, cw.user, &[]));
        assert!(knows_case(&cw, other, &[cw.user]));
        assert!(!knows_case(&cw, other, &[]));
    }

    #[test]
    fn a_coordinator_never_reads_a_case_and_learns_nothing_of_its_existence() {
        let own = org();
        let coordinator = actor(own, Role::Coordinator);
        assert_eq!(
            authorize(
                &coordinator,
                Action::CaseRead,
                Resource::Case {
                    owner_org: own,
                    assigned: true
                }
            ),
            Decision::Hidden
        );
        assert_eq!(
            authorize(&coordinator, Action::CaseList, Resource::Collection),
            Decision::Forbidden
        );
        assert_eq!(case_scope(&coordinator), None);
    }

    #[test]
    fn only_coordinators_and_admins_list_escalations() {
        let own = org();
        for role in Role::ALL {
            let expected = if matches!(role, Role::Coordinator | Role::Admin) {
                Decision::Allow
            } else {
                Decision::Forbidden
            };
            assert_eq!(
                authorize(&actor(own, *role), Action::EscalationList, Resource::Collection),
                expected,
                "{role}"
            );
        }
    }

    #[test]
    fn a_partner_answers_only_referrals_addressed_to_it() {
        let (from, to) = (org(), org());
        let partner = actor(to, Role::FocalPoint);
        let sent_elsewhere = Resource::Referral {
            from_org: from,
            to_org: org(),
            assigned: false,
        };
        let addressed = Resource::Referral {
            from_org: from,
            to_org: to,
            assigned: false,
        };
        assert_eq!(authorize(&partner, Action::ReferralRespond, addressed), Decision::Allow);
        assert_eq!(
            authorize(&partner, Action::ReferralRespond, sent_elsewhere),
            Decision::Hidden
        );
        assert_eq!(authorize(&partner, Action::ReferralManage, addressed), Decision::Hidden);
    }
}
