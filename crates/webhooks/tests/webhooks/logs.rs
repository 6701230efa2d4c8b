//! Logs never carry a message body, a secret or the endpoint URL (planted markers, searched in
//! everything this crate logs at every level, and its dependencies at info).

use crate::support::*;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const MARKER: &str = "MARKER-b0dy-5e1f";

#[tokio::test]
async fn logs_carry_no_body_secret_or_url() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        // Everything of ours, at every level; dependencies at info (async-nats logs whole
        // protocol frames, payloads included, at trace: never run a service at that level).
        .with_env_filter("info,wasl_webhooks=trace")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runs on one thread, so every task the worker spawns logs here too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let hub = Hub::start(test_config(2)).await;
    let org = fake_org(20);
    hub.feed(org).await;
    let receiver = Receiver::start().await;
    let secret = hub
        .webhooks
        .set_endpoint(org, &receiver.url, "test-admin")
        .await
        .unwrap();
    let worker = hub.worker();
    let marked = |n| fake_payload_with(n, &format!(r#","marker":"{MARKER}""#));
    receiver.poison(&fake_event_id(1));
    hub.publish_raw(org, 1, marked(1)).await;
    hub.publish_raw(org, 2, marked(2)).await;
    // Not a partner message, with the marker in its body: set aside, and not logged either.
    hub.publish_raw(org, 3, format!(r#"{{"marker":"{MARKER}"}}"#).into_bytes())
        .await;
    eventually("two dead letters and one delivery", || async {
        hub.webhooks.status(org).await.unwrap().dead_letters == 2 && receiver.delivered().len() == 1
    })
    .await;
    receiver.heal();
    let redelivered = hub.webhooks.redeliver_all(org).await.unwrap();
    assert_eq!((redelivered.delivered.len(), redelivered.invalid.len()), (1, 1));
    worker.stop().await;

    let logged = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("webhook attempt failed"), "the failures are logged");
    assert!(logged.contains("dead-lettered"));
    assert!(logged.contains("not a partner message"), "the poison is logged");
    for line in logged.lines().filter(|l| l.contains(MARKER)) {
        eprintln!("LEAK: {}", &line[..line.len().min(300)]);
    }
    assert!(!logged.contains(MARKER), "a body was logged");
    assert!(!logged.contains(&secret.expose()[6..]), "the secret was logged");
    assert!(!logged.contains(&receiver.url), "the URL was logged");
}
