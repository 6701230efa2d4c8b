//! Following the log from a checkpoint, as projections will.

use crate::support::*;
use futures_util::StreamExt;
use std::time::Duration;
use wasl_domain::referral::ReferralCommand;
use wasl_store::StoreConfig;
use wasl_testkit::NatsServer;

#[tokio::test]
async fn a_subscription_resumes_after_a_checkpoint_in_stream_order_and_sees_new_events() {
    let server = NatsServer::start().expect("nats-server");
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = Network::set_up(&store).await;
    let referral = net.refer(&store).await;
    let checkpoint = net
        .try_act(&store, referral, ReferralCommand::Receive)
        .await
        .expect("received")
        .position;
    let accepted = net
        .try_act(&store, referral, ReferralCommand::Accept)
        .await
        .expect("accepted")
        .position;

    let mut feed = wasl_store::subscribe::subscribe(store.stream(), checkpoint + 1, Some("wasl.evt.referral.>"))
        .await
        .expect("subscribe");
    let first = next(&mut feed).await;
    assert_eq!(first.sequence, accepted, "the first event after the checkpoint");
    // Case and organisation events are filtered out; a new referral event arrives live.
    let started = net
        .try_act(&store, referral, ReferralCommand::Start)
        .await
        .expect("started")
        .position;
    let live = next(&mut feed).await;
    assert_eq!(live.sequence, started);
    assert!(live.event.event.subject().starts_with("wasl.evt.referral."));
}

async fn next(feed: &mut wasl_store::subscribe::EventFeed) -> wasl_store::load::Recorded {
    tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .expect("in time")
        .expect("the feed goes on")
        .expect("readable")
}
