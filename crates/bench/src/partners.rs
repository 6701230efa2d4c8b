//! `wasl bench partners`: how fast the router delivers referral events to the organisations'
//! feeds, and how long an event takes from its append to its partner message.
//!
//! One nats-server, one process:
//!
//! 1. A synthetic network of `organisations` organisations (`wasl_synth`, genuine events) is
//!    written to the event stream `WASL_BENCH_PARTNERS` up to its first referral; the router
//!    (checkpoint bucket `WASL_BENCH_ROUTER`) creates every organisation's `WASL_OUT_<org>`.
//! 2. **Paced**: the history goes on at `rate` referral events per second (with the case events
//!    between them) for `duration`, in ticks of 10 ms, while the router runs. A core subscription
//!    on `wasl.out.>` times each partner message against the moment its source event's append
//!    was sent (the `Wasl-Source-Seq` header names it): the lag, p50 and p99.
//! 3. **Backlog**: the router stops, `backlog` more referral events are appended at full speed,
//!    a router starts again from its checkpoint, and the time until it has routed them all gives
//!    the rate at which it catches up.
//!
//! At the end every feed must hold exactly one message per referral event addressed to it;
//! anything else fails the run.

use crate::BenchError;
use crate::probe::{CpuMeter, CpuUsed};
use crate::server::start_or_connect;
use crate::stats::percentile;
use async_nats::jetstream;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasl_api::CancellationToken;
use wasl_domain::ids::OrgId;
use wasl_events::{DomainEvent, StoredEvent};
use wasl_router::{Router, RouterConfig};
use wasl_store::StoreConfig;
use wasl_synth::{Generator, HistoryConfig, Publisher};

/// The event stream of the run.
pub const EVENT_STREAM: &str = "WASL_BENCH_PARTNERS";
/// The router's checkpoint bucket of the run.
pub const CHECKPOINT_BUCKET: &str = "WASL_BENCH_ROUTER";
/// The lag the paced phase must stay under at its p99.
pub const TARGET_P99: Duration = Duration::from_millis(200);
/// How often the paced phase appends.
const TICK: Duration = Duration::from_millis(10);
/// How long the router may take to deliver what was appended before the run fails.
const CATCH_UP: Duration = Duration::from_secs(120);

/// Options of a run.
#[derive(Debug, Clone)]
pub struct PartnersBenchOptions {
    /// Organisations in the network, each with its own feed.
    pub organisations: usize,
    /// Referral events appended per second in the paced phase.
    pub rate: u32,
    /// How long the paced phase lasts.
    pub duration: Duration,
    /// Referral events appended while the router is stopped, for the catch-up rate.
    pub backlog: usize,
    /// A nats-server to use instead of a temporary one; it must not hold a Wasl event log.
    pub nats_url: Option<String>,
    /// Seed of the synthetic history.
    pub seed: u64,
    /// Start the temporary nats-server with `sync_interval: always` (fsync before every ack),
    /// as production runs.
    pub sync_always: bool,
}

impl Default for PartnersBenchOptions {
    fn default() -> Self {
        Self {
            organisations: 100,
            rate: 1_000,
            duration: Duration::from_secs(20),
            backlog: 50_000,
            nats_url: None,
            seed: 1,
            sync_always: false,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct PartnersBenchReport {
    /// The nats-server used.
    pub server: crate::store::ServerReport,
    /// Organisations (feeds).
    pub organisations: usize,
    /// Feeds holding at least one message at the end.
    pub feeds_used: usize,
    /// The paced phase.
    pub paced: PacedReport,
    /// The backlog phase.
    pub backlog: BacklogReport,
    /// Every feed holds exactly one message per referral event addressed to it.
    pub exactly_once: bool,
}

/// The paced phase: lag under a steady load.
#[derive(Debug, Clone, Serialize)]
pub struct PacedReport {
    /// The rate asked for, referral events per second.
    pub target_rate: u32,
    /// Referral events appended.
    pub referral_events: u64,
    /// All events appended (referral and case events).
    pub events: u64,
    /// Wall time of the phase in seconds.
    pub seconds: f64,
    /// Referral events appended per second, achieved.
    pub rate: f64,
    /// Partner messages seen on `wasl.out.>` and timed.
    pub delivered: u64,
    /// Lag from sending the append to receiving the partner message, in milliseconds.
    pub lag_p50_ms: f64,
    /// The same, 99th percentile.
    pub lag_p99_ms: f64,
    /// The same, largest.
    pub lag_max_ms: f64,
    /// Whether p99 stays under [`TARGET_P99`].
    pub pass: bool,
    /// CPU microseconds per referral event, this process (generator, publisher, router,
    /// subscriber) and nats-server.
    pub bench_cpu_us_per_event: Option<f64>,
    /// The same, nats-server.
    pub server_cpu_us_per_event: Option<f64>,
}

/// The backlog phase: the router's catch-up rate.
#[derive(Debug, Clone, Serialize)]
pub struct BacklogReport {
    /// Referral events waiting when the router started.
    pub referral_events: u64,
    /// All events waiting (the router reads case events too).
    pub events: u64,
    /// Seconds until every one was routed.
    pub seconds: f64,
    /// Referral events routed per second.
    pub referral_events_per_second: f64,
    /// Events read per second.
    pub events_per_second: f64,
    /// CPU microseconds per referral event, this process.
    pub bench_cpu_us_per_event: Option<f64>,
    /// The same, nats-server.
    pub server_cpu_us_per_event: Option<f64>,
}

impl PartnersBenchReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// The history, handed out piece by piece, counting the referral events and remembering each
/// one's receiving organisation.
struct History {
    events: Generator,
    expected: BTreeMap<OrgId, u64>,
    to_org: std::collections::HashMap<wasl_domain::ids::ReferralId, OrgId>,
    /// The organisations that received a referral of each case: each gets one redaction notice
    /// when the case is erased.
    recipients: std::collections::HashMap<wasl_domain::ids::CaseId, std::collections::BTreeSet<OrgId>>,
}

impl History {
    /// The network of `options`, with enough referrals for both phases.
    fn new(options: &PartnersBenchOptions) -> Self {
        let referral_events = u64::from(options.rate) * options.duration.as_secs().max(1) + options.backlog as u64;
        // About six events per referral; generate a margin so the history does not end early.
        let referrals = (referral_events / 5 + 1_000) as usize;
        Self {
            events: Generator::new(HistoryConfig {
                organisations: options.organisations,
                keep_states: false,
                ..HistoryConfig::new(options.seed, referrals)
            }),
            expected: BTreeMap::new(),
            to_org: std::collections::HashMap::new(),
            recipients: std::collections::HashMap::new(),
        }
    }
    /// Counts `event` if it is a referral event, for the organisation it is addressed to, and
    /// the redaction notices an erasure sends; whether it is a referral event.
    fn note(&mut self, event: &StoredEvent) -> bool {
        if let DomainEvent::Case(case, wasl_domain::case::CaseEvent::PersonalDataErased { .. }) = &event.event {
            for org in self.recipients.get(case).into_iter().flatten() {
                *self.expected.entry(*org).or_default() += 1;
            }
            return false;
        }
        let DomainEvent::Referral(id, e) = &event.event else {
            return false;
        };
        if let wasl_domain::referral::ReferralEvent::Requested(requested) = e {
            self.to_org.insert(*id, requested.to_org);
            self.recipients
                .entry(requested.case_id)
                .or_default()
                .insert(requested.to_org);
        }
        if let Some(org) = self.to_org.get(id) {
            *self.expected.entry(*org).or_default() += 1;
        }
        true
    }

    /// The next events up to and including the `n`th referral event from here (fewer at the
    /// end of the history); returns them and how many referral events they hold.
    fn take_referral_events(&mut self, n: u64) -> (Vec<StoredEvent>, u64) {
        let mut out = Vec::new();
        let mut referrals = 0;
        while referrals < n {
            let Some(event) = self.events.next() else { break };
            referrals += u64::from(self.note(&event));
            out.push(event);
        }
        (out, referrals)
    }

    /// The events before the first referral event (the directory, the first cases), and that
    /// referral event (counted) when the history has one.
    fn take_until_first_referral(&mut self) -> (Vec<StoredEvent>, Option<StoredEvent>) {
        let mut out = Vec::new();
        while let Some(event) = self.events.next() {
            if self.note(&event) {
                return (out, Some(event));
            }
            out.push(event);
        }
        (out, None)
    }
}

/// Runs the benchmark; `progress` receives one-line updates.
pub async fn run(
    options: &PartnersBenchOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<PartnersBenchReport, BenchError> {
    if options.organisations < 2 || options.rate == 0 || options.duration.is_zero() {
        return Err(BenchError::Options(
            "--organisations must be at least 2, --rate and --duration above zero".to_owned(),
        ));
    }
    let server = start_or_connect(options.nats_url.as_deref(), options.sync_always, "", progress).await?;
    let client = server.client.clone();
    let server_pid = server.temporary.as_ref().map(|s| s.pid());
    let js = jetstream::new(client.clone());
    let store = StoreConfig {
        stream: EVENT_STREAM.to_owned(),
        ..StoreConfig::default()
    };
    wasl_store::provision::ensure_stream(&js, &store).await.map_err(|e| {
        BenchError::JetStream(format!(
            "cannot create the stream {EVENT_STREAM} on wasl.evt.> ({e}); the server must not hold a Wasl event log"
        ))
    })?;
    let mut history = History::new(options);
    let result = measure(options, progress, &client, &js, &store, server_pid, &mut history).await;
    let feeds: Vec<OrgId> = history.events.organisations().keys().copied().collect();
    cleanup(&js, &store, &feeds).await;
    let (paced, backlog, feeds_used, exactly_once, organisations) = result?;
    Ok(PartnersBenchReport {
        server: server.report,
        organisations,
        feeds_used,
        paced,
        backlog,
        exactly_once,
    })
}

type Measured = (PacedReport, BacklogReport, usize, bool, usize);

async fn measure(
    options: &PartnersBenchOptions,
    progress: &(dyn Fn(&str) + Sync),
    client: &async_nats::Client,
    js: &jetstream::Context,
    store: &StoreConfig,
    server_pid: Option<u32>,
    history: &mut History,
) -> Result<Measured, BenchError> {
    let config = RouterConfig {
        events: store.clone(),
        checkpoint_bucket: CHECKPOINT_BUCKET.to_owned(),
        ..RouterConfig::default()
    };
    let router_error = |e: wasl_router::RouterError| BenchError::JetStream(format!("router: {e}"));
    let mut publisher = Publisher::new(js, store).await.map_err(data_error)?;

    // 1. The directory, and the router creating the feeds.
    let (start, first_referral) = history.take_until_first_referral();
    publisher.publish(start).await.map_err(data_error)?;
    let router = Arc::new(
        Router::open(client.clone(), config.clone())
            .await
            .map_err(router_error)?,
    );
    let stop = CancellationToken::new();
    let running = spawn_router(router.clone(), stop.clone());
    wait_for(&router, publisher.last_sequence()).await?;
    progress(&format!(
        "{} organisations registered, {} feeds created",
        options.organisations,
        router.metrics().streams_created.load(Ordering::Relaxed)
    ));

    // 2. Paced.
    let sent: Arc<Mutex<BTreeMap<u64, Instant>>> = Arc::default();
    let lags: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut subscription = client
        .subscribe("wasl.out.>")
        .await
        .map_err(|e| BenchError::JetStream(e.to_string()))?;
    let timer = {
        let (sent, lags) = (sent.clone(), lags.clone());
        tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                let now = Instant::now();
                // Referral messages only: a redaction notice (an erased case) is not a
                // referral event of the paced load.
                if !message.subject.contains(".referral.") {
                    continue;
                }
                let Some(seq) = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(wasl_router::message::SOURCE_SEQUENCE))
                    .and_then(|v| v.as_str().parse::<u64>().ok())
                else {
                    continue;
                };
                if let Some(at) = sent.lock().expect("sent times").remove(&seq) {
                    lags.lock().expect("lags").push(now - at);
                }
            }
        })
    };
    progress(&format!(
        "paced: {} referral events/s for {:?}",
        options.rate, options.duration
    ));
    let cpu = CpuMeter::start(server_pid);
    let began = Instant::now();
    let (mut paced_referrals, mut paced_events) = (0u64, 0u64);
    let mut pending: Vec<StoredEvent> = first_referral.into_iter().collect();
    let mut ticker = tokio::time::interval(TICK);
    while began.elapsed() < options.duration {
        ticker.tick().await;
        let due = (began.elapsed().as_secs_f64() * f64::from(options.rate)) as u64;
        if due <= paced_referrals {
            continue;
        }
        let (mut events, n) = history.take_referral_events(due - paced_referrals - pending.len() as u64);
        let mut chunk = std::mem::take(&mut pending);
        let n = n + chunk.len() as u64;
        chunk.append(&mut events);
        if chunk.is_empty() {
            break;
        }
        let from = publisher.last_sequence() + 1;
        let at = Instant::now();
        {
            let mut sent = sent.lock().expect("sent times");
            for seq in from..from + chunk.len() as u64 {
                sent.insert(seq, at);
            }
        }
        paced_events += chunk.len() as u64;
        paced_referrals += n;
        publisher.publish(chunk).await.map_err(data_error)?;
    }
    let seconds = began.elapsed().as_secs_f64();
    wait_for(&router, publisher.last_sequence()).await?;
    let paced_cpu = cpu.stop();
    // Give the subscription a moment to take the last messages off the socket.
    tokio::time::sleep(Duration::from_millis(200)).await;
    timer.abort();
    let mut lags = std::mem::take(&mut *lags.lock().expect("lags"));
    lags.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    let per_event = |cpu: CpuUsed, n: u64| {
        let f = |s: Option<f64>| s.filter(|_| n > 0).map(|s| s * 1e6 / n as f64);
        (f(cpu.bench_seconds), f(cpu.server_seconds))
    };
    let (bench_cpu, server_cpu) = per_event(paced_cpu, paced_referrals);
    let lag_p99 = percentile(&lags, 99);
    let paced = PacedReport {
        target_rate: options.rate,
        referral_events: paced_referrals,
        events: paced_events,
        seconds,
        rate: paced_referrals as f64 / seconds,
        delivered: lags.len() as u64,
        lag_p50_ms: ms(percentile(&lags, 50)),
        lag_p99_ms: ms(lag_p99),
        lag_max_ms: lags.last().copied().map(ms).unwrap_or(0.0),
        pass: !lags.is_empty() && lag_p99 < TARGET_P99,
        bench_cpu_us_per_event: bench_cpu,
        server_cpu_us_per_event: server_cpu,
    };
    progress(&format!(
        "paced: {} referral events, lag p50 {:.1} ms, p99 {:.1} ms",
        paced.referral_events, paced.lag_p50_ms, paced.lag_p99_ms
    ));

    // 3. Backlog.
    stop.cancel();
    running
        .await
        .map_err(|e| BenchError::JetStream(e.to_string()))?
        .map_err(router_error)?;
    progress(&format!("backlog: appending {} referral events", options.backlog));
    let (events, backlog_referrals) = history.take_referral_events(options.backlog as u64);
    let backlog_events = events.len() as u64;
    publisher.publish(events).await.map_err(data_error)?;
    let router = Arc::new(Router::open(client.clone(), config).await.map_err(router_error)?);
    let stop = CancellationToken::new();
    let cpu = CpuMeter::start(server_pid);
    let began = Instant::now();
    let running = spawn_router(router.clone(), stop.clone());
    wait_for(&router, publisher.last_sequence()).await?;
    let seconds = began.elapsed().as_secs_f64();
    let (bench_cpu, server_cpu) = per_event(cpu.stop(), backlog_referrals);
    stop.cancel();
    running
        .await
        .map_err(|e| BenchError::JetStream(e.to_string()))?
        .map_err(router_error)?;
    let backlog = BacklogReport {
        referral_events: backlog_referrals,
        events: backlog_events,
        seconds,
        referral_events_per_second: backlog_referrals as f64 / seconds,
        events_per_second: backlog_events as f64 / seconds,
        bench_cpu_us_per_event: bench_cpu,
        server_cpu_us_per_event: server_cpu,
    };
    progress(&format!(
        "backlog: {:.0} referral events/s routed",
        backlog.referral_events_per_second
    ));

    // Exactly once: each feed holds one message per referral event addressed to it.
    let mut feeds_used = 0;
    let mut wrong = Vec::new();
    for (org, expected) in &history.expected {
        let name = wasl_events::partner::out_stream(*org);
        let held = match js.get_stream(&name).await {
            Ok(mut stream) => {
                stream
                    .info()
                    .await
                    .map_err(|e| BenchError::JetStream(e.to_string()))?
                    .state
                    .messages
            }
            Err(_) => 0,
        };
        feeds_used += usize::from(held > 0);
        if held != *expected {
            wrong.push(format!("{name}: {held} messages for {expected} referral events"));
        }
    }
    if !wrong.is_empty() {
        return Err(BenchError::Check(format!(
            "feeds do not hold one message per referral event: {}",
            wrong.join("; ")
        )));
    }
    Ok((paced, backlog, feeds_used, true, options.organisations))
}

fn spawn_router(
    router: Arc<Router>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Result<(), wasl_router::RouterError>> {
    tokio::spawn(async move { router.run(stop.cancelled_owned()).await })
}

/// Waits until the router's checkpoint reaches `sequence`.
async fn wait_for(router: &Router, sequence: u64) -> Result<(), BenchError> {
    let metrics = router.metrics();
    let began = Instant::now();
    while metrics.position.load(Ordering::Relaxed) < sequence {
        if began.elapsed() > CATCH_UP {
            return Err(BenchError::Check(format!(
                "the router reached sequence {} of {sequence} in {CATCH_UP:?}",
                metrics.position.load(Ordering::Relaxed)
            )));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

fn data_error(e: wasl_synth::PublishError) -> BenchError {
    BenchError::data("the synthetic events")(e)
}

/// Deletes what the run created on the server: the event stream, the checkpoint bucket and the
/// feeds of the network's organisations (never another stream, even on a server given by URL).
async fn cleanup(js: &jetstream::Context, store: &StoreConfig, feeds: &[OrgId]) {
    let _ = js.delete_stream(&store.stream).await;
    let _ = js.delete_key_value(CHECKPOINT_BUCKET).await;
    let _ = js
        .delete_key_value(wasl_router::cases::bucket_name(CHECKPOINT_BUCKET))
        .await;
    for org in feeds {
        let _ = js.delete_stream(wasl_events::partner::out_stream(*org)).await;
    }
}

impl fmt::Display for PartnersBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.paced;
        let b = &self.backlog;
        let us = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.0}"));
        writeln!(f, "Wasl partner delivery benchmark")?;
        writeln!(
            f,
            "  nats-server {} ({}, {}{}); router in this process",
            self.server.version,
            if self.server.temporary { "temporary" } else { "given" },
            self.server.url,
            if self.server.sync_always == Some(true) {
                ", sync_interval: always"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "  {} organisations, {} feeds with messages",
            self.organisations, self.feeds_used
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "  paced: {} referral events ({} events) in {:.1} s = {:.0} referral events/s (asked {})",
            p.referral_events, p.events, p.seconds, p.rate, p.target_rate
        )?;
        writeln!(
            f,
            "    lag append → partner message: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} messages \
             (target p99 < {} ms: {})",
            p.lag_p50_ms,
            p.lag_p99_ms,
            p.lag_max_ms,
            p.delivered,
            TARGET_P99.as_millis(),
            if p.pass { "PASS" } else { "BELOW" }
        )?;
        writeln!(
            f,
            "    CPU µs per referral event: bench process {}, nats-server {}",
            us(p.bench_cpu_us_per_event),
            us(p.server_cpu_us_per_event)
        )?;
        writeln!(
            f,
            "  backlog: {} referral events ({} events) routed in {:.2} s = {:.0} referral events/s ({:.0} events/s read)",
            b.referral_events, b.events, b.seconds, b.referral_events_per_second, b.events_per_second
        )?;
        writeln!(
            f,
            "    CPU µs per referral event: bench process {}, nats-server {}",
            us(b.bench_cpu_us_per_event),
            us(b.server_cpu_us_per_event)
        )?;
        writeln!(
            f,
            "  every feed holds exactly one message per referral event addressed to it: {}",
            if self.exactly_once { "yes" } else { "NO" }
        )
    }
}
