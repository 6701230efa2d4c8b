//! The delivery worker. It watches the endpoint bucket; for each organisation with an enabled
//! endpoint a task keeps a durable pull consumer (explicit ack, one message outstanding) on the
//! organisation's feed `WASL_OUT_<org>` and POSTs each message in order, retrying with backoff,
//! until a 2xx — or until the attempts run out and the message is stored as a dead letter. Only
//! then is the message acknowledged, so a worker that dies mid-way leaves it to be delivered again
//! (at least once; receivers dedupe on `webhook-id`). While it holds a message the task tells the
//! server it is still working on it (every third of the ack wait).
//!
//! Because the consumer allows one unacknowledged message, order is kept per organisation even
//! with several workers on the same consumer (the others wait).

use crate::dead::{Giving, dead_subject};
use crate::delivery::Failure;
use crate::endpoint::{Endpoint, StoredEndpoint};
use crate::error::WebhookError;
use crate::service::Webhooks;
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind, kv};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use wasl_domain::ids::OrgId;
use wasl_events::partner::out_stream;

/// The header the router puts the source event id in; it becomes the `webhook-id`.
const MSG_ID: &str = "Nats-Msg-Id";

/// What the supervisor tells an organisation's task: the endpoint to use, or `None` to stop.
type EndpointTx = watch::Sender<Option<Endpoint>>;
type EndpointRx = watch::Receiver<Option<Endpoint>>;

struct Running {
    endpoint: EndpointTx,
    revision: u64,
}

impl Webhooks {
    /// Runs the delivery worker until `shutdown` completes, then hands back the messages in
    /// flight (they are delivered again by the next worker) and returns. Endpoints added,
    /// changed, disabled or removed while it runs take effect at once (the bucket is watched);
    /// a changed endpoint also cuts a pending backoff short.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<(), WebhookError> {
        let mut shutdown = pin!(shutdown);
        let mut running: HashMap<OrgId, Running> = HashMap::new();
        let mut tasks = JoinSet::new();
        tracing::info!("webhook worker started");
        'watching: loop {
            match self.inner.endpoints.watch_with_history(">").await {
                Ok(mut watch) => loop {
                    tokio::select! {
                        () = &mut shutdown => break 'watching,
                        entry = watch.next() => match entry {
                            Some(Ok(entry)) => self.apply(entry, &mut running, &mut tasks),
                            Some(Err(err)) => {
                                tracing::warn!(error = %err, "endpoint watch failed; watching again");
                                break;
                            }
                            None => break,
                        },
                        Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                            if let Err(err) = joined
                                && err.is_panic()
                            {
                                tracing::error!("a webhook delivery task panicked; it restarts on the next endpoint change");
                            }
                        }
                    }
                },
                Err(err) => tracing::warn!(error = %err, "cannot watch the endpoints"),
            }
            tokio::select! {
                () = &mut shutdown => break 'watching,
                () = tokio::time::sleep(self.inner.config.retry_nats_after) => {}
            }
        }
        for task in running.values() {
            task.endpoint.send_replace(None);
        }
        let drained = tokio::time::timeout(self.inner.config.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.abort_all();
        }
        tracing::info!("webhook worker stopped");
        Ok(())
    }

    fn apply(&self, entry: kv::Entry, running: &mut HashMap<OrgId, Running>, tasks: &mut JoinSet<()>) {
        let Ok(org) = OrgId::parse(&entry.key) else {
            tracing::warn!("an endpoint key is not an organisation id; skipped");
            return;
        };
        let bucket = &self.inner.config.endpoints_bucket;
        let endpoint = match entry.operation {
            kv::Operation::Put => match StoredEndpoint::decode(&entry.value, bucket) {
                Ok(record) if record.enabled => match record.endpoint(bucket) {
                    Ok(endpoint) => Some(endpoint),
                    Err(err) => {
                        tracing::warn!(org = %org, error = %err, "unusable webhook endpoint; not delivering");
                        None
                    }
                },
                Ok(_) => None,
                Err(err) => {
                    tracing::warn!(org = %org, error = %err, "unreadable webhook endpoint; not delivering");
                    None
                }
            },
            kv::Operation::Delete | kv::Operation::Purge => None,
        };
        match (endpoint, running.get_mut(&org)) {
            (None, _) => {
                if let Some(task) = running.remove(&org) {
                    task.endpoint.send_replace(None);
                    tracing::info!(org = %org, "webhook deliveries stopped");
                }
            }
            (Some(endpoint), Some(task)) if !task.endpoint.is_closed() => {
                // A watcher started again replays what the task has already.
                if entry.revision > task.revision {
                    task.revision = entry.revision;
                    task.endpoint.send_replace(Some(endpoint));
                    tracing::info!(org = %org, "webhook endpoint updated");
                }
            }
            (Some(endpoint), _) => {
                let (tx, rx) = watch::channel(Some(endpoint));
                running.insert(
                    org,
                    Running {
                        endpoint: tx,
                        revision: entry.revision,
                    },
                );
                tasks.spawn(org_task(self.clone(), org, rx));
                tracing::info!(org = %org, "webhook deliveries started");
            }
        }
    }
}

/// Resolves when the endpoint is taken away (or the supervisor is gone).
async fn stopped(endpoint: &mut EndpointRx) {
    loop {
        if endpoint.borrow_and_update().is_none() {
            return;
        }
        if endpoint.changed().await.is_err() {
            return;
        }
    }
}

async fn org_task(webhooks: Webhooks, org: OrgId, mut endpoint: EndpointRx) {
    loop {
        match feed(&webhooks, org, &mut endpoint).await {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(org = %org, error = %err, "webhook feed unavailable; trying again");
                tokio::select! {
                    () = stopped(&mut endpoint) => return,
                    () = tokio::time::sleep(webhooks.inner.config.retry_nats_after) => {}
                }
            }
        }
    }
}

/// Consumes `org`'s feed until the endpoint is taken away (`Ok`) or NATS fails (`Err`).
async fn feed(webhooks: &Webhooks, org: OrgId, endpoint: &mut EndpointRx) -> Result<(), WebhookError> {
    let config = &webhooks.inner.config;
    let stream = webhooks
        .inner
        .js
        .get_stream(out_stream(org))
        .await
        .map_err(WebhookError::unavailable)?;
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(config.consumer.clone()),
            description: Some("Wasl webhook delivery".to_owned()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: config.ack_wait,
            // One message in flight per organisation: order is kept, even across workers.
            max_ack_pending: 1,
            max_deliver: -1,
            ..Default::default()
        })
        .await
        .map_err(WebhookError::unavailable)?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1)
        .messages()
        .await
        .map_err(WebhookError::unavailable)?;
    loop {
        let next = tokio::select! {
            () = stopped(endpoint) => return Ok(()),
            next = messages.next() => next,
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(err)) => return Err(WebhookError::unavailable(err)),
            None => return Err(WebhookError::Unavailable("the feed's consumer ended".to_owned())),
        };
        if let Handled::Stopped = deliver(webhooks, org, &message, endpoint).await? {
            return Ok(());
        }
    }
}

enum Handled {
    /// Delivered or dead-lettered, and acknowledged.
    Done,
    /// The endpoint was taken away; the message was handed back.
    Stopped,
}

/// The `webhook-id`: the router's `Nats-Msg-Id` (the source event id) when it is a usable token.
fn webhook_id(message: &jetstream::Message, org: OrgId, sequence: u64) -> String {
    let id = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(MSG_ID))
        .map(|value| value.as_str().to_owned());
    match id {
        Some(id) if !id.is_empty() && id.len() <= 200 && id.bytes().all(|b| b.is_ascii_graphic() && b != b'.') => id,
        _ => format!("wasl-{org}-{sequence}"),
    }
}

/// Runs `work` while telling the server every third of the ack wait that the message is still
/// being worked on.
async fn with_progress<F: Future>(
    message: &jetstream::Message,
    ack_wait: Duration,
    work: F,
) -> Result<F::Output, WebhookError> {
    let every = (ack_wait / 3).max(Duration::from_millis(50));
    let mut work = pin!(work);
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    loop {
        tokio::select! {
            output = &mut work => return Ok(output),
            _ = ticker.tick() => message
                .ack_with(AckKind::Progress)
                .await
                .map_err(WebhookError::unavailable)?,
        }
    }
}

async fn hand_back(message: &jetstream::Message) -> Handled {
    // Delivered again at once to whoever consumes next; if this fails, after the ack wait.
    let _ = message.ack_with(AckKind::Nak(None)).await;
    Handled::Stopped
}

async fn deliver(
    webhooks: &Webhooks,
    org: OrgId,
    message: &jetstream::Message,
    endpoint: &mut EndpointRx,
) -> Result<Handled, WebhookError> {
    let config = &webhooks.inner.config;
    let sequence = message.info().map_err(WebhookError::unavailable)?.stream_sequence;
    let id = webhook_id(message, org, sequence);
    let mut failures: u32 = 0;
    loop {
        let Some(current) = endpoint.borrow_and_update().clone() else {
            return Ok(hand_back(message).await);
        };
        let now = SystemTime::now();
        let attempt = async {
            tokio::select! {
                () = stopped(endpoint) => None,
                outcome = webhooks.inner.poster.post(&current, &id, &message.payload, now) => Some(outcome),
            }
        };
        let Some(outcome) = with_progress(message, config.ack_wait, attempt).await? else {
            return Ok(hand_back(message).await);
        };
        let mut status = webhooks.status_record(org).await;
        let failure = match outcome {
            Ok(_) => {
                wasl_telemetry::metrics::webhook_delivered();
                message.double_ack().await.map_err(WebhookError::unavailable)?;
                status.succeeded(now);
                webhooks.save_status(org, &status).await;
                tracing::debug!(org = %org, webhook_id = %id, attempts = failures + 1, "webhook delivered");
                return Ok(Handled::Done);
            }
            Err(failure) => failure,
        };
        failures += 1;
        wasl_telemetry::metrics::webhook_failed(failure.code());
        status.failed(now, failure);
        webhooks.save_status(org, &status).await;
        tracing::warn!(org = %org, webhook_id = %id, attempt = failures, failure = %failure, "webhook attempt failed");
        if failures >= config.retry.max_attempts.max(1) {
            dead_letter(webhooks, org, message, &id, sequence, failures, failure).await?;
            wasl_telemetry::metrics::webhook_dead_letter();
            message.double_ack().await.map_err(WebhookError::unavailable)?;
            tracing::warn!(org = %org, webhook_id = %id, attempts = failures, "webhook dead-lettered");
            return Ok(Handled::Done);
        }
        let delay = config.retry.delay(failures);
        let wait = async {
            tokio::select! {
                () = tokio::time::sleep(delay) => true,
                changed = endpoint.changed() => changed.is_ok(),
            }
        };
        if !with_progress(message, config.ack_wait, wait).await? {
            return Ok(hand_back(message).await);
        }
    }
}

async fn dead_letter(
    webhooks: &Webhooks,
    org: OrgId,
    message: &jetstream::Message,
    id: &str,
    sequence: u64,
    attempts: u32,
    last_failure: Failure,
) -> Result<(), WebhookError> {
    let giving = Giving {
        org,
        webhook_id: id,
        subject: message.subject.as_str(),
        source_sequence: sequence,
        attempts,
        last_failure,
        original: message.headers.as_ref(),
    };
    let ack = webhooks
        .inner
        .js
        .publish_with_headers(
            dead_subject(org),
            giving.headers(SystemTime::now()),
            message.payload.clone(),
        )
        .await
        .map_err(WebhookError::unavailable)?;
    // Stored (acknowledged by the stream) before the original is acknowledged.
    ack.await.map_err(WebhookError::unavailable)?;
    Ok(())
}
