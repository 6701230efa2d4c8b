//! `wasl projections …` and `wasl projector`: operate the read models from the command line.

use std::error::Error;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use wasl_projections::parked::{self, RetryReport};
use wasl_projections::{Progress, Projection, Projector, ProjectorConfig, ReadModels, ReadModelsConfig};
use wasl_store::skips::Skips;

/// Where the log and the read models are.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The NATS server holding Wasl's event log.
    #[arg(long, env = "WASL_NATS_URL")]
    pub nats_url: String,
    /// NKey seed file to authenticate to NATS with (the hub's `hub.nk` from `wasl nats-config`),
    /// when the server requires one.
    #[arg(long, env = "WASL_NATS_NKEY")]
    pub nats_nkey: Option<std::path::PathBuf>,
    /// Replicas of the event log (3 in a cluster): the log is checked against what Wasl
    /// expects before it is read.
    #[arg(long, env = "WASL_REPLICAS", default_value_t = 1)]
    pub replicas: usize,
    /// The read-model database: `postgres://user@host/db` or `sqlite:path/to/file.db`.
    #[arg(long, env = "WASL_DATABASE_URL", default_value = "sqlite:./data/wasl.db")]
    pub database_url: String,
}

/// What to do with the read models.
#[derive(Debug, clap::Subcommand)]
pub enum ProjectionsCommand {
    /// Show each projection's generation, checkpoint, lag behind the log and parked events.
    Status(Connection),
    /// Build a fresh copy of a projection (or all) from the start of the log beside the live
    /// tables, which keep serving, and swap it in when it has caught up.
    Rebuild {
        /// `cases`, `referrals` or `directory`; all when omitted.
        name: Option<String>,
        #[command(flatten)]
        connection: Connection,
        /// Most events per transaction.
        #[arg(long, default_value_t = 1_000)]
        batch_size: usize,
    },
    /// List the events a projection (or all) parked: sequence, type and error.
    Parked {
        /// `cases`, `referrals` or `directory`; all when omitted.
        name: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Try the parked events of a projection (or all) again, in log order.
    Retry {
        /// `cases`, `referrals` or `directory`; all when omitted.
        name: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
}

async fn open(
    connection: &Connection,
) -> Result<(ReadModels, async_nats::jetstream::stream::Stream, Skips), Box<dyn Error>> {
    let (models, stream, client) = open_with_client(connection).await?;
    Ok((models, stream, skips(client)))
}

/// The operator's skip decisions on the server behind `client` (see `wasl log skip`).
fn skips(client: async_nats::Client) -> Skips {
    Skips::new(async_nats::jetstream::new(client))
}

/// [`open`], with the NATS connection.
async fn open_with_client(
    connection: &Connection,
) -> Result<(ReadModels, async_nats::jetstream::stream::Stream, async_nats::Client), Box<dyn Error>> {
    let models = ReadModels::open(&ReadModelsConfig::new(&connection.database_url)).await?;
    let client = crate::connect::connect_with(&connection.nats_url, connection.nats_nkey.as_deref(), None).await?;
    let config = wasl_store::StoreConfig {
        replicas: connection.replicas,
        ..wasl_store::StoreConfig::default()
    };
    let store = wasl_store::EventStore::open_existing(client.clone(), config)
        .await?
        .ok_or("the NATS server holds no Wasl event log (stream WASL_EVENTS)")?;
    Ok((models, store.stream().clone(), client))
}

fn runtime() -> Result<tokio::runtime::Runtime, Box<dyn Error>> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Runs a `wasl projections` command; returns what to print.
pub fn run(command: ProjectionsCommand) -> Result<String, Box<dyn Error>> {
    runtime()?.block_on(async {
        tokio::select! {
            result = run_async(command) => result,
            _ = tokio::signal::ctrl_c() => Err("interrupted; the live tables are unchanged".into()),
        }
    })
}

async fn run_async(command: ProjectionsCommand) -> Result<String, Box<dyn Error>> {
    match command {
        ProjectionsCommand::Status(connection) => {
            let (models, stream, _) = open(&connection).await?;
            let last = stream.clone().info().await?.state.last_sequence;
            let parked = parked::list(&models, Projection::ALL).await?;
            let mut text = format!("event log: last sequence {last}\n");
            text.push_str(&format!(
                "{:<10} {:>10} {:>12} {:>10} {:>7}  {}\n",
                "projection", "generation", "checkpoint", "lag", "parked", "state"
            ));
            let mut diverged = Vec::new();
            for standing in wasl_projections::standings(&models, Projection::ALL).await? {
                let projection = standing.projection;
                let state = wasl_projections::live_state(&models, projection).await?;
                let count = parked.iter().filter(|p| p.projection == projection).count();
                let found = wasl_store::continuity::check(&stream, &standing.mark()).await?;
                let condition = match (&standing.halted, &found) {
                    (Some(_), _) | (None, Some(_)) => "STOPPED",
                    (None, None) => "following",
                };
                text.push_str(&format!(
                    "{:<10} {:>10} {:>12} {:>10} {:>7}  {condition}\n",
                    projection.name(),
                    state.generation,
                    state.checkpoint,
                    last.saturating_sub(state.checkpoint),
                    count
                ));
                if let Some(why) = found.map(|d| d.to_string()).or(standing.halted) {
                    diverged.push(format!("{}: {why}", projection.name()));
                }
            }
            if !diverged.is_empty() {
                text.push_str("\nThe read models do not match the event log; the projector has stopped:\n");
                for why in diverged {
                    text.push_str(&format!("  {why}\n"));
                }
                text.push_str(
                    "To recover, either\n  - restore the backup these read models were built from (wasl restore; see docs/deploy.md), \
                     after which the projector goes on by itself, or\n  - accept the log as it is and rebuild the read models from it: \
                     wasl projections rebuild (events that are not in the log are gone from the read models too).\n\
                     See docs/operations.md, \"The event log went backwards\".\n",
                );
            }
            Ok(text)
        }
        ProjectionsCommand::Rebuild {
            name,
            connection,
            batch_size,
        } => {
            let projections = Projection::selection(name.as_deref())?;
            let (models, stream, skips) = open(&connection).await?;
            let mut bar = ProgressBar::new();
            let report = wasl_projections::rebuild(
                &models,
                &stream,
                &projections,
                batch_size,
                wasl_projections::feed::store_decoder,
                Some(&skips),
                |p| bar.show(p),
            )
            .await?;
            bar.finish();
            let names: Vec<&str> = report.projections.iter().map(|p| p.name()).collect();
            let secs = report.elapsed.as_secs_f64();
            Ok(format!(
                "rebuilt {} up to sequence {}: {} events in {:.1} s ({:.0} events/s), {} parked\n",
                names.join(", "),
                report.checkpoint,
                report.events,
                secs,
                if secs > 0.0 { report.events as f64 / secs } else { 0.0 },
                report.parked
            ))
        }
        ProjectionsCommand::Parked { name, connection } => {
            let projections = Projection::selection(name.as_deref())?;
            let models = ReadModels::open(&ReadModelsConfig::new(&connection.database_url)).await?;
            let parked = parked::list(&models, &projections).await?;
            let mut text = format!("{} parked event(s)\n", parked.len());
            for p in parked {
                text.push_str(&format!(
                    "  {:<10} seq {:>10}  {}  {}  tried {}x: {}\n",
                    p.projection.name(),
                    p.seq,
                    p.event_type.as_deref().unwrap_or("(no type)"),
                    p.subject,
                    p.attempts,
                    p.error
                ));
            }
            Ok(text)
        }
        ProjectionsCommand::Retry { name, connection } => {
            let projections = Projection::selection(name.as_deref())?;
            let (models, stream, skips) = open(&connection).await?;
            let mut text = String::new();
            for projection in projections {
                let RetryReport { applied, still_parked } = parked::retry(
                    &models,
                    &stream,
                    projection,
                    wasl_projections::feed::store_decoder,
                    Some(&skips),
                )
                .await?;
                text.push_str(&format!(
                    "{}: {applied} applied, {still_parked} still parked\n",
                    projection.name()
                ));
            }
            Ok(text)
        }
    }
}

/// Runs the live projector of every projection until Ctrl-C.
pub fn projector(
    connection: Connection,
    batch_size: usize,
    health: crate::health::HealthArgs,
) -> Result<String, Box<dyn Error>> {
    runtime()?.block_on(async {
        let (models, stream, nats_client) =
            crate::connect::patiently("the projector", || open_with_client(&connection)).await?;
        let config = ProjectorConfig {
            batch_size,
            skips: Some(skips(nats_client.clone())),
            ..ProjectorConfig::default()
        };
        let projector = Projector::new(models.clone(), stream.clone(), Projection::ALL, config);
        let metrics = projector.metrics();
        let stop = crate::api::on_signal();
        if let Some(listen) = health.health_listen {
            let client = nats_client.clone();
            let max = health.ready_max_lag;
            let check: crate::health::Check = std::sync::Arc::new(move || {
                let (client, models, stream) = (client.clone(), models.clone(), stream.clone());
                Box::pin(async move {
                    if client.connection_state() != async_nats::connection::State::Connected {
                        return Err("NATS is not connected".to_owned());
                    }
                    let end = crate::health::log_end(&stream).await?;
                    let positions = models.ready(end, max).await?;
                    let projections: Vec<_> = positions
                        .into_iter()
                        .map(|(projection, position)| {
                            let lag = end.saturating_sub(position);
                            serde_json::json!({"name": projection.name(), "position": position, "lag": lag})
                        })
                        .collect();
                    Ok(serde_json::json!({"log_position": end, "projections": projections}))
                })
            });
            let bound = crate::health::serve(listen, check, stop.clone().cancelled_owned()).await?;
            eprintln!("wasl projector: /healthz and /readyz on http://{bound}");
        }
        eprintln!("wasl projector: following the event log; Ctrl-C stops it");
        let finished = projector.run(stop.clone().cancelled_owned()).await;
        stop.cancel();
        finished?;
        let applied = metrics.applied.load(std::sync::atomic::Ordering::Relaxed);
        let position = metrics.position.load(std::sync::atomic::Ordering::Relaxed);
        Ok(format!(
            "stopped at sequence {position} after applying {applied} events\n"
        ))
    })
}

/// A progress bar on a terminal, a line every few seconds otherwise.
struct ProgressBar {
    terminal: bool,
    last: Option<Instant>,
    shown: bool,
}

impl ProgressBar {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            last: None,
            shown: false,
        }
    }

    fn show(&mut self, p: &Progress) {
        let every = if self.terminal {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(5)
        };
        if self.last.is_some_and(|t| t.elapsed() < every) && p.done < p.total {
            return;
        }
        self.last = Some(Instant::now());
        self.shown = true;
        let line = render(p);
        let mut err = std::io::stderr();
        if self.terminal {
            let _ = write!(err, "\r{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.terminal && self.shown {
            eprintln!();
        }
    }
}

/// `[#########-----------]  45%  450000/1000000 events  85000 events/s  ETA 6s`
fn render(p: &Progress) -> String {
    const WIDTH: usize = 30;
    let fraction = if p.total == 0 {
        1.0
    } else {
        (p.done as f64 / p.total as f64).min(1.0)
    };
    let filled = (fraction * WIDTH as f64).round() as usize;
    let eta = p
        .eta
        .map(|d| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string())
        .unwrap_or_else(|| "?".to_owned());
    format!(
        "[{}{}] {:>3.0}%  {}/{} events  {:.0} events/s  ETA {eta}",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        fraction * 100.0,
        p.done,
        p.total,
        p.rate
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_shows_share_rate_and_eta() {
        let line = render(&Progress {
            done: 250,
            total: 1000,
            rate: 125.0,
            eta: Some(Duration::from_secs(6)),
        });
        assert!(line.starts_with("[########----------------------]  25%"), "{line}");
        assert!(line.contains("250/1000 events") && line.contains("125 events/s") && line.ends_with("ETA 6s"));
        assert!(
            render(&Progress {
                done: 0,
                total: 0,
                rate: 0.0,
                eta: None
            })
            .contains("100%")
        );
    }
}
