//! A nats-server killed mid-load and restarted on the same store loses no acknowledged event
//! and stores none twice (with `sync_interval: always`).

use crate::support::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use wasl_domain::ids::ReferralId;
use wasl_domain::referral::Referral;
use wasl_events::DomainEvent;
use wasl_store::StoreConfig;
use wasl_testkit::NatsServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_appends_loses_no_acknowledged_event_and_doubles_none() {
    let mut server = NatsServer::builder().sync_always(true).start().expect("nats-server");
    let config = StoreConfig {
        request_timeout: Duration::from_secs(1),
        max_unsettled_retries: 2,
        ..StoreConfig::default()
    };
    let store = Arc::new(open_store(&server.url(), config.clone()).await);
    let net = Arc::new(Network::set_up(&store).await);
    // The case and the provider do not change: build every request from one load.
    let template = net.request(&store, fresh(), &net.ask()).await;
    let acked: Arc<Mutex<HashMap<ReferralId, u64>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (store, net, acked, done, template) = (
            store.clone(),
            net.clone(),
            acked.clone(),
            done.clone(),
            template.clone(),
        );
        workers.push(tokio::spawn(async move {
            for _ in 0..60 {
                let referral: ReferralId = fresh();
                let mut command = template.clone();
                if let wasl_domain::referral::ReferralCommand::Request(request) = &mut command {
                    request.referral_id = referral;
                }
                if let Ok(outcome) = store
                    .execute::<Referral>(referral, &command, &meta(net.caseworker()))
                    .await
                {
                    acked.lock().await.insert(referral, outcome.position);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    while done.load(Ordering::Relaxed) < 120 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::task::block_in_place(|| server.restart()).expect("killed and restarted on the same store");
    for worker in workers {
        worker.await.expect("worker");
    }
    let acked = acked.lock().await.clone();
    assert!(
        acked.len() >= 100,
        "too few appends were acknowledged ({}) for the test to mean much",
        acked.len()
    );

    let reader = open_store(&server.url(), config).await;
    let mut stored: HashMap<ReferralId, Vec<u64>> = HashMap::new();
    for recorded in all_events(&reader).await {
        if let DomainEvent::Referral(id, _) = recorded.event.event {
            stored.entry(id).or_default().push(recorded.sequence);
        }
    }
    for (referral, position) in &acked {
        assert_eq!(
            stored.get(referral),
            Some(&vec![*position]),
            "an acknowledged referral is missing or moved"
        );
    }
    assert!(
        stored.values().all(|sequences| sequences.len() == 1),
        "a referral was stored twice"
    );
}
