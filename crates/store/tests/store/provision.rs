//! The event stream is created once, reused when compatible, refused when not.

use crate::support::connect;
use async_nats::jetstream;
use std::time::Duration;
use wasl_store::{EventStore, StoreConfig, StoreError};
use wasl_testkit::NatsServer;

#[tokio::test]
async fn the_stream_is_created_with_the_settings_the_log_needs_and_reopened_as_is() {
    let server = NatsServer::start().expect("nats-server");
    let store = EventStore::open(connect(&server.url()).await, StoreConfig::default())
        .await
        .expect("created");
    let info = store.stream().get_info().await.expect("info");
    let config = &info.config;
    assert_eq!(config.subjects, vec!["wasl.evt.>".to_owned()]);
    assert_eq!(config.storage, jetstream::stream::StorageType::File);
    assert!(config.deny_delete && config.deny_purge && config.allow_direct && config.allow_atomic_publish);
    assert_eq!(config.duplicate_window, Duration::from_secs(120));
    drop(store);
    EventStore::open(connect(&server.url()).await, StoreConfig::default())
        .await
        .expect("reopened");
}

#[tokio::test]
async fn an_existing_stream_with_other_settings_is_refused_naming_each_difference() {
    let server = NatsServer::start().expect("nats-server");
    let js = jetstream::new(connect(&server.url()).await);
    let mut lax = wasl_store::provision::stream_config(&StoreConfig::default());
    lax.deny_purge = false;
    lax.duplicate_window = Duration::from_secs(30);
    js.create_stream(lax).await.expect("a stream made by someone else");
    let err = EventStore::open(connect(&server.url()).await, StoreConfig::default())
        .await
        .err()
        .expect("refused");
    match err {
        StoreError::IncompatibleStream { stream, differences } => {
            assert_eq!(stream, "WASL_EVENTS");
            assert!(
                differences.contains("deny_purge: expected true, found false"),
                "{differences}"
            );
            assert!(differences.contains("duplicate_window"), "{differences}");
            assert!(!differences.contains("subjects"), "{differences}");
        }
        other => panic!("expected IncompatibleStream, got {other:?}"),
    }
}

#[tokio::test]
async fn stored_events_cannot_be_deleted_or_purged() {
    let server = NatsServer::start().expect("nats-server");
    let store = EventStore::open(connect(&server.url()).await, StoreConfig::default())
        .await
        .expect("store");
    let net = crate::support::Network::set_up(&store).await;
    assert!(
        store.stream().delete_message(1).await.is_err(),
        "deleting an event must fail"
    );
    assert!(store.stream().purge().await.is_err(), "purging the log must fail");
    assert!(
        store
            .load::<wasl_domain::case::Case>(net.case)
            .await
            .expect("load")
            .state
            .state()
            .is_some()
    );
}
