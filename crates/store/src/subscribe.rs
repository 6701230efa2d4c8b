//! Following the event log from a position, for projections, the router and followup. An
//! ordered consumer delivers every event in stream order; a message that is not a readable event
//! is handed to the caller as an error naming its sequence — never skipped, never a panic — and
//! the subscription goes on, so the caller decides whether to stop or park it.

use crate::config::EVENT_SUBJECTS;
use crate::error::StoreError;
use crate::load::{Recorded, decode_message};
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use async_nats::jetstream::stream::Stream;
use futures_util::{Stream as FutureStream, StreamExt};
use std::pin::Pin;

/// Stored events in stream order; an unreadable one is an `Err` naming its sequence.
pub type EventFeed = Pin<Box<dyn FutureStream<Item = Result<Recorded, StoreError>> + Send>>;

/// Follows the log from stream sequence `from` (1 = the beginning; a projection passes its
/// checkpoint + 1), optionally only `filter` (a subject pattern below `wasl.evt.>`).
pub async fn subscribe(stream: &Stream, from: u64, filter: Option<&str>) -> Result<EventFeed, StoreError> {
    let config = OrderedConfig {
        filter_subject: filter.unwrap_or(EVENT_SUBJECTS).to_owned(),
        deliver_policy: DeliverPolicy::ByStartSequence {
            start_sequence: from.max(1),
        },
        ..Default::default()
    };
    let consumer = stream.create_consumer(config).await.map_err(StoreError::unavailable)?;
    let messages = consumer.messages().await.map_err(StoreError::unavailable)?;
    Ok(Box::pin(messages.map(|message| {
        let message = message.map_err(StoreError::unavailable)?;
        let sequence = message.info().map_err(StoreError::unavailable)?.stream_sequence;
        let event = decode_message(sequence, &message.subject, message.headers.as_ref(), &message.payload)?;
        let traceparent = crate::load::traceparent_of(message.headers.as_ref());
        Ok(Recorded {
            sequence,
            event,
            traceparent,
        })
    })))
}
