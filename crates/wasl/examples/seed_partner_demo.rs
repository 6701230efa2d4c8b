//! Demo data for the partner example (`examples/partner.py`, run by `scripts/test-partner-example`):
//! a small synthetic network's genuine history (`wasl_synth`), published into the event log the
//! way the store would have stored it.
//!
//! ```sh
//! # the organisation ids, one a line, without touching NATS (for `wasl nats-config --org …`)
//! cargo run -p wasl --example seed_partner_demo -- orgs
//! # the history, into the event log of a server that requires the hub's NKey
//! cargo run -p wasl --example seed_partner_demo -- publish nats://127.0.0.1:4333 hub.nk
//! ```
//!
//! `publish` prints one line per referral: `referral <id> to <org> status <status> events <n>`,
//! its final status and how many referral events it has (each becomes one message in the
//! receiving organisation's feed once `wasl router` runs). Every run gives the same
//! organisations and referrals.

use std::collections::BTreeMap;
use std::error::Error;
use std::process::ExitCode;
use wasl_domain::ids::ReferralId;
use wasl_events::DomainEvent;
use wasl_events::StoredEvent;
use wasl_store::StoreConfig;
use wasl_synth::Generator;

/// The history: 30 referrals among 12 organisations, one of them still waiting for its receipt
/// (the example answers it), from the first seed that gives one.
fn history() -> (Generator, Vec<StoredEvent>) {
    wasl_synth::history_with_a_waiting_referral(30)
}

const USAGE: &str = "usage: seed_partner_demo orgs | seed_partner_demo publish <nats-url> <hub-seed-file>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["orgs"] => orgs(),
        ["publish", url, seed] => publish(url, seed),
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seed_partner_demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the organisation ids of the history.
fn orgs() -> Result<(), Box<dyn Error>> {
    let (generator, _) = history();
    for org in generator.organisations().keys() {
        println!("{org}");
    }
    Ok(())
}

/// Publishes the history with the hub's NKey and prints its referrals.
fn publish(url: &str, seed_file: &str) -> Result<(), Box<dyn Error>> {
    let seed = std::fs::read_to_string(seed_file).map_err(|e| format!("cannot read {seed_file}: {e}"))?;
    let (generator, events) = history();
    let mut per_referral: BTreeMap<ReferralId, usize> = BTreeMap::new();
    for event in &events {
        if let DomainEvent::Referral(id, _) = &event.event {
            *per_referral.entry(*id).or_default() += 1;
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let last = runtime.block_on(async {
        let client = async_nats::ConnectOptions::with_nkey(seed.trim().to_owned())
            .connect(url)
            .await
            .map_err(|e| format!("cannot connect to NATS: {e}"))?;
        let js = async_nats::jetstream::new(client);
        let config = StoreConfig::default();
        wasl_store::provision::ensure_stream(&js, &config).await?;
        let last = wasl_synth::publish(&js, &config, events.clone()).await?;
        Ok::<_, Box<dyn Error>>(last)
    })?;
    for referral in generator.referrals().values() {
        if let Some(state) = referral.state() {
            println!(
                "referral {} to {} status {} events {}",
                state.id,
                state.to_org,
                state.status,
                per_referral.get(&state.id).copied().unwrap_or_default()
            );
        }
    }
    eprintln!(
        "seed_partner_demo: published {} events (last sequence {last})",
        events.len()
    );
    Ok(())
}
