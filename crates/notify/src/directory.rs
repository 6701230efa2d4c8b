//! Who may be told: the people of `WASL_ACCOUNTS`, their organisation and roles, and where they
//! want mail, folded into memory from the accounts log and followed.
//!
//! The records are the API's (`wasl_api::auth::accounts`), read here with tolerant structs of
//! our own: linking the API would bring the HTTP stack into this service, and a record this
//! service does not need (a password change, a token) is simply passed over. What it needs:
//!
//! - `user_created`, `roles_changed`, `user_disabled`: the local accounts' organisation and
//!   roles, and who may no longer sign in (and so is no longer told anything);
//! - `notifications_set`: a person's address and whether they want mail, with the organisation
//!   and roles they had when they set it — the only description of a person signing in with
//!   OIDC, whom no local account describes.
//!
//! A record that cannot be read is counted (`wasl_poison_messages_total{service="notify"}`)
//! and passed over: it tells nobody anything. Addresses are staff personal data: they stay in
//! memory and go only into a mail's envelope, never into a log line, an error or the database.

use crate::error::NotifyError;
use crate::notifier::Recipient;
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures_util::StreamExt;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// The accounts stream (the API creates it; this service only reads it).
pub const ACCOUNTS_STREAM: &str = "WASL_ACCOUNTS";

/// The role codes this service looks for.
const FOCAL_POINT: &str = "focal_point";
const COORDINATOR: &str = "coordinator";

#[derive(Deserialize)]
struct Record {
    event: Event,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    UserCreated {
        user_id: String,
        org: String,
        roles: Vec<String>,
    },
    RolesChanged {
        user_id: String,
        roles: Vec<String>,
    },
    UserDisabled {
        user_id: String,
    },
    NotificationsSet {
        user_id: String,
        org: String,
        roles: Vec<String>,
        email: Option<String>,
        enabled: bool,
    },
    /// Everything else (passwords, tokens, what comes later): nothing to do with mail.
    #[serde(other)]
    Other,
}

/// A person as far as mail goes.
#[derive(Default)]
struct Person {
    /// From the local account, when there is one (it wins over the snapshot).
    account: Option<(String, Vec<String>)>,
    /// From their last `notifications_set`.
    snapshot: Option<(String, Vec<String>)>,
    disabled: bool,
    email: Option<String>,
    enabled: bool,
}

impl Person {
    fn org_and_roles(&self) -> Option<&(String, Vec<String>)> {
        self.account.as_ref().or(self.snapshot.as_ref())
    }

    /// Their address, if they are to be mailed at all.
    fn address(&self) -> Option<&str> {
        if self.disabled || !self.enabled {
            return None;
        }
        let email = self.email.as_deref()?;
        // The API validates addresses; a record written past it is still not mailed.
        email.parse::<lettre::Address>().is_ok().then_some(email)
    }
}

#[derive(Default)]
struct Roster {
    people: HashMap<String, Person>,
}

impl Roster {
    fn apply(&mut self, record: Record) {
        match record.event {
            Event::UserCreated { user_id, org, roles } => {
                self.people.entry(user_id).or_default().account = Some((org, roles));
            }
            Event::RolesChanged { user_id, roles } => {
                if let Some((_, current)) = self.people.get_mut(&user_id).and_then(|p| p.account.as_mut()) {
                    *current = roles;
                }
            }
            Event::UserDisabled { user_id } => {
                self.people.entry(user_id).or_default().disabled = true;
            }
            Event::NotificationsSet {
                user_id,
                org,
                roles,
                email,
                enabled,
            } => {
                let person = self.people.entry(user_id).or_default();
                person.snapshot = Some((org, roles));
                person.enabled = enabled && email.is_some();
                person.email = email;
            }
            Event::Other => {}
        }
    }

    fn with_role(&self, role: &str, org: Option<&str>) -> Vec<String> {
        let mut ids: Vec<String> = self
            .people
            .iter()
            .filter(|(_, p)| p.address().is_some())
            .filter(|(_, p)| {
                p.org_and_roles()
                    .is_some_and(|(o, roles)| org.is_none_or(|org| o == org) && roles.iter().any(|r| r == role))
            })
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}

/// The people of `WASL_ACCOUNTS`, followed in a background task that ends with the last handle.
#[derive(Clone)]
pub struct Directory {
    js: jetstream::Context,
    roster: Arc<RwLock<Roster>>,
    applied: watch::Receiver<u64>,
    unreadable: Arc<AtomicU64>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory").finish_non_exhaustive()
    }
}

impl Directory {
    /// Starts following `WASL_ACCOUNTS` (waiting for it to exist if it does not yet).
    pub fn follow(js: jetstream::Context) -> Self {
        let roster = Arc::new(RwLock::new(Roster::default()));
        let (applied_tx, applied) = watch::channel(0);
        let unreadable = Arc::new(AtomicU64::new(0));
        tokio::spawn(follow(
            js.clone(),
            Arc::downgrade(&roster),
            applied_tx,
            unreadable.clone(),
        ));
        Self {
            js,
            roster,
            applied,
            unreadable,
        }
    }

    /// Waits until everything in `WASL_ACCOUNTS` now has been read (at most `wait`), so that
    /// an address set a moment ago counts; nothing to wait for while the stream does not exist.
    pub async fn sync(&self, wait: Duration) -> Result<(), NotifyError> {
        let last = match self.js.get_stream(ACCOUNTS_STREAM).await {
            Ok(mut stream) => {
                stream
                    .info()
                    .await
                    .map_err(|e| NotifyError::Accounts(e.to_string()))?
                    .state
                    .last_sequence
            }
            Err(err) if not_found(&err) => return Ok(()),
            Err(err) => return Err(NotifyError::Accounts(err.to_string())),
        };
        let mut applied = self.applied.clone();
        tokio::time::timeout(wait, applied.wait_for(|s| *s >= last))
            .await
            .map_err(|_| NotifyError::Accounts("the accounts log was not read in time".to_owned()))?
            .map_err(|_| NotifyError::Accounts("the accounts follower stopped".to_owned()))?;
        Ok(())
    }

    /// The focal points of `org` who want mail, by user id.
    pub fn focal_points(&self, org: &str) -> Vec<String> {
        self.read().with_role(FOCAL_POINT, Some(org))
    }

    /// The coordinators of the network who want mail, by user id.
    pub fn coordinators(&self) -> Vec<String> {
        self.read().with_role(COORDINATOR, None)
    }

    /// Whether `user` wants mail now (an enabled address, not disabled).
    pub fn wants_mail(&self, user: &str) -> bool {
        self.recipient(user).is_some()
    }

    /// Where to mail `user` now, if they want mail.
    pub fn recipient(&self, user: &str) -> Option<Recipient> {
        let roster = self.read();
        let address = roster.people.get(user)?.address()?;
        Some(Recipient::new(user, address))
    }

    /// Account records passed over because they could not be read.
    pub fn unreadable(&self) -> u64 {
        self.unreadable.load(Ordering::Relaxed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Roster> {
        self.roster.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether the answer is "no such stream" (no API has created the accounts log yet).
fn not_found(err: &jetstream::context::GetStreamError) -> bool {
    matches!(err.kind(), jetstream::context::GetStreamErrorKind::JetStream(api)
        if api.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// Reads the stream from the start and follows it; after an interruption it goes on after the
/// last record it applied.
async fn follow(
    js: jetstream::Context,
    roster: Weak<RwLock<Roster>>,
    applied: watch::Sender<u64>,
    unreadable: Arc<AtomicU64>,
) {
    let pause = Duration::from_millis(500);
    loop {
        if roster.strong_count() == 0 {
            return;
        }
        let stream = match js.get_stream(ACCOUNTS_STREAM).await {
            Ok(stream) => stream,
            Err(err) => {
                if !not_found(&err) {
                    tracing::warn!(error = %err, "cannot look up the accounts log; trying again");
                }
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        let from = *applied.borrow() + 1;
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: from },
                ..Default::default()
            })
            .await;
        let mut messages = match consumer {
            Ok(consumer) => match consumer.messages().await {
                Ok(messages) => messages,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the accounts log; trying again");
                    tokio::time::sleep(pause).await;
                    continue;
                }
            },
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the accounts log; trying again");
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        while let Some(message) = messages.next().await {
            let Some(roster) = roster.upgrade() else { return };
            let message = match message {
                Ok(message) => message,
                Err(err) => {
                    tracing::warn!(error = %err, "the accounts log was interrupted; resuming");
                    break;
                }
            };
            let Ok(info) = message.info() else { continue };
            let sequence = info.stream_sequence;
            match serde_json::from_slice::<Record>(&message.payload) {
                Ok(record) => roster.write().unwrap_or_else(|p| p.into_inner()).apply(record),
                Err(_) => {
                    // Only the kind: a record may hold an address or a login name.
                    unreadable.fetch_add(1, Ordering::Relaxed);
                    wasl_telemetry::metrics::poison("notify", "account_record");
                    tracing::warn!(sequence, "an account record cannot be read; it tells nobody anything");
                }
            }
            let _ = applied.send(sequence);
        }
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(roster: &mut Roster, json: &str) {
        roster.apply(serde_json::from_str(json).expect("a record"));
    }

    #[test]
    fn a_local_account_counts_with_its_current_roles_and_an_oidc_user_with_its_snapshot() {
        let mut r = Roster::default();
        apply(
            &mut r,
            r#"{"at":1,"by":null,"event":{"type":"user_created","user_id":"u1","org":"o1","username":"x","roles":["caseworker"],"password_hash":"h"}}"#,
        );
        apply(
            &mut r,
            r#"{"at":2,"by":"u1","event":{"type":"notifications_set","user_id":"u1","org":"o1","roles":["caseworker"],"email":"a@example.org","enabled":true}}"#,
        );
        apply(
            &mut r,
            r#"{"at":3,"by":"a","event":{"type":"roles_changed","user_id":"u1","roles":["focal_point"]}}"#,
        );
        apply(
            &mut r,
            r#"{"at":4,"by":"u2","event":{"type":"notifications_set","user_id":"u2","org":"o9","roles":["coordinator"],"email":"c@example.org","enabled":true,"later":1}}"#,
        );
        apply(
            &mut r,
            r#"{"at":5,"by":null,"event":{"type":"token_revoked","token_id":"t"}}"#,
        );
        assert_eq!(r.with_role(FOCAL_POINT, Some("o1")), ["u1"]);
        assert_eq!(r.with_role(COORDINATOR, None), ["u2"]);
        assert!(r.with_role(FOCAL_POINT, Some("o2")).is_empty());
    }

    #[test]
    fn opted_out_disabled_or_addressless_people_are_not_told() {
        let mut r = Roster::default();
        for (id, email, enabled) in [
            ("off", Some("off@example.org"), false),
            ("none", None, true),
            ("bad", Some("not an address"), true),
            ("gone", Some("gone@example.org"), true),
        ] {
            let email = email.map_or("null".to_owned(), |e| format!("\"{e}\""));
            apply(
                &mut r,
                &format!(
                    r#"{{"at":1,"by":null,"event":{{"type":"notifications_set","user_id":"{id}","org":"o","roles":["coordinator"],"email":{email},"enabled":{enabled}}}}}"#
                ),
            );
        }
        apply(
            &mut r,
            r#"{"at":2,"by":"a","event":{"type":"user_disabled","user_id":"gone"}}"#,
        );
        assert!(r.with_role(COORDINATOR, None).is_empty());
    }
}
