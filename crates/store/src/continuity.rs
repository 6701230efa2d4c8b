//! The log never goes backwards unnoticed. A reader that keeps a checkpoint (the projector, the
//! router, the follow-up service) records the stream sequence *and* the event id of the last
//! message it processed, a [`Mark`]. On start, on every resubscription and every few seconds while
//! it follows the log, it asks [`check`] whether the log still holds that message. If the log ends
//! before it (a wiped store recreated empty, an older backup restored under live read models) or
//! another event sits there (a different log), the reader must stop and say so: carrying on would
//! skip every new event up to its old checkpoint, or mix two histories. [`FollowLoop`] is the loop
//! of a service that follows the log this way: stop on a divergence, resume after an error.

use crate::error::StoreError;
use async_nats::HeaderMap;
use async_nats::jetstream::stream::Stream;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What a reader recorded about the last message it processed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mark {
    /// Its stream sequence (0: nothing read yet, nothing to check).
    pub sequence: u64,
    /// Its event id (`ce-id`), when it had one; without it only the sequence is checked.
    pub event_id: Option<String>,
}

/// How the log differs from what a reader recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Divergence {
    /// The log ends before the reader's checkpoint.
    #[error(
        "the event log ends at sequence {last}, but sequence {sequence} had already been read: the log was \
         replaced or cut short (a wiped store, or an older backup restored under newer state)"
    )]
    Shorter {
        /// The reader's checkpoint.
        sequence: u64,
        /// The log's last sequence now.
        last: u64,
    },
    /// The message at the checkpoint is not the event the reader processed there.
    #[error(
        "the message at sequence {sequence} is not the event that was read there: the log was replaced \
         (another server's store, or a different backup restored)"
    )]
    Replaced {
        /// The reader's checkpoint.
        sequence: u64,
    },
}

/// The identity of a stored message: its `ce-id` header, when it has one.
pub fn identity(headers: Option<&HeaderMap>) -> Option<String> {
    headers
        .and_then(|h| h.get(wasl_events::headers::CE_ID))
        .map(|v| v.as_str().chars().take(64).collect())
}

/// A service that follows the event log from a checkpoint of its own (the follow-up and
/// notification services): how it is named and how long it waits before trying again.
#[derive(Debug, Clone, Copy)]
pub struct FollowLoop<'a> {
    /// Its label in `wasl_log_diverged_total{reader}`.
    pub reader: &'static str,
    /// Its name in log lines ("the follow-up service").
    pub service: &'a str,
    /// How long it waits, while stopped on a diverged log, before looking again.
    pub check_interval: Duration,
    /// How long it waits after any other error before resubscribing.
    pub retry_delay: Duration,
}

/// How one attempt at following the log ended, when it ended with an error.
#[derive(Debug)]
pub enum Interruption<E> {
    /// The log went backwards or was replaced: the follower stays stopped until it matches again.
    Diverged(String),
    /// Anything else (the log, the database): resume from the checkpoint.
    Failed(E),
}

impl FollowLoop<'_> {
    /// Runs `attempt` (one subscription from the checkpoint) again and again until `stopped` is
    /// cancelled: at once after it returns `Ok` (to reload), after [`FollowLoop::retry_delay`]
    /// when it fails, after [`FollowLoop::check_interval`] when the log diverged. A divergence is
    /// logged and counted once, when `newly_diverged` says it is news (the service records the
    /// reason it reports, e.g. in `/readyz`).
    pub async fn run<E: std::fmt::Display, Fut>(
        &self,
        stopped: &CancellationToken,
        mut attempt: impl FnMut() -> Fut,
        mut newly_diverged: impl FnMut(&str) -> bool,
    ) where
        Fut: Future<Output = Result<(), Interruption<E>>>,
    {
        while !stopped.is_cancelled() {
            let outcome = tokio::select! {
                outcome = attempt() => outcome,
                () = stopped.cancelled() => return,
            };
            let pause = match outcome {
                Ok(()) => continue,
                Err(Interruption::Diverged(reason)) => {
                    if newly_diverged(&reason) {
                        wasl_telemetry::metrics::log_diverged(self.reader);
                        tracing::error!(%reason, service = self.service, "the event log is behind the service's checkpoint or was replaced; it stopped (see docs/operations.md)");
                    }
                    self.check_interval
                }
                Err(Interruption::Failed(error)) => {
                    tracing::warn!(%error, service = self.service, "interrupted; resuming from its checkpoint");
                    self.retry_delay
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stopped.cancelled() => return,
            }
        }
    }
}

/// Whether `stream` still holds the message `mark` names: `None` when it does (or when the mark
/// is at 0), the divergence when it does not, an error when the log cannot be asked now. One
/// direct get when the log is as expected — cheap enough to ask before every batch a reader
/// commits, so that no event of a replaced log is ever applied.
pub async fn check(stream: &Stream, mark: &Mark) -> Result<Option<Divergence>, StoreError> {
    if mark.sequence == 0 {
        return Ok(None);
    }
    match stream.get_raw_message(mark.sequence).await {
        Ok(message) => {
            let found = identity(Some(&message.headers));
            match &mark.event_id {
                Some(expected) if found.as_deref() != Some(expected.as_str()) => Ok(Some(Divergence::Replaced {
                    sequence: mark.sequence,
                })),
                _ => Ok(None),
            }
        }
        Err(err)
            if matches!(
                err.kind(),
                async_nats::jetstream::stream::RawMessageErrorKind::NoMessageFound
            ) =>
        {
            let last = stream
                .get_info()
                .await
                .map_err(StoreError::unavailable)?
                .state
                .last_sequence;
            if last < mark.sequence {
                Ok(Some(Divergence::Shorter {
                    sequence: mark.sequence,
                    last,
                }))
            } else {
                // Below the log's end but gone: deletes are denied, so this log is another one.
                Ok(Some(Divergence::Replaced {
                    sequence: mark.sequence,
                }))
            }
        }
        Err(err) => Err(StoreError::unavailable(err)),
    }
}
