//! A push consumer on the partner's own stream whose deliver subject points at another
//! organisation's commands, inbox or feed, the event log, or the JetStream API. The server (2.14)
//! does not check a deliver subject against the creator's permissions (nats-server#8274), so
//! partners may not create consumers at all: every attempt is refused, and nothing arrives. A push
//! consumer an older Wasl let a partner create is removed by the router. See
//! docs/nats-security.md.

use std::time::Duration;

use async_nats::jetstream::consumer::push;
use async_nats::jetstream::stream;
use futures_util::StreamExt;
use wasl_events::partner::{ALL_COMMAND_SUBJECTS, command_subject, inbox_prefix, out_stream, out_subject};

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
    let mut a_inbox = literal_inbox_of(&net, net.a).await;
    let mut b = net.partner(net.b).await;
    let targets = [
        command_subject(net.a, fresh(), "accept"),
        format!("{}.pull", inbox_prefix(net.a)),
        out_subject(net.a, fresh()),
        format!("wasl.evt.referral.{}", uuid::Uuid::now_v7()),
        format!("$JS.API.STREAM.PURGE.{}", out_stream(net.a)),
        format!("$JS.API.STREAM.DELETE.{}", out_stream(net.a)),
    ];
    for (i, target) in targets.iter().enumerate() {
        let name = format!("redirect{i}");
        let created =
            b.js.create_consumer_on_stream(
                push::Config {
                    durable_name: Some(name.clone()),
                    deliver_subject: target.clone(),
                    ..Default::default()
                },
                out_stream(net.b),
            )
            .await;
        assert!(created.is_err(), "B made a push consumer delivering to {target}");
        b.expect_violation(&format!("$JS.API.CONSUMER.CREATE.{}.{name}", out_stream(net.b)))
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
    let leaked = tokio::time::timeout(Duration::from_millis(500), a_inbox.next()).await;
    assert!(
        leaked.is_err(),
        "A's inbox got {:?}",
        leaked.map(|m| m.map(|m| m.subject))
    );
    assert_eq!(net.feed_len(net.a).await, MESSAGES_PER_FEED as u64);
    let mut events = net
        .hub_js
        .get_stream("WASL_EVENTS")
        .await
        .expect("event log still there");
    assert_eq!(events.info().await.unwrap().state.messages, 0);
}

#[tokio::test]
async fn the_router_removes_a_push_consumer_an_older_wasl_let_a_partner_create() {
    let net = Net::start().await;
    let mut a_inbox = literal_inbox_of(&net, net.a).await;
    let feed = net.hub_js.get_stream(out_stream(net.b)).await.expect("B's feed");
    // What a partner could do before: a push consumer on its own feed aimed at A's inbox.
    feed.create_consumer(push::Config {
        durable_name: Some("redirect".into()),
        deliver_subject: format!("{}.pull", inbox_prefix(net.a)),
        ..Default::default()
    })
    .await
    .expect("a push consumer, as an older Wasl allowed");
    let leaked = tokio::time::timeout(Duration::from_secs(2), a_inbox.next()).await;
    assert!(leaked.is_ok(), "the control: the push consumer delivers into A's inbox");
    let removed = wasl_router::keep_partner_consumers(&feed)
        .await
        .expect("keep consumers");
    assert_eq!(removed, 1);
    let names: Vec<String> = futures_util::TryStreamExt::try_collect(feed.consumer_names())
        .await
        .expect("names");
    assert!(!names.contains(&"redirect".to_owned()), "{names:?}");
    // Kept consumers survive a second pass, and nothing else is removed.
    assert_eq!(wasl_router::keep_partner_consumers(&feed).await.expect("again"), 0);
}

/// A subscription on a literal subject under `org`'s inbox prefix, as nats-py's pull
/// subscriptions hold one: the server delivers to literal subscriptions, so this is where a
/// redirected push consumer would land.
async fn literal_inbox_of(net: &Net, org: wasl_domain::ids::OrgId) -> async_nats::Subscriber {
    let inbox = net.hub.subscribe(format!("{}.pull", inbox_prefix(org))).await.unwrap();
    net.hub.flush().await.unwrap();
    inbox
}
