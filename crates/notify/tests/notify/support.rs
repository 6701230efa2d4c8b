//! The shared synthetic network (`wasl_synth::network`) on a fresh nats-server, with local
//! accounts made by the API's own account store and personal markers sealed by a real vault; an
//! SMTP sink, and a notification service running against both.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wasl_api::auth::accounts::Accounts;
use wasl_domain::catalogue::{Decline, DeclineCode, Priority, Reason, ServiceCategory};
use wasl_domain::ids::{CaseId, OrgId, ReferralId, UserId};
use wasl_domain::pii::{EncryptedPii, PersonalData};
use wasl_domain::referral::{OverdueKind, Referral, ReferralCommand};
use wasl_domain::testing::{actor, profile};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Role};
use wasl_notify::{NotifyConfig, NotifyService, SmtpConfig, SmtpNotifier};
use wasl_store::{CommandMeta, EventStore, StoreConfig};
use wasl_synth::network::Network;
use wasl_testkit::NatsServer;
use wasl_testkit::db::TestDb;
use wasl_testkit::smtp::{ReceivedMail, SmtpSink};
use wasl_vault::{LocalMasterKey, PiiField, Vault, VaultConfig};

pub use wasl_domain::testing::fresh;
pub use wasl_store::testing::{connect, last_sequence, meta};

/// How long anything may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(60);
/// Where links point.
pub const BASE_URL: &str = "https://wasl.test.example.org";
/// The prefix of every planted personal marker: no mail byte may contain it.
pub const MARKER: &str = "MRK-";

const MASTER_KEY: &str = "0202020202020202020202020202020202020202020202020202020202020202";

/// The wall clock: mail is about what happens now.
pub fn now() -> Timestamp {
    Timestamp::from_unix_millis(wasl_api::auth::accounts::now_millis())
}

/// A nats-server with the event log, the accounts log and the key vault; a database.
pub struct World {
    pub server: NatsServer,
    pub store: Arc<EventStore>,
    pub accounts: Accounts,
    pub vault: Vault<LocalMasterKey>,
    pub db: TestDb,
}

impl World {
    pub async fn start(db: TestDb) -> Self {
        let server = NatsServer::start().expect("start a nats-server (NATS_SERVER_BIN)");
        let client = connect(&server.url()).await;
        let store = Arc::new(
            EventStore::open(client.clone(), StoreConfig::default())
                .await
                .expect("open the store"),
        );
        let js = async_nats::jetstream::new(client);
        let accounts = Accounts::open(js.clone(), 1).await.expect("the accounts log");
        let master = LocalMasterKey::from_hex("test-1", MASTER_KEY).expect("a master key");
        let vault = Vault::connect(&js, master, &VaultConfig::default())
            .await
            .expect("the vault");
        Self {
            server,
            store,
            accounts,
            vault,
            db,
        }
    }

    /// A notification service on this world (its own NATS connection) mailing `sink`.
    pub async fn notify(&self, sink: &SmtpSink) -> Running {
        let client = connect(&self.server.url()).await;
        let store = Arc::new(
            EventStore::open_existing(client, StoreConfig::default())
                .await
                .expect("the store")
                .expect("an event log"),
        );
        let notifier = SmtpNotifier::new(&SmtpConfig {
            url: sink.url().parse().expect("the sink's URL"),
            from: "Wasl Test <wasl-test@example.org>".to_owned(),
            timeout: Duration::from_secs(10),
        })
        .expect("an SMTP notifier");
        let config = NotifyConfig {
            base_url: BASE_URL.to_owned(),
            check_interval: Duration::from_millis(200),
            retry_delay: Duration::from_millis(50),
            first_retry: Duration::from_millis(50),
            max_retry: Duration::from_millis(400),
            send_timeout: Duration::from_secs(10),
            lease: Duration::from_secs(30),
            ..NotifyConfig::default()
        };
        let service = NotifyService::open(&self.db.url, store, Arc::new(notifier), config)
            .await
            .expect("open the notification service");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let service = service.clone();
            async move {
                service
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
            }
        });
        Running {
            service,
            task,
            stop: Some(stop),
        }
    }

    pub async fn log_end(&self) -> u64 {
        last_sequence(&self.store).await
    }

    /// A local account, with its address set (`Some`) and mail on or off.
    pub async fn person(&self, org: OrgId, role: Role, name: &str, mail: Option<bool>) -> UserId {
        let user = self
            .accounts
            .create_user(
                None,
                org,
                &format!("test-{name}-{}", uuid::Uuid::new_v4().simple()),
                &[role],
                "test password 0001",
            )
            .await
            .expect("a local account")
            .id;
        if let Some(enabled) = mail {
            self.set_mail(&actor(user, org, role), name, enabled).await;
        }
        user
    }

    /// `text` sealed under `case`'s key for the first event of the command `meta` describes, as
    /// the API seals personal data before the command reaches the domain.
    pub async fn seal_for(&self, case: CaseId, meta: &CommandMeta, field: PiiField, text: &str) -> EncryptedPii {
        let event = wasl_store::event_id(meta.command_id, meta.context.now, 0);
        self.vault.seal(case, event, field, text).await.expect("seal")
    }

    /// Sets `actor`'s address to `<name>@example.org` (a person's own change, as the API makes it).
    pub async fn set_mail(&self, actor: &Actor, name: &str, enabled: bool) {
        self.accounts
            .set_notifications(actor, Some(address(name)), enabled)
            .await
            .expect("set the notification address");
    }
}

/// The synthetic address of the person called `name`.
pub fn address(name: &str) -> String {
    format!("test-{name}@example.org")
}

/// A notification service running in a task.
pub struct Running {
    pub service: NotifyService,
    task: tokio::task::JoinHandle<Result<(), wasl_notify::NotifyError>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    /// Waits until the service has read the log as it is and has nothing left to send now.
    pub async fn quiet(&self, world: &World) {
        let began = Instant::now();
        loop {
            let end = world.log_end().await;
            let counts = self.service.mail().await.expect("mail counts");
            if self.service.metrics().position.load(Ordering::Relaxed) >= end
                && counts.pending == 0
                && world.log_end().await == end
            {
                return;
            }
            assert!(
                began.elapsed() < WAIT,
                "the notification service did not settle: {counts:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("no panic").expect("a clean stop");
    }
}

/// Who got what: (address, event kind, referral id) → how many mails.
pub fn tally(mail: &[ReceivedMail]) -> BTreeMap<(String, String, String), usize> {
    let mut out = BTreeMap::new();
    for m in mail {
        assert_eq!(m.to.len(), 1, "one recipient per message");
        let text = m.text();
        let kind = field(&text, "What happened:")
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        let link = field(&text, "Referral:");
        let referral = link
            .strip_prefix(&format!("{BASE_URL}/v1/referrals/"))
            .unwrap_or_else(|| panic!("a link under the base URL, not {link:?}"))
            .to_owned();
        *out.entry((m.to[0].clone(), kind, referral)).or_insert(0) += 1;
    }
    out
}

fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("a {label:?} line in the mail"))
        .trim()
        .to_owned()
}

/// Waits until the sink holds at least `count` messages.
pub fn wait_mail(sink: &SmtpSink, count: usize) -> Vec<ReceivedMail> {
    let mail = sink.wait_for(count, WAIT);
    assert!(mail.len() >= count, "{} of {count} mails arrived", mail.len());
    mail
}

/// The shared network with these people and organisations: two providers offering health and
/// legal aid, commands at the wall clock, and a case whose survivor code and every personal
/// field carry planted markers, sealed by the world's vault for the opening event.
pub async fn network(
    world: &World,
    caseworker: UserId,
    referring: OrgId,
    focal_point: UserId,
    providers: [OrgId; 2],
) -> Network {
    let net = Network::builder()
        .referring(referring)
        .providers(providers)
        .caseworker(caseworker)
        .focal_point(focal_point)
        .categories(&[ServiceCategory::Health, ServiceCategory::Legal])
        .profile(profile("MRK-4711"))
        .clock(now)
        .without_case()
        .build(&world.store)
        .await;
    let meta = meta(net.caseworker());
    let seal = |field, text| world.seal_for(net.case, &meta, field, text);
    let personal = PersonalData {
        name: Some(seal(PiiField::NAME, "MRK-NAME Test Person Delta").await),
        phone: Some(seal(PiiField::PHONE, "MRK-PHONE 0000000").await),
        address: Some(seal(PiiField::ADDRESS, "MRK-ADDRESS Test Street 1").await),
        notes: Some(seal(PiiField::NOTES, "MRK-CASE-NOTES test").await),
    };
    net.open_case_as(&world.store, net.case, personal, &meta).await;
    net.give_consent(&world.store, net.case, net.consent).await;
    net
}

/// The caseworker refers the case to `provider` for `category`, with notes that carry a
/// planted marker.
pub async fn refer(
    world: &World,
    net: &Network,
    provider: usize,
    category: ServiceCategory,
    priority: Priority,
) -> ReferralId {
    let meta = meta(net.caseworker());
    let notes = world
        .seal_for(
            net.case,
            &meta,
            PiiField::REFERRAL_NOTES,
            "MRK-REFERRAL-NOTES call after 5",
        )
        .await;
    let ask = wasl_synth::network::Ask {
        notes: Some(notes),
        ..net.ask_of(provider, category, priority)
    };
    net.refer_as(&world.store, &ask, &meta).await
}

/// A focal point of `provider` declines with `other` and a free-text reason carrying a planted
/// marker.
pub async fn decline(world: &World, net: &Network, referral: ReferralId, provider: usize) {
    let meta = meta(net.focal_point_of(provider));
    let text = world
        .seal_for(
            net.case,
            &meta,
            PiiField::REASON_TEXT,
            "MRK-DECLINE-TEXT the client said",
        )
        .await;
    let reject = ReferralCommand::Reject(Decline {
        reason: Reason {
            code: DeclineCode::Other,
            text: Some(text),
        },
        suggested_org: None,
    });
    world
        .store
        .execute::<Referral>(referral, &reject, &meta)
        .await
        .expect("decline");
}

/// What the follow-up service does, as Wasl's system identity: overdue, then escalation.
pub async fn overdue_and_escalate(world: &World, net: &Network, referral: ReferralId) {
    let (user, org) = (fresh(), fresh());
    let system = || meta(net.context(user, org, Role::System));
    let overdue = ReferralCommand::MarkResponseOverdue {
        kind: OverdueKind::Acknowledgement,
        due_at: now(),
    };
    world
        .store
        .execute::<Referral>(referral, &overdue, &system())
        .await
        .expect("overdue");
    let escalate = ReferralCommand::Escalate {
        kind: OverdueKind::Acknowledgement,
    };
    world
        .store
        .execute::<Referral>(referral, &escalate, &system())
        .await
        .expect("escalate");
}
