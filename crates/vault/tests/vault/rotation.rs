//! Rotating the master key rewraps every data key and touches no event.

use crate::support::*;
use wasl_vault::{PiiField, Revealed, Vault, VaultConfig, VaultError};

#[tokio::test]
async fn after_rotation_every_case_opens_with_the_new_master_key_and_none_with_the_old() {
    let w = World::start().await;
    let mut cases = Vec::new();
    for n in 0..12 {
        cases.push((w.open_case(&format!("MARKER-ROT-{n}"), "MARKER-P", "MARKER-N").await, n));
    }
    let events_before = w.store.stream().get_info().await.expect("info").state.messages;
    let new_master = master("test-master-2");
    let report = w.vault.rotate(&new_master).await.expect("rotated");
    assert_eq!(report.rewrapped, 12);
    assert_eq!(
        w.store.stream().get_info().await.expect("info").state.messages,
        events_before,
        "no event touched"
    );

    let rotated = Vault::connect(&w.js, new_master, &VaultConfig::default())
        .await
        .expect("vault");
    for (case, n) in &cases {
        let (event, field, value) = w.sealed_values(*case).await.remove(0);
        assert_eq!(field, PiiField::NAME);
        let read = rotated
            .open(*case, event, field, &value)
            .await
            .expect("opens with the new key");
        assert_eq!(read, Revealed::Plain(format!("MARKER-ROT-{n}").into()));
        // The old master key (a fresh vault, nothing cached) opens nothing any more.
        w.vault.forget_all();
        assert!(matches!(
            w.vault.open(*case, event, field, &value).await,
            Err(VaultError::WrongMasterKey { .. })
        ));
    }
    let again = rotated.rotate(&master("test-master-2-copy")).await;
    assert!(again.is_ok());
}

#[tokio::test]
async fn the_survivor_code_lookup_key_is_rewrapped_so_lookups_find_the_same_cases_after_rotation() {
    let w = World::start().await;
    let code = wasl_domain::client::SurvivorCode::parse("TEST-ROT-0001").expect("code");
    let before = w.vault.survivor_code_lookup(&code).await.expect("lookup");
    let new_master = master("test-master-3");
    let report = w.vault.rotate(&new_master).await.expect("rotated");
    assert_eq!(report.rewrapped, 1, "the lookup key, the bucket's only key");
    let rotated = Vault::connect(&w.js, new_master, &VaultConfig::default())
        .await
        .expect("vault");
    assert_eq!(rotated.survivor_code_lookup(&code).await.expect("lookup"), before);
    // A master key that did not wrap it opens nothing: no lookup rather than a wrong one.
    let stale = Vault::connect(&w.js, master("test-master-4"), &VaultConfig::default())
        .await
        .expect("vault");
    assert!(matches!(
        stale.survivor_code_lookup(&code).await,
        Err(VaultError::WrongMasterKey { .. })
    ));
}
