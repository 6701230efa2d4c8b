//! The demo data against a real nats-server: loaded through the real command path, genuine,
//! sealed, with working logins, and idempotent.

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use wasl_api::auth::accounts::Accounts;
use wasl_demo::{DemoConfig, DemoParts, DemoReport};
use wasl_domain::Aggregate;
use wasl_domain::case::CaseEvent;
use wasl_domain::catalogue::DeclineCode;
use wasl_domain::directory::OrganisationEvent;
use wasl_domain::ids::{CaseId, EventId, ReferralId};
use wasl_domain::pii::PersonalData;
use wasl_domain::referral::{Referral, ReferralEvent, ReferralStatus};
use wasl_domain::time::Timestamp;
use wasl_events::DomainEvent;
use wasl_store::{EventStore, StoreConfig};
use wasl_testkit::NatsServer;
use wasl_testkit::files::contains;
use wasl_vault::{LocalMasterKey, PiiField, Revealed, Vault, VaultConfig};

const MASTER_KEY: &str = "0202020202020202020202020202020202020202020202020202020202020202";
/// 2026-05-28 20:26 UTC.
const NOW: Timestamp = Timestamp::from_unix_millis(1_780_000_000_000);

/// Wasl's parts on one server, as a fresh process would open them.
struct Parts {
    store: EventStore,
    vault: Vault<LocalMasterKey>,
    accounts: Accounts,
}

impl Parts {
    async fn open(server: &NatsServer) -> Self {
        let client = async_nats::connect(server.url()).await.expect("connect to NATS");
        let store = EventStore::open(client.clone(), StoreConfig::default())
            .await
            .expect("the event store");
        let js = async_nats::jetstream::new(client);
        let master = LocalMasterKey::from_hex("test-master", MASTER_KEY).expect("master key");
        let vault = Vault::connect(&js, master, &VaultConfig::default())
            .await
            .expect("the vault");
        let accounts = Accounts::open(js, 1).await.expect("accounts");
        Self { store, vault, accounts }
    }

    async fn load(&self, config: &DemoConfig) -> DemoReport {
        wasl_demo::load(
            DemoParts {
                store: &self.store,
                vault: &self.vault,
                accounts: &self.accounts,
            },
            config,
        )
        .await
        .expect("the demo loads")
    }

    async fn last_sequence(&self) -> u64 {
        self.store
            .stream()
            .get_info()
            .await
            .expect("stream info")
            .state
            .last_sequence
    }
}

/// What the log holds, folded.
#[derive(Default)]
struct Log {
    organisations: HashSet<String>,
    services: usize,
    cases: HashSet<CaseId>,
    closed_cases: usize,
    opened: Vec<(CaseId, EventId, PersonalData)>,
    referrals: HashMap<ReferralId, Referral>,
    referral_notes: usize,
    follow_ups: usize,
    /// Each referral's client governorate.
    governorates: HashMap<ReferralId, String>,
    /// Every message's subject, headers and body, as stored.
    raw: Vec<u8>,
}

async fn read_log(parts: &Parts) -> Log {
    let last = parts.last_sequence().await;
    let consumer = parts
        .store
        .stream()
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("a consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut log = Log::default();
    while let Some(message) = messages.next().await {
        let message = message.expect("a message");
        let sequence = message.info().expect("info").stream_sequence;
        log.raw.extend_from_slice(message.subject.as_bytes());
        if let Some(headers) = &message.headers {
            for (name, values) in headers.iter() {
                log.raw.extend_from_slice(<_ as AsRef<str>>::as_ref(name).as_bytes());
                for value in values {
                    log.raw.extend_from_slice(value.as_str().as_bytes());
                }
            }
        }
        log.raw.extend_from_slice(&message.payload);
        let stored =
            wasl_store::load::decode_message(sequence, &message.subject, message.headers.as_ref(), &message.payload)
                .expect("every message is a readable event");
        match stored.event {
            DomainEvent::Organisation(id, event) => match event {
                OrganisationEvent::Registered { .. } => {
                    log.organisations.insert(id.to_string());
                }
                OrganisationEvent::ServiceAdded { .. } => log.services += 1,
                _ => {}
            },
            DomainEvent::Case(id, event) => match event {
                CaseEvent::Opened { personal, .. } => {
                    log.cases.insert(id);
                    log.opened.push((id, stored.meta.event_id, personal));
                }
                CaseEvent::Closed { .. } => log.closed_cases += 1,
                _ => {}
            },
            DomainEvent::Referral(id, event) => {
                match &event {
                    ReferralEvent::Requested(requested) if requested.notes.is_some() => log.referral_notes += 1,
                    ReferralEvent::FollowUpRecorded(_) => log.follow_ups += 1,
                    _ => {}
                }
                if let ReferralEvent::Requested(requested) = &event {
                    let governorate = requested.client.location.governorate().code().to_owned();
                    log.governorates.insert(id, governorate);
                }
                let referral = log.referrals.remove(&id).unwrap_or_default();
                log.referrals.insert(id, referral.evolve(&event));
            }
        }
        if sequence >= last {
            break;
        }
    }
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_loads_through_the_command_path_and_a_second_load_adds_nothing() {
    let server = NatsServer::start().expect("a nats-server");
    let parts = Parts::open(&server).await;
    let config = DemoConfig::new(NOW);

    let first = parts.load(&config).await;
    eprintln!("{first}");

    // Counts: what the report says is what the log holds.
    assert_eq!(first.organisations, 13);
    assert!(first.services >= 20, "{} services", first.services);
    assert!(first.cases >= 100, "{} cases", first.cases);
    assert!(first.referrals > first.cases, "{} referrals", first.referrals);
    assert!(!first.anchor_reused);
    assert_eq!(first.anchor, NOW);
    assert_eq!(first.commands_executed, first.commands);
    assert_eq!(first.commands_already_present, 0);
    assert_eq!(first.events_appended, first.commands as u64, "one event per command");
    assert_eq!(parts.last_sequence().await, first.events_appended);

    let log = read_log(&parts).await;
    assert_eq!(log.organisations.len(), first.organisations);
    assert_eq!(log.services, first.services);
    assert_eq!(log.cases.len(), first.cases);
    assert_eq!(log.closed_cases, first.closed_cases);
    assert_eq!(log.referrals.len(), first.referrals);
    assert_eq!(log.follow_ups, first.followed_up);

    // Referrals in every intended status, as the aggregates replayed from the log have them.
    let mut statuses: BTreeMap<ReferralStatus, usize> = BTreeMap::new();
    let mut declines: BTreeMap<DeclineCode, usize> = BTreeMap::new();
    for referral in log.referrals.values() {
        let state = referral.state().expect("every referral was requested");
        *statuses.entry(state.status).or_default() += 1;
        if let Some(decline) = &state.decline {
            *declines.entry(decline.reason.code).or_default() += 1;
        }
    }
    assert_eq!(statuses.clone().into_iter().collect::<Vec<_>>(), first.statuses);
    for status in [
        ReferralStatus::Requested,
        ReferralStatus::Received,
        ReferralStatus::Accepted,
        ReferralStatus::InProgress,
        ReferralStatus::OnHold,
        ReferralStatus::Completed,
        ReferralStatus::Failed,
        ReferralStatus::Rejected,
        ReferralStatus::Cancelled,
    ] {
        assert!(statuses.get(&status).is_some_and(|n| *n > 0), "no referral is {status}");
    }
    assert!(declines.get(&DeclineCode::NoCapacity).is_some_and(|n| *n > 0));
    assert!(declines.get(&DeclineCode::Redirected).is_some_and(|n| *n > 0));
    let redirects: Vec<_> = log
        .referrals
        .values()
        .filter_map(|r| r.state().and_then(|s| s.redirected_from))
        .collect();
    assert_eq!(redirects.len(), first.redirects);
    assert!(!redirects.is_empty());
    for earlier in &redirects {
        let earlier = log.referrals[earlier].state().expect("the earlier referral");
        assert_eq!(earlier.status, ReferralStatus::Rejected);
    }
    // Something for the dashboards to show. A partner that answers late: its referrals miss
    // their response deadlines far more often, recorded (and escalated) as the follow-up
    // service would have; coordinators acknowledge some escalations.
    let late = first
        .logins
        .iter()
        .find(|l| l.username == "demo.focal.health.duhok")
        .expect("the late partner's focal point")
        .org_id;
    let missed = |to_late: bool| {
        let of: Vec<_> = log
            .referrals
            .values()
            .filter_map(|r| r.state())
            .filter(|s| (s.to_org == late) == to_late)
            .collect();
        let missed = of.iter().filter(|s| !s.overdue.is_empty()).count();
        (missed, of.len())
    };
    let ((late_missed, late_all), (others_missed, others_all)) = (missed(true), missed(false));
    assert!(late_missed >= 5, "the late partner missed {late_missed} of {late_all}");
    assert!(
        late_missed * others_all > 3 * others_missed * late_all,
        "late: {late_missed} of {late_all}; the others: {others_missed} of {others_all}"
    );
    let states: Vec<_> = log.referrals.values().filter_map(|r| r.state()).collect();
    assert!(states.iter().any(|s| !s.escalated.is_empty()));
    assert!(states.iter().any(|s| !s.acknowledged.is_empty()));
    // Service gaps in Anbar and Basrah: declines for capacity or a service not offered.
    let gaps = |short: bool| {
        let of: Vec<_> = log
            .referrals
            .iter()
            .filter(|(id, _)| ["IQ-AN", "IQ-BA"].contains(&log.governorates[*id].as_str()) == short)
            .filter_map(|(_, r)| r.state())
            .collect();
        let declined = of
            .iter()
            .filter(|s| {
                s.decline
                    .as_ref()
                    .is_some_and(|d| matches!(d.reason.code, DeclineCode::NoCapacity | DeclineCode::ServiceNotOffered))
            })
            .count();
        (declined, of.len())
    };
    let ((short_declined, short_all), (elsewhere_declined, elsewhere_all)) = (gaps(true), gaps(false));
    assert!(
        short_declined * elsewhere_all > 3 * elsewhere_declined * short_all,
        "short of services: {short_declined} of {short_all}; elsewhere: {elsewhere_declined} of {elsewhere_all}"
    );
    let completed = statuses[&ReferralStatus::Completed];
    assert!(
        completed * 2 > first.referrals,
        "most referrals are completed: {completed} of {}",
        first.referrals
    );

    // Every login signs in with the demo password.
    assert_eq!(first.logins.len(), first.logins_created);
    assert!(first.password_verified);
    for login in &first.logins {
        let user = parts.accounts.user_by_name(&login.username).expect("the login exists");
        assert_eq!(user.org, login.org_id);
        assert_eq!(user.roles, vec![login.role]);
        assert!(
            wasl_api::auth::password::verify(&first.password, &user.password_hash),
            "{} does not sign in",
            login.username
        );
    }

    // Personal data opens with the vault, and no plain personal value is in the log.
    let (case, event, personal) = &log.opened[0];
    let name = parts
        .vault
        .open(*case, *event, PiiField::NAME, personal.name.as_ref().expect("a name"))
        .await
        .expect("opens");
    let Revealed::Plain(name) = name else {
        panic!("not erased")
    };
    assert!(name.starts_with("Test Person "), "a synthetic name");
    let phone = parts
        .vault
        .open(
            *case,
            *event,
            PiiField::PHONE,
            personal.phone.as_ref().expect("a phone"),
        )
        .await
        .expect("opens");
    assert!(phone.as_str().starts_with("+964 000 000 "));
    assert!(log.referral_notes > 0);
    for marker in [
        "Test Person",
        "+964 000",
        "Demo Street",
        "not a real person",
        "DEMO-0000",
    ] {
        assert!(
            !contains(&log.raw, marker.as_bytes()),
            "{marker:?} is in the log in plain"
        );
    }
    // Survivor codes are sealed like names (ADR 0008): none is in the log in the clear.

    // A second load, from a fresh process three hours later, adds nothing.
    let last = parts.last_sequence().await;
    let again = Parts::open(&server).await;
    let later = DemoConfig {
        now: NOW.plus_hours(3),
        ..config
    };
    let second = again.load(&later).await;
    eprintln!("{second}");
    assert_eq!(again.last_sequence().await, last, "no new events");
    assert!(second.anchor_reused);
    assert_eq!(second.anchor, first.anchor);
    assert_eq!(second.commands_executed, 0);
    assert_eq!(second.commands_already_present, first.commands);
    assert_eq!(second.events_appended, 0);
    assert_eq!(second.logins_created, 0);
    assert!(second.password_verified);
    assert_eq!(
        (second.organisations, second.services, second.cases, second.referrals),
        (first.organisations, first.services, first.cases, first.referrals)
    );
    assert_eq!(second.statuses, first.statuses);
    assert_eq!(second.logins, first.logins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_seeds_windows_and_times_of_day_load_without_a_refusal() {
    for (seed, days, now) in [
        (1, 30, NOW.plus_millis(7 * 3_600_000 + 123)),
        (7, 7, NOW.plus_hours(13)),
        (99, 180, NOW.plus_hours(-20)),
    ] {
        let server = NatsServer::start().expect("a nats-server");
        let parts = Parts::open(&server).await;
        let config = DemoConfig {
            seed,
            days,
            now,
            password: Some("another demo password".to_owned()),
        };
        let report = parts.load(&config).await;
        assert_eq!(report.commands_executed, report.commands, "seed {seed}");
        assert_eq!(parts.last_sequence().await, report.events_appended);
        assert!(report.cases > 0 && report.referrals > 0, "seed {seed}");
        assert!(report.password_verified);
    }
}
