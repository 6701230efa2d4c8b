//! Which referrals each case had: the index the router needs to tell every organisation that
//! ever received a referral of a case when that case's personal data is erased.
//!
//! The log cannot answer that question cheaply: a referral's events live on
//! `wasl.evt.referral.<id>` and only its first event (`requested`) names the case, so finding a
//! case's referrals there means reading every referral event ever stored — per erasure, and a
//! retention run erases many. Holding the relation in memory would grow with every referral
//! ever made, and be empty after a restart. So the router keeps it durably, derived from the log
//! and nothing else, in its own KV bucket (`<checkpoint bucket>_CASES`, `WASL_ROUTER_CASES` by
//! default):
//!
//! - key `<case id>.<referral id>`, value the receiving organisation, written when the router
//!   reads the referral's `requested` event. Writing one again is harmless, so replays need no
//!   care.
//! - key `position`: every `requested` event at or below this sequence of the log is in the
//!   index. It is written only after those writes were acknowledged, with the checkpoint.
//!   When it is behind the router's checkpoint — a bucket created after the router had been
//!   running, lost or restored from an older backup — the router reads the log from it again
//!   only to index, delivering nothing, until it reaches its checkpoint.
//!
//! The index only says where to look: at an erasure the router reads each listed referral's own
//! history from the log and takes the receiving organisation from there, counting a referral
//! only when it was requested for that case before the erasure. An entry someone else wrote
//! therefore cannot send a notice to the wrong organisation, and a replay finds the same
//! organisations however far the index has run ahead. Memory holds one case's entries at a time.

use crate::error::RouterError;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::stream::{RawMessageErrorKind, Stream};
use async_nats::jetstream::{self, kv};
use std::collections::BTreeSet;
use wasl_domain::ids::{CaseId, OrgId, ReferralId};

/// The key of the index's position.
const POSITION_KEY: &str = "position";

/// The name of the index bucket that goes with the checkpoint bucket `checkpoint_bucket`.
pub fn bucket_name(checkpoint_bucket: &str) -> String {
    format!("{checkpoint_bucket}_CASES")
}

/// The case index of one run of the router.
pub(crate) struct CaseIndex {
    js: jetstream::Context,
    kv: kv::Store,
    stream: Stream,
    /// `$KV.<bucket>.`: the subject prefix of the bucket's keys.
    prefix: String,
}

impl CaseIndex {
    /// Opens the bucket, creating it when missing (it is then rebuilt from the log).
    pub(crate) async fn open(js: &jetstream::Context, bucket: &str, replicas: usize) -> Result<Self, RouterError> {
        let kv = match js.get_key_value(bucket).await {
            Ok(kv) => kv,
            Err(_) => {
                let config = kv::Config {
                    bucket: bucket.to_owned(),
                    description: "Wasl router: the referrals of each case (derived from the log)".to_owned(),
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas.max(1),
                    ..Default::default()
                };
                match js.create_key_value(config).await {
                    Ok(kv) => kv,
                    // Created meanwhile by another router.
                    Err(_) => js.get_key_value(bucket).await.map_err(RouterError::unavailable)?,
                }
            }
        };
        let stream = js
            .get_stream(format!("KV_{bucket}"))
            .await
            .map_err(RouterError::unavailable)?;
        Ok(Self {
            js: js.clone(),
            kv,
            stream,
            prefix: format!("$KV.{bucket}."),
        })
    }

    /// Up to which sequence of the log every `requested` event is indexed (0: none). A value
    /// that is not a number counts as 0: the index is then rebuilt, which only costs time.
    pub(crate) async fn position(&self) -> Result<u64, RouterError> {
        let value = self.kv.get(POSITION_KEY).await.map_err(RouterError::unavailable)?;
        Ok(value
            .and_then(|bytes| std::str::from_utf8(&bytes).ok()?.trim().parse().ok())
            .unwrap_or(0))
    }

    /// Records that every `requested` event up to `sequence` is indexed.
    pub(crate) async fn set_position(&self, sequence: u64) -> Result<(), RouterError> {
        self.kv
            .put(POSITION_KEY, sequence.to_string().into())
            .await
            .map_err(RouterError::unavailable)?;
        Ok(())
    }

    /// Indexes `referral` of `case` (to `org`); the acknowledgement is awaited with the batch.
    pub(crate) async fn record(
        &self,
        case: CaseId,
        referral: ReferralId,
        org: OrgId,
    ) -> Result<PublishAckFuture, RouterError> {
        self.js
            .publish(
                format!("{}{case}.{referral}", self.prefix),
                org.to_string().into_bytes().into(),
            )
            .await
            .map_err(RouterError::unavailable)
    }

    /// The referrals indexed under `case`. Read from the stream leader (not a direct get, which
    /// a lagging replica may answer), so everything acknowledged is seen. A key that does not
    /// name a referral is passed over: it cannot have been written by the router.
    pub(crate) async fn referrals(&self, case: CaseId) -> Result<BTreeSet<ReferralId>, RouterError> {
        let filter = format!("{}{case}.*", self.prefix);
        let mut found = BTreeSet::new();
        let mut next = 1;
        loop {
            let message = match self
                .stream
                .raw_message_builder()
                .sequence(next)
                .next_by_subject(filter.clone())
                .send()
                .await
            {
                Ok(message) => message,
                Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => return Ok(found),
                Err(err) => return Err(RouterError::unavailable(err)),
            };
            next = message.sequence + 1;
            let referral = message
                .subject
                .rsplit('.')
                .next()
                .and_then(|token| ReferralId::parse(token).ok());
            match referral {
                Some(referral) => {
                    found.insert(referral);
                }
                None => {
                    wasl_telemetry::metrics::poison("router", "case_index_key");
                    tracing::warn!(
                        sequence = message.sequence,
                        "a key in the router's case index does not name a referral; passed over"
                    );
                }
            }
        }
    }
}
