//! A real nats-server, a feed per organisation, and an in-process HTTP receiver on a loopback
//! port that can be told to fail.

use async_nats::HeaderMap as NatsHeaders;
use async_nats::jetstream::{self, stream};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wasl_domain::ids::OrgId;
use wasl_events::partner::{out_stream, out_subjects};
use wasl_testkit::NatsServer;
use wasl_webhooks::{
    DEFAULT_TOLERANCE, Destinations, RetryPolicy, Secret, SecretsKey, Webhooks, WebhooksConfig, verify,
};

/// The test master key (a fixed pattern, never a real key).
pub const MASTER_KEY: &str = "0303030303030303030303030303030303030303030303030303030303030303";

/// The key sealing signing secrets, derived from [`MASTER_KEY`].
pub fn secrets_key() -> SecretsKey {
    SecretsKey::from_master(&wasl_vault::LocalMasterKey::from_hex("test-master", MASTER_KEY).expect("master key"))
}

/// An obviously fake organisation id (UUIDv7 layout, counter in the last bytes).
pub fn fake_org(n: u128) -> OrgId {
    OrgId::from_uuid(uuid::Uuid::from_u128(0x0190_b2c4_0000_7000_8000_0000_00f0_0000 + n)).unwrap()
}

/// An obviously fake source event id.
pub fn fake_event_id(n: u128) -> String {
    uuid::Uuid::from_u128(0x0190_b2c4_0000_7000_8000_0000_00e0_0000 + n).to_string()
}

/// An obviously fake referral id.
pub fn fake_referral(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0190_b2c4_0000_7000_8000_0000_00d0_0000 + n)
}

/// A synthetic partner message: codes only, nothing personal.
pub fn fake_payload(n: u128) -> Vec<u8> {
    fake_payload_with(n, "")
}

/// A synthetic partner message with `extra` (`,"field":value`) at the end of its fields.
pub fn fake_payload_with(n: u128, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"schema":"wasl.partner.referral.v1","event_id":"{}","event_type":"wasl.referral.requested.v1","referral_id":"{}","version":1,"status":"requested","category":"test-category","priority":"routine","n":{n}{extra}}}"#,
        fake_event_id(n),
        fake_referral(n),
    )
    .into_bytes()
}

/// An obviously fake redaction notice id.
pub fn fake_notice_id(n: u128) -> String {
    uuid::Uuid::from_u128(0x0190_b2c4_0000_7000_8000_0000_00c0_0000 + n).to_string()
}

/// A synthetic redaction notice `n` naming `referrals` (of [`fake_referral`]), as the router
/// writes it: ids and a time only.
pub fn fake_notice(n: u128, referrals: &[u128]) -> Vec<u8> {
    let ids: Vec<String> = referrals.iter().map(|r| format!("\"{}\"", fake_referral(*r))).collect();
    format!(
        r#"{{"schema":"wasl.partner.redaction.v1","notice_id":"{}","event_type":"wasl.case.personal_data_erased.v1","occurred_at":"2026-01-01T00:00:00.000Z","referral_ids":[{}],"redact":true}}"#,
        fake_notice_id(n),
        ids.join(","),
    )
    .into_bytes()
}

/// The subject of message `n` in `org`'s feed.
pub fn feed_subject(org: OrgId, n: u128) -> String {
    format!("wasl.out.{org}.referral.{}", fake_referral(n))
}

/// Quick retries for tests, and loopback allowed explicitly: the receivers are on 127.0.0.1.
pub fn test_config(max_attempts: u32) -> WebhooksConfig {
    WebhooksConfig {
        retry: RetryPolicy {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(200),
            max_attempts,
        },
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        ack_wait: Duration::from_secs(1),
        retry_nats_after: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(1),
        destinations: Destinations::with_loopback(),
        ..WebhooksConfig::default()
    }
}

pub struct Hub {
    pub _server: NatsServer,
    pub js: jetstream::Context,
    pub webhooks: Webhooks,
}

impl Hub {
    pub async fn start(config: WebhooksConfig) -> Self {
        let server = NatsServer::start().expect("nats-server");
        let client = async_nats::connect(server.url()).await.expect("connect");
        let js = jetstream::new(client);
        let webhooks = Webhooks::connect(js.clone(), config, secrets_key())
            .await
            .expect("webhooks");
        Self {
            _server: server,
            js,
            webhooks,
        }
    }

    /// Creates `org`'s feed as the router would.
    pub async fn feed(&self, org: OrgId) {
        self.js
            .create_stream(stream::Config {
                name: out_stream(org),
                subjects: vec![out_subjects(org)],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .expect("feed");
    }

    /// Publishes synthetic message `n` into `org`'s feed as the router would.
    pub async fn publish(&self, org: OrgId, n: u128) {
        self.publish_raw(org, n, fake_payload(n)).await;
    }

    /// Publishes `payload` as message `n` into `org`'s feed.
    pub async fn publish_raw(&self, org: OrgId, n: u128, payload: Vec<u8>) {
        let mut headers = NatsHeaders::new();
        headers.insert("Nats-Msg-Id", fake_event_id(n).as_str());
        self.publish_exactly(feed_subject(org, n), Some(headers), payload).await;
    }

    /// Publishes redaction notice `n` naming `referrals` into `org`'s feed as the router would;
    /// returns its sequence in the feed.
    pub async fn publish_notice(&self, org: OrgId, n: u128, referrals: &[u128]) -> u64 {
        let mut headers = NatsHeaders::new();
        headers.insert("Nats-Msg-Id", fake_notice_id(n).as_str());
        let subject = wasl_events::partner::redaction_subject(org, fake_notice_id(n).parse().unwrap());
        self.publish_exactly(subject, Some(headers), fake_notice(n, referrals))
            .await
    }

    /// Publishes `payload` on `subject` with exactly `headers` (none at all with `None`), as
    /// anyone allowed to publish there could; returns its sequence in the feed.
    pub async fn publish_exactly(&self, subject: String, headers: Option<NatsHeaders>, payload: Vec<u8>) -> u64 {
        let ack = match headers {
            Some(headers) => self.js.publish_with_headers(subject, headers, payload.into()).await,
            None => self.js.publish(subject, payload.into()).await,
        };
        ack.expect("publish").await.expect("stored").sequence
    }

    /// Runs a worker until the returned guard is stopped or dropped (killed).
    pub fn worker(&self) -> Worker {
        Self::worker_of(self.webhooks.clone())
    }

    /// Runs a worker of `webhooks` (another handle, another configuration).
    pub fn worker_of(webhooks: Webhooks) -> Worker {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            webhooks
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .expect("worker");
        });
        Worker { stop: Some(stop), task }
    }
}

pub struct Worker {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Worker {
    /// Graceful shutdown.
    pub async fn stop(mut self) {
        let _ = self.stop.take().expect("running").send(());
        (&mut self.task).await.expect("worker ended");
    }

    /// Kills the worker mid-way, as a crash would: nothing is handed back.
    pub async fn kill(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub status: u16,
    /// When it arrived (to check signatures at that time).
    pub at: SystemTime,
}

impl Received {
    pub fn id(&self) -> &str {
        self.headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn verify_with(&self, secret: &Secret) -> Result<(), wasl_webhooks::VerifyError> {
        verify(secret, &self.headers, &self.body, self.at, DEFAULT_TOLERANCE)
    }
}

#[derive(Default)]
struct Behaviour {
    /// Fail this many requests (any id) with 503 first.
    fail_next: u32,
    /// Fail every request for these webhook ids with 503.
    poisoned: HashSet<String>,
    /// Fail everything with 503.
    always_fail: bool,
    /// Answer 401 unless the signature verifies with this secret.
    expect_secret: Option<Secret>,
    log: Vec<Received>,
}

/// The in-process receiver.
#[derive(Clone)]
pub struct Receiver {
    state: Arc<Mutex<Behaviour>>,
    pub url: String,
}

async fn receive(State(state): State<Arc<Mutex<Behaviour>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut behaviour = state.lock().unwrap();
    let at = SystemTime::now();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let status = if behaviour.always_fail || behaviour.poisoned.contains(&id) {
        StatusCode::SERVICE_UNAVAILABLE
    } else if behaviour.fail_next > 0 {
        behaviour.fail_next -= 1;
        StatusCode::SERVICE_UNAVAILABLE
    } else if let Some(secret) = &behaviour.expect_secret
        && verify(secret, &headers, &body, at, DEFAULT_TOLERANCE).is_err()
    {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::NO_CONTENT
    };
    behaviour.log.push(Received {
        headers,
        body,
        status: status.as_u16(),
        at,
    });
    status
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(Behaviour::default()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver");
        });
        Self { state, url }
    }

    pub fn fail_next(&self, n: u32) {
        self.state.lock().unwrap().fail_next = n;
    }

    pub fn always_fail(&self, yes: bool) {
        self.state.lock().unwrap().always_fail = yes;
    }

    pub fn poison(&self, id: &str) {
        self.state.lock().unwrap().poisoned.insert(id.to_owned());
    }

    pub fn heal(&self) {
        let mut behaviour = self.state.lock().unwrap();
        behaviour.poisoned.clear();
        behaviour.always_fail = false;
        behaviour.fail_next = 0;
    }

    pub fn expect_secret(&self, secret: &Secret) {
        self.state.lock().unwrap().expect_secret = Some(secret.clone());
    }

    pub fn log(&self) -> Vec<Received> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn delivered(&self) -> Vec<Received> {
        self.log().into_iter().filter(Received::ok).collect()
    }

    pub fn attempts_for(&self, id: &str) -> usize {
        self.log().iter().filter(|r| r.id() == id).count()
    }
}

/// Polls `condition` until it holds (20 s at most).
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
