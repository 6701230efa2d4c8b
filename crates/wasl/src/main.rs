//! The `wasl` command: `wasl up` runs everything on one machine; `wasl api`, `wasl projector` and
//! `wasl router` run one service each against external NATS and a database; the rest operate
//! Wasl (users, tokens, read models, NATS credentials, webhooks, retention, demo data) or measure
//! it (`wasl bench`, with the `bench` feature). Parsing arguments and printing is all this file and its modules do: the
//! logic lives in the library crates.

mod api;
mod audit;
mod backup;
// Measuring Wasl is not part of running it: `wasl bench` is built only with the `bench`
// feature, so the binary `wasl up` runs does not carry the benchmarks (see docs/performance.md).
#[cfg(feature = "bench")]
mod bench;
mod connect;
mod demo;
mod followup;
mod health;
mod log;
mod nats_config;
mod notify;
mod partner;
mod projections;
mod up;
mod webhooks;

use clap::{Parser, Subcommand};
use std::error::Error;
use std::io::{self, Write};
use std::process::ExitCode;
use wasl_domain::geo::{District, Governorate};
use wasl_domain::referral::{ReferralAction, ReferralStatus, transition};

/// Wasl (وصل, "link"): referral coordination for humanitarian organisations in Iraq.
#[derive(Debug, Parser)]
#[command(name = "wasl", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service in one process with a supervised local NATS server and SQLite:
    /// the HTTP API, the projector, the router, partner commands and webhooks.
    Up(up::UpArgs),
    /// Load the demo network (organisations, services, logins, 90 days of cases and referrals)
    /// through the real command path; running it again adds nothing (see docs/demo-data.md).
    DemoData(demo::DemoDataArgs),
    /// Print the referral lifecycle as the domain enforces it.
    Lifecycle,
    /// List the governorates and district codes of Iraq that cases and services use.
    Places,
    /// List the cases whose personal data is due for erasure (closed longer ago than the
    /// retention period); with --apply, erase it (see docs/data-protection.md).
    Retention(RetentionArgs),
    /// Back up every Wasl stream (the event log, audit, accounts, feeds, router checkpoint,
    /// webhook buckets; the data keys only with --with-keys) into a new directory, consistently
    /// while Wasl runs (see docs/deploy.md, "Backup and restore").
    Backup(backup::BackupArgs),
    /// Restore a backup into a NATS server that has none of its streams, the event log with its
    /// sequence numbers intact and every recorded erasure applied again; then rebuild the read
    /// models with `wasl projections rebuild`.
    Restore(backup::RestoreArgs),
    /// Operate the read models: status, rebuild, parked events (see docs/read-models.md).
    Projections {
        #[command(subcommand)]
        command: projections::ProjectionsCommand,
    },
    /// Run the projector: follow the event log and keep the read models up to date.
    Projector {
        #[command(flatten)]
        connection: projections::Connection,
        /// Most events per transaction.
        #[arg(long, default_value_t = 1_000)]
        batch_size: usize,
        #[command(flatten)]
        health: health::HealthArgs,
    },
    /// Serve the HTTP API against an existing NATS server and read-model database (see
    /// docs/api.md).
    Api(Box<wasl_api::ApiConfig>),
    /// Manage local accounts from the command line (the first admin of a new Wasl).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Issue partner API tokens from the command line.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Deliver each referral event to the receiving organisation's own feed (WASL_OUT_<org>)
    /// and serve partner commands over NATS (see docs/partners.md); `wasl router parked` and
    /// `wasl router resolve` show and resolve the events it could not deliver.
    #[command(subcommand_negates_reqs = true)]
    Router(partner::RouterArgs),
    /// Run the follow-up service: response and follow-up deadlines, overdue and escalation,
    /// and the cancellations consent withdrawal and case closure call for (see
    /// docs/followup.md); `wasl followup policy` prints the deadline policy.
    Followup(followup::FollowupArgs),
    /// Run the notification service: mail the people a referral's events concern (a new
    /// referral, a decision, an overdue, an escalation) what happened and a link, never
    /// personal data (see docs/notifications.md).
    Notify(notify::NotifyArgs),
    /// Messages of the event log Wasl cannot read: show one, skip it (it is not a Wasl event),
    /// list what was skipped (see docs/operations.md).
    Log {
        #[command(subcommand)]
        command: log::LogCommand,
    },
    /// The access audit: verify its keyed chain, export its records (see
    /// docs/data-protection.md).
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// For a partner organisation: listen to your feed, answer referrals over NATS.
    Partner {
        #[command(subcommand)]
        command: partner::PartnerCommand,
    },
    /// Webhook endpoints of partner organisations without NATS: set, rotate, disable,
    /// status, dead letters, redelivery (see docs/webhooks.md). `wasl router` delivers.
    Webhooks {
        #[command(subcommand)]
        command: webhooks::WebhooksCommand,
    },
    /// Write the NATS server's authorisation and a credential per partner organisation, so
    /// that each partner reads only its own feed and sends commands only as itself (see
    /// docs/nats-security.md).
    NatsConfig(nats_config::NatsConfigArgs),
    /// Measure Wasl against a real nats-server (see docs/performance.md). Built only with the
    /// `bench` feature.
    #[cfg(feature = "bench")]
    Bench {
        #[command(subcommand)]
        what: bench::BenchTarget,
    },
}

#[derive(Debug, clap::Args)]
struct RetentionArgs {
    /// The NATS server holding Wasl's event log and key bucket (or a comma-separated list of a
    /// cluster's nodes).
    #[arg(long, env = "WASL_NATS_URL")]
    nats_url: String,
    /// NKey seed file to authenticate to NATS with (the hub's `hub.nk` from `wasl nats-config`),
    /// when the server requires one.
    #[arg(long, env = "WASL_NATS_NKEY")]
    nats_nkey: Option<std::path::PathBuf>,
    /// Days after a case's closure after which its personal data is erased.
    #[arg(long, env = "WASL_RETENTION_DAYS", default_value_t = 730)]
    retention_days: u64,
    /// Erase what is due. Without it the command only lists (a dry run).
    #[arg(long)]
    apply: bool,
    /// File holding the master key as 64 hex characters (needed with --apply).
    #[arg(long, env = "WASL_MASTER_KEY_FILE")]
    master_key_file: Option<std::path::PathBuf>,
    /// The master key's id, as stored beside every key it wraps.
    #[arg(long, env = "WASL_MASTER_KEY_ID", default_value = "local-1")]
    master_key_id: String,
    /// Organisation id (UUIDv7) of Wasl's system principal, recorded on each erasure (needed
    /// with --apply).
    #[arg(long, env = "WASL_SYSTEM_ORG")]
    system_org: Option<String>,
    /// User id (UUIDv7) of Wasl's system principal (needed with --apply).
    #[arg(long, env = "WASL_SYSTEM_USER")]
    system_user: Option<String>,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a local account; the password is read from standard input.
    Add(api::AddUserArgs),
    /// Approve (or `--reject`) a pending role request as the operator: the break-glass for an
    /// organisation with one admin. Recorded as the operator's decision.
    DecideRoles(api::DecideRolesArgs),
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Issue a token and print its secret once.
    Issue(api::IssueTokenArgs),
}

/// The name the process's traces carry: the service it runs.
fn service_name(command: &Command) -> &'static str {
    match command {
        Command::Up(_) => "wasl-up",
        Command::Api(_) => "wasl-api",
        Command::Projector { .. } => "wasl-projector",
        Command::Router(args) if args.command.is_none() => "wasl-router",
        Command::Followup(args) if args.command.is_none() => "wasl-followup",
        Command::Notify(_) => "wasl-notify",
        _ => "wasl",
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs on standard error (JSON unless a terminal), spans over OTLP when
    // OTEL_EXPORTER_OTLP_ENDPOINT is set, metrics for /metrics; see docs/observability.md.
    let telemetry = wasl_telemetry::export::init(service_name(&cli.command));
    let code = run(cli.command);
    telemetry.shutdown();
    code
}

fn run(command: Command) -> ExitCode {
    let mut out = io::stdout().lock();
    let written = match command {
        Command::Up(args) => print_or_fail(&mut out, up::up(args)),
        Command::DemoData(args) => print_or_fail(&mut out, demo::demo_data(args)),
        Command::Lifecycle => lifecycle(&mut out),
        Command::Places => places(&mut out),
        Command::Projections { command } => print_or_fail(&mut out, projections::run(command)),
        Command::Api(config) => print_or_fail(&mut out, api::serve(*config)),
        Command::Users {
            command: UsersCommand::Add(args),
        } => print_or_fail(&mut out, api::add_user(args)),
        Command::Users {
            command: UsersCommand::DecideRoles(args),
        } => print_or_fail(&mut out, api::decide_roles(args)),
        Command::Tokens {
            command: TokensCommand::Issue(args),
        } => print_or_fail(&mut out, api::issue_token(args)),
        Command::Projector {
            connection,
            batch_size,
            health,
        } => print_or_fail(&mut out, projections::projector(connection, batch_size, health)),
        Command::Router(mut args) => match args.command.take() {
            Some(command) => print_or_fail(&mut out, log::router_command(command)),
            None => print_or_fail(&mut out, partner::router(args)),
        },
        Command::Log { command } => print_or_fail(&mut out, log::run(command)),
        Command::Audit { command } => print_or_fail(&mut out, audit::run(command)),
        Command::Followup(args) => print_or_fail(&mut out, followup::run(args)),
        Command::Notify(args) => print_or_fail(&mut out, notify::run(args)),
        Command::Partner { command } => print_or_fail(&mut out, partner::partner(command)),
        Command::Webhooks { command } => print_or_fail(&mut out, webhooks::run(command)),
        Command::NatsConfig(args) => print_or_fail(&mut out, nats_config::run(args)),
        Command::Backup(args) => print_or_fail(&mut out, backup::backup(args)),
        Command::Restore(args) => print_or_fail(&mut out, backup::restore(args)),
        #[cfg(feature = "bench")]
        Command::Bench { what } => print_or_fail(&mut out, bench::run(what)),
        Command::Retention(args) => match retention(args) {
            Ok(report) => out.write_all(report.as_bytes()),
            Err(err) => {
                eprintln!("wasl retention: {err}");
                return ExitCode::FAILURE;
            }
        },
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`wasl places | head`) is not an error worth a message.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("wasl: cannot write output: {err}");
            ExitCode::FAILURE
        }
    }
}

fn retention(args: RetentionArgs) -> Result<String, Box<dyn Error>> {
    use wasl_domain::ids::{OrgId, UserId};
    use wasl_domain::{Actor, Role, time::Timestamp};
    // Check everything --apply needs before touching anything.
    let apply = if args.apply {
        let file = args
            .master_key_file
            .ok_or("--apply needs --master-key-file (or WASL_MASTER_KEY_FILE)")?;
        let master = wasl_vault::LocalMasterKey::from_file(&args.master_key_id, &file)?;
        let org = OrgId::parse(args.system_org.as_deref().ok_or("--apply needs --system-org")?)?;
        let user = UserId::parse(args.system_user.as_deref().ok_or("--apply needs --system-user")?)?;
        Some((
            master,
            Actor {
                user,
                org,
                roles: vec![Role::System],
            },
        ))
    } else {
        None
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let now = Timestamp::from_unix_millis(i64::try_from(now_ms)?);
    let period = std::time::Duration::from_secs(args.retention_days.saturating_mul(24 * 3600));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let client = connect::connect_with(&args.nats_url, args.nats_nkey.as_deref(), None).await?;
        let Some(store) =
            wasl_store::EventStore::open_existing(client.clone(), wasl_store::StoreConfig::default()).await?
        else {
            return Ok(wasl_vault::erase::RetentionReport::default());
        };
        match apply {
            None => Ok::<_, Box<dyn Error>>(
                wasl_vault::erase::run_retention::<wasl_vault::LocalMasterKey>(&store, None, period, now).await?,
            ),
            Some((master, actor)) => {
                let js = async_nats::jetstream::new(client);
                let vault = wasl_vault::Vault::connect(&js, master, &wasl_vault::VaultConfig::default()).await?;
                Ok(wasl_vault::erase::run_retention(&store, Some((&vault, &actor)), period, now).await?)
            }
        }
    })?;
    let mut text = format!(
        "{} case(s) closed more than {} days ago with personal data not yet erased{}\n",
        report.due.len(),
        args.retention_days,
        if args.apply {
            ""
        } else {
            " (dry run: nothing erased; add --apply to erase)"
        }
    );
    for due in &report.due {
        let erased = if report.erased.contains(&due.case) {
            "  erased"
        } else {
            ""
        };
        let closed = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(due.closed_at.unix_millis()).unwrap_or(0));
        text.push_str(&format!(
            "  case {}  closed {}{erased}\n",
            due.case,
            humantime::format_rfc3339_seconds(closed)
        ));
    }
    if !report.unreadable.is_empty() {
        text.push_str(&format!(
            "{} message(s) on case subjects could not be read and were passed over (see `wasl log show`):\n",
            report.unreadable.len()
        ));
    }
    for unreadable in &report.unreadable {
        let case = unreadable.case.map_or_else(|| "none".to_owned(), |c| c.to_string());
        text.push_str(&format!("  unreadable message {}  case {case}\n", unreadable.sequence));
        if unreadable.erasure {
            text.push_str("    (its type says erasure)\n");
        }
    }
    Ok(text)
}

fn lifecycle(out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "Referral lifecycle (from --action--> to):")?;
    for from in ReferralStatus::ALL {
        for action in ReferralAction::ALL {
            if let Some(to) = transition(*from, *action) {
                writeln!(out, "  {from:<16} --{action}--> {to}")?;
            }
        }
    }
    let terminal: Vec<&str> = ReferralStatus::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| s.code())
        .collect();
    writeln!(out, "Terminal: {}", terminal.join(", "))?;
    Ok(())
}

fn places(out: &mut impl Write) -> io::Result<()> {
    for g in Governorate::ALL {
        writeln!(
            out,
            "{:<7} {} / {} / {}",
            g.code(),
            g.name_en(),
            g.name_ar(),
            g.name_ku()
        )?;
        let districts: Vec<String> = District::of(*g)
            .map(|d| format!("{} ({})", d.code(), d.name_en()))
            .collect();
        writeln!(out, "        {}", districts.join(", "))?;
    }
    Ok(())
}

/// Prints a command's output, or its error on stderr and exits with failure.
fn print_or_fail(out: &mut impl Write, result: Result<String, Box<dyn Error>>) -> io::Result<()> {
    match result {
        Ok(text) => out.write_all(text.as_bytes()),
        Err(err) => {
            eprint!("{}", failure(err.as_ref()));
            std::process::exit(1);
        }
    }
}

/// What `wasl` prints when a command fails: the error and every cause below it, each on its own
/// line, leaving out a cause whose text the lines above already carry (many errors quote their
/// source in their own message).
fn failure(err: &(dyn Error + 'static)) -> String {
    let mut text = format!("wasl: {err}\n");
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(&format!("  caused by: {line}\n"));
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::fmt;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn a_failure_names_every_cause_once() {
        let err = Layer(
            "cannot start the API",
            Some(Box::new(Layer(
                "cannot open the read models: database is locked",
                Some(Box::new(Layer("database is locked", None))),
            ))),
        );
        assert_eq!(
            super::failure(&err),
            "wasl: cannot start the API\n  caused by: cannot open the read models: database is locked\n"
        );
    }
}
