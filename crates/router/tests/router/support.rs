//! The shared synthetic network (`wasl_synth::network`) with planted markers on a fresh
//! nats-server, helpers to run routers and read the partner feeds back byte for byte.

#![allow(dead_code)]

use async_nats::jetstream::{self, message::StreamMessage};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wasl_domain::case::CaseCommand;
use wasl_domain::catalogue::{EraseCode, Reason};
use wasl_domain::client::ClientProfile;
use wasl_domain::ids::{CaseId, OrgId};
use wasl_domain::pii::{Cipher, EncryptedPii, KeyId, PersonalData};
use wasl_domain::testing::{mosul, profile};
use wasl_events::partner::out_stream;
use wasl_router::{Router, RouterConfig};
use wasl_store::{CommandOutcome, EventStore};
use wasl_testkit::NatsServer;

pub use wasl_domain::testing::{at, ctx, fresh};
pub use wasl_store::testing::{connect, last_sequence, meta, open_store};
pub use wasl_synth::network::Network;

pub const WAIT: Duration = Duration::from_secs(60);

pub fn server() -> NatsServer {
    NatsServer::start().expect("start a nats-server (NATS_SERVER_BIN)")
}

/// A client with `options`, as [`connect`] makes one.
pub async fn connect_with(url: &str, options: async_nats::ConnectOptions) -> async_nats::Client {
    options
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect()
        .connect(url)
        .await
        .expect("connect to the test nats-server")
}

/// A router configuration with small batches and a small cache, to exercise both.
pub fn router_config() -> RouterConfig {
    RouterConfig {
        api_base_url: "https://wasl.example.invalid/".to_owned(),
        batch_size: 7,
        cache_capacity: 5,
        retry_delay: Duration::from_millis(50),
        ..RouterConfig::default()
    }
}

/// A router running in a task, stopped by `abort` (a crash) or `stop` (a shutdown).
pub struct Running {
    pub router: Arc<Router>,
    task: tokio::task::JoinHandle<Result<(), wasl_router::RouterError>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    pub async fn start(url: &str, config: RouterConfig) -> Self {
        let router = Arc::new(Router::open(connect(url).await, config).await.expect("open the router"));
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
        Self {
            router,
            task,
            stop: Some(stop),
        }
    }

    /// Waits until the checkpoint reaches `sequence`.
    pub async fn wait_for(&self, sequence: u64) {
        let metrics = self.router.metrics();
        wait_until("the router reaches the sequence", || {
            metrics.position.load(Ordering::Relaxed) >= sequence
        })
        .await;
    }

    /// Kills the task wherever it is (acknowledgements may be in flight).
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Stops gracefully and returns the run's result.
    pub async fn stop(mut self) -> Result<(), wasl_router::RouterError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("the router task does not panic")
    }
}

/// Polls `done` until true, failing after [`WAIT`].
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls an async condition until true, failing after [`WAIT`].
pub async fn wait_until_async<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + WAIT;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every message of `org`'s feed, in order (empty when the feed does not exist).
pub async fn feed(js: &jetstream::Context, org: OrgId) -> Vec<StreamMessage> {
    let Ok(stream) = js.get_stream(out_stream(org)).await else {
        return Vec::new();
    };
    let state = stream.cached_info().state.clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return out;
    }
    for sequence in state.first_sequence..=state.last_sequence {
        out.push(stream.get_raw_message(sequence).await.expect("read a feed message"));
    }
    out
}

/// A message as bytes on the wire: every header name and value, then the payload.
pub fn raw_bytes(message: &StreamMessage) -> Vec<u8> {
    let mut bytes = message.subject.as_bytes().to_vec();
    for (name, values) in message.headers.iter() {
        for value in values {
            bytes.extend_from_slice(<_ as AsRef<str>>::as_ref(name).as_bytes());
            bytes.push(b':');
            bytes.extend_from_slice(value.as_str().as_bytes());
            bytes.push(b'\n');
        }
    }
    bytes.extend_from_slice(&message.payload);
    bytes
}

/// A sealed value whose "ciphertext" is the marker itself, so it would show if ever copied.
pub fn sealed(marker: &str) -> EncryptedPii {
    EncryptedPii::new(
        Cipher::XChaCha20Poly1305,
        KeyId::parse("case-test-key-1").expect("key id"),
        vec![7; 24],
        marker.as_bytes().to_vec(),
    )
    .expect("a sealed value")
}

/// The survivor code planted in the case.
pub const SURVIVOR_CODE: &str = "MRKSURV-7731";

/// The shared network with a third organisation (`others[0]`), whose cases live in a district
/// and carry personal data and referral notes that are all markers, so they would show if ever
/// copied into a feed.
pub async fn network(store: &EventStore) -> Network {
    Network::builder()
        .others(1)
        .profile(ClientProfile {
            location: mosul(),
            ..profile(SURVIVOR_CODE)
        })
        .personal(PersonalData {
            name: Some(sealed("MRK-NAME-Zzyzx-Fakename")),
            phone: Some(sealed("MRK-PHONE-0000-000-0000")),
            address: Some(sealed("MRK-ADDRESS-1-Nowhere-Lane")),
            notes: Some(sealed("MRK-CASENOTES-not-a-real-note")),
        })
        .notes(sealed("MRK-REFNOTES-not-a-real-note"))
        .build(store)
        .await
}

/// Erases the personal data of `case` as the referring organisation's supervisor, with a
/// marked reason text.
pub async fn erase(store: &EventStore, net: &Network, case: CaseId) -> CommandOutcome {
    let erase = CaseCommand::ErasePersonalData {
        reason: Reason {
            code: EraseCode::Other,
            text: Some(sealed("MRK-ERASE-reason-of-an-erasure")),
        },
    };
    store
        .execute::<wasl_domain::case::Case>(case, &erase, &meta(net.supervisor()))
        .await
        .expect("erase the case's personal data")
}
