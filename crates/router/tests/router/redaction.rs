//! An erased case reaches the partners: one redaction notice per organisation that received a
//! referral of the case, naming those referrals and nothing personal, exactly once — across a
//! crash, a lost case index, a rewound checkpoint and a full replay — and nothing else in the
//! feeds changes.

use crate::support::{
    Running, connect, erase, feed, last_sequence, network, open_store, raw_bytes, router_config, server,
};
use async_nats::jetstream::{self, message::StreamMessage};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use wasl_domain::catalogue::ServiceCategory;
use wasl_domain::ids::{CaseId, OrgId, ReferralId};
use wasl_domain::referral::ReferralCommand;
use wasl_events::partner::redaction_subject;
use wasl_router::message::{ERASED_EVENT_TYPE, REDACTION_SCHEMA, source_sequence};
use wasl_router::{FeedMessage, PartnerMessage, RedactionNotice, Router, case_index_bucket};
use wasl_store::{EventStore, StoreConfig};

/// What must never reach a partner: every planted marker (they all contain `MRK`, and the name
/// `Zzyzx`), the key id of the sealed values.
const MARKERS: &[&str] = &["MRK", "Zzyzx", "case-test-key-1"];

/// The referral messages and the redaction notices of a feed, in order, with the raw message.
fn read(messages: &[StreamMessage]) -> Vec<(&StreamMessage, FeedMessage)> {
    messages
        .iter()
        .map(|m| (m, FeedMessage::parse(&m.payload).expect("a partner message")))
        .collect()
}

fn notices(messages: &[StreamMessage]) -> Vec<(&StreamMessage, RedactionNotice)> {
    read(messages)
        .into_iter()
        .filter_map(|(m, f)| match f {
            FeedMessage::Redaction(notice) => Some((m, notice)),
            FeedMessage::Referral(_) => None,
        })
        .collect()
}

fn referral_messages(messages: &[StreamMessage]) -> Vec<PartnerMessage> {
    read(messages)
        .into_iter()
        .filter_map(|(_, f)| match f {
            FeedMessage::Referral(message) => Some(message),
            FeedMessage::Redaction(_) => None,
        })
        .collect()
}

fn ids(referrals: &[ReferralId]) -> Vec<String> {
    let sorted: BTreeSet<ReferralId> = referrals.iter().copied().collect();
    sorted.iter().map(ToString::to_string).collect()
}

fn header(message: &StreamMessage, name: &str) -> Option<String> {
    message.headers.get(name).map(|v| v.as_str().to_owned())
}

/// The id of the event at `sequence` in the log (`ce-id`).
async fn event_id_at(store: &EventStore, sequence: u64) -> String {
    let message = store.stream().get_raw_message(sequence).await.expect("the event");
    header(&message, "ce-id").expect("an event id")
}

/// Checks one notice against what the erasure at `sequence` must say to `org`, and that nothing
/// in it could identify the client or the case.
fn check_notice(
    message: &StreamMessage,
    notice: &RedactionNotice,
    org: OrgId,
    sequence: u64,
    referrals: &[ReferralId],
) {
    assert_eq!(notice.schema, REDACTION_SCHEMA);
    assert_eq!(notice.event_type, ERASED_EVENT_TYPE);
    assert_eq!(
        notice.referral_ids,
        ids(referrals),
        "exactly its own referrals of the case"
    );
    assert!(notice.redact);
    let id: uuid::Uuid = notice.notice_id.parse().expect("a notice id");
    assert_eq!(message.subject.as_str(), redaction_subject(org, id));
    assert_eq!(header(message, "Nats-Msg-Id"), Some(notice.notice_id.clone()));
    assert_eq!(header(message, "ce-id"), Some(notice.notice_id.clone()));
    assert_eq!(header(message, "ce-type").as_deref(), Some(ERASED_EVENT_TYPE));
    assert_eq!(header(message, "ce-time"), Some(notice.occurred_at.clone()));
    assert_eq!(source_sequence(&message.headers), Some(sequence));
}

/// No marker, no case id and not the erasure's event id in any byte of any message of `feeds`.
fn assert_nothing_personal(feeds: &[&[StreamMessage]], cases: &[CaseId], erasure_ids: &[String]) {
    let mut searched = 0;
    for feed in feeds {
        for message in *feed {
            let raw = raw_bytes(message);
            let lower = String::from_utf8_lossy(&raw).to_lowercase();
            for marker in MARKERS {
                assert!(
                    !lower.contains(&marker.to_lowercase()),
                    "a personal marker reached a partner feed"
                );
            }
            for case in cases {
                assert!(
                    !lower.contains(&case.to_string()),
                    "the case id never reaches a partner"
                );
            }
            for id in erasure_ids {
                assert!(!lower.contains(id), "the case's event id never reaches a partner");
            }
            searched += 1;
        }
    }
    assert!(searched > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_case_tells_each_organisation_that_received_its_referrals_once_and_nothing_else_changes() {
    let server = server();
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = network(&store).await;
    // Organisation A (`other`) gets one referral of the case, B (`provider`) two; a second case
    // has a referral to B too.
    let service_a = net.add_service(&store, net.others[0], ServiceCategory::Health).await;
    let to_a = net.refer_case(&store, net.case, net.others[0], service_a).await;
    let to_b1 = net.refer(&store).await;
    let to_b2 = net.refer(&store).await;
    net.act(&store, to_b1, ReferralCommand::Accept).await;
    let second = net.open_case(&store).await;
    let unrelated = net.refer_case(&store, second, net.provider(), net.service()).await;

    let running = Running::start(&server.url(), router_config()).await;
    running.wait_for(last_sequence(&store).await).await;
    let js = jetstream::new(connect(&server.url()).await);
    let before_a = feed(&js, net.others[0]).await;
    let before_b = feed(&js, net.provider()).await;
    assert_eq!((before_a.len(), before_b.len()), (1, 4));

    let erased = erase(&store, &net, net.case).await.position;
    // Life goes on: the provider starts one of the case's referrals and accepts the other case's.
    net.act(&store, to_b1, ReferralCommand::Start).await;
    net.act(&store, unrelated, ReferralCommand::Accept).await;
    running.wait_for(last_sequence(&store).await).await;
    let metrics = running.router.metrics();
    running.stop().await.expect("a clean stop");
    assert_eq!(
        metrics.redactions.load(Ordering::Relaxed),
        2,
        "one notice per organisation"
    );

    let feed_a = feed(&js, net.others[0]).await;
    let feed_b = feed(&js, net.provider()).await;
    let feed_referring = feed(&js, net.referring).await;
    assert!(
        feed_referring.is_empty(),
        "the referring organisation received no referral"
    );

    // A: what it had, then one notice naming its one referral.
    assert_eq!(feed_a.len(), 2);
    let (message, notice) = &notices(&feed_a)[0];
    check_notice(message, notice, net.others[0], erased, &[to_a]);
    // B: what it had, then one notice naming both its referrals, then the later events.
    assert_eq!(feed_b.len(), 7);
    let found = notices(&feed_b);
    assert_eq!(found.len(), 1, "one notice however many referrals");
    let (message, notice_b) = &found[0];
    check_notice(message, notice_b, net.provider(), erased, &[to_b1, to_b2]);
    assert_ne!(notice.notice_id, notice_b.notice_id, "every organisation its own id");
    assert_eq!(notice.occurred_at, notice_b.occurred_at);

    // Nothing else changed: the earlier messages are untouched, the later ones ordinary
    // referral messages, everything in log order, the other case's referral named nowhere.
    for (before, after) in [(&before_a, &feed_a), (&before_b, &feed_b)] {
        for (old, new) in before.iter().zip(after.iter()) {
            assert_eq!((old.sequence, &old.payload), (new.sequence, &new.payload));
        }
        let sources: Vec<u64> = after
            .iter()
            .map(|m| source_sequence(&m.headers).expect("a sequence"))
            .collect();
        assert!(sources.windows(2).all(|w| w[0] < w[1]), "log order");
    }
    let later: Vec<(String, String)> = referral_messages(&feed_b[5..])
        .into_iter()
        .map(|m| (m.referral_id, m.status))
        .collect();
    assert_eq!(
        later,
        [
            (to_b1.to_string(), "in_progress".to_owned()),
            (unrelated.to_string(), "accepted".to_owned())
        ]
    );
    assert!(
        referral_messages(&feed_b).iter().all(|m| !m.redact),
        "referral messages keep their meaning"
    );
    assert!(!notice_b.referral_ids.contains(&unrelated.to_string()));

    let erasure_id = event_id_at(&store, erased).await;
    assert_nothing_personal(&[&feed_a, &feed_b], &[net.case, second], &[erasure_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_stay_exactly_once_through_a_crash_a_lost_index_a_rewound_checkpoint_and_a_full_replay() {
    let server = server();
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = network(&store).await;
    let service_a = net.add_service(&store, net.others[0], ServiceCategory::Health).await;
    let first = net.case;
    let to_a = net.refer_case(&store, first, net.others[0], service_a).await;
    let to_b1 = net.refer(&store).await;
    let to_b2 = net.refer(&store).await;
    let second = net.open_case(&store).await;
    let second_to_b = net.refer_case(&store, second, net.provider(), net.service()).await;
    let first_erased = erase(&store, &net, first).await.position;

    // A router that dies with everything delivered but perhaps not acknowledged.
    let running = Running::start(&server.url(), router_config()).await;
    running.wait_for(last_sequence(&store).await).await;
    running.crash().await;

    // The case index is lost (deleted, or a router upgraded from before it existed): the next
    // run rebuilds it from the log, so the second case's earlier referral to B is still found.
    let js = jetstream::new(connect(&server.url()).await);
    js.delete_key_value(case_index_bucket("WASL_ROUTER"))
        .await
        .expect("delete the case index");
    let second_to_a = net.refer_case(&store, second, net.others[0], service_a).await;
    let second_erased = erase(&store, &net, second).await.position;
    let running = Running::start(&server.url(), router_config()).await;
    running.wait_for(last_sequence(&store).await).await;
    running.stop().await.expect("a clean stop");

    let expect = |feed_a: &[StreamMessage], feed_b: &[StreamMessage]| {
        let found_a = notices(feed_a);
        let found_b = notices(feed_b);
        assert_eq!(
            (found_a.len(), found_b.len()),
            (2, 2),
            "one notice per erasure and organisation"
        );
        check_notice(found_a[0].0, &found_a[0].1, net.others[0], first_erased, &[to_a]);
        check_notice(
            found_a[1].0,
            &found_a[1].1,
            net.others[0],
            second_erased,
            &[second_to_a],
        );
        check_notice(
            found_b[0].0,
            &found_b[0].1,
            net.provider(),
            first_erased,
            &[to_b1, to_b2],
        );
        check_notice(
            found_b[1].0,
            &found_b[1].1,
            net.provider(),
            second_erased,
            &[second_to_b],
        );
        assert_eq!(referral_messages(feed_a).len(), 2);
        assert_eq!(referral_messages(feed_b).len(), 3);
    };
    let feed_a = feed(&js, net.others[0]).await;
    let feed_b = feed(&js, net.provider()).await;
    expect(&feed_a, &feed_b);

    // A checkpoint just before the second erasure, as a crash between the publishes and the
    // checkpoint leaves it: the feeds say the notices are there.
    let checkpoints = js.get_key_value("WASL_ROUTER").await.expect("the router's bucket");
    checkpoints
        .put("checkpoint", (second_erased - 1).to_string().into())
        .await
        .expect("rewind the checkpoint");
    let rewound = Running::start(&server.url(), router_config()).await;
    rewound.wait_for(last_sequence(&store).await).await;
    let metrics = rewound.router.metrics();
    rewound.stop().await.expect("a clean stop");
    assert_eq!(metrics.routed.load(Ordering::Relaxed), 0, "nothing twice");
    assert_eq!(
        metrics.skipped.load(Ordering::Relaxed),
        2,
        "both notices found delivered"
    );

    // A full replay from the beginning delivers nothing again either.
    let resetter = Router::open(connect(&server.url()).await, router_config())
        .await
        .expect("open a router");
    resetter.reset_checkpoint().await.expect("reset the checkpoint");
    let replay = Running::start(&server.url(), router_config()).await;
    replay.wait_for(last_sequence(&store).await).await;
    let metrics = replay.router.metrics();
    replay.stop().await.expect("a clean stop");
    assert_eq!(metrics.routed.load(Ordering::Relaxed), 0, "a replay publishes nothing");
    assert_eq!(
        metrics.skipped.load(Ordering::Relaxed),
        (feed_a.len() + feed_b.len()) as u64
    );

    let after_a = feed(&js, net.others[0]).await;
    let after_b = feed(&js, net.provider()).await;
    assert_eq!(
        (after_a.len(), after_b.len()),
        (feed_a.len(), feed_b.len()),
        "the feeds did not grow"
    );
    expect(&after_a, &after_b);
    let erasure_ids = [
        event_id_at(&store, first_erased).await,
        event_id_at(&store, second_erased).await,
    ];
    assert_nothing_personal(&[&after_a, &after_b], &[first, second], &erasure_ids);
}
