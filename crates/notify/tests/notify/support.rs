//! A synthetic network on a fresh nats-server (obviously fake organisations and people, with
//! local accounts made by the API's own account store), an SMTP sink, and a notification
//! service running against both.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wasl_api::auth::accounts::Accounts;
use wasl_domain::case::{Case, CaseCommand, ConsentScope, OpenCase, Scope};
use wasl_domain::catalogue::{Decline, DeclineCode, Priority, Reason, ServiceCategory};
use wasl_domain::client::{Age, ClientProfile, Language, Nationality, PopulationGroup, Sex, SurvivorCode};
use wasl_domain::directory::{DisplayName, Eligibility, OrgKind, Organisation, OrganisationCommand, ServiceSpec};
use wasl_domain::geo::{Governorate, Location};
use wasl_domain::ids::{CaseId, CommandId, ConsentId, OrgId, ReferralId, ServiceId, UserId};
use wasl_domain::pii::PersonalData;
use wasl_domain::referral::{OverdueKind, Referral, ReferralCommand, RequestReferral};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Context, Role};
use wasl_notify::{NotifyConfig, NotifyService, SmtpConfig, SmtpNotifier};
use wasl_store::{CommandMeta, EventStore, StoreConfig};
use wasl_testkit::NatsServer;
use wasl_testkit::db::TestDb;
use wasl_testkit::smtp::{ReceivedMail, SmtpSink};
use wasl_vault::{LocalMasterKey, PiiField, Vault, VaultConfig};

/// How long anything may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(60);
/// Where links point.
pub const BASE_URL: &str = "https://wasl.test.example.org";
/// The prefix of every planted personal marker: no mail byte may contain it.
pub const MARKER: &str = "MRK-";

const MASTER_KEY: &str = "0202020202020202020202020202020202020202020202020202020202020202";

pub fn fresh<T: TryFrom<uuid::Uuid>>() -> T
where
    T::Error: std::fmt::Debug,
{
    T::try_from(uuid::Uuid::now_v7()).expect("a UUIDv7")
}

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
        self.store.stream().get_info().await.expect("info").state.last_sequence
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
            self.set_mail(
                &Actor {
                    user,
                    org,
                    roles: vec![role],
                },
                name,
                enabled,
            )
            .await;
        }
        user
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

pub async fn connect(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .expect("connect")
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

/// A referring organisation with a case (with planted personal markers) and its consent, two
/// providers offering health and legal aid, and a coordinators' organisation.
pub struct Network {
    pub referring: OrgId,
    pub providers: [OrgId; 2],
    pub hub: OrgId,
    pub services: Vec<(OrgId, ServiceCategory, ServiceId)>,
    pub case: CaseId,
    pub caseworker: UserId,
    pub focal_point: UserId,
    pub system: Actor,
}

impl Network {
    pub async fn set_up(
        world: &World,
        caseworker: UserId,
        referring: OrgId,
        focal_point: UserId,
        providers: [OrgId; 2],
    ) -> Self {
        let hub: OrgId = fresh();
        let coordinator = Actor {
            user: fresh(),
            org: hub,
            roles: vec![Role::Coordinator],
        };
        let mut services = Vec::new();
        for (org, name) in [
            (referring, "Synthetic Referrer (test)"),
            (providers[0], "Synthetic Provider One (test)"),
            (providers[1], "Synthetic Provider Two (test)"),
        ] {
            let register = OrganisationCommand::Register {
                org_id: org,
                name: DisplayName::parse(name).expect("name"),
                kind: OrgKind::NationalNgo,
            };
            world
                .store
                .execute::<Organisation>(org, &register, &meta(&coordinator))
                .await
                .expect("register");
        }
        for provider in providers {
            for category in [ServiceCategory::Health, ServiceCategory::Legal] {
                let service: ServiceId = fresh();
                let spec = ServiceSpec {
                    name: DisplayName::parse("A service (test)").expect("name"),
                    category,
                    areas: vec![Location::governorate_only(Governorate::Ninawa)],
                    languages: vec![Language::parse("ar").expect("language")],
                    eligibility: Eligibility::everyone(),
                };
                world
                    .store
                    .execute::<Organisation>(
                        provider,
                        &OrganisationCommand::AddService {
                            service_id: service,
                            spec,
                        },
                        &meta(&coordinator),
                    )
                    .await
                    .expect("add service");
                services.push((provider, category, service));
            }
        }
        let net = Self {
            referring,
            providers,
            hub,
            services,
            case: fresh(),
            caseworker,
            focal_point,
            system: Actor {
                user: fresh(),
                org: fresh(),
                roles: vec![Role::System],
            },
        };
        net.open_case(world).await;
        net
    }

    fn caseworker_actor(&self) -> Actor {
        Actor {
            user: self.caseworker,
            org: self.referring,
            roles: vec![Role::Caseworker],
        }
    }

    /// Opens the case: survivor code and every personal field carry planted markers.
    async fn open_case(&self, world: &World) {
        let meta = meta(&self.caseworker_actor());
        let event = wasl_store::event_id(meta.command_id, meta.context.now, 0);
        let seal = |field, text: &'static str| world.vault.seal(self.case, event, field, text);
        let personal = PersonalData {
            name: Some(seal(PiiField::NAME, "MRK-NAME Test Person Delta").await.expect("seal")),
            phone: Some(seal(PiiField::PHONE, "MRK-PHONE 0000000").await.expect("seal")),
            address: Some(
                seal(PiiField::ADDRESS, "MRK-ADDRESS Test Street 1")
                    .await
                    .expect("seal"),
            ),
            notes: Some(seal(PiiField::NOTES, "MRK-CASE-NOTES test").await.expect("seal")),
        };
        let profile = ClientProfile {
            survivor_code: SurvivorCode::parse("MRK-4711").expect("code"),
            sex: Sex::Female,
            age: Age::years(30).expect("age"),
            population_group: PopulationGroup::Returnee,
            nationality: Nationality::parse("IQ").expect("nationality"),
            location: Location::governorate_only(Governorate::Ninawa),
            language: Language::parse("ar").expect("language"),
            vulnerabilities: vec![],
        };
        let open = CaseCommand::Open(OpenCase {
            case_id: self.case,
            caseworker: None,
            profile,
            personal,
        });
        world
            .store
            .execute::<Case>(self.case, &open, &meta)
            .await
            .expect("open case");
        let consent: ConsentId = fresh();
        let give = CaseCommand::GiveConsent {
            consent_id: consent,
            scope: ConsentScope {
                categories: Scope::Any,
                organisations: Scope::Any,
                expires_at: None,
            },
        };
        world
            .store
            .execute::<Case>(self.case, &give, &self.caseworker_meta())
            .await
            .expect("consent");
    }

    pub fn caseworker_meta(&self) -> CommandMeta {
        meta(&self.caseworker_actor())
    }

    /// The caseworker refers the case to `provider` for `category`, with notes that carry a
    /// planted marker.
    pub async fn refer(
        &self,
        world: &World,
        provider: usize,
        category: ServiceCategory,
        priority: Priority,
    ) -> ReferralId {
        let referral = fresh();
        let org = self.providers[provider];
        let service = self
            .services
            .iter()
            .find(|(o, c, _)| *o == org && *c == category)
            .expect("a service")
            .2;
        let meta = self.caseworker_meta();
        let event = wasl_store::event_id(meta.command_id, meta.context.now, 0);
        let notes = world
            .vault
            .seal(
                self.case,
                event,
                PiiField::REFERRAL_NOTES,
                "MRK-REFERRAL-NOTES call after 5",
            )
            .await
            .expect("seal");
        let case = world.store.load::<Case>(self.case).await.expect("load case").state;
        let provider_state = world.store.load::<Organisation>(org).await.expect("load org").state;
        let request = ReferralCommand::Request(Box::new(RequestReferral {
            referral_id: referral,
            case,
            provider: provider_state,
            service_id: service,
            priority,
            redirected_from: None,
            consent_override: None,
            notes: Some(notes),
        }));
        world
            .store
            .execute::<Referral>(referral, &request, &meta)
            .await
            .expect("refer");
        referral
    }

    /// A focal point of `provider` acts on the referral.
    pub async fn act(&self, world: &World, referral: ReferralId, provider: usize, command: ReferralCommand) {
        let actor = Actor {
            user: self.focal_point,
            org: self.providers[provider],
            roles: vec![Role::FocalPoint],
        };
        world
            .store
            .execute::<Referral>(referral, &command, &meta(&actor))
            .await
            .expect("the provider's command is carried out");
    }

    /// Declines with `other` and a free-text reason carrying a planted marker.
    pub async fn decline(&self, world: &World, referral: ReferralId, provider: usize) {
        let actor = Actor {
            user: self.focal_point,
            org: self.providers[provider],
            roles: vec![Role::FocalPoint],
        };
        let meta = meta(&actor);
        let event = wasl_store::event_id(meta.command_id, meta.context.now, 0);
        let text = world
            .vault
            .seal(
                self.case,
                event,
                PiiField::REASON_TEXT,
                "MRK-DECLINE-TEXT the client said",
            )
            .await
            .expect("seal");
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
    pub async fn overdue_and_escalate(&self, world: &World, referral: ReferralId) {
        let overdue = ReferralCommand::MarkResponseOverdue {
            kind: OverdueKind::Acknowledgement,
            due_at: now(),
        };
        world
            .store
            .execute::<Referral>(referral, &overdue, &meta(&self.system))
            .await
            .expect("overdue");
        let escalate = ReferralCommand::Escalate {
            kind: OverdueKind::Acknowledgement,
        };
        world
            .store
            .execute::<Referral>(referral, &escalate, &meta(&self.system))
            .await
            .expect("escalate");
    }
}

pub fn meta(actor: &Actor) -> CommandMeta {
    let command_id: CommandId = fresh();
    CommandMeta {
        command_id,
        context: Context {
            now: now(),
            actor: actor.clone(),
        },
        traceparent: None,
    }
}
