//! A 3-node cluster with an R3 stream: one node down, appends go on; two down, they fail as
//! unavailable with a clear message; a node back, they resume.

use crate::support::*;
use std::time::{Duration, Instant};
use wasl_domain::referral::{Referral, ReferralCommand};
use wasl_store::{CommandError, CommandMeta, CommandOutcome, EventStore, StoreConfig};
use wasl_testkit::NatsCluster;

async fn until_ok(
    store: &EventStore,
    referral: wasl_domain::ids::ReferralId,
    command: &ReferralCommand,
    meta: &CommandMeta,
) -> CommandOutcome {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match store.execute::<Referral>(referral, command, meta).await {
            Ok(outcome) => return outcome,
            Err(CommandError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(err) => panic!("the command failed for good: {err:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_r3_stream_survives_one_node_and_refuses_clearly_without_quorum() {
    let mut cluster = NatsCluster::start(3).expect("3-node cluster");
    let addrs: Vec<async_nats::ServerAddr> = cluster.urls().iter().map(|u| u.parse().expect("url")).collect();
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(addrs)
        .await
        .expect("connect to the cluster");
    let config = StoreConfig {
        replicas: 3,
        request_timeout: Duration::from_secs(2),
        max_unsettled_retries: 1,
        ..StoreConfig::default()
    };
    let store = EventStore::open(client, config).await.expect("R3 stream");
    let net = Network::set_up(&store).await;
    let referral = net.refer(&store).await;

    tokio::task::block_in_place(|| cluster.stop_node(0)).expect("stop one node");
    // The client may have to move to another node and the stream elect a leader; a client
    // retries with the same command id, which makes that safe.
    let receive = meta(net.focal_point());
    let received = until_ok(&store, referral, &ReferralCommand::Receive, &receive).await;
    assert_eq!(received.version, 2);

    tokio::task::block_in_place(|| cluster.stop_node(1)).expect("stop a second node");
    let accept = meta(net.focal_point());
    match store
        .execute::<Referral>(referral, &ReferralCommand::Accept, &accept)
        .await
    {
        Err(CommandError::Unavailable(message)) => assert!(!message.is_empty()),
        other => panic!("without quorum the append must be unavailable, got {other:?}"),
    }

    tokio::task::block_in_place(|| cluster.start_node(1)).expect("a node comes back");
    let accepted = until_ok(&store, referral, &ReferralCommand::Accept, &accept).await;
    assert_eq!(
        accepted.version, 3,
        "the refused attempt stored nothing, the retry exactly once"
    );
}
