//! What a backup directory holds: `manifest.json` and one JSON-lines file per stream.
//!
//! Plain text on purpose: an operator can check a backup with `sha256sum`, `jq` and `wc -l`, and
//! read it back without Wasl. Message bodies are base64 (events are protobuf); subjects and
//! headers stay readable.

use async_nats::jetstream::stream;
use serde::{Deserialize, Serialize};

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// What `format` says in every manifest.
pub const FORMAT: &str = "wasl-backup";
/// The layout version written; restore refuses any other.
pub const VERSION: u32 = 1;

/// The event log.
pub const EVENTS: &str = "WASL_EVENTS";
/// The hash-chained access audit.
pub const AUDIT: &str = "WASL_AUDIT";
/// The data keys' bucket, as a stream.
pub const KEYS: &str = "KV_WASL_KEYS";
/// The data keys' bucket, as the vault names it.
pub const KEYS_BUCKET: &str = "WASL_KEYS";
/// The router's checkpoint bucket, as a stream.
pub const ROUTER: &str = "KV_WASL_ROUTER";
/// Every partner feed's name starts with this.
pub const FEED_PREFIX: &str = "WASL_OUT_";

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The layout version ([`VERSION`]).
    pub version: u32,
    /// When the backup started, RFC 3339 UTC.
    pub created_at: String,
    /// Whether the data keys (`KV_WASL_KEYS`) are in it.
    pub with_keys: bool,
    /// The streams, in the order they were read.
    pub streams: Vec<StreamEntry>,
}

/// One stream in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamEntry {
    /// The stream's name.
    pub name: String,
    /// Its file in the backup directory.
    pub file: String,
    /// Its configuration, as the server reported it; restore creates the stream from it.
    pub config: stream::Config,
    /// The stream's first sequence when it was read (the next one, when it was empty).
    pub first_seq: u64,
    /// The last sequence read: the backup holds the stream up to here.
    pub last_seq: u64,
    /// Messages in the file.
    pub messages: u64,
    /// The file's size.
    pub bytes: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// One line of a stream's file: a stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Record {
    /// Its stream sequence.
    pub seq: u64,
    pub subject: String,
    /// Its headers as stored, `[name, value]` in order (a name given twice appears twice).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// Its payload, base64 (standard alphabet, padded).
    pub data: String,
}

/// Whether `name` is one of Wasl's streams (`WASL_*`, or a bucket `KV_WASL_*`).
pub fn is_wasl_stream(name: &str) -> bool {
    name.starts_with("WASL_") || name.starts_with("KV_WASL_")
}

/// Streams whose sequence numbers are positions other state refers to: the router's checkpoint,
/// the feeds' `Wasl-Source-Seq` and the read models' checkpoints point into the event log, and
/// the audit chain is appended and verified by sequence. Restore reproduces them exactly.
pub fn keeps_sequences(name: &str) -> bool {
    name == EVENTS || name == AUDIT
}

/// The order of an online backup: derived state before its source. The router's checkpoint
/// first, then the feeds it writes (so the feeds hold at least what the checkpoint says was
/// routed), then everything else, then the event log (which then holds everything the feeds and
/// the checkpoint refer to), and the data keys last (a key is made before the first event that
/// uses it, so every sealed value in the log has its key in the backup).
pub fn backup_rank(name: &str) -> u8 {
    match name {
        ROUTER => 0,
        _ if name.starts_with(FEED_PREFIX) => 1,
        EVENTS => 3,
        KEYS => 4,
        _ => 2,
    }
}

/// The order of a restore: the source before what is derived from it, and the keys right after
/// the log, so the erasures it records are re-applied before anything else is written.
pub fn restore_rank(name: &str) -> u8 {
    match name {
        EVENTS => 0,
        KEYS => 1,
        _ if name.starts_with(FEED_PREFIX) => 3,
        ROUTER => 4,
        _ => 2,
    }
}

/// A stream's file name in the backup directory.
pub fn file_name(stream: &str) -> String {
    format!("{stream}.jsonl")
}

/// Whether a header is one JetStream acts on at publish time and that must not act again on
/// restore: expectations (`Nats-Expected-*`, written by the store and the audit for their
/// optimistic concurrency, meaningless against a new stream) and atomic-batch framing
/// (`Nats-Batch-*`: a lone message of a batch would never commit). `Nats-Msg-Id` is data here
/// (the partner feed's documented header, the webhook id) and is kept; see `restore`.
pub fn is_publish_control(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("nats-expected-") || lower.starts_with("nats-batch-")
}

/// The header that carries JetStream's message id.
pub const MSG_ID: &str = "Nats-Msg-Id";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_order_puts_derived_state_before_its_source_and_keys_last() {
        let mut names = vec![
            "KV_WASL_KEYS",
            "WASL_EVENTS",
            "WASL_AUDIT",
            "WASL_OUT_b",
            "KV_WASL_ROUTER",
            "WASL_OUT_a",
            "KV_WASL_WEBHOOKS",
        ];
        names.sort_by_key(|n| (backup_rank(n), n.to_string()));
        assert_eq!(
            names,
            [
                "KV_WASL_ROUTER",
                "WASL_OUT_a",
                "WASL_OUT_b",
                "KV_WASL_WEBHOOKS",
                "WASL_AUDIT",
                "WASL_EVENTS",
                "KV_WASL_KEYS"
            ]
        );
        names.sort_by_key(|n| (restore_rank(n), n.to_string()));
        assert_eq!(
            names,
            [
                "WASL_EVENTS",
                "KV_WASL_KEYS",
                "KV_WASL_WEBHOOKS",
                "WASL_AUDIT",
                "WASL_OUT_a",
                "WASL_OUT_b",
                "KV_WASL_ROUTER"
            ]
        );
    }

    #[test]
    fn only_wasl_streams_are_backed_up() {
        assert!(is_wasl_stream("WASL_EVENTS"));
        assert!(is_wasl_stream("KV_WASL_KEYS"));
        assert!(!is_wasl_stream("KV_OTHER"));
        assert!(!is_wasl_stream("BENCH_RAW"));
        assert!(!is_wasl_stream("OBJ_WASL_X"));
    }

    #[test]
    fn expectations_and_batch_framing_are_dropped_and_the_message_id_kept() {
        assert!(is_publish_control("Nats-Expected-Last-Subject-Sequence"));
        assert!(is_publish_control("nats-expected-last-sequence"));
        assert!(is_publish_control("Nats-Batch-Id"));
        assert!(!is_publish_control("Nats-Msg-Id"));
        assert!(!is_publish_control("Nats-Rollup"));
        assert!(!is_publish_control("KV-Operation"));
        assert!(!is_publish_control("Wasl-Source-Seq"));
    }

    #[test]
    fn a_record_is_one_readable_json_line() {
        let record = Record {
            seq: 7,
            subject: "wasl.evt.case.x".to_owned(),
            headers: vec![("ce-type".to_owned(), "t".to_owned())],
            data: "AAE=".to_owned(),
        };
        let line = serde_json::to_string(&record).expect("serialises");
        assert_eq!(
            line,
            r#"{"seq":7,"subject":"wasl.evt.case.x","headers":[["ce-type","t"]],"data":"AAE="}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&line).expect("parses"), record);
    }
}
