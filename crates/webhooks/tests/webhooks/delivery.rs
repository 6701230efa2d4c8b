//! Delivery: retries, signatures, order, dead letters and redelivery, crashes, rotation;
//! redaction notices like referral messages.

use crate::support::*;
use std::time::Duration;
use wasl_webhooks::{DEFAULT_TOLERANCE, Failure, Secret, VerifyError, WebhookError, verify};

#[tokio::test]
async fn receiver_failing_three_times_gets_the_message_once_it_recovers_with_a_valid_signature() {
    let hub = Hub::start(test_config(6)).await;
    let org = fake_org(1);
    hub.feed(org).await;
    // The worker runs before the endpoint exists: it picks it up from the bucket.
    let worker = hub.worker();
    let receiver = Receiver::start().await;
    receiver.fail_next(3);
    let secret = hub
        .webhooks
        .set_endpoint(org, &receiver.url, "test-admin")
        .await
        .unwrap();
    hub.publish(org, 1).await;

    eventually("the message is delivered", || async {
        !receiver.delivered().is_empty()
    })
    .await;
    let log = receiver.log();
    assert_eq!(log.len(), 4, "three failures then one success");
    assert!(log[..3].iter().all(|r| r.status == 503));
    let delivered = &log[3];
    assert_eq!(
        delivered.body.as_ref(),
        fake_payload(1).as_slice(),
        "exactly the payload"
    );
    assert_eq!(delivered.headers["content-type"], "application/json");
    // The same webhook-id on every attempt: the source event id.
    assert!(log.iter().all(|r| r.id() == fake_event_id(1)));
    delivered.verify_with(&secret).unwrap();

    // The shipped verifier refuses a tampered body, a wrong secret and an old timestamp.
    let mut tampered = delivered.body.to_vec();
    let last = tampered.len() - 2;
    tampered[last] ^= 1;
    assert_eq!(
        verify(&secret, &delivered.headers, &tampered, delivered.at, DEFAULT_TOLERANCE),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        delivered.verify_with(&Secret::generate().unwrap()),
        Err(VerifyError::BadSignature)
    );
    let replayed_later = delivered.at + DEFAULT_TOLERANCE + Duration::from_secs(1);
    assert_eq!(
        verify(
            &secret,
            &delivered.headers,
            &delivered.body,
            replayed_later,
            DEFAULT_TOLERANCE
        ),
        Err(VerifyError::TimestampTooOld)
    );

    eventually("the status shows the success", || async {
        let status = hub.webhooks.status(org).await.unwrap();
        status.pending == Some(0) && status.consecutive_failures == 0 && status.last_success_at.is_some()
    })
    .await;
    let status = hub.webhooks.status(org).await.unwrap();
    assert_eq!(status.url.as_deref(), Some(receiver.url.as_str()));
    assert!(status.enabled);
    assert_eq!(status.last_failure.map(|f| f.failure), Some(Failure::Status(503)));
    assert_eq!(status.dead_letters, 0);
    worker.stop().await;
}

#[tokio::test]
async fn order_is_kept_across_messages() {
    let hub = Hub::start(test_config(10)).await;
    let org = fake_org(2);
    hub.feed(org).await;
    let receiver = Receiver::start().await;
    hub.webhooks
        .set_endpoint(org, &receiver.url, "test-admin")
        .await
        .unwrap();
    for n in 1..=6 {
        hub.publish(org, n).await;
    }
    // The first messages meet a failing receiver and are retried while the rest wait.
    receiver.fail_next(4);
    let worker = hub.worker();
    eventually("all six are delivered", || async { receiver.delivered().len() == 6 }).await;
    let delivered: Vec<String> = receiver.delivered().iter().map(|r| r.id().to_owned()).collect();
    let expected: Vec<String> = (1..=6).map(fake_event_id).collect();
    assert_eq!(delivered, expected);
    // Never an attempt for a later message before the earlier one succeeded.
    let attempted: Vec<String> = receiver.log().iter().map(|r| r.id().to_owned()).collect();
    let mut sorted = attempted.clone();
    sorted.sort();
    assert_eq!(attempted, sorted);
    worker.stop().await;
}

#[tokio::test]
async fn failing_messages_are_dead_lettered_then_redelivered_once_the_receiver_recovers() {
    let hub = Hub::start(test_config(3)).await;
    let org = fake_org(3);
    hub.feed(org).await;
    let receiver = Receiver::start().await;
    receiver.poison(&fake_event_id(1));
    receiver.poison(&fake_event_id(3));
    let secret = hub
        .webhooks
        .set_endpoint(org, &receiver.url, "test-admin")
        .await
        .unwrap();
    for n in 1..=3 {
        hub.publish(org, n).await;
    }
    let worker = hub.worker();

    eventually("two dead letters", || async {
        hub.webhooks.status(org).await.unwrap().dead_letters == 2
    })
    .await;
    // The worker moved on: message 2 was delivered after message 1 was given up.
    let log = receiver.log();
    assert_eq!(receiver.attempts_for(&fake_event_id(1)), 3);
    assert_eq!(receiver.attempts_for(&fake_event_id(3)), 3);
    let first_two = log.iter().position(|r| r.id() == fake_event_id(2)).unwrap();
    let last_one = log.iter().rposition(|r| r.id() == fake_event_id(1)).unwrap();
    assert!(last_one < first_two);
    assert_eq!(receiver.delivered().len(), 1);

    eventually("nothing pending", || async {
        hub.webhooks.status(org).await.unwrap().pending == Some(0)
    })
    .await;
    let status = hub.webhooks.status(org).await.unwrap();
    assert_eq!(status.last_failure.map(|f| f.failure), Some(Failure::Status(503)));
    assert_eq!(status.consecutive_failures, 3);

    let letters = hub.webhooks.dead_letters(org).await.unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].webhook_id, fake_event_id(1));
    assert_eq!(letters[1].webhook_id, fake_event_id(3));
    assert!(
        letters
            .iter()
            .all(|l| l.attempts == 3 && l.last_failure == Some(Failure::Status(503)))
    );
    assert!(letters[0].subject.starts_with(&format!("wasl.out.{org}.referral.")));

    // Still failing: the dead letter stays.
    let refused = hub.webhooks.redeliver(org, letters[0].sequence).await;
    assert!(matches!(
        refused,
        Err(WebhookError::DeliveryFailed(Failure::Status(503)))
    ));
    assert_eq!(hub.webhooks.dead_letters(org).await.unwrap().len(), 2);
    // Not a dead letter of this organisation.
    assert!(matches!(
        hub.webhooks.redeliver(fake_org(99), letters[0].sequence).await,
        Err(WebhookError::NoDeadLetter { .. })
    ));

    receiver.heal();
    hub.webhooks.redeliver(org, letters[0].sequence).await.unwrap();
    let redelivered = receiver.delivered().pop().unwrap();
    assert_eq!(redelivered.id(), fake_event_id(1));
    assert_eq!(redelivered.body.as_ref(), fake_payload(1).as_slice());
    redelivered.verify_with(&secret).unwrap();
    assert!(matches!(
        hub.webhooks.redeliver(org, letters[0].sequence).await,
        Err(WebhookError::NoDeadLetter { .. })
    ));

    let report = hub.webhooks.redeliver_all(org).await.unwrap();
    assert_eq!(report.delivered, vec![letters[1].sequence]);
    assert_eq!((report.failed, report.remaining), (None, 0));
    let status = hub.webhooks.status(org).await.unwrap();
    assert_eq!((status.dead_letters, status.consecutive_failures), (0, 0));
    let ids: Vec<String> = receiver.delivered().iter().map(|r| r.id().to_owned()).collect();
    assert_eq!(ids, [fake_event_id(2), fake_event_id(1), fake_event_id(3)]);
    worker.stop().await;
}

#[tokio::test]
async fn a_worker_killed_mid_retry_leaves_the_message_to_the_next_one() {
    let hub = Hub::start(test_config(1000)).await;
    let org = fake_org(4);
    hub.feed(org).await;
    let receiver = Receiver::start().await;
    receiver.always_fail(true);
    let secret = hub
        .webhooks
        .set_endpoint(org, &receiver.url, "test-admin")
        .await
        .unwrap();
    hub.publish(org, 1).await;
    let worker = hub.worker();
    eventually("a few failed attempts", || async { receiver.log().len() >= 3 }).await;
    worker.kill().await;

    receiver.heal();
    let worker = hub.worker();
    eventually("the message is delivered", || async {
        !receiver.delivered().is_empty()
    })
    .await;
    let delivered = receiver.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].id(), fake_event_id(1));
    assert_eq!(delivered[0].body.as_ref(), fake_payload(1).as_slice());
    delivered[0].verify_with(&secret).unwrap();
    assert_eq!(hub.webhooks.status(org).await.unwrap().dead_letters, 0);
    worker.stop().await;
}

#[tokio::test]
async fn a_rotated_secret_signs_the_next_delivery() {
    let hub = Hub::start(test_config(50)).await;
    let org = fake_org(5);
    hub.feed(org).await;
    let receiver = Receiver::start().await;
    let first = hub
        .webhooks
        .set_endpoint(org, &receiver.url, "test-admin")
        .await
        .unwrap();
    receiver.expect_secret(&first);
    let worker = hub.worker();
    hub.publish(org, 1).await;
    eventually("message 1", || async { receiver.delivered().len() == 1 }).await;

    // The receiver switches to the new secret at once; no overlap.
    let second = hub
        .webhooks
        .rotate_secret(org, "test-admin", Duration::ZERO)
        .await
        .unwrap();
    assert_ne!(first, second);
    receiver.expect_secret(&second);
    hub.publish(org, 2).await;
    eventually("message 2", || async { receiver.delivered().len() == 2 }).await;
    let delivered = receiver.delivered().pop().unwrap();
    assert_eq!(delivered.id(), fake_event_id(2));
    delivered.verify_with(&second).unwrap();
    assert_eq!(delivered.verify_with(&first), Err(VerifyError::BadSignature));

    // With an overlap, both the new and the previous secret sign.
    let third = hub
        .webhooks
        .rotate_secret(org, "test-admin", Duration::from_secs(3600))
        .await
        .unwrap();
    receiver.expect_secret(&third);
    hub.publish(org, 3).await;
    eventually("message 3", || async { receiver.delivered().len() == 3 }).await;
    let delivered = receiver.delivered().pop().unwrap();
    delivered.verify_with(&third).unwrap();
    delivered.verify_with(&second).unwrap();
    assert_eq!(delivered.verify_with(&first), Err(VerifyError::BadSignature));
    let signatures = delivered.headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2);
    worker.stop().await;
}

#[tokio::test]
async fn a_redaction_notice_is_delivered_signed_once_in_its_place() {
    let hub = Hub::start(test_config(6)).await;
    let org = fake_org(40);
    hub.feed(org).await;
    let receiver = Receiver::start().await;
    let secret = hub
        .webhooks
        .set_endpoint(org, &receiver.url, "test-admin")
        .await
        .unwrap();
    // The referrals, the notice naming two of them (its first attempt fails), a later message.
    hub.publish(org, 1).await;
    hub.publish(org, 2).await;
    receiver.poison(&fake_notice_id(1));
    hub.publish_notice(org, 1, &[1, 2]).await;
    hub.publish(org, 3).await;
    let worker = hub.worker();
    eventually("the notice is tried", || async {
        receiver.attempts_for(&fake_notice_id(1)) >= 1
    })
    .await;
    receiver.heal();
    eventually("all four are delivered", || async { receiver.delivered().len() == 4 }).await;
    worker.stop().await;

    let delivered = receiver.delivered();
    let ids: Vec<&str> = delivered.iter().map(Received::id).collect();
    assert_eq!(
        ids,
        [
            fake_event_id(1).as_str(),
            fake_event_id(2).as_str(),
            fake_notice_id(1).as_str(),
            fake_event_id(3).as_str()
        ],
        "in feed order, each once"
    );
    let notice = &delivered[2];
    assert_eq!(
        notice.body.as_ref(),
        fake_notice(1, &[1, 2]).as_slice(),
        "exactly the payload"
    );
    assert_eq!(notice.headers["content-type"], "application/json");
    notice.verify_with(&secret).unwrap();
    assert!(
        receiver
            .log()
            .iter()
            .filter(|r| r.id() == fake_notice_id(1))
            .all(|r| r.verify_with(&secret).is_ok()),
        "every attempt signed, under the same id"
    );
    assert!(hub.webhooks.dead_letters(org).await.unwrap().is_empty());
}
