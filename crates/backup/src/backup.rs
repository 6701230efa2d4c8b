//! Taking a backup: every Wasl stream, in the order that keeps an online backup consistent, to
//! one file each, with a manifest that says what the files must be.

use crate::error::BackupError;
use crate::format::{self, KEYS, MANIFEST, Manifest, Record, StreamEntry};
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use base64::Engine as _;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What to back up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupOptions {
    /// Include the data keys (`KV_WASL_KEYS`). Off by default: a key backup taken before an
    /// erasure brings the erased data back if restored without re-applying the erasure, so keep
    /// such a backup no longer than the erasure promise (see `docs/deploy.md`).
    pub with_keys: bool,
}

/// How long a stream may stay silent before the backup gives up on it.
const IDLE: Duration = Duration::from_secs(30);

/// One stream of a backup or a restore, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReport {
    /// The stream.
    pub name: String,
    /// Messages written or restored.
    pub messages: u64,
    /// Size of its file.
    pub bytes: u64,
    /// Whether every message kept its sequence number (restore only; always for a backup).
    pub sequences_kept: bool,
}

/// What a backup did.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct BackupReport {
    /// The backup directory.
    pub dir: PathBuf,
    /// The streams, in the order they were read.
    pub streams: Vec<StreamReport>,
    /// Streams named like Wasl's that were left out, with why.
    pub skipped: Vec<(String, String)>,
    /// Whether the data keys are in it.
    pub with_keys: bool,
    pub elapsed: Duration,
}

impl BackupReport {
    /// Messages in the backup.
    pub fn messages(&self) -> u64 {
        self.streams.iter().map(|s| s.messages).sum()
    }

    /// Bytes of its files.
    pub fn bytes(&self) -> u64 {
        self.streams.iter().map(|s| s.bytes).sum()
    }
}

pub(crate) fn rate(messages: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { messages as f64 / secs } else { 0.0 }
}

pub(crate) fn write_streams(f: &mut fmt::Formatter<'_>, streams: &[StreamReport], restore: bool) -> fmt::Result {
    for s in streams {
        let kept = if !restore {
            ""
        } else if s.sequences_kept {
            "  sequences kept"
        } else {
            "  renumbered"
        };
        writeln!(
            f,
            "  {:<52} {:>9} messages {:>12} bytes{kept}",
            s.name, s.messages, s.bytes
        )?;
    }
    Ok(())
}

impl fmt::Display for BackupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        writeln!(
            f,
            "backed up {} streams, {} messages, {} bytes in {secs:.2} s ({:.0} messages/s) to {}",
            self.streams.len(),
            self.messages(),
            self.bytes(),
            rate(self.messages(), self.elapsed),
            self.dir.display()
        )?;
        write_streams(f, &self.streams, false)?;
        for (name, why) in &self.skipped {
            writeln!(f, "  skipped {name}: {why}")?;
        }
        if self.with_keys {
            writeln!(
                f,
                "WARNING: this backup holds the data keys ({KEYS}). Keep it no longer than you promise \
                 erasure takes, encrypted, and never beside the master key: restored after an erasure \
                 without the log that records it, it would bring erased personal data back."
            )?;
        } else {
            writeln!(
                f,
                "the data keys ({KEYS}) are not in it: restored alone, sealed personal fields read as \
                 missing keys; everything else is complete"
            )?;
        }
        Ok(())
    }
}

/// Backs up every Wasl stream of the server (`WASL_*` and the buckets `KV_WASL_*`; the data
/// keys only with [`BackupOptions::with_keys`]) into `out_dir`, which must not exist or be
/// empty. Safe while Wasl runs: streams are read derived-state-first (see
/// [`format::backup_rank`]), each up to its last sequence when it is reached. Files are written
/// into a temporary directory beside `out_dir` and renamed at the end, so `out_dir` either holds
/// a complete backup or nothing; the directory is 0700 and the files 0600 (sealed personal data,
/// sealed webhook signing secrets).
#[tracing::instrument(skip_all, fields(dir = %out_dir.display(), with_keys = options.with_keys), err)]
pub async fn backup(
    js: &jetstream::Context,
    out_dir: &Path,
    options: &BackupOptions,
) -> Result<BackupReport, BackupError> {
    let started = Instant::now();
    let created_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    if let Ok(mut entries) = fs::read_dir(out_dir)
        && entries.next().is_some()
    {
        return Err(BackupError::NotEmpty(out_dir.to_owned()));
    }
    if out_dir.exists() && !out_dir.is_dir() {
        return Err(BackupError::NotEmpty(out_dir.to_owned()));
    }
    let (names, skipped) = discover(js, options).await?;
    // Removed on every way out but the rename — an error, or the future dropped (Ctrl-C).
    let temp = Partial(temp_dir(out_dir)?);
    let streams = write_all(js, &temp.0, &names, options, created_at).await?;
    fs::rename(&temp.0, out_dir).map_err(|err| BackupError::io(out_dir, err))?;
    if let Some(parent) = out_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        // The rename is durable once the parent directory is.
        let _ = File::open(parent).and_then(|d| d.sync_all());
    }
    let with_keys = streams.iter().any(|s| s.name == KEYS);
    let report = BackupReport {
        dir: out_dir.to_owned(),
        streams,
        skipped,
        with_keys,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        streams = report.streams.len(),
        messages = report.messages(),
        bytes = report.bytes(),
        "backup written"
    );
    Ok(report)
}

/// The streams to back up, in backup order, and those left out.
async fn discover(
    js: &jetstream::Context,
    options: &BackupOptions,
) -> Result<(Vec<String>, Vec<(String, String)>), BackupError> {
    let mut all = js.stream_names();
    let mut names = Vec::new();
    let mut skipped = Vec::new();
    while let Some(name) = all.next().await {
        let name = name.map_err(BackupError::unavailable)?;
        if !format::is_wasl_stream(&name) {
            continue;
        }
        if name == KEYS && !options.with_keys {
            skipped.push((
                name,
                "the data keys are backed up only when asked (--with-keys)".to_owned(),
            ));
            continue;
        }
        names.push(name);
    }
    names.sort_by(|a, b| {
        format::backup_rank(a)
            .cmp(&format::backup_rank(b))
            .then_with(|| a.cmp(b))
    });
    Ok((names, skipped))
}

/// A fresh private directory beside `out_dir` (same file system, so the final rename is atomic).
/// A partial backup directory, deleted when dropped; after a successful rename there is nothing
/// left at its path to delete.
struct Partial(PathBuf);

impl Drop for Partial {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

fn temp_dir(out_dir: &Path) -> Result<PathBuf, BackupError> {
    let name = out_dir
        .file_name()
        .ok_or_else(|| BackupError::io(out_dir, "not a directory name"))?
        .to_string_lossy()
        .into_owned();
    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let temp = parent.join(format!(".{name}.partial-{}-{nanos}", std::process::id()));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&temp)
        .map_err(|e| BackupError::io(&temp, e))?;
    Ok(temp)
}

async fn write_all(
    js: &jetstream::Context,
    dir: &Path,
    names: &[String],
    options: &BackupOptions,
    created_at: String,
) -> Result<Vec<StreamReport>, BackupError> {
    let mut entries = Vec::new();
    let mut reports = Vec::new();
    for name in names {
        let entry = write_stream(js, dir, name).await?;
        tracing::info!(stream = %name, messages = entry.messages, "stream backed up");
        reports.push(StreamReport {
            name: name.clone(),
            messages: entry.messages,
            bytes: entry.bytes,
            sequences_kept: true,
        });
        entries.push(entry);
    }
    let manifest = Manifest {
        format: format::FORMAT.to_owned(),
        version: format::VERSION,
        created_at,
        with_keys: options.with_keys && names.iter().any(|n| n == KEYS),
        streams: entries,
    };
    let path = dir.join(MANIFEST);
    let mut file = create_private(&path)?;
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::io(&path, e))?;
    file.write_all(&text)
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| BackupError::io(&path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::io(dir, e))?;
    Ok(reports)
}

fn create_private(path: &Path) -> Result<File, BackupError> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| BackupError::io(path, e))
}

/// Counts and hashes what goes into a stream's file.
struct Sink {
    out: BufWriter<File>,
    hash: Sha256,
    bytes: u64,
    messages: u64,
}

impl Sink {
    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.out.write_all(line)?;
        self.out.write_all(b"\n")?;
        self.hash.update(line);
        self.hash.update(b"\n");
        self.bytes += line.len() as u64 + 1;
        self.messages += 1;
        Ok(())
    }
}

/// Reads one stream from its first sequence up to the last sequence it has now, into its file.
async fn write_stream(js: &jetstream::Context, dir: &Path, name: &str) -> Result<StreamEntry, BackupError> {
    let fail = |sequence: Option<u64>, err: &dyn fmt::Display| BackupError::stream(name, sequence, err);
    let mut stream = js.get_stream(name).await.map_err(|e| fail(None, &e))?;
    let info = stream.info().await.map_err(|e| fail(None, &e))?.clone();
    if info.config.mirror.is_some() || info.config.sources.as_ref().is_some_and(|s| !s.is_empty()) {
        // A restored copy would not be a mirror or source of anything; Wasl makes none.
        return Err(fail(
            None,
            &"it is a mirror or has sources, which a backup does not handle",
        ));
    }
    let file_name = format::file_name(name);
    let path = dir.join(&file_name);
    let mut sink = Sink {
        out: BufWriter::with_capacity(1 << 20, create_private(&path)?),
        hash: Sha256::new(),
        bytes: 0,
        messages: 0,
    };
    let first = info.state.first_sequence;
    let last = info.state.last_sequence;
    if info.state.messages > 0 {
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: first.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(|e| fail(None, &e))?;
        // Messages can be removed meanwhile (a bucket's older revisions, a feed's aged messages):
        // nothing left to deliver means done.
        if consumer.cached_info().num_pending > 0 {
            let mut messages = consumer.messages().await.map_err(|e| fail(None, &e))?;
            let mut previous = 0;
            loop {
                let message = match tokio::time::timeout(IDLE, messages.next()).await {
                    Err(_) => return Err(fail(Some(previous + 1), &"no message arrived for 30 s")),
                    Ok(None) => return Err(fail(Some(previous + 1), &"the consumer ended early")),
                    Ok(Some(Err(e))) => return Err(fail(Some(previous + 1), &e)),
                    Ok(Some(Ok(message))) => message,
                };
                let meta = message.info().map_err(|e| fail(Some(previous + 1), &e))?;
                let (sequence, pending) = (meta.stream_sequence, meta.pending);
                if sequence > last {
                    break;
                }
                let record = Record {
                    seq: sequence,
                    subject: message.subject.to_string(),
                    headers: message
                        .headers
                        .iter()
                        .flat_map(|headers| headers.iter())
                        .flat_map(|(name, values)| {
                            let name: &str = name.as_ref();
                            values.iter().map(move |v| (name.to_owned(), v.as_str().to_owned()))
                        })
                        .collect(),
                    data: base64::engine::general_purpose::STANDARD.encode(&message.payload),
                };
                let line = serde_json::to_vec(&record).map_err(|e| fail(Some(sequence), &e))?;
                sink.write(&line).map_err(|e| BackupError::io(&path, e))?;
                previous = sequence;
                if sequence >= last || pending == 0 {
                    break;
                }
            }
        }
    }
    let Sink {
        out,
        hash,
        bytes,
        messages,
        ..
    } = sink;
    let file = out.into_inner().map_err(|e| BackupError::io(&path, e.error()))?;
    file.sync_all().map_err(|e| BackupError::io(&path, e))?;
    Ok(StreamEntry {
        name: name.to_owned(),
        file: file_name,
        config: info.config,
        first_seq: first,
        last_seq: last,
        messages,
        bytes,
        sha256: hex::encode(hash.finalize()),
    })
}
