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
    let net = Network::set_up(&world).await;
    let running = world.followup(FollowupConfig::default()).await;
    // Three open referrals to two organisations under the consent, one already completed.
    let requested = net.refer(&world, 0, ServiceCategory::Health, Priority::Urgent).await;
    let received = net.refer(&world, 1, ServiceCategory::Legal, Priority::Routine).await;
    net.act(&world, received, 1, ReferralCommand::Receive).await;
    let accepted = net
        .refer(&world, 1, ServiceCategory::Shelter, Priority::Emergency)
        .await;
    net.act(&world, accepted, 1, ReferralCommand::Receive).await;
    net.act(&world, accepted, 1, ReferralCommand::Accept).await;
    let done = net.refer(&world, 0, ServiceCategory::Cash, Priority::Routine).await;
    for step in [
        ReferralCommand::Receive,
        ReferralCommand::Accept,
        ReferralCommand::Start,
        ReferralCommand::Complete,
    ] {
        net.act(&world, done, 0, step).await;
    }
    // Another case, its own consent, its own referral.
    let (other_case, other_consent): (CaseId, ConsentId) = (fresh(), fresh());
    net.open_case(&world, other_case, other_consent).await;
    let other = net
        .refer_case(&world, other_case, 0, ServiceCategory::Health, Priority::Urgent)
        .await;
    running.quiet(&world).await;

    net.withdraw(&world, net.case, net.consent).await;
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
    let net = Network::set_up(&world).await;
    let running = world.followup(FollowupConfig::default()).await;
    let open: Vec<ReferralId> = vec![
        net.refer(&world, 0, ServiceCategory::Education, Priority::Routine)
            .await,
        net.refer(&world, 1, ServiceCategory::Livelihoods, Priority::Routine)
            .await,
    ];
    net.close(&world, net.case, open.clone()).await;
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
