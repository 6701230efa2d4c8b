//! Following the log as a checkpointed service does (the follow-up service, the notification
//! service): from a [`Mark`], in batches, each batch checked against [`continuity`] before it is
//! handed over, so nothing read from a log replaced since the checkpoint is ever acted on; and
//! every few seconds while the log is quiet. An unreadable message arrives as
//! [`Entry::Unreadable`] (to park and report) or, once an operator skipped it
//! (`wasl log skip`), as [`Entry::Skipped`]: never a silent gap, never a stop.

use crate::continuity::{self, Divergence, Mark};
use crate::error::StoreError;
use crate::handler::EventStore;
use crate::load::Recorded;
use crate::skips::Skips;
use crate::subscribe::{EventFeed, subscribe};
use async_nats::jetstream::stream::Stream;
use futures_util::{FutureExt, StreamExt};
use std::time::Duration;

/// One message of the log, as a checkpointed reader takes it.
#[derive(Debug)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum Entry {
    /// A readable event.
    Event(Box<Recorded>),
    /// An unreadable message an operator skipped.
    Skipped(u64),
    /// An unreadable message, not skipped: the reader parks and reports it, and goes on.
    Unreadable {
        /// Its stream sequence.
        sequence: u64,
        subject: String,
        /// Why it cannot be read.
        reason: String,
    },
}

impl Entry {
    /// The checkpoint after this entry.
    pub fn mark(&self) -> Mark {
        match self {
            Self::Event(recorded) => Mark {
                sequence: recorded.sequence,
                event_id: Some(recorded.event.meta.event_id.to_string()),
            },
            Self::Skipped(sequence) | Self::Unreadable { sequence, .. } => Mark {
                sequence: *sequence,
                event_id: None,
            },
        }
    }

    /// Its stream sequence.
    pub fn sequence(&self) -> u64 {
        self.mark().sequence
    }
}

/// What [`Follower::next`] found.
#[derive(Debug)]
pub enum Step {
    /// The next entries, in log order, at most the batch size; never empty.
    Batch(Vec<Entry>),
    /// The log no longer holds the reader's checkpoint: stop and say so.
    Diverged(Divergence),
}

/// A subscription from a checkpoint.
pub struct Follower {
    stream: Stream,
    skips: Skips,
    feed: EventFeed,
    check: tokio::time::Interval,
    batch_size: usize,
}

impl Follower {
    /// Subscribes after `mark`, once the log is checked to still hold it (`Err(divergence)`
    /// when it does not). Batches hold at most `batch_size` entries; while the log is quiet,
    /// continuity is checked every `check_interval`.
    pub async fn start(
        store: &EventStore,
        mark: &Mark,
        batch_size: usize,
        check_interval: Duration,
    ) -> Result<Result<Self, Divergence>, StoreError> {
        if let Some(divergence) = continuity::check(store.stream(), mark).await? {
            return Ok(Err(divergence));
        }
        let feed = subscribe(store.stream(), mark.sequence + 1, None).await?;
        let mut check = tokio::time::interval(check_interval);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        check.tick().await;
        Ok(Ok(Self {
            stream: store.stream().clone(),
            skips: store.skips().clone(),
            feed,
            check,
            batch_size: batch_size.max(1),
        }))
    }

    /// Waits for the next batch after `mark` (the reader's checkpoint now), or for the log to
    /// diverge from it. An error is for the reader to retry (the log cannot be asked now, or the
    /// subscription ended).
    pub async fn next(&mut self, mark: &Mark) -> Result<Step, StoreError> {
        let stream = &self.stream;
        let first = loop {
            tokio::select! {
                first = self.feed.next() => break first,
                _ = self.check.tick() => {
                    if let Some(divergence) = continuity::check(stream, mark).await? {
                        return Ok(Step::Diverged(divergence));
                    }
                }
            }
        };
        let Some(first) = first else {
            return Err(StoreError::Unavailable("the event log subscription ended".to_owned()));
        };
        let mut batch = vec![first];
        while batch.len() < self.batch_size {
            match self.feed.next().now_or_never() {
                Some(Some(item)) => batch.push(item),
                _ => break,
            }
        }
        // Nothing read from a log replaced since the checkpoint is acted on.
        if let Some(divergence) = continuity::check(stream, mark).await? {
            return Ok(Step::Diverged(divergence));
        }
        let mut entries = Vec::with_capacity(batch.len());
        for item in batch {
            match item {
                Ok(recorded) => entries.push(Entry::Event(Box::new(recorded))),
                Err(StoreError::Undecodable { sequence, reason }) => {
                    if self.skips.contains(sequence).await? {
                        entries.push(Entry::Skipped(sequence));
                    } else {
                        let subject = stream
                            .get_raw_message(sequence)
                            .await
                            .map(|m| m.subject.to_string())
                            .unwrap_or_default();
                        entries.push(Entry::Unreadable {
                            sequence,
                            subject,
                            reason,
                        });
                    }
                }
                Err(other) => return Err(other),
            }
        }
        Ok(Step::Batch(entries))
    }
}
