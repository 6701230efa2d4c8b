//! A nats-server, an event store, a vault, and cases with planted marker values.

use async_nats::jetstream;
use wasl_domain::case::{Case, CaseCommand, CaseEvent, OpenCase};
use wasl_domain::ids::{CaseId, EventId, OrgId, UserId};
use wasl_domain::pii::PersonalData;
use wasl_domain::testing::{at, ctx, profile};
use wasl_domain::{Context, Role};
use wasl_events::DomainEvent;
use wasl_store::testing::meta;
use wasl_store::{CommandMeta, EventStore, StoreConfig};
use wasl_testkit::NatsServer;
use wasl_vault::{LocalMasterKey, PiiField, Vault, VaultConfig};

pub use wasl_domain::testing::{T0, fresh};

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

    /// The world's caseworker, supervisor or hub staff acting as `role`, `hours` after [`T0`].
    pub fn ctx(&self, role: Role, hours: i64) -> Context {
        let (user, org) = match role {
            Role::Supervisor => (self.supervisor, self.org),
            Role::Admin | Role::System => (self.supervisor, self.hub),
            _ => (self.caseworker, self.org),
        };
        at(ctx(user, org, role), hours)
    }

    /// A command's metadata for [`World::ctx`].
    pub fn meta(&self, role: Role, hours: i64) -> CommandMeta {
        meta(self.ctx(role, hours))
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
        let open = CaseCommand::Open(OpenCase {
            case_id: case,
            caseworker: None,
            profile: profile("TEST-0042"),
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
