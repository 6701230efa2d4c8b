//! A nats-server, an event store, a vault, and cases with planted marker values.

use async_nats::jetstream;
use std::sync::atomic::{AtomicU64, Ordering};
use wasl_domain::case::{Case, CaseCommand, CaseEvent, OpenCase};
use wasl_domain::client::{Age, ClientProfile, Language, Nationality, PopulationGroup, Sex, SurvivorCode};
use wasl_domain::geo::{Governorate, Location};
use wasl_domain::ids::{CaseId, EventId, OrgId, UserId, uuid_v7_from_parts};
use wasl_domain::pii::PersonalData;
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Context, Role};
use wasl_events::DomainEvent;
use wasl_store::{CommandMeta, EventStore, StoreConfig};
use wasl_testkit::NatsServer;
use wasl_vault::{LocalMasterKey, PiiField, Vault, VaultConfig};

static COUNTER: AtomicU64 = AtomicU64::new(1);

pub fn fresh<T: TryFrom<uuid::Uuid>>() -> T
where
    T::Error: std::fmt::Debug,
{
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut random = [0u8; 10];
    random[2..].copy_from_slice(&n.to_be_bytes());
    T::try_from(uuid_v7_from_parts(1_767_225_600_000 + n, random)).expect("a v7 uuid")
}

pub const T0: Timestamp = Timestamp::from_unix_millis(1_767_225_600_000);

pub struct World {
    pub server: NatsServer,
    pub store: EventStore,
    pub vault: Vault<LocalMasterKey>,
    pub js: jetstream::Context,
    pub org: OrgId,
    pub hub: OrgId,
    pub caseworker: UserId,
    pub supervisor: UserId,
}

pub fn master(id: &str) -> LocalMasterKey {
    LocalMasterKey::generate(id).expect("a master key")
}

impl World {
    pub async fn start() -> Self {
        let server = NatsServer::start().expect("nats-server");
        let client = async_nats::connect(server.url()).await.expect("connect");
        let js = jetstream::new(client.clone());
        let store = EventStore::open(client, StoreConfig::default()).await.expect("store");
        let vault = Vault::connect(&js, master("test-master-1"), &VaultConfig::default())
            .await
            .expect("vault");
        World {
            server,
            store,
            vault,
            js,
            org: fresh(),
            hub: fresh(),
            caseworker: fresh(),
            supervisor: fresh(),
        }
    }

    pub fn ctx(&self, role: Role, hours: i64) -> Context {
        let (user, org) = match role {
            Role::Supervisor => (self.supervisor, self.org),
            Role::Admin | Role::System => (self.supervisor, self.hub),
            _ => (self.caseworker, self.org),
        };
        Context {
            now: T0.plus_hours(hours),
            actor: Actor {
                user,
                org,
                roles: vec![role],
            },
        }
    }

    pub fn meta(&self, role: Role, hours: i64) -> CommandMeta {
        CommandMeta {
            command_id: fresh(),
            context: self.ctx(role, hours),
            traceparent: None,
        }
    }

    /// Opens a case whose name, phone and notes are the given markers, sealed for the event the
    /// store will write.
    pub async fn open_case(&self, name: &str, phone: &str, notes: &str) -> CaseId {
        let case: CaseId = fresh();
        let meta = self.meta(Role::Caseworker, 1);
        let event = wasl_store::event_id(meta.command_id, meta.context.now, 0);
        let seal = |field, text: &str| {
            let text = text.to_owned();
            async move { self.vault.seal(case, event, field, &text).await.expect("sealed") }
        };
        let personal = PersonalData {
            name: Some(seal(PiiField::NAME, name).await),
            phone: Some(seal(PiiField::PHONE, phone).await),
            address: None,
            notes: Some(seal(PiiField::NOTES, notes).await),
        };
        let profile = ClientProfile {
            survivor_code: SurvivorCode::parse("TEST-0042").expect("code"),
            sex: Sex::Female,
            age: Age::years(27).expect("age"),
            population_group: PopulationGroup::Idp,
            nationality: Nationality::parse("IQ").expect("nationality"),
            location: Location::governorate_only(Governorate::Duhok),
            language: Language::parse("kmr").expect("language"),
            vulnerabilities: vec![],
        };
        let open = CaseCommand::Open(OpenCase {
            case_id: case,
            caseworker: None,
            profile,
            personal,
        });
        self.store.execute::<Case>(case, &open, &meta).await.expect("opened");
        case
    }

    /// Every sealed value of a case in the log, with the event and field it belongs to: what a
    /// rebuild of any read model would see.
    pub async fn sealed_values(&self, case: CaseId) -> Vec<(EventId, PiiField, wasl_domain::pii::EncryptedPii)> {
        let mut out = Vec::new();
        let subject = format!("wasl.evt.case.{case}");
        let recorded = wasl_store::load::read_subject(
            self.store.stream(),
            wasl_store::load::LoadStrategy::DirectGet,
            &subject,
            1,
        )
        .await
        .expect("read the case");
        for r in recorded {
            let DomainEvent::Case(_, event) = r.event.event else {
                continue;
            };
            let personal = match event {
                CaseEvent::Opened { personal, .. } | CaseEvent::PersonalDataUpdated { personal } => personal,
                _ => continue,
            };
            for (field, value) in [
                (PiiField::NAME, personal.name),
                (PiiField::PHONE, personal.phone),
                (PiiField::ADDRESS, personal.address),
                (PiiField::NOTES, personal.notes),
            ] {
                if let Some(value) = value {
                    out.push((r.event.meta.event_id, field, value));
                }
            }
        }
        out
    }
}

/// Every byte of every file below `dir`.
pub fn files_below(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
