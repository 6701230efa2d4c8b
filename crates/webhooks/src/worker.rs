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
//!
//! Anyone who may publish to a feed's subjects can put anything there. A message that is not a
//! partner message — a referral message or a redaction notice — ([`check`]: not JSON, another
//! shape or schema, no `Nats-Msg-Id`, headers or subject naming another message) is never signed
//! or sent: it is dead-lettered at once with
//! the reason ([`Failure::Invalid`]), logged by sequence and counted, and the feed goes on.
//! An endpoint value that cannot be read counts as no endpoint (nothing is delivered until it
//! is set again), logged and counted likewise.

use crate::dead::{Giving, PAYLOAD_DROPPED, dead_subject};
use crate::delivery::{Failure, Invalid};
use crate::endpoint::{Endpoint, StoredEndpoint};
use crate::error::WebhookError;
use crate::service::Webhooks;
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, AckKind, kv};
use futures_util::StreamExt;
use serde::Deserialize;
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use wasl_domain::ids::{OrgId, ReferralId};
use wasl_events::partner::{out_stream, out_subject, redaction_subject};

/// The header the router puts the message's id in (a referral message's source event id, a
/// redaction notice's id); it becomes the `webhook-id`.
const MSG_ID: &str = "Nats-Msg-Id";

/// The schema name of partner messages about a referral event (`wasl_router::message::SCHEMA`;
/// the wire contract of docs/partners.md, which this crate forwards byte for byte without
/// depending on the router).
const PARTNER_SCHEMA: &str = "wasl.partner.referral.v1";

/// The schema name of redaction notices (`wasl_router::message::REDACTION_SCHEMA`).
const REDACTION_SCHEMA: &str = "wasl.partner.redaction.v1";

/// What the worker reads of a partner message: enough to know that it is one and that its
/// headers and subject are its own. Other fields are the router's business (and new optional
/// ones may appear), so they are neither required nor refused here.
#[derive(Deserialize)]
#[allow(dead_code, reason = "event_type, version and status are read only to require them")]
struct Envelope {
    event_id: String,
    event_type: String,
    referral_id: String,
    version: u64,
    status: String,
}

/// What the worker reads of a redaction notice, in the same spirit as [`Envelope`].
#[derive(Deserialize)]
#[allow(dead_code, reason = "event_type and occurred_at are read only to require them")]
struct Notice {
    notice_id: String,
    event_type: String,
    occurred_at: String,
    referral_ids: Vec<String>,
    redact: bool,
}

/// Whether a message of `org`'s feed is a partner message the router wrote: a JSON object of
/// schema `wasl.partner.referral.v1` with its ids, a `Nats-Msg-Id` equal to its `event_id`, on
/// the subject of its referral; or of schema `wasl.partner.redaction.v1` naming at least one
/// referral, with `redact` true, a `Nats-Msg-Id` equal to its `notice_id`, on the subject of the
/// notice. Checked for the worst a stranger can publish, not for every field.
pub(crate) fn check(org: OrgId, subject: &str, msg_id: Option<&str>, payload: &[u8]) -> Result<(), Invalid> {
    let value: serde_json::Value = serde_json::from_slice(payload).map_err(|_| Invalid::NotJson)?;
    let (id, own_subject) = match value.get("schema") {
        Some(serde_json::Value::String(schema)) if schema == PARTNER_SCHEMA => {
            let envelope: Envelope = serde_json::from_value(value).map_err(|_| Invalid::WrongShape)?;
            let referral = ReferralId::parse(&envelope.referral_id).map_err(|_| Invalid::WrongShape)?;
            if !usable_id(&envelope.event_id) {
                return Err(Invalid::WrongShape);
            }
            (envelope.event_id, out_subject(org, referral))
        }
        Some(serde_json::Value::String(schema)) if schema == REDACTION_SCHEMA => {
            let notice: Notice = serde_json::from_value(value).map_err(|_| Invalid::WrongShape)?;
            let id = uuid::Uuid::try_parse(&notice.notice_id).map_err(|_| Invalid::WrongShape)?;
            let referrals_ok =
                !notice.referral_ids.is_empty() && notice.referral_ids.iter().all(|r| ReferralId::parse(r).is_ok());
            // Only the hyphenated lower-case form is the router's, so the subject compares exactly.
            if !referrals_ok || !notice.redact || notice.notice_id != id.hyphenated().to_string() {
                return Err(Invalid::WrongShape);
            }
            (notice.notice_id, redaction_subject(org, id))
        }
        Some(serde_json::Value::String(_)) => return Err(Invalid::UnknownSchema),
        _ => return Err(Invalid::WrongShape),
    };
    let msg_id = msg_id.ok_or(Invalid::MissingHeaders)?;
    if msg_id != id || subject != own_subject {
        return Err(Invalid::Mismatch);
    }
    Ok(())
}

/// Whether `id` can be a `webhook-id`: a short token without dots or spaces.
fn usable_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 200 && id.bytes().all(|b| b.is_ascii_graphic() && b != b'.')
}

fn header<'a>(message: &'a jetstream::Message, name: &str) -> Option<&'a str> {
    message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(name))
        .map(|value| value.as_str())
}

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
            wasl_telemetry::metrics::poison("webhooks", "endpoint_key");
            tracing::warn!(
                revision = entry.revision,
                "an endpoint key is not an organisation id; skipped"
            );
            return;
        };
        let bucket = &self.inner.config.endpoints_bucket;
        let endpoint = match entry.operation {
            kv::Operation::Put => match StoredEndpoint::decode(&entry.value, bucket) {
                Ok(record) if record.enabled => match record.endpoint(org, &self.inner.key, bucket) {
                    Ok(endpoint) => Some(endpoint),
                    Err(err) => {
                        wasl_telemetry::metrics::poison("webhooks", "endpoint_unusable");
                        tracing::warn!(org = %org, revision = entry.revision, error = %err, "unusable webhook endpoint; not delivering");
                        None
                    }
                },
                Ok(_) => None,
                Err(err) => {
                    // Fail closed: no endpoint until an administrator sets one again.
                    wasl_telemetry::metrics::poison("webhooks", "endpoint_unreadable");
                    tracing::warn!(org = %org, revision = entry.revision, error = %err, "unreadable webhook endpoint; not delivering");
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
    match header(message, MSG_ID) {
        Some(id) if usable_id(id) => id.to_owned(),
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
    if let Err(invalid) = check(org, message.subject.as_str(), header(message, MSG_ID), &message.payload) {
        // Never signed or sent: set aside where administrators look, and on to the next.
        dead_letter(webhooks, org, message, &id, sequence, 0, Failure::Invalid(invalid)).await?;
        wasl_telemetry::metrics::webhook_dead_letter();
        wasl_telemetry::metrics::poison("webhooks", invalid.code());
        message.double_ack().await.map_err(WebhookError::unavailable)?;
        tracing::warn!(
            org = %org,
            feed_sequence = sequence,
            reason = invalid.code(),
            "not a partner message in the feed; dead-lettered without sending"
        );
        return Ok(Handled::Done);
    }
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
    let js = &webhooks.inner.js;
    let now = SystemTime::now();
    let ack = match js
        .publish_with_headers(dead_subject(org), giving.headers(now), message.payload.clone())
        .await
    {
        Ok(ack) => ack,
        // Too big with our headers added: kept without its payload and headers rather than
        // retried for ever, which would stop the feed behind it.
        Err(err) if err.kind() == PublishErrorKind::MaxPayloadExceeded => {
            let mut headers = Giving {
                original: None,
                ..giving
            }
            .headers(now);
            headers.insert(PAYLOAD_DROPPED, message.payload.len().to_string().as_str());
            tracing::warn!(org = %org, feed_sequence = sequence, "dead letter too big; stored without its payload");
            js.publish_with_headers(dead_subject(org), headers, bytes::Bytes::new())
                .await
                .map_err(WebhookError::unavailable)?
        }
        Err(err) => return Err(WebhookError::unavailable(err)),
    };
    // Stored (acknowledged by the stream) before the original is acknowledged.
    ack.await.map_err(WebhookError::unavailable)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "0190b2c4-0000-7000-8000-00000000000a";
    const REFERRAL: &str = "0190b2c4-0000-7000-8000-00000000000b";
    const EVENT: &str = "0190b2c4-0000-7000-8000-00000000000e";

    fn body(schema: &str) -> Vec<u8> {
        format!(
            r#"{{"schema":"{schema}","event_id":"{EVENT}","event_type":"wasl.referral.requested.v1","referral_id":"{REFERRAL}","version":1,"status":"requested","later_field":true}}"#
        )
        .into_bytes()
    }

    const NOTICE: &str = "0190b2c4-0000-7000-8000-00000000000c";

    fn notice(schema: &str, referrals: &str, redact: bool) -> Vec<u8> {
        format!(
            r#"{{"schema":"{schema}","notice_id":"{NOTICE}","event_type":"wasl.case.personal_data_erased.v1","occurred_at":"2026-01-01T00:00:00.000Z","referral_ids":[{referrals}],"redact":{redact},"later_field":1}}"#
        )
        .into_bytes()
    }

    #[test]
    fn redaction_notices_of_the_feed_pass() {
        let subject = format!("wasl.out.{ORG}.redaction.{NOTICE}");
        let referrals = format!(r#""{REFERRAL}","0190b2c4-0000-7000-8000-00000000001b""#);
        let good = notice(REDACTION_SCHEMA, &referrals, true);
        assert_eq!(checked(&subject, Some(NOTICE), &good), Ok(()));
        for (payload, invalid) in [
            (notice(REDACTION_SCHEMA, "", true), Invalid::WrongShape),
            (
                notice(REDACTION_SCHEMA, r#""not-a-referral""#, true),
                Invalid::WrongShape,
            ),
            (notice(REDACTION_SCHEMA, &referrals, false), Invalid::WrongShape),
            (
                String::from_utf8(good.clone())
                    .unwrap()
                    .replace(NOTICE, &NOTICE.to_uppercase())
                    .into_bytes(),
                Invalid::WrongShape,
            ),
            (
                format!(r#"{{"schema":"{REDACTION_SCHEMA}","notice_id":"{NOTICE}"}}"#).into_bytes(),
                Invalid::WrongShape,
            ),
            (
                notice("wasl.partner.redaction.v2", &referrals, true),
                Invalid::UnknownSchema,
            ),
        ] {
            assert_eq!(checked(&subject, Some(NOTICE), &payload), Err(invalid));
        }
        assert_eq!(checked(&subject, None, &good), Err(Invalid::MissingHeaders));
        assert_eq!(checked(&subject, Some(EVENT), &good), Err(Invalid::Mismatch));
        // Not on a referral's subject, nor under another notice's id.
        for elsewhere in [
            format!("wasl.out.{ORG}.referral.{REFERRAL}"),
            format!("wasl.out.{ORG}.redaction.{EVENT}"),
            format!("wasl.out.0190b2c4-0000-7000-8000-0000000000ff.redaction.{NOTICE}"),
        ] {
            assert_eq!(checked(&elsewhere, Some(NOTICE), &good), Err(Invalid::Mismatch));
        }
        // And a referral message is not accepted on a notice's subject.
        assert_eq!(
            checked(&subject, Some(EVENT), &body(PARTNER_SCHEMA)),
            Err(Invalid::Mismatch)
        );
    }

    fn checked(subject: &str, msg_id: Option<&str>, payload: &[u8]) -> Result<(), Invalid> {
        check(OrgId::parse(ORG).unwrap(), subject, msg_id, payload)
    }

    #[test]
    fn only_partner_messages_of_the_feed_pass() {
        let subject = format!("wasl.out.{ORG}.referral.{REFERRAL}");
        let good = body(PARTNER_SCHEMA);
        assert_eq!(
            checked(&subject, Some(EVENT), &good),
            Ok(()),
            "unknown fields are ignored"
        );
        for (payload, invalid) in [
            (b"\xff\x00garbage".to_vec(), Invalid::NotJson),
            (b"{\"schema\":".to_vec(), Invalid::NotJson),
            (b"[1,2,3]".to_vec(), Invalid::WrongShape),
            (b"{\"hello\":\"world\"}".to_vec(), Invalid::WrongShape),
            (
                format!(r#"{{"schema":"{PARTNER_SCHEMA}","event_id":"{EVENT}"}}"#).into_bytes(),
                Invalid::WrongShape,
            ),
            (body("wasl.partner.referral.v2"), Invalid::UnknownSchema),
        ] {
            assert_eq!(checked(&subject, Some(EVENT), &payload), Err(invalid));
        }
        assert_eq!(checked(&subject, None, &good), Err(Invalid::MissingHeaders));
        assert_eq!(
            checked(&subject, Some("0190b2c4-0000-7000-8000-0000000000ff"), &good),
            Err(Invalid::Mismatch)
        );
        assert_eq!(
            checked(&format!("wasl.out.{ORG}.referral.other"), Some(EVENT), &good),
            Err(Invalid::Mismatch)
        );
    }
}
