//! Organisation B's credential cannot read organisation A's feed nor act as A.

use async_nats::jetstream::consumer::pull;
use futures_util::StreamExt;
use wasl_events::partner::{
    ALL_COMMAND_SUBJECTS, command_subject, inbox_prefix, out_stream, out_subject, out_subjects,
};

use crate::support::*;

#[tokio::test]
async fn a_literal_subscription_to_another_feed_is_refused() {
    let net = Net::start().await;
    let mut b = net.partner(net.b).await;
    let mut sub = b.denied_subscription(&out_subject(net.a, fresh())).await;
    b.denied_subscription(&out_subjects(net.a)).await;
    net.publish_to_feed(net.a).await;
    assert!(!matches!(tokio::time::timeout(QUIET, sub.next()).await, Ok(Some(_))));
}

#[tokio::test]
async fn a_wildcard_subscription_receives_nothing_of_another_feed() {
    let net = Net::start().await;
    let mut b = net.partner(net.b).await;
    for wildcard in ["wasl.>", ">"] {
        let mut sub = b.denied_subscription(wildcard).await;
        for _ in 0..MESSAGES_PER_FEED {
            net.publish_to_feed(net.a).await;
        }
        // Core messages on A's subjects too, as the router would publish them without JetStream.
        net.hub
            .publish(out_subject(net.a, fresh()), "core".into())
            .await
            .unwrap();
        net.hub.flush().await.unwrap();
        let received = tokio::time::timeout(QUIET, sub.next()).await;
        assert!(
            !matches!(received, Ok(Some(_))),
            "{wildcard} received {:?}",
            received.map(|m| m.map(|m| m.subject))
        );
    }
}

#[tokio::test]
async fn no_consumer_can_be_made_on_another_feed() {
    let net = Net::start().await;
    let mut b = net.partner(net.b).await;
    let a_stream = out_stream(net.a);
    assert!(b.js.get_stream(&a_stream).await.is_err(), "B looked up A's stream");
    let named =
        b.js.create_consumer_on_stream(
            pull::Config {
                durable_name: Some("spy".into()),
                ..Default::default()
            },
            &a_stream,
        )
        .await;
    assert!(named.is_err(), "B created a consumer on A's stream");
    b.expect_violation(&format!("$JS.API.CONSUMER.CREATE.{a_stream}.spy"))
        .await;
    let ephemeral = b.js.create_consumer_on_stream(pull::Config::default(), &a_stream).await;
    assert!(ephemeral.is_err(), "B created an ephemeral consumer on A's stream");
    b.denied_request(
        &format!("$JS.API.CONSUMER.DURABLE.CREATE.{a_stream}.spy"),
        r#"{"config":{"durable_name":"spy","ack_policy":"explicit"}}"#,
    )
    .await;
    // The consumers the hub keeps on A's feed are out of reach too.
    b.denied_request(
        &format!("$JS.API.CONSUMER.MSG.NEXT.{a_stream}.referrals"),
        r#"{"batch":1}"#,
    )
    .await;
    b.denied_request(&format!("$JS.API.CONSUMER.INFO.{a_stream}.referrals"), "")
        .await;
    b.denied_request(&format!("$JS.API.CONSUMER.DELETE.{a_stream}.referrals"), "")
        .await;
    assert_eq!(net.feed_len(net.a).await, MESSAGES_PER_FEED as u64);
}

#[tokio::test]
async fn no_message_of_another_feed_can_be_read_directly() {
    let net = Net::start().await;
    let mut b = net.partner(net.b).await;
    let a_stream = out_stream(net.a);
    b.denied_request(&format!("$JS.API.DIRECT.GET.{a_stream}"), r#"{"seq":1}"#)
        .await;
    b.denied_request(
        &format!("$JS.API.DIRECT.GET.{a_stream}.{}", out_subject(net.a, fresh())),
        "",
    )
    .await;
    b.denied_request(&format!("$JS.API.STREAM.MSG.GET.{a_stream}"), r#"{"seq":1}"#)
        .await;
    b.denied_request(&format!("$JS.API.STREAM.INFO.{a_stream}"), "").await;
}

#[tokio::test]
async fn a_command_under_another_organisation_never_reaches_the_hub() {
    let net = Net::start().await;
    let mut commands = net.hub.subscribe(ALL_COMMAND_SUBJECTS).await.unwrap();
    net.hub.flush().await.unwrap();
    let mut b = net.partner(net.b).await;
    let as_a = command_subject(net.a, fresh(), "accept");
    b.denied_request(&as_a, r#"{"command_id":"x"}"#).await;
    b.client.publish(as_a.clone(), "plain publish".into()).await.unwrap();
    b.client.flush().await.unwrap();
    b.expect_violation(&as_a).await;
    // Control: B's own command arrives, and it is the first thing the hub sees.
    let own = command_subject(net.b, fresh(), "accept");
    b.client.publish(own.clone(), "own".into()).await.unwrap();
    b.client.flush().await.unwrap();
    let first = tokio::time::timeout(PATIENCE, commands.next())
        .await
        .expect("a command")
        .expect("open");
    assert_eq!(first.subject.as_str(), own);
}

#[tokio::test]
async fn no_one_can_listen_to_another_inbox() {
    let net = Net::start().await;
    let mut b = net.partner(net.b).await;
    b.denied_subscription(&format!("{}.>", inbox_prefix(net.a))).await;
    b.denied_subscription("_INBOX.>").await;
    b.denied_subscription("_INBOX_*.>").await;
    // A client that forgets the inbox prefix cannot receive any reply.
    let mut careless = net.partner_with_inbox(net.b, "_INBOX").await;
    let reply = careless
        .client
        .request(command_subject(net.b, fresh(), "accept"), "{}".into())
        .await;
    assert!(reply.is_err());
    careless.expect_violation("_INBOX.").await;
}
