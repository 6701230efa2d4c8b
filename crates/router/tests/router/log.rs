//! What the router does with a log it cannot trust: a message that is not a Wasl event is
//! parked and reported and the rest delivered; a log that went backwards under the checkpoint
//! stops delivery until it matches again.

use crate::support::{
    Running, feed, fresh, last_sequence, open_store, router_config, server, wait_until, wait_until_async,
};
use async_nats::jetstream;
use std::sync::atomic::Ordering;
use std::time::Duration;
use wasl_domain::ids::{OrgId, ReferralId};
use wasl_domain::referral::{Referral, ReferralCommand, ReferralEvent};
use wasl_events::{DomainEvent, EventMeta, StoredEvent};
use wasl_router::{PartnerMessage, Resolution};
use wasl_store::append::Append;
use wasl_store::skips::Skip;
use wasl_store::testing::Poison;
use wasl_store::{CommandError, StoreError};
use wasl_store::{EventStore, StoreConfig};

fn statuses(messages: &[async_nats::jetstream::message::StreamMessage], referral: ReferralId) -> Vec<String> {
    messages
        .iter()
        .map(|m| serde_json::from_slice::<PartnerMessage>(&m.payload).expect("a partner message"))
        .filter(|m| m.referral_id == referral.to_string())
        .map(|m| m.status)
        .collect()
}

/// Appends the referral's next event straight to the log, past whatever is on its subject: the
/// command handler refuses to decide on a history it cannot read, but the router must still
/// deliver what a newer writer (or a repaired store) appends after the poison.
async fn append_after_poison(
    store: &EventStore,
    net: &crate::support::Network,
    referral: ReferralId,
    event: ReferralEvent,
) {
    let subject = format!("wasl.evt.referral.{referral}");
    let last = store
        .stream()
        .get_last_raw_message_by_subject(&subject)
        .await
        .expect("the subject's last message")
        .sequence;
    let meta = crate::support::meta(net.focal_point());
    let stored = StoredEvent {
        meta: EventMeta {
            event_id: wasl_store::event_id(meta.command_id, meta.context.now, 0),
            command_id: meta.command_id,
            occurred_at: meta.context.now,
            actor: meta.context.actor.clone(),
        },
        event: DomainEvent::Referral(referral, event),
    };
    let append = Append {
        subject: &subject,
        expected_last_sequence: last,
        events: std::slice::from_ref(&stored),
        traceparent: None,
        attempt: 0,
    };
    wasl_store::append::append(store.client(), store.config(), append)
        .await
        .expect("appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_of_every_kind_on_every_subject_is_parked_and_everything_else_delivered() {
    let server = server();
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = crate::support::network(&store).await;
    let first = net.refer(&store).await;

    // Poison of each kind on a referral that exists, on one that does not, on the case and on
    // an organisation: every subject family of the log.
    // (The case last: a new referral needs a readable case.)
    let subjects = [
        format!("wasl.evt.referral.{first}"),
        format!("wasl.evt.referral.{}", fresh::<ReferralId>()),
        format!("wasl.evt.org.{}", fresh::<OrgId>()),
        format!("wasl.evt.case.{}", net.case),
    ];
    let mut poisoned = Vec::new();
    let mut second = None;
    for subject in &subjects {
        if subject.contains(".case.") {
            second = Some(net.refer(&store).await);
        }
        for kind in Poison::ALL {
            poisoned.push(kind.publish(store.client(), subject).await);
        }
    }
    let second = second.expect("made");

    // The store refuses commands on a history it cannot read (see the store's tests), but
    // events appended after the poison must reach the partner.
    let refused = store
        .execute::<Referral>(
            first,
            &ReferralCommand::Receive,
            &crate::support::meta(net.focal_point()),
        )
        .await;
    assert!(
        matches!(refused, Err(CommandError::Store(StoreError::Undecodable { .. }))),
        "{refused:?}"
    );
    append_after_poison(&store, &net, first, ReferralEvent::Received).await;
    append_after_poison(&store, &net, first, ReferralEvent::Accepted).await;
    let end = last_sequence(&store).await;

    let running = Running::start(&server.url(), router_config()).await;
    running.wait_for(end).await;
    let metrics = running.router.metrics();
    assert_eq!(metrics.unreadable.load(Ordering::Relaxed), poisoned.len() as u64);

    let js = jetstream::new(store.client().clone());
    let delivered = feed(&js, net.provider()).await;
    assert_eq!(
        statuses(&delivered, first),
        ["requested", "received", "accepted"],
        "every event of the referral, around the poison in its history"
    );
    assert_eq!(statuses(&delivered, second), ["requested"]);

    let parked = running.router.parked().await.expect("list parked");
    assert_eq!(parked.iter().map(|p| p.sequence).collect::<Vec<_>>(), poisoned);
    assert!(parked.iter().all(|p| p.resolution.is_none() && !p.error.is_empty()));
    assert_eq!(
        parked
            .iter()
            .map(|p| p.subject.as_str())
            .collect::<std::collections::BTreeSet<_>>(),
        subjects.iter().map(String::as_str).collect()
    );

    // An operator resolves one, with a reason.
    let resolution = Resolution {
        reason: "test: stray bytes from a broken tool".to_owned(),
        by: "test.operator".to_owned(),
        at: "2026-12-07T00:00:00.000Z".to_owned(),
    };
    let resolved = running
        .router
        .resolve(poisoned[0], resolution.clone())
        .await
        .expect("resolve")
        .expect("it was parked");
    assert_eq!(resolved.resolution.as_ref(), Some(&resolution));
    assert!(
        running
            .router
            .resolve(end + 100, resolution)
            .await
            .expect("resolve")
            .is_none()
    );

    // The router is still running: later events go out.
    net.act(&store, second, ReferralCommand::Receive).await;
    let end = last_sequence(&store).await;
    running.wait_for(end).await;
    assert_eq!(
        statuses(&feed(&js, net.provider()).await, second),
        ["requested", "received"]
    );
    running.stop().await.expect("a clean stop, not an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_skipped_in_the_log_is_passed_over_and_shows_resolved() {
    let server = server();
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = crate::support::network(&store).await;
    let referral = net.refer(&store).await;
    let subject = format!("wasl.evt.referral.{referral}");
    let skipped = Poison::GarbageWithHeaders.publish(store.client(), &subject).await;
    store
        .skips()
        .record(
            &Skip {
                sequence: skipped,
                subject: subject.clone(),
                error: "not a wasl event".to_owned(),
                reason: "test: stray bytes".to_owned(),
                by: "test.operator".to_owned(),
                skipped_at: "2026-12-07T00:00:00.000Z".to_owned(),
            },
            1,
        )
        .await
        .expect("skip");
    // The store passes over the skipped message too.
    net.act(&store, referral, ReferralCommand::Receive).await;
    let parked = Poison::GarbageWithoutHeaders.publish(store.client(), &subject).await;
    let end = last_sequence(&store).await;

    let running = Running::start(&server.url(), router_config()).await;
    running.wait_for(end).await;
    let listed = running.router.parked().await.expect("list");
    assert_eq!(
        listed.iter().map(|p| p.sequence).collect::<Vec<_>>(),
        [parked],
        "the skipped message is not parked, the other is"
    );
    assert_eq!(running.router.metrics().unreadable.load(Ordering::Relaxed), 1);
    let js = jetstream::new(store.client().clone());
    assert_eq!(
        statuses(&feed(&js, net.provider()).await, referral),
        ["requested", "received"]
    );
    running.stop().await.expect("clean stop");
}

/// Replaces the event log with a new, empty one, as a wiped store would.
async fn replace_log(server_url: &str, store: &EventStore) -> EventStore {
    let js = jetstream::new(store.client().clone());
    // The log denies deletes and purges of messages, not the deletion of the stream itself.
    js.delete_stream("WASL_EVENTS").await.expect("delete the stream");
    EventStore::open(crate::support::connect(server_url).await, StoreConfig::default())
        .await
        .expect("a new, empty log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_went_backwards_stops_delivery_until_it_matches_again() {
    let server = server();
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = crate::support::network(&store).await;
    for _ in 0..3 {
        net.refer(&store).await;
    }
    let end = last_sequence(&store).await;
    let config = wasl_router::RouterConfig {
        check_interval: Duration::from_millis(200),
        ..router_config()
    };
    let running = Running::start(&server.url(), config.clone()).await;
    running.wait_for(end).await;
    let js = jetstream::new(store.client().clone());
    let delivered = feed(&js, net.provider()).await.len();
    assert_eq!(delivered, 3);

    // The log is replaced under the running router by a shorter one.
    let shorter = replace_log(&server.url(), &store).await;
    let again = crate::support::network(&shorter).await;
    let new_referral = again.refer(&shorter).await;
    assert!(last_sequence(&shorter).await < end, "the new log is shorter");
    let metrics = running.router.metrics();
    wait_until("the router notices", || metrics.diverged().is_some()).await;
    let reason = metrics.diverged().expect("a reason");
    assert!(reason.contains("ends at sequence"), "{reason}");
    assert_eq!(metrics.position.load(Ordering::Relaxed), end, "the checkpoint stays");

    // A router started now refuses too, and says why.
    running.crash().await;
    let running = Running::start(&server.url(), config).await;
    let metrics = running.router.metrics();
    wait_until("a new router notices", || metrics.diverged().is_some()).await;
    assert!(
        feed(&js, again.provider()).await.is_empty(),
        "nothing of the new log was delivered while the router's checkpoint is ahead of it"
    );

    // The operator accepts the log as it is: the checkpoint goes back to the start, and the
    // router goes on by itself.
    running.router.reset_checkpoint().await.expect("reset");
    wait_until("delivery resumes", || metrics.diverged().is_none()).await;
    wait_until_async("the new referral reaches its partner", || {
        let js = js.clone();
        let provider = again.provider();
        async move { !statuses(&feed(&js, provider).await, new_referral).is_empty() }
    })
    .await;
    running.stop().await.expect("clean stop");
}
