//! A backup of a single server restored into a three-node cluster with three replicas, as a
//! pilot moves to production.

use crate::support::*;
use async_nats::jetstream;
use std::time::Duration;
use wasl_backup::format::{self, is_wasl_stream};
use wasl_backup::{BackupOptions, ErasureReport, RestoreOptions};
use wasl_testkit::NatsCluster;
use wasl_vault::{LocalMasterKey, PiiField, Revealed, Vault, VaultConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_server_backup_restores_into_a_cluster_with_three_replicas() {
    let a = server();
    let filled = fill(&a).await;
    let parts = Parts::open(&a).await;
    let (erased, erased_event, erased_personal) = filled.opened[0].clone();
    parts.erase(erased, 1).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("backup");
    wasl_backup::backup(&parts.js, &out, &BackupOptions { with_keys: true })
        .await
        .expect("the backup");

    let mut cluster = NatsCluster::start(3).expect("a 3-node cluster");
    tokio::task::block_in_place(|| cluster.wait_until_healthy()).expect("a healthy cluster");
    let addrs: Vec<async_nats::ServerAddr> = cluster.urls().iter().map(|u| u.parse().expect("url")).collect();
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(addrs)
        .await
        .expect("connect to the cluster");
    let mut js_b = jetstream::new(client);
    js_b.set_timeout(Duration::from_secs(10));
    let restored = wasl_backup::restore(&js_b, &out, &RestoreOptions { replicas: Some(3) })
        .await
        .expect("the restore");
    assert_eq!(
        restored.erasures,
        Some(ErasureReport {
            reapplied: 1,
            keys_withheld: 0,
            unreadable: vec![]
        })
    );

    let a_streams = contents(&parts.js, is_wasl_stream).await;
    let b_streams = contents(&js_b, is_wasl_stream).await;
    assert_eq!(
        a_streams.keys().collect::<Vec<_>>(),
        b_streams.keys().collect::<Vec<_>>()
    );
    for name in a_streams.keys() {
        let info = js_b
            .get_stream(name)
            .await
            .expect("the stream")
            .get_info()
            .await
            .expect("info");
        assert_eq!(info.config.num_replicas, 3, "{name}");
    }
    for name in ["WASL_EVENTS", "WASL_AUDIT"] {
        let meaning = |m: &Stored| (m.seq, m.subject.clone(), m.headers.clone(), m.payload.clone());
        let a_messages: Vec<_> = a_streams[name].iter().map(meaning).collect();
        let b_messages: Vec<_> = b_streams[name].iter().map(meaning).collect();
        let differs = a_messages.iter().zip(&b_messages).position(|(x, y)| x != y).map(|i| {
            (
                a_messages[i].0,
                b_messages[i].0,
                a_messages[i].1 == b_messages[i].1,
                a_messages[i].2 == b_messages[i].2,
            )
        });
        assert!(
            a_messages == b_messages,
            "{name}: the same messages at the same sequences ({} and {}; first difference (seq A, seq B, same subject, same headers): {differs:?})",
            a_messages.len(),
            b_messages.len()
        );
        assert!(format::keeps_sequences(name));
    }

    // The erased case reads erased through the cluster's key bucket.
    let vault = Vault::connect(
        &js_b,
        LocalMasterKey::from_hex("test-master", MASTER_KEY).expect("key"),
        &VaultConfig {
            replicas: 3,
            ..VaultConfig::default()
        },
    )
    .await
    .expect("the vault");
    let sealed = erased_personal.name.expect("a sealed name");
    assert_eq!(
        vault
            .open(erased, erased_event, PiiField::NAME, &sealed)
            .await
            .expect("reads"),
        Revealed::Erased
    );
    let (kept, kept_event, kept_personal) = filled.opened[1].clone();
    let read = vault
        .open(
            kept,
            kept_event,
            PiiField::NAME,
            kept_personal.name.as_ref().expect("sealed"),
        )
        .await
        .expect("opens");
    assert!(matches!(read, Revealed::Plain(_)));
}
