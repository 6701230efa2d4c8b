//! Publishing a history into a real nats-server, as the store would have stored it.

use std::collections::BTreeMap;
use std::time::Duration;
use wasl_domain::Aggregate;
use wasl_domain::ids::CommandId;
use wasl_domain::referral::{Referral, ReferralEvent, ReferralStatus};
use wasl_domain::{case::Case, directory::Organisation};
use wasl_events::{DomainEvent, StoredEvent};
use wasl_store::{EventStore, StoreConfig};
use wasl_synth::{Generator, HistoryConfig, PublishError, publish};
use wasl_testkit::NatsServer;

async fn connect(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .expect("connect to the test nats-server")
}

async fn fresh_stream(url: &str) -> (async_nats::Client, async_nats::jetstream::Context, StoreConfig) {
    let client = connect(url).await;
    let js = async_nats::jetstream::new(client.clone());
    let config = StoreConfig::default();
    wasl_store::provision::ensure_stream(&js, &config)
        .await
        .expect("the event stream");
    (client, js, config)
}

#[tokio::test]
async fn a_published_history_loads_through_the_store_with_the_right_versions() {
    let server = NatsServer::start().expect("nats-server");
    let (client, js, config) = fresh_stream(&server.url()).await;
    let mut generator = Generator::new(HistoryConfig::new(21, 400));
    let events: Vec<StoredEvent> = generator.by_ref().collect();

    let last = publish(&js, &config, events.clone()).await.expect("published");
    assert_eq!(last, events.len() as u64);
    let mut stream = js.get_stream(&config.stream).await.expect("stream");
    let info = stream.info().await.expect("info");
    assert_eq!(info.state.last_sequence, events.len() as u64);
    assert_eq!(info.state.messages, events.len() as u64);

    // The first message is exactly what the store's append writes for a new aggregate.
    let first = stream.get_raw_message(1).await.expect("first message");
    let header = |name: &str| first.headers.get(name).map(|v| v.as_str().to_owned());
    assert_eq!(
        header(wasl_store::append::MSG_ID),
        Some(wasl_store::append::message_id(&events[0], 0))
    );
    assert_eq!(
        header(wasl_events::headers::TRACEPARENT),
        Some(wasl_store::append::traceparent(None, &events[0]))
    );
    assert_eq!(
        header(wasl_store::append::EXPECTED_LAST_SUBJECT_SEQUENCE).as_deref(),
        Some("0")
    );
    assert_eq!(first.subject.as_str(), events[0].event.subject());
    assert_eq!(first.payload.as_ref(), wasl_events::encode(&events[0]).as_slice());

    let mut versions: BTreeMap<uuid::Uuid, u64> = BTreeMap::new();
    for e in &events {
        *versions.entry(e.event.aggregate_id()).or_default() += 1;
    }
    let store = EventStore::open(client, config).await.expect("store");
    for (id, expected) in generator.referrals().iter().step_by(37) {
        let loaded = store.load::<Referral>(*id).await.expect("a referral");
        assert_eq!(&loaded.state, expected);
        assert_eq!(loaded.version, versions[&id.as_uuid()]);
    }
    for (id, expected) in generator.cases().iter().step_by(97) {
        let loaded = store.load::<Case>(*id).await.expect("a case");
        assert_eq!(&loaded.state, expected);
        assert_eq!(loaded.version, versions[&id.as_uuid()]);
    }
    for (id, expected) in generator.organisations().iter().take(3) {
        let loaded = store.load::<Organisation>(*id).await.expect("an organisation");
        assert_eq!(&loaded.state, expected);
        assert_eq!(loaded.version, versions[&id.as_uuid()]);
    }
}

#[tokio::test]
async fn publishing_the_same_history_twice_is_refused_not_doubled() {
    let server = NatsServer::start().expect("nats-server");
    let (_client, js, config) = fresh_stream(&server.url()).await;
    let events: Vec<StoredEvent> = Generator::new(HistoryConfig::new(22, 30)).collect();
    // The publishing future is Send: it runs on any worker thread.
    let (js2, config2, events2) = (js.clone(), config.clone(), events.clone());
    tokio::spawn(async move { publish(&js2, &config2, events2).await })
        .await
        .expect("the task")
        .expect("published");
    let err = publish(&js, &config, events.clone()).await.expect_err("refused");
    assert!(
        matches!(
            err,
            PublishError::Duplicate { index: 0 } | PublishError::Refused { index: 0, .. }
        ),
        "{err:?}"
    );
    let mut stream = js.get_stream(&config.stream).await.expect("stream");
    let info = stream.info().await.expect("info");
    assert_eq!(info.state.messages, events.len() as u64);
}

#[tokio::test]
async fn a_command_of_several_events_goes_as_one_atomic_batch() {
    let server = NatsServer::start().expect("nats-server");
    let (client, js, config) = fresh_stream(&server.url()).await;
    let events: Vec<StoredEvent> = Generator::new(HistoryConfig::new(23, 50)).collect();
    // Two events of one referral, rewritten as if one command had decided both.
    let mut of_one: Vec<StoredEvent> = Vec::new();
    for e in &events {
        if let DomainEvent::Referral(id, _) = &e.event
            && of_one.first().is_none_or(|f| f.event.aggregate_id() == id.as_uuid())
        {
            of_one.push(e.clone());
            if of_one.len() == 2 {
                break;
            }
        }
    }
    let command: CommandId = of_one[0].meta.command_id;
    let now = of_one[0].meta.occurred_at;
    for (index, e) in of_one.iter_mut().enumerate() {
        e.meta.command_id = command;
        e.meta.occurred_at = now;
        e.meta.event_id = wasl_store::event_id(command, now, index);
    }
    let single = events
        .iter()
        .find(|e| matches!(e.event, DomainEvent::Organisation(..)))
        .cloned()
        .expect("an organisation event");
    let history = vec![single, of_one[0].clone(), of_one[1].clone()];

    assert_eq!(publish(&js, &config, history).await.expect("published"), 3);
    let store = EventStore::open(client, config).await.expect("store");
    let DomainEvent::Referral(id, _) = of_one[0].event else {
        unreachable!("picked a referral")
    };
    let loaded = store.load::<Referral>(id).await.expect("the referral");
    assert_eq!(loaded.version, 2);
    let inner: Vec<ReferralEvent> = of_one
        .iter()
        .filter_map(|e| match &e.event {
            DomainEvent::Referral(_, event) => Some(event.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(loaded.state, Referral::replay(&inner));
    assert_ne!(loaded.state.status(), Some(ReferralStatus::Requested));
    let outcome = loaded.outcome_of(command).expect("the command is recorded");
    assert_eq!((outcome.version, outcome.position), (2, 3));
}
