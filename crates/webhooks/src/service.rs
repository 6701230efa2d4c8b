//! The handle on everything webhooks keep in JetStream — endpoints, status, dead letters — with
//! the administrator's operations; the delivery worker ([`Webhooks::run`]) is in `worker.rs`.

use crate::config::WebhooksConfig;
use crate::dead::{self, DeadLetter, SUBJECT_PREFIX, dead_subject};
use crate::delivery::{Failure, Poster};
use crate::endpoint::{Change, EndpointInfo, StoredEndpoint, format_time, validate_url};
use crate::error::WebhookError;
use crate::seal::{SecretsKey, Slot, StoredSecret};
use crate::signature::Secret;
use crate::status::{DeliveryStatus, StatusRecord};
use async_nats::jetstream::{self, kv, stream};
use futures_util::TryStreamExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use wasl_domain::ids::OrgId;
use wasl_events::partner::out_stream;

/// Webhooks: endpoint administration, status, dead letters and redelivery, and the delivery
/// worker. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub js: jetstream::Context,
    pub config: WebhooksConfig,
    pub endpoints: kv::Store,
    pub status: kv::Store,
    pub dead: stream::Stream,
    pub poster: Poster,
    pub key: SecretsKey,
}

/// What [`Webhooks::redeliver_all`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeliverReport {
    /// Dead letters delivered and removed, by sequence, in order.
    pub delivered: Vec<u64>,
    /// The dead letter whose redelivery failed, and why; redelivery stops there (the endpoint is
    /// evidently still failing).
    pub failed: Option<(u64, Failure)>,
    /// Dead letters left for the organisation.
    pub remaining: u64,
    /// Dead letters skipped because they are not partner messages ([`Failure::Invalid`]): never
    /// sent, left in place (counted in `remaining`) for an administrator to look at.
    pub invalid: Vec<u64>,
}

/// The stream configuration of the dead letters.
pub fn dead_stream_config(config: &WebhooksConfig) -> stream::Config {
    stream::Config {
        name: config.dead_stream.clone(),
        description: Some("Wasl webhook dead letters: partner messages not delivered after every retry".to_owned()),
        subjects: vec![format!("{SUBJECT_PREFIX}.>")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        // Redelivered dead letters are deleted one by one.
        deny_delete: false,
        allow_direct: true,
        num_replicas: config.replicas.max(1),
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    }
}

async fn open_bucket(
    js: &jetstream::Context,
    bucket: &str,
    history: i64,
    replicas: usize,
    description: &str,
) -> Result<kv::Store, WebhookError> {
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    let created = js
        .create_key_value(kv::Config {
            bucket: bucket.to_owned(),
            description: description.to_owned(),
            history: history.clamp(1, 64),
            storage: stream::StorageType::File,
            num_replicas: replicas.max(1),
            ..Default::default()
        })
        .await;
    match created {
        Ok(store) => Ok(store),
        // Created meanwhile by another process.
        Err(err) => js
            .get_key_value(bucket)
            .await
            .map_err(|_| WebhookError::unavailable(err)),
    }
}

impl Webhooks {
    /// Opens the endpoint and status buckets and the dead-letter stream, creating them when
    /// missing. `key` seals and opens the signing secrets.
    ///
    /// An endpoint bucket from before secrets were sealed is brought up to date here: secrets
    /// still in plain text are sealed, then the bucket is set to keep no history, which drops
    /// the old revisions (and the old secrets in them). A log line gives the counts.
    pub async fn connect(
        js: jetstream::Context,
        config: WebhooksConfig,
        key: SecretsKey,
    ) -> Result<Self, WebhookError> {
        let endpoints = open_bucket(
            &js,
            &config.endpoints_bucket,
            1,
            config.replicas,
            "Wasl webhook endpoints, one per organisation (URL, sealed signing secret)",
        )
        .await?;
        let status = open_bucket(
            &js,
            &config.status_bucket,
            1,
            config.replicas,
            "Wasl webhook delivery status, one per organisation",
        )
        .await?;
        let dead = js
            .get_or_create_stream(dead_stream_config(&config))
            .await
            .map_err(WebhookError::unavailable)?;
        let poster = Poster::new(&config).map_err(WebhookError::unavailable)?;
        let webhooks = Self {
            inner: Arc::new(Inner {
                js,
                config,
                endpoints,
                status,
                dead,
                poster,
                key,
            }),
        };
        webhooks.seal_plain_secrets().await?;
        Ok(webhooks)
    }

    /// Seals every secret still in plain text, then drops the bucket's history (see
    /// [`Webhooks::connect`]).
    async fn seal_plain_secrets(&self) -> Result<(), WebhookError> {
        let bucket = &self.inner.config.endpoints_bucket;
        let mut sealed = 0u64;
        for org in self.orgs().await? {
            // Another process may seal or change it at the same time: read again on a conflict.
            for _ in 0..5 {
                // An unreadable record is left as it is: the worker delivers nothing to it
                // (and says so) until an administrator sets the endpoint again.
                let (mut record, revision) = match self.stored(org).await {
                    Ok(Some(stored)) => stored,
                    Ok(None) | Err(WebhookError::Corrupt(_)) => break,
                    Err(err) => return Err(err),
                };
                if !record.has_plain_secret() {
                    break;
                }
                match record.seal_plain(org, &self.inner.key, &self.corrupt_label(org)) {
                    Ok(()) => {}
                    Err(WebhookError::Corrupt(_)) => break,
                    Err(err) => return Err(err),
                }
                match self.write(org, &record, Some(revision)).await {
                    Ok(()) => {
                        sealed += 1;
                        break;
                    }
                    Err(WebhookError::Conflict) => continue,
                    Err(err) => return Err(err),
                }
            }
        }
        let mut stream = self.inner.endpoints.stream.clone();
        let info = stream.info().await.map_err(WebhookError::unavailable)?.clone();
        let mut dropped = 0u64;
        if info.config.max_messages_per_subject != 1 {
            let before = info.state.messages;
            let mut config = info.config.clone();
            config.max_messages_per_subject = 1;
            self.inner
                .js
                .update_stream(config)
                .await
                .map_err(WebhookError::unavailable)?;
            let after = stream.info().await.map_err(WebhookError::unavailable)?.state.messages;
            dropped = before.saturating_sub(after);
        }
        if sealed > 0 || dropped > 0 {
            tracing::info!(
                bucket = %bucket,
                endpoints_sealed = sealed,
                old_revisions_dropped = dropped,
                "webhook signing secrets sealed and endpoint history dropped"
            );
        }
        Ok(())
    }

    /// The settings in use.
    pub fn config(&self) -> &WebhooksConfig {
        &self.inner.config
    }

    async fn stored(&self, org: OrgId) -> Result<Option<(StoredEndpoint, u64)>, WebhookError> {
        let entry = self
            .inner
            .endpoints
            .entry(org.to_string())
            .await
            .map_err(WebhookError::unavailable)?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => Ok(Some((
                StoredEndpoint::decode(&entry.value, &self.corrupt_label(org))?,
                entry.revision,
            ))),
            _ => Ok(None),
        }
    }

    /// Where an unreadable endpoint is, for [`WebhookError::Corrupt`]: bucket and key.
    fn corrupt_label(&self, org: OrgId) -> String {
        format!("{} key {org}", self.inner.config.endpoints_bucket)
    }

    pub(crate) async fn endpoint_record(&self, org: OrgId) -> Result<Option<StoredEndpoint>, WebhookError> {
        Ok(self.stored(org).await?.map(|(record, _)| record))
    }

    /// Writes `record` over revision `revision` (0: only when the key has no value).
    async fn write(&self, org: OrgId, record: &StoredEndpoint, revision: Option<u64>) -> Result<(), WebhookError> {
        let key = org.to_string();
        let result = match revision {
            Some(revision) => self
                .inner
                .endpoints
                .update(&key, record.encode(), revision)
                .await
                .map(|_| ()),
            None => {
                return self
                    .inner
                    .endpoints
                    .put(&key, record.encode())
                    .await
                    .map(|_| ())
                    .map_err(WebhookError::unavailable);
            }
        };
        result.map_err(|err| match err.kind() {
            kv::UpdateErrorKind::WrongLastRevision => WebhookError::Conflict,
            _ => WebhookError::unavailable(err),
        })
    }

    /// Sets `org`'s endpoint to `url` (https; http only to loopback), enabled, with a new
    /// secret, which is returned — the only time it is shown: hand it to the organisation.
    /// Replaces any previous endpoint and secret at once.
    ///
    /// The URL's host must be, or resolve only to, addresses the configuration's
    /// [`crate::Destinations`] permit (public ones, and the ranges an operator allowed):
    /// [`WebhookError::NotPublic`] otherwise. A name that does not resolve now is accepted;
    /// every delivery checks again.
    #[tracing::instrument(skip_all, fields(org = %org), err)]
    pub async fn set_endpoint(&self, org: OrgId, url: &str, by: &str) -> Result<Secret, WebhookError> {
        let url = validate_url(url)?;
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(443);
        match self.inner.config.destinations.resolve(host, port).await {
            Ok(_) | Err(crate::net::Refused::Unresolved) => {}
            Err(crate::net::Refused::NotPublic) => return Err(WebhookError::NotPublic),
        }
        let secret = Secret::generate().map_err(|_| WebhookError::Random)?;
        let record = StoredEndpoint {
            url: url.to_string(),
            secret: StoredSecret::Sealed(self.inner.key.seal(org, Slot::Current, &secret)?),
            previous_secret: None,
            previous_until: None,
            enabled: true,
            updated_at: format_time(SystemTime::now()),
            updated_by: by.to_owned(),
            change: Change::Set,
        };
        self.write(org, &record, None).await?;
        tracing::info!(org = %org, "webhook endpoint set");
        Ok(secret)
    }

    /// Issues a new secret for `org`'s endpoint and returns it (shown this once). For `overlap`
    /// after the rotation, messages are signed with both the new and the old secret, so the
    /// organisation can switch its receiver without losing a message; zero stops the old one at
    /// once.
    #[tracing::instrument(skip_all, fields(org = %org), err)]
    pub async fn rotate_secret(&self, org: OrgId, by: &str, overlap: Duration) -> Result<Secret, WebhookError> {
        let (mut record, revision) = self.stored(org).await?.ok_or(WebhookError::NoEndpoint(org))?;
        let secret = Secret::generate().map_err(|_| WebhookError::Random)?;
        let now = SystemTime::now();
        let sealed = StoredSecret::Sealed(self.inner.key.seal(org, Slot::Current, &secret)?);
        let old = std::mem::replace(&mut record.secret, sealed);
        if overlap.is_zero() {
            record.previous_secret = None;
            record.previous_until = None;
        } else {
            // Sealed again for its new slot (the slot is part of what the seal binds).
            let label = self.corrupt_label(org);
            let old = self.inner.key.open(org, Slot::Current, &old, &label)?;
            record.previous_secret = Some(StoredSecret::Sealed(self.inner.key.seal(org, Slot::Previous, &old)?));
            record.previous_until = Some(format_time(now + overlap));
        }
        record.updated_at = format_time(now);
        record.updated_by = by.to_owned();
        record.change = Change::Rotate;
        self.write(org, &record, Some(revision)).await?;
        tracing::info!(org = %org, "webhook secret rotated");
        Ok(secret)
    }

    async fn set_enabled(&self, org: OrgId, by: &str, enabled: bool) -> Result<(), WebhookError> {
        let (mut record, revision) = self.stored(org).await?.ok_or(WebhookError::NoEndpoint(org))?;
        record.enabled = enabled;
        record.updated_at = format_time(SystemTime::now());
        record.updated_by = by.to_owned();
        record.change = if enabled { Change::Enable } else { Change::Disable };
        self.write(org, &record, Some(revision)).await?;
        tracing::info!(org = %org, enabled, "webhook endpoint switched");
        Ok(())
    }

    /// Stops deliveries to `org`'s endpoint; its feed keeps the messages, which are delivered
    /// once it is enabled again.
    pub async fn disable(&self, org: OrgId, by: &str) -> Result<(), WebhookError> {
        self.set_enabled(org, by, false).await
    }

    /// Resumes deliveries to `org`'s endpoint where they stopped.
    pub async fn enable(&self, org: OrgId, by: &str) -> Result<(), WebhookError> {
        self.set_enabled(org, by, true).await
    }

    /// `org`'s endpoint (without its secret).
    pub async fn endpoint(&self, org: OrgId) -> Result<Option<EndpointInfo>, WebhookError> {
        Ok(self
            .stored(org)
            .await?
            .map(|(record, revision)| record.info(org, revision)))
    }

    async fn orgs(&self) -> Result<Vec<OrgId>, WebhookError> {
        let keys: Vec<String> = match self.inner.endpoints.keys().await {
            Ok(keys) => keys.try_collect().await.map_err(WebhookError::unavailable)?,
            Err(err) => return Err(WebhookError::unavailable(err)),
        };
        let mut orgs: Vec<OrgId> = keys.iter().filter_map(|key| OrgId::parse(key).ok()).collect();
        orgs.sort_by_key(|org| org.to_string());
        Ok(orgs)
    }

    /// Every endpoint (without secrets), by organisation id.
    pub async fn list(&self) -> Result<Vec<EndpointInfo>, WebhookError> {
        let mut all = Vec::new();
        for org in self.orgs().await? {
            if let Some(info) = self.endpoint(org).await? {
                all.push(info);
            }
        }
        Ok(all)
    }

    pub(crate) async fn status_record(&self, org: OrgId) -> StatusRecord {
        match self.inner.status.get(org.to_string()).await {
            Ok(Some(bytes)) => StatusRecord::decode(&bytes),
            _ => StatusRecord::default(),
        }
    }

    pub(crate) async fn save_status(&self, org: OrgId, record: &StatusRecord) {
        if let Err(err) = self.inner.status.put(org.to_string(), record.encode()).await {
            // Status is for people; delivery goes on without it.
            tracing::warn!(org = %org, error = %err, "webhook status not saved");
        }
    }

    async fn pending(&self, org: OrgId) -> Result<Option<u64>, WebhookError> {
        let stream = match self.inner.js.get_stream(out_stream(org)).await {
            Ok(stream) => stream,
            Err(err) if matches!(err.kind(), jetstream::context::GetStreamErrorKind::JetStream(api) if api.code() == 404) =>
            {
                return Ok(None);
            }
            Err(err) => return Err(WebhookError::unavailable(err)),
        };
        match stream.consumer_info(&self.inner.config.consumer).await {
            Ok(info) => Ok(Some(info.num_pending + info.num_ack_pending as u64)),
            // No consumer yet: everything in the feed is still to deliver.
            Err(_) => Ok(Some(stream.cached_info().state.messages)),
        }
    }

    async fn dead_count(&self, org: OrgId) -> Result<u64, WebhookError> {
        let subject = dead_subject(org);
        let info = self
            .inner
            .dead
            .info_with_subjects(&subject)
            .await
            .map_err(WebhookError::unavailable)?;
        let counts: Vec<(String, usize)> = info.try_collect().await.map_err(WebhookError::unavailable)?;
        Ok(counts
            .into_iter()
            .filter(|(name, _)| *name == subject)
            .map(|(_, count)| count as u64)
            .sum())
    }

    /// `org`'s delivery status: endpoint (never the secret), pending messages, last success and
    /// failure, consecutive failures, dead letters.
    pub async fn status(&self, org: OrgId) -> Result<DeliveryStatus, WebhookError> {
        let endpoint = self.endpoint(org).await?;
        let record = self.status_record(org).await;
        Ok(DeliveryStatus {
            org,
            url: endpoint.as_ref().map(|e| e.url.clone()),
            enabled: endpoint.as_ref().is_some_and(|e| e.enabled),
            pending: self.pending(org).await?,
            last_success_at: record.last_success(),
            last_failure: record.last_failure(),
            consecutive_failures: record.consecutive_failures,
            dead_letters: self.dead_count(org).await?,
        })
    }

    /// The status of every organisation with an endpoint, by organisation id.
    pub async fn status_all(&self) -> Result<Vec<DeliveryStatus>, WebhookError> {
        let mut all = Vec::new();
        for org in self.orgs().await? {
            all.push(self.status(org).await?);
        }
        Ok(all)
    }

    /// `org`'s dead letters, oldest first (without their payloads).
    pub async fn dead_letters(&self, org: OrgId) -> Result<Vec<DeadLetter>, WebhookError> {
        let subject = dead_subject(org);
        let mut letters = Vec::new();
        let mut from = 1;
        loop {
            match self.inner.dead.direct_get_next_for_subject(&subject, Some(from)).await {
                Ok(message) => {
                    from = message.sequence + 1;
                    letters.extend(dead::read(org, &message));
                }
                Err(err) if err.kind() == stream::DirectGetErrorKind::NotFound => return Ok(letters),
                Err(err) => return Err(WebhookError::unavailable(err)),
            }
        }
    }

    /// POSTs dead letter `sequence` of `org` again, once, to the endpoint as it is now (current
    /// secret, fresh timestamp, same `webhook-id`), and removes it on a 2xx. A failure leaves
    /// it in place: [`WebhookError::DeliveryFailed`].
    #[tracing::instrument(skip_all, fields(org = %org, sequence), err)]
    pub async fn redeliver(&self, org: OrgId, sequence: u64) -> Result<(), WebhookError> {
        let missing = || WebhookError::NoDeadLetter { org, sequence };
        let message = match self.inner.dead.direct_get(sequence).await {
            Ok(message) => message,
            Err(err) if err.kind() == stream::DirectGetErrorKind::NotFound => return Err(missing()),
            Err(err) => return Err(WebhookError::unavailable(err)),
        };
        let letter = dead::read(org, &message).ok_or_else(missing)?;
        // What was set aside as not a partner message stays set aside; and whatever else is
        // in the stream is checked again before Wasl signs it.
        if let Some(Failure::Invalid(invalid)) = letter.last_failure {
            return Err(WebhookError::NotPartnerMessage(invalid));
        }
        crate::worker::check(org, &letter.subject, Some(&letter.webhook_id), &message.payload)
            .map_err(WebhookError::NotPartnerMessage)?;
        let record = self.endpoint_record(org).await?.ok_or(WebhookError::NoEndpoint(org))?;
        if !record.enabled {
            return Err(WebhookError::Disabled(org));
        }
        let endpoint = record.endpoint(org, &self.inner.key, &self.corrupt_label(org))?;
        let now = SystemTime::now();
        let outcome = self
            .inner
            .poster
            .post(&endpoint, &letter.webhook_id, &message.payload, now)
            .await;
        let mut status = self.status_record(org).await;
        match outcome {
            Ok(_) => {
                status.succeeded(now);
                self.save_status(org, &status).await;
                self.inner
                    .dead
                    .delete_message(sequence)
                    .await
                    .map_err(WebhookError::unavailable)?;
                tracing::info!(org = %org, webhook_id = %letter.webhook_id, "dead letter redelivered");
                Ok(())
            }
            Err(failure) => {
                status.failed(now, failure);
                self.save_status(org, &status).await;
                tracing::warn!(org = %org, webhook_id = %letter.webhook_id, failure = %failure, "redelivery failed");
                Err(WebhookError::DeliveryFailed(failure))
            }
        }
    }

    /// Redelivers `org`'s dead letters oldest first, stopping at the first failure; dead letters
    /// that are not partner messages are skipped (and left in place).
    pub async fn redeliver_all(&self, org: OrgId) -> Result<RedeliverReport, WebhookError> {
        let letters = self.dead_letters(org).await?;
        let mut report = RedeliverReport {
            delivered: Vec::new(),
            failed: None,
            remaining: letters.len() as u64,
            invalid: Vec::new(),
        };
        for letter in letters {
            match self.redeliver(org, letter.sequence).await {
                Ok(()) => {
                    report.delivered.push(letter.sequence);
                    report.remaining -= 1;
                }
                // Removed meanwhile (another administrator): nothing left to do for it.
                Err(WebhookError::NoDeadLetter { .. }) => report.remaining -= 1,
                // Never sent; the ones after it still are.
                Err(WebhookError::NotPartnerMessage(_)) => report.invalid.push(letter.sequence),
                Err(WebhookError::DeliveryFailed(failure)) => {
                    report.failed = Some((letter.sequence, failure));
                    break;
                }
                Err(err) => return Err(err),
            }
        }
        Ok(report)
    }
}
