//! Generates a history and prints how long it took and how many events of each type it holds:
//! `cargo run --release -p wasl-synth --example history_stats -- [referrals] [max events] [seed]`.
//! With no arguments: 1,000,000 events from 120,000 referrals, memory-lean (states are kept
//! for up to 20,000 referrals, and the final referral statuses shown).

use std::collections::BTreeMap;
use std::time::Instant;
use wasl_domain::referral::ReferralStatus;
use wasl_synth::{Generator, HistoryConfig};

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().ok());
    let referrals = args.next().flatten().unwrap_or(120_000);
    let limit = args.next().flatten().unwrap_or(1_000_000);
    let seed = args.next().flatten().unwrap_or(1) as u64;
    let keep = referrals <= 20_000;
    let mut generator = Generator::new(HistoryConfig {
        keep_states: keep,
        ..HistoryConfig::new(seed, referrals)
    });
    let started = Instant::now();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let (mut events, mut first, mut last) = (0usize, None, None);
    for event in generator.by_ref().take(limit) {
        events += 1;
        *counts.entry(event.event.event_type()).or_default() += 1;
        first.get_or_insert(event.meta.occurred_at);
        last = Some(event.meta.occurred_at);
    }
    let elapsed = started.elapsed();
    println!(
        "{events} events from {referrals} referrals (seed {seed}) in {:.2} s: {:.0} events/s",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64()
    );
    if let (Some(first), Some(last)) = (first, last) {
        let days = (last.unix_millis() - first.unix_millis()) as f64 / 86_400_000.0;
        println!("spanning {days:.0} days");
    }
    for (name, n) in &counts {
        println!("{n:>9}  {name}");
    }
    let mut open: BTreeMap<ReferralStatus, usize> = BTreeMap::new();
    for referral in generator.referrals().values() {
        if let Some(status) = referral.status() {
            *open.entry(status).or_default() += 1;
        }
    }
    println!("referral states still held at the end: {open:?}");
}
