//! Commands through the handler: versions and positions, refusals, idempotency, lost answers.

use crate::support::*;
use std::time::Duration;
use wasl_domain::referral::{Referral, ReferralCommand, ReferralStatus};
use wasl_domain::{DomainError, Forbidden};
use wasl_events::StoredEvent;
use wasl_store::append::{self, Append};
use wasl_store::{CommandError, CommandMeta, StoreConfig};
use wasl_testkit::NatsServer;

#[tokio::test]
async fn each_command_answers_with_the_new_version_and_the_stream_position() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&store).await;
    let referral = net.refer(&store).await;
    let received = net
        .try_act(&store, referral, ReferralCommand::Receive)
        .await
        .expect("received");
    let accepted = net
        .try_act(&store, referral, ReferralCommand::Accept)
        .await
        .expect("accepted");
    assert_eq!((received.version, accepted.version), (2, 3));
    assert_eq!(accepted.position, received.position + 1);
    assert!(!accepted.replayed);
    let info = store.stream().get_info().await.expect("info");
    assert_eq!(info.state.last_sequence, accepted.position);

    let fresh_store = open_store(&server.url(), StoreConfig::default()).await;
    let loaded = fresh_store.load::<Referral>(referral).await.expect("load");
    assert_eq!(loaded.state.status(), Some(ReferralStatus::Accepted));
    assert_eq!((loaded.version, loaded.last_sequence), (3, accepted.position));
}

#[tokio::test]
async fn refusals_are_typed_and_store_nothing() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&store).await;
    let referral = net.refer(&store).await;
    let before = store.stream().get_info().await.expect("info").state.messages;
    let by_referrer = store
        .execute::<Referral>(referral, &ReferralCommand::Accept, &meta(net.caseworker()))
        .await;
    assert!(matches!(
        by_referrer,
        Err(CommandError::Rejected(DomainError::Forbidden(
            Forbidden::NotReceivingOrganisation
        )))
    ));
    let missing = net.try_act(&store, fresh(), ReferralCommand::Accept).await;
    assert!(matches!(missing, Err(CommandError::NotFound)));
    assert_eq!(store.stream().get_info().await.expect("info").state.messages, before);
}

#[tokio::test]
async fn a_command_sent_twice_is_stored_once_and_answered_the_same() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&store).await;
    let referral = net.refer(&store).await;
    let once = CommandMeta {
        command_id: fresh(),
        context: net.focal_point(),
        traceparent: None,
    };
    let first = store
        .execute::<Referral>(referral, &ReferralCommand::Accept, &once)
        .await
        .expect("first");
    let again = store
        .execute::<Referral>(referral, &ReferralCommand::Accept, &once)
        .await
        .expect("again");
    assert_eq!((again.version, again.position), (first.version, first.position));
    assert!(again.replayed);
    // Another process, with nothing cached, gets the same answer from the history.
    let other = open_store(&server.url(), StoreConfig::default()).await;
    let elsewhere = other
        .execute::<Referral>(referral, &ReferralCommand::Accept, &once)
        .await
        .expect("elsewhere");
    assert_eq!(
        (elsewhere.version, elsewhere.position, elsewhere.replayed),
        (first.version, first.position, true)
    );
    assert_eq!(store.load::<Referral>(referral).await.expect("load").version, 2);
}

/// The events the handler would store for `command`, built by a second handler that loads the
/// same state, then appended behind the first handler's back: the first attempt that "landed"
/// while its answer was lost.
async fn land_behind_the_back(server: &NatsServer, referral: wasl_domain::ids::ReferralId, meta: &CommandMeta) -> u64 {
    let side = open_store(&server.url(), StoreConfig::default()).await;
    let outcome = side
        .execute::<Referral>(referral, &ReferralCommand::Accept, meta)
        .await
        .expect("landed");
    outcome.position
}

#[tokio::test]
async fn a_retry_whose_first_attempt_landed_is_recognised_not_reported_as_a_conflict() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&store).await;
    let referral = net.refer(&store).await;
    // The handler has the referral cached at version 1 (it just made it).
    let lost = CommandMeta {
        command_id: fresh(),
        context: net.focal_point(),
        traceparent: None,
    };
    let landed_at = land_behind_the_back(&server, referral, &lost).await;
    // Now the client retries through the handler whose cache is stale: its append carries the
    // old expected sequence and the same message id.
    let retry = store
        .execute::<Referral>(referral, &ReferralCommand::Accept, &lost)
        .await
        .expect("recognised");
    assert_eq!((retry.version, retry.position, retry.replayed), (2, landed_at, true));
    let copies = all_events(&store)
        .await
        .iter()
        .filter(|r| r.event.meta.command_id == lost.command_id)
        .count();
    assert_eq!(copies, 1);
}

#[tokio::test]
async fn a_retry_after_the_duplicate_window_is_still_answered_from_the_history() {
    let server = NatsServer::start().expect("nats-server");
    let config = StoreConfig {
        duplicate_window: Duration::from_millis(300),
        ..StoreConfig::default()
    };
    let store = open_store(&server.url(), config.clone()).await;
    let net = Network::set_up(&store).await;
    let referral = net.refer(&store).await;
    let lost = CommandMeta {
        command_id: fresh(),
        context: net.focal_point(),
        traceparent: None,
    };
    let side = open_store(&server.url(), config).await;
    let first = side
        .execute::<Referral>(referral, &ReferralCommand::Accept, &lost)
        .await
        .expect("landed");
    // Let JetStream forget the message id; the handler must not need it.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let retry = store
        .execute::<Referral>(referral, &ReferralCommand::Accept, &lost)
        .await
        .expect("recognised");
    assert_eq!((retry.position, retry.replayed), (first.position, true));
    let copies = all_events(&store)
        .await
        .iter()
        .filter(|r| r.event.meta.command_id == lost.command_id)
        .count();
    assert_eq!(copies, 1);
}

/// JetStream checks the expected sequence before it looks at the message id: a resend of an
/// append that landed is refused as a conflict even inside the duplicate window, and stores
/// nothing. (The handler turns that conflict into the original answer, tested above.)
#[tokio::test]
async fn a_resent_append_that_landed_is_refused_and_stores_nothing_twice() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&store).await;
    let referral = net.refer(&store).await;
    let loaded = store.load::<Referral>(referral).await.expect("load");
    let lost = CommandMeta {
        command_id: fresh(),
        context: net.focal_point(),
        traceparent: None,
    };
    store
        .execute::<Referral>(referral, &ReferralCommand::Receive, &lost)
        .await
        .expect("received");
    let stored: Vec<StoredEvent> = all_events(&store)
        .await
        .into_iter()
        .filter(|r| r.event.meta.command_id == lost.command_id)
        .map(|r| r.event)
        .collect();
    let subject = stored[0].event.subject();
    let resend = Append {
        subject: &subject,
        expected_last_sequence: loaded.last_sequence,
        events: &stored,
        traceparent: None,
        attempt: 1,
    };
    let refused = append::append(store.client(), store.config(), resend).await;
    assert!(matches!(refused, Err(append::AppendError::Conflict)), "{refused:?}");
    let copies = all_events(&store)
        .await
        .iter()
        .filter(|r| r.event.meta.command_id == lost.command_id)
        .count();
    assert_eq!(copies, 1);
}

#[tokio::test]
async fn a_stale_cache_does_not_turn_into_a_wrong_refusal() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&store).await;
    let referral = net.refer(&store).await;
    // Another process accepts; this handler's cache still says "requested".
    let other = open_store(&server.url(), StoreConfig::default()).await;
    other
        .execute::<Referral>(referral, &ReferralCommand::Accept, &meta(net.focal_point()))
        .await
        .expect("accepted");
    // Starting is only allowed from accepted: decided on the stale cache it would be refused.
    let started = net
        .try_act(&store, referral, ReferralCommand::Start)
        .await
        .expect("started on the fresh state");
    assert_eq!(started.version, 3);
}

#[tokio::test]
async fn several_events_of_one_command_are_stored_as_one_atomic_batch() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&store).await;
    let referral = net.refer(&store).await;
    let accepted = store.load::<Referral>(referral).await.expect("load");
    let meta_a = meta(net.focal_point());
    let meta_b = meta(net.focal_point());
    // Two events of one "command": build them with the real encoder, append as a batch.
    let make = |meta: &CommandMeta, event| wasl_events::StoredEvent {
        meta: wasl_events::EventMeta {
            event_id: fresh(),
            command_id: meta.command_id,
            occurred_at: meta.context.now,
            actor: meta.context.actor.clone(),
        },
        event: wasl_events::DomainEvent::Referral(referral, event),
    };
    let batch = vec![
        make(&meta_a, wasl_domain::referral::ReferralEvent::Received),
        make(&meta_a, wasl_domain::referral::ReferralEvent::Accepted),
    ];
    let subject = batch[0].event.subject();
    let ack = append::append(
        store.client(),
        store.config(),
        Append {
            subject: &subject,
            expected_last_sequence: accepted.last_sequence,
            events: &batch,
            traceparent: None,
            attempt: 0,
        },
    )
    .await
    .expect("batch stored");
    assert_eq!(ack.last_sequence, accepted.last_sequence + 2);
    // A batch with a stale expectation stores nothing at all.
    let stale = vec![
        make(&meta_b, wasl_domain::referral::ReferralEvent::Started),
        make(&meta_b, wasl_domain::referral::ReferralEvent::Completed),
    ];
    let refused = append::append(
        store.client(),
        store.config(),
        Append {
            subject: &subject,
            expected_last_sequence: accepted.last_sequence,
            events: &stale,
            traceparent: None,
            attempt: 0,
        },
    )
    .await;
    assert!(matches!(refused, Err(append::AppendError::Conflict)), "{refused:?}");
    let after = open_store(&server.url(), StoreConfig::default())
        .await
        .load::<Referral>(referral)
        .await
        .expect("load");
    assert_eq!(after.state.status(), Some(ReferralStatus::Accepted));
    assert_eq!(after.version, 3);
}

#[tokio::test]
async fn a_command_for_another_version_is_refused_before_deciding_and_a_lost_race_is_a_conflict() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&store).await;
    let referral = net.refer(&store).await;
    let before = store.stream().get_info().await.expect("info").state.messages;
    let stale = store
        .execute_at::<Referral>(referral, &ReferralCommand::Receive, &meta(net.focal_point()), Some(7))
        .await;
    assert!(matches!(
        stale,
        Err(CommandError::VersionMismatch { current_version: 1 })
    ));
    assert_eq!(store.stream().get_info().await.expect("info").state.messages, before);

    // Another process moves the referral on; this one's cache still says version 1.
    let other = open_store(&server.url(), StoreConfig::default()).await;
    other
        .execute::<Referral>(referral, &ReferralCommand::Receive, &meta(net.focal_point()))
        .await
        .expect("received elsewhere");
    let warm = store.load::<Referral>(referral).await.expect("load");
    assert_eq!(warm.version, 2);
    let accepted = store
        .execute_at::<Referral>(referral, &ReferralCommand::Accept, &meta(net.focal_point()), Some(2))
        .await
        .expect("accepted at the expected version");
    assert_eq!(accepted.version, 3);
    // Decided on version 2 in this process while the log moved to 3 elsewhere: a conflict,
    // not a second decision on a version the caller never saw.
    let cached = open_store(&server.url(), StoreConfig::default()).await;
    cached
        .load::<Referral>(referral)
        .await
        .expect("warm the cache at version 3");
    other
        .execute::<Referral>(referral, &ReferralCommand::Start, &meta(net.focal_point()))
        .await
        .expect("started elsewhere");
    let raced = cached
        .execute_at::<Referral>(
            referral,
            &ReferralCommand::Hold(wasl_domain::catalogue::Reason::coded(
                wasl_domain::catalogue::HoldCode::Security,
            )),
            &meta(net.focal_point()),
            Some(3),
        )
        .await;
    assert!(
        matches!(raced, Err(CommandError::Conflict { current_version: 4 })),
        "{raced:?}"
    );
}

#[tokio::test]
async fn the_cached_state_answers_without_the_log_but_an_unseen_aggregate_is_read() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&store).await;
    let referral = net.refer(&store).await;
    let other = open_store(&server.url(), StoreConfig::default()).await;
    // Never seen by `other`: read from the log.
    assert_eq!(other.cached::<Referral>(referral).await.expect("cached").version, 1);
    net.try_act(&store, referral, ReferralCommand::Receive)
        .await
        .expect("received");
    // Seen before: the cache answers, without the newer event.
    let cached = other.cached::<Referral>(referral).await.expect("cached");
    assert_eq!(cached.version, 1);
    assert_eq!(
        cached.state.state().map(|s| s.to_org),
        store
            .load::<Referral>(referral)
            .await
            .expect("load")
            .state
            .state()
            .map(|s| s.to_org)
    );
    assert_eq!(other.load::<Referral>(referral).await.expect("load").version, 2);
    // Something that does not exist yet is looked up again next time.
    let missing = fresh();
    assert_eq!(other.cached::<Referral>(missing).await.expect("cached").version, 0);
}
