//! Restoring a backup into a NATS server that has none of its streams: everything is checked
//! first, then each stream is created from its saved configuration and its messages published
//! in order.

use crate::backup::{StreamReport, rate, write_streams};
use crate::erasures;
use crate::error::BackupError;
use crate::format::{self, EVENTS, KEYS, MANIFEST, MSG_ID, Manifest, Record, StreamEntry};
use async_nats::HeaderMap;
use async_nats::header::{HeaderName, HeaderValue};
use async_nats::jetstream::context::{CreateStreamErrorKind, PublishAckFuture, PublishError, PublishErrorKind};
use async_nats::jetstream::{self, publish::PublishAck};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasl_domain::ids::CaseId;
use wasl_vault::erase::UnreadableEvent;

/// How to restore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Replicas of every restored stream; `None` keeps each stream's saved value. Set it when
    /// the target cluster has another size than the source (a single server takes 1).
    pub replicas: Option<usize>,
}

/// Publishes awaiting their acknowledgement at a time. Order is kept: one connection, one
/// stream, and JetStream stores in the order it receives.
const WINDOW: usize = 512;

/// What re-applying the erasures did, when the backup held the data keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureReport {
    /// Cases whose erasure the restored log records; each one's key was destroyed again.
    pub reapplied: usize,
    /// Of those, the keys the backup still held (it was older than the erasure): never written.
    pub keys_withheld: usize,
    /// Messages on case subjects of the log that are not readable events, in log order:
    /// restored as they were and passed over; one whose `ce-type` says erasure counts as an
    /// erasure of its case (in `reapplied`). An operator should look at each.
    pub unreadable: Vec<UnreadableEvent>,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct RestoreReport {
    /// The backup directory.
    pub dir: PathBuf,
    /// The streams, in the order restored.
    pub streams: Vec<StreamReport>,
    /// The erasures applied again to the restored keys; `None` when the backup held no keys.
    pub erasures: Option<ErasureReport>,
    /// When the backup was taken (from its manifest).
    pub backup_created_at: String,
    pub elapsed: Duration,
}

impl RestoreReport {
    /// Messages restored.
    pub fn messages(&self) -> u64 {
        self.streams.iter().map(|s| s.messages).sum()
    }

    /// Bytes of the files read.
    pub fn bytes(&self) -> u64 {
        self.streams.iter().map(|s| s.bytes).sum()
    }
}

impl fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        writeln!(
            f,
            "restored {} streams, {} messages, {} bytes in {secs:.2} s ({:.0} messages/s) from {} (taken {})",
            self.streams.len(),
            self.messages(),
            self.bytes(),
            rate(self.messages(), self.elapsed),
            self.dir.display(),
            self.backup_created_at
        )?;
        write_streams(f, &self.streams, true)?;
        match &self.erasures {
            Some(e) => {
                writeln!(
                    f,
                    "data keys restored; {} erasure(s) recorded in the log re-applied ({} key(s) the backup \
                     still held for erased cases were not restored)",
                    e.reapplied, e.keys_withheld
                )?;
                if !e.unreadable.is_empty() {
                    writeln!(
                        f,
                        "{} message(s) on case subjects of the log are not readable events (restored as they \
                         were; look at each):",
                        e.unreadable.len()
                    )?;
                    for u in &e.unreadable {
                        let case = u.case.map_or_else(|| "no case".to_owned(), |c| format!("case {c}"));
                        let erasure = if u.erased_case().is_some() {
                            "; its type says erasure: taken for one"
                        } else {
                            ""
                        };
                        writeln!(f, "  sequence {}  {case}{erasure}", u.sequence)?;
                    }
                }
            }
            None => writeln!(
                f,
                "no data keys in this backup: sealed personal fields read as missing keys (never as erased)"
            )?,
        }
        writeln!(
            f,
            "next: rebuild the read models (wasl projections rebuild), then start the services; partners \
             create their feed consumers again"
        )
    }
}

/// A stream of the backup, checked.
struct Checked {
    entry: StreamEntry,
    path: PathBuf,
    /// Sequences whose `Nats-Msg-Id` repeats an earlier message's: published without it, since
    /// JetStream would drop them as duplicates within its window.
    repeated_ids: HashSet<u64>,
}

/// Everything checked before the server is touched.
struct Plan {
    created_at: String,
    streams: Vec<Checked>,
    /// Cases the backed-up log says were erased, and its unreadable case messages (read only
    /// when the backup holds keys).
    erasures: Erasures,
}

/// What the backed-up log says about erasures.
#[derive(Default)]
struct Erasures {
    erased: BTreeSet<CaseId>,
    unreadable: Vec<UnreadableEvent>,
}

/// Restores the backup in `dir` into the server behind `js`.
///
/// First, without touching the server: the manifest is read, every file's size and SHA-256 is
/// checked and every line parsed; with data keys, every case event is decoded to find the
/// erasures. Then it refuses if any stream of the backup exists on the target. Then, the event
/// log first and derived state after ([`format::restore_rank`]), it creates each stream from its
/// saved configuration (replicas overridden if asked) and publishes its messages in order with
/// their subjects, payloads and headers, less the publish controls JetStream would act on again
/// ([`format::is_publish_control`]). The event log and the audit keep every sequence number
/// (each publish expects the one before, with `Nats-Expected-Last-Sequence`, which stays on the
/// restored message as the stores' own expectations stayed on the originals, and each
/// acknowledgement is checked); other streams keep their order and, where they have no gaps,
/// their numbers too.
///
/// With data keys, the key of a case the log says was erased is never written, and the vault's
/// erasure is run again for each such case. A message on a case subject that is not a readable
/// event does not stop the restore: it is restored as it is, logged, listed in
/// [`ErasureReport::unreadable`], and counts as an erasure of its case when its `ce-type` says it
/// is one.
///
/// If anything fails after the first stream was created, the streams this restore created are
/// deleted again ([`BackupError::Incomplete`]) so it can be run again.
#[tracing::instrument(skip_all, fields(dir = %dir.display()), err)]
pub async fn restore(
    js: &jetstream::Context,
    dir: &Path,
    options: &RestoreOptions,
) -> Result<RestoreReport, BackupError> {
    let started = Instant::now();
    let owned = dir.to_owned();
    let plan = tokio::task::spawn_blocking(move || check(&owned))
        .await
        .map_err(|e| BackupError::io(dir, e))??;
    let mut existing = Vec::new();
    for checked in &plan.streams {
        match js.get_stream(&checked.entry.name).await {
            Ok(_) => existing.push(checked.entry.name.clone()),
            Err(err)
                if matches!(err.kind(), jetstream::context::GetStreamErrorKind::JetStream(api)
                    if api.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) => {}
            Err(err) => return Err(BackupError::unavailable(err)),
        }
    }
    if !existing.is_empty() {
        return Err(BackupError::StreamsExist(existing));
    }
    let mut created = Vec::new();
    match restore_streams(js, &plan, options, &mut created).await {
        Ok((streams, erasures)) => {
            let report = RestoreReport {
                dir: dir.to_owned(),
                streams,
                erasures,
                backup_created_at: plan.created_at,
                elapsed: started.elapsed(),
            };
            tracing::info!(
                streams = report.streams.len(),
                messages = report.messages(),
                "backup restored"
            );
            Ok(report)
        }
        Err(cause) => {
            let mut left_behind = Vec::new();
            for name in created.iter().rev() {
                if let Err(err) = js.delete_stream(name).await {
                    tracing::error!(stream = %name, error = %err, "cannot delete a stream of the failed restore");
                    left_behind.push(name.clone());
                }
            }
            Err(BackupError::Incomplete {
                cause: Box::new(cause),
                left_behind,
            })
        }
    }
}

async fn restore_streams(
    js: &jetstream::Context,
    plan: &Plan,
    options: &RestoreOptions,
    created: &mut Vec<String>,
) -> Result<(Vec<StreamReport>, Option<ErasureReport>), BackupError> {
    let mut reports = Vec::new();
    let mut erasures = None;
    for checked in &plan.streams {
        let name = &checked.entry.name;
        let replicas = create(js, &checked.entry, options, created).await?;
        let (report, withheld) = publish_all(js, checked, &plan.erasures.erased).await?;
        seal_if_sealed(js, &checked.entry, options).await?;
        tracing::info!(stream = %name, messages = report.messages, "stream restored");
        reports.push(report);
        if name == KEYS {
            // Before anything else is written: the log is restored, the keys now too.
            let in_log = erasures::erased_in_log(js, EVENTS).await?;
            if in_log != plan.erasures.erased {
                return Err(BackupError::Erasures(format!(
                    "the restored log records {} erasure(s), the backup's {}",
                    in_log.len(),
                    plan.erasures.erased.len()
                )));
            }
            erasures::erase_again(js, &in_log, replicas).await?;
            erasures = Some(ErasureReport {
                reapplied: in_log.len(),
                keys_withheld: withheld,
                unreadable: plan.erasures.unreadable.clone(),
            });
        }
    }
    Ok((reports, erasures))
}

/// Creates the stream from its saved configuration; returns its replicas.
async fn create(
    js: &jetstream::Context,
    entry: &StreamEntry,
    options: &RestoreOptions,
    created: &mut Vec<String>,
) -> Result<usize, BackupError> {
    let name = entry.name.as_str();
    let mut config = entry.config.clone();
    if let Some(replicas) = options.replicas {
        config.num_replicas = replicas;
    }
    // Sealed streams take no messages: sealed again once filled.
    config.sealed = false;
    // The server's own bookkeeping (`_nats.*`: API level, version) is its to set.
    config.metadata.retain(|key, _| !key.starts_with("_nats."));
    // Start where the original started, so a stream without gaps keeps its numbers.
    if entry.first_seq > 1 {
        config.first_sequence = Some(entry.first_seq);
    }
    let replicas = config.num_replicas.max(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        match js.create_stream(config.clone()).await {
            Ok(stream) => break stream,
            // A busy cluster can answer late (the stream may exist by now: creating it again
            // with the same configuration is harmless, and the check below sees whether it is
            // still empty), and a cluster just started may not see all its peers yet.
            Err(err)
                if Instant::now() < deadline
                    && match err.kind() {
                        CreateStreamErrorKind::TimedOut | CreateStreamErrorKind::JetStreamUnavailable => true,
                        CreateStreamErrorKind::JetStream(api) => matches!(
                            api.error_code(),
                            jetstream::ErrorCode::CLUSTER_NO_PEERS | jetstream::ErrorCode::CLUSTER_NOT_AVAILABLE
                        ),
                        _ => false,
                    } =>
            {
                tracing::warn!(stream = %name, error = %err, "the stream cannot be created yet; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(err) => return Err(BackupError::stream(name, None, format!("cannot create it: {err}"))),
        }
    };
    created.push(name.to_owned());
    // Creating is idempotent in JetStream: make sure nobody else made it with messages meanwhile.
    for _ in 0..100 {
        let info = stream.info().await.map_err(|e| BackupError::stream(name, None, e))?;
        if info.state.messages > 0 {
            created.pop();
            return Err(BackupError::StreamsExist(vec![name.to_owned()]));
        }
        // A replicated stream takes publishes once it has a leader.
        match &info.cluster {
            Some(cluster) if cluster.leader.is_none() => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => return Ok(replicas),
        }
    }
    Err(BackupError::stream(name, None, "it elected no leader within 10 s"))
}

async fn seal_if_sealed(
    js: &jetstream::Context,
    entry: &StreamEntry,
    options: &RestoreOptions,
) -> Result<(), BackupError> {
    if !entry.config.sealed {
        return Ok(());
    }
    let mut stream = js
        .get_stream(&entry.name)
        .await
        .map_err(|e| BackupError::stream(&entry.name, None, e))?;
    let mut config = stream
        .info()
        .await
        .map_err(|e| BackupError::stream(&entry.name, None, e))?
        .config
        .clone();
    config.sealed = true;
    if let Some(replicas) = options.replicas {
        config.num_replicas = replicas;
    }
    js.update_stream(config)
        .await
        .map_err(|e| BackupError::stream(&entry.name, None, format!("cannot seal it again: {e}")))?;
    Ok(())
}

/// Publishes the stream's messages in order; returns its report and the keys withheld.
async fn publish_all(
    js: &jetstream::Context,
    checked: &Checked,
    erased: &BTreeSet<CaseId>,
) -> Result<(StreamReport, usize), BackupError> {
    let name = checked.entry.name.as_str();
    let exact = format::keeps_sequences(name);
    let mut pending: VecDeque<(u64, PublishAckFuture)> = VecDeque::new();
    let mut kept = true;
    let mut withheld = 0;
    let mut published = 0_u64;
    let file = File::open(&checked.path).map_err(|e| BackupError::io(&checked.path, e))?;
    for line in BufReader::with_capacity(1 << 20, file).lines() {
        let line = line.map_err(|e| BackupError::io(&checked.path, e))?;
        let (record, payload) = parse(&line)
            .map_err(|reason| BackupError::corrupt(&checked.path, format!("changed since it was checked: {reason}")))?;
        let seq = record.seq;
        if name == KEYS && erasures::key_put_of(&record).is_some_and(|case| erased.contains(&case)) {
            // The backup is older than this case's erasure: its key must not come back.
            withheld += 1;
            kept = false;
            continue;
        }
        let mut headers = HeaderMap::new();
        for (header, value) in &record.headers {
            if format::is_publish_control(header) || (header == MSG_ID && checked.repeated_ids.contains(&seq)) {
                continue;
            }
            headers.append(header.as_str(), value.as_str());
        }
        if exact {
            headers.insert("Nats-Expected-Last-Sequence", (seq - 1).to_string());
        }
        let payload = bytes::Bytes::from(payload);
        if published == 0 {
            // The first one alone: in a cluster, a new stream's subjects reach the other nodes
            // a moment after it has a leader, and until then a publish finds no stream (and
            // stores nothing, so sending it again is safe).
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let sent = js
                    .publish_with_headers(record.subject.clone(), headers.clone(), payload.clone())
                    .await
                    .map_err(|e| BackupError::stream(name, Some(seq), e))?
                    .await;
                match sent {
                    Err(err) if err.kind() == PublishErrorKind::StreamNotFound && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    sent => {
                        kept &= check_ack(name, exact, seq, sent)?;
                        break;
                    }
                }
            }
            published += 1;
            continue;
        }
        let ack = js
            .publish_with_headers(record.subject, headers, payload)
            .await
            .map_err(|e| BackupError::stream(name, Some(seq), e))?;
        pending.push_back((seq, ack));
        if pending.len() >= WINDOW
            && let Some((seq, ack)) = pending.pop_front()
        {
            kept &= settle(name, exact, seq, ack).await?;
        }
        published += 1;
    }
    while let Some((seq, ack)) = pending.pop_front() {
        kept &= settle(name, exact, seq, ack).await?;
    }
    Ok((
        StreamReport {
            name: name.to_owned(),
            messages: published,
            bytes: checked.entry.bytes,
            sequences_kept: kept,
        },
        withheld,
    ))
}

/// Waits for one acknowledgement; whether the message kept its sequence.
async fn settle(name: &str, exact: bool, seq: u64, ack: PublishAckFuture) -> Result<bool, BackupError> {
    check_ack(name, exact, seq, ack.await)
}

/// Checks one acknowledgement; whether the message kept its sequence.
fn check_ack(name: &str, exact: bool, seq: u64, ack: Result<PublishAck, PublishError>) -> Result<bool, BackupError> {
    let ack = ack.map_err(|e| BackupError::stream(name, Some(seq), e))?;
    if ack.duplicate {
        return Err(BackupError::stream(
            name,
            Some(seq),
            "JetStream dropped it as a duplicate message id",
        ));
    }
    if exact && ack.sequence != seq {
        return Err(BackupError::stream(
            name,
            Some(seq),
            format!("it landed at sequence {}", ack.sequence),
        ));
    }
    Ok(ack.sequence == seq)
}

/// One line: the record and its decoded payload; the headers are checked to be sendable.
fn parse(line: &str) -> Result<(Record, Vec<u8>), String> {
    let record: Record = serde_json::from_str(line).map_err(|e| format!("not a message record: {e}"))?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(&record.data)
        .map_err(|e| format!("the payload of sequence {} is not base64: {e}", record.seq))?;
    if record.subject.is_empty() || record.subject.contains(char::is_whitespace) {
        return Err(format!("sequence {} has no usable subject", record.seq));
    }
    for (name, value) in &record.headers {
        if name.parse::<HeaderName>().is_err() || value.parse::<HeaderValue>().is_err() {
            return Err(format!("sequence {} has an unusable header", record.seq));
        }
    }
    Ok((record, payload))
}

/// Reads the manifest and every file, and checks them against each other.
fn check(dir: &Path) -> Result<Plan, BackupError> {
    let manifest_path = dir.join(MANIFEST);
    let text = std::fs::read(&manifest_path).map_err(|e| BackupError::corrupt(&manifest_path, e))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| BackupError::corrupt(&manifest_path, e))?;
    if manifest.format != format::FORMAT || manifest.version != format::VERSION {
        return Err(BackupError::corrupt(
            &manifest_path,
            format!(
                "a {} backup of version {}; this Wasl reads {} version {}",
                manifest.format,
                manifest.version,
                format::FORMAT,
                format::VERSION
            ),
        ));
    }
    let mut names = HashSet::new();
    for entry in &manifest.streams {
        let bad = |reason: &str| BackupError::corrupt(&manifest_path, format!("stream {}: {reason}", entry.name));
        if !format::is_wasl_stream(&entry.name) || entry.config.name != entry.name {
            return Err(bad("not a Wasl stream, or its configuration names another"));
        }
        // Never a path of the manifest's choosing: only the file the backup writes.
        if entry.file != format::file_name(&entry.name) {
            return Err(bad("its file name is not the one a backup writes"));
        }
        if !names.insert(entry.name.as_str()) {
            return Err(bad("listed twice"));
        }
    }
    let has = |name: &str| names.contains(name);
    if has(KEYS) && !has(EVENTS) {
        return Err(BackupError::corrupt(
            &manifest_path,
            "it holds the data keys without the event log, so erasures could not be re-applied",
        ));
    }
    if manifest.with_keys != has(KEYS) {
        return Err(BackupError::corrupt(
            &manifest_path,
            "with_keys does not match the streams it lists",
        ));
    }
    let mut erasures = Erasures::default();
    let mut streams = Vec::new();
    let mut ordered: Vec<&StreamEntry> = manifest.streams.iter().collect();
    ordered.sort_by(|a, b| {
        format::restore_rank(&a.name)
            .cmp(&format::restore_rank(&b.name))
            .then_with(|| a.name.cmp(&b.name))
    });
    for entry in ordered {
        let path = dir.join(&entry.file);
        let find_erasures = manifest.with_keys && entry.name == EVENTS;
        let repeated_ids = check_file(entry, &path, find_erasures.then_some(&mut erasures))?;
        streams.push(Checked {
            entry: entry.clone(),
            path,
            repeated_ids,
        });
    }
    Ok(Plan {
        created_at: manifest.created_at,
        streams,
        erasures,
    })
}

/// Checks one stream's file: size, SHA-256, every line, the sequence rules; collects the
/// erasures (and reports the unreadable case messages) when asked. Returns the sequences whose
/// message id repeats.
fn check_file(
    entry: &StreamEntry,
    path: &Path,
    mut erasures: Option<&mut Erasures>,
) -> Result<HashSet<u64>, BackupError> {
    let corrupt = |reason: String| BackupError::corrupt(path, reason);
    let file = File::open(path).map_err(|e| corrupt(e.to_string()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hash = Sha256::new();
    let mut bytes = 0_u64;
    let mut messages = 0_u64;
    let mut previous = 0_u64;
    let mut ids: HashSet<[u8; 16]> = HashSet::new();
    let mut repeated = HashSet::new();
    let exact = format::keeps_sequences(&entry.name);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| corrupt(e.to_string()))?;
        if read == 0 {
            break;
        }
        hash.update(&line);
        bytes += read as u64;
        if line.pop() != Some(b'\n') {
            return Err(corrupt(format!(
                "it ends inside the record after sequence {previous} (truncated)"
            )));
        }
        let text = std::str::from_utf8(&line)
            .map_err(|_| corrupt(format!("the record after sequence {previous} is not text")))?;
        let (record, payload) = parse(text).map_err(corrupt)?;
        let seq = record.seq;
        if seq <= previous || seq > entry.last_seq || seq < entry.first_seq {
            return Err(corrupt(format!(
                "sequence {seq} is out of order or outside {}..={}",
                entry.first_seq, entry.last_seq
            )));
        }
        if exact && seq != previous + 1 {
            return Err(corrupt(format!(
                "{} must hold every sequence from 1 (its positions are referred to elsewhere), but {} follows {previous}",
                entry.name, seq
            )));
        }
        if let Some((_, id)) = record.headers.iter().find(|(n, _)| n == MSG_ID) {
            let digest = Sha256::digest(id.as_bytes());
            let mut key = [0u8; 16];
            key.copy_from_slice(&digest[..16]);
            if !ids.insert(key) {
                repeated.insert(seq);
            }
        }
        if let Some(found) = erasures.as_deref_mut() {
            match erasures::erased_by(&record, &payload) {
                erasures::Found::Nothing => {}
                erasures::Found::Erased(case) => {
                    found.erased.insert(case);
                }
                erasures::Found::Unreadable(unreadable) => {
                    unreadable.report("restore");
                    found.erased.extend(unreadable.erased_case());
                    found.unreadable.push(unreadable);
                }
            }
        }
        previous = seq;
        messages += 1;
    }
    if exact && previous != entry.last_seq {
        return Err(corrupt(format!(
            "{} must hold every sequence up to {}, but it ends at {previous}",
            entry.name, entry.last_seq
        )));
    }
    if messages != entry.messages || bytes != entry.bytes {
        return Err(corrupt(format!(
            "it holds {messages} messages in {bytes} bytes; the manifest says {} in {} (truncated or altered)",
            entry.messages, entry.bytes
        )));
    }
    if hex::encode(hash.finalize()) != entry.sha256 {
        return Err(corrupt("its SHA-256 differs from the manifest's (altered)".to_owned()));
    }
    Ok(repeated)
}
