//! The load: the API clients (caseworkers of A, B's partner system), the network they work in,
//! and the runtime of their own that drives them and records every request.

use super::report::ReferralCounts;
use crate::error::BenchError;
use crate::probe::{CpuMeter, CpuUsed, ThreadCpu, thread_cpu};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, mpsc, oneshot};
use wasl_api::AppState;
use wasl_api::CancellationToken;
use wasl_api::auth::accounts::now_millis;
use wasl_domain::Role;
use wasl_domain::ids::{OrgId, UserId};
use wasl_domain::time::Timestamp;

/// The run stops early after this many errors: the numbers would mean nothing anyway.
const MAX_ERRORS: u64 = 1_000;
/// At most this many error messages are kept for the report.
const ERROR_SAMPLES: usize = 10;
/// Threads of the load generator's runtime (its own, so its CPU time can be told apart).
const LOAD_THREADS: usize = 2;
/// The name of the load generator's threads (`/proc/<pid>/task/<tid>/comm`).
const LOAD_THREAD_NAME: &str = "bench-load";
/// The request header of read-your-writes.
const MIN_POSITION: &str = "wasl-min-position";
/// The request header of idempotent retries.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// One kind of request of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    OpenCase,
    GiveConsent,
    RequestReferral,
    Inbox,
    Receive,
    Accept,
    Start,
    Complete,
    Worklist,
    FollowUp,
}

pub(super) const OPS: usize = 10;

impl Op {
    pub(super) const ALL: [Self; OPS] = [
        Self::OpenCase,
        Self::GiveConsent,
        Self::RequestReferral,
        Self::Inbox,
        Self::Receive,
        Self::Accept,
        Self::Start,
        Self::Complete,
        Self::Worklist,
        Self::FollowUp,
    ];

    pub(super) fn index(self) -> usize {
        self as usize
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::OpenCase => "open case",
            Self::GiveConsent => "give consent",
            Self::RequestReferral => "request referral",
            Self::Inbox => "inbox",
            Self::Receive => "receive",
            Self::Accept => "accept",
            Self::Start => "start",
            Self::Complete => "complete",
            Self::Worklist => "worklist",
            Self::FollowUp => "follow-up",
        }
    }

    pub(super) fn route(self) -> &'static str {
        match self {
            Self::OpenCase => "POST /v1/cases",
            Self::GiveConsent => "POST /v1/cases/{id}/consents",
            Self::RequestReferral => "POST /v1/referrals",
            Self::Inbox => "GET /v1/inbox + Wasl-Min-Position",
            Self::Receive => "POST /v1/referrals/{id}/receive",
            Self::Accept => "POST /v1/referrals/{id}/accept",
            Self::Start => "POST /v1/referrals/{id}/start",
            Self::Complete => "POST /v1/referrals/{id}/complete",
            Self::Worklist => "GET /v1/worklist + Wasl-Min-Position",
            Self::FollowUp => "POST /v1/referrals/{id}/follow-up",
        }
    }

    pub(super) fn actor(self) -> &'static str {
        match self {
            Self::Inbox | Self::Receive | Self::Accept | Self::Start | Self::Complete => "partner system (B)",
            _ => "caseworker (A)",
        }
    }

    pub(super) fn is_command(self) -> bool {
        !matches!(self, Self::Inbox | Self::Worklist)
    }
}

/// The organisations and credentials of the load, all made through the API (organisations)
/// and the account store (tokens), as an admin would.
pub(super) struct Network {
    pub(super) partner_org: String,
    pub(super) service: String,
    /// One token per caseworker client (each has a worklist of its own).
    pub(super) caseworker_tokens: Vec<String>,
    /// The partner system's token, shared by its clients.
    pub(super) partner_token: String,
}

impl Network {
    pub(super) async fn set_up(state: &AppState, base: &str, caseworkers: usize) -> Result<Self, BenchError> {
        let admin = UserId::from_uuid(uuid::Uuid::now_v7()).map_err(BenchError::data("the administrator's id"))?;
        let hub = OrgId::from_uuid(uuid::Uuid::now_v7()).map_err(BenchError::data("the hub's id"))?;
        let token = |org: OrgId, role: Role, label: String| async move {
            let expires = Timestamp::from_unix_millis(now_millis()).plus_hours(24);
            state
                .accounts()
                .issue_token(admin, org, role, &label, expires)
                .await
                .map(|(_, secret)| secret)
                .map_err(BenchError::data("a token"))
        };
        let coordinator = Caller::new(
            base,
            &token(hub, Role::Coordinator, "wasl bench api coordinator".to_owned()).await?,
        )?;
        let made = |what: &'static str, request: reqwest::RequestBuilder| {
            let coordinator = &coordinator;
            async move {
                coordinator
                    .send::<CommandAnswer>(request)
                    .await
                    .1
                    .map_err(|answer| BenchError::Api { what, answer })
            }
        };
        let register = |name: &'static str| {
            coordinator
                .post("/v1/organisations")
                .json(&json!({"name": name, "kind": "national_ngo"}))
        };
        let referring = made("register organisation A", register("Test Referring NGO")).await?;
        let partner = made("register organisation B", register("Test Health Partner")).await?;
        let service = made(
            "add B's health service",
            coordinator
                .post(&format!("/v1/organisations/{}/services", partner.id))
                .json(&json!({"name": "Test Health Partner clinic", "category": "health",
                              "areas": ["IQ-NI"], "languages": ["ar"]})),
        )
        .await?;
        let referring_org = OrgId::parse(&referring.id).map_err(BenchError::data("organisation A's id"))?;
        let partner_org = OrgId::parse(&partner.id).map_err(BenchError::data("organisation B's id"))?;
        let mut caseworker_tokens = Vec::with_capacity(caseworkers);
        for n in 0..caseworkers {
            caseworker_tokens.push(
                token(
                    referring_org,
                    Role::Caseworker,
                    format!("wasl bench api caseworker {n}"),
                )
                .await?,
            );
        }
        let partner_token = token(
            partner_org,
            Role::PartnerSystem,
            "wasl bench api partner system".to_owned(),
        )
        .await?;
        Ok(Self {
            partner_org: partner.id,
            service: service.id,
            caseworker_tokens,
            partner_token,
        })
    }
}

/// A command's answer (the fields the clients use).
#[derive(Debug, Deserialize)]
pub(super) struct CommandAnswer {
    pub(super) id: String,
    pub(super) position: u64,
}

/// A page of a list, counted.
#[derive(Debug, Deserialize)]
pub(super) struct Page {
    pub(super) items: Vec<IgnoredAny>,
}

/// A page of the worklist, with the referral ids.
#[derive(Debug, Deserialize)]
pub(super) struct WorkPage {
    pub(super) items: Vec<WorkItem>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WorkItem {
    pub(super) referral: IdOnly,
}

#[derive(Debug, Deserialize)]
pub(super) struct IdOnly {
    pub(super) id: String,
}

/// The `type` of a problem document.
#[derive(Debug, Deserialize)]
pub(super) struct ProblemType {
    #[serde(rename = "type")]
    pub(super) kind: String,
}

/// What one client (or all, merged) saw.
#[derive(Debug, Default)]
pub(super) struct Recorder {
    pub(super) latencies: [Vec<Duration>; OPS],
    pub(super) errors: [u64; OPS],
    pub(super) items: [u64; OPS],
    pub(super) samples: Vec<String>,
    pub(super) referrals: ReferralCounts,
}

impl Recorder {
    pub(super) fn ok(&mut self, op: Op, latency: Duration) {
        self.latencies[op.index()].push(latency);
    }

    pub(super) fn fail(&mut self, op: Op, what: String) {
        self.errors[op.index()] += 1;
        if self.samples.len() < ERROR_SAMPLES {
            self.samples.push(format!("{}: {what}", op.name()));
        }
    }

    pub(super) fn merge(&mut self, other: Self) {
        for op in 0..OPS {
            self.latencies[op].extend_from_slice(&other.latencies[op]);
            self.errors[op] += other.errors[op];
            self.items[op] += other.items[op];
        }
        for sample in other.samples {
            if self.samples.len() < ERROR_SAMPLES {
                self.samples.push(sample);
            }
        }
        let (a, b) = (&mut self.referrals, other.referrals);
        a.cases += b.cases;
        a.requested += b.requested;
        a.completed += b.completed;
        a.followed_up += b.followed_up;
    }
}

/// One principal's HTTP client: its own connection pool, so one keep-alive connection per
/// client that sends one request at a time.
#[derive(Clone)]
pub(super) struct Caller {
    pub(super) http: reqwest::Client,
    pub(super) base: Arc<str>,
    pub(super) authorization: HeaderValue,
}

impl Caller {
    pub(super) fn new(base: &str, token: &str) -> Result<Self, BenchError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1)
            .build()
            .map_err(|source| BenchError::Http {
                what: "build an HTTP client",
                source,
            })?;
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(BenchError::data("the authorization header"))?;
        authorization.set_sensitive(true);
        Ok(Self {
            http,
            base: Arc::from(base),
            authorization,
        })
    }

    pub(super) fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    pub(super) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base))
    }

    /// Sends `request` as this principal and times it to the end of the answer's body. Any
    /// answer but 2xx with the expected JSON is an error, described by its status and problem
    /// type, never by its body.
    pub(super) async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> (Duration, Result<T, String>) {
        let sent = Instant::now();
        let answered = async {
            let response = request.header(AUTHORIZATION, self.authorization.clone()).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        let latency = sent.elapsed();
        let result = match answered {
            Ok((status, body)) if status.is_success() => {
                serde_json::from_slice::<T>(&body).map_err(|_| format!("{} with an unexpected body", status.as_u16()))
            }
            Ok((status, body)) => {
                let kind = serde_json::from_slice::<ProblemType>(&body)
                    .map_or_else(|_| "no problem document".to_owned(), |p| p.kind);
                Err(format!("{} {kind}", status.as_u16()))
            }
            Err(err) => Err(format!("no answer: {err}")),
        };
        (latency, result)
    }

    /// [`send`](Self::send), recorded as `op`: its latency when it succeeds, an error otherwise.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        recorder: &mut Recorder,
        op: Op,
        request: reqwest::RequestBuilder,
    ) -> Option<T> {
        match self.send(request).await {
            (latency, Ok(value)) => {
                recorder.ok(op, latency);
                Some(value)
            }
            (_, Err(what)) => {
                recorder.fail(op, what);
                None
            }
        }
    }
}

/// The load to put on the API.
pub(super) struct LoadPlan {
    pub(super) base: String,
    pub(super) network: Network,
    pub(super) caseworkers: usize,
    pub(super) partners: usize,
    pub(super) duration: Duration,
    pub(super) loops: Option<usize>,
}

/// A requested referral, for the partner (the notification a partner would get).
#[derive(Debug)]
pub(super) struct Work {
    pub(super) referral: String,
    pub(super) position: u64,
    pub(super) owner: usize,
}

/// A referral the partner is done with, for its caseworker.
#[derive(Debug)]
pub(super) struct Done {
    pub(super) referral: String,
    /// The position of the completion, when it was completed.
    pub(super) completed_at: Option<u64>,
}

/// What every client shares.
pub(super) struct Shared {
    pub(super) run: String,
    pub(super) partner_org: String,
    pub(super) service: String,
    pub(super) cases: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) stopper: CancellationToken,
    pub(super) done: Vec<mpsc::UnboundedSender<Done>>,
}

impl Shared {
    /// Counts the errors a client saw; too many stop the run.
    pub(super) fn count_errors(&self, recorder: &Recorder, before: u64) {
        let now: u64 = recorder.errors.iter().sum();
        if now > before && self.errors.fetch_add(now - before, Ordering::Relaxed) + (now - before) >= MAX_ERRORS {
            self.stopper.cancel();
        }
    }
}

/// `future`'s output, or `None` if the run stops first.
pub(super) async fn unless_stopped<F: Future>(stop: &CancellationToken, future: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        () = stop.cancelled() => None,
        output = future => Some(output),
    }
}

/// What the clients saw, and what the load cost.
pub(super) struct LoadOutcome {
    pub(super) recorder: Recorder,
    pub(super) elapsed: Duration,
    /// CPU time from `cpu`'s start to the end of the load.
    pub(super) cpu: CpuUsed,
    /// Every thread's CPU time at the end of the load, taken while the clients' threads still
    /// exist.
    pub(super) threads: ThreadCpu,
}

/// Runs the clients on a runtime of their own (threads named [`LOAD_THREAD_NAME`]), so that
/// their CPU time can be told apart from the API's; returns what they saw and how long the
/// load lasted.
pub(super) async fn run_load(plan: LoadPlan, cpu: CpuMeter) -> Result<LoadOutcome, BenchError> {
    let (answer, answered) = oneshot::channel();
    std::thread::Builder::new()
        .name(LOAD_THREAD_NAME.to_owned())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(LOAD_THREADS)
                .thread_name(LOAD_THREAD_NAME)
                .enable_all()
                .build()
                .map_err(|source| BenchError::Io {
                    what: "start the load generator's runtime",
                    source,
                })
                .and_then(|runtime| {
                    let (recorder, elapsed) = runtime.block_on(drive(plan))?;
                    Ok(LoadOutcome {
                        recorder,
                        elapsed,
                        cpu: cpu.stop(),
                        threads: thread_cpu(),
                    })
                });
            let _ = answer.send(result);
        })
        .map_err(|source| BenchError::Io {
            what: "start the load generator's thread",
            source,
        })?;
    answered.await.map_err(|e| BenchError::Load {
        what: "the load generator stopped",
        source: e.into(),
    })?
}

pub(super) async fn drive(plan: LoadPlan) -> Result<(Recorder, Duration), BenchError> {
    let stopper = CancellationToken::new();
    let stop = stopper.clone();
    let mut done_senders = Vec::with_capacity(plan.caseworkers);
    let mut done_receivers = Vec::with_capacity(plan.caseworkers);
    for _ in 0..plan.caseworkers {
        let (tx, rx) = mpsc::unbounded_channel();
        done_senders.push(tx);
        done_receivers.push(rx);
    }
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let shared = Arc::new(Shared {
        run: format!("bench-{}-{stamp}", std::process::id()),
        partner_org: plan.network.partner_org.clone(),
        service: plan.network.service.clone(),
        cases: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        stopper,
        done: done_senders,
    });
    // New referrals wait here for the partner; a full queue holds the caseworkers back.
    let (queue, inbox) = mpsc::channel::<Work>(2 * plan.partners);
    let inbox = Arc::new(Mutex::new(inbox));

    let mut clients = Vec::with_capacity(plan.caseworkers + plan.partners);
    for (index, (token, done)) in plan.network.caseworker_tokens.iter().zip(done_receivers).enumerate() {
        clients.push(Client::Caseworker(Caseworker {
            index,
            caller: Caller::new(&plan.base, token)?,
            shared: shared.clone(),
            queue: queue.clone(),
            done,
            stop: stop.clone(),
            recorder: Recorder::default(),
            keys: 0,
        }));
    }
    drop(queue);
    for index in 0..plan.partners {
        clients.push(Client::Partner(Partner {
            index,
            caller: Caller::new(&plan.base, &plan.network.partner_token)?,
            shared: shared.clone(),
            inbox: inbox.clone(),
            stop: stop.clone(),
            recorder: Recorder::default(),
            keys: 0,
        }));
    }

    let started = Instant::now();
    let timer = plan.loops.is_none().then(|| {
        let (shared, duration) = (shared.clone(), plan.duration);
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            shared.stopper.cancel();
        })
    });
    let loops = plan.loops;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            tokio::spawn(async move {
                match client {
                    Client::Caseworker(c) => c.run(loops).await,
                    Client::Partner(p) => p.run().await,
                }
            })
        })
        .collect();
    let mut recorder = Recorder::default();
    for task in tasks {
        let seen = task.await.map_err(|e| BenchError::Load {
            what: "a client stopped",
            source: e.into(),
        })?;
        recorder.merge(seen);
    }
    let elapsed = started.elapsed();
    if let Some(timer) = timer {
        timer.abort();
    }
    Ok((recorder, elapsed))
}

pub(super) enum Client {
    Caseworker(Caseworker),
    Partner(Partner),
}

/// A caseworker of A: opens cases, records consent, refers to B; follows up what B completed.
pub(super) struct Caseworker {
    pub(super) index: usize,
    pub(super) caller: Caller,
    pub(super) shared: Arc<Shared>,
    pub(super) queue: mpsc::Sender<Work>,
    pub(super) done: mpsc::UnboundedReceiver<Done>,
    pub(super) stop: CancellationToken,
    pub(super) recorder: Recorder,
    pub(super) keys: u64,
}

impl Caseworker {
    pub(super) fn key(&mut self) -> String {
        self.keys += 1;
        format!("{}-c{}-{}", self.shared.run, self.index, self.keys)
    }

    pub(super) async fn run(mut self, loops: Option<usize>) -> Recorder {
        let (mut started, mut outstanding) = (0usize, 0usize);
        loop {
            let next = if loops.is_some_and(|n| started >= n) {
                if outstanding == 0 {
                    break;
                }
                match unless_stopped(&self.stop, self.done.recv()).await {
                    Some(Some(done)) => Some(done),
                    _ => break,
                }
            } else {
                self.done.try_recv().ok()
            };
            if self.stop.is_cancelled() {
                break;
            }
            let errors: u64 = self.recorder.errors.iter().sum();
            if let Some(done) = next {
                outstanding -= 1;
                if let Some(position) = done.completed_at {
                    self.follow_up(&done.referral, position).await;
                }
            } else {
                started += 1;
                if let Some(work) = self.refer().await {
                    outstanding += 1;
                    match unless_stopped(&self.stop, self.queue.send(work)).await {
                        Some(Ok(())) => {}
                        _ => break,
                    }
                }
            }
            self.shared.count_errors(&self.recorder, errors);
        }
        self.recorder
    }

    /// Opens a case, records consent and refers the client to B.
    pub(super) async fn refer(&mut self) -> Option<Work> {
        let n = self.shared.cases.fetch_add(1, Ordering::Relaxed) + 1;
        let case = json!({
            "profile": {
                "survivor_code": format!("TEST-{n:06}"),
                "sex": "female",
                "age_years": 29,
                "population_group": "idp",
                "nationality": "IQ",
                "governorate": "IQ-NI",
                "language": "ar",
                "vulnerabilities": []
            },
            "personal": {
                "name": format!("Test Person {n:04}"),
                "phone": format!("+964-000-{:04}", n % 10_000),
                "address": "Test Street 1, Mosul"
            }
        });
        let key = self.key();
        let opened: CommandAnswer = self
            .caller
            .call(
                &mut self.recorder,
                Op::OpenCase,
                self.caller.post("/v1/cases").header(IDEMPOTENCY_KEY, key).json(&case),
            )
            .await?;
        self.recorder.referrals.cases += 1;
        if self.stop.is_cancelled() {
            return None;
        }
        let key = self.key();
        let _: CommandAnswer = self
            .caller
            .call(
                &mut self.recorder,
                Op::GiveConsent,
                self.caller
                    .post(&format!("/v1/cases/{}/consents", opened.id))
                    .header(IDEMPOTENCY_KEY, key)
                    .json(&json!({})),
            )
            .await?;
        if self.stop.is_cancelled() {
            return None;
        }
        let key = self.key();
        let referral = json!({
            "case_id": opened.id,
            "to_org": self.shared.partner_org,
            "service_id": self.shared.service,
            "priority": "routine",
            "notes": "Test note for the partner: the client prefers morning appointments."
        });
        let requested: CommandAnswer = self
            .caller
            .call(
                &mut self.recorder,
                Op::RequestReferral,
                self.caller
                    .post("/v1/referrals")
                    .header(IDEMPOTENCY_KEY, key)
                    .json(&referral),
            )
            .await?;
        self.recorder.referrals.requested += 1;
        Some(Work {
            referral: requested.id,
            position: requested.position,
            owner: self.index,
        })
    }

    /// Told that `referral` was completed at `position`: reads the worklist as of then, and
    /// records the follow-up.
    pub(super) async fn follow_up(&mut self, referral: &str, position: u64) {
        let Some(page): Option<WorkPage> = self
            .caller
            .call(
                &mut self.recorder,
                Op::Worklist,
                self.caller.get("/v1/worklist").header(MIN_POSITION, position),
            )
            .await
        else {
            return;
        };
        let items = page.items.len();
        self.recorder.items[Op::Worklist.index()] += items as u64;
        let limit = wasl_projections::query::DEFAULT_LIMIT as usize;
        if items < limit && !page.items.iter().any(|item| item.referral.id == referral) {
            self.recorder
                .fail(Op::Worklist, "the completed referral is not on the worklist".to_owned());
        }
        if self.stop.is_cancelled() {
            return;
        }
        let key = self.key();
        let followed: Option<CommandAnswer> = self
            .caller
            .call(
                &mut self.recorder,
                Op::FollowUp,
                self.caller
                    .post(&format!("/v1/referrals/{referral}/follow-up"))
                    .header(IDEMPOTENCY_KEY, key)
                    .json(&json!({"client_reached": true, "service_received": "yes", "satisfaction": 5})),
            )
            .await;
        if followed.is_some() {
            self.recorder.referrals.followed_up += 1;
        }
    }
}

/// B's partner system: told of a new referral, reads its inbox, then receives, accepts, starts
/// and completes it.
pub(super) struct Partner {
    pub(super) index: usize,
    pub(super) caller: Caller,
    pub(super) shared: Arc<Shared>,
    pub(super) inbox: Arc<Mutex<mpsc::Receiver<Work>>>,
    pub(super) stop: CancellationToken,
    pub(super) recorder: Recorder,
    pub(super) keys: u64,
}

impl Partner {
    pub(super) fn key(&mut self) -> String {
        self.keys += 1;
        format!("{}-p{}-{}", self.shared.run, self.index, self.keys)
    }

    pub(super) async fn run(mut self) -> Recorder {
        loop {
            if self.stop.is_cancelled() {
                break;
            }
            let inbox = self.inbox.clone();
            let work = match unless_stopped(&self.stop, async move { inbox.lock().await.recv().await }).await {
                Some(Some(work)) => work,
                _ => break,
            };
            let errors: u64 = self.recorder.errors.iter().sum();
            let completed_at = self.handle(&work).await;
            if completed_at.is_some() {
                self.recorder.referrals.completed += 1;
            }
            if let Some(owner) = self.shared.done.get(work.owner) {
                let _ = owner.send(Done {
                    referral: work.referral,
                    completed_at,
                });
            }
            self.shared.count_errors(&self.recorder, errors);
        }
        self.recorder
    }

    /// The referral's course at B; the position of its completion.
    pub(super) async fn handle(&mut self, work: &Work) -> Option<u64> {
        let page: Page = self
            .caller
            .call(
                &mut self.recorder,
                Op::Inbox,
                self.caller.get("/v1/inbox").header(MIN_POSITION, work.position),
            )
            .await?;
        self.recorder.items[Op::Inbox.index()] += page.items.len() as u64;
        let mut position = work.position;
        for (op, verb) in [
            (Op::Receive, "receive"),
            (Op::Accept, "accept"),
            (Op::Start, "start"),
            (Op::Complete, "complete"),
        ] {
            if self.stop.is_cancelled() {
                return None;
            }
            let key = self.key();
            let answer: CommandAnswer = self
                .caller
                .call(
                    &mut self.recorder,
                    op,
                    self.caller
                        .post(&format!("/v1/referrals/{}/{verb}", work.referral))
                        .header(IDEMPOTENCY_KEY, key),
                )
                .await?;
            position = answer.position;
        }
        Some(position)
    }
}

/// The group a thread belongs to, by its name.
pub(super) fn thread_group(name: &str) -> &'static str {
    if name.starts_with(LOAD_THREAD_NAME) {
        "load generator (HTTP clients)"
    } else if name.starts_with("sqlx-sqlite") {
        "SQLite (sqlx worker threads)"
    } else {
        "API, store, projector (tokio)"
    }
}

/// CPU seconds per thread group between two snapshots; threads new in `after` count from zero.
pub(super) fn thread_groups(before: &ThreadCpu, after: &ThreadCpu) -> Vec<(&'static str, f64)> {
    let mut groups: Vec<(&'static str, f64)> = Vec::new();
    for (tid, (name, seconds)) in after {
        let used = seconds - before.get(tid).map_or(0.0, |(_, s)| *s);
        let group = thread_group(name);
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, total)) => *total += used,
            None => groups.push((group, used)),
        }
    }
    groups.sort_by(|a, b| b.1.total_cmp(&a.1));
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_eight_commands_and_two_queries() {
        assert_eq!(Op::ALL.iter().filter(|op| op.is_command()).count(), 8);
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.index(), i);
        }
        let mut names: Vec<&str> = Op::ALL.iter().map(|op| op.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), OPS);
        assert!(Op::Inbox.route().contains("Wasl-Min-Position"));
    }

    #[test]
    fn threads_are_grouped_by_name() {
        assert_eq!(thread_group("bench-load"), "load generator (HTTP clients)");
        assert_eq!(thread_group("sqlx-sqlite-wor"), "SQLite (sqlx worker threads)");
        assert_eq!(thread_group("tokio-runtime-w"), "API, store, projector (tokio)");
        let before = std::collections::HashMap::from([(1, ("bench-load".to_owned(), 1.0))]);
        let after = std::collections::HashMap::from([
            (1, ("bench-load".to_owned(), 3.0)),
            (2, ("bench-load".to_owned(), 0.5)),
            (3, ("wasl".to_owned(), 4.0)),
        ]);
        let groups = thread_groups(&before, &after);
        assert_eq!(groups[0], ("API, store, projector (tokio)", 4.0));
        assert_eq!(groups[1], ("load generator (HTTP clients)", 2.5));
    }

    #[test]
    fn a_recorder_counts_and_keeps_a_few_samples() {
        let mut a = Recorder::default();
        a.ok(Op::Inbox, Duration::from_millis(2));
        for _ in 0..(ERROR_SAMPLES + 3) {
            a.fail(Op::Accept, "422 urn:wasl:problem:refused".to_owned());
        }
        let mut total = Recorder::default();
        total.merge(a);
        assert_eq!(total.latencies[Op::Inbox.index()].len(), 1);
        assert_eq!(total.errors[Op::Accept.index()], (ERROR_SAMPLES + 3) as u64);
        assert_eq!(total.samples.len(), ERROR_SAMPLES);
        assert!(total.samples[0].starts_with("accept: 422"));
    }
}
