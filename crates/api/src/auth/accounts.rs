//! Local accounts and API tokens, kept as events in the JetStream stream `WASL_ACCOUNTS`.
//!
//! Every change to a user, their roles, a token or a person's notification address is an event
//! (`wasl.acct.user.<login hash>`, `wasl.acct.token.<id>`, `wasl.acct.notify.<user id>`), so who
//! gave whom which rights is on record like everything else.
//! Each process folds the stream into memory and follows it, so an account created or a token
//! revoked through one API instance takes effect on the others within moments. A username is
//! claimed with `Nats-Expected-Last-Subject-Sequence: 0` on its subject, so two instances can
//! never create the same login twice.
//!
//! Password hashes (argon2id) and token hashes (SHA-256 of 256 random bits) are stored; the
//! secrets themselves never are.
//!
//! Anyone allowed to publish on `wasl.acct.>` can put anything there. A record the follower
//! cannot apply — not JSON, another shape, an unknown role or a bad id, a change to an account
//! that does not exist — changes nothing (which fails closed: no new rights), is logged by
//! sequence and kind, counted (`wasl_poison_messages_total{service="accounts"}`) and listed by
//! [`Accounts::skipped`]; the follower goes on, and so does the API's start.

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, stream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use wasl_domain::ids::{OrgId, UserId};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Role};

/// The stream holding account events.
pub const STREAM: &str = "WASL_ACCOUNTS";
const SUBJECTS: &str = "wasl.acct.>";

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The username is taken.
    #[error("the username is taken")]
    UsernameTaken,
    /// No such user or token.
    #[error("no such account")]
    NotFound,
    /// A notification address that is not one Wasl mails (see [`valid_email`]).
    #[error("not a valid email address")]
    InvalidEmail,
    /// NATS cannot serve the request now.
    #[error("the account store is unavailable: {0}")]
    Unavailable(String),
    /// A stored account event cannot be applied.
    #[error("account event at sequence {sequence} is not applied: {kind}")]
    Corrupt {
        /// Its stream sequence.
        sequence: u64,
        /// Why.
        kind: Unapplied,
    },
}

/// Why the follower passed over an account record. Kinds only: the record's contents (a login
/// name, a hash) are never repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unapplied {
    /// Not JSON (garbage bytes, not UTF-8, empty).
    NotJson,
    /// JSON, but not an account record (another shape, an unknown event type, a missing field).
    WrongShape,
    /// An account record with a value that is not one (a bad user or organisation id, an
    /// unknown role).
    InvalidValue,
    /// A change to a user or token that does not exist.
    UnknownAccount,
}

impl Unapplied {
    /// A short stable code: `not_json`, `wrong_shape`, `invalid_value`, `unknown_account`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::NotJson => "not_json",
            Self::WrongShape => "wrong_shape",
            Self::InvalidValue => "invalid_value",
            Self::UnknownAccount => "unknown_account",
        }
    }

    fn of(err: &serde_json::Error) -> Self {
        match err.classify() {
            serde_json::error::Category::Data => Self::WrongShape,
            _ => Self::NotJson,
        }
    }
}

impl std::fmt::Display for Unapplied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotJson => "not JSON",
            Self::WrongShape => "not an account record",
            Self::InvalidValue => "a value that is not valid",
            Self::UnknownAccount => "a change to an account that does not exist",
        })
    }
}

/// An account record the follower passed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    /// Its sequence in `WASL_ACCOUNTS`.
    pub sequence: u64,
    /// Why.
    pub kind: Unapplied,
}

/// How many passed-over records [`Accounts::skipped`] keeps (the newest).
const SKIPPED_KEPT: usize = 100;

fn unavailable(err: impl std::fmt::Display) -> AccountError {
    AccountError::Unavailable(err.to_string())
}

/// A change to accounts, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum AccountEvent {
    /// A local user was created.
    UserCreated {
        /// Their id.
        user_id: String,
        org: String,
        /// Their login name (lower-case).
        username: String,
        /// Their roles' codes.
        roles: Vec<String>,
        /// Argon2id PHC string.
        password_hash: String,
    },
    /// A user's roles were replaced.
    RolesChanged {
        user_id: String,
        /// The new roles' codes.
        roles: Vec<String>,
    },
    /// A user's password was replaced.
    PasswordChanged {
        user_id: String,
        /// Argon2id PHC string.
        password_hash: String,
    },
    /// A user may no longer sign in.
    UserDisabled { user_id: String },
    /// An admin asked for roles that need a second admin's approval (see
    /// [`needs_second_admin`]); the record's `by` and `at` say who asked and when. Nothing
    /// changes until a [`AccountEvent::RoleRequestDecided`] approves it.
    RolesRequested {
        /// The request's id.
        request_id: String,
        user_id: String,
        /// The whole new set of roles' codes, as `RolesChanged` would set it.
        roles: Vec<String>,
    },
    /// A pending role request was approved (the user's roles become the requested ones) or
    /// rejected. The record's `by` is the approving admin; none, with `by_operator`, when the
    /// operator approved it with `wasl users approve-roles` (the break-glass).
    RoleRequestDecided {
        request_id: String,
        user_id: String,
        approved: bool,
        /// Decided by the operator on the command line rather than by an admin over the API.
        #[serde(default)]
        by_operator: bool,
    },
    /// A partner API token was issued.
    TokenIssued {
        /// The token's id (also the actor id its commands are recorded under).
        token_id: String,
        /// The organisation it acts for.
        org: String,
        /// The role it acts under.
        role: String,
        /// What it is for, as the admin wrote it.
        label: String,
        /// SHA-256 of the secret, hex.
        secret_hash: String,
        /// When it stops working (Unix ms).
        expires_at: i64,
    },
    /// A token was revoked.
    TokenRevoked { token_id: String },
    /// A person set where Wasl mails them notifications, and whether it may. Recorded on
    /// `wasl.acct.notify.<user id>` for local and OIDC users alike; the organisation and roles
    /// are those the person had when they set it, so that the notification service can find
    /// people whom no local account describes (OIDC users).
    NotificationsSet {
        /// The person.
        user_id: String,
        /// Their organisation at the time.
        org: String,
        /// Their roles' codes at the time.
        roles: Vec<String>,
        /// The address (staff personal data: never logged); none removes it.
        email: Option<String>,
        /// Whether they want mail.
        enabled: bool,
    },
}

/// An account event with who recorded it and when.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRecord {
    /// When (Unix ms).
    pub at: i64,
    /// The user who made the change; none for the bootstrap from the command line.
    pub by: Option<String>,
    /// The change.
    pub event: AccountEvent,
}

/// A local user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct User {
    pub id: UserId,
    pub org: OrgId,
    /// Login name.
    pub username: String,
    pub roles: Vec<Role>,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Disabled users cannot sign in, and their sessions end.
    pub disabled: bool,
}

/// A pending request for roles that needs a second admin.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct RoleRequest {
    /// The request's id.
    pub id: UserId,
    /// Whose roles.
    pub user: UserId,
    /// The whole new set of roles.
    pub roles: Vec<Role>,
    /// The admin who asked (none only if the record named no one).
    pub requested_by: Option<UserId>,
    pub requested_at: Timestamp,
}

/// The roles that read clients' personal data: case files (`caseworker`, `supervisor`) and the
/// referrals addressed to the organisation (`focal_point`, `partner_system`).
pub const PERSONAL_DATA_ROLES: &[Role] = &[
    Role::Caseworker,
    Role::Supervisor,
    Role::FocalPoint,
    Role::PartnerSystem,
];

/// Whether changing roles from `old` to `new` needs a second admin: the user is or will be an
/// `admin` and will hold a role that reads personal data, and the change adds a role. An admin
/// who could give a fellow admin (or an account it controls that is an admin) `supervisor`
/// alone could read every case file; removing roles never needs a second admin.
pub fn needs_second_admin(old: &[Role], new: &[Role]) -> bool {
    new.contains(&Role::Admin)
        && new.iter().any(|r| PERSONAL_DATA_ROLES.contains(r))
        && new.iter().any(|r| !old.contains(r))
}

impl User {
    /// The user as an actor.
    pub fn actor(&self) -> Actor {
        Actor {
            user: self.id,
            org: self.org,
            roles: self.roles.clone(),
        }
    }
}

/// A partner API token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Token {
    pub id: UserId,
    /// Organisation it acts for.
    pub org: OrgId,
    /// Role it acts under.
    pub role: Role,
    /// What it is for.
    pub label: String,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Revoked tokens never work again.
    pub revoked: bool,
}

impl Token {
    /// The token as an actor.
    pub fn actor(&self) -> Actor {
        Actor {
            user: self.id,
            org: self.org,
            roles: vec![self.role],
        }
    }
}

/// Where a person wants notifications mailed. The address is personal data of staff: `Debug`
/// does not show it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NotificationSettings {
    /// The address, if they set one.
    pub email: Option<String>,
    /// Whether they want mail (never true without an address).
    pub enabled: bool,
}

impl std::fmt::Debug for NotificationSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationSettings")
            .field("email", &self.email.as_ref().map(|_| "<set>"))
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// Whether `text` is an address Wasl mails: `local@domain`, ASCII, at most 254 characters, a
/// dot-atom local part of at most 64, a domain of at least two DNS labels. Deliberately
/// narrower than RFC 5322 (no quoted local parts, no address literals, no comments): what a
/// person types into a form, and what every SMTP server accepts.
pub fn valid_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
    let local_ok =
        (1..=64).contains(&local.len()) && local.split('.').all(|part| !part.is_empty() && part.bytes().all(atext));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = (3..=253).contains(&domain.len())
        && labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_alphabetic()));
    text.len() <= 254 && local_ok && domain_ok
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, User>,
    by_username: HashMap<String, UserId>,
    tokens: HashMap<UserId, Token>,
    by_secret_hash: HashMap<String, UserId>,
    notifications: HashMap<UserId, NotificationSettings>,
    /// Pending role requests by id.
    role_requests: HashMap<UserId, RoleRequest>,
    /// The subject sequence of each user's subject, for optimistic appends.
    applied: u64,
    /// The newest records passed over.
    skipped: VecDeque<Skipped>,
}

impl State {
    /// Applies one record; on an error nothing was changed.
    fn apply(&mut self, sequence: u64, record: AccountRecord) -> Result<(), AccountError> {
        let corrupt = |kind| AccountError::Corrupt { sequence, kind };
        let user_id = |text: &str| UserId::parse(text).map_err(|_| corrupt(Unapplied::InvalidValue));
        let roles = |codes: &[String]| -> Result<Vec<Role>, AccountError> {
            codes
                .iter()
                .map(|c| Role::parse(c).map_err(|_| corrupt(Unapplied::InvalidValue)))
                .collect()
        };
        let unknown = || corrupt(Unapplied::UnknownAccount);
        let AccountRecord { at, by, event } = record;
        // Who made the change: read only where it matters (older records may name anyone).
        let by = || by.as_deref().map(user_id).transpose();
        match event {
            AccountEvent::UserCreated {
                user_id: id,
                org,
                username,
                roles: codes,
                password_hash,
            } => {
                let id = user_id(&id)?;
                let org = OrgId::parse(&org).map_err(|_| corrupt(Unapplied::InvalidValue))?;
                let roles = roles(&codes)?;
                self.by_username.insert(username.clone(), id);
                self.users.insert(
                    id,
                    User {
                        id,
                        org,
                        username,
                        roles,
                        password_hash,
                        disabled: false,
                    },
                );
            }
            AccountEvent::RolesChanged {
                user_id: id,
                roles: codes,
            } => {
                let roles = roles(&codes)?;
                let id = user_id(&id)?;
                let user = self.users.get_mut(&id).ok_or_else(unknown)?;
                user.roles = roles;
                // A request made for the roles the user had before lapses.
                self.role_requests.retain(|_, r| r.user != id);
            }
            AccountEvent::RolesRequested {
                request_id,
                user_id: id,
                roles: codes,
            } => {
                let request = user_id(&request_id)?;
                let id = user_id(&id)?;
                let roles = roles(&codes)?;
                if !self.users.contains_key(&id) {
                    return Err(unknown());
                }
                self.role_requests.insert(
                    request,
                    RoleRequest {
                        id: request,
                        user: id,
                        roles,
                        requested_by: by()?,
                        requested_at: Timestamp::from_unix_millis(at),
                    },
                );
            }
            AccountEvent::RoleRequestDecided {
                request_id,
                user_id: id,
                approved,
                by_operator,
            } => {
                let request_id = user_id(&request_id)?;
                let id = user_id(&id)?;
                let request = self
                    .role_requests
                    .get(&request_id)
                    .filter(|r| r.user == id)
                    .ok_or_else(unknown)?;
                // Four eyes, here too: neither the asker nor the user decides, and only the
                // operator decides without being named.
                let decider_ok = match by()? {
                    Some(by) => !by_operator && Some(by) != request.requested_by && by != id,
                    None => by_operator,
                };
                if !decider_ok {
                    return Err(corrupt(Unapplied::InvalidValue));
                }
                if approved {
                    let roles = request.roles.clone();
                    let user = self.users.get_mut(&id).ok_or_else(unknown)?;
                    user.roles = roles;
                    // Other requests were made for the roles the user had before.
                    self.role_requests.retain(|_, r| r.user != id);
                } else {
                    self.role_requests.remove(&request_id);
                }
            }
            AccountEvent::PasswordChanged {
                user_id: id,
                password_hash,
            } => {
                let user = self.users.get_mut(&user_id(&id)?).ok_or_else(unknown)?;
                user.password_hash = password_hash;
            }
            AccountEvent::UserDisabled { user_id: id } => {
                let id = user_id(&id)?;
                let user = self.users.get_mut(&id).ok_or_else(unknown)?;
                user.disabled = true;
                self.role_requests.retain(|_, r| r.user != id);
            }
            AccountEvent::TokenIssued {
                token_id,
                org,
                role,
                label,
                secret_hash,
                expires_at,
            } => {
                let id = user_id(&token_id)?;
                let token = Token {
                    id,
                    org: OrgId::parse(&org).map_err(|_| corrupt(Unapplied::InvalidValue))?,
                    role: Role::parse(&role).map_err(|_| corrupt(Unapplied::InvalidValue))?,
                    label,
                    expires_at: Timestamp::from_unix_millis(expires_at),
                    revoked: false,
                };
                self.by_secret_hash.insert(secret_hash, id);
                self.tokens.insert(id, token);
            }
            AccountEvent::TokenRevoked { token_id } => {
                let token = self.tokens.get_mut(&user_id(&token_id)?).ok_or_else(unknown)?;
                token.revoked = true;
            }
            AccountEvent::NotificationsSet {
                user_id: id,
                org,
                roles: codes,
                email,
                enabled,
            } => {
                let id = user_id(&id)?;
                OrgId::parse(&org).map_err(|_| corrupt(Unapplied::InvalidValue))?;
                roles(&codes)?;
                if email.as_deref().is_some_and(|e| !valid_email(e)) {
                    return Err(corrupt(Unapplied::InvalidValue));
                }
                let enabled = enabled && email.is_some();
                self.notifications.insert(id, NotificationSettings { email, enabled });
            }
        }
        self.applied = sequence;
        Ok(())
    }

    /// Passes over a record that cannot be applied: reported, counted, kept in the list.
    fn skip(&mut self, sequence: u64, kind: Unapplied) {
        wasl_telemetry::metrics::poison("accounts", kind.code());
        match kind {
            Unapplied::UnknownAccount => {
                tracing::warn!(
                    sequence,
                    reason = kind.code(),
                    "account event not applied: no such account"
                );
            }
            _ => tracing::error!(sequence, reason = kind.code(), "account event not applied: unreadable"),
        }
        if self.skipped.len() == SKIPPED_KEPT {
            self.skipped.pop_front();
        }
        self.skipped.push_back(Skipped { sequence, kind });
        self.applied = sequence;
    }
}

/// The accounts of this Wasl, followed from `WASL_ACCOUNTS`.
#[derive(Clone)]
pub struct Accounts {
    js: jetstream::Context,
    state: Arc<RwLock<State>>,
    applied: watch::Receiver<u64>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").finish_non_exhaustive()
    }
}

/// The subject of a user, keyed by a hash of the login so logins do not show in subject lists.
fn user_subject(username: &str) -> String {
    format!(
        "wasl.acct.user.{}",
        hex::encode(&Sha256::digest(username.as_bytes())[..16])
    )
}

/// SHA-256 of a token secret, hex.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Normalises a login name: trimmed, lower-case.
pub fn normalise_username(username: &str) -> String {
    username.trim().to_lowercase()
}

impl Accounts {
    /// Creates the stream if needed, reads it and keeps following it in a background task
    /// (which ends when every handle is dropped).
    pub async fn open(js: jetstream::Context, replicas: usize) -> Result<Self, AccountError> {
        let stream = js
            .get_or_create_stream(stream::Config {
                name: STREAM.to_owned(),
                subjects: vec![SUBJECTS.to_owned()],
                storage: stream::StorageType::File,
                num_replicas: replicas,
                deny_delete: true,
                deny_purge: true,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let last = stream.get_info().await.map_err(unavailable)?.state.last_sequence;
        let state = Arc::new(RwLock::new(State::default()));
        let (applied_tx, applied) = watch::channel(0);
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let mut messages = consumer.messages().await.map_err(unavailable)?;
        let follower_state = Arc::downgrade(&state);
        tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                let Some(state) = follower_state.upgrade() else { return };
                let message = match message {
                    Ok(m) => m,
                    Err(err) => {
                        tracing::warn!(error = %err, "account stream interrupted; the ordered consumer resumes");
                        continue;
                    }
                };
                let Ok(info) = message.info() else {
                    // Not from the stream (the consumer delivers nothing else): nothing to apply.
                    wasl_telemetry::metrics::poison("accounts", "no_metadata");
                    tracing::warn!("a message without stream metadata on the account consumer; passed over");
                    continue;
                };
                let sequence = info.stream_sequence;
                let mut state = state.write().unwrap_or_else(|p| p.into_inner());
                // serde's message may quote the record (a login name): only its kind is kept.
                let applied = serde_json::from_slice::<AccountRecord>(&message.payload)
                    .map_err(|err| Unapplied::of(&err))
                    .and_then(|record| {
                        state.apply(sequence, record).map_err(|err| match err {
                            AccountError::Corrupt { kind, .. } => kind,
                            _ => Unapplied::InvalidValue,
                        })
                    });
                if let Err(kind) = applied {
                    // The account it concerns stays as it was, which fails closed (no new rights).
                    state.skip(sequence, kind);
                }
                drop(state);
                let _ = applied_tx.send(sequence);
            }
        });
        let accounts = Self { js, state, applied };
        accounts.wait_applied(last).await?;
        Ok(accounts)
    }

    async fn wait_applied(&self, sequence: u64) -> Result<(), AccountError> {
        let mut applied = self.applied.clone();
        tokio::time::timeout(Duration::from_secs(30), applied.wait_for(|s| *s >= sequence))
            .await
            .map_err(|_| unavailable("the account stream was not read in time"))?
            .map_err(|_| unavailable("the account follower stopped"))?;
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `event` on `subject`; with `expect_last`, only if the subject's last message is
    /// at that sequence (0: it has none), else [`AccountError::UsernameTaken`].
    async fn record(
        &self,
        subject: String,
        expect_last: Option<u64>,
        by: Option<UserId>,
        event: AccountEvent,
    ) -> Result<(), AccountError> {
        let record = AccountRecord {
            at: now_millis(),
            by: by.map(|u| u.to_string()),
            event,
        };
        let payload = serde_json::to_vec(&record).map_err(unavailable)?;
        let mut message = PublishMessage::build().payload(payload.into());
        if let Some(last) = expect_last {
            message = message.expected_last_subject_sequence(last);
        }
        let ack = self
            .js
            .send_publish(subject, message)
            .await
            .map_err(unavailable)?
            .await
            .map_err(|err| match err.kind() {
                PublishErrorKind::WrongLastSequence => AccountError::UsernameTaken,
                _ => unavailable(err),
            })?;
        self.wait_applied(ack.sequence).await
    }

    /// Creates a local user with a password. `by` is the admin, none for the bootstrap.
    pub async fn create_user(
        &self,
        by: Option<UserId>,
        org: OrgId,
        username: &str,
        roles: &[Role],
        password: &str,
    ) -> Result<User, AccountError> {
        let username = normalise_username(username);
        let id = UserId::from_uuid(uuid::Uuid::now_v7()).map_err(unavailable)?;
        let password_hash = super::password::hash(password).map_err(unavailable)?;
        let event = AccountEvent::UserCreated {
            user_id: id.to_string(),
            org: org.to_string(),
            username: username.clone(),
            roles: roles.iter().map(|r| r.code().to_owned()).collect(),
            password_hash,
        };
        let subject = user_subject(&username);
        match self.record(subject.clone(), Some(0), by, event.clone()).await {
            Err(AccountError::UsernameTaken) => {
                // Something is on the name's subject. Unless it made an account of that name,
                // it is only records the follower passed over (anyone may publish garbage
                // there): the name is claimed after them, still only once.
                let last = self.last_on(&subject).await?;
                self.wait_applied(last).await?;
                if self.user_by_name(&username).is_some() {
                    return Err(AccountError::UsernameTaken);
                }
                self.record(subject, Some(last), by, event).await?;
            }
            recorded => recorded?,
        }
        self.user(id).ok_or(AccountError::NotFound)
    }

    /// The sequence of the last message on `subject`.
    async fn last_on(&self, subject: &str) -> Result<u64, AccountError> {
        let stream = self.js.get_stream(STREAM).await.map_err(unavailable)?;
        let last = stream
            .get_last_raw_message_by_subject(subject)
            .await
            .map_err(unavailable)?;
        Ok(last.sequence)
    }

    /// The records the follower passed over, oldest first (the newest 100): an operator's view
    /// of what is in `WASL_ACCOUNTS` that is not an account change.
    pub fn skipped(&self) -> Vec<Skipped> {
        self.read().skipped.iter().copied().collect()
    }

    /// Replaces a user's roles.
    pub async fn set_roles(&self, by: UserId, user: UserId, roles: &[Role]) -> Result<User, AccountError> {
        let username = self.user(user).ok_or(AccountError::NotFound)?.username;
        let event = AccountEvent::RolesChanged {
            user_id: user.to_string(),
            roles: roles.iter().map(|r| r.code().to_owned()).collect(),
        };
        self.record(user_subject(&username), None, Some(by), event).await?;
        self.user(user).ok_or(AccountError::NotFound)
    }

    /// Records a request for `roles` for `user` that a second admin must approve; nothing
    /// changes yet.
    pub async fn request_roles(&self, by: UserId, user: UserId, roles: &[Role]) -> Result<RoleRequest, AccountError> {
        let username = self.user(user).ok_or(AccountError::NotFound)?.username;
        let id = UserId::from_uuid(uuid::Uuid::now_v7()).map_err(unavailable)?;
        let event = AccountEvent::RolesRequested {
            request_id: id.to_string(),
            user_id: user.to_string(),
            roles: roles.iter().map(|r| r.code().to_owned()).collect(),
        };
        self.record(user_subject(&username), None, Some(by), event).await?;
        self.role_request(id).ok_or(AccountError::NotFound)
    }

    /// Approves or rejects a pending role request. `by` is the deciding admin; none for the
    /// operator's break-glass on the command line, which the record says. The caller has
    /// checked that `by` is neither the asker nor the user: the follower refuses such a
    /// record anyway (it changes nothing). Approving sets the requested roles.
    pub async fn decide_role_request(
        &self,
        by: Option<UserId>,
        request: UserId,
        approved: bool,
    ) -> Result<User, AccountError> {
        let request = self.role_request(request).ok_or(AccountError::NotFound)?;
        let username = self.user(request.user).ok_or(AccountError::NotFound)?.username;
        let event = AccountEvent::RoleRequestDecided {
            request_id: request.id.to_string(),
            user_id: request.user.to_string(),
            approved,
            by_operator: by.is_none(),
        };
        self.record(user_subject(&username), None, by, event).await?;
        if self.role_request(request.id).is_some() {
            // The follower refused the record (see above): nothing was decided.
            return Err(AccountError::NotFound);
        }
        self.user(request.user).ok_or(AccountError::NotFound)
    }

    /// A pending role request by id.
    pub fn role_request(&self, id: UserId) -> Option<RoleRequest> {
        self.read().role_requests.get(&id).cloned()
    }

    /// The pending role requests for `user`, oldest first.
    pub fn role_requests_for(&self, user: UserId) -> Vec<RoleRequest> {
        let mut requests: Vec<RoleRequest> = self
            .read()
            .role_requests
            .values()
            .filter(|r| r.user == user)
            .cloned()
            .collect();
        requests.sort_by_key(|r| r.id);
        requests
    }

    /// Disables a user: they can no longer sign in and their sessions stop working.
    pub async fn disable(&self, by: UserId, user: UserId) -> Result<(), AccountError> {
        let username = self.user(user).ok_or(AccountError::NotFound)?.username;
        let event = AccountEvent::UserDisabled {
            user_id: user.to_string(),
        };
        self.record(user_subject(&username), None, Some(by), event).await
    }

    /// Issues a token; the answer holds the secret, which is never stored or shown again.
    pub async fn issue_token(
        &self,
        by: UserId,
        org: OrgId,
        role: Role,
        label: &str,
        expires_at: Timestamp,
    ) -> Result<(Token, String), AccountError> {
        let id = UserId::from_uuid(uuid::Uuid::now_v7()).map_err(unavailable)?;
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(unavailable)?;
        let secret = format!("{TOKEN_PREFIX}{}", hex::encode(random));
        let event = AccountEvent::TokenIssued {
            token_id: id.to_string(),
            org: org.to_string(),
            role: role.code().to_owned(),
            label: label.to_owned(),
            secret_hash: secret_hash(&secret),
            expires_at: expires_at.unix_millis(),
        };
        self.record(format!("wasl.acct.token.{id}"), Some(0), Some(by), event)
            .await?;
        let token = self.token(id).ok_or(AccountError::NotFound)?;
        Ok((token, secret))
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, by: UserId, token: UserId) -> Result<(), AccountError> {
        if self.token(token).is_none() {
            return Err(AccountError::NotFound);
        }
        let event = AccountEvent::TokenRevoked {
            token_id: token.to_string(),
        };
        self.record(format!("wasl.acct.token.{token}"), None, Some(by), event)
            .await
    }

    /// A user by id.
    pub fn user(&self, id: UserId) -> Option<User> {
        self.read().users.get(&id).cloned()
    }

    /// A user by login name.
    pub fn user_by_name(&self, username: &str) -> Option<User> {
        let state = self.read();
        let id = state.by_username.get(&normalise_username(username))?;
        state.users.get(id).cloned()
    }

    /// The users of an organisation, by login name.
    pub fn users_of(&self, org: OrgId) -> Vec<User> {
        let mut users: Vec<User> = self.read().users.values().filter(|u| u.org == org).cloned().collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        users
    }

    /// Sets where `actor` wants notifications mailed and whether they want them; `by` is the
    /// actor themself (a person sets only their own). The address must pass [`valid_email`].
    pub async fn set_notifications(
        &self,
        actor: &Actor,
        email: Option<String>,
        enabled: bool,
    ) -> Result<NotificationSettings, AccountError> {
        if email.as_deref().is_some_and(|e| !valid_email(e)) {
            return Err(AccountError::InvalidEmail);
        }
        let event = AccountEvent::NotificationsSet {
            user_id: actor.user.to_string(),
            org: actor.org.to_string(),
            roles: actor.roles.iter().map(|r| r.code().to_owned()).collect(),
            enabled: enabled && email.is_some(),
            email,
        };
        self.record(
            format!("wasl.acct.notify.{}", actor.user),
            None,
            Some(actor.user),
            event,
        )
        .await?;
        Ok(self.notifications(actor.user))
    }

    /// Where `user` wants notifications mailed (nothing set: no address, no mail).
    pub fn notifications(&self, user: UserId) -> NotificationSettings {
        self.read().notifications.get(&user).cloned().unwrap_or_default()
    }

    /// A token by id.
    pub fn token(&self, id: UserId) -> Option<Token> {
        self.read().tokens.get(&id).cloned()
    }

    /// The tokens of an organisation, newest first.
    pub fn tokens_of(&self, org: OrgId) -> Vec<Token> {
        let mut tokens: Vec<Token> = self.read().tokens.values().filter(|t| t.org == org).cloned().collect();
        tokens.sort_by_key(|t| std::cmp::Reverse(t.id));
        tokens
    }

    /// The token a presented secret belongs to, if it is valid now.
    pub fn token_for_secret(&self, secret: &str, now: Timestamp) -> Option<Token> {
        let state = self.read();
        let id = state.by_secret_hash.get(&secret_hash(secret))?;
        state
            .tokens
            .get(id)
            .filter(|t| !t.revoked && t.expires_at > now)
            .cloned()
    }
}

/// How every token secret starts, so a leaked one is easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "wasl_pat_";

/// Wall-clock time in Unix ms.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::valid_email;

    #[test]
    fn an_ordinary_address_is_valid() {
        for ok in [
            "focal.point@example.org",
            "a+wasl@mail.example.iq",
            "x_y-z@sub-domain.example.co",
        ] {
            assert!(valid_email(ok), "{ok}");
        }
    }

    #[test]
    fn what_a_form_should_refuse_is_refused() {
        let long_local = format!("{}@example.org", "a".repeat(65));
        let long = format!("a@{}.org", "b".repeat(250));
        for bad in [
            "",
            "plain",
            "@example.org",
            "a@",
            "a@localhost",
            "a@@example.org",
            "a b@example.org",
            ".a@example.org",
            "a..b@example.org",
            "a@-example.org",
            "a@example..org",
            "a@example.123",
            "\"quoted\"@example.org",
            "a@[127.0.0.1]",
            "ü@example.org",
            "a@example.org\r\nBcc: b@example.org",
            long_local.as_str(),
            long.as_str(),
        ] {
            assert!(!valid_email(bad), "{bad:?}");
        }
    }
}
