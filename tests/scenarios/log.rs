//! An in-memory, append-only log of encoded events, one stream per aggregate subject. Loading an
//! aggregate decodes its stored bytes; nothing is kept in decoded form.

use std::collections::BTreeMap;
use wasl_domain::case::Case;
use wasl_domain::directory::Organisation;
use wasl_domain::ids::{self, CommandId, EventId};
use wasl_domain::referral::Referral;
use wasl_domain::{Aggregate, Context, DomainError};
use wasl_events::headers::DEFAULT_SOURCE;
use wasl_events::{DomainEvent, EventMeta, StoredEvent};

/// One stored message: headers and body, as JetStream would hold them.
pub struct Message {
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

#[derive(Default)]
pub struct Log {
    subjects: BTreeMap<String, Vec<Message>>,
    next: u8,
}

/// Wraps a domain event of aggregate `A` into the stored form.
pub trait Stored: Aggregate {
    fn wrap(id: uuid::Uuid, event: Self::Event) -> DomainEvent;
    fn unwrap(event: DomainEvent) -> Option<Self::Event>;
}

macro_rules! stored {
    ($aggregate:ty, $variant:ident) => {
        impl Stored for $aggregate {
            fn wrap(id: uuid::Uuid, event: Self::Event) -> DomainEvent {
                DomainEvent::$variant(id.try_into().expect("a v7 id"), event)
            }
            fn unwrap(event: DomainEvent) -> Option<Self::Event> {
                match event {
                    DomainEvent::$variant(_, e) => Some(e),
                    _ => None,
                }
            }
        }
    };
}

stored!(Case, Case);
stored!(Referral, Referral);
stored!(Organisation, Organisation);

fn subject<A: Aggregate>(id: uuid::Uuid) -> String {
    format!("wasl.evt.{}.{}", A::KIND.subject_token(), id.hyphenated())
}

impl Log {
    /// Decodes the aggregate's stored events (checking their headers) and replays them.
    pub fn load<A: Stored>(&self, id: uuid::Uuid) -> A {
        let events: Vec<A::Event> = self
            .subjects
            .get(&subject::<A>(id))
            .map(|messages| {
                messages
                    .iter()
                    .map(|m| A::unwrap(read(m).event).expect("event of the subject's kind"))
                    .collect()
            })
            .unwrap_or_default();
        A::replay(&events)
    }

    /// Loads, decides and appends; the stored events are returned as read back from the log.
    pub fn execute<A: Stored>(
        &mut self,
        id: uuid::Uuid,
        command: &A::Command,
        ctx: &Context,
    ) -> Result<Vec<StoredEvent>, DomainError> {
        let state: A = self.load(id);
        let events = state.decide(command, ctx)?;
        self.next += 1;
        let command_id: CommandId = fresh_id(self.next, 0);
        let mut written = Vec::new();
        for (index, event) in events.into_iter().enumerate() {
            let stored = StoredEvent {
                meta: EventMeta {
                    event_id: fresh_id::<EventId>(self.next, index as u8 + 1),
                    command_id,
                    occurred_at: ctx.now,
                    actor: ctx.actor.clone(),
                },
                event: A::wrap(id, event),
            };
            let message = Message {
                headers: wasl_events::build_headers(&stored, DEFAULT_SOURCE).expect("headers"),
                body: wasl_events::encode(&stored),
            };
            assert_eq!(stored.event.subject(), subject::<A>(id));
            let back = read(&message);
            assert_eq!(back, stored, "an event changed on its way through the log");
            written.push(back);
            self.subjects.entry(subject::<A>(id)).or_default().push(message);
        }
        Ok(written)
    }

    /// Every stored message, in subject order.
    pub fn messages(&self) -> impl Iterator<Item = (&str, &Message)> {
        self.subjects
            .iter()
            .flat_map(|(s, ms)| ms.iter().map(move |m| (s.as_str(), m)))
    }
}

/// Reads a stored message back the way every consumer will: headers first, then the body in the
/// schema version they name.
pub fn read(message: &Message) -> StoredEvent {
    let headers =
        wasl_events::parse_headers(message.headers.iter().map(|(k, v)| (*k, v.as_str()))).expect("headers parse");
    let event = wasl_events::decode_versioned(headers.schema_version, &message.body).expect("body decodes");
    assert_eq!(headers.event_type.as_str(), event.event.event_type());
    event
}

fn fresh_id<T: TryFrom<uuid::Uuid>>(n: u8, index: u8) -> T
where
    T::Error: std::fmt::Debug,
{
    let mut random = [0u8; 10];
    random[0] = n;
    random[1] = index;
    T::try_from(ids::uuid_v7_from_parts(1_767_225_600_000 + u64::from(n), random)).expect("v7")
}
