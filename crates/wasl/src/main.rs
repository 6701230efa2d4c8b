//! The `wasl` command. Today it shows what Wasl is built to do and the rules it already
//! enforces; the services (`wasl up`, `wasl api`, …) join as their issues land. Parsing
//! arguments and printing is all this file does: the logic lives in the library crates.

use clap::{Parser, Subcommand};
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
    /// Run every service in one process with a local NATS server and SQLite (not built yet:
    /// prints the plan and what works today).
    Up {
        /// Load demo data first (planned).
        #[arg(long)]
        demo: bool,
    },
    /// Print the referral lifecycle as the domain enforces it.
    Lifecycle,
    /// List the governorates and district codes of Iraq that cases and services use.
    Places,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = io::stdout().lock();
    let written = match cli.command {
        Command::Up { demo } => up(&mut out, demo),
        Command::Lifecycle => lifecycle(&mut out),
        Command::Places => places(&mut out),
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

fn up(out: &mut impl Write, demo: bool) -> io::Result<()> {
    writeln!(out, "Wasl {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out)?;
    writeln!(
        out,
        "`wasl up` is not built yet. Wasl is being built issue by issue; this is the plan:"
    )?;
    for (done, step) in PLAN {
        writeln!(out, "  [{}] {step}", if *done { "x" } else { " " })?;
    }
    if demo {
        writeln!(out)?;
        writeln!(out, "--demo: demo data arrives with the `wasl up` issue.")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "What works today: the domain rules. Try `wasl lifecycle` and `wasl places`."
    )?;
    Ok(())
}

const PLAN: &[(bool, &str)] = &[
    (true, "domain model, event schemas, tests and CI (foundation)"),
    (false, "event store on NATS JetStream and command handling"),
    (false, "per-case encryption, erasure, retention, small-cell suppression"),
    (false, "read models in PostgreSQL and SQLite"),
    (false, "HTTP API with authentication, authorisation and access audit"),
    (false, "partner delivery over NATS and webhooks"),
    (false, "`wasl up` with demo data, deployment and observability"),
];

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
