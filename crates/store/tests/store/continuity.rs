//! A reader's checkpoint against the log: the same log, a shorter one, another one.

use crate::support::*;
use async_nats::jetstream;
use wasl_store::StoreConfig;
use wasl_store::continuity::{Divergence, Mark, check, identity};
use wasl_testkit::NatsServer;

/// The mark a reader would record after the log's last message.
async fn mark_at_end(store: &wasl_store::EventStore) -> Mark {
    let last = store.stream().get_info().await.expect("info").state.last_sequence;
    let message = store.stream().get_raw_message(last).await.expect("the last message");
    Mark {
        sequence: last,
        event_id: identity(Some(&message.headers)),
    }
}

#[tokio::test]
async fn the_same_log_passes_a_shorter_or_another_one_is_named() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&store).await;
    net.refer(&store).await;
    let mark = mark_at_end(&store).await;
    assert!(mark.event_id.is_some(), "events carry their id");
    assert_eq!(check(store.stream(), &mark).await.expect("check"), None);
    assert_eq!(check(store.stream(), &Mark::default()).await.expect("check"), None);

    // The log is wiped and recreated: shorter.
    let js = jetstream::new(store.client().clone());
    js.delete_stream("WASL_EVENTS").await.expect("delete");
    let fresh_store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&fresh_store).await;
    assert_eq!(
        check(fresh_store.stream(), &mark).await.expect("check"),
        Some(Divergence::Shorter {
            sequence: mark.sequence,
            last: fresh_store.stream().get_info().await.expect("info").state.last_sequence,
        })
    );

    // Filled up past the old checkpoint with other events: replaced.
    while fresh_store.stream().get_info().await.expect("info").state.last_sequence < mark.sequence {
        net.refer(&fresh_store).await;
    }
    assert_eq!(
        check(fresh_store.stream(), &mark).await.expect("check"),
        Some(Divergence::Replaced {
            sequence: mark.sequence
        })
    );
    // A mark without an event id (a legacy checkpoint) checks the sequence only.
    let bare = Mark { event_id: None, ..mark };
    assert_eq!(check(fresh_store.stream(), &bare).await.expect("check"), None);
}
