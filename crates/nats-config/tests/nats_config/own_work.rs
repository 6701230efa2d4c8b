//! Positive controls: organisation B can do its own work with its credential, and no more.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::stream;
use futures_util::{StreamExt, TryStreamExt};
use wasl_events::partner::{
    ALL_COMMAND_SUBJECTS, PARTNER_CONSUMERS, command_subject, inbox_prefix, out_stream, out_subjects,
};

use crate::support::*;

#[tokio::test]
async fn an_organisation_pulls_and_acknowledges_its_own_feed_through_the_hubs_consumers() {
    let net = Net::start().await;
    let b = net.partner(net.b).await;
    let stream = b.js.get_stream(out_stream(net.b)).await.expect("own stream info");
    let consumer: PullConsumer = stream
        .get_consumer("referrals")
        .await
        .expect("the hub's durable consumer");
    let mut messages = consumer
        .fetch()
        .max_messages(MESSAGES_PER_FEED)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .expect("fetch");
    let mut count = 0;
    while let Some(message) = messages.next().await {
        let message = message.expect("message");
        assert!(message.subject.starts_with(&format!("wasl.out.{}.", net.b)));
        message.double_ack().await.expect("ack");
        count += 1;
    }
    assert_eq!(count, MESSAGES_PER_FEED);
    let mut consumer = consumer;
    let info = consumer.info().await.expect("consumer info");
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.ack_floor.stream_sequence, MESSAGES_PER_FEED as u64);

    // The CLI's consumer has its own position: it still sees everything.
    let cli: PullConsumer = stream
        .get_consumer("wasl-partner-cli")
        .await
        .expect("the hub's CLI consumer");
    let mut batch = cli
        .fetch()
        .max_messages(MESSAGES_PER_FEED)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .expect("fetch");
    let mut seen = 0;
    while let Some(message) = batch.next().await {
        message.expect("message").ack().await.expect("ack");
        seen += 1;
    }
    assert_eq!(seen, MESSAGES_PER_FEED);

    // Listing, reading by sequence.
    let names: Vec<String> = stream.consumer_names().try_collect().await.expect("consumer names");
    for name in PARTNER_CONSUMERS {
        assert!(names.contains(&name.to_owned()), "{name} missing from {names:?}");
    }
    let listed: Vec<_> = stream.consumers().try_collect().await.expect("consumer list");
    assert_eq!(listed.len(), names.len());
    let first = stream.direct_get(1).await.expect("direct get by sequence");
    stream
        .direct_get_last_for_subject(first.subject.as_str())
        .await
        .expect("direct get of the last message of a subject");
    stream.get_raw_message(1).await.expect("STREAM.MSG.GET");
}

#[tokio::test]
async fn an_organisation_cannot_create_change_or_delete_a_consumer_even_on_its_own_feed() {
    let net = Net::start().await;
    let mut b = net.partner(net.b).await;
    let own = out_stream(net.b);
    let stream = b.js.get_stream(&own).await.expect("own stream info");
    let named = stream
        .create_consumer(pull::Config {
            durable_name: Some("mine".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await;
    assert!(named.is_err(), "B created a consumer");
    b.expect_violation(&format!("$JS.API.CONSUMER.CREATE.{own}.mine")).await;
    let ephemeral = stream.create_consumer(pull::Config::default()).await;
    assert!(ephemeral.is_err(), "B created an ephemeral consumer");
    b.expect_violation(&format!("$JS.API.CONSUMER.CREATE.{own}")).await;
    // Changing the hub's consumer (another filter, another start) is a create request too.
    let changed = stream
        .create_consumer(pull::Config {
            durable_name: Some("referrals".into()),
            filter_subject: format!("wasl.out.{}.redaction.>", net.b),
            ..Default::default()
        })
        .await;
    assert!(changed.is_err(), "B changed the hub's consumer");
    b.denied_request(
        &format!("$JS.API.CONSUMER.DURABLE.CREATE.{own}.legacy"),
        r#"{"config":{"durable_name":"legacy","ack_policy":"explicit"}}"#,
    )
    .await;
    assert!(stream.delete_consumer("referrals").await.is_err());
    b.expect_violation(&format!("$JS.API.CONSUMER.DELETE.{own}.referrals"))
        .await;
    let names: Vec<String> = stream.consumer_names().try_collect().await.expect("consumer names");
    let mut expected: Vec<String> = PARTNER_CONSUMERS.iter().map(|c| (*c).to_owned()).collect();
    let mut names = names;
    names.sort();
    expected.sort();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn an_organisation_sends_a_command_and_gets_the_reply_on_its_inbox() {
    let net = Net::start().await;
    let mut commands = net.hub.subscribe(ALL_COMMAND_SUBJECTS).await.unwrap();
    net.hub.flush().await.unwrap();
    let hub = net.hub.clone();
    let service = tokio::spawn(async move {
        let request = commands.next().await.expect("a command");
        let reply = request.reply.clone().expect("a request");
        hub.publish(reply, "{\"ok\":true}".into()).await.unwrap();
        hub.flush().await.unwrap();
        request
    });
    let b = net.partner(net.b).await;
    let subject = command_subject(net.b, fresh(), "accept");
    let reply = b
        .client
        .request(subject.clone(), r#"{"command_id":"x"}"#.into())
        .await
        .expect("the hub answers");
    assert_eq!(&reply.payload[..], b"{\"ok\":true}");
    let request = service.await.unwrap();
    assert_eq!(request.subject.as_str(), subject);
    assert!(request.reply.unwrap().starts_with(&format!("{}.", inbox_prefix(net.b))));
}

#[tokio::test]
async fn an_organisation_cannot_change_streams_or_see_the_account() {
    let net = Net::start().await;
    let mut b = net.partner(net.b).await;
    let own = out_stream(net.b);
    assert!(b.js.delete_stream(&own).await.is_err());
    b.expect_violation(&format!("$JS.API.STREAM.DELETE.{own}")).await;
    let stream = b.js.get_stream(&own).await.expect("own stream");
    assert!(stream.purge().await.is_err());
    b.expect_violation(&format!("$JS.API.STREAM.PURGE.{own}")).await;
    b.denied_request(&format!("$JS.API.STREAM.MSG.DELETE.{own}"), r#"{"seq":1}"#)
        .await;
    let update =
        b.js.update_stream(stream::Config {
            name: own.clone(),
            subjects: vec![out_subjects(net.b), "wasl.evt.>".into()],
            ..Default::default()
        })
        .await;
    assert!(update.is_err());
    b.expect_violation(&format!("$JS.API.STREAM.UPDATE.{own}")).await;
    let create =
        b.js.create_stream(stream::Config {
            name: "SPY".into(),
            subjects: vec!["wasl.evt.>".into()],
            ..Default::default()
        })
        .await;
    assert!(create.is_err());
    b.expect_violation("$JS.API.STREAM.CREATE.SPY").await;
    // Stream names are organisation ids: neither listed nor named.
    b.denied_request("$JS.API.STREAM.NAMES", "{}").await;
    b.denied_request("$JS.API.STREAM.LIST", "{}").await;
    b.denied_request("$JS.API.INFO", "").await;
    b.denied_request("$JS.API.STREAM.INFO.KV_WASL_KEYS", "").await;
    b.denied_subscription("$KV.>").await;
    b.denied_request("$KV.WASL_KEYS.anything", "x").await;
    assert_eq!(net.feed_len(net.b).await, MESSAGES_PER_FEED as u64);
}
