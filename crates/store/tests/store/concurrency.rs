//! Many commands racing on one referral: the log stays a valid lifecycle.

use crate::support::*;
use std::sync::Arc;
use wasl_domain::catalogue::{CancelCode, Decline, DeclineCode, FailCode, HoldCode, Reason};
use wasl_domain::referral::{Referral, ReferralAction, ReferralCommand, ReferralEvent, transition};
use wasl_domain::{Aggregate, Context};
use wasl_store::{CommandError, StoreConfig};
use wasl_testkit::NatsServer;

fn action_of(event: &ReferralEvent) -> Option<ReferralAction> {
    use ReferralAction as A;
    Some(match event {
        ReferralEvent::Received => A::Receive,
        ReferralEvent::Accepted => A::Accept,
        ReferralEvent::Rejected(_) => A::Reject,
        ReferralEvent::Started => A::Start,
        ReferralEvent::PutOnHold(_) => A::Hold,
        ReferralEvent::Resumed => A::Resume,
        ReferralEvent::Completed => A::Complete,
        ReferralEvent::Failed(_) => A::Fail,
        ReferralEvent::Cancelled(_) => A::Cancel,
        ReferralEvent::EnteredInError(_) => A::MarkEnteredInError,
        _ => return None,
    })
}

fn command(i: usize, net: &Network) -> (ReferralCommand, Context) {
    match i % 9 {
        0 => (ReferralCommand::Receive, net.focal_point()),
        1 => (ReferralCommand::Accept, net.focal_point()),
        2 => (
            ReferralCommand::Reject(Decline {
                reason: Reason::coded(DeclineCode::NoCapacity),
                suggested_org: None,
            }),
            net.focal_point(),
        ),
        3 => (ReferralCommand::Start, net.focal_point()),
        4 => (
            ReferralCommand::Hold(Reason::coded(HoldCode::Security)),
            net.focal_point(),
        ),
        5 => (ReferralCommand::Resume, net.focal_point()),
        6 => (ReferralCommand::Complete, net.focal_point()),
        7 => (
            ReferralCommand::Fail(Reason::coded(FailCode::ClientUnreachable)),
            net.focal_point(),
        ),
        _ => (
            ReferralCommand::Cancel(Reason::coded(CancelCode::NoLongerNeeded)),
            net.caseworker(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_commands_on_one_referral_leave_a_valid_lifecycle() {
    let server = NatsServer::start().expect("nats-server");
    // Two handlers, as two API processes would be, sharing the referral.
    let a = Arc::new(open_store(&server.url(), StoreConfig::default()).await);
    let b = Arc::new(open_store(&server.url(), StoreConfig::default()).await);
    let net = Network::set_up(&a).await;
    let referral = net.refer(&a).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (cmd, ctx) = command(i * 7, &net);
        tasks.push(tokio::spawn(async move {
            store.execute::<Referral>(referral, &cmd, &meta(ctx)).await
        }));
    }
    let mut won = 0;
    let (mut conflicts, mut refused) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok(outcome) => {
                assert!(!outcome.replayed);
                won += 1;
            }
            Err(CommandError::Conflict { .. }) => conflicts += 1,
            Err(CommandError::Rejected(_)) => refused += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(won + conflicts + refused, 50);
    let history: Vec<ReferralEvent> = all_events(&a)
        .await
        .into_iter()
        .filter_map(|r| match r.event.event {
            wasl_events::DomainEvent::Referral(id, event) if id == referral => Some(event),
            _ => None,
        })
        .collect();
    assert_eq!(history.len(), 1 + won, "exactly the winning commands were stored");
    let mut state = Referral::replay(&history[..1]);
    for event in &history[1..] {
        let from = state.status().expect("exists");
        let action = action_of(event).expect("a lifecycle event");
        let to = transition(from, action);
        assert!(
            to.is_some(),
            "{from} --{action}--> is not a valid move, yet it was stored"
        );
        state = state.evolve(event);
        assert_eq!(state.status(), to);
    }
    assert!(won >= 1, "at least one command must win");
    eprintln!("50 racing commands: {won} won, {conflicts} conflicts, {refused} refused");
}
