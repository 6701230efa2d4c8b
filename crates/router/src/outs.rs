//! The organisations' feed streams `WASL_OUT_<org>`: created on demand, and each one's
//! position — its last stream sequence and the source sequence of its last message — read once
//! and then tracked in memory while the router publishes.

use crate::config::OutStreamConfig;
use crate::error::RouterError;
use crate::message::source_sequence;
use crate::router::RouterMetrics;
use async_nats::jetstream::{self, stream};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use wasl_domain::ids::OrgId;
use wasl_events::partner::{PARTNER_CONSUMERS, out_stream, out_subjects};

/// The stream configuration of `org`'s feed.
pub fn out_stream_config(org: OrgId, config: &OutStreamConfig) -> stream::Config {
    stream::Config {
        name: out_stream(org),
        description: Some("Wasl partner feed of one organisation (written by the router)".to_owned()),
        subjects: vec![out_subjects(org)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_bytes: config.max_bytes,
        max_messages: config.max_messages,
        max_messages_per_subject: -1,
        max_age: config.max_age,
        num_replicas: config.replicas.max(1),
        duplicate_window: config.duplicate_window,
        // The last message tells the router what was delivered: nobody deletes single ones.
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// The partner's side of a feed, kept by the hub because partners may not create consumers:
/// the durable pull consumers of [`PARTNER_CONSUMERS`] exist, and no push consumer does (one
/// could deliver into another organisation's inbox; only an older Wasl, which let partners
/// create consumers, can have left one). Returns how many push consumers were removed.
pub async fn keep_partner_consumers(stream: &stream::Stream) -> Result<usize, RouterError> {
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
    use futures_util::TryStreamExt as _;
    let name = stream.cached_info().config.name.clone();
    let mut removed = 0;
    let consumers: Vec<_> = stream
        .consumers()
        .try_collect()
        .await
        .map_err(RouterError::unavailable)?;
    for info in consumers {
        if info.config.deliver_subject.is_some() {
            stream
                .delete_consumer(&info.name)
                .await
                .map_err(RouterError::unavailable)?;
            removed += 1;
            tracing::warn!(stream = %name, consumer = %info.name, "push consumer on a partner feed removed");
        }
    }
    for durable in PARTNER_CONSUMERS {
        let config = pull::Config {
            durable_name: Some(durable.to_owned()),
            description: Some("the organisation's durable pull consumer, kept by the hub".to_owned()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: std::time::Duration::from_secs(30),
            max_ack_pending: 1000,
            ..Default::default()
        };
        stream
            .get_or_create_consumer(durable, config)
            .await
            .map_err(RouterError::unavailable)?;
    }
    Ok(removed)
}

/// Where an organisation's feed stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    /// The stream's last sequence: the next publish expects it (`Nats-Expected-Last-Sequence`).
    pub last_sequence: u64,
    /// The source sequence of the last event delivered into it; events at or below it are
    /// there already.
    pub last_source: u64,
}

/// The feeds the router has seen in this run.
pub(crate) struct OutStreams {
    js: jetstream::Context,
    config: OutStreamConfig,
    known: HashMap<OrgId, Position>,
    metrics: Arc<RouterMetrics>,
}

impl OutStreams {
    pub(crate) fn new(js: jetstream::Context, config: OutStreamConfig, metrics: Arc<RouterMetrics>) -> Self {
        Self {
            js,
            config,
            known: HashMap::new(),
            metrics,
        }
    }

    /// Forgets one stream's position.
    pub(crate) fn forget(&mut self, org: OrgId) {
        self.known.remove(&org);
    }

    /// The position of `org`'s feed, creating the stream when missing. `floor` is what to
    /// assume delivered when the stream was emptied (by age or a purge) and so cannot say.
    pub(crate) async fn position(&mut self, org: OrgId, floor: u64) -> Result<&mut Position, RouterError> {
        if !self.known.contains_key(&org) {
            let position = self.read(org, floor).await?;
            self.known.insert(org, position);
        }
        Ok(self.known.get_mut(&org).expect("inserted above"))
    }

    /// Creates `org`'s feed when missing (on registration); reads nothing else.
    pub(crate) async fn ensure(&mut self, org: OrgId) -> Result<(), RouterError> {
        if self.known.contains_key(&org) {
            return Ok(());
        }
        self.open(org).await.map(|_| ())
    }

    /// `org`'s feed, created when missing. A feed that existed when the router started got the
    /// partners' consumers then (`Router::open`); a feed made here gets them at once, so
    /// reopening a feed after an error costs no consumer requests.
    async fn open(&mut self, org: OrgId) -> Result<stream::Stream, RouterError> {
        let config = out_stream_config(org, &self.config);
        let name = config.name.clone();
        match self.js.get_stream(&name).await {
            Ok(stream) => return Ok(stream),
            Err(err) if matches!(err.kind(), jetstream::context::GetStreamErrorKind::JetStream(api) if api.code() == 404) =>
                {}
            Err(err) => return Err(RouterError::unavailable(err)),
        }
        match self.js.create_stream(config).await {
            Ok(stream) => {
                self.metrics.streams_created.fetch_add(1, Ordering::Relaxed);
                tracing::info!(org = %org, stream = %name, "partner feed created");
                keep_partner_consumers(&stream).await?;
                Ok(stream)
            }
            // Created meanwhile by another router: use it. Otherwise the creation's own error
            // (e.g. the server's storage cannot reserve the feed's max_bytes) is the one to tell.
            Err(created) => match self.js.get_stream(&name).await {
                Ok(stream) => Ok(stream),
                Err(_) => Err(RouterError::unavailable(format!(
                    "cannot create the feed {name}: {created}"
                ))),
            },
        }
    }

    async fn read(&mut self, org: OrgId, floor: u64) -> Result<Position, RouterError> {
        let stream = self.open(org).await?;
        let state = stream.cached_info().state.clone();
        if state.messages == 0 {
            // Empty: new (nothing delivered), or emptied by age or a purge — then only the
            // checkpoint says what was delivered.
            let last_source = if state.last_sequence == 0 { 0 } else { floor };
            return Ok(Position {
                last_sequence: state.last_sequence,
                last_source,
            });
        }
        // The newest message the router wrote names the last source sequence delivered. A
        // message someone else put on the feed's subjects carries none: it is reported and
        // passed over, never taken for a delivery.
        let mut sequence = state.last_sequence;
        let mut foreign = 0_u64;
        while sequence >= state.first_sequence.max(1) && foreign < MAX_FOREIGN_WALK {
            match stream.get_raw_message(sequence).await {
                Ok(message) => {
                    if let Some(last_source) = source_sequence(&message.headers) {
                        return Ok(Position {
                            last_sequence: state.last_sequence,
                            last_source,
                        });
                    }
                    foreign += 1;
                    wasl_telemetry::metrics::poison("router", "foreign_feed_message");
                    tracing::warn!(
                        stream = %out_stream(org),
                        sequence,
                        "a message in a partner feed was not written by the router; passed over"
                    );
                }
                Err(err) if err.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound => {}
                Err(err) => return Err(RouterError::unavailable(err)),
            }
            sequence -= 1;
        }
        // Nothing of the router's left to read (or only foreign messages within reach): as for
        // an emptied feed, the checkpoint says what was delivered.
        Ok(Position {
            last_sequence: state.last_sequence,
            last_source: floor,
        })
    }
}

/// How many foreign messages at a feed's end are passed over looking for the router's last one.
const MAX_FOREIGN_WALK: u64 = 10_000;
