//! Ties each domain aggregate to its place in the log: its id type and the envelope variant.

use uuid::Uuid;
use wasl_domain::case::{Case, CaseCommand};
use wasl_domain::directory::{Organisation, OrganisationCommand};
use wasl_domain::ids::{CaseId, OrgId, ReferralId};
use wasl_domain::referral::{Referral, ReferralCommand};
use wasl_domain::{Aggregate, AggregateKind};
use wasl_events::DomainEvent;

/// An aggregate whose events the store keeps on `wasl.evt.<kind>.<id>`.
pub trait StoredAggregate: Aggregate + Send + Sync + 'static {
    /// Its id.
    type Id: Copy + Send + Sync + std::fmt::Display + 'static;

    /// The id as a UUID.
    fn uuid(id: Self::Id) -> Uuid;

    /// Wraps one of its events for the envelope.
    fn wrap(id: Self::Id, event: Self::Event) -> DomainEvent;

    /// Unwraps an event of this aggregate; `None` for another aggregate's event.
    fn unwrap(event: DomainEvent) -> Option<Self::Event>;

    /// The command's name, in snake case (`accept`, `open`): a metric label, never its content.
    fn command_name(command: &Self::Command) -> &'static str;

    /// The aggregate's subject.
    fn subject(id: Self::Id) -> String {
        subject(Self::KIND, Self::uuid(id))
    }
}

/// The subject of an aggregate instance: `wasl.evt.<kind>.<uuid>`.
pub fn subject(kind: AggregateKind, id: Uuid) -> String {
    format!("wasl.evt.{}.{}", kind.subject_token(), id.hyphenated())
}

macro_rules! stored {
    ($aggregate:ty, $id:ty, $variant:ident, $names:ident) => {
        impl StoredAggregate for $aggregate {
            type Id = $id;

            fn command_name(command: &Self::Command) -> &'static str {
                $names(command)
            }

            fn uuid(id: Self::Id) -> Uuid {
                id.as_uuid()
            }

            fn wrap(id: Self::Id, event: Self::Event) -> DomainEvent {
                DomainEvent::$variant(id, event)
            }

            fn unwrap(event: DomainEvent) -> Option<Self::Event> {
                match event {
                    DomainEvent::$variant(_, event) => Some(event),
                    _ => None,
                }
            }
        }
    };
}

stored!(Case, CaseId, Case, case_command);
stored!(Referral, ReferralId, Referral, referral_command);
stored!(Organisation, OrgId, Organisation, organisation_command);

fn case_command(command: &CaseCommand) -> &'static str {
    match command {
        CaseCommand::Open(_) => "open",
        CaseCommand::UpdateProfile(_) => "update_profile",
        CaseCommand::UpdatePersonalData(_) => "update_personal_data",
        CaseCommand::Assign { .. } => "assign",
        CaseCommand::Share { .. } => "share",
        CaseCommand::Unshare { .. } => "unshare",
        CaseCommand::GiveConsent { .. } => "give_consent",
        CaseCommand::NarrowConsent { .. } => "narrow_consent",
        CaseCommand::WithdrawConsent { .. } => "withdraw_consent",
        CaseCommand::Close(_) => "close",
        CaseCommand::Reopen { .. } => "reopen",
        CaseCommand::ErasePersonalData { .. } => "erase_personal_data",
    }
}

fn referral_command(command: &ReferralCommand) -> &'static str {
    match command {
        ReferralCommand::Request(_) => "request",
        ReferralCommand::Receive => "receive",
        ReferralCommand::Accept => "accept",
        ReferralCommand::Reject(_) => "reject",
        ReferralCommand::Start => "start",
        ReferralCommand::Hold(_) => "hold",
        ReferralCommand::Resume => "resume",
        ReferralCommand::Complete => "complete",
        ReferralCommand::Fail(_) => "fail",
        ReferralCommand::Cancel(_) => "cancel",
        ReferralCommand::RecordFollowUp(_) => "record_follow_up",
        ReferralCommand::MarkEnteredInError(_) => "mark_entered_in_error",
        ReferralCommand::MarkResponseOverdue { .. } => "mark_response_overdue",
        ReferralCommand::MarkFollowUpOverdue { .. } => "mark_follow_up_overdue",
        ReferralCommand::Escalate { .. } => "escalate",
        ReferralCommand::AcknowledgeEscalation { .. } => "acknowledge_escalation",
    }
}

fn organisation_command(command: &OrganisationCommand) -> &'static str {
    match command {
        OrganisationCommand::Register { .. } => "register",
        OrganisationCommand::Update { .. } => "update",
        OrganisationCommand::AddService { .. } => "add_service",
        OrganisationCommand::UpdateService { .. } => "update_service",
        OrganisationCommand::SetAvailability { .. } => "set_availability",
        OrganisationCommand::RetireService { .. } => "retire_service",
    }
}
