//! What anyone allowed to publish can put in a feed or the endpoint bucket: set aside where an
//! administrator looks, never signed or sent, and the feed goes on.

use crate::support::*;
use async_nats::HeaderMap as NatsHeaders;
use std::time::Duration;
use wasl_webhooks::dead::PAYLOAD_DROPPED;
use wasl_webhooks::{Failure, Invalid, WebhookError};

fn msg_id(n: u128) -> Option<NatsHeaders> {
    let mut headers = NatsHeaders::new();
    headers.insert("Nats-Msg-Id", fake_event_id(n).as_str());
    Some(headers)
}

#[tokio::test]
async fn messages_that_are_not_partner_messages_are_dead_lettered_at_once_and_the_feed_goes_on() {
    let hub = Hub::start(test_config(3)).await;
    let org = fake_org(30);
    hub.feed(org).await;
    let receiver = Receiver::start().await;
    hub.webhooks
        .set_endpoint(org, &receiver.url, "test-admin")
        .await
        .unwrap();
    let worker = hub.worker();

    hub.publish(org, 1).await;
    // Headers trying to act on the dead-letter stream, or to pass for ours.
    let mut meddling = msg_id(16).unwrap();
    meddling.insert("nats-expected-last-sequence", "999");
    meddling.insert("Wasl-Webhook-Attempts", "99");
    let poison: Vec<(String, Option<NatsHeaders>, Vec<u8>, Invalid)> = vec![
        (
            feed_subject(org, 10),
            msg_id(10),
            b"\xff\xfe\x00 not json".to_vec(),
            Invalid::NotJson,
        ),
        (
            feed_subject(org, 11),
            msg_id(11),
            br#"{"hello":"world"}"#.to_vec(),
            Invalid::WrongShape,
        ),
        (
            feed_subject(org, 12),
            msg_id(12),
            br#""a JSON string""#.to_vec(),
            Invalid::WrongShape,
        ),
        (
            feed_subject(org, 13),
            msg_id(13),
            String::from_utf8(fake_payload(13))
                .unwrap()
                .replace("referral.v1", "referral.v9")
                .into_bytes(),
            Invalid::UnknownSchema,
        ),
        (feed_subject(org, 14), None, fake_payload(14), Invalid::MissingHeaders),
        (feed_subject(org, 99), msg_id(15), fake_payload(15), Invalid::Mismatch),
        (
            feed_subject(org, 16),
            Some(meddling),
            b"garbage".to_vec(),
            Invalid::NotJson,
        ),
    ];
    let mut poisoned = Vec::new();
    for (subject, headers, payload, invalid) in &poison {
        let sequence = hub
            .publish_exactly(subject.clone(), headers.clone(), payload.clone())
            .await;
        poisoned.push((sequence, subject.clone(), *invalid));
    }
    hub.publish(org, 2).await;

    eventually(
        "the messages before and after delivered, the others set aside",
        || async {
            receiver.delivered().len() == 2 && hub.webhooks.dead_letters(org).await.unwrap().len() == poison.len()
        },
    )
    .await;
    let log = receiver.log();
    assert_eq!(log.len(), 2, "nothing else was ever sent");
    assert_eq!(log[0].body.as_ref(), fake_payload(1).as_slice());
    assert_eq!(log[1].body.as_ref(), fake_payload(2).as_slice());

    let dead = hub.webhooks.dead_letters(org).await.unwrap();
    for (letter, (_, subject, invalid)) in dead.iter().zip(&poisoned) {
        assert_eq!(letter.last_failure, Some(Failure::Invalid(*invalid)), "{subject}");
        assert_eq!(letter.attempts, 0, "never attempted");
        assert_eq!(&letter.subject, subject);
    }
    let status = hub.webhooks.status(org).await.unwrap();
    assert_eq!(status.dead_letters, poison.len() as u64);
    assert_eq!(status.pending, Some(0));
    assert_eq!(status.consecutive_failures, 0, "the endpoint did not fail");

    // Never sent, not even on request; the rest of a redelivery goes on.
    assert!(matches!(
        hub.webhooks.redeliver(org, dead[0].sequence).await,
        Err(WebhookError::NotPartnerMessage(Invalid::NotJson))
    ));
    let report = hub.webhooks.redeliver_all(org).await.unwrap();
    assert!(report.delivered.is_empty() && report.failed.is_none());
    assert_eq!(report.invalid.len(), poison.len());
    assert_eq!(report.remaining, poison.len() as u64);
    assert_eq!(receiver.log().len(), 2);

    // And the worker still delivers.
    hub.publish(org, 3).await;
    eventually("a later message delivered", || async {
        receiver.delivered().len() == 3
    })
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn a_message_too_big_for_its_dead_letter_is_kept_without_its_payload() {
    let hub = Hub::start(test_config(3)).await;
    let org = fake_org(31);
    hub.feed(org).await;
    let receiver = Receiver::start().await;
    hub.webhooks
        .set_endpoint(org, &receiver.url, "test-admin")
        .await
        .unwrap();
    let worker = hub.worker();

    // As big as the server takes: with the dead letter's headers it no longer fits.
    let size = hub.js.client().server_info().max_payload - 64;
    let sequence = hub.publish_exactly(feed_subject(org, 1), None, vec![b'x'; size]).await;
    hub.publish(org, 2).await;
    eventually("the next message delivered", || async {
        receiver.delivered().len() == 1
    })
    .await;
    assert_eq!(receiver.delivered()[0].body.as_ref(), fake_payload(2).as_slice());
    let dead = hub.webhooks.dead_letters(org).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_failure, Some(Failure::Invalid(Invalid::NotJson)));
    let stored = hub
        .js
        .get_stream(hub.webhooks.config().dead_stream.as_str())
        .await
        .unwrap()
        .direct_get(dead[0].sequence)
        .await
        .unwrap();
    assert!(stored.payload.is_empty());
    assert_eq!(
        stored.headers.get(PAYLOAD_DROPPED).map(|v| v.as_str().to_owned()),
        Some(size.to_string())
    );
    assert_eq!(
        stored
            .headers
            .get(wasl_webhooks::dead::SOURCE_SEQUENCE)
            .map(|v| v.as_str().to_owned()),
        Some(sequence.to_string())
    );
    worker.stop().await;
}

#[tokio::test]
async fn an_unreadable_endpoint_counts_as_none_until_it_is_set_again() {
    let hub = Hub::start(test_config(3)).await;
    let (a, b) = (fake_org(32), fake_org(33));
    hub.feed(a).await;
    hub.feed(b).await;
    let (to_a, to_b) = (Receiver::start().await, Receiver::start().await);
    for (org, receiver) in [(a, &to_a), (b, &to_b)] {
        hub.webhooks
            .set_endpoint(org, &receiver.url, "test-admin")
            .await
            .unwrap();
    }
    let worker = hub.worker();
    hub.publish(a, 1).await;
    hub.publish(b, 2).await;
    eventually("both delivered", || async {
        to_a.delivered().len() == 1 && to_b.delivered().len() == 1
    })
    .await;

    let bucket = hub
        .js
        .get_key_value(hub.webhooks.config().endpoints_bucket.as_str())
        .await
        .unwrap();
    bucket
        .put(a.to_string(), b"\xff not an endpoint".as_ref().into())
        .await
        .unwrap();
    bucket.put("not-an-org", br#"{"url":1}"#.as_ref().into()).await.unwrap();
    // A change after those: once it is in effect, so are they (the bucket is watched in order).
    let new_secret = hub.webhooks.set_endpoint(b, &to_b.url, "test-admin").await.unwrap();
    to_b.expect_secret(&new_secret);
    hub.publish(b, 3).await;
    eventually("b's new secret in use", || async { to_b.delivered().len() == 2 }).await;

    hub.publish(a, 4).await;
    hub.publish(b, 5).await;
    eventually("b goes on", || async { to_b.delivered().len() == 3 }).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        to_a.log().len(),
        1,
        "nothing is sent with an endpoint that cannot be read"
    );
    assert!(matches!(hub.webhooks.status(a).await, Err(WebhookError::Corrupt(_))));

    hub.webhooks.set_endpoint(a, &to_a.url, "test-admin").await.unwrap();
    eventually("a resumes where it stopped", || async { to_a.delivered().len() == 2 }).await;
    assert_eq!(to_a.delivered()[1].body.as_ref(), fake_payload(4).as_slice());
    worker.stop().await;
}
