//! `wasl webhooks …`: the administrator's view of webhook delivery — set an organisation's
//! endpoint (the secret is printed once), rotate the secret, disable and enable, see each
//! organisation's delivery status and dead letters, redeliver them. The worker that delivers
//! runs in `wasl router` (and `wasl up`). The logic lives in `wasl_webhooks` (docs/webhooks.md).
//!
//! Every command needs the master key: the signing secrets are stored sealed with a key derived
//! from it. Endpoints must point to public addresses unless `--webhook-allow-net` allows a range.

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use wasl_domain::ids::OrgId;
use wasl_webhooks::{DeliveryStatus, Destinations, IpNet, SecretsKey, Webhooks, WebhooksConfig};

/// Where webhooks may go besides public addresses (`wasl webhooks`, `wasl router`, `wasl up`).
#[derive(Debug, Clone, clap::Args)]
pub struct AllowNetArgs {
    /// An address range (CIDR, e.g. 10.20.0.0/16, or one address) that webhook endpoints may
    /// point to although it is not public: a partner inside the hub's own network, or
    /// 127.0.0.0/8 for a receiver on this machine. Repeatable, or comma-separated in the
    /// variable. Without it endpoints reach public addresses only: never loopback, private,
    /// link-local (the cloud metadata service 169.254.169.254) or unique-local ones.
    #[arg(
        long = "webhook-allow-net",
        value_name = "CIDR",
        env = "WASL_WEBHOOK_ALLOW_NETS",
        value_delimiter = ','
    )]
    pub allow_nets: Vec<IpNet>,
}

impl AllowNetArgs {
    /// Public addresses and the ranges given.
    pub fn destinations(&self) -> Destinations {
        Destinations::new(self.allow_nets.iter().copied())
    }
}

/// The key sealing the signing secrets, derived from the master key in `file`.
pub fn secrets_key(id: &str, file: &std::path::Path) -> Result<SecretsKey, Box<dyn Error>> {
    let master = wasl_vault::LocalMasterKey::from_file(id, file)?;
    Ok(SecretsKey::from_master(&master))
}

/// How `wasl webhooks` reaches NATS, opens the signing secrets and checks endpoints.
#[derive(Debug, clap::Args)]
pub struct WebhooksConnection {
    /// The NATS server holding Wasl's streams.
    #[arg(long, env = "WASL_NATS_URL")]
    pub nats_url: String,
    /// NKey seed file of Wasl's own services (hub.nk from `wasl nats-config`), when the server
    /// requires one.
    #[arg(long, env = "WASL_NATS_NKEY")]
    pub nats_nkey: Option<PathBuf>,
    /// The master key file (64 hex characters): the signing secrets are stored sealed with a
    /// key derived from it.
    #[arg(long, env = "WASL_MASTER_KEY_FILE")]
    pub master_key_file: PathBuf,
    /// The master key's id.
    #[arg(long, env = "WASL_MASTER_KEY_ID", default_value = "local-1")]
    pub master_key_id: String,
    #[command(flatten)]
    pub allow: AllowNetArgs,
}

/// What to do with webhooks.
#[derive(Debug, clap::Subcommand)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum WebhooksCommand {
    /// Set an organisation's endpoint URL (https, or http on loopback) and print its new
    /// signing secret once. The URL's host must be at a public address (or in a range of
    /// --webhook-allow-net).
    Set {
        org: String,
        /// Where its partner messages are POSTed.
        url: String,
        #[command(flatten)]
        connection: WebhooksConnection,
    },
    /// Issue a new signing secret (printed once); the old one keeps signing beside it for
    /// --overlap, so the partner can switch without losing a message.
    Rotate {
        org: String,
        /// How long the old secret still signs too (e.g. 24h; 0s: stop at once).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        overlap: Duration,
        #[command(flatten)]
        connection: WebhooksConnection,
    },
    /// Stop delivering to an organisation; its messages wait in its feed.
    Disable {
        org: String,
        #[command(flatten)]
        connection: WebhooksConnection,
    },
    /// Deliver to an organisation again, starting with what waited.
    Enable {
        org: String,
        #[command(flatten)]
        connection: WebhooksConnection,
    },
    /// Every endpoint's delivery status (or one organisation's): pending messages, last
    /// success, last failure, consecutive failures, dead letters.
    Status {
        /// Only this organisation.
        org: Option<String>,
        #[command(flatten)]
        connection: WebhooksConnection,
    },
    /// An organisation's dead letters: messages given up after the retry limit.
    Dead {
        org: String,
        #[command(flatten)]
        connection: WebhooksConnection,
    },
    /// Send dead letters again (all of the organisation's, or one by its sequence); each one
    /// delivered is removed.
    Redeliver {
        org: String,
        /// Only the dead letter with this sequence (see `wasl webhooks dead`).
        #[arg(long)]
        sequence: Option<u64>,
        #[command(flatten)]
        connection: WebhooksConnection,
    },
}

/// The one who changes endpoints from the command line, as recorded with the change.
const BY: &str = "cli";

/// Runs a `wasl webhooks` command.
pub fn run(command: WebhooksCommand) -> Result<String, Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let connection = match &command {
            WebhooksCommand::Set { connection, .. }
            | WebhooksCommand::Rotate { connection, .. }
            | WebhooksCommand::Disable { connection, .. }
            | WebhooksCommand::Enable { connection, .. }
            | WebhooksCommand::Status { connection, .. }
            | WebhooksCommand::Dead { connection, .. }
            | WebhooksCommand::Redeliver { connection, .. } => connection,
        };
        let client = crate::connect::connect_with(&connection.nats_url, connection.nats_nkey.as_deref(), None).await?;
        let key = secrets_key(&connection.master_key_id, &connection.master_key_file)?;
        let config = WebhooksConfig {
            destinations: connection.allow.destinations(),
            ..WebhooksConfig::default()
        };
        let webhooks = Webhooks::connect(async_nats::jetstream::new(client), config, key).await?;
        let mut out = String::new();
        match &command {
            WebhooksCommand::Set { org, url, .. } => {
                let org = parse_org(org)?;
                let secret = webhooks.set_endpoint(org, url, BY).await?;
                writeln!(out, "endpoint of {org} set")?;
                writeln!(
                    out,
                    "signing secret (shown once; give it to the organisation): {}",
                    secret.expose().as_str()
                )?;
            }
            WebhooksCommand::Rotate { org, overlap, .. } => {
                let org = parse_org(org)?;
                let secret = webhooks.rotate_secret(org, BY, *overlap).await?;
                writeln!(
                    out,
                    "new signing secret of {org} (shown once): {}",
                    secret.expose().as_str()
                )?;
                writeln!(
                    out,
                    "the old secret also signs for {}",
                    humantime::format_duration(*overlap)
                )?;
            }
            WebhooksCommand::Disable { org, .. } => {
                let org = parse_org(org)?;
                webhooks.disable(org, BY).await?;
                writeln!(out, "delivery to {org} disabled; its messages wait in its feed")?;
            }
            WebhooksCommand::Enable { org, .. } => {
                let org = parse_org(org)?;
                webhooks.enable(org, BY).await?;
                writeln!(out, "delivery to {org} enabled")?;
            }
            WebhooksCommand::Status { org, .. } => {
                let statuses = match org {
                    Some(org) => vec![webhooks.status(parse_org(org)?).await?],
                    None => webhooks.status_all().await?,
                };
                if statuses.is_empty() {
                    writeln!(out, "no webhook endpoints")?;
                }
                for status in &statuses {
                    describe(&mut out, status)?;
                }
            }
            WebhooksCommand::Dead { org, .. } => {
                let org = parse_org(org)?;
                let dead = webhooks.dead_letters(org).await?;
                writeln!(out, "{} dead letter(s) of {org}", dead.len())?;
                for letter in dead {
                    writeln!(
                        out,
                        "  sequence {}  webhook-id {}  {} attempt(s)  last failure: {}  dead since {}",
                        letter.sequence,
                        letter.webhook_id,
                        letter.attempts,
                        letter
                            .last_failure
                            .map_or_else(|| "unknown".to_owned(), |f| f.to_string()),
                        letter.dead_at.map_or_else(|| "unknown".to_owned(), time)
                    )?;
                }
            }
            WebhooksCommand::Redeliver { org, sequence, .. } => {
                let org = parse_org(org)?;
                match sequence {
                    Some(sequence) => {
                        webhooks.redeliver(org, *sequence).await?;
                        writeln!(out, "dead letter {sequence} of {org} delivered and removed")?;
                    }
                    None => {
                        let report = webhooks.redeliver_all(org).await?;
                        writeln!(out, "{} dead letter(s) of {org} delivered", report.delivered.len())?;
                        if let Some((sequence, failure)) = report.failed {
                            return Err(format!(
                                "dead letter {sequence} failed again ({failure}); {} remain",
                                report.remaining
                            )
                            .into());
                        }
                    }
                }
            }
        }
        Ok(out)
    })
}

fn parse_org(text: &str) -> Result<OrgId, Box<dyn Error>> {
    OrgId::parse(text).map_err(|_| format!("{text:?} is not an organisation id").into())
}

fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

fn describe(out: &mut String, s: &DeliveryStatus) -> Result<(), std::fmt::Error> {
    writeln!(
        out,
        "{}  {}  {}",
        s.org,
        s.url.as_deref().unwrap_or("(no endpoint)"),
        if s.enabled { "enabled" } else { "disabled" }
    )?;
    writeln!(
        out,
        "  pending {}  last success {}  last failure {}  consecutive failures {}  dead letters {}",
        s.pending.map_or_else(|| "?".to_owned(), |n| n.to_string()),
        s.last_success_at.map_or_else(|| "never".to_owned(), time),
        s.last_failure
            .as_ref()
            .map_or_else(|| "none".to_owned(), |f| format!("{} at {}", f.failure, time(f.at))),
        s.consecutive_failures,
        s.dead_letters
    )
}
