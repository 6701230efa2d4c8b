//! Partner commands over NATS request/reply: `wasl.cmd.<org>.referral.<id>.<verb>` with a JSON
//! body, answered with a JSON [`CommandReply`].
//!
//! - The acting organisation is the `<org>` token of the subject; the NATS permissions of the
//!   partner's credential (`wasl nats-config`) allow it to publish only under its own token.
//! - Only requests whose reply subject lies in the organisation's inbox
//!   ([`inbox_prefix`]`(org) + "."`) are answered; anything else is refused without being
//!   executed, so a message that a JetStream push consumer delivers onto a command subject is
//!   never taken for a command.
//! - Each verb is the domain's own referral command, decided and stored by
//!   [`EventStore::execute`] exactly as the HTTP API does for a `partner_system` token; the
//!   actor is the organisation's partner system ([`partner_system_user`]).
//! - Idempotent by `command_id`: the id the store records is derived from the organisation,
//!   the referral, the verb and the partner's id, so the same request sent again answers the
//!   first outcome and stores nothing.
//! - Reason texts are not accepted here (they would have to be sealed under the case's key):
//!   a partner that must explain `other` in words uses the HTTP API.
//! - Anyone who may publish on a command subject can send anything. Nothing a request holds —
//!   garbage, the wrong JSON, a bad id or verb in the subject, a huge body, no reply subject —
//!   stops the service or fails a later request: each is answered `bad_request` where an answer
//!   may go (or refused unanswered), logged without contents and counted
//!   ([`CommandMetrics::bad_requests`], [`CommandMetrics::refused`], and the
//!   `wasl_poison_messages_total` counter by kind).

use crate::config::CommandServiceConfig;
use crate::error::RouterError;
use async_nats::{Message, Subject};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument as _;
use uuid::Uuid;
use wasl_domain::catalogue::{Decline, DeclineCode, FailCode, HoldCode, Reason};
use wasl_domain::ids::{CommandId, OrgId, ReferralId, UserId, uuid_v7_from_parts};
use wasl_domain::referral::{Referral, ReferralCommand};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Context, DomainError, Role};
use wasl_events::partner::{ALL_COMMAND_SUBJECTS, inbox_prefix};
use wasl_store::{CommandError, CommandMeta, EventStore, StoreError};

/// The largest request body read, in bytes. A command is a few hundred bytes; a bigger body is
/// refused before it is parsed, so no answer ever quotes much of it.
pub const MAX_BODY: usize = 16 * 1024;

/// The longest refusal message sent back (serde's explanations quote the sender's input).
const MAX_MESSAGE: usize = 300;

/// What a partner may do to a referral addressed to it: the last token of the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// Acknowledge receipt. Body: `command_id`.
    Receive,
    /// Accept. Body: `command_id`.
    Accept,
    /// Decline. Body: `command_id`, `reason: {code}`, `suggested_org` with `redirected`.
    Reject,
    /// Start the service. Body: `command_id`.
    Start,
    /// Put on hold. Body: `command_id`, `reason: {code}`.
    Hold,
    /// Resume after a hold. Body: `command_id`.
    Resume,
    /// Complete the service. Body: `command_id`.
    Complete,
    /// Record that the service failed. Body: `command_id`, `reason: {code}`.
    Fail,
}

impl Verb {
    /// Every verb.
    pub const ALL: &'static [Verb] = &[
        Self::Receive,
        Self::Accept,
        Self::Reject,
        Self::Start,
        Self::Hold,
        Self::Resume,
        Self::Complete,
        Self::Fail,
    ];

    /// The subject token.
    pub const fn token(self) -> &'static str {
        match self {
            Self::Receive => "receive",
            Self::Accept => "accept",
            Self::Reject => "reject",
            Self::Start => "start",
            Self::Hold => "hold",
            Self::Resume => "resume",
            Self::Complete => "complete",
            Self::Fail => "fail",
        }
    }

    /// The verb of a subject token.
    pub fn parse(token: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.token() == token)
    }
}

/// The answer to a partner command: `{"ok":true,"version":N,"position":P}` or
/// `{"ok":false,"error":{"code":"…","message":"…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandReply {
    /// Whether the command was carried out (now or before).
    pub ok: bool,
    /// The referral's version after the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The event log position of the command's event (`Wasl-Min-Position` for API reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ReplyError>,
}

/// Why a command was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyError {
    /// Stable code: `bad_request`, `not_found`, `conflict`, `unavailable`, or the domain's
    /// refusal code (`invalid_transition`, `reason_required`, `invalid`, …).
    pub code: String,
    /// A sentence for people; never personal data.
    pub message: String,
}

impl CommandReply {
    fn done(version: u64, position: u64) -> Self {
        Self {
            ok: true,
            version: Some(version),
            position: Some(position),
            error: None,
        }
    }

    fn refused(code: &str, message: impl Into<String>) -> Self {
        Self {
            ok: false,
            version: None,
            position: None,
            error: Some(ReplyError {
                code: code.to_owned(),
                message: message.into(),
            }),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        Self::refused("bad_request", message)
    }

    fn not_found() -> Self {
        Self::refused("not_found", "no such referral addressed to this organisation")
    }
}

/// The user id a partner system's NATS commands are recorded under: derived from the
/// organisation, the same for every command of that organisation over NATS.
pub fn partner_system_user(org: OrgId) -> UserId {
    let digest = hash(&[b"wasl nats partner system v1", org.as_uuid().as_bytes()]);
    UserId::from_uuid(v7_from_digest(&digest)).expect("a v7 uuid")
}

/// The command id the store records for a partner's `command_id` sent as `verb` on
/// `referral` by `org`. The same inputs always give the same id: that is the idempotency.
pub fn command_id(org: OrgId, referral: ReferralId, verb: Verb, given: Uuid) -> CommandId {
    let digest = hash(&[
        b"wasl nats command v1",
        org.as_uuid().as_bytes(),
        referral.as_uuid().as_bytes(),
        verb.token().as_bytes(),
        given.as_bytes(),
    ]);
    CommandId::from_uuid(v7_from_digest(&digest)).expect("a v7 uuid")
}

fn hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

/// A deterministic UUIDv7: 47 bits of "time" and 74 bits from the digest, as the API derives
/// command ids from idempotency keys.
fn v7_from_digest(digest: &[u8; 32]) -> Uuid {
    let millis = u64::from_be_bytes([0, 0, 0, digest[0] & 0x7f, digest[1], digest[2], digest[3], digest[4]]);
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[5..15]);
    uuid_v7_from_parts(millis, random)
}

/// A body without reason: receive, accept, start, resume, complete.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainBody {
    command_id: String,
}

/// A body with a reason: hold, fail.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    command_id: String,
    reason: ReasonInput,
}

/// The body of reject.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    command_id: String,
    reason: ReasonInput,
    suggested_org: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonInput {
    code: String,
    /// Named so that it can be refused with a clear message.
    #[serde(default)]
    text: Option<serde::de::IgnoredAny>,
}

/// Counters of a command service.
#[derive(Debug, Default)]
pub struct CommandMetrics {
    /// Requests answered (ok or not).
    pub answered: AtomicU64,
    /// Requests carried out now (not replays).
    pub executed: AtomicU64,
    /// Messages refused without an answer: no reply subject, or one outside the
    /// organisation's inbox, or a subject without an organisation id.
    pub refused: AtomicU64,
    /// Requests answered `bad_request` because they could not be read: a body that is not the
    /// verb's JSON or too big, a subject with a bad referral id, an unknown verb, or the wrong
    /// shape.
    pub bad_requests: AtomicU64,
}

/// The partner command service.
pub struct CommandService {
    store: Arc<EventStore>,
    config: CommandServiceConfig,
    metrics: Arc<CommandMetrics>,
}

impl CommandService {
    /// A service storing through `store` (its NATS client also carries the requests).
    pub fn new(store: Arc<EventStore>, config: CommandServiceConfig) -> Self {
        Self {
            store,
            config,
            metrics: Arc::default(),
        }
    }

    /// Its counters.
    pub fn metrics(&self) -> Arc<CommandMetrics> {
        self.metrics.clone()
    }

    /// Answers requests until `shutdown` completes, then lets the requests in hand finish.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), RouterError> {
        let client = self.store.client().clone();
        let mut requests = client
            .queue_subscribe(ALL_COMMAND_SUBJECTS, self.config.queue_group.clone())
            .await
            .map_err(RouterError::unavailable)?;
        // The subscription must be registered before the caller sends its first request.
        client.flush().await.map_err(RouterError::unavailable)?;
        let slots = Arc::new(Semaphore::new(self.config.max_in_flight.max(1)));
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        let ended = loop {
            tokio::select! {
                () = &mut shutdown => break None,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                message = requests.next() => {
                    let Some(message) = message else {
                        break Some(RouterError::Unavailable("the command subscription ended".to_owned()));
                    };
                    let Ok(slot) = slots.clone().acquire_owned().await else { break None };
                    let handler = Handler { store: self.store.clone(), metrics: self.metrics.clone() };
                    tasks.spawn(async move {
                        handler.handle(message).await;
                        drop(slot);
                    });
                }
            }
        };
        let _ = requests.unsubscribe().await;
        while tasks.join_next().await.is_some() {}
        ended.map_or(Ok(()), Err)
    }
}

/// Runs a command service until `shutdown` completes: [`CommandService::new`] then
/// [`CommandService::run`].
pub async fn run_commands(
    store: Arc<EventStore>,
    config: CommandServiceConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RouterError> {
    CommandService::new(store, config).run(shutdown).await
}

struct Handler {
    store: Arc<EventStore>,
    metrics: Arc<CommandMetrics>,
}

/// The organisation of `wasl.cmd.<org>.…`, with the referral and verb tokens when the rest is
/// `referral.<id>.<verb>`. Without an organisation there is nobody to answer.
fn parse_subject(subject: &str) -> Option<(OrgId, Option<(&str, &str)>)> {
    let rest = subject.strip_prefix("wasl.cmd.")?;
    let (org, rest) = rest.split_once('.').unwrap_or((rest, ""));
    let org = OrgId::parse(org).ok()?;
    let mut tokens = rest.split('.');
    let target = match (tokens.next(), tokens.next(), tokens.next(), tokens.next()) {
        (Some("referral"), Some(referral), Some(verb), None) => Some((referral, verb)),
        _ => None,
    };
    Some((org, target))
}

/// A request that can be carried out.
struct Request {
    referral: ReferralId,
    verb: Verb,
    given: Uuid,
    command: ReferralCommand,
}

/// A request that cannot be read: what kind of poison (for the counter) and the answer.
struct Unreadable {
    kind: &'static str,
    reply: CommandReply,
}

impl Unreadable {
    fn new(kind: &'static str, reply: CommandReply) -> Self {
        Self { kind, reply }
    }
}

/// Reads a request's subject tokens and body, without touching the store.
fn parse_request(target: Option<(&str, &str)>, body: &[u8]) -> Result<Request, Unreadable> {
    let Some((referral, verb)) = target else {
        return Err(Unreadable::new(
            "bad_subject",
            CommandReply::bad_request("the subject must be wasl.cmd.<org>.referral.<referral id>.<verb>"),
        ));
    };
    let Some(verb) = Verb::parse(verb) else {
        return Err(Unreadable::new(
            "unknown_verb",
            CommandReply::bad_request(format!(
                "unknown verb; one of {}",
                Verb::ALL.iter().map(|v| v.token()).collect::<Vec<_>>().join(", ")
            )),
        ));
    };
    let Ok(referral) = ReferralId::parse(referral) else {
        return Err(Unreadable::new(
            "bad_referral_id",
            CommandReply::bad_request("the referral id in the subject is not a referral id"),
        ));
    };
    if body.len() > MAX_BODY {
        return Err(Unreadable::new(
            "too_large",
            CommandReply::bad_request(format!("the body is larger than {MAX_BODY} bytes")),
        ));
    }
    let (given, command) = parse_body(verb, body).map_err(|reply| Unreadable::new("bad_body", reply))?;
    Ok(Request {
        referral,
        verb,
        given,
        command,
    })
}

/// Whether `reply` lies in `org`'s inbox.
fn in_inbox(org: OrgId, reply: Option<&Subject>) -> bool {
    let prefix = format!("{}.", inbox_prefix(org));
    reply.is_some_and(|reply| reply.as_str().starts_with(&prefix) && reply.len() > prefix.len())
}

fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_unix_millis(millis)
}

impl Handler {
    async fn handle(&self, message: Message) {
        let Some((org, target)) = parse_subject(&message.subject) else {
            self.metrics.refused.fetch_add(1, Ordering::Relaxed);
            wasl_telemetry::metrics::poison("partner_commands", "no_organisation");
            tracing::warn!("partner command refused unanswered: the subject names no organisation");
            return;
        };
        if !in_inbox(org, message.reply.as_ref()) {
            self.metrics.refused.fetch_add(1, Ordering::Relaxed);
            let kind = if message.reply.is_some() {
                "foreign_reply"
            } else {
                "no_reply"
            };
            wasl_telemetry::metrics::poison("partner_commands", kind);
            tracing::warn!(org = %org, reason = kind, "partner command refused unanswered: its reply subject is not in the organisation's inbox");
            return;
        }
        // Passed on only when well-formed: the store records it with the event, and the router
        // copies it into the partner's feed.
        let traceparent = message
            .headers
            .as_ref()
            .and_then(|h| h.get(wasl_events::headers::TRACEPARENT))
            .map(|v| v.as_str())
            .filter(|v| wasl_telemetry::context::parse(v).is_some())
            .map(|v| v.trim().to_owned());
        let (verb, reply) = match parse_request(target, &message.payload) {
            Ok(request) => {
                // The command continues the partner's trace; the store's span is a child of this one.
                let span = wasl_telemetry::span!("partner.command", org = %org, verb = request.verb.token());
                wasl_telemetry::context::set_parent(&span, traceparent.as_deref());
                let verb = request.verb.token();
                (verb, self.execute(org, request, traceparent).instrument(span).await)
            }
            Err(unreadable) => {
                self.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
                wasl_telemetry::metrics::poison("partner_commands", unreadable.kind);
                // Org and kind only: the subject's other tokens and the body are the sender's.
                tracing::warn!(org = %org, reason = unreadable.kind, "partner command not understood; answered bad_request");
                let verb = target
                    .and_then(|(_, verb)| Verb::parse(verb))
                    .map_or("unknown", Verb::token);
                (verb, unreadable.reply)
            }
        };
        let outcome = match &reply.error {
            None => "ok".to_owned(),
            Some(error) => error.code.clone(),
        };
        wasl_telemetry::metrics::partner_command(verb, outcome);
        let Some(to) = message.reply else { return };
        let body = serde_json::to_vec(&reply).unwrap_or_default();
        match self.store.client().publish(to, body.into()).await {
            Ok(()) => {
                self.metrics.answered.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => tracing::warn!(org = %org, %error, "partner command answer not sent"),
        }
    }

    async fn execute(&self, org: OrgId, request: Request, traceparent: Option<String>) -> CommandReply {
        let Request {
            referral,
            verb,
            given,
            command,
        } = request;
        // The organisations of a referral never change: the cached state says who may act;
        // the command handler decides the action itself on the log's state.
        match self.store.cached::<Referral>(referral).await {
            Ok(loaded) if loaded.state.state().is_some_and(|s| s.to_org == org) => {}
            Ok(_) => return CommandReply::not_found(),
            Err(StoreError::Undecodable { sequence, .. }) => return unreadable_history(org, sequence),
            Err(error) => {
                tracing::warn!(%error, "partner command: the referral cannot be loaded");
                return CommandReply::refused("unavailable", "the event store is unavailable; try again");
            }
        }
        let meta = CommandMeta {
            command_id: command_id(org, referral, verb, given),
            context: Context {
                now: now(),
                actor: Actor {
                    user: partner_system_user(org),
                    org,
                    roles: vec![Role::PartnerSystem],
                },
            },
            traceparent,
        };
        match self.store.execute::<Referral>(referral, &command, &meta).await {
            Ok(outcome) => {
                if !outcome.replayed {
                    self.metrics.executed.fetch_add(1, Ordering::Relaxed);
                }
                CommandReply::done(outcome.version, outcome.position)
            }
            Err(CommandError::NotFound | CommandError::Rejected(DomainError::NotFound | DomainError::Forbidden(_))) => {
                CommandReply::not_found()
            }
            Err(CommandError::Rejected(refusal)) => CommandReply::refused(refusal.code(), refusal.to_string()),
            Err(CommandError::Conflict { .. } | CommandError::VersionMismatch { .. }) => CommandReply::refused(
                "conflict",
                "the referral kept changing concurrently; send the same command again",
            ),
            Err(CommandError::Store(StoreError::Undecodable { sequence, .. })) => unreadable_history(org, sequence),
            Err(error) => {
                tracing::warn!(%error, "partner command not carried out");
                CommandReply::refused("unavailable", "the event store is unavailable; try again")
            }
        }
    }
}

/// The answer when the referral's history holds a message the store cannot read: nothing is
/// decided on a history that was not read whole, and the hub's operators are told (the store
/// refuses such commands until the message is repaired or skipped).
fn unreadable_history(org: OrgId, sequence: u64) -> CommandReply {
    wasl_telemetry::metrics::poison("partner_commands", "unreadable_history");
    tracing::error!(org = %org, sequence, "partner command refused: the referral's history holds a message that cannot be read");
    CommandReply::refused(
        "unavailable",
        "the referral's history cannot be read now; the hub's operators have been told; try again later",
    )
}

/// Reads a request body for `verb`: the partner's command id and the domain command.
fn parse_body(verb: Verb, body: &[u8]) -> Result<(Uuid, ReferralCommand), CommandReply> {
    // serde's messages may quote the sender's own input; they go back to the sender only and
    // are never logged.
    let bad = |e: serde_json::Error| {
        CommandReply::bad_request(format!("the body is not a valid {} request: {e}", verb.token()))
    };
    let id =
        |text: &str| Uuid::try_parse(text.trim()).map_err(|_| CommandReply::bad_request("command_id must be a UUID"));
    let reason = |input: ReasonInput| -> Result<String, CommandReply> {
        if input.text.is_some() {
            return Err(CommandReply::bad_request(
                "reason.text is not accepted over NATS (free text must be sealed); send the code only, or use the HTTP API",
            ));
        }
        Ok(input.code)
    };
    let invalid = |e: wasl_domain::ValidationError| CommandReply::bad_request(e.to_string());
    match verb {
        Verb::Receive | Verb::Accept | Verb::Start | Verb::Resume | Verb::Complete => {
            let body: PlainBody = serde_json::from_slice(body).map_err(bad)?;
            let command = match verb {
                Verb::Receive => ReferralCommand::Receive,
                Verb::Accept => ReferralCommand::Accept,
                Verb::Start => ReferralCommand::Start,
                Verb::Resume => ReferralCommand::Resume,
                _ => ReferralCommand::Complete,
            };
            Ok((id(&body.command_id)?, command))
        }
        Verb::Hold => {
            let body: ReasonBody = serde_json::from_slice(body).map_err(bad)?;
            let code = HoldCode::parse(&reason(body.reason)?).map_err(invalid)?;
            Ok((id(&body.command_id)?, ReferralCommand::Hold(Reason::coded(code))))
        }
        Verb::Fail => {
            let body: ReasonBody = serde_json::from_slice(body).map_err(bad)?;
            let code = FailCode::parse(&reason(body.reason)?).map_err(invalid)?;
            Ok((id(&body.command_id)?, ReferralCommand::Fail(Reason::coded(code))))
        }
        Verb::Reject => {
            let body: RejectBody = serde_json::from_slice(body).map_err(bad)?;
            let code = DeclineCode::parse(&reason(body.reason)?).map_err(invalid)?;
            let suggested_org = body
                .suggested_org
                .as_deref()
                .map(OrgId::parse)
                .transpose()
                .map_err(invalid)?;
            Ok((
                id(&body.command_id)?,
                ReferralCommand::Reject(Decline {
                    reason: Reason::coded(code),
                    suggested_org,
                }),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> OrgId {
        OrgId::parse("0190b2c4-0000-7000-8000-00000000000a").unwrap()
    }

    #[test]
    fn subjects_are_read_token_by_token() {
        let subject = "wasl.cmd.0190b2c4-0000-7000-8000-00000000000a.referral.x.accept";
        assert_eq!(parse_subject(subject), Some((org(), Some(("x", "accept")))));
        assert_eq!(parse_subject("wasl.cmd.not-an-org.referral.x.accept"), None);
        assert_eq!(parse_subject("wasl.evt.0190b2c4-0000-7000-8000-00000000000a"), None);
        assert_eq!(parse_subject(&format!("{subject}.more")), Some((org(), None)));
        assert_eq!(
            parse_subject("wasl.cmd.0190b2c4-0000-7000-8000-00000000000a"),
            Some((org(), None))
        );
    }

    #[test]
    fn unreadable_requests_are_told_apart_before_the_store() {
        let kind = |target, body: &[u8]| parse_request(target, body).err().map(|u| u.kind);
        let referral = "0190b2c4-0000-7000-8000-00000000000b";
        let body = br#"{"command_id":"0190b2c4-0000-7000-8000-00000000000c"}"#;
        assert_eq!(kind(Some((referral, "accept")), body), None);
        assert_eq!(kind(None, body), Some("bad_subject"));
        assert_eq!(kind(Some((referral, "approve")), body), Some("unknown_verb"));
        assert_eq!(kind(Some(("nope", "accept")), body), Some("bad_referral_id"));
        assert_eq!(kind(Some((referral, "accept")), b"\xff\x00"), Some("bad_body"));
        assert_eq!(
            kind(Some((referral, "accept")), &vec![b' '; MAX_BODY + 1]),
            Some("too_large")
        );
        // A long field name quoted back is cut short.
        let long = format!(r#"{{"{}":1}}"#, "x".repeat(MAX_BODY / 2));
        let reply = parse_request(Some((referral, "accept")), long.as_bytes())
            .err()
            .unwrap()
            .reply;
        assert!(reply.error.unwrap().message.len() <= MAX_MESSAGE + '…'.len_utf8());
    }

    #[test]
    fn only_replies_into_the_organisations_inbox_are_answered() {
        let inbox = |s: &str| Some(Subject::from(s));
        assert!(in_inbox(
            org(),
            inbox("_INBOX_0190b2c4-0000-7000-8000-00000000000a.abc").as_ref()
        ));
        assert!(!in_inbox(org(), inbox("_INBOX.abc").as_ref()));
        assert!(!in_inbox(
            org(),
            inbox("_INBOX_0190b2c4-0000-7000-8000-00000000000a").as_ref()
        ));
        assert!(!in_inbox(
            org(),
            inbox("_INBOX_0190b2c4-0000-7000-8000-00000000000a.").as_ref()
        ));
        assert!(!in_inbox(org(), None));
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let referral = ReferralId::parse("0190b2c4-0000-7000-8000-00000000000b").unwrap();
        let given = Uuid::from_u128(42);
        let a = command_id(org(), referral, Verb::Accept, given);
        assert_eq!(a, command_id(org(), referral, Verb::Accept, given));
        assert_ne!(a, command_id(org(), referral, Verb::Reject, given));
        assert_ne!(partner_system_user(org()).as_uuid(), a.as_uuid());
    }

    #[test]
    fn bodies_refuse_unknown_fields_and_free_text() {
        let ok = parse_body(
            Verb::Accept,
            br#"{"command_id":"0190b2c4-0000-7000-8000-00000000000c"}"#,
        );
        assert!(matches!(ok, Ok((_, ReferralCommand::Accept))));
        let code = |r: Result<(Uuid, ReferralCommand), CommandReply>| r.unwrap_err().error.unwrap().code;
        assert_eq!(
            code(parse_body(
                Verb::Accept,
                br#"{"command_id":"0190b2c4-0000-7000-8000-00000000000c","x":1}"#
            )),
            "bad_request"
        );
        assert_eq!(
            code(parse_body(
                Verb::Hold,
                br#"{"command_id":"0190b2c4-0000-7000-8000-00000000000c","reason":{"code":"other","text":"t"}}"#
            )),
            "bad_request"
        );
        assert_eq!(
            code(parse_body(
                Verb::Hold,
                br#"{"command_id":"0190b2c4-0000-7000-8000-00000000000c","reason":{"code":"nope"}}"#
            )),
            "bad_request"
        );
        assert_eq!(code(parse_body(Verb::Accept, b"not json")), "bad_request");
        assert_eq!(
            code(parse_body(Verb::Accept, br#"{"command_id":"nope"}"#)),
            "bad_request"
        );
    }
}
