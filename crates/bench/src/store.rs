//! `wasl bench store`: how fast the event store appends and loads, against what raw JetStream
//! does on the same server with messages of the same shape.
//!
//! One run, one process, one nats-server:
//!
//! - **(a) raw JetStream**: `N` messages published with `jetstream::Context::publish`, `in_flight`
//!   acknowledgements outstanding at a time, round robin over as many subjects as there are
//!   aggregates, to the plain stream [`RAW_STREAM`] (file storage, one replica). Each message
//!   has the payload and the headers of a Wasl event (a `ReferralReceived` encoded with
//!   `wasl_events::encode` and `build_headers`, its `traceparent`, and two headers of the same
//!   size in place of `Nats-Msg-Id` and `Nats-Expected-Last-Subject-Sequence` that JetStream does
//!   not interpret): the same bytes on the wire, without the idempotency and the optimistic
//!   concurrency check.
//! - **(b) Wasl appends**: `N` commands through [`EventStore::execute`] on the stream
//!   [`EVENT_STREAM`], `in_flight` at a time, never two at once on the same aggregate: worker `w`
//!   of `in_flight` owns referrals `w`, `w + in_flight`, … and sends its commands one after the
//!   other, round robin over its referrals. Every referral is first requested (the set-up phase,
//!   timed on its own, not part of (b)); then each referral goes Receive → Accept → Start →
//!   Hold → Resume → Hold → Resume …, so every timed command is valid and decides exactly one
//!   event. The handler's cache holds every referral, so a command is decide + one append.
//! - **(c) loads**: every referral read back with a fresh store without a cache, once per
//!   [`LoadStrategy`] and concurrency (one at a time, and `in_flight` at a time); the events read
//!   must be exactly the events written.

use crate::error::BenchError;
use crate::probe::{CpuMeter, peak_rss_bytes};
use crate::server::{RunServer, TempServer, start_or_connect};
use crate::stats::Throughput;
use crate::table::Table;
use async_nats::jetstream::{self, stream};
use async_nats::{Client, HeaderMap};
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasl_domain::case::{Case, CaseCommand, ConsentScope, OpenCase, Scope};
use wasl_domain::catalogue::{HoldCode, Priority, Reason, ServiceCategory};
use wasl_domain::client::{
    AgeGroup, ClientProfile, Identifying, IdentifyingFacts, Language, Nationality, PopulationGroup, Sex, SurvivorCode,
};
use wasl_domain::directory::{DisplayName, Eligibility, OrgKind, Organisation, OrganisationCommand, ServiceSpec};
use wasl_domain::geo::{Governorate, Location};
use wasl_domain::ids::{
    CaseId, CommandId, ConsentId, EventId, OrgId, ReferralId, ServiceId, UserId, uuid_v7_from_parts,
};
use wasl_domain::pii::PersonalData;
use wasl_domain::referral::{Referral, ReferralCommand, ReferralEvent, RequestReferral};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Context, Role};
use wasl_events::{DomainEvent, EventMeta, StoredEvent};
use wasl_store::load::LoadStrategy;
use wasl_store::{CommandOutcome, EventStore, StoreConfig, StoredAggregate};

/// The plain stream of the raw publishing phase.
pub const RAW_STREAM: &str = "BENCH_RAW";
/// The subjects of [`RAW_STREAM`]; messages go to `bench.raw.<n>`.
pub const RAW_SUBJECTS: &str = "bench.raw.>";
/// The event store's stream in a benchmark (on `wasl.evt.>`, like the real log).
pub const EVENT_STREAM: &str = "WASL_BENCH";
/// The goal: Wasl appends at least this fraction of the raw publish rate.
pub const TARGET_RATIO: f64 = 0.6;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreBenchOptions {
    /// `N`: raw messages published in (a), and commands sent in (b).
    pub messages: usize,
    /// Aggregates (referrals) in (b) and (c), and subjects in (a).
    pub aggregates: usize,
    /// Publishes, commands or loads outstanding at a time (at most `aggregates`, so that no two
    /// commands in flight are for the same aggregate).
    pub in_flight: usize,
    /// Start the temporary server with `sync_interval: always` (fsync before every ack).
    pub sync_always: bool,
    /// Use this server instead of starting one. It must not hold a stream on `wasl.evt.>`; the
    /// benchmark creates and deletes [`RAW_STREAM`] and [`EVENT_STREAM`].
    pub nats_url: Option<String>,
}

impl Default for StoreBenchOptions {
    fn default() -> Self {
        Self {
            messages: 20_000,
            aggregates: 1_000,
            in_flight: 256,
            sync_always: false,
            nats_url: None,
        }
    }
}

impl StoreBenchOptions {
    fn validate(&self) -> Result<(), BenchError> {
        if self.messages == 0 || self.aggregates == 0 || self.in_flight == 0 {
            return Err(BenchError::Options(
                "--messages, --aggregates and --in-flight must be at least 1".to_owned(),
            ));
        }
        if self.sync_always && self.nats_url.is_some() {
            return Err(BenchError::Options(
                "--sync-always configures the temporary server; it cannot change one given with --nats-url".to_owned(),
            ));
        }
        Ok(())
    }
}

/// The server a run used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerReport {
    /// Its version, as it reports it.
    pub version: String,
    /// Its client URL.
    pub url: String,
    /// Started by the benchmark for this run.
    pub temporary: bool,
    /// Whether it fsyncs every write; `None` for a server given by URL (not known).
    pub sync_always: Option<bool>,
}

/// The size of one message on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MessageShape {
    /// The body: one protobuf-encoded event.
    pub payload_bytes: usize,
    /// How many headers.
    pub header_count: usize,
    /// The header block as sent (`NATS/1.0` line, every `name: value` line, blank line).
    pub header_bytes: usize,
}

/// One load measurement of (c).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    /// `direct_get` or `ordered_consumer`.
    pub strategy: &'static str,
    /// Loads outstanding at a time.
    pub concurrency: usize,
    /// Aggregates loaded, each with a fresh, cacheless store.
    pub aggregates: u64,
    /// Events read.
    pub events: u64,
    /// Wall-clock time.
    pub seconds: f64,
    /// Aggregates loaded per second.
    pub aggregates_per_second: f64,
    /// Events read per second.
    pub events_per_second: f64,
    /// Median time of one load, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile time of one load, in milliseconds.
    pub p99_ms: f64,
    /// CPU time this process spent per event read, in microseconds.
    pub bench_cpu_us_per_event: Option<f64>,
    /// CPU time the temporary nats-server spent per event read, in microseconds.
    pub server_cpu_us_per_event: Option<f64>,
}

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct StoreBenchReport {
    pub server: ServerReport,
    /// `N`, as asked.
    pub messages: usize,
    /// Aggregates, as asked.
    pub aggregates: usize,
    /// Operations outstanding at a time in (a), (b) and the concurrent loads of (c): as asked,
    /// but at most one per aggregate.
    pub in_flight: usize,
    /// Every message of (a), and a typical event of (b).
    pub message: MessageShape,
    /// (a) raw JetStream publishing; latency from publish to acknowledgement.
    pub raw: Throughput,
    /// Set-up of (b): one `Request` per referral (a load that finds nothing, decide, append).
    pub requests: Throughput,
    /// (b) commands through the handler; latency of one `execute`.
    pub appends: Throughput,
    /// (b) / (a), commands per second over messages per second.
    pub ratio: f64,
    /// The goal for [`ratio`](Self::ratio).
    pub target_ratio: f64,
    /// `ratio >= target_ratio`.
    pub passes: bool,
    /// (c), every strategy at every concurrency.
    pub loads: Vec<LoadReport>,
    /// Consumers left on the event stream right after the ordered-consumer loads: each such load
    /// leaves an ephemeral consumer that the server removes only after 30 s of inactivity.
    pub consumers_left_by_ordered_loads: usize,
    /// Peak resident memory of this process (`VmHWM`), in bytes, where `/proc` tells.
    pub peak_rss_bytes: Option<u64>,
    /// Peak resident memory of the temporary nats-server, read before it is stopped.
    pub server_peak_rss_bytes: Option<u64>,
}

impl StoreBenchReport {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain numbers and strings cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Runs the whole benchmark; `progress` hears what is being done (for a terminal).
pub async fn run(
    options: &StoreBenchOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<StoreBenchReport, BenchError> {
    options.validate()?;
    let RunServer {
        temporary: server,
        client,
        report: server_report,
    } = start_or_connect(options.nats_url.as_deref(), options.sync_always, "", progress).await?;
    let js = jetstream::new(client.clone());
    let ids = Arc::new(Ids::new());
    let now = Timestamp::from_unix_millis(i64::try_from(ids.millis).unwrap_or(i64::MAX));
    let in_flight = options.in_flight.min(options.aggregates);

    // The event stream first: a server that already has a Wasl event log is refused before
    // anything is written.
    let config = StoreConfig {
        stream: EVENT_STREAM.to_owned(),
        cache_capacity: StoreConfig::default().cache_capacity.max(options.aggregates + 16),
        ..StoreConfig::default()
    };
    delete_stream_if_present(&js, EVENT_STREAM).await?;
    let store = EventStore::open(client.clone(), config.clone()).await.map_err(|e| {
        BenchError::JetStream(format!(
            "cannot create the stream {EVENT_STREAM} on wasl.evt.> ({e}); if another stream (a Wasl event log) \
             already holds those subjects, this server cannot be used for the benchmark"
        ))
    })?;

    let sample = sample_event(&ids, now)?;
    let payload = Bytes::from(wasl_events::encode(&sample));
    let headers = raw_headers(&sample)?;
    let message = MessageShape {
        payload_bytes: payload.len(),
        header_count: headers.iter().map(|(_, values)| values.len()).sum(),
        header_bytes: header_block_len(&headers),
    };

    progress(&format!(
        "(a) raw JetStream: {} messages, {in_flight} in flight, {} subjects",
        options.messages, options.aggregates
    ));
    let server_pid = server.as_ref().map(TempServer::pid);
    let raw = raw_publish(
        &js,
        options.messages,
        options.aggregates,
        in_flight,
        payload,
        headers,
        server_pid,
    )
    .await?;

    progress(&format!(
        "(b) Wasl appends: {} referrals requested, then {} commands, {in_flight} in flight",
        options.aggregates, options.messages
    ));
    let network = Network::set_up(&store, &ids, now).await?;
    let (requests, referrals) =
        request_referrals(&store, &network, &ids, options.aggregates, in_flight, server_pid).await?;
    let store = Arc::new(store);
    let appends = run_lifecycles(
        &store,
        &network,
        &ids,
        &referrals,
        options.messages,
        in_flight,
        server_pid,
    )
    .await?;
    drop(store);

    progress("(c) loads: direct gets and ordered consumers, one at a time and concurrently");
    let expected_events = (options.aggregates + options.messages) as u64;
    let mut loads = Vec::new();
    let mut consumers_left = 0;
    for concurrency in [1, in_flight] {
        for strategy in [LoadStrategy::DirectGet, LoadStrategy::OrderedConsumer] {
            let report = load_all(&client, &config, strategy, &referrals, concurrency, server_pid).await?;
            if report.events != expected_events {
                return Err(BenchError::Check(format!(
                    "{} loaded {} events, {expected_events} were written",
                    report.strategy, report.events
                )));
            }
            loads.push(report);
        }
        if concurrency == 1 {
            consumers_left = consumer_count(&js, EVENT_STREAM).await?;
        }
        if in_flight == 1 {
            break;
        }
    }

    if server.is_none() {
        // A server given by URL outlives the run: leave nothing behind.
        delete_stream_if_present(&js, RAW_STREAM).await?;
        delete_stream_if_present(&js, EVENT_STREAM).await?;
    }
    let server_peak_rss_bytes = server.as_ref().and_then(|s| peak_rss_bytes(Some(s.pid())));
    let ratio = if raw.per_second > 0.0 {
        appends.per_second / raw.per_second
    } else {
        0.0
    };
    Ok(StoreBenchReport {
        server: server_report,
        messages: options.messages,
        aggregates: options.aggregates,
        in_flight,
        message,
        raw,
        requests,
        appends,
        ratio,
        target_ratio: TARGET_RATIO,
        passes: ratio >= TARGET_RATIO,
        loads,
        consumers_left_by_ordered_loads: consumers_left,
        peak_rss_bytes: peak_rss_bytes(None),
        server_peak_rss_bytes,
    })
}

/// (a): publishes `N` messages keeping `in_flight` acknowledgements outstanding.
async fn raw_publish(
    js: &jetstream::Context,
    messages: usize,
    subjects: usize,
    in_flight: usize,
    payload: Bytes,
    headers: HeaderMap,
    server_pid: Option<u32>,
) -> Result<Throughput, BenchError> {
    delete_stream_if_present(js, RAW_STREAM).await?;
    js.create_stream(stream::Config {
        name: RAW_STREAM.to_owned(),
        subjects: vec![RAW_SUBJECTS.to_owned()],
        storage: stream::StorageType::File,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map_err(|e| BenchError::JetStream(format!("cannot create {RAW_STREAM}: {e}")))?;
    let subjects: Vec<String> = (0..subjects).map(|n| format!("bench.raw.{n}")).collect();
    let failed = |e: &dyn fmt::Display| BenchError::JetStream(format!("raw publish: {e}"));
    let mut window: FuturesUnordered<_> = FuturesUnordered::new();
    let mut latencies: Vec<Duration> = Vec::with_capacity(messages);
    let cpu = CpuMeter::start(server_pid);
    let start = Instant::now();
    for n in 0..messages {
        if window.len() >= in_flight
            && let Some(done) = window.next().await
        {
            let done: Result<Duration, jetstream::context::PublishError> = done;
            latencies.push(done.map_err(|e| failed(&e))?);
        }
        let sent = Instant::now();
        let ack = js
            .publish_with_headers(subjects[n % subjects.len()].clone(), headers.clone(), payload.clone())
            .await
            .map_err(|e| failed(&e))?;
        window.push(async move { ack.await.map(|_| sent.elapsed()) });
    }
    while let Some(done) = window.next().await {
        latencies.push(done.map_err(|e| failed(&e))?);
    }
    let elapsed = start.elapsed();
    Ok(Throughput::from_latencies(latencies, elapsed).with_cpu(cpu.stop()))
}

/// The set-up of (b): one `Request` per referral, `in_flight` at a time.
async fn request_referrals(
    store: &EventStore,
    network: &Network,
    ids: &Ids,
    aggregates: usize,
    in_flight: usize,
    server_pid: Option<u32>,
) -> Result<(Throughput, Vec<ReferralId>), BenchError> {
    let case = store.load::<Case>(network.case).await?.state;
    let provider = store.load::<Organisation>(network.provider).await?.state;
    let referrals = (0..aggregates)
        .map(|_| ids.id(ReferralId::from_uuid))
        .collect::<Result<Vec<_>, _>>()?;
    let commands = referrals.iter().map(|&referral| {
        let command = ReferralCommand::Request(Box::new(RequestReferral {
            referral_id: referral,
            case: case.clone(),
            provider: provider.clone(),
            service_id: network.service,
            priority: Priority::Urgent,
            redirected_from: None,
            consent_override: None,
            notes: None,
        }));
        (referral, command)
    });
    let cpu = CpuMeter::start(server_pid);
    let start = Instant::now();
    let latencies: Vec<Duration> = futures_util::stream::iter(commands)
        .map(|(referral, command)| async move {
            let sent = Instant::now();
            execute::<Referral>(store, ids, referral, &command, &network.caseworker, "referral request").await?;
            Ok::<_, BenchError>(sent.elapsed())
        })
        .buffer_unordered(in_flight)
        .try_collect()
        .await?;
    let elapsed = start.elapsed();
    Ok((
        Throughput::from_latencies(latencies, elapsed).with_cpu(cpu.stop()),
        referrals,
    ))
}

/// (b): `messages` lifecycle commands, one worker per `in_flight`, each owning its referrals.
async fn run_lifecycles(
    store: &Arc<EventStore>,
    network: &Network,
    ids: &Arc<Ids>,
    referrals: &[ReferralId],
    messages: usize,
    in_flight: usize,
    server_pid: Option<u32>,
) -> Result<Throughput, BenchError> {
    let cpu = CpuMeter::start(server_pid);
    let start = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|w| {
            let owned: Vec<ReferralId> = referrals.iter().skip(w).step_by(in_flight).copied().collect();
            let count = messages / in_flight + usize::from(w < messages % in_flight);
            let (store, ids, context) = (Arc::clone(store), Arc::clone(ids), network.focal_point.clone());
            tokio::spawn(async move {
                let mut steps = vec![0usize; owned.len()];
                let mut latencies = Vec::with_capacity(count);
                for k in 0..count {
                    let j = k % owned.len();
                    let command = lifecycle_step(steps[j]);
                    steps[j] += 1;
                    let sent = Instant::now();
                    execute::<Referral>(&store, &ids, owned[j], &command, &context, "referral lifecycle").await?;
                    latencies.push(sent.elapsed());
                }
                Ok::<_, BenchError>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(messages);
    for worker in workers {
        let done = worker.await.map_err(|e| BenchError::Command {
            what: "referral lifecycle",
            reason: format!("a worker stopped: {e}"),
        })?;
        latencies.extend(done?);
    }
    let elapsed = start.elapsed();
    Ok(Throughput::from_latencies(latencies, elapsed).with_cpu(cpu.stop()))
}

/// The `step`th command of a requested referral: Receive, Accept, Start, then Hold and Resume
/// in turn for ever. Each is valid in the state the ones before leave, and decides one event.
pub fn lifecycle_step(step: usize) -> ReferralCommand {
    match step {
        0 => ReferralCommand::Receive,
        1 => ReferralCommand::Accept,
        2 => ReferralCommand::Start,
        s if (s - 3) % 2 == 0 => ReferralCommand::Hold(Reason::coded(HoldCode::AwaitingCapacity)),
        _ => ReferralCommand::Resume,
    }
}

/// (c): loads every referral with a fresh store without a cache.
async fn load_all(
    client: &Client,
    config: &StoreConfig,
    strategy: LoadStrategy,
    referrals: &[ReferralId],
    concurrency: usize,
    server_pid: Option<u32>,
) -> Result<LoadReport, BenchError> {
    let config = StoreConfig {
        cache_capacity: 0,
        ..config.clone()
    };
    let store = EventStore::open(client.clone(), config)
        .await?
        .with_load_strategy(strategy);
    let store = &store;
    let cpu = CpuMeter::start(server_pid);
    let start = Instant::now();
    let loaded: Vec<(u64, Duration)> = futures_util::stream::iter(referrals.iter().copied())
        .map(|referral| async move {
            let sent = Instant::now();
            let loaded = store.load::<Referral>(referral).await?;
            Ok::<_, BenchError>((loaded.version, sent.elapsed()))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let elapsed = start.elapsed();
    let cpu = cpu.stop();
    let events = loaded.iter().map(|(version, _)| version).sum();
    let times = Throughput::from_latencies(loaded.into_iter().map(|(_, t)| t).collect(), elapsed);
    let per_event = |seconds: Option<f64>| seconds.filter(|_| events > 0).map(|s| s * 1e6 / events as f64);
    let per_second = |n: u64| {
        if times.seconds > 0.0 {
            n as f64 / times.seconds
        } else {
            0.0
        }
    };
    Ok(LoadReport {
        strategy: match strategy {
            LoadStrategy::DirectGet => "direct_get",
            LoadStrategy::OrderedConsumer => "ordered_consumer",
        },
        concurrency,
        aggregates: times.count,
        events,
        seconds: times.seconds,
        aggregates_per_second: times.per_second,
        events_per_second: per_second(events),
        p50_ms: times.p50_ms,
        p99_ms: times.p99_ms,
        bench_cpu_us_per_event: per_event(cpu.bench_seconds),
        server_cpu_us_per_event: per_event(cpu.server_seconds),
    })
}

/// Sends one command through the handler as `context`, under a fresh command id.
async fn execute<A: StoredAggregate>(
    store: &EventStore,
    ids: &Ids,
    id: A::Id,
    command: &A::Command,
    context: &Context,
    what: &'static str,
) -> Result<CommandOutcome, BenchError> {
    let meta = wasl_store::CommandMeta {
        command_id: ids.id(CommandId::from_uuid)?,
        context: context.clone(),
        traceparent: None,
    };
    store
        .execute::<A>(id, command, &meta)
        .await
        .map_err(|e| BenchError::Command {
            what,
            reason: e.to_string(),
        })
}

pub(crate) async fn delete_stream_if_present(js: &jetstream::Context, name: &str) -> Result<(), BenchError> {
    match js.delete_stream(name).await {
        Ok(_) => Ok(()),
        Err(err)
            if matches!(err.kind(), jetstream::context::DeleteStreamErrorKind::JetStream(api)
                if api.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            Ok(())
        }
        Err(err) => Err(BenchError::JetStream(format!("cannot delete the stream {name}: {err}"))),
    }
}

async fn consumer_count(js: &jetstream::Context, name: &str) -> Result<usize, BenchError> {
    let mut stream = js
        .get_stream(name)
        .await
        .map_err(|e| BenchError::JetStream(e.to_string()))?;
    let info = stream.info().await.map_err(|e| BenchError::JetStream(e.to_string()))?;
    Ok(info.state.consumer_count)
}

/// Fresh UUIDv7 ids for one run: this run's start time and a per-run random part with a counter.
#[derive(Debug)]
struct Ids {
    millis: u64,
    nonce: [u8; 2],
    next: AtomicU64,
}

impl Ids {
    fn new() -> Self {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mixed = since_epoch.subsec_nanos() ^ std::process::id().rotate_left(16);
        let [a, b, ..] = mixed.to_be_bytes();
        Self {
            millis: u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX),
            nonce: [a, b],
            next: AtomicU64::new(1),
        }
    }

    fn id<T, E: Into<crate::error::BoxError>>(
        &self,
        make: impl FnOnce(uuid::Uuid) -> Result<T, E>,
    ) -> Result<T, BenchError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut random = [0u8; 10];
        random[..2].copy_from_slice(&self.nonce);
        random[2..].copy_from_slice(&n.to_be_bytes());
        make(uuid_v7_from_parts(self.millis, random)).map_err(BenchError::data("an id"))
    }
}

/// The synthetic network: a health provider with one service, a referring organisation, one
/// case with consent to any referral.
struct Network {
    provider: OrgId,
    service: ServiceId,
    case: CaseId,
    caseworker: Context,
    focal_point: Context,
}

impl Network {
    async fn set_up(store: &EventStore, ids: &Ids, now: Timestamp) -> Result<Self, BenchError> {
        fn data<E: Into<crate::error::BoxError>>(e: E) -> BenchError {
            BenchError::data("the synthetic network")(e)
        }
        let context = |user: UserId, org: OrgId, role: Role| Context {
            now,
            actor: Actor {
                user,
                org,
                roles: vec![role],
            },
        };
        let (hub, referring, provider) = (
            ids.id(OrgId::from_uuid)?,
            ids.id(OrgId::from_uuid)?,
            ids.id(OrgId::from_uuid)?,
        );
        let network = Self {
            provider,
            service: ids.id(ServiceId::from_uuid)?,
            case: ids.id(CaseId::from_uuid)?,
            caseworker: context(ids.id(UserId::from_uuid)?, referring, Role::Caseworker),
            focal_point: context(ids.id(UserId::from_uuid)?, provider, Role::FocalPoint),
        };
        let coordinator = context(ids.id(UserId::from_uuid)?, hub, Role::Coordinator);
        let register = OrganisationCommand::Register {
            org_id: network.provider,
            name: DisplayName::parse("Test Health Partner").map_err(data)?,
            kind: OrgKind::NationalNgo,
        };
        let arabic = Language::parse("ar").map_err(data)?;
        let add_service = OrganisationCommand::AddService {
            service_id: network.service,
            spec: ServiceSpec {
                name: DisplayName::parse("Clinical care (test)").map_err(data)?,
                category: ServiceCategory::Health,
                areas: vec![Location::governorate_only(Governorate::Ninawa)],
                languages: vec![arabic.clone()],
                eligibility: Eligibility::everyone(),
            },
        };
        for command in [register, add_service] {
            execute::<Organisation>(store, ids, network.provider, &command, &coordinator, "directory").await?;
        }
        let open = CaseCommand::Open(OpenCase {
            case_id: network.case,
            caseworker: None,
            profile: wasl_synth::profile::with_stand_in_seals(
                &mut wasl_synth::Rng::new(1),
                network.case,
                ClientProfile {
                    sex: Sex::Female,
                    age_group: AgeGroup::Age25To59,
                    population_group: PopulationGroup::Returnee,
                    nationality: Nationality::parse("IQ").map_err(data)?,
                    location: Location::governorate_only(Governorate::Ninawa),
                    language: arabic,
                    identifying: Identifying::Clear(IdentifyingFacts {
                        survivor_code: SurvivorCode::parse("TEST-0001").map_err(data)?,
                        age_years: Some(30),
                        vulnerabilities: vec![],
                    }),
                },
            ),
            personal: PersonalData::default(),
        });
        let consent = CaseCommand::GiveConsent {
            consent_id: ids.id(ConsentId::from_uuid)?,
            scope: ConsentScope {
                categories: Scope::Any,
                organisations: Scope::Any,
                expires_at: None,
            },
        };
        for command in [open, consent] {
            execute::<Case>(store, ids, network.case, &command, &network.caseworker, "case").await?;
        }
        Ok(network)
    }
}

/// A `ReferralReceived` as the store would write it: the model of every raw message.
fn sample_event(ids: &Ids, now: Timestamp) -> Result<StoredEvent, BenchError> {
    Ok(StoredEvent {
        meta: EventMeta {
            event_id: ids.id(EventId::from_uuid)?,
            command_id: ids.id(CommandId::from_uuid)?,
            occurred_at: now,
            actor: Actor {
                user: ids.id(UserId::from_uuid)?,
                org: ids.id(OrgId::from_uuid)?,
                roles: vec![Role::FocalPoint],
            },
        },
        event: DomainEvent::Referral(ids.id(ReferralId::from_uuid)?, ReferralEvent::Received),
    })
}

/// The headers of a raw message: those the store sends with `event`, with the two that
/// JetStream acts on (`Nats-Msg-Id`, `Nats-Expected-Last-Subject-Sequence`) renamed to inert
/// names of the same length.
fn raw_headers(event: &StoredEvent) -> Result<HeaderMap, BenchError> {
    let mut headers = HeaderMap::new();
    let cloud = wasl_events::build_headers(event, wasl_events::headers::DEFAULT_SOURCE)
        .map_err(BenchError::data("the headers of a raw message"))?;
    for (name, value) in cloud {
        headers.insert(name, value);
    }
    headers.insert(
        inert(wasl_store::append::MSG_ID),
        wasl_store::append::message_id(event, 0),
    );
    headers.insert(
        wasl_events::headers::TRACEPARENT,
        wasl_store::append::traceparent(None, event),
    );
    // A typical expected sequence in the middle of a default run.
    headers.insert(inert(wasl_store::append::EXPECTED_LAST_SUBJECT_SEQUENCE), "12345");
    Ok(headers)
}

/// `Nats-…` → `Bnch-…`: the same length, ignored by JetStream.
fn inert(name: &'static str) -> String {
    format!("Bnch{}", name.strip_prefix("Nats").unwrap_or(name))
}

/// The size of a header block on the wire: `NATS/1.0\r\n`, `name: value\r\n` each, `\r\n`.
fn header_block_len(headers: &HeaderMap) -> usize {
    let lines: usize = headers
        .iter()
        .map(|(name, values)| {
            let name: &str = name.as_ref();
            values
                .iter()
                .map(|v| name.len() + 2 + v.as_str().len() + 2)
                .sum::<usize>()
        })
        .sum();
    "NATS/1.0\r\n".len() + lines + 2
}

pub(crate) fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "n/a".to_owned(), |b| format!("{:.1} MiB", b as f64 / 1_048_576.0))
}

fn cpu(bench: Option<f64>, server: Option<f64>) -> String {
    let us = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
    format!("{} / {}", us(bench), us(server))
}

impl fmt::Display for StoreBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.server;
        let sync = match s.sync_always {
            Some(true) => "sync_interval: always",
            Some(false) => "sync_interval: default (2 min)",
            None => "sync as configured on the server",
        };
        let kind = if s.temporary { "temporary" } else { "given" };
        writeln!(f, "Wasl store benchmark")?;
        writeln!(f, "  nats-server {} ({kind}, {}, {sync})", s.version, s.url)?;
        writeln!(
            f,
            "  N = {} messages/commands, {} aggregates, {} in flight; message: {} B payload + {} headers ({} B)",
            self.messages,
            self.aggregates,
            self.in_flight,
            self.message.payload_bytes,
            self.message.header_count,
            self.message.header_bytes
        )?;
        writeln!(f)?;
        let latency = |ms: f64| format!("{ms:.2} ms");
        let mut table = Table::new(["phase", "rate", "p50", "p99", "CPU µs/op"]);
        table.row(["", "", "", "", "bench / server"]);
        let row = |table: &mut Table, name: &str, t: &Throughput, unit: &str| {
            table.row([
                name.to_owned(),
                format!("{} {unit}", thousands(t.per_second)),
                latency(t.p50_ms),
                latency(t.p99_ms),
                cpu(t.bench_cpu_us_per_op, t.server_cpu_us_per_op),
            ]);
        };
        row(
            &mut table,
            "(a) raw JetStream publish (publish → ack)",
            &self.raw,
            "msg/s",
        );
        row(
            &mut table,
            "(b) Wasl EventStore::execute (one event each)",
            &self.appends,
            "cmd/s",
        );
        table.row_with_note(
            ["(b)/(a)".to_owned(), format!("{:.2}", self.ratio)],
            format!(
                "(target ≥ {:.2}: {})",
                self.target_ratio,
                if self.passes { "PASS" } else { "BELOW" }
            ),
        );
        row(
            &mut table,
            "set-up of (b): Request (new aggregate)",
            &self.requests,
            "cmd/s",
        );
        write!(f, "{table}")?;
        writeln!(f)?;
        let mut loads = Table::new([
            "(c) load, fresh store without cache",
            "aggregates/s",
            "events/s",
            "p50",
            "p99",
            "CPU µs/event",
        ]);
        for load in &self.loads {
            let name = format!(
                "{}, {} at a time ({:.1} events each)",
                load.strategy.replace('_', " "),
                load.concurrency,
                if load.aggregates > 0 {
                    load.events as f64 / load.aggregates as f64
                } else {
                    0.0
                }
            );
            loads.row([
                name,
                thousands(load.aggregates_per_second),
                thousands(load.events_per_second),
                latency(load.p50_ms),
                latency(load.p99_ms),
                cpu(load.bench_cpu_us_per_event, load.server_cpu_us_per_event),
            ]);
        }
        write!(f, "{loads}")?;
        writeln!(
            f,
            "  consumers left on the stream by the ordered loads: {} (removed after 30 s idle)",
            self.consumers_left_by_ordered_loads
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "  peak RSS: bench {}, nats-server {}",
            mib(self.peak_rss_bytes),
            mib(self.server_peak_rss_bytes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_holds_and_resumes_for_ever_after_start() {
        let actions: Vec<String> = (0..8).map(|s| lifecycle_step(s).action().to_string()).collect();
        assert_eq!(
            actions,
            [
                "received",
                "accepted",
                "started",
                "put_on_hold",
                "resumed",
                "put_on_hold",
                "resumed",
                "put_on_hold"
            ]
        );
    }

    #[test]
    fn raw_headers_have_the_size_of_the_stores_headers() {
        let ids = Ids::new();
        let event = sample_event(&ids, Timestamp::from_unix_millis(1_767_225_600_000)).expect("event");
        let headers = raw_headers(&event).expect("headers");
        assert_eq!(inert("Nats-Msg-Id").len(), "Nats-Msg-Id".len());
        // nine CloudEvents headers, traceparent, message id, expected sequence
        assert_eq!(headers.iter().map(|(_, v)| v.len()).sum::<usize>(), 12);
        assert!(headers.get(wasl_store::append::MSG_ID).is_none());
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(0.2), "0");
    }

    #[test]
    fn options_are_checked() {
        let zero = StoreBenchOptions {
            in_flight: 0,
            ..Default::default()
        };
        assert!(matches!(zero.validate(), Err(BenchError::Options(_))));
        let both = StoreBenchOptions {
            sync_always: true,
            nats_url: Some("nats://127.0.0.1:1".to_owned()),
            ..Default::default()
        };
        assert!(matches!(both.validate(), Err(BenchError::Options(_))));
        assert!(StoreBenchOptions::default().validate().is_ok());
    }
}
