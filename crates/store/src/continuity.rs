//! The log never goes backwards unnoticed. A reader that keeps a checkpoint (the projector, the
//! router, the follow-up service) records the stream sequence *and* the event id of the last
//! message it processed, a [`Mark`]. On start, on every resubscription and every few seconds while
//! it follows the log, it asks [`check`] whether the log still holds that message. If the log ends
//! before it (a wiped store recreated empty, an older backup restored under live read models) or
//! another event sits there (a different log), the reader must stop and say so: carrying on would
//! skip every new event up to its old checkpoint, or mix two histories.

use crate::error::StoreError;
use async_nats::HeaderMap;
use async_nats::jetstream::stream::Stream;

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
