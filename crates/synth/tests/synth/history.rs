//! Histories are deterministic, replay to the generator's states, and survive the wire.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use wasl_domain::Aggregate;
use wasl_domain::case::{Case, CaseEvent};
use wasl_domain::directory::{Organisation, OrganisationEvent};
use wasl_domain::ids::{CaseId, OrgId, ReferralId};
use wasl_domain::referral::{Referral, ReferralEvent, ReferralStatus};
use wasl_events::{DomainEvent, StoredEvent};
use wasl_synth::{Generator, HistoryConfig};

fn history(config: HistoryConfig) -> (Generator, Vec<StoredEvent>) {
    let mut generator = Generator::new(config);
    let events: Vec<StoredEvent> = generator.by_ref().collect();
    (generator, events)
}

#[test]
fn generators_and_configs_can_move_between_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Generator>();
    send_and_sync::<HistoryConfig>();
}

#[test]
fn the_same_config_gives_byte_identical_events_and_another_seed_others() {
    let bytes = |seed| -> Vec<Vec<u8>> {
        Generator::new(HistoryConfig::new(seed, 800))
            .map(|e| wasl_events::encode(&e))
            .collect()
    };
    let first = bytes(42);
    assert!(first.len() > 4_000, "{} events", first.len());
    assert_eq!(first, bytes(42));
    assert_ne!(first, bytes(43));
}

#[test]
fn the_lean_mode_gives_the_same_events_and_keeps_only_what_can_still_change() {
    let config = HistoryConfig::new(5, 600);
    let (full, kept) = history(config.clone());
    let (lean, lean_events) = history(HistoryConfig {
        keep_states: false,
        ..config
    });
    assert_eq!(kept, lean_events);
    assert!(lean.cases().len() < full.cases().len() / 10);
    assert!(lean.referrals().len() < full.referrals().len() / 10);
    assert_eq!(lean.organisations(), full.organisations());
}

#[test]
fn replaying_the_events_of_each_aggregate_gives_the_generators_states() {
    let (generator, events) = history(HistoryConfig::new(7, 1_500));
    let mut cases: BTreeMap<CaseId, Vec<CaseEvent>> = BTreeMap::new();
    let mut referrals: BTreeMap<ReferralId, Vec<ReferralEvent>> = BTreeMap::new();
    let mut orgs: BTreeMap<OrgId, Vec<OrganisationEvent>> = BTreeMap::new();
    for stored in events {
        match stored.event {
            DomainEvent::Case(id, e) => cases.entry(id).or_default().push(e),
            DomainEvent::Referral(id, e) => referrals.entry(id).or_default().push(e),
            DomainEvent::Organisation(id, e) => orgs.entry(id).or_default().push(e),
        }
    }
    let replayed_cases: BTreeMap<CaseId, Case> = cases.iter().map(|(id, es)| (*id, Case::replay(es))).collect();
    let replayed_referrals: BTreeMap<ReferralId, Referral> =
        referrals.iter().map(|(id, es)| (*id, Referral::replay(es))).collect();
    let replayed_orgs: BTreeMap<OrgId, Organisation> =
        orgs.iter().map(|(id, es)| (*id, Organisation::replay(es))).collect();
    assert_eq!(&replayed_cases, generator.cases());
    assert_eq!(&replayed_referrals, generator.referrals());
    assert_eq!(&replayed_orgs, generator.organisations());
    assert_eq!(generator.organisations().len(), 12);
    // Roughly the referrals asked for (a case that finds no service gives up; none did here).
    assert_eq!(generator.referrals().len(), 1_500);
}

#[test]
fn events_carry_the_stores_metadata_in_log_order() {
    let config = HistoryConfig::new(11, 500);
    let start = config.start;
    let (_, events) = history(config);
    assert_eq!(events[0].meta.occurred_at, start);
    let mut event_ids = HashSet::new();
    let mut command_ids = HashSet::new();
    for pair in events.windows(2) {
        assert!(pair[0].meta.occurred_at <= pair[1].meta.occurred_at);
    }
    for e in &events {
        // One event per command today: the domain decides no command into several events.
        assert_eq!(
            e.meta.event_id,
            wasl_store::event_id(e.meta.command_id, e.meta.occurred_at, 0)
        );
        assert!(event_ids.insert(e.meta.event_id));
        assert!(command_ids.insert(e.meta.command_id));
        assert_eq!(e.meta.actor.roles.len(), 1);
    }
    let span = events[events.len() - 1].meta.occurred_at.unix_millis() - start.unix_millis();
    assert!(span > 7 * 86_400_000, "the history spans weeks, not {span} ms");
}

#[test]
fn every_event_round_trips_through_protobuf_and_its_headers() {
    let (_, events) = history(HistoryConfig::new(3, 1_000));
    for event in &events {
        let bytes = wasl_events::encode(event);
        assert_eq!(&wasl_events::decode(&bytes).expect("decodes"), event);
        let headers = wasl_events::build_headers(event, wasl_events::headers::DEFAULT_SOURCE).expect("headers");
        let parsed = wasl_events::parse_headers(headers).expect("parsed");
        assert_eq!(parsed.id, event.meta.event_id);
    }
}

#[test]
fn the_data_is_synthetic_and_some_lifecycles_are_left_open() {
    let (generator, _) = history(HistoryConfig::new(13, 2_000));
    for case in generator.cases().values() {
        let state = case.state().expect("opened");
        // The identifying facts are sealed, as every command writes them; nothing is in the
        // clear to be mistaken for a real person's.
        assert!(
            matches!(state.profile.identifying, wasl_domain::client::Identifying::Sealed(_)),
            "a profile in the clear"
        );
    }
    for org in generator.organisations().values() {
        assert!(org.state().expect("registered").name.as_str().starts_with("Synthetic "));
    }
    let statuses: BTreeSet<ReferralStatus> = generator.referrals().values().filter_map(Referral::status).collect();
    for open in [
        ReferralStatus::Requested,
        ReferralStatus::Received,
        ReferralStatus::Accepted,
        ReferralStatus::InProgress,
        ReferralStatus::OnHold,
    ] {
        assert!(statuses.contains(&open), "no referral left {open}");
    }
    let open_cases = generator
        .cases()
        .values()
        .filter(|c| {
            c.state()
                .is_some_and(|s| s.status == wasl_domain::case::CaseStatus::Open)
        })
        .count();
    assert!(open_cases > 0);
}

#[test]
fn a_single_organisation_still_gets_its_referrals_made() {
    let (generator, _) = history(HistoryConfig {
        organisations: 1,
        ..HistoryConfig::new(17, 100)
    });
    assert_eq!(generator.organisations().len(), 1);
    assert!(generator.referrals().len() >= 90);
}
