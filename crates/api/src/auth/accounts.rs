//! Local accounts and API tokens, kept as events in the JetStream stream `WASL_ACCOUNTS`.
//!
//! Every change to a user, their roles or a token is an event (`wasl.acct.user.<login hash>`,
//! `wasl.acct.token.<id>`), so who gave whom which rights is on record like everything else.
//! Each process folds the stream into memory and follows it, so an account created or a token
//! revoked through one API instance takes effect on the others within moments. A username is
//! claimed with `Nats-Expected-Last-Subject-Sequence: 0` on its subject, so two instances can
//! never create the same login twice.
//!
//! Password hashes (argon2id) and token hashes (SHA-256 of 256 random bits) are stored; the
//! secrets themselves never are.

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, stream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
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
    /// NATS cannot serve the request now.
    #[error("the account store is unavailable: {0}")]
    Unavailable(String),
    /// A stored account event cannot be read.
    #[error("account event at sequence {sequence} is unreadable: {reason}")]
    Corrupt {
        /// Its stream sequence.
        sequence: u64,
        /// Why.
        reason: String,
    },
}

fn unavailable(err: impl std::fmt::Display) -> AccountError {
    AccountError::Unavailable(err.to_string())
}

/// A change to accounts, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AccountEvent {
    /// A local user was created.
    UserCreated {
        /// Their id.
        user_id: String,
        /// Their organisation.
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
        /// The user.
        user_id: String,
        /// The new roles' codes.
        roles: Vec<String>,
    },
    /// A user's password was replaced.
    PasswordChanged {
        /// The user.
        user_id: String,
        /// Argon2id PHC string.
        password_hash: String,
    },
    /// A user may no longer sign in.
    UserDisabled {
        /// The user.
        user_id: String,
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
    TokenRevoked {
        /// The token.
        token_id: String,
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
pub struct User {
    /// Id.
    pub id: UserId,
    /// Organisation.
    pub org: OrgId,
    /// Login name.
    pub username: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Disabled users cannot sign in, and their sessions end.
    pub disabled: bool,
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
pub struct Token {
    /// Id.
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

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, User>,
    by_username: HashMap<String, UserId>,
    tokens: HashMap<UserId, Token>,
    by_secret_hash: HashMap<String, UserId>,
    /// The subject sequence of each user's subject, for optimistic appends.
    applied: u64,
}

impl State {
    fn apply(&mut self, sequence: u64, record: AccountRecord) -> Result<(), AccountError> {
        let corrupt = |reason: &str| AccountError::Corrupt {
            sequence,
            reason: reason.to_owned(),
        };
        let user_id = |text: &str| UserId::parse(text).map_err(|_| corrupt("bad user id"));
        let roles = |codes: &[String]| -> Result<Vec<Role>, AccountError> {
            codes
                .iter()
                .map(|c| Role::parse(c).map_err(|_| corrupt("unknown role")))
                .collect()
        };
        match record.event {
            AccountEvent::UserCreated {
                user_id: id,
                org,
                username,
                roles: codes,
                password_hash,
            } => {
                let id = user_id(&id)?;
                let org = OrgId::parse(&org).map_err(|_| corrupt("bad organisation id"))?;
                self.by_username.insert(username.clone(), id);
                self.users.insert(
                    id,
                    User {
                        id,
                        org,
                        username,
                        roles: roles(&codes)?,
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
                if let Some(user) = self.users.get_mut(&user_id(&id)?) {
                    user.roles = roles;
                }
            }
            AccountEvent::PasswordChanged {
                user_id: id,
                password_hash,
            } => {
                if let Some(user) = self.users.get_mut(&user_id(&id)?) {
                    user.password_hash = password_hash;
                }
            }
            AccountEvent::UserDisabled { user_id: id } => {
                if let Some(user) = self.users.get_mut(&user_id(&id)?) {
                    user.disabled = true;
                }
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
                    org: OrgId::parse(&org).map_err(|_| corrupt("bad organisation id"))?,
                    role: Role::parse(&role).map_err(|_| corrupt("unknown role"))?,
                    label,
                    expires_at: Timestamp::from_unix_millis(expires_at),
                    revoked: false,
                };
                self.by_secret_hash.insert(secret_hash, id);
                self.tokens.insert(id, token);
            }
            AccountEvent::TokenRevoked { token_id } => {
                if let Some(token) = self.tokens.get_mut(&user_id(&token_id)?) {
                    token.revoked = true;
                }
            }
        }
        self.applied = sequence;
        Ok(())
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
                let Ok(info) = message.info() else { continue };
                let sequence = info.stream_sequence;
                let applied = serde_json::from_slice::<AccountRecord>(&message.payload)
                    .map_err(|err| AccountError::Corrupt {
                        sequence,
                        reason: err.to_string(),
                    })
                    .and_then(|record| state.write().unwrap_or_else(|p| p.into_inner()).apply(sequence, record));
                if let Err(err) = applied {
                    // An unreadable account event is reported and skipped by nobody else: the
                    // account it concerns stays as it was, which fails closed (no new rights).
                    tracing::error!(error = %err, "account event not applied");
                    state.write().unwrap_or_else(|p| p.into_inner()).applied = sequence;
                }
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

    async fn record(
        &self,
        subject: String,
        expect_new: bool,
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
        if expect_new {
            message = message.expected_last_subject_sequence(0);
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
        self.record(user_subject(&username), true, by, event).await?;
        self.user(id).ok_or(AccountError::NotFound)
    }

    /// Replaces a user's roles.
    pub async fn set_roles(&self, by: UserId, user: UserId, roles: &[Role]) -> Result<User, AccountError> {
        let username = self.user(user).ok_or(AccountError::NotFound)?.username;
        let event = AccountEvent::RolesChanged {
            user_id: user.to_string(),
            roles: roles.iter().map(|r| r.code().to_owned()).collect(),
        };
        self.record(user_subject(&username), false, Some(by), event).await?;
        self.user(user).ok_or(AccountError::NotFound)
    }

    /// Disables a user: they can no longer sign in and their sessions stop working.
    pub async fn disable(&self, by: UserId, user: UserId) -> Result<(), AccountError> {
        let username = self.user(user).ok_or(AccountError::NotFound)?.username;
        let event = AccountEvent::UserDisabled {
            user_id: user.to_string(),
        };
        self.record(user_subject(&username), false, Some(by), event).await
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
        self.record(format!("wasl.acct.token.{id}"), true, Some(by), event)
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
        self.record(format!("wasl.acct.token.{token}"), false, Some(by), event)
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
