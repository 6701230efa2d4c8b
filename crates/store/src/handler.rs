//! The command handler: load → decide → append, with bounded retries, idempotent by command id.

use crate::aggregate::StoredAggregate;
use crate::append::{self, Ack, Append, AppendError};
use crate::cache::Cache;
use crate::config::StoreConfig;
use crate::error::{CommandError, StoreError};
use crate::load::{self, LoadStrategy, Read, Recorded};
use crate::provision;
use crate::skips::Skips;
use async_nats::Client;
use async_nats::jetstream::{self, stream::Stream};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tracing::Instrument as _;
use wasl_domain::ids::{CommandId, EventId, uuid_v7_from_parts};
use wasl_domain::time::Timestamp;
use wasl_domain::{Context, DomainError};
use wasl_events::{EventMeta, StoredEvent};

/// Who sends a command, when, and under which id.
#[derive(Debug, Clone)]
pub struct CommandMeta {
    /// The client's id for the command; a retry carries the same id and gets the same answer.
    pub command_id: CommandId,
    /// The decision's time and actor.
    pub context: Context,
    /// The caller's W3C trace context, if any.
    pub traceparent: Option<String>,
}

/// The answer to a command that was carried out (now or before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The aggregate's version after the command: how many events it has.
    pub version: u64,
    /// The stream position of the command's last event; a query can wait for read models to
    /// reach it.
    pub position: u64,
    /// The command had been carried out before; this is the original answer.
    pub replayed: bool,
}

/// An aggregate as loaded from the log.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Loaded<A> {
    pub state: A,
    /// How many events it has.
    pub version: u64,
    /// The stream sequence of its last event (0 when it has none).
    pub last_sequence: u64,
    /// The outcome of every command recorded in its history.
    commands: HashMap<CommandId, CommandOutcome>,
}

impl<A: StoredAggregate> Loaded<A> {
    fn empty() -> Self {
        Self {
            state: A::default(),
            version: 0,
            last_sequence: 0,
            commands: HashMap::new(),
        }
    }

    fn apply(&mut self, recorded: Vec<Recorded>) -> Result<(), StoreError> {
        for Recorded { sequence, event, .. } in recorded {
            let command_id = event.meta.command_id;
            let Some(event) = A::unwrap(event.event) else {
                return Err(StoreError::Undecodable {
                    sequence,
                    reason: "an event of another kind of aggregate is on this subject".to_owned(),
                });
            };
            self.state = std::mem::take(&mut self.state).evolve(&event);
            self.version += 1;
            self.last_sequence = sequence;
            self.commands.insert(
                command_id,
                CommandOutcome {
                    version: self.version,
                    position: sequence,
                    replayed: false,
                },
            );
        }
        Ok(())
    }

    /// The recorded outcome of a command, if this aggregate's history holds it.
    pub fn outcome_of(&self, command_id: CommandId) -> Option<CommandOutcome> {
        self.commands.get(&command_id).map(|outcome| CommandOutcome {
            replayed: true,
            ..*outcome
        })
    }
}

/// A cached aggregate, shared by the commands on it in this process.
type Shared<A> = Arc<Mutex<Loaded<A>>>;

fn lock<A>(shared: &Shared<A>) -> MutexGuard<'_, Loaded<A>> {
    // A panic while holding the lock leaves at worst a state that OCC and catch-up repair.
    shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The event store and command handler.
pub struct EventStore {
    client: Client,
    stream: Stream,
    config: StoreConfig,
    cache: Cache,
    strategy: LoadStrategy,
    skips: Skips,
}

impl EventStore {
    /// Connects to the stream, creating it when missing (see [`provision::ensure_stream`]).
    pub async fn open(client: Client, config: StoreConfig) -> Result<Self, StoreError> {
        let stream = provision::ensure_stream(&Self::jetstream(&client, &config), &config).await?;
        Ok(Self::with_stream(client, stream, config))
    }

    /// Connects to an existing event stream; `None` when the server has no Wasl event log.
    /// Unlike [`EventStore::open`] it never creates the stream.
    pub async fn open_existing(client: Client, config: StoreConfig) -> Result<Option<Self>, StoreError> {
        let stream = provision::existing_stream(&Self::jetstream(&client, &config), &config).await?;
        Ok(stream.map(|stream| Self::with_stream(client, stream, config)))
    }

    fn jetstream(client: &Client, config: &StoreConfig) -> jetstream::Context {
        let mut js = jetstream::new(client.clone());
        js.set_timeout(config.request_timeout);
        js
    }

    fn with_stream(client: Client, stream: Stream, config: StoreConfig) -> Self {
        Self {
            skips: Skips::new(Self::jetstream(&client, &config)),
            client,
            stream,
            cache: Cache::new(config.cache_capacity),
            config,
            strategy: LoadStrategy::default(),
        }
    }

    /// Chooses how aggregates are read (for benchmarks).
    pub fn with_load_strategy(mut self, strategy: LoadStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The NATS client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The stream.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// The settings.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The operator's skip decisions (see [`crate::skips`]).
    pub fn skips(&self) -> &Skips {
        &self.skips
    }

    /// The events of `subject` from stream sequence `from` on, in order, passing over messages
    /// an operator skipped; any other message that is not a readable event is
    /// [`StoreError::Undecodable`].
    pub async fn read_history(&self, subject: &str, from: u64) -> Result<Vec<Recorded>, StoreError> {
        let mut out = Vec::new();
        for read in load::read_messages(&self.stream, self.strategy, subject, from).await? {
            if let Some(recorded) = self.readable(read).await? {
                out.push(recorded);
            }
        }
        Ok(out)
    }

    /// An event; `None` for a skipped message; an error for any other unreadable one.
    async fn readable(&self, read: Read) -> Result<Option<Recorded>, StoreError> {
        match read {
            Read::Event(recorded) => Ok(Some(recorded)),
            Read::Unreadable { sequence, .. } if self.skips.contains(sequence).await? => Ok(None),
            Read::Unreadable { sequence, reason } => {
                wasl_telemetry::metrics::poison("store", "unreadable_history");
                tracing::error!(
                    sequence,
                    %reason,
                    "an aggregate's history holds a message that is not a Wasl event; commands on it are refused until it is repaired (see docs/operations.md)"
                );
                Err(StoreError::Undecodable { sequence, reason })
            }
        }
    }

    /// The cached entry of an aggregate, loading it on a miss; `true` when just read from the log.
    async fn entry<A: StoredAggregate>(&self, id: A::Id) -> Result<(Shared<A>, bool), StoreError> {
        let key = (A::KIND, A::uuid(id));
        if let Some(shared) = self.cache.get::<Shared<A>>(key) {
            return Ok((shared, false));
        }
        let shared: Shared<A> = Arc::new(Mutex::new(Loaded::empty()));
        self.catch_up(id, &shared).await?;
        self.cache.put(key, shared.clone());
        Ok((shared, true))
    }

    /// Reads the events after what the entry holds and applies them.
    async fn catch_up<A: StoredAggregate>(&self, id: A::Id, shared: &Shared<A>) -> Result<(), StoreError> {
        let from = lock(shared).last_sequence + 1;
        let mut read = Vec::new();
        for message in load::read_messages(&self.stream, self.strategy, &A::subject(id), from).await? {
            let sequence = message.sequence();
            read.push((sequence, self.readable(message).await?));
        }
        let mut loaded = lock(shared);
        // Another command may have caught the entry up meanwhile; apply only what is new.
        for (sequence, recorded) in read {
            if sequence <= loaded.last_sequence {
                continue;
            }
            match recorded {
                Some(recorded) => loaded.apply(vec![recorded])?,
                // A skipped message is no event of the aggregate, but it holds a place in its
                // subject: the next append must expect it as the subject's last message.
                None => loaded.last_sequence = sequence,
            }
        }
        Ok(())
    }

    /// The aggregate as this process last saw it, without asking the log for newer events (it
    /// is read from the log only when this process has never seen it, or saw it before it
    /// existed). Enough for facts that never change once recorded — a referral's organisations,
    /// a case's owner — and one JetStream round trip cheaper than [`EventStore::load`].
    pub async fn cached<A: StoredAggregate>(&self, id: A::Id) -> Result<Loaded<A>, StoreError> {
        let (shared, _) = self.entry(id).await?;
        let loaded = lock(&shared).clone();
        if loaded.version == 0 {
            return self.load(id).await;
        }
        Ok(loaded)
    }

    /// Loads an aggregate as the log has it now.
    pub async fn load<A: StoredAggregate>(&self, id: A::Id) -> Result<Loaded<A>, StoreError> {
        let (shared, fresh) = self.entry(id).await?;
        if !fresh {
            self.catch_up(id, &shared).await?;
        }
        Ok(lock(&shared).clone())
    }

    /// Carries out a command on the aggregate `id`: decides on its current state and appends
    /// the events. A command id seen before answers with the original outcome.
    ///
    /// The cached state is decided on in place, under a short lock, and never copied; after a
    /// successful append the events are applied to it unless a concurrent catch-up already did.
    pub async fn execute<A: StoredAggregate>(
        &self,
        id: A::Id,
        command: &A::Command,
        meta: &CommandMeta,
    ) -> Result<CommandOutcome, CommandError> {
        self.execute_at::<A>(id, command, meta, None).await
    }

    /// Like [`EventStore::execute`], but only on the aggregate at `expected_version` when one
    /// is given (an HTTP `If-Match`): another version is [`CommandError::VersionMismatch`]
    /// before deciding, and an append that loses a race after deciding on the expected version
    /// is [`CommandError::Conflict`] at once, without deciding again on a version the caller
    /// never saw. A command id seen before still answers with the original outcome.
    ///
    /// Each command runs in a `store.execute` span (a child of the caller's, or of
    /// `meta.traceparent` when the caller has none) and is counted by outcome.
    pub async fn execute_at<A: StoredAggregate>(
        &self,
        id: A::Id,
        command: &A::Command,
        meta: &CommandMeta,
        expected_version: Option<u64>,
    ) -> Result<CommandOutcome, CommandError> {
        let kind = A::KIND.subject_token();
        let name = A::command_name(command);
        let span = wasl_telemetry::span!("store.execute", kind, command = name, aggregate = %id, command_id = %meta.command_id);
        if wasl_telemetry::context::current().is_none() {
            wasl_telemetry::context::set_parent(&span, meta.traceparent.as_deref());
        }
        let result = self
            .decide_and_append::<A>(id, command, meta, expected_version)
            .instrument(span)
            .await;
        let outcome = match &result {
            Ok(outcome) if outcome.replayed => "replayed",
            Ok(_) => "ok",
            Err(CommandError::NotFound) => "not_found",
            Err(CommandError::Rejected(_)) => "rejected",
            Err(CommandError::Conflict { .. }) => "conflict",
            Err(CommandError::VersionMismatch { .. }) => "version_mismatch",
            Err(CommandError::Unavailable(_)) => "unavailable",
            Err(CommandError::Store(_)) => "error",
        };
        wasl_telemetry::metrics::command(kind, name, outcome);
        result
    }

    async fn decide_and_append<A: StoredAggregate>(
        &self,
        id: A::Id,
        command: &A::Command,
        meta: &CommandMeta,
        expected_version: Option<u64>,
    ) -> Result<CommandOutcome, CommandError> {
        let kind = A::KIND.subject_token();
        // The store's span when spans are exported, else the caller's context passed through.
        let traceparent = wasl_telemetry::context::outgoing(meta.traceparent.as_deref());
        let subject = A::subject(id);
        let (shared, mut fresh) = self.entry::<A>(id).await?;
        let mut conflicts = 0;
        loop {
            let at_other_version = {
                let loaded = lock(&shared);
                if let Some(outcome) = loaded.outcome_of(meta.command_id) {
                    return Ok(outcome);
                }
                match expected_version {
                    Some(expected) if expected != loaded.version && fresh => {
                        return Err(CommandError::VersionMismatch {
                            current_version: loaded.version,
                        });
                    }
                    Some(expected) => expected != loaded.version,
                    None => false,
                }
            };
            if at_other_version {
                // The cache may be behind: judge the precondition on the log's state.
                self.catch_up(id, &shared).await?;
                fresh = true;
                continue;
            }
            let (decided, expected, version) = {
                let loaded = lock(&shared);
                (
                    loaded.state.decide(command, &meta.context),
                    loaded.last_sequence,
                    loaded.version,
                )
            };
            let events = match decided {
                Ok(events) => events,
                // A refusal may come from a stale cached state: decide again on the log's state.
                Err(_) if !fresh => {
                    self.catch_up(id, &shared).await?;
                    fresh = true;
                    continue;
                }
                Err(DomainError::NotFound) => return Err(CommandError::NotFound),
                Err(err) => return Err(CommandError::Rejected(err)),
            };
            let stored = stored_events::<A>(id, events, meta);
            let append = Append {
                subject: &subject,
                expected_last_sequence: expected,
                events: &stored,
                traceparent: traceparent.as_deref(),
                attempt: 0,
            };
            let started = std::time::Instant::now();
            let appended = self.append_settled(append).await;
            wasl_telemetry::metrics::append_time(kind, started.elapsed());
            match appended {
                Ok(Ack {
                    duplicate: false,
                    last_sequence,
                }) => {
                    let count = stored.len() as u64;
                    let outcome = CommandOutcome {
                        version: version + count,
                        position: last_sequence,
                        replayed: false,
                    };
                    let first = last_sequence + 1 - count;
                    let mut loaded = lock(&shared);
                    if loaded.last_sequence == expected {
                        let recorded = stored
                            .into_iter()
                            .zip(first..)
                            .map(|(event, sequence)| Recorded {
                                sequence,
                                event,
                                traceparent: None,
                            })
                            .collect();
                        loaded.apply(recorded)?;
                    }
                    return Ok(outcome);
                }
                // Stored before by an earlier attempt: the history has the original outcome.
                Ok(Ack { duplicate: true, .. }) | Err(AppendError::Conflict) => {
                    self.catch_up(id, &shared).await?;
                    fresh = true;
                    let loaded = lock(&shared);
                    if loaded.outcome_of(meta.command_id).is_none() {
                        conflicts += 1;
                        wasl_telemetry::metrics::conflict(kind);
                        if expected_version.is_some() || conflicts > self.config.max_conflict_retries {
                            return Err(CommandError::Conflict {
                                current_version: loaded.version,
                            });
                        }
                    }
                }
                Err(AppendError::Unsettled(reason)) => {
                    // Resent as often as allowed without an answer: whether it landed decides.
                    self.catch_up(id, &shared).await?;
                    return match lock(&shared).outcome_of(meta.command_id) {
                        Some(outcome) => Ok(outcome),
                        None => Err(CommandError::Unavailable(reason)),
                    };
                }
                Err(AppendError::Unavailable(reason)) => return Err(CommandError::Unavailable(reason)),
                Err(AppendError::Store(err)) => return Err(err.into()),
            }
        }
    }

    /// Appends, resending the same append (same ids) while its outcome is unknown.
    async fn append_settled(&self, mut append: Append<'_>) -> Result<Ack, AppendError> {
        let mut delay = Duration::from_millis(50);
        loop {
            match append::append(&self.client, &self.config, append).await {
                Err(AppendError::Unsettled(reason)) if append.attempt < self.config.max_unsettled_retries => {
                    tracing::warn!(attempt = append.attempt, %reason, "append outcome unknown; sending it again");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                    append.attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// The id the store gives the `index`th event of a command decided at `now`. Event ids derive
/// from the command id, its time and the index, so a retry of the same command produces
/// byte-identical events — and a caller that seals personal data for an event can bind it to
/// this id before the command is decided.
pub fn event_id(command_id: CommandId, now: Timestamp, index: usize) -> EventId {
    let millis = u64::try_from(now.unix_millis()).unwrap_or(0);
    let mut random = [0u8; 10];
    random.copy_from_slice(&command_id.as_uuid().as_bytes()[6..]);
    let index = u16::try_from(index + 1).unwrap_or(u16::MAX).to_be_bytes();
    random[8] ^= index[0];
    random[9] ^= index[1];
    EventId::from_uuid(uuid_v7_from_parts(millis, random)).unwrap_or_else(|_| unreachable_v7())
}

/// Wraps a command's events for storage, with ids from [`event_id`].
fn stored_events<A: StoredAggregate>(id: A::Id, events: Vec<A::Event>, meta: &CommandMeta) -> Vec<StoredEvent> {
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| StoredEvent {
            meta: EventMeta {
                event_id: event_id(meta.command_id, meta.context.now, index),
                command_id: meta.command_id,
                occurred_at: meta.context.now,
                actor: meta.context.actor.clone(),
            },
            event: A::wrap(id, event),
        })
        .collect()
}

/// `uuid_v7_from_parts` always sets the version to 7.
fn unreachable_v7() -> EventId {
    unreachable!("uuid_v7_from_parts builds version 7 UUIDs")
}
