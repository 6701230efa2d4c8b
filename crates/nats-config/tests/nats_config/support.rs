//! A nats-server configured by `wasl_nats_config::generate` for two organisations A and B, the
//! hub's streams `WASL_OUT_<A>` and `WASL_OUT_<B>` with a few messages each and the consumers the
//! router keeps on them, and clients for the hub's users and for each organisation.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{Client, ConnectOptions, Event, ServerError};
use tempfile::TempDir;
use tokio::sync::mpsc;
use wasl_domain::ids::{OrgId, ReferralId};
use wasl_events::partner::{inbox_prefix, out_stream, out_subject, out_subjects};
use wasl_nats_config::{Generated, HubUser, NatsConfigOptions, PartnerOrg, generate};
use wasl_testkit::NatsServer;

pub use wasl_domain::testing::fresh;

/// Messages the hub puts in each organisation's feed before a test starts.
pub const MESSAGES_PER_FEED: usize = 3;

/// How long to wait for something that should happen (a reply, a message).
pub const PATIENCE: Duration = Duration::from_secs(5);

/// How long to wait for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(500);

/// A partner's connection and the server errors (permission violations) it was sent.
pub struct Partner {
    pub client: Client,
    pub js: jetstream::Context,
    errors: mpsc::UnboundedReceiver<String>,
}

impl Partner {
    /// Waits for a permission violation naming `subject`, skipping other errors.
    pub async fn expect_violation(&mut self, subject: &str) {
        let seen = tokio::time::timeout(PATIENCE, async {
            while let Some(error) = self.errors.recv().await {
                if error.to_lowercase().contains("permissions violation") && error.contains(subject) {
                    return;
                }
            }
        })
        .await;
        assert!(seen.is_ok(), "no permissions violation for {subject}");
    }

    /// A core request that must be refused: it fails and the server names the subject.
    pub async fn denied_request(&mut self, subject: &str, payload: &'static str) {
        let result = self.client.request(subject.to_owned(), payload.into()).await;
        assert!(result.is_err(), "{subject} answered: {:?}", result.map(|m| m.payload));
        self.expect_violation(subject).await;
    }

    /// A subscription that must be refused: the server names the subject and nothing arrives.
    pub async fn denied_subscription(&mut self, subject: &str) -> async_nats::Subscriber {
        let subscriber = self
            .client
            .subscribe(subject.to_owned())
            .await
            .expect("subscribe is sent");
        self.client.flush().await.expect("flush");
        self.expect_violation(subject).await;
        subscriber
    }
}

pub struct Net {
    // Field order: clients are dropped before the server.
    pub server: NatsServer,
    /// Holds the generated files (seeds) for the test's duration.
    pub _out: TempDir,
    pub generated: Generated,
    pub a: OrgId,
    pub b: OrgId,
    pub hub: Client,
    pub hub_js: jetstream::Context,
}

impl Net {
    /// Generates the config for A and B, starts a server with it and fills both feeds.
    pub async fn start() -> Self {
        let (a, b): (OrgId, OrgId) = (fresh(), fresh());
        let out = tempfile::tempdir().expect("temp dir");
        let options = NatsConfigOptions {
            orgs: vec![
                PartnerOrg {
                    id: a,
                    name: "Organisation A".into(),
                },
                PartnerOrg {
                    id: b,
                    name: "Organisation B".into(),
                },
            ],
            out_dir: out.path().to_owned(),
            tls: None,
            server_url: None,
        };
        let generated = generate(&options).expect("generate");
        let auth = std::fs::read_to_string(&generated.auth_conf).expect("read auth.conf");
        // Inlined rather than included: nats-server resolves `include` relative to the config
        // file, which lives in the test kit's own temporary directory.
        let server = NatsServer::builder()
            .extra_config(auth)
            .start()
            .expect("start nats-server");
        let hub = connect_seed(&server.url(), &generated.hub.seed_file, None).await.0;
        let hub_js = jetstream::new(hub.clone());
        let net = Net {
            server,
            _out: out,
            generated,
            a,
            b,
            hub,
            hub_js,
        };
        for org in [a, b] {
            let feed = net
                .hub_js
                .create_stream(stream::Config {
                    name: out_stream(org),
                    subjects: vec![out_subjects(org)],
                    allow_direct: true,
                    ..Default::default()
                })
                .await
                .expect("create feed stream");
            wasl_router::keep_partner_consumers(&feed)
                .await
                .expect("the router's consumers");
            for _ in 0..MESSAGES_PER_FEED {
                net.publish_to_feed(org).await;
            }
        }
        net
    }

    /// The hub puts one message in `org`'s feed.
    pub async fn publish_to_feed(&self, org: OrgId) {
        let referral: ReferralId = fresh();
        self.hub_js
            .publish(
                out_subject(org, referral),
                format!("{{\"referral\":\"{referral}\"}}").into(),
            )
            .await
            .expect("publish")
            .await
            .expect("ack");
    }

    fn seed_of(&self, org: OrgId) -> &std::path::Path {
        &self
            .generated
            .partners
            .iter()
            .find(|p| p.org.id == org)
            .expect("generated partner")
            .credential
            .seed_file
    }

    /// `org`'s connection with its own credential and inbox prefix.
    pub async fn partner(&self, org: OrgId) -> Partner {
        self.partner_with_inbox(org, &inbox_prefix(org)).await
    }

    /// `org`'s connection using another inbox prefix (what a careless or hostile client does).
    pub async fn partner_with_inbox(&self, org: OrgId, inbox: &str) -> Partner {
        let (client, errors) = connect_seed(&self.server.url(), self.seed_of(org), Some(inbox)).await;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(1))
            .build(client.clone());
        Partner { client, js, errors }
    }

    /// A connection as one of the hub's own users, with its seed.
    pub async fn hub_user(&self, user: HubUser) -> Partner {
        let seed = &self
            .generated
            .services
            .iter()
            .find(|(u, _)| *u == user)
            .expect("generated hub user")
            .1
            .seed_file;
        let (client, errors) = connect_seed(&self.server.url(), seed, None).await;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(1))
            .build(client.clone());
        Partner { client, js, errors }
    }

    /// Messages of `org`'s feed, as the hub sees them.
    pub async fn feed_len(&self, org: OrgId) -> u64 {
        let mut stream = self.hub_js.get_stream(out_stream(org)).await.expect("stream");
        stream.info().await.expect("info").state.messages
    }
}

/// Connects with the seed in `seed_file`, forwarding server errors to the returned channel.
pub async fn connect_seed(
    url: &str,
    seed_file: &std::path::Path,
    inbox: Option<&str>,
) -> (Client, mpsc::UnboundedReceiver<String>) {
    let seed = std::fs::read_to_string(seed_file).expect("read seed");
    let (tx, rx) = mpsc::unbounded_channel();
    let mut options = ConnectOptions::new()
        .nkey(seed.trim().to_owned())
        .connection_timeout(PATIENCE)
        .request_timeout(Some(Duration::from_secs(1)))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let Event::ServerError(ServerError::Other(text)) = event {
                    let _ = tx.send(text);
                }
            }
        });
    if let Some(inbox) = inbox {
        options = options.custom_inbox_prefix(inbox);
    }
    let client = options.connect(url).await.expect("connect");
    (client, rx)
}
