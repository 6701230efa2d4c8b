//! Positive controls: organisation B can do its own work with its credential, and no more.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::stream;
use futures_util::{StreamExt, TryStreamExt};
use wasl_events::partner::{ALL_COMMAND_SUBJECTS, command_subject, inbox_prefix, out_stream, out_subjects};

use crate::support::*;

#[tokio::test]
async fn an_organisation_pulls_and_acknowledges_its_own_feed() {
    let net = Net::start().await;
    let b = net.partner(net.b).await;
    let stream = b.js.get_stream(out_stream(net.b)).await.expect("own stream info");
    let consumer: PullConsumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("referrals".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("create a durable pull consumer");
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

    // An ephemeral consumer (no name), listing, reading by sequence, deleting.
    let ephemeral: PullConsumer = stream
        .create_consumer(pull::Config::default())
        .await
        .expect("create an ephemeral pull consumer");
    let mut batch = ephemeral.fetch().max_messages(1).messages().await.expect("fetch");
    batch
        .next()
        .await
        .expect("one message")
        .expect("message")
        .ack()
        .await
        .expect("ack");
    let names: Vec<String> = stream.consumer_names().try_collect().await.expect("consumer names");
    assert!(names.contains(&"referrals".to_owned()));
    let listed: Vec<_> = stream.consumers().try_collect().await.expect("consumer list");
    assert_eq!(listed.len(), names.len());
    let first = stream.direct_get(1).await.expect("direct get by sequence");
    stream
        .direct_get_last_for_subject(first.subject.as_str())
        .await
        .expect("direct get of the last message of a subject");
    stream.get_raw_message(1).await.expect("STREAM.MSG.GET");
    let legacy = b
        .client
        .request(
            format!("$JS.API.CONSUMER.DURABLE.CREATE.{}.legacy", out_stream(net.b)),
            format!(
                r#"{{"stream_name":"{}","config":{{"durable_name":"legacy","ack_policy":"explicit"}}}}"#,
                out_stream(net.b)
            )
            .into(),
        )
        .await
        .expect("legacy durable create answered");
    let legacy = String::from_utf8_lossy(&legacy.payload);
    assert!(!legacy.contains("\"error\""), "{legacy}");
    stream.delete_consumer("referrals").await.expect("delete own consumer");
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
