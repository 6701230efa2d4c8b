//! A Wasl on a real nats-server filled like a running one — the demo network through the real
//! command path, the router's feeds and checkpoint, a webhook endpoint, audit records — and
//! helpers to compare two servers stream by stream. Synthetic data only; nothing personal is
//! printed.

#![allow(dead_code)]

use async_nats::jetstream;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wasl_api::auth::accounts::Accounts;
use wasl_demo::{DemoConfig, DemoParts, DemoReport};
use wasl_domain::case::CaseEvent;
use wasl_domain::catalogue::{EraseCode, Reason};
use wasl_domain::directory::OrganisationEvent;
use wasl_domain::ids::{CaseId, CommandId, EventId, OrgId, UserId, uuid_v7_from_parts};
use wasl_domain::pii::PersonalData;
use wasl_domain::testing::actor;
use wasl_domain::time::Timestamp;
use wasl_domain::{Context, Role};
use wasl_events::DomainEvent;
use wasl_projections::query::{CaseFilter, PageRequest, ReferralFilter};
use wasl_projections::{Projection, ReadModels, ReadModelsConfig};
use wasl_store::testing::{connect, last_sequence};
use wasl_store::{CommandMeta, EventStore, StoreConfig};
use wasl_testkit::NatsServer;
use wasl_vault::{LocalMasterKey, Vault, VaultConfig};

pub const MASTER_KEY: &str = "0404040404040404040404040404040404040404040404040404040404040404";
/// 2026-05-28 20:26 UTC.
pub const NOW: Timestamp = Timestamp::from_unix_millis(1_780_000_000_000);

pub fn server() -> NatsServer {
    NatsServer::start().expect("start a nats-server (NATS_SERVER_BIN)")
}

pub async fn js(server: &NatsServer) -> jetstream::Context {
    jetstream::new(connect(&server.url()).await)
}

/// Wasl's parts on one server, as a fresh process opens them.
pub struct Parts {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub store: EventStore,
    pub vault: Vault<LocalMasterKey>,
}

impl Parts {
    pub async fn open(server: &NatsServer) -> Self {
        let client = connect(&server.url()).await;
        let store = EventStore::open(client.clone(), StoreConfig::default())
            .await
            .expect("the event store");
        let js = jetstream::new(client.clone());
        let master = LocalMasterKey::from_hex("test-master", MASTER_KEY).expect("master key");
        let vault = Vault::connect(&js, master, &VaultConfig::default())
            .await
            .expect("the vault");
        Self {
            client,
            js,
            store,
            vault,
        }
    }

    /// The system principal, as the retention job erases.
    pub fn system_meta(&self, n: u8) -> CommandMeta {
        let id = |b: u8| uuid_v7_from_parts(1_780_000_000_000, [b; 10]);
        CommandMeta {
            command_id: CommandId::from_uuid(id(0x70 + n)).expect("v7"),
            context: Context {
                now: NOW.plus_hours(1),
                actor: actor(
                    UserId::try_from(id(0x61)).expect("v7"),
                    OrgId::try_from(id(0x62)).expect("v7"),
                    Role::System,
                ),
            },
            traceparent: None,
        }
    }

    /// Erases a case through the real command path.
    pub async fn erase(&self, case: CaseId, n: u8) {
        wasl_vault::erase::erase_case(
            &self.store,
            &self.vault,
            case,
            Reason::coded(EraseCode::ClientRequest),
            &self.system_meta(n),
        )
        .await
        .expect("the case is erased");
    }

    pub async fn last_sequence(&self) -> u64 {
        last_sequence(&self.store).await
    }
}

/// What [`fill`] made.
pub struct Filled {
    pub demo: DemoReport,
    /// Every case as opened: id, the opening event's id, its sealed personal data.
    pub opened: Vec<(CaseId, EventId, PersonalData)>,
    pub organisations: Vec<OrgId>,
    /// The router's checkpoint: it routed the log up to here.
    pub routed_to: u64,
    /// The webhook endpoint's signing secret, `whsec_…` (stored sealed: a backup must not hold it).
    pub webhook_secret: String,
}

/// Loads the demo network, routes it to the partner feeds, sets a webhook endpoint and writes
/// three audit records: every kind of Wasl stream holds something.
pub async fn fill(server: &NatsServer) -> Filled {
    let parts = Parts::open(server).await;
    let accounts = Accounts::open(parts.js.clone(), 1).await.expect("accounts");
    let demo = wasl_demo::load(
        DemoParts {
            store: &parts.store,
            vault: &parts.vault,
            accounts: &accounts,
        },
        &DemoConfig::new(NOW),
    )
    .await
    .expect("the demo loads");
    let (opened, organisations) = read_log(&parts).await;

    // The router: every referral event into its organisation's feed, and its checkpoint.
    let last = parts.last_sequence().await;
    let router = std::sync::Arc::new(
        wasl_router::Router::open(parts.client.clone(), wasl_router::RouterConfig::default())
            .await
            .expect("the router"),
    );
    route_until(&router, last).await;

    // A webhook endpoint (its bucket holds a signing secret) and a few audited reads.
    let webhooks = wasl_webhooks::Webhooks::connect(parts.js.clone(), webhooks_config(), webhooks_key())
        .await
        .expect("webhooks");
    let secret = webhooks
        .set_endpoint(organisations[1], "http://127.0.0.1:9/hook", "test")
        .await
        .expect("an endpoint");
    let audit = wasl_api::audit::Audit::open(
        parts.js.clone(),
        1,
        wasl_api::audit::AuditKey::from_master(
            &LocalMasterKey::from_hex("test-master", MASTER_KEY).expect("master key"),
        ),
    )
    .await
    .expect("audit");
    let reader = parts.system_meta(0).context.actor;
    for (case, _, _) in opened.iter().take(3) {
        audit
            .record(
                &reader,
                "case.read",
                format!("case/{case}"),
                "GET /v1/cases/{case_id}",
                "req",
            )
            .await
            .expect("an audit record");
    }
    Filled {
        demo,
        opened,
        organisations,
        routed_to: last,
        webhook_secret: secret.expose().to_string(),
    }
}

/// Loopback allowed explicitly (the endpoint points there; nothing is delivered).
pub fn webhooks_config() -> wasl_webhooks::WebhooksConfig {
    wasl_webhooks::WebhooksConfig {
        destinations: wasl_webhooks::Destinations::with_loopback(),
        ..wasl_webhooks::WebhooksConfig::default()
    }
}

/// The key sealing the webhook signing secrets, from the test master key.
pub fn webhooks_key() -> wasl_webhooks::SecretsKey {
    wasl_webhooks::SecretsKey::from_master(&LocalMasterKey::from_hex("test-master", MASTER_KEY).expect("master key"))
}

async fn read_log(parts: &Parts) -> (Vec<(CaseId, EventId, PersonalData)>, Vec<OrgId>) {
    let last = parts.last_sequence().await;
    let mut feed = wasl_store::subscribe::subscribe(parts.store.stream(), 1, None)
        .await
        .expect("subscribe");
    let mut opened = Vec::new();
    let mut organisations = Vec::new();
    while let Some(recorded) = feed.next().await {
        let recorded = recorded.expect("a readable event");
        match recorded.event.event {
            DomainEvent::Case(id, CaseEvent::Opened { personal, .. }) => {
                opened.push((id, recorded.event.meta.event_id, personal));
            }
            DomainEvent::Organisation(id, OrganisationEvent::Registered { .. }) => organisations.push(id),
            _ => {}
        }
        if recorded.sequence >= last {
            break;
        }
    }
    (opened, organisations)
}

/// A stored message, as compared between servers: sequence, subject, the headers that carry
/// meaning (sorted; JetStream's publish controls aside), payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub subject: String,
    pub headers: Vec<(String, String)>,
    /// Every header as stored, sorted.
    pub raw_headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

/// Every message of every stream whose name passes `keep`, by stream.
pub async fn contents(js: &jetstream::Context, keep: impl Fn(&str) -> bool) -> BTreeMap<String, Vec<Stored>> {
    let mut names = js.stream_names();
    let mut out = BTreeMap::new();
    while let Some(name) = names.next().await {
        let name = name.expect("a stream name");
        if keep(&name) {
            let messages = read_stream(js, &name).await;
            out.insert(name, messages);
        }
    }
    out
}

/// Every message of a stream, one request per sequence to the stream's leader (slow but exact:
/// what is stored, nothing a consumer could skip or end early on).
pub async fn read_stream(js: &jetstream::Context, name: &str) -> Vec<Stored> {
    let mut stream = js.get_stream(name).await.expect("the stream");
    let state = stream.info().await.expect("info").state.clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return out;
    }
    for seq in state.first_sequence..=state.last_sequence {
        let message = match stream.get_raw_message(seq).await {
            Ok(message) => message,
            Err(err) if err.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => continue,
            Err(err) => panic!("{name} at {seq}: {err}"),
        };
        let mut raw_headers: Vec<(String, String)> = message
            .headers
            .iter()
            .flat_map(|(n, vs)| {
                let n: &str = n.as_ref();
                vs.iter().map(move |v| (n.to_owned(), v.as_str().to_owned()))
            })
            .collect();
        raw_headers.sort();
        let headers = raw_headers
            .iter()
            .filter(|(n, _)| !wasl_backup::format::is_publish_control(n))
            .cloned()
            .collect();
        out.push(Stored {
            seq,
            subject: message.subject.to_string(),
            headers,
            raw_headers,
            payload: message.payload.to_vec(),
        });
    }
    assert_eq!(out.len() as u64, state.messages, "{name}: every message read");
    out
}

/// Every stream's name on the server.
pub async fn stream_names(js: &jetstream::Context) -> Vec<String> {
    let mut names = js.stream_names();
    let mut out = Vec::new();
    while let Some(name) = names.next().await {
        out.push(name.expect("a name"));
    }
    out.sort();
    out
}

/// Counts of the read models rebuilt from a server's log into a fresh SQLite file.
pub async fn rebuilt_counts(server: &NatsServer) -> (usize, usize, u64) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite:{}", dir.path().join("wasl.db").display());
    let models = ReadModels::open(&ReadModelsConfig::new(&url))
        .await
        .expect("read models");
    let store = EventStore::open_existing(connect(&server.url()).await, StoreConfig::default())
        .await
        .expect("the log")
        .expect("a log");
    let report = wasl_projections::rebuild(
        &models,
        store.stream(),
        Projection::ALL,
        1_000,
        wasl_projections::feed::store_decoder,
        None,
        |_| {},
    )
    .await
    .expect("the rebuild");
    assert_eq!(report.parked, 0, "nothing parked");
    let mut cases = 0;
    let mut page = PageRequest::first(500);
    loop {
        let got = models.cases(&CaseFilter::default(), &page).await.expect("cases");
        cases += got.items.len();
        match got.next {
            Some(next) => page = PageRequest::continuing(500, next),
            None => break,
        }
    }
    let mut referrals = 0;
    let mut page = PageRequest::first(500);
    loop {
        let got = models
            .referrals(&ReferralFilter::default(), &page)
            .await
            .expect("referrals");
        referrals += got.items.len();
        match got.next {
            Some(next) => page = PageRequest::continuing(500, next),
            None => break,
        }
    }
    (cases, referrals, report.checkpoint)
}

/// Writes a backup by hand (for cases a live server does not produce): `streams` as
/// (configuration, first sequence, last sequence, records).
pub fn write_backup(
    dir: &std::path::Path,
    streams: Vec<(jetstream::stream::Config, u64, u64, Vec<wasl_backup::format::Record>)>,
) {
    use sha2::Digest;
    use wasl_backup::format::{self, Manifest, StreamEntry};
    std::fs::create_dir(dir).expect("mkdir");
    let mut entries = Vec::new();
    for (config, first_seq, last_seq, records) in streams {
        let mut text = String::new();
        for record in &records {
            text.push_str(&serde_json::to_string(record).expect("a record"));
            text.push('\n');
        }
        let file = format::file_name(&config.name);
        std::fs::write(dir.join(&file), &text).expect("write");
        entries.push(StreamEntry {
            name: config.name.clone(),
            file,
            config,
            first_seq,
            last_seq,
            messages: records.len() as u64,
            bytes: text.len() as u64,
            sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
        });
    }
    let manifest = Manifest {
        format: format::FORMAT.to_owned(),
        version: format::VERSION,
        created_at: "2026-05-28T20:26:40Z".to_owned(),
        with_keys: false,
        streams: entries,
    };
    std::fs::write(
        dir.join(format::MANIFEST),
        serde_json::to_vec_pretty(&manifest).expect("a manifest"),
    )
    .expect("write");
}

/// A record of `subject` at `seq` with these headers and a small payload.
pub fn record(seq: u64, subject: &str, headers: &[(&str, &str)]) -> wasl_backup::format::Record {
    wasl_backup::format::Record {
        seq,
        subject: subject.to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        data: "c3ludGhldGlj".to_owned(),
    }
}

/// Runs `router` until it has delivered the log up to `last`, then stops it cleanly.
pub async fn route_until(router: &std::sync::Arc<wasl_router::Router>, last: u64) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn({
        let router = router.clone();
        async move {
            router
                .run(async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    let metrics = router.metrics();
    let deadline = Instant::now() + Duration::from_secs(60);
    while metrics.position.load(Ordering::Relaxed) < last {
        assert!(Instant::now() < deadline, "the router did not catch up to {last}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    task.await.expect("router task").expect("the router stops cleanly");
}
