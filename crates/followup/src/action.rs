//! What the service asks the event store to do, kept in the outbox until the store answers, and
//! the deterministic command ids that make sending it twice harmless.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasl_domain::catalogue::{CancelCode, Reason};
use wasl_domain::ids::{CommandId, ReferralId, uuid_v7_from_parts};
use wasl_domain::referral::{OverdueKind, ReferralCommand};
use wasl_domain::time::Timestamp;

/// A command the service decided on, as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum Action {
    /// Cancel on the client's behalf (`consent_withdrawn`, `case_closed`, `expired`).
    Cancel {
        referral: String,
        /// The cancel code.
        reason: String,
    },
    /// Record a missed deadline (`acknowledgement`, `decision`, `follow_up`).
    MarkOverdue {
        referral: String,
        /// The overdue kind.
        kind: String,
        /// When it was due, Unix ms.
        due_at: i64,
    },
    /// Escalate a missed deadline to the coordinators.
    Escalate {
        referral: String,
        /// The overdue kind.
        kind: String,
    },
}

/// An outbox row that cannot be turned back into a command (written by another version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an outbox action is not readable: {0}")]
pub struct ActionError(pub String);

impl Action {
    /// The referral it acts on.
    pub fn referral(&self) -> &str {
        match self {
            Self::Cancel { referral, .. } | Self::MarkOverdue { referral, .. } | Self::Escalate { referral, .. } => {
                referral
            }
        }
    }

    /// A short name for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Cancel { .. } => "cancel",
            Self::MarkOverdue { .. } => "mark_overdue",
            Self::Escalate { .. } => "escalate",
        }
    }

    /// The domain command.
    pub fn command(&self) -> Result<(ReferralId, ReferralCommand), ActionError> {
        let bad = |e: wasl_domain::ValidationError| ActionError(e.to_string());
        let referral = ReferralId::parse(self.referral()).map_err(bad)?;
        let command = match self {
            Self::Cancel { reason, .. } => {
                ReferralCommand::Cancel(Reason::coded(CancelCode::parse(reason).map_err(bad)?))
            }
            Self::MarkOverdue { kind, due_at, .. } => {
                let due_at = Timestamp::from_unix_millis(*due_at);
                match OverdueKind::parse(kind).map_err(bad)? {
                    OverdueKind::FollowUp => ReferralCommand::MarkFollowUpOverdue { due_at },
                    kind => ReferralCommand::MarkResponseOverdue { kind, due_at },
                }
            }
            Self::Escalate { kind, .. } => ReferralCommand::Escalate {
                kind: OverdueKind::parse(kind).map_err(bad)?,
            },
        };
        Ok((referral, command))
    }
}

/// The command id of what the service does for `purpose` (`cancel`, `overdue`, `escalate`),
/// triggered by `trigger` (an event id, or a deadline) on `target` (a referral), at `at`: the
/// same inputs give the same id, so a restart, a replay or a second instance sending the command
/// again gets the original answer from the store instead of a second event.
pub fn command_id(purpose: &str, trigger: &str, target: &str, at: Timestamp) -> CommandId {
    let mut hash = Sha256::new();
    for part in ["wasl-followup", purpose, trigger, target] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(at.unix_millis()).unwrap_or(0);
    CommandId::from_uuid(uuid_v7_from_parts(millis, random)).unwrap_or_else(|_| unreachable!("always v7"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_trigger_gives_the_same_command_id_and_another_gives_another() {
        let at = Timestamp::from_unix_millis(1_767_225_600_000);
        let a = command_id("cancel", "event-1", "referral-1", at);
        assert_eq!(a, command_id("cancel", "event-1", "referral-1", at));
        assert_ne!(a, command_id("cancel", "event-1", "referral-2", at));
        assert_ne!(a, command_id("cancel", "event-2", "referral-1", at));
        assert_ne!(a, command_id("escalate", "event-1", "referral-1", at));
    }

    #[test]
    fn actions_read_back_as_the_domain_commands() {
        let referral = "0190b2c4-0000-7000-8000-000000000001".to_owned();
        let overdue = Action::MarkOverdue {
            referral: referral.clone(),
            kind: "follow_up".to_owned(),
            due_at: 5,
        };
        let json = serde_json::to_string(&overdue).expect("json");
        let back: Action = serde_json::from_str(&json).expect("back");
        assert!(matches!(
            back.command().expect("command").1,
            ReferralCommand::MarkFollowUpOverdue { .. }
        ));
        let cancel = Action::Cancel {
            referral,
            reason: "not_a_code".to_owned(),
        };
        assert!(cancel.command().is_err());
    }
}
