//! The router: follows `WASL_EVENTS` from its checkpoint and delivers every referral event, as a
//! [`PartnerMessage`](crate::message::PartnerMessage), to the receiving organisation's feed
//! `WASL_OUT_<org>`, exactly once per feed — also across crashes, restarts and a full replay.
//!
//! How exactly once holds (details in `docs/partners.md`):
//! - every partner message records its source sequence (`Wasl-Source-Seq`); before the first
//!   publish to a feed in a run, the router reads the feed's last message and skips every event
//!   at or below that sequence;
//! - each publish expects the feed's last stream sequence (`Nats-Expected-Last-Sequence`), so a
//!   second writer, or a publish whose predecessor was lost, is refused instead of doubling or
//!   reordering; and `Nats-Msg-Id` is the source event id for resends within the window;
//! - the checkpoint (KV bucket) moves only after every publish up to it was acknowledged; it
//!   only saves rereading, correctness comes from the feeds themselves.
//!
//! When a case's personal data is erased (`wasl.case.personal_data_erased.v1`), every
//! organisation that received a referral of the case before the erasure gets one
//! [`RedactionNotice`](crate::message::RedactionNotice) naming its referrals of that case. It is
//! routed like a referral event — one message per feed for that event, carrying the erasure's
//! sequence in `Wasl-Source-Seq` and published with the feed's expected last sequence — so the
//! same three layers keep it exactly once; its `Nats-Msg-Id` is derived from the erasure and the
//! organisation. Which organisations those are comes from the case index ([`crate::cases`]),
//! checked against each referral's own history in the log.
//!
//! What it never does:
//! - stop on a message it cannot read or route: it parks it ([`crate::parked`]), reports it and
//!   delivers the rest;
//! - follow a log that went backwards: the checkpoint records the event id it points at, checked
//!   on every start and every few seconds ([`wasl_store::continuity`]); a log that ends before it
//!   or holds another event there stops delivery — every new event up to the old checkpoint would
//!   otherwise be taken for delivered — until the log matches again.

use crate::cases::{self, CaseIndex};
use crate::config::RouterConfig;
use crate::error::RouterError;
use crate::message::{self, RedactionNotice, RouteState};
use crate::outs::{OutStreams, Position};
use crate::parked::{self, ParkedEvent, Resolution};
use async_nats::Client;
use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, kv, stream::Stream};
use futures_util::{FutureExt, StreamExt};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use wasl_domain::case::CaseEvent;
use wasl_domain::directory::OrganisationEvent;
use wasl_domain::ids::{CaseId, OrgId, ReferralId};
use wasl_domain::referral::ReferralEvent;
use wasl_events::DomainEvent;
use wasl_events::partner::{out_stream, out_subject, redaction_subject};
use wasl_store::continuity::{self, Mark};
use wasl_store::load::{LoadStrategy, Read, Recorded, read_messages};
use wasl_store::skips::Skips;

/// The KV key of the checkpoint.
const CHECKPOINT_KEY: &str = "checkpoint";

/// Counters of a router, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct RouterMetrics {
    /// Partner messages published and acknowledged (redaction notices included).
    pub routed: AtomicU64,
    /// Redaction notices published and acknowledged (also counted in `routed`).
    pub redactions: AtomicU64,
    /// Referral events and redaction notices found already delivered in their feed (after a
    /// restart or a replay).
    pub skipped: AtomicU64,
    /// The checkpoint: every event up to this source sequence is routed.
    pub position: AtomicU64,
    /// Times the router resumed from its checkpoint after a transient error.
    pub restarts: AtomicU64,
    /// Events parked because they cannot be read or routed (in this run).
    pub unreadable: AtomicU64,
    /// Feed streams created by this router.
    pub streams_created: AtomicU64,
    /// Why delivery stopped, while it is stopped: the event log went backwards under the
    /// checkpoint.
    pub diverged: RwLock<Option<String>>,
    /// Parked events no operator has resolved yet (counted on every start and every
    /// [`RouterConfig::check_interval`]).
    pub open_parked: AtomicU64,
}

impl RouterMetrics {
    /// Why delivery stopped, if it did.
    pub fn diverged(&self) -> Option<String> {
        self.diverged.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records (or, with `None`, clears) why delivery stopped; whether that changed anything.
    fn set_diverged(&self, reason: Option<String>) -> bool {
        let mut current = self.diverged.write().unwrap_or_else(|p| p.into_inner());
        let changed = *current != reason;
        *current = reason;
        changed
    }
}

/// The router service.
pub struct Router {
    js: jetstream::Context,
    events: Stream,
    checkpoints: kv::Store,
    skips: Skips,
    config: RouterConfig,
    metrics: Arc<RouterMetrics>,
}

impl Router {
    /// Connects: the event stream (created when missing, checked when present, as the store
    /// does) and the checkpoint bucket (created when missing).
    pub async fn open(client: Client, config: RouterConfig) -> Result<Self, RouterError> {
        let mut js = jetstream::new(client);
        js.set_timeout(config.events.request_timeout);
        let events = wasl_store::provision::ensure_stream(&js, &config.events).await?;
        let checkpoints = match js.get_key_value(&config.checkpoint_bucket).await {
            Ok(store) => store,
            Err(_) => {
                let bucket = kv::Config {
                    bucket: config.checkpoint_bucket.clone(),
                    description: "Wasl router checkpoint".to_owned(),
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: config.out_streams.replicas.max(1),
                    ..Default::default()
                };
                match js.create_key_value(bucket).await {
                    Ok(store) => store,
                    Err(_) => js
                        .get_key_value(&config.checkpoint_bucket)
                        .await
                        .map_err(RouterError::unavailable)?,
                }
            }
        };
        keep_every_partner_feeds_consumers(&js).await?;
        Ok(Self {
            skips: Skips::new(js.clone()),
            js,
            events,
            checkpoints,
            config,
            metrics: Arc::default(),
        })
    }

    /// Its counters.
    pub fn metrics(&self) -> Arc<RouterMetrics> {
        self.metrics.clone()
    }

    /// The checkpoint: the source sequence up to which every event is routed (0: none).
    pub async fn checkpoint(&self) -> Result<u64, RouterError> {
        Ok(self.mark().await?.sequence)
    }

    /// The checkpoint with the event id it points at (`<sequence> <event id>`; a checkpoint
    /// written before the id was recorded is a bare number).
    async fn mark(&self) -> Result<Mark, RouterError> {
        let value = self
            .checkpoints
            .get(CHECKPOINT_KEY)
            .await
            .map_err(RouterError::unavailable)?;
        let Some(bytes) = value else {
            return Ok(Mark::default());
        };
        let text = std::str::from_utf8(&bytes).unwrap_or_default();
        let mut parts = text.split_whitespace();
        let sequence = parts
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| RouterError::Unavailable("the router checkpoint is not a number".to_owned()))?;
        Ok(Mark {
            sequence,
            event_id: parts.next().map(str::to_owned),
        })
    }

    /// Sets the checkpoint back to the beginning, so the next run reads the whole log again
    /// (the feeds still receive nothing twice). Only while no router runs.
    pub async fn reset_checkpoint(&self) -> Result<(), RouterError> {
        self.write_checkpoint(&Mark::default()).await
    }

    async fn write_checkpoint(&self, mark: &Mark) -> Result<(), RouterError> {
        let value = match &mark.event_id {
            Some(id) => format!("{} {id}", mark.sequence),
            None => mark.sequence.to_string(),
        };
        self.checkpoints
            .put(CHECKPOINT_KEY, value.into())
            .await
            .map_err(RouterError::unavailable)?;
        Ok(())
    }

    /// The events the router parked, in log order; an unreadable message an operator skipped
    /// in the log (`wasl log skip`) shows as resolved.
    pub async fn parked(&self) -> Result<Vec<ParkedEvent>, RouterError> {
        let mut events = parked::list(&self.checkpoints).await?;
        for event in events.iter_mut().filter(|e| e.resolution.is_none()) {
            if self.skips.contains(event.sequence).await? {
                event.resolution = Some(Resolution {
                    reason: "skipped in the event log (wasl log skip)".to_owned(),
                    by: String::new(),
                    at: String::new(),
                });
            }
        }
        Ok(events)
    }

    /// Records an operator's resolution of the parked event at `sequence`: the partner will not
    /// receive that event (a later event of the referral carries its whole state). `None` when
    /// nothing is parked at `sequence`.
    pub async fn resolve(&self, sequence: u64, resolution: Resolution) -> Result<Option<ParkedEvent>, RouterError> {
        parked::resolve(&self.checkpoints, sequence, resolution).await
    }

    /// Runs until `shutdown` completes. Transient errors (NATS unavailable, a feed that moved)
    /// are logged and retried from the checkpoint after [`RouterConfig::retry_delay`]. An event
    /// that cannot be read or routed is parked and the rest delivered. A log that went backwards
    /// under the checkpoint stops delivery (see [`RouterMetrics::diverged`]) until it matches
    /// again, checked every [`RouterConfig::check_interval`].
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), RouterError> {
        tokio::pin!(shutdown);
        loop {
            let outcome = tokio::select! {
                () = &mut shutdown => return Ok(()),
                outcome = self.attempt() => outcome,
            };
            let pause = match outcome {
                Err(error) if error.is_fatal() => {
                    tracing::error!(%error, "router stopped");
                    return Err(error);
                }
                Err(RouterError::Diverged(reason)) => {
                    if self.metrics.set_diverged(Some(reason.clone())) {
                        wasl_telemetry::metrics::log_diverged("router");
                        tracing::error!(%reason, "the event log is behind the router's checkpoint or was replaced; delivery stopped (see docs/operations.md)");
                    }
                    self.config.check_interval
                }
                Err(error) => {
                    self.metrics.restarts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "router interrupted; resuming from the checkpoint");
                    self.config.retry_delay
                }
                Ok(()) => continue,
            };
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One subscription from the checkpoint until an error.
    async fn attempt(&self) -> Result<(), RouterError> {
        let mut mark = self.mark().await?;
        if let Some(divergence) = continuity::check(&self.events, &mark).await? {
            return Err(RouterError::Diverged(divergence.to_string()));
        }
        if self.metrics.set_diverged(None) {
            tracing::warn!("the event log matches the router's checkpoint again; delivering");
        }
        self.count_open_parked().await?;
        let mut checkpoint = mark.sequence;
        self.metrics.position.store(checkpoint, Ordering::Relaxed);
        let index = CaseIndex::open(
            &self.js,
            &cases::bucket_name(&self.config.checkpoint_bucket),
            self.config.out_streams.replicas,
        )
        .await?;
        let index_position = index.position().await?;
        let mut run = Run {
            floor: checkpoint,
            outs: OutStreams::new(self.js.clone(), self.config.out_streams.clone(), self.metrics.clone()),
            states: States::new(self.config.cache_capacity),
            index,
            index_position,
            index_acks: Vec::new(),
            recent: HashMap::new(),
        };
        // An index behind the checkpoint is caught up first: the events up to the checkpoint are
        // read again only to index them (see `crate::cases`).
        let from = checkpoint.min(index_position) + 1;
        let mut feed = wasl_store::subscribe::subscribe(&self.events, from, None).await?;
        let batch_size = self.config.batch_size.max(1);
        let mut check = tokio::time::interval(self.config.check_interval);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        check.tick().await;
        loop {
            let first = tokio::select! {
                first = feed.next() => first,
                _ = check.tick() => {
                    if let Some(divergence) = continuity::check(&self.events, &mark).await? {
                        return Err(RouterError::Diverged(divergence.to_string()));
                    }
                    self.count_open_parked().await?;
                    continue;
                }
            };
            let Some(first) = first else {
                return Err(RouterError::Unavailable("the event log subscription ended".to_owned()));
            };
            let mut batch = vec![first];
            while batch.len() < batch_size {
                match feed.next().now_or_never() {
                    Some(Some(item)) => batch.push(item),
                    _ => break,
                }
            }
            // Nothing read from a log that was replaced since the checkpoint is delivered.
            if let Some(divergence) = continuity::check(&self.events, &mark).await? {
                return Err(RouterError::Diverged(divergence.to_string()));
            }
            let mut pending = Vec::new();
            let mut done = mark.clone();
            let mut failure = None;
            for item in batch {
                let routed = match item {
                    // Delivered in an earlier run: only the case index may lack it.
                    Ok(recorded) if recorded.sequence <= checkpoint => {
                        self.index(&mut run, &recorded).await.map(|()| {
                            let id = recorded.event.meta.event_id.to_string();
                            (recorded.sequence, Some(id), Vec::new())
                        })
                    }
                    Ok(recorded) => match self.route(&mut run, &recorded).await {
                        Err(RouterError::Unroutable { sequence, reason }) => {
                            let subject = recorded.event.event.subject();
                            let event_type = Some(recorded.event.event.event_type().to_owned());
                            self.park(sequence, subject, event_type, "unroutable", reason).await
                        }
                        routed => routed,
                    }
                    .map(|p| {
                        let id = recorded.event.meta.event_id.to_string();
                        (recorded.sequence, Some(id), p)
                    }),
                    Err(wasl_store::StoreError::Undecodable { sequence, .. }) if sequence <= checkpoint => {
                        Ok((sequence, None, Vec::new()))
                    }
                    Err(wasl_store::StoreError::Undecodable { sequence, reason }) => self
                        .unreadable(sequence, reason)
                        .await
                        .map(|()| (sequence, None, Vec::new())),
                    Err(err) => Err(err.into()),
                };
                match routed {
                    Ok((sequence, event_id, publish)) => {
                        pending.extend(publish);
                        done = Mark { sequence, event_id };
                    }
                    Err(err) => {
                        failure = Some(err);
                        break;
                    }
                }
            }
            // On an error what was acknowledged is in the feeds; the checkpoint stays.
            self.settle(&mut run, pending).await?;
            // The index's position before the checkpoint: an index ahead of the checkpoint only
            // means writing entries again, one behind it would miss referrals at an erasure.
            if done.sequence > run.index_position {
                run.index.set_position(done.sequence).await?;
                run.index_position = done.sequence;
            }
            if done.sequence > checkpoint {
                self.write_checkpoint(&done).await?;
                checkpoint = done.sequence;
                mark = done;
                self.metrics.position.store(checkpoint, Ordering::Relaxed);
                wasl_telemetry::metrics::router_position(checkpoint);
            }
            if let Some(err) = failure {
                return Err(err);
            }
        }
    }

    /// Counts the parked events no operator has resolved yet, for `/readyz`.
    async fn count_open_parked(&self) -> Result<(), RouterError> {
        let open = self.parked().await?.iter().filter(|p| p.resolution.is_none()).count();
        self.metrics.open_parked.store(open as u64, Ordering::Relaxed);
        Ok(())
    }

    /// A message in the log that is not a readable event: passed over if an operator skipped
    /// it, parked otherwise.
    async fn unreadable(&self, sequence: u64, reason: String) -> Result<(), RouterError> {
        if self.skips.contains(sequence).await? {
            return Ok(());
        }
        let (subject, event_type) = match self.events.get_raw_message(sequence).await {
            Ok(message) => (
                message.subject.to_string(),
                message
                    .headers
                    .get(wasl_events::headers::CE_TYPE)
                    .map(|v| v.as_str().chars().take(100).collect()),
            ),
            Err(err) => return Err(RouterError::unavailable(err)),
        };
        self.park(sequence, subject, event_type, "unreadable", reason)
            .await
            .map(|_| ())
    }

    /// Parks an event (durably, before the checkpoint passes it) and reports it.
    async fn park(
        &self,
        sequence: u64,
        subject: String,
        event_type: Option<String>,
        kind: &'static str,
        error: String,
    ) -> Result<Vec<Pending>, RouterError> {
        let event = ParkedEvent {
            sequence,
            subject,
            event_type,
            error,
            parked_at: parked::now(),
            resolution: None,
        };
        parked::park(&self.checkpoints, &event).await?;
        self.metrics.unreadable.fetch_add(1, Ordering::Relaxed);
        self.metrics.open_parked.fetch_add(1, Ordering::Relaxed);
        wasl_telemetry::metrics::poison("router", kind);
        tracing::error!(
            sequence,
            subject = %event.subject,
            error = %event.error,
            "an event the router cannot deliver was parked; the rest is delivered (wasl router parked)"
        );
        Ok(Vec::new())
    }

    /// Indexes a referral's `requested` event under its case (unless the index has it).
    async fn index(&self, run: &mut Run, recorded: &Recorded) -> Result<(), RouterError> {
        if recorded.sequence <= run.index_position {
            return Ok(());
        }
        if let DomainEvent::Referral(id, ReferralEvent::Requested(request)) = &recorded.event.event {
            let ack = run.index.record(request.case_id, *id, request.to_org).await?;
            run.index_acks.push(ack);
            run.recent.entry(request.case_id).or_default().insert(*id);
        }
        Ok(())
    }

    /// Routes one event: creates a feed on registration, publishes a partner message for a
    /// referral event (unless its feed has it already), a redaction notice to each past
    /// recipient of an erased case's referrals. Returns the publishes to settle.
    async fn route(&self, run: &mut Run, recorded: &Recorded) -> Result<Vec<Pending>, RouterError> {
        let sequence = recorded.sequence;
        self.index(run, recorded).await?;
        let (id, event) = match &recorded.event.event {
            DomainEvent::Organisation(org, OrganisationEvent::Registered { .. }) => {
                run.outs.ensure(*org).await?;
                return Ok(Vec::new());
            }
            DomainEvent::Case(case, CaseEvent::PersonalDataErased { .. }) => {
                return self.redact(run, recorded, *case).await;
            }
            DomainEvent::Referral(id, event) => (*id, event),
            _ => return Ok(Vec::new()),
        };
        let state = run.states.before(&self.events, id, sequence).await?;
        state.apply(sequence, event);
        let unroutable = |reason: String| RouterError::Unroutable { sequence, reason };
        let org = state
            .to_org()
            .ok_or_else(|| unroutable("the referral's history does not start with requested".to_owned()))?;
        let message = state
            .message(
                id,
                &recorded.event.meta,
                recorded.event.event.event_type(),
                &self.config.api_base_url,
            )
            .map_err(unroutable)?;
        let position = run.outs.position(org, run.floor).await?;
        if self.delivered(sequence, position) {
            return Ok(Vec::new());
        }
        let traceparent = traceparent(recorded, org);
        let body = serde_json::to_vec(&message).map_err(|e| RouterError::Encode(e.to_string()))?;
        let headers = message::headers(&message, sequence, traceparent.as_deref());
        let pending = self
            .publish(
                org,
                position,
                sequence,
                out_subject(org, id),
                body,
                headers,
                Kind::Referral,
            )
            .await?;
        Ok(vec![pending])
    }

    /// Routes an erasure: one redaction notice to each organisation that received a referral of
    /// the case before it, naming those referrals (unless its feed has the notice already).
    async fn redact(&self, run: &mut Run, recorded: &Recorded, case: CaseId) -> Result<Vec<Pending>, RouterError> {
        let sequence = recorded.sequence;
        let mut listed = run.index.referrals(case).await?;
        // Indexed in this batch, perhaps not yet stored.
        listed.extend(run.recent.get(&case).into_iter().flatten().copied());
        // The log, not the index, says who received what: a referral counts when its own
        // history, as it stood just before the erasure, starts with a request for this case.
        let mut recipients: BTreeMap<OrgId, BTreeSet<ReferralId>> = BTreeMap::new();
        for referral in listed {
            let state = run.states.before(&self.events, referral, sequence).await?;
            if state.case_id() == Some(case)
                && let Some(org) = state.to_org()
            {
                recipients.entry(org).or_default().insert(referral);
            }
        }
        let mut pending = Vec::new();
        for (org, referrals) in &recipients {
            let meta = &recorded.event.meta;
            let notice_id = message::redaction_notice_id(meta.event_id, *org, meta.occurred_at);
            let notice = RedactionNotice::new(notice_id, meta, referrals)
                .map_err(|reason| RouterError::Unroutable { sequence, reason })?;
            let position = run.outs.position(*org, run.floor).await?;
            if self.delivered(sequence, position) {
                continue;
            }
            let traceparent = traceparent(recorded, *org);
            let body = serde_json::to_vec(&notice).map_err(|e| RouterError::Encode(e.to_string()))?;
            let headers = message::redaction_headers(&notice, sequence, traceparent.as_deref());
            let subject = redaction_subject(*org, notice_id);
            pending.push(
                self.publish(*org, position, sequence, subject, body, headers, Kind::Redaction)
                    .await?,
            );
        }
        if !recipients.is_empty() {
            tracing::info!(
                sequence,
                organisations = recipients.len(),
                published = pending.len(),
                "personal data erased: redaction notices to the organisations that received the case's referrals"
            );
        }
        Ok(pending)
    }

    /// Whether the event at `sequence` is in the feed at `position` already (layer 1 of exactly
    /// once); counted as skipped.
    fn delivered(&self, sequence: u64, position: &Position) -> bool {
        if sequence <= position.last_source {
            self.metrics.skipped.fetch_add(1, Ordering::Relaxed);
            wasl_telemetry::metrics::partner_message("skipped");
            return true;
        }
        false
    }

    /// Publishes the message for the event at `source` to `org`'s feed, fenced by the feed's
    /// last sequence, and moves the feed's position past it.
    #[allow(clippy::too_many_arguments)]
    async fn publish(
        &self,
        org: OrgId,
        position: &mut Position,
        source: u64,
        subject: String,
        body: Vec<u8>,
        headers: async_nats::HeaderMap,
        kind: Kind,
    ) -> Result<Pending, RouterError> {
        let publish = PublishMessage::build()
            .payload(body.into())
            .headers(headers)
            .expected_last_sequence(position.last_sequence);
        let ack = self
            .js
            .send_publish(subject, publish)
            .await
            .map_err(RouterError::unavailable)?;
        position.last_sequence += 1;
        position.last_source = source;
        Ok(Pending {
            org,
            expected: position.last_sequence,
            ack,
            kind,
        })
    }

    /// Awaits the acknowledgements of a batch, in order: the case index's, then the feeds'.
    async fn settle(&self, run: &mut Run, pending: Vec<Pending>) -> Result<(), RouterError> {
        for ack in std::mem::take(&mut run.index_acks) {
            ack.await.map_err(RouterError::unavailable)?;
        }
        run.recent.clear();
        for Pending {
            org,
            expected,
            ack,
            kind,
        } in pending
        {
            let moved = |reason: String| RouterError::OutStreamMoved {
                stream: out_stream(org),
                reason,
            };
            match ack.await {
                Ok(ack) if !ack.duplicate && ack.sequence == expected => {
                    self.metrics.routed.fetch_add(1, Ordering::Relaxed);
                    if kind == Kind::Redaction {
                        self.metrics.redactions.fetch_add(1, Ordering::Relaxed);
                    }
                    wasl_telemetry::metrics::partner_message("published");
                }
                Ok(ack) => {
                    run.outs.forget(org);
                    return Err(moved(format!(
                        "stored at sequence {} (duplicate: {}), expected {expected}",
                        ack.sequence, ack.duplicate
                    )));
                }
                Err(err) if err.kind() == PublishErrorKind::WrongLastSequence => {
                    run.outs.forget(org);
                    return Err(moved("another writer appended to it".to_owned()));
                }
                Err(err) => {
                    run.outs.forget(org);
                    return Err(RouterError::unavailable(err));
                }
            }
        }
        Ok(())
    }
}

/// Runs a router on `client` until `shutdown` completes: [`Router::open`] then [`Router::run`].
pub async fn run(client: Client, config: RouterConfig, shutdown: impl Future<Output = ()>) -> Result<(), RouterError> {
    Router::open(client, config).await?.run(shutdown).await
}

/// The trace context of a partner message: it continues the trace of the command that caused
/// the event — in a `router.deliver` span when spans are exported, else with the event's own
/// context.
fn traceparent(recorded: &Recorded, org: OrgId) -> Option<String> {
    let span = if wasl_telemetry::context::exporting() {
        let span = tracing::info_span!("router.deliver", seq = recorded.sequence, org = %org, event_type = recorded.event.event.event_type());
        wasl_telemetry::context::set_parent(&span, recorded.traceparent.as_deref());
        span
    } else {
        tracing::Span::none()
    };
    wasl_telemetry::context::of(&span).or_else(|| recorded.traceparent.clone())
}

/// What a publish carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A referral event.
    Referral,
    /// A redaction notice.
    Redaction,
}

/// A publish awaiting its acknowledgement.
struct Pending {
    org: OrgId,
    /// The stream sequence it must land at.
    expected: u64,
    ack: PublishAckFuture,
    kind: Kind,
}

/// What one subscription keeps; dropped on any error, so nothing half-applied survives.
struct Run {
    /// The checkpoint at the start: what an emptied feed is assumed to hold.
    floor: u64,
    outs: OutStreams,
    states: States,
    /// Which referrals each case had ([`crate::cases`]).
    index: CaseIndex,
    /// Every `requested` event up to here is in the index (or awaits its acknowledgement).
    index_position: u64,
    /// Index writes of this batch, acknowledged before the checkpoint moves.
    index_acks: Vec<PublishAckFuture>,
    /// The referrals indexed in this batch, by case, for an erasure in the same batch.
    recent: HashMap<CaseId, BTreeSet<ReferralId>>,
}

/// A bounded cache of referral states; the oldest entry goes first.
struct States {
    capacity: usize,
    entries: HashMap<ReferralId, RouteState>,
    order: VecDeque<ReferralId>,
}

impl States {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The referral's state just before the event at `sequence`: cached, or folded from its
    /// events before `sequence`, read from the log.
    async fn before(&mut self, events: &Stream, id: ReferralId, sequence: u64) -> Result<&mut RouteState, RouterError> {
        let cached = self.entries.get(&id).is_some_and(|s| s.last_sequence < sequence);
        if !cached {
            let subject = wasl_store::aggregate::subject(wasl_domain::AggregateKind::Referral, id.as_uuid());
            let history = read_messages(events, LoadStrategy::DirectGet, &subject, 1).await?;
            let mut state = RouteState::default();
            // An unreadable message in the history is no event of the referral (it is parked
            // or skipped on its own): the state is folded from the events around it.
            for earlier in history.iter().filter(|r| r.sequence() < sequence) {
                if let Read::Event(Recorded { sequence, event, .. }) = earlier
                    && let DomainEvent::Referral(_, event) = &event.event
                {
                    state.apply(*sequence, event);
                }
            }
            if self.entries.insert(id, state).is_none() {
                self.order.push_back(id);
            }
            while self.entries.len() > self.capacity {
                let Some(oldest) = self.order.pop_front() else { break };
                if oldest != id {
                    self.entries.remove(&oldest);
                } else {
                    self.order.push_back(oldest);
                }
            }
        }
        Ok(self.entries.get_mut(&id).expect("present"))
    }
}

/// Gives every existing partner feed the hub's durable consumers and removes any push consumer
/// on it, so an organisation that joined before the hub kept its consumers reads as a new one
/// does.
async fn keep_every_partner_feeds_consumers(js: &jetstream::Context) -> Result<(), RouterError> {
    use futures_util::TryStreamExt as _;
    let prefix = wasl_events::partner::out_stream_prefix();
    let names: Vec<String> = js
        .stream_names()
        .try_filter(|name| std::future::ready(name.starts_with(prefix)))
        .try_collect()
        .await
        .map_err(RouterError::unavailable)?;
    let mut removed = 0;
    for name in &names {
        let stream = js.get_stream(name).await.map_err(RouterError::unavailable)?;
        removed += crate::outs::keep_partner_consumers(&stream).await?;
    }
    tracing::info!(
        feeds = names.len(),
        push_consumers_removed = removed,
        "partner consumers kept"
    );
    Ok(())
}
