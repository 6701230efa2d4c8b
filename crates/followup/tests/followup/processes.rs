//! The process managers: consent withdrawn and a case closed with its referrals reach the
//! referrals, once, and nothing else.

use crate::support::*;
use std::time::Duration;
use wasl_domain::catalogue::{CancelCode, Priority, ServiceCategory};
use wasl_domain::ids::{CaseId, ConsentId, ReferralId};
use wasl_domain::referral::{ReferralCommand, ReferralEvent};
use wasl_followup::FollowupConfig;
use wasl_testkit::on_both;

fn cancellations(events: &[ReferralEvent]) -> Vec<CancelCode> {
    events
        .iter()
        .filter_map(|e| match e {
            ReferralEvent::Cancelled(reason) => Some(reason.code),
            _ => None,
        })
        .collect()
}

async fn withdrawing_consent_cancels_what_it_covered_and_nothing_else(db: wasl_testkit::db::TestDb) {
    let world = World::start(db).await;
    let net = world.network().await;
    let running = world.followup(FollowupConfig::default()).await;
    // Three open referrals to two organisations under the consent, one already completed.
    let requested = net
        .refer_to(&world.store, 0, ServiceCategory::Health, Priority::Urgent)
        .await;
    let received = net
        .refer_to(&world.store, 1, ServiceCategory::Legal, Priority::Routine)
        .await;
    net.act_by(&world.store, received, 1, ReferralCommand::Receive).await;
    let accepted = net
        .refer_to(&world.store, 1, ServiceCategory::Shelter, Priority::Emergency)
        .await;
    net.act_by(&world.store, accepted, 1, ReferralCommand::Receive).await;
    net.act_by(&world.store, accepted, 1, ReferralCommand::Accept).await;
    let done = net
        .refer_to(&world.store, 0, ServiceCategory::Cash, Priority::Routine)
        .await;
    for step in [
        ReferralCommand::Receive,
        ReferralCommand::Accept,
        ReferralCommand::Start,
        ReferralCommand::Complete,
    ] {
        net.act_by(&world.store, done, 0, step).await;
    }
    // Another case, its own consent, its own referral.
    let (other_case, other_consent): (CaseId, ConsentId) = (fresh(), fresh());
    net.open_case_with_ids(&world.store, other_case, other_consent).await;
    let other = net
        .refer_case(
            &world.store,
            other_case,
            net.provider(),
            net.service_of(net.provider(), ServiceCategory::Health),
        )
        .await;
    running.quiet(&world).await;

    net.withdraw_consent(&world.store, net.case, net.consent).await;
    running.quiet(&world).await;
    for referral in [requested, received, accepted] {
        assert_eq!(
            cancellations(&world.events(referral).await),
            [CancelCode::ConsentWithdrawn],
            "cancelled once"
        );
    }
    assert!(
        cancellations(&world.events(done).await).is_empty(),
        "a completed referral stays completed"
    );
    assert!(
        cancellations(&world.events(other).await).is_empty(),
        "another case is not touched"
    );

    // A restart reads the log again from its checkpoint: nothing doubles.
    running.stop().await;
    let again = world.followup(FollowupConfig::default()).await;
    again.quiet(&world).await;
    for referral in [requested, received, accepted] {
        assert_eq!(cancellations(&world.events(referral).await).len(), 1);
    }
    again.stop().await;
}

on_both!(
    consent_withdrawn,
    withdrawing_consent_cancels_what_it_covered_and_nothing_else
);

async fn closing_a_case_with_its_referrals_cancels_them(db: wasl_testkit::db::TestDb) {
    let world = World::start(db).await;
    let net = world.network().await;
    let running = world.followup(FollowupConfig::default()).await;
    let open: Vec<ReferralId> = vec![
        net.refer_to(&world.store, 0, ServiceCategory::Education, Priority::Routine)
            .await,
        net.refer_to(&world.store, 1, ServiceCategory::Livelihoods, Priority::Routine)
            .await,
    ];
    net.close_case(&world.store, net.case, open.clone()).await;
    running.quiet(&world).await;
    for referral in &open {
        assert_eq!(cancellations(&world.events(*referral).await), [CancelCode::CaseClosed]);
    }
    // The deadlines of cancelled referrals never fire.
    world.clock.advance(Duration::from_secs(60 * 24 * 3_600));
    running.quiet(&world).await;
    for referral in &open {
        assert!(
            !world
                .events(*referral)
                .await
                .iter()
                .any(|e| matches!(e, ReferralEvent::ResponseOverdue { .. })),
            "no deadline of a cancelled referral"
        );
    }
    running.stop().await;
}

on_both!(case_closed, closing_a_case_with_its_referrals_cancels_them);

async fn unreadable_messages_are_parked_and_the_withdrawal_behind_them_still_cancels(db: wasl_testkit::db::TestDb) {
    use wasl_store::testing::Poison;
    let world = World::start(db).await;
    let net = world.network().await;
    let running = world.followup(FollowupConfig::default()).await;
    let referral = net
        .refer_to(&world.store, 0, ServiceCategory::Health, Priority::Urgent)
        .await;
    // Every kind of poison, on case and referral subjects (of other aggregates: the store
    // refuses commands on an aggregate whose history it cannot read), before the withdrawal.
    let client = async_nats::connect(world.server.url()).await.expect("connect");
    let mut poisoned = Vec::new();
    for (n, poison) in Poison::ALL.into_iter().enumerate() {
        let subject = if n % 2 == 0 {
            format!("wasl.evt.case.{}", fresh::<CaseId>())
        } else {
            format!("wasl.evt.referral.{}", fresh::<ReferralId>())
        };
        poisoned.push(poison.publish(&client, &subject).await);
    }
    net.withdraw_consent(&world.store, net.case, net.consent).await;
    running.quiet(&world).await;
    assert_eq!(
        cancellations(&world.events(referral).await),
        [CancelCode::ConsentWithdrawn]
    );
    let parked = |pool: sqlx::AnyPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT seq FROM followup_parked ORDER BY seq")
            .fetch_all(&pool)
            .await
            .expect("parked rows")
            .into_iter()
            .map(|s| s as u64)
            .collect::<Vec<_>>()
    };
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&world.db.url)
        .await
        .expect("the service's database");
    assert_eq!(parked(pool.clone()).await, poisoned, "each one parked, by its sequence");
    assert_eq!(
        running
            .service
            .metrics()
            .parked
            .load(std::sync::atomic::Ordering::Relaxed),
        4
    );
    // A restart from the checkpoint parks nothing twice.
    running.stop().await;
    let again = world.followup(FollowupConfig::default()).await;
    again.quiet(&world).await;
    assert_eq!(parked(pool).await, poisoned);
    again.stop().await;
}

on_both!(
    poison,
    unreadable_messages_are_parked_and_the_withdrawal_behind_them_still_cancels
);
