//! A message on the event subjects that is not a readable event is reported with its sequence:
//! never skipped, never a panic.

use crate::support::*;
use async_nats::jetstream;
use futures_util::StreamExt;
use std::time::Duration;
use wasl_domain::ids::ReferralId;
use wasl_domain::referral::{Referral, ReferralCommand};
use wasl_store::{CommandError, StoreConfig, StoreError};
use wasl_testkit::NatsServer;

#[tokio::test]
async fn an_undecodable_message_is_an_error_naming_its_sequence_and_the_feed_goes_on() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&store).await;
    let bad: ReferralId = fresh();
    let js = jetstream::new(connect(&server.url()).await);
    let subject = format!("wasl.evt.referral.{bad}");
    let ack = js
        .publish(subject, "not an event".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let garbage_at = ack.sequence;
    let good = net.refer(&store).await;

    let mut feed = wasl_store::subscribe::subscribe(store.stream(), 1, None)
        .await
        .expect("subscribe");
    let mut saw_error = false;
    let mut saw_after = false;
    while !saw_after {
        let item = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("in time")
            .expect("more");
        match item {
            Err(StoreError::Undecodable { sequence, reason }) => {
                assert_eq!(sequence, garbage_at);
                assert!(reason.contains("header"), "{reason}");
                saw_error = true;
            }
            Err(other) => panic!("unexpected {other:?}"),
            Ok(recorded) => {
                if let wasl_events::DomainEvent::Referral(id, _) = recorded.event.event {
                    saw_after |= id == good;
                }
            }
        }
    }
    assert!(saw_error, "the garbage message must be reported");

    match store.load::<Referral>(bad).await {
        Err(StoreError::Undecodable { sequence, .. }) => assert_eq!(sequence, garbage_at),
        other => panic!(
            "loading the aggregate must fail naming the sequence, got {:?}",
            other.map(|l| l.version)
        ),
    }
    let refused = store
        .execute::<Referral>(bad, &ReferralCommand::Receive, &meta(net.focal_point()))
        .await;
    assert!(matches!(
        refused,
        Err(CommandError::Store(StoreError::Undecodable { .. }))
    ));
}

#[tokio::test]
async fn a_message_with_event_headers_but_a_broken_body_is_reported_too() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&store).await;
    let referral = net.refer(&store).await;
    let original = store
        .stream()
        .direct_get(store.load::<Referral>(referral).await.expect("load").last_sequence)
        .await
        .expect("get");
    let mut headers = async_nats::HeaderMap::new();
    for (name, values) in original.headers.iter() {
        let name: &str = name.as_ref();
        if name.starts_with("ce-") || name.starts_with("wasl-") || name == "content-type" {
            for value in values {
                headers.insert(name, value.as_str());
            }
        }
    }
    let js = jetstream::new(connect(&server.url()).await);
    let ack = js
        .publish_with_headers(original.subject.to_string(), headers, vec![0xff, 0x01, 0x02].into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    match store.load::<Referral>(referral).await {
        Err(StoreError::Undecodable { sequence, .. }) => assert_eq!(sequence, ack.sequence),
        other => panic!("expected an undecodable event, got {:?}", other.map(|l| l.version)),
    }
}

fn skip(sequence: u64, subject: &str) -> wasl_store::skips::Skip {
    wasl_store::skips::Skip {
        sequence,
        subject: subject.to_owned(),
        error: "not a wasl event".to_owned(),
        reason: "test: stray bytes from a broken tool".to_owned(),
        by: "test.operator".to_owned(),
        skipped_at: "2026-12-07T00:00:00.000Z".to_owned(),
    }
}

#[tokio::test]
async fn poison_of_every_kind_refuses_commands_on_its_aggregate_until_skipped_then_commands_go_on() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&store).await;
    let referral = net.refer(&store).await;
    let subject = format!("wasl.evt.referral.{referral}");
    let other = net.refer(&store).await;
    for kind in wasl_store::testing::Poison::ALL {
        let at = kind.publish(store.client(), &subject).await;
        // Refused, naming the message, on a history the store cannot read — never decided on
        // what it could read.
        let refused = net.try_act(&store, referral, ReferralCommand::Receive).await;
        assert!(
            matches!(refused, Err(CommandError::Store(StoreError::Undecodable { sequence, .. })) if sequence == at),
            "{kind:?}: {refused:?}"
        );
        // Other aggregates are not affected.
        assert!(store.load::<Referral>(other).await.is_ok(), "{kind:?}");
        // The operator skips it: the store passes over it from then on.
        store.skips().record(&skip(at, &subject), 1).await.expect("skip");
        assert!(store.skips().contains(at).await.expect("lookup"));
    }
    let history = store.read_history(&subject, 1).await.expect("history");
    assert_eq!(history.len(), 1, "only the request: every poison is passed over");
    let outcome = net
        .try_act(&store, referral, ReferralCommand::Receive)
        .await
        .expect("carried out once the poison is skipped");
    assert_eq!(outcome.version, 2, "the skipped messages are no events of the referral");
    let loaded = store.load::<Referral>(referral).await.expect("load");
    assert_eq!(loaded.version, 2);
    assert_eq!(
        loaded.last_sequence, outcome.position,
        "appended after the skipped messages"
    );

    // A second store (a restarted process) reads the same history the same way.
    let again = open_store(&server.url(), StoreConfig::default()).await;
    assert_eq!(again.load::<Referral>(referral).await.expect("load").version, 2);
    let listed = again.skips().list().await.expect("list");
    assert_eq!(listed.len(), wasl_store::testing::Poison::ALL.len());
    assert!(listed.windows(2).all(|w| w[0].sequence < w[1].sequence), "in log order");
    let twice = again.skips().record(&listed[0], 1).await;
    assert!(matches!(twice, Err(StoreError::Api { code: 409, .. })), "{twice:?}");
}

#[tokio::test]
async fn nothing_is_skipped_before_an_operator_skips_something() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    assert!(!store.skips().contains(1).await.expect("no bucket is no skip"));
    assert!(store.skips().list().await.expect("list").is_empty());
}
