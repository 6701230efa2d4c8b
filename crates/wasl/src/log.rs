//! `wasl log …` and `wasl router parked|resolve`: an operator's view of messages Wasl could not
//! read, and the repairs. The logic lives in `wasl_store::skips` and `wasl_router::parked`.

use std::error::Error;
use std::path::PathBuf;
use wasl_store::skips::Skip;
use wasl_store::{EventStore, StoreConfig};

/// Where the event log is.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// The NATS server holding Wasl's event log (or a comma-separated list of a cluster's nodes).
    #[arg(long, env = "WASL_NATS_URL")]
    pub nats_url: String,
    /// NKey seed file of Wasl's own services (hub.nk from `wasl nats-config`), when the server
    /// requires one.
    #[arg(long, env = "WASL_NATS_NKEY")]
    pub nats_nkey: Option<PathBuf>,
    /// Replicas of a bucket this command creates on first use (the skip decisions): 1 for a
    /// single server, 3 in a cluster.
    #[arg(long, env = "WASL_REPLICAS", default_value_t = 1)]
    pub replicas: usize,
}

/// Repairs of the event log.
#[derive(Debug, clap::Subcommand)]
pub enum LogCommand {
    /// Show one message of the event log: its subject, its type and whether Wasl can read it
    /// (never its contents).
    Show {
        /// Its position (stream sequence) in the log, as an error or `wasl router parked` named it.
        #[arg(long)]
        seq: u64,
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Record that the message at a position of the log is not a Wasl event, so that every
    /// reader passes over it from now on: commands on its aggregate are accepted again, the
    /// projector stops parking it (`wasl projections retry` applies what waited behind it), the
    /// router counts it resolved. Only a message Wasl cannot read can be skipped; the decision
    /// is recorded with your reason, your user name and the time, and cannot be taken back.
    Skip {
        /// Its position (stream sequence) in the log.
        #[arg(long)]
        seq: u64,
        /// Why it is not a Wasl event (recorded; no personal data).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// List the skipped messages: position, subject, who, when, why.
    Skipped {
        #[command(flatten)]
        nats: NatsArgs,
    },
}

/// What to do with the events the router parked.
#[derive(Debug, clap::Subcommand)]
pub enum RouterCommand {
    /// List the events the router could not deliver (unreadable or unroutable), with why, and
    /// how each was resolved.
    Parked {
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Record that a parked event was looked at and its partner will not receive it (a later
    /// event of the referral carries its whole state); it no longer counts in `/readyz`.
    Resolve {
        /// The parked event's position in the log.
        #[arg(long)]
        seq: u64,
        /// Why (recorded; no personal data).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        nats: NatsArgs,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, Box<dyn Error>> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

async fn store(nats: &NatsArgs) -> Result<EventStore, Box<dyn Error>> {
    let client = crate::connect::connect_with(&nats.nats_url, nats.nats_nkey.as_deref(), None).await?;
    let config = StoreConfig {
        replicas: nats.replicas,
        ..StoreConfig::default()
    };
    Ok(EventStore::open_existing(client, config)
        .await?
        .ok_or("the NATS server holds no Wasl event log (stream WASL_EVENTS)")?)
}

/// Who runs the command, for the record.
fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// A reason an operator typed: trimmed, not empty, not a novel.
fn reason(text: &str) -> Result<String, Box<dyn Error>> {
    let text = text.trim();
    if text.is_empty() {
        return Err("--reason must say why (it is recorded)".into());
    }
    if text.chars().count() > 500 {
        return Err("--reason is limited to 500 characters".into());
    }
    Ok(text.to_owned())
}

/// A message of the log as an operator may see it: never its contents.
struct Message {
    subject: String,
    event_type: Option<String>,
    /// `Err(why)` when it is not a readable Wasl event.
    readable: Result<(), String>,
}

async fn message(store: &EventStore, seq: u64) -> Result<Message, Box<dyn Error>> {
    let raw = store
        .stream()
        .get_raw_message(seq)
        .await
        .map_err(|e| format!("no message at position {seq} of the event log: {e}"))?;
    let readable = wasl_store::load::decode_message(seq, &raw.subject, Some(&raw.headers), &raw.payload)
        .map(|_| ())
        .map_err(|e| match e {
            wasl_store::StoreError::Undecodable { reason, .. } => reason,
            other => other.to_string(),
        });
    Ok(Message {
        subject: raw.subject.to_string(),
        event_type: raw
            .headers
            .get(wasl_events::headers::CE_TYPE)
            .map(|v| v.as_str().chars().take(100).collect()),
        readable,
    })
}

/// Runs a `wasl log` command; returns what to print.
pub fn run(command: LogCommand) -> Result<String, Box<dyn Error>> {
    runtime()?.block_on(async {
        match command {
            LogCommand::Show { seq, nats } => {
                let store = store(&nats).await?;
                let message = message(&store, seq).await?;
                let skipped = store.skips().contains(seq).await?;
                Ok(format!(
                    "position {seq}\n  subject  {}\n  type     {}\n  readable {}\n  skipped  {}\n",
                    message.subject,
                    message.event_type.as_deref().unwrap_or("(none)"),
                    match &message.readable {
                        Ok(()) => "yes, a Wasl event".to_owned(),
                        Err(why) => format!("no: {why}"),
                    },
                    if skipped { "yes (wasl log skipped)" } else { "no" },
                ))
            }
            LogCommand::Skip {
                seq,
                reason: text,
                nats,
            } => {
                let reason = reason(&text)?;
                let store = store(&nats).await?;
                let message = message(&store, seq).await?;
                let Err(error) = message.readable else {
                    return Err(format!(
                        "the message at position {seq} is a readable Wasl event ({}); only a message Wasl cannot \
                         read can be skipped — skipping an event would make the readers of the log disagree",
                        message.event_type.as_deref().unwrap_or("?")
                    )
                    .into());
                };
                if !message.subject.starts_with("wasl.evt.") {
                    return Err(format!("position {seq} holds no event subject ({})", message.subject).into());
                }
                let skip = Skip {
                    sequence: seq,
                    subject: message.subject,
                    error,
                    reason,
                    by: operator(),
                    skipped_at: now(),
                };
                store.skips().record(&skip, nats.replicas).await?;
                Ok(format!(
                    "skipped the message at position {seq} ({}): every reader passes over it from now on.\n\
                     Run `wasl projections retry` to apply what the projections parked behind it.\n",
                    skip.subject
                ))
            }
            LogCommand::Skipped { nats } => {
                let store = store(&nats).await?;
                let skips = store.skips().list().await?;
                let mut text = format!("{} skipped message(s)\n", skips.len());
                for skip in skips {
                    text.push_str(&format!(
                        "  position {:>10}  {}  by {} at {}: {} (was: {})\n",
                        skip.sequence, skip.subject, skip.by, skip.skipped_at, skip.reason, skip.error
                    ));
                }
                Ok(text)
            }
        }
    })
}

async fn router(nats: &NatsArgs) -> Result<wasl_router::Router, Box<dyn Error>> {
    // Only against a server that holds Wasl's log: opening a router creates what is missing.
    store(nats).await?;
    let client = crate::connect::connect_with(&nats.nats_url, nats.nats_nkey.as_deref(), None).await?;
    let config = wasl_router::RouterConfig {
        events: StoreConfig {
            replicas: nats.replicas,
            ..StoreConfig::default()
        },
        ..wasl_router::RouterConfig::default()
    };
    Ok(wasl_router::router::Router::open(client, config).await?)
}

/// Runs a `wasl router parked|resolve` command; returns what to print.
pub fn router_command(command: RouterCommand) -> Result<String, Box<dyn Error>> {
    runtime()?.block_on(async {
        match command {
            RouterCommand::Parked { nats } => {
                let parked = router(&nats).await?.parked().await?;
                let open = parked.iter().filter(|p| p.resolution.is_none()).count();
                let mut text = format!("{} parked event(s), {open} not resolved\n", parked.len());
                for p in parked {
                    text.push_str(&format!(
                        "  position {:>10}  {}  {}  parked {}: {}\n",
                        p.sequence,
                        p.event_type.as_deref().unwrap_or("(no type)"),
                        p.subject,
                        p.parked_at,
                        p.error
                    ));
                    match p.resolution {
                        Some(r) if r.by.is_empty() => text.push_str(&format!("      resolved: {}\n", r.reason)),
                        Some(r) => text.push_str(&format!("      resolved by {} at {}: {}\n", r.by, r.at, r.reason)),
                        None => text.push_str(
                            "      open: `wasl log show --seq N`; then `wasl log skip` (not a Wasl event) or `wasl router resolve`\n",
                        ),
                    }
                }
                Ok(text)
            }
            RouterCommand::Resolve { seq, reason: text, nats } => {
                let reason = reason(&text)?;
                let resolution = wasl_router::Resolution {
                    reason,
                    by: operator(),
                    at: now(),
                };
                match router(&nats).await?.resolve(seq, resolution).await? {
                    Some(event) => Ok(format!(
                        "resolved the parked event at position {seq} ({})\n",
                        event.subject
                    )),
                    None => Err(format!("the router parked nothing at position {seq}").into()),
                }
            }
        }
    })
}
