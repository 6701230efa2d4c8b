//! The rows of each read model and how one event changes them. Pure: no IO, so the rules can
//! be tested on their own and the projector stays a loop of load, apply, write.

pub mod case;
pub mod dashboard;
pub mod directory;
pub mod referral;

use wasl_events::StoredEvent;

/// What the rows record about the event being applied.
#[derive(Debug, Clone)]
pub(crate) struct EventAt {
    /// Its stream sequence.
    pub seq: i64,
    /// When it happened (Unix ms).
    pub at: i64,
    /// Who caused it.
    pub actor_user: String,
    /// Their organisation.
    pub actor_org: String,
    /// Its type name.
    pub event_type: &'static str,
    /// Its id (what sealed values in it are bound to).
    pub event_id: String,
}

impl EventAt {
    pub(crate) fn of(seq: u64, event: &StoredEvent) -> Self {
        Self {
            seq: seq as i64,
            at: event.meta.occurred_at.unix_millis(),
            actor_user: event.meta.actor.user.to_string(),
            actor_org: event.meta.actor.org.to_string(),
            event_type: event.event.event_type(),
            event_id: event.meta.event_id.to_string(),
        }
    }
}

/// Why an event cannot be applied to the rows as they are. Names the problem, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The event needs a row that does not exist (its first event was not applied).
    #[error("{0} does not exist in the read model (its first event was not applied)")]
    Missing(&'static str),
    /// The event creates a row that exists already.
    #[error("{0} exists already in the read model")]
    Exists(&'static str),
    /// A stored row holds something Wasl never writes.
    #[error("a stored row is unreadable: {0}")]
    Corrupt(String),
}

/// Sets `slot` to `at` unless it was set before: the first time a status was reached.
pub(crate) fn first(slot: &mut Option<i64>, at: i64) {
    if slot.is_none() {
        *slot = Some(at);
    }
}

/// Adds `code` to a list column kept sorted and without duplicates.
pub(crate) fn add_to_list(list: &mut String, code: &str) {
    let mut items: Vec<&str> = crate::sql::items(list).collect();
    if !items.contains(&code) {
        items.push(code);
        items.sort_unstable();
    }
    *list = crate::sql::list(items);
}
