//! Where webhooks may go (public addresses only, unless an operator allows a range; checked when
//! an endpoint is set and at every delivery; no redirect followed), and how the signing secrets
//! are kept (sealed, no history, an old bucket migrated on start).

use crate::support::*;
use async_nats::jetstream::{kv, stream};
use axum::http::{StatusCode, header};
use std::time::Duration;
use wasl_webhooks::{Destinations, Failure, IpNet, Secret, WebhookError, Webhooks, WebhooksConfig};

/// No range allowed: public addresses only, as in production by default.
fn strict(max_attempts: u32) -> WebhooksConfig {
    WebhooksConfig {
        destinations: Destinations::default(),
        ..test_config(max_attempts)
    }
}

#[tokio::test]
async fn endpoints_at_addresses_that_are_not_public_are_refused_unless_an_operator_allows_them() {
    let hub = Hub::start(strict(1)).await;
    let org = fake_org(60);
    let refused = [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.1.2.3/hook",
        "https://172.16.0.1/hook",
        "https://192.168.1.1/hook",
        "https://100.64.0.1/hook",
        "https://[fd00::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
    ];
    for url in refused {
        assert!(
            matches!(
                hub.webhooks.set_endpoint(org, url, "test-admin").await,
                Err(WebhookError::NotPublic)
            ),
            "{url} accepted"
        );
    }
    assert!(
        hub.webhooks.endpoint(org).await.unwrap().is_none(),
        "nothing was stored"
    );
    // A public address is accepted (only stored: no worker runs here).
    hub.webhooks
        .set_endpoint(org, "https://8.8.8.8/hook", "test-admin")
        .await
        .unwrap();

    // With loopback allowed (as every test receiver needs), loopback only.
    let loopback = Webhooks::connect(hub.js.clone(), test_config(1), secrets_key())
        .await
        .unwrap();
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
    ] {
        loopback.set_endpoint(org, url, "test-admin").await.unwrap();
    }
    for url in [
        "https://169.254.169.254/",
        "https://10.1.2.3/hook",
        "https://[fd00::1]/hook",
    ] {
        assert!(
            matches!(
                loopback.set_endpoint(org, url, "test-admin").await,
                Err(WebhookError::NotPublic)
            ),
            "{url} accepted with only loopback allowed"
        );
    }

    // An operator's range opens that range and nothing else.
    let private = WebhooksConfig {
        destinations: Destinations::new(["10.20.0.0/16".parse::<IpNet>().unwrap()]),
        ..strict(1)
    };
    let private = Webhooks::connect(hub.js.clone(), private, secrets_key()).await.unwrap();
    private
        .set_endpoint(org, "https://10.20.30.40/hook", "test-admin")
        .await
        .unwrap();
    assert!(matches!(
        private.set_endpoint(org, "https://10.21.0.1/hook", "test-admin").await,
        Err(WebhookError::NotPublic)
    ));
}

/// A receiver that answers every POST with a redirect to `location`, and counts them.
async fn redirector(location: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let (counted, location) = (counted.clone(), location.clone());
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                (StatusCode::FOUND, [(header::LOCATION, location)])
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("redirector");
    });
    (url, hits)
}

#[tokio::test]
async fn a_redirect_is_a_failed_delivery_and_is_never_followed() {
    let hub = Hub::start(test_config(2)).await;
    let org = fake_org(61);
    hub.feed(org).await;
    let target = Receiver::start().await;
    let (url, hits) = redirector(target.url.clone()).await;
    hub.webhooks.set_endpoint(org, &url, "test-admin").await.unwrap();
    let worker = hub.worker();
    hub.publish(org, 1).await;

    eventually("dead-lettered after its attempts", || async {
        hub.webhooks.status(org).await.unwrap().dead_letters == 1
    })
    .await;
    let dead = hub.webhooks.dead_letters(org).await.unwrap();
    assert_eq!(dead[0].last_failure, Some(Failure::Status(302)));
    assert_eq!(dead[0].attempts, 2);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(target.log().is_empty(), "the redirect's target was reached");
    // Nor by an administrator's redelivery.
    assert!(matches!(
        hub.webhooks.redeliver(org, dead[0].sequence).await,
        Err(WebhookError::DeliveryFailed(Failure::Status(302)))
    ));
    assert!(target.log().is_empty());
    worker.stop().await;
}

#[tokio::test]
async fn a_host_that_is_not_public_at_delivery_gets_nothing() {
    // Set while loopback was allowed; delivered by a worker that no longer allows it, as when
    // a name's DNS answer changes to a private address after the endpoint was set.
    let hub = Hub::start(test_config(1)).await;
    let (by_name, by_address) = (fake_org(62), fake_org(63));
    let receiver = Receiver::start().await;
    let port = receiver.url.trim_start_matches("http://127.0.0.1:");
    for (org, url) in [
        (by_name, format!("http://localhost:{port}")),
        (by_address, receiver.url.clone()),
    ] {
        hub.feed(org).await;
        hub.webhooks.set_endpoint(org, &url, "test-admin").await.unwrap();
    }

    // Allowed: the name resolves to loopback, which is checked, and the message arrives.
    let worker = hub.worker();
    hub.publish(by_name, 1).await;
    eventually("delivered while allowed", || async { receiver.delivered().len() == 1 }).await;
    worker.stop().await;

    let strict = Webhooks::connect(hub.js.clone(), strict(1), secrets_key())
        .await
        .unwrap();
    let worker = Hub::worker_of(strict.clone());
    hub.publish(by_name, 2).await;
    hub.publish(by_address, 3).await;
    for org in [by_name, by_address] {
        eventually("refused and dead-lettered", || async {
            strict.status(org).await.unwrap().dead_letters == 1
        })
        .await;
        let dead = strict.dead_letters(org).await.unwrap();
        assert_eq!(dead[0].last_failure, Some(Failure::NotPublic));
        let status = strict.status(org).await.unwrap();
        assert_eq!(status.last_failure.map(|f| f.failure), Some(Failure::NotPublic));
    }
    worker.stop().await;
    assert_eq!(receiver.log().len(), 1, "nothing reached the receiver after the first");
}

/// Every stored revision of the endpoint bucket, raw: what a backup copies.
async fn raw_endpoint_records(hub: &Hub) -> (stream::Info, Vec<String>) {
    let mut stream = hub.js.get_stream("KV_WASL_WEBHOOKS").await.unwrap();
    let info = stream.info().await.unwrap().clone();
    let mut records = Vec::new();
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        if let Ok(message) = stream.get_raw_message(sequence).await {
            records.push(String::from_utf8_lossy(&message.payload).into_owned());
        }
    }
    (info, records)
}

/// The part of a `whsec_…` that is the secret.
fn secret_part(secret: &Secret) -> String {
    secret.expose()[6..].to_owned()
}

#[tokio::test]
async fn the_bucket_holds_sealed_secrets_only_and_one_revision_per_endpoint() {
    let hub = Hub::start(test_config(3)).await;
    let (org, other) = (fake_org(64), fake_org(65));
    hub.feed(org).await;
    let receiver = Receiver::start().await;
    let mut issued = vec![
        hub.webhooks
            .set_endpoint(org, &receiver.url, "test-admin")
            .await
            .unwrap(),
    ];
    for _ in 0..3 {
        issued.push(
            hub.webhooks
                .rotate_secret(org, "test-admin", Duration::from_secs(3600))
                .await
                .unwrap(),
        );
    }
    issued.push(
        hub.webhooks
            .set_endpoint(other, &receiver.url, "test-admin")
            .await
            .unwrap(),
    );
    hub.webhooks.disable(other, "test-admin").await.unwrap();

    let (info, records) = raw_endpoint_records(&hub).await;
    assert_eq!(info.config.max_messages_per_subject, 1, "no history");
    assert_eq!(info.state.messages, 2, "one revision per endpoint");
    assert_eq!(records.len(), 2);
    for record in &records {
        for secret in &issued {
            assert!(!record.contains(&secret_part(secret)), "a secret in plain text");
        }
        assert!(record.contains("test-master"), "the master key id is recorded");
    }

    // Sealed, they still sign: the current and, during the overlap, the previous secret.
    let worker = hub.worker();
    hub.publish(org, 1).await;
    eventually("delivered", || async { receiver.delivered().len() == 1 }).await;
    let delivered = &receiver.delivered()[0];
    delivered.verify_with(&issued[3]).unwrap();
    delivered.verify_with(&issued[2]).unwrap();
    worker.stop().await;
}

#[tokio::test]
async fn a_bucket_from_before_sealing_is_sealed_and_its_history_dropped_on_start() {
    let server = wasl_testkit::NatsServer::start().expect("nats-server");
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let (org, other) = (fake_org(66), fake_org(67));
    let receiver = Receiver::start().await;
    // The bucket as it was: 64 revisions kept, secrets in plain text.
    let bucket = js
        .create_key_value(kv::Config {
            bucket: "WASL_WEBHOOKS".to_owned(),
            history: 64,
            ..Default::default()
        })
        .await
        .unwrap();
    let secrets: Vec<Secret> = (0..6).map(|_| Secret::generate().unwrap()).collect();
    let record = |current: &Secret, previous: Option<&Secret>| {
        let mut value = serde_json::json!({
            "url": receiver.url,
            "secret": current.expose().as_str(),
            "enabled": true,
            "updated_at": "2026-01-01T00:00:00.000Z",
            "updated_by": "test-admin",
            "change": "rotate",
        });
        if let Some(previous) = previous {
            value["previous_secret"] = previous.expose().as_str().into();
            value["previous_until"] = "2999-01-01T00:00:00.000Z".into();
        }
        serde_json::to_vec(&value).unwrap().into()
    };
    for pair in secrets[..5].windows(2) {
        bucket
            .put(org.to_string(), record(&pair[1], Some(&pair[0])))
            .await
            .unwrap();
    }
    bucket.put(other.to_string(), record(&secrets[5], None)).await.unwrap();
    let stream_name = "KV_WASL_WEBHOOKS";
    assert_eq!(
        js.get_stream(stream_name)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages,
        5
    );

    let webhooks = Webhooks::connect(js.clone(), test_config(3), secrets_key())
        .await
        .unwrap();
    let hub = Hub {
        _server: server,
        js: js.clone(),
        webhooks: webhooks.clone(),
    };
    let (info, records) = raw_endpoint_records(&hub).await;
    assert_eq!(info.config.max_messages_per_subject, 1);
    assert_eq!(info.state.messages, 2, "the old revisions are gone");
    for record in &records {
        for secret in &secrets {
            assert!(!record.contains(&secret_part(secret)), "a secret in plain text");
        }
    }
    // Connecting again finds nothing to do and changes nothing.
    Webhooks::connect(js.clone(), test_config(3), secrets_key())
        .await
        .unwrap();
    assert_eq!(raw_endpoint_records(&hub).await.1, records);

    // The sealed secrets are the same secrets: the last one and the one before it sign.
    hub.feed(org).await;
    let worker = hub.worker();
    hub.publish(org, 1).await;
    eventually("delivered", || async { receiver.delivered().len() == 1 }).await;
    let delivered = &receiver.delivered()[0];
    delivered.verify_with(&secrets[4]).unwrap();
    delivered.verify_with(&secrets[3]).unwrap();
    worker.stop().await;
}

#[tokio::test]
async fn secrets_sealed_by_one_master_key_do_not_open_with_another() {
    let hub = Hub::start(test_config(3)).await;
    let org = fake_org(68);
    hub.webhooks
        .set_endpoint(org, "https://8.8.8.8/hook", "test-admin")
        .await
        .unwrap();
    let other = wasl_webhooks::SecretsKey::from_master(
        &wasl_vault::LocalMasterKey::from_hex("other-master", MASTER_KEY).unwrap(),
    );
    let webhooks = Webhooks::connect(hub.js.clone(), test_config(3), other).await.unwrap();
    assert!(matches!(
        webhooks.rotate_secret(org, "test-admin", Duration::from_secs(60)).await,
        Err(WebhookError::WrongMasterKey { .. })
    ));
}
