//! Authorised reads, erasure, tampering.

use crate::support::*;
use wasl_domain::catalogue::{EraseCode, Reason};
use wasl_domain::{DomainError, Forbidden, Role};
use wasl_store::CommandError;
use wasl_testkit::files::{contains, files_below};
use wasl_vault::erase::{EraseError, erase_case};
use wasl_vault::{KeyState, PiiField, Revealed, Vault, VaultConfig, VaultError};

const NAME: &str = "MARKER-NAME-Q7X2";
const PHONE: &str = "MARKER-PHONE-0770";
const NOTES: &str = "MARKER-NOTES-ZK41";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_reads_back_until_erased_then_reads_erased_everywhere_down_to_the_disk() {
    let w = World::start().await;
    let case = w.open_case(NAME, PHONE, NOTES).await;
    let other = w
        .open_case("MARKER-OTHER-CASE", "MARKER-OTHER-PHONE", "MARKER-OTHER-NOTES")
        .await;

    let sealed = w.sealed_values(case).await;
    assert_eq!(sealed.len(), 3);
    let mut read = Vec::new();
    for (event, field, value) in &sealed {
        read.push(
            w.vault
                .open(case, *event, *field, value)
                .await
                .expect("authorised read")
                .as_str()
                .to_owned(),
        );
    }
    assert_eq!(read, vec![NAME, PHONE, NOTES]);

    // The key as stored, to look for it on disk after the erasure. Before, it is there (and so is
    // the sealed name): the search below can find what it looks for.
    let wrapped = w.vault_key_bytes(case).await;
    let sealed_name = sealed[0].2.ciphertext().to_vec();
    let on_disk = |needle: &[u8]| {
        files_below(w.server.store_dir())
            .iter()
            .any(|(_, bytes)| contains(bytes, needle))
    };
    assert!(
        wait_until(|| on_disk(wrapped.as_bytes())).await,
        "the wrapped key is not found on disk before erasure"
    );
    assert!(on_disk(&sealed_name), "the sealed name is not found on disk");

    let outcome = erase_case(
        &w.store,
        &w.vault,
        case,
        Reason::coded(EraseCode::ClientRequest),
        &w.meta(Role::Supervisor, 2),
    )
    .await
    .expect("erased");
    assert!(!outcome.replayed);

    // Every read of the case, through a fresh vault as a rebuild would use, says "erased".
    w.vault.forget_all();
    for (event, field, value) in w.sealed_values(case).await {
        assert_eq!(
            w.vault.open(case, event, field, &value).await.expect("read"),
            Revealed::Erased
        );
    }
    assert!(matches!(w.vault.key(case).await.expect("state"), KeyState::Erased));
    assert!(matches!(
        w.vault
            .seal(case, wasl_store::event_id(fresh(), T0, 0), PiiField::NAME, "x")
            .await,
        Err(VaultError::Erased(_))
    ));
    // The other case is untouched.
    let (event, field, value) = w.sealed_values(other).await.remove(0);
    assert_eq!(
        w.vault.open(other, event, field, &value).await.expect("read").as_str(),
        "MARKER-OTHER-CASE"
    );

    // No marker was ever written anywhere in plain text, and the erased key's bytes are gone
    // from the files of the store.
    let files = files_below(w.server.store_dir());
    assert!(!files.is_empty());
    for (path, bytes) in &files {
        for marker in [NAME, PHONE, NOTES, "MARKER-OTHER"] {
            assert!(
                !contains(bytes, marker.as_bytes()),
                "{marker} found in {}",
                path.display()
            );
        }
        assert!(
            !contains(bytes, wrapped.as_bytes()),
            "the erased case's wrapped key is still in {}",
            path.display()
        );
    }

    // Erasing again is harmless and answers with the recorded erasure.
    let again = erase_case(
        &w.store,
        &w.vault,
        case,
        Reason::coded(EraseCode::ClientRequest),
        &w.meta(Role::Admin, 3),
    )
    .await
    .expect("idempotent");
    assert!(again.replayed);
}

#[tokio::test]
async fn a_caseworker_cannot_erase_and_the_key_stays() {
    let w = World::start().await;
    let case = w.open_case(NAME, PHONE, NOTES).await;
    let refused = erase_case(
        &w.store,
        &w.vault,
        case,
        Reason::coded(EraseCode::ClientRequest),
        &w.meta(Role::Caseworker, 2),
    )
    .await;
    assert!(matches!(
        refused,
        Err(EraseError::Command(CommandError::Rejected(DomainError::Forbidden(
            Forbidden::MissingRole
        ))))
    ));
    assert!(matches!(w.vault.key(case).await.expect("state"), KeyState::Active(_)));
}

#[tokio::test]
async fn a_ciphertext_copied_into_another_event_or_field_fails_with_a_typed_error() {
    let w = World::start().await;
    let case = w.open_case(NAME, PHONE, NOTES).await;
    let (event, _, name) = w.sealed_values(case).await.remove(0);
    let elsewhere = wasl_store::event_id(fresh(), T0, 0);
    assert!(matches!(
        w.vault.open(case, elsewhere, PiiField::NAME, &name).await,
        Err(VaultError::Tampered { .. })
    ));
    assert!(matches!(
        w.vault.open(case, event, PiiField::NOTES, &name).await,
        Err(VaultError::Tampered { .. })
    ));
    let other = w.open_case("MARKER-B", "MARKER-C", "MARKER-D").await;
    assert!(matches!(
        w.vault.open(other, event, PiiField::NAME, &name).await,
        Err(VaultError::Tampered { .. })
    ));
}

impl World {
    /// The wrapped key of a case as the bucket stores it (its hex ciphertext).
    pub async fn vault_key_bytes(&self, case: wasl_domain::ids::CaseId) -> String {
        let kv = self.js.get_key_value("WASL_KEYS").await.expect("bucket");
        let value = kv.get(format!("case.{case}")).await.expect("get").expect("a key");
        let wrapped: serde_json::Value = serde_json::from_slice(&value).expect("json");
        wrapped["ciphertext"].as_str().expect("ciphertext").to_owned()
    }
}

/// JetStream writes from a buffer; give it a moment to reach the file.
async fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if condition() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_sealed_value_whose_key_is_gone_without_an_erasure_is_an_error_not_erased() {
    let w = World::start().await;
    let case = w.open_case(NAME, PHONE, NOTES).await;
    let (event, field, value) = w.sealed_values(case).await.remove(0);
    // An operator restores the log into a server whose key bucket lacks this case.
    let other_bucket = Vault::connect(
        &w.js,
        master("test-master-1"),
        &VaultConfig {
            bucket: "WASL_KEYS_RESTORED".to_owned(),
            ..VaultConfig::default()
        },
    )
    .await
    .expect("vault");
    assert!(matches!(
        other_bucket.open(case, event, field, &value).await,
        Err(VaultError::KeyMissing(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_by_another_process_takes_effect_at_once_however_often_the_key_is_read() {
    const MASTER: &str = "0202020202020202020202020202020202020202020202020202020202020202";
    let w = World::start().await;
    let master = || wasl_vault::LocalMasterKey::from_hex("test-master-shared", MASTER).expect("a master key");
    // Two API instances on the same bucket; the reader keeps keys for an hour.
    let eraser = Vault::connect(&w.js, master(), &VaultConfig::default())
        .await
        .expect("vault");
    let reader = Vault::connect(
        &w.js,
        master(),
        &VaultConfig {
            cache_ttl: std::time::Duration::from_secs(3600),
            ..VaultConfig::default()
        },
    )
    .await
    .expect("vault");
    let case = fresh();
    let event = fresh();
    let sealed = eraser.seal(case, event, PiiField::NAME, NAME).await.expect("sealed");
    // Read once so the reader holds the key (its watch of the bucket may still be starting:
    // read until the key is cached, which is the case the erasure must reach).
    assert_eq!(
        reader
            .open(case, event, PiiField::NAME, &sealed)
            .await
            .expect("read")
            .as_str(),
        NAME
    );
    eraser.erase(case).await.expect("erased");
    // Read over and over, as a busy caseworker and partner would: the old cache kept the key
    // alive as long as reads came within its time-to-live of each other.
    let began = std::time::Instant::now();
    loop {
        match reader.open(case, event, PiiField::NAME, &sealed).await.expect("read") {
            Revealed::Erased => break,
            Revealed::Plain(_) => {
                assert!(
                    began.elapsed() < std::time::Duration::from_secs(30),
                    "another instance still reads the personal data of an erased case"
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    assert!(matches!(reader.key(case).await.expect("state"), KeyState::Erased));
}
