//! Endpoint administration: validation, listing, the last change, disabling.

use crate::support::*;
use wasl_webhooks::{Change, WebhookError};

#[tokio::test]
async fn endpoints_are_validated_listed_and_their_last_change_recorded() {
    let hub = Hub::start(test_config(3)).await;
    let org = fake_org(10);
    assert!(matches!(
        hub.webhooks
            .set_endpoint(org, "http://partner.example/hook", "test-admin")
            .await,
        Err(WebhookError::InvalidUrl(_))
    ));
    assert!(matches!(
        hub.webhooks.disable(org, "test-admin").await,
        Err(WebhookError::NoEndpoint(_))
    ));
    assert!(hub.webhooks.endpoint(org).await.unwrap().is_none());

    let secret = hub
        .webhooks
        .set_endpoint(org, "https://partner.example/hook", "test-admin")
        .await
        .unwrap();
    hub.webhooks
        .rotate_secret(org, "test-rotator", std::time::Duration::ZERO)
        .await
        .unwrap();
    hub.webhooks.disable(org, "test-admin").await.unwrap();
    hub.webhooks
        .set_endpoint(fake_org(11), "http://127.0.0.1:9/hook", "test-admin")
        .await
        .unwrap();

    let listed = hub.webhooks.list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].org, org);
    assert_eq!(listed[0].url, "https://partner.example/hook");
    assert!(!listed[0].enabled);
    assert!(listed[1].enabled);
    // Nothing shown carries the secret.
    let shown = format!("{listed:?} {:?}", hub.webhooks.status_all().await.unwrap());
    assert!(!shown.contains(&secret.expose()[6..]));
    assert!(!format!("{secret:?}").contains(&secret.expose()[6..]));

    // The last change is on record (earlier ones are not kept: they would keep old secrets).
    let info = hub.webhooks.endpoint(org).await.unwrap().unwrap();
    assert_eq!((info.change, info.updated_by.as_str()), (Change::Disable, "test-admin"));

    let status = hub.webhooks.status(org).await.unwrap();
    assert!(!status.enabled);
    assert_eq!(status.pending, None, "no feed yet");
    assert_eq!(status.dead_letters, 0);
}

#[tokio::test]
async fn a_disabled_endpoint_holds_its_messages_until_enabled() {
    let hub = Hub::start(test_config(3)).await;
    let org = fake_org(12);
    hub.feed(org).await;
    let receiver = Receiver::start().await;
    hub.webhooks
        .set_endpoint(org, &receiver.url, "test-admin")
        .await
        .unwrap();
    hub.webhooks.disable(org, "test-admin").await.unwrap();
    let worker = hub.worker();
    hub.publish(org, 1).await;
    hub.publish(org, 2).await;
    eventually("both pending", || async {
        hub.webhooks.status(org).await.unwrap().pending == Some(2)
    })
    .await;
    assert!(receiver.log().is_empty());

    hub.webhooks.enable(org, "test-admin").await.unwrap();
    eventually("both delivered", || async { receiver.delivered().len() == 2 }).await;
    eventually("nothing pending", || async {
        hub.webhooks.status(org).await.unwrap().pending == Some(0)
    })
    .await;
    worker.stop().await;
}
