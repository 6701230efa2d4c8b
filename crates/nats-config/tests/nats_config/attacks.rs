//! A push consumer on the partner's own stream whose deliver subject points at another
//! organisation's commands or feed, the event log, or the JetStream API. The server (2.14) accepts
//! the consumer (it does not check the deliver subject against the creator's permissions,
//! nats-server#8274) but delivers nothing where only wildcard subscriptions listen, which is how
//! the hub's services and streams listen; see docs/nats-security.md.

use std::time::Duration;

use async_nats::jetstream::consumer::push;
use async_nats::jetstream::stream;
use futures_util::StreamExt;
use wasl_events::partner::{ALL_COMMAND_SUBJECTS, command_subject, out_stream, out_subject};

use crate::support::*;

#[tokio::test]
async fn a_push_consumer_cannot_deliver_into_commands_feeds_the_event_log_or_the_api() {
    let net = Net::start().await;
    net.hub_js
        .create_stream(stream::Config {
            name: "WASL_EVENTS".into(),
            subjects: vec!["wasl.evt.>".into()],
            ..Default::default()
        })
        .await
        .expect("event log");
    let mut commands = net.hub.subscribe(ALL_COMMAND_SUBJECTS).await.unwrap();
    net.hub.flush().await.unwrap();
    let b = net.partner(net.b).await;
    let targets = [
        command_subject(net.a, fresh(), "accept"),
        out_subject(net.a, fresh()),
        format!("wasl.evt.referral.{}", uuid::Uuid::now_v7()),
        format!("$JS.API.STREAM.PURGE.{}", out_stream(net.a)),
        format!("$JS.API.STREAM.DELETE.{}", out_stream(net.a)),
    ];
    for (i, target) in targets.iter().enumerate() {
        // Accepted or refused, depending on the server version; either way nothing may arrive.
        let _ =
            b.js.create_consumer_on_stream(
                push::Config {
                    durable_name: Some(format!("redirect{i}")),
                    deliver_subject: target.clone(),
                    ..Default::default()
                },
                out_stream(net.b),
            )
            .await;
    }
    // B's feed gets new messages while the redirecting consumers exist.
    for _ in 0..MESSAGES_PER_FEED {
        net.publish_to_feed(net.b).await;
    }
    let got = tokio::time::timeout(Duration::from_secs(1), commands.next()).await;
    assert!(
        got.is_err(),
        "the command service got {:?}",
        got.map(|m| m.map(|m| m.subject))
    );
    assert_eq!(net.feed_len(net.a).await, MESSAGES_PER_FEED as u64);
    let mut events = net
        .hub_js
        .get_stream("WASL_EVENTS")
        .await
        .expect("event log still there");
    assert_eq!(events.info().await.unwrap().state.messages, 0);
}
