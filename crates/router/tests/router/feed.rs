//! The partner feeds: exactly once per feed across crashes, restarts and a full replay — referral
//! events and the redaction notices of erased cases alike; feeds created on registration.

use crate::support::{
    Running, at, connect, ctx, feed, fresh, last_sequence, open_store, router_config, server, wait_until_async,
};
use async_nats::jetstream;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use wasl_domain::Role;
use wasl_domain::case::CaseEvent;
use wasl_domain::directory::{DisplayName, OrgKind, Organisation, OrganisationCommand, OrganisationEvent};
use wasl_domain::ids::{CaseId, OrgId, ReferralId};
use wasl_domain::referral::ReferralEvent;
use wasl_events::partner::{out_stream, out_subject, out_subjects, redaction_subject};
use wasl_events::{DomainEvent, StoredEvent};
use wasl_router::message::{SCHEMA, redaction_notice_id, source_sequence};
use wasl_router::{FeedMessage, Router};
use wasl_store::StoreConfig;
use wasl_synth::{Generator, HistoryConfig};

/// The redaction notices expected: by organisation and erasure sequence, the referrals named.
type Notices = HashMap<(OrgId, u64), BTreeSet<ReferralId>>;

/// For each organisation, the source sequences of the referral events addressed to it and of the
/// erasures of cases it received referrals of, in log order (sequence = position in the
/// history + 1 on a fresh stream); the notices; and every organisation.
fn expected(events: &[StoredEvent]) -> (BTreeMap<OrgId, Vec<u64>>, Notices, HashSet<OrgId>) {
    let mut to: HashMap<ReferralId, OrgId> = HashMap::new();
    let mut of_case: HashMap<CaseId, Vec<ReferralId>> = HashMap::new();
    let mut out: BTreeMap<OrgId, Vec<u64>> = BTreeMap::new();
    let mut notices = Notices::new();
    let mut orgs = HashSet::new();
    for (index, event) in events.iter().enumerate() {
        let sequence = index as u64 + 1;
        match &event.event {
            DomainEvent::Organisation(org, OrganisationEvent::Registered { .. }) => {
                orgs.insert(*org);
            }
            DomainEvent::Referral(id, referral_event) => {
                if let ReferralEvent::Requested(request) = referral_event {
                    to.insert(*id, request.to_org);
                    of_case.entry(request.case_id).or_default().push(*id);
                }
                out.entry(to[id]).or_default().push(sequence);
            }
            DomainEvent::Case(case, CaseEvent::PersonalDataErased { .. }) => {
                let mut recipients: BTreeMap<OrgId, BTreeSet<ReferralId>> = BTreeMap::new();
                for referral in of_case.get(case).into_iter().flatten() {
                    recipients.entry(to[referral]).or_default().insert(*referral);
                }
                for (org, referrals) in recipients {
                    out.entry(org).or_default().push(sequence);
                    notices.insert((org, sequence), referrals);
                }
            }
            _ => {}
        }
    }
    (out, notices, orgs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_feed_holds_each_referral_event_once_in_order_across_crashes_and_a_full_replay() {
    let server = server();
    let client = connect(&server.url()).await;
    let js = jetstream::new(client.clone());
    let config = StoreConfig::default();
    wasl_store::provision::ensure_stream(&js, &config)
        .await
        .expect("the event stream");
    let events: Vec<StoredEvent> = Generator::new(HistoryConfig::new(7, 120)).collect();
    let last = wasl_synth::publish(&js, &config, events.clone())
        .await
        .expect("publish the history");
    assert_eq!(last, events.len() as u64);
    let (expected, notices, orgs) = expected(&events);
    let routed_total: usize = expected.values().map(Vec::len).sum();
    assert!(
        routed_total > 300,
        "a history with enough referral events ({routed_total})"
    );
    assert!(
        notices.len() >= 2,
        "a history with erased cases that had referrals ({})",
        notices.len()
    );

    // Crash the router three times mid-stream, with acknowledgements in flight.
    for quarter in 1..=3 {
        let running = Running::start(&server.url(), router_config()).await;
        running.wait_for(last * quarter / 4).await;
        running.crash().await;
    }
    // A graceful restart that finishes the log.
    let running = Running::start(&server.url(), router_config()).await;
    running.wait_for(last).await;
    running.stop().await.expect("a clean stop");

    // A full replay from the beginning delivers nothing again.
    let resetter = Router::open(connect(&server.url()).await, router_config())
        .await
        .expect("open a router");
    resetter.reset_checkpoint().await.expect("reset the checkpoint");
    assert_eq!(resetter.checkpoint().await.expect("checkpoint"), 0);
    let replay = Running::start(&server.url(), router_config()).await;
    replay.wait_for(last).await;
    let metrics = replay.router.metrics();
    assert_eq!(metrics.routed.load(Ordering::Relaxed), 0, "a replay publishes nothing");
    assert_eq!(metrics.skipped.load(Ordering::Relaxed), routed_total as u64);
    replay.stop().await.expect("a clean stop");

    let by_id: HashMap<u64, &StoredEvent> = events.iter().enumerate().map(|(i, e)| (i as u64 + 1, e)).collect();
    for org in &orgs {
        let messages = feed(&js, *org).await;
        let sequences: Vec<u64> = messages
            .iter()
            .map(|m| source_sequence(&m.headers).expect("a source sequence"))
            .collect();
        let want = expected.get(org).cloned().unwrap_or_default();
        assert_eq!(
            sequences, want,
            "feed of an organisation: one message per event, in order"
        );
        for message in &messages {
            let sequence = source_sequence(&message.headers).expect("sequence");
            let source = by_id[&sequence];
            let body = match FeedMessage::parse(&message.payload).expect("a partner message") {
                FeedMessage::Referral(body) => body,
                FeedMessage::Redaction(notice) => {
                    assert!(matches!(
                        source.event,
                        DomainEvent::Case(_, CaseEvent::PersonalDataErased { .. })
                    ));
                    let named: BTreeSet<ReferralId> =
                        notice.referral_ids.iter().map(|r| r.parse().expect("an id")).collect();
                    assert_eq!(
                        named,
                        notices[&(*org, sequence)],
                        "the organisation's referrals of the case"
                    );
                    let id = redaction_notice_id(source.meta.event_id, *org, source.meta.occurred_at);
                    assert_eq!(notice.notice_id, id.to_string());
                    assert_eq!(message.subject.as_str(), redaction_subject(*org, id));
                    assert_eq!(
                        message.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_owned()),
                        Some(notice.notice_id.clone())
                    );
                    continue;
                }
            };
            let DomainEvent::Referral(id, _) = &source.event else {
                panic!("only referral events are routed")
            };
            assert_eq!(body.schema, SCHEMA);
            assert_eq!(body.event_id, source.meta.event_id.to_string());
            assert_eq!(body.event_type, source.event.event_type());
            assert_eq!(body.referral_id, id.to_string());
            assert_eq!(message.subject.as_str(), out_subject(*org, *id));
            assert_eq!(
                body.details_url,
                format!("https://wasl.example.invalid/v1/referrals/{id}")
            );
            assert_eq!(
                message.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_owned()),
                Some(body.event_id.clone())
            );
        }
    }
    // Versions count the referral's events: each referral's messages go 1, 2, 3, …
    for org in &orgs {
        let mut versions: HashMap<String, u64> = HashMap::new();
        for message in feed(&js, *org).await {
            let Ok(FeedMessage::Referral(body)) = FeedMessage::parse(&message.payload) else {
                continue;
            };
            let seen = versions.entry(body.referral_id.clone()).or_default();
            *seen += 1;
            assert_eq!(body.version, *seen, "versions follow the referral's history");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_an_organisation_creates_its_feed() {
    let server = server();
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let running = Running::start(&server.url(), router_config()).await;
    let org: OrgId = fresh();
    let coordinator = at(ctx(fresh(), fresh(), Role::Coordinator), 0);
    store
        .execute::<Organisation>(
            org,
            &OrganisationCommand::Register {
                org_id: org,
                name: DisplayName::parse("Synthetic New Partner (test)").expect("name"),
                kind: OrgKind::NationalNgo,
            },
            &crate::support::meta(coordinator),
        )
        .await
        .expect("register");
    let js = jetstream::new(store.client().clone());
    wait_until_async("the feed exists", || {
        let js = js.clone();
        async move { js.get_stream(out_stream(org)).await.is_ok() }
    })
    .await;
    running.wait_for(last_sequence(&store).await).await;
    let stream = js.get_stream(out_stream(org)).await.expect("the feed");
    let info = stream.cached_info();
    assert_eq!(info.config.subjects, vec![out_subjects(org)]);
    assert_eq!(info.config.storage, jetstream::stream::StorageType::File);
    assert_eq!(info.config.discard, jetstream::stream::DiscardPolicy::Old);
    assert!(info.config.deny_delete);
    assert_eq!(info.state.messages, 0, "nothing is addressed to it yet");
    assert_eq!(running.router.metrics().streams_created.load(Ordering::Relaxed), 1);
    running.stop().await.expect("a clean stop");
}
