//! Reading the log for projections: an ordered consumer from a sequence, each message turned
//! into an [`Entry`] — decoded, or carrying why it could not be.

use crate::apply::Entry;
use crate::error::ProjectionError;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use async_nats::jetstream::stream::Stream;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use wasl_events::StoredEvent;
use wasl_store::config::EVENT_SUBJECTS;
use wasl_store::skips::Skips;

/// Turns a stored message into an event; the error never holds the contents.
pub type Decoder =
    fn(seq: u64, subject: &str, headers: Option<&HeaderMap>, payload: &[u8]) -> Result<StoredEvent, String>;

/// The store's own decoding: headers, schema version, body, subject check.
pub fn store_decoder(
    seq: u64,
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: &[u8],
) -> Result<StoredEvent, String> {
    wasl_store::load::decode_message(seq, subject, headers, payload).map_err(|e| match e {
        wasl_store::StoreError::Undecodable { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// Reads one message into an entry.
pub fn entry(decoder: Decoder, seq: u64, subject: &str, headers: Option<&HeaderMap>, payload: &[u8]) -> Entry {
    let event_type = headers
        .and_then(|h| h.get(wasl_events::headers::CE_TYPE))
        // A type name; cut to a sane length whatever the header holds.
        .map(|v| v.as_str().chars().take(100).collect());
    Entry {
        seq,
        subject: subject.to_owned(),
        event_type,
        event: decoder(seq, subject, headers, payload),
        traceparent: wasl_store::load::traceparent_of(headers),
        pending: 0,
        skipped: false,
    }
}

/// Marks an unreadable entry that an operator skipped (see `wasl_store::skips`).
pub(crate) async fn mark_skipped(entry: &mut Entry, skips: Option<&Skips>) -> Result<(), ProjectionError> {
    if let (Err(_), Some(skips)) = (&entry.event, skips) {
        entry.skipped = skips.contains(entry.seq).await.map_err(ProjectionError::log)?;
    }
    Ok(())
}

/// Log entries in order, read ahead: a task drives the consumer and decodes while the caller
/// writes the previous batch, so batches fill up under load and decoding runs beside the
/// database work. An `Err` is the consumer failing (resubscribe), not a bad event. Dropping the
/// feed stops the task and with it the consumer.
pub(crate) struct Feed {
    entries: mpsc::Receiver<Result<Entry, ProjectionError>>,
    /// A failure met by `ready`, handed out by the next `next`.
    failed: Option<ProjectionError>,
}

impl Feed {
    /// The next entry; `None` when the subscription ended.
    pub(crate) async fn next(&mut self) -> Option<Result<Entry, ProjectionError>> {
        if let Some(error) = self.failed.take() {
            return Some(Err(error));
        }
        self.entries.recv().await
    }

    /// The next entry if one is ready now (a failure waits for the next `next`).
    pub(crate) fn ready(&mut self) -> Option<Entry> {
        if self.failed.is_some() {
            return None;
        }
        match self.entries.try_recv().ok()? {
            Ok(entry) => Some(entry),
            Err(error) => {
                self.failed = Some(error);
                None
            }
        }
    }
}

/// Follows the whole event log from sequence `from`, reading up to `read_ahead` entries ahead.
pub(crate) async fn follow(
    stream: &Stream,
    from: u64,
    decoder: Decoder,
    skips: Option<Skips>,
    read_ahead: usize,
) -> Result<Feed, ProjectionError> {
    let config = OrderedConfig {
        filter_subject: EVENT_SUBJECTS.to_owned(),
        deliver_policy: DeliverPolicy::ByStartSequence {
            start_sequence: from.max(1),
        },
        ..Default::default()
    };
    let consumer = stream.create_consumer(config).await.map_err(ProjectionError::log)?;
    let mut messages = consumer.messages().await.map_err(ProjectionError::log)?;
    let (sender, entries) = mpsc::channel(read_ahead.max(1));
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                () = sender.closed() => return,
                message = messages.next() => message,
            };
            let Some(message) = message else { return };
            let mut entry = message.map_err(ProjectionError::log).and_then(|message| {
                let info = message.info().map_err(ProjectionError::log)?;
                let mut entry = entry(
                    decoder,
                    info.stream_sequence,
                    &message.subject,
                    message.headers.as_ref(),
                    &message.payload,
                );
                entry.pending = info.pending;
                Ok(entry)
            });
            if let Ok(read) = &mut entry
                && let Err(error) = mark_skipped(read, skips.as_ref()).await
            {
                entry = Err(error);
            }
            let failed = entry.is_err();
            if sender.send(entry).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(Feed { entries, failed: None })
}

/// The stream's last sequence now (0 when empty).
pub(crate) async fn last_sequence(stream: &Stream) -> Result<u64, ProjectionError> {
    let mut stream = stream.clone();
    let info = stream.info().await.map_err(ProjectionError::log)?;
    Ok(info.state.last_sequence)
}
