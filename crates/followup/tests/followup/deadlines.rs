//! Deadlines over the whole policy table: each fires once, at its moment, and never when met in
//! time; escalation follows; a crash or a second instance changes nothing.

use crate::support::*;
use std::collections::BTreeSet;
use std::time::Duration;
use wasl_domain::catalogue::{Priority, ServiceCategory};
use wasl_domain::referral::{FollowUp, OverdueKind, ReferralCommand, ReferralEvent, ServiceReceived};
use wasl_domain::time::Timestamp;
use wasl_followup::{DeadlinePolicy, FollowupConfig};
use wasl_testkit::on_both;

fn config() -> FollowupConfig {
    FollowupConfig {
        check_interval: Duration::from_millis(200),
        retry_delay: Duration::from_millis(50),
        ..FollowupConfig::default()
    }
}

async fn every_deadline_fires_once_at_its_moment_and_never_when_met(db: wasl_testkit::db::TestDb) {
    let world = World::start(db).await;
    let net = world.network().await;
    let policy = DeadlinePolicy::default();
    let running = world.followup(config()).await;

    // For every category and priority: one referral nobody answers, one answered and started in
    // time.
    let mut silent = Vec::new();
    let mut answered = Vec::new();
    for category in ServiceCategory::ALL {
        for priority in Priority::ALL {
            silent.push((
                net.refer_to(&world.store, 0, *category, *priority).await,
                policy.windows(*category, *priority),
            ));
            let on_time = net.refer_to(&world.store, 1, *category, *priority).await;
            net.act_by(&world.store, on_time, 1, ReferralCommand::Receive).await;
            net.act_by(&world.store, on_time, 1, ReferralCommand::Accept).await;
            net.act_by(&world.store, on_time, 1, ReferralCommand::Start).await;
            answered.push(on_time);
        }
    }
    running.quiet(&world).await;

    // Every moment a deadline falls on, in order: just before it nothing of it has happened,
    // at it exactly what is due.
    let moments: BTreeSet<Duration> = silent.iter().flat_map(|(_, w)| [w.acknowledge, w.decide]).collect();
    for moment in moments {
        let at = T0.plus_millis(moment.as_millis() as i64);
        world.clock.set(at.plus_millis(-1));
        running.quiet(&world).await;
        for (referral, windows) in &silent {
            let events = world.events(*referral).await;
            for (kind, window) in [
                (OverdueKind::Acknowledgement, windows.acknowledge),
                (OverdueKind::Decision, windows.decide),
            ] {
                let expected = usize::from(window < moment);
                assert_eq!(
                    count(&events, "overdue", kind),
                    expected,
                    "{kind:?} of a {windows:?} referral before {moment:?}"
                );
            }
        }
        world.clock.set(at);
        running.quiet(&world).await;
        for (referral, windows) in &silent {
            let events = world.events(*referral).await;
            for (kind, window) in [
                (OverdueKind::Acknowledgement, windows.acknowledge),
                (OverdueKind::Decision, windows.decide),
            ] {
                let expected = usize::from(window <= moment);
                assert_eq!(count(&events, "overdue", kind), expected, "{kind:?} at {moment:?}");
                if expected == 1 {
                    let due = events.iter().find_map(|e| match e {
                        ReferralEvent::ResponseOverdue { kind: k, due_at } if *k == kind => Some(*due_at),
                        _ => None,
                    });
                    assert_eq!(
                        due,
                        Some(T0.plus_millis(window.as_millis() as i64)),
                        "due at its moment"
                    );
                    // The default policy escalates at the first missed deadline.
                    assert_eq!(count(&events, "escalated", kind), 1, "{kind:?} escalated once");
                }
            }
        }
    }

    // Long after: still once each, and nothing for the referrals answered in time.
    world.clock.advance(Duration::from_secs(90 * 24 * 3_600));
    running.quiet(&world).await;
    for (referral, _) in &silent {
        let events = world.events(*referral).await;
        for kind in [OverdueKind::Acknowledgement, OverdueKind::Decision] {
            assert_eq!(count(&events, "overdue", kind), 1);
            assert_eq!(count(&events, "escalated", kind), 1);
        }
    }
    for referral in &answered {
        let events = world.events(*referral).await;
        assert!(
            !events.iter().any(|e| matches!(
                e,
                ReferralEvent::ResponseOverdue { .. } | ReferralEvent::Escalated { .. }
            )),
            "answered in time: {events:?}"
        );
    }
    running.stop().await;
}

on_both!(
    every_deadline,
    every_deadline_fires_once_at_its_moment_and_never_when_met
);

async fn follow_up_is_due_after_completion_and_dropped_when_recorded(db: wasl_testkit::db::TestDb) {
    let world = World::start(db).await;
    let net = world.network().await;
    let running = world.followup(config()).await;
    let window = DeadlinePolicy::default()
        .windows(ServiceCategory::Psychosocial, Priority::Urgent)
        .follow_up;
    let mut referrals = Vec::new();
    for _ in 0..2 {
        let referral = net
            .refer_to(&world.store, 0, ServiceCategory::Psychosocial, Priority::Urgent)
            .await;
        for step in [
            ReferralCommand::Receive,
            ReferralCommand::Accept,
            ReferralCommand::Start,
            ReferralCommand::Complete,
        ] {
            net.act_by(&world.store, referral, 0, step).await;
        }
        referrals.push(referral);
    }
    let completed_at = world.clock_now();
    // The caseworker records follow-up for the second in time.
    world.clock.advance(HOUR);
    let follow_up = FollowUp {
        client_reached: true,
        service_received: ServiceReceived::Yes,
        satisfaction: None,
        note: None,
    };
    world
        .store
        .execute::<wasl_domain::referral::Referral>(
            referrals[1],
            &ReferralCommand::RecordFollowUp(follow_up),
            &meta(net.caseworker()),
        )
        .await
        .expect("follow-up recorded");
    running.quiet(&world).await;
    world.clock.set(completed_at.plus_millis(window.as_millis() as i64 - 1));
    running.quiet(&world).await;
    assert_eq!(
        count(&world.events(referrals[0]).await, "overdue", OverdueKind::FollowUp),
        0
    );
    world.clock.set(completed_at.plus_millis(window.as_millis() as i64));
    running.quiet(&world).await;
    let events = world.events(referrals[0]).await;
    assert_eq!(count(&events, "overdue", OverdueKind::FollowUp), 1);
    assert!(events.contains(&ReferralEvent::FollowUpOverdue {
        due_at: Timestamp::from_unix_millis(completed_at.unix_millis() + window.as_millis() as i64)
    }));
    assert_eq!(
        count(&world.events(referrals[1]).await, "overdue", OverdueKind::FollowUp),
        0
    );
    running.stop().await;
}

on_both!(
    follow_up_due,
    follow_up_is_due_after_completion_and_dropped_when_recorded
);

async fn a_crash_and_a_second_instance_change_nothing(db: wasl_testkit::db::TestDb) {
    let world = World::start(db).await;
    let net = world.network().await;
    let first = world.followup(config()).await;
    let second = world.followup(config()).await;
    let mut referrals = Vec::new();
    for n in 0..40 {
        let priority = Priority::ALL[n % Priority::ALL.len()];
        referrals.push(
            net.refer_to(&world.store, n % 2, ServiceCategory::Health, priority)
                .await,
        );
    }
    first.quiet(&world).await;
    // Every deadline passes at once; one instance dies while it works through them.
    world.clock.advance(Duration::from_secs(30 * 24 * 3_600));
    tokio::time::sleep(Duration::from_millis(30)).await;
    first.crash().await;
    second.quiet(&world).await;
    let third = world.followup(config()).await;
    third.quiet(&world).await;
    for referral in &referrals {
        let events = world.events(*referral).await;
        for kind in [OverdueKind::Acknowledgement, OverdueKind::Decision] {
            assert_eq!(count(&events, "overdue", kind), 1, "{events:?}");
            assert_eq!(count(&events, "escalated", kind), 1, "{events:?}");
        }
    }
    second.stop().await;
    third.stop().await;

    // A reset (the repair after the log went backwards) derives everything again from the
    // start: every command comes again under its id, and nothing is doubled.
    let reset = world.followup(config()).await;
    reset.stop().await;
    let service = wasl_followup::Followup::open(
        &world.db.url,
        world.store.clone(),
        std::sync::Arc::new(world.clock.clone()),
        config(),
    )
    .await
    .expect("open");
    service.reset().await.expect("reset");
    assert_eq!(service.checkpoint().await.expect("checkpoint").0, 0);
    let again = world.followup(config()).await;
    again.quiet(&world).await;
    for referral in &referrals {
        let events = world.events(*referral).await;
        for kind in [OverdueKind::Acknowledgement, OverdueKind::Decision] {
            assert_eq!(count(&events, "overdue", kind), 1, "after a reset: {events:?}");
            assert_eq!(count(&events, "escalated", kind), 1, "after a reset: {events:?}");
        }
    }
    again.stop().await;
}

on_both!(crash_and_two_instances, a_crash_and_a_second_instance_change_nothing);

async fn escalation_and_expiry_follow_the_policy_counts(db: wasl_testkit::db::TestDb) {
    let world = World::start(db).await;
    let net = world.network().await;
    // Escalated at the second missed deadline, cancelled as expired at the first escalation.
    let policy =
        DeadlinePolicy::from_json(r#"{"escalate_after_overdues": 2, "expire_after_escalations": 1}"#).expect("policy");
    let running = world
        .followup(FollowupConfig {
            policy: policy.clone(),
            ..config()
        })
        .await;
    let referral = net
        .refer_to(&world.store, 0, ServiceCategory::Cash, Priority::Urgent)
        .await;
    let windows = policy.windows(ServiceCategory::Cash, Priority::Urgent);
    running.quiet(&world).await;
    world.clock.set(T0.plus_millis(windows.acknowledge.as_millis() as i64));
    running.quiet(&world).await;
    let events = world.events(referral).await;
    assert_eq!(count(&events, "overdue", OverdueKind::Acknowledgement), 1);
    assert_eq!(
        count(&events, "escalated", OverdueKind::Acknowledgement),
        0,
        "one missed deadline of two"
    );
    world.clock.set(T0.plus_millis(windows.decide.as_millis() as i64));
    running.quiet(&world).await;
    let events = world.events(referral).await;
    let tail: Vec<&ReferralEvent> = events.iter().skip(1).collect();
    assert!(
        matches!(
            tail.as_slice(),
            [
                ReferralEvent::ResponseOverdue { kind: OverdueKind::Acknowledgement, .. },
                ReferralEvent::ResponseOverdue { kind: OverdueKind::Decision, .. },
                ReferralEvent::Escalated { kind: OverdueKind::Decision },
                ReferralEvent::Cancelled(reason),
            ] if reason.code == wasl_domain::catalogue::CancelCode::Expired
        ),
        "{events:?}"
    );
    running.stop().await;
}

on_both!(escalation_and_expiry, escalation_and_expiry_follow_the_policy_counts);

async fn an_accepted_or_held_referral_that_does_not_move_on_is_stalled(db: wasl_testkit::db::TestDb) {
    let world = World::start(db).await;
    let net = world.network().await;
    let running = world.followup(config()).await;
    let (category, priority) = (ServiceCategory::Psychosocial, Priority::Urgent);
    let window = DeadlinePolicy::default().windows(category, priority).progress;
    let window_ms = window.as_millis() as i64;
    let refer_accepted = async || {
        let referral = net.refer_to(&world.store, 0, category, priority).await;
        net.act_by(&world.store, referral, 0, ReferralCommand::Receive).await;
        net.act_by(&world.store, referral, 0, ReferralCommand::Accept).await;
        referral
    };
    // Accepted and left; accepted and started in time; started, then held and left.
    let left = refer_accepted().await;
    let started = refer_accepted().await;
    let held = refer_accepted().await;
    let accepted_at = world.clock_now();
    world.clock.advance(HOUR);
    for referral in [started, held] {
        net.act_by(&world.store, referral, 0, ReferralCommand::Start).await;
    }
    world.clock.advance(HOUR);
    let hold = ReferralCommand::Hold(wasl_domain::catalogue::Reason::coded(
        wasl_domain::catalogue::HoldCode::AwaitingDocuments,
    ));
    net.act_by(&world.store, held, 0, hold).await;
    let held_at = world.clock_now();
    running.quiet(&world).await;

    let stalled = |events: &[ReferralEvent]| {
        events
            .iter()
            .filter_map(|e| match e {
                ReferralEvent::ResponseOverdue {
                    kind: OverdueKind::Stalled,
                    due_at,
                } => Some(*due_at),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    world.clock.set(accepted_at.plus_millis(window_ms - 1));
    running.quiet(&world).await;
    assert!(stalled(&world.events(left).await).is_empty(), "not before its moment");
    world.clock.set(accepted_at.plus_millis(window_ms));
    running.quiet(&world).await;
    let events = world.events(left).await;
    assert_eq!(stalled(&events), vec![accepted_at.plus_millis(window_ms)]);
    assert_eq!(count(&events, "escalated", OverdueKind::Stalled), 1, "escalated");
    assert!(
        stalled(&world.events(held).await).is_empty(),
        "a hold starts its own window"
    );

    world.clock.set(held_at.plus_millis(window_ms));
    running.quiet(&world).await;
    assert_eq!(stalled(&world.events(held).await), vec![held_at.plus_millis(window_ms)]);
    world.clock.advance(Duration::from_secs(90 * 24 * 3_600));
    running.quiet(&world).await;
    assert!(
        stalled(&world.events(started).await).is_empty(),
        "started in time: never stalled"
    );
    assert_eq!(stalled(&world.events(left).await).len(), 1, "once");
    running.stop().await;
}

on_both!(stalled, an_accepted_or_held_referral_that_does_not_move_on_is_stalled);
