//! Deterministic ids: every id follows from the seed and a label, so a second run asks for the
//! same commands under the same ids, and the store recognises them. (The randomness of the plan
//! comes from `wasl_synth::Rng`, seeded with the same seed.)

use sha2::{Digest, Sha256};
use uuid::Uuid;
use wasl_domain::ids::uuid_v7_from_parts;

/// 2025-01-01T00:00:00Z: the "time" part of every demo id. Demo ids must not depend on when
/// the data is loaded, or a second run would make new ones.
const ID_EPOCH_MILLIS: u64 = 1_735_689_600_000;

/// A UUIDv7 derived from the seed and a label such as `case/42` or `cmd/ref/7/accept`.
pub(crate) fn derive(seed: u64, label: &str) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(b"wasl demo v1\0");
    hash.update(seed.to_be_bytes());
    hash.update(label.as_bytes());
    let digest = hash.finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    // Up to 2^20 ms (17 minutes) after the epoch from the hash, so ids do not all share one prefix.
    let offset = u64::from(u32::from_be_bytes([0, digest[10] & 0x0f, digest[11], digest[12]]));
    uuid_v7_from_parts(ID_EPOCH_MILLIS + offset, random)
}

/// A typed id from [`derive`].
pub(crate) fn id<T: TryFrom<Uuid>>(seed: u64, label: &str) -> T {
    match T::try_from(derive(seed, label)) {
        Ok(id) => id,
        Err(_) => unreachable!("uuid_v7_from_parts builds version 7 UUIDs"),
    }
}

/// The demo password for a seed: `demo-` and 12 hex digits, 17 characters.
pub(crate) fn password(seed: u64) -> String {
    let mut hash = Sha256::new();
    hash.update(b"wasl demo password v1\0");
    hash.update(seed.to_be_bytes());
    let digest = hash.finalize();
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("demo-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasl_domain::ids::CaseId;

    #[test]
    fn the_same_seed_and_label_give_the_same_v7_id() {
        let a: CaseId = id(7, "case/1");
        assert_eq!(a, id(7, "case/1"));
        assert_ne!(a, id(7, "case/2"));
        assert_ne!(a, id(8, "case/1"));
        assert_eq!(a.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn the_password_follows_from_the_seed() {
        assert_eq!(password(1), password(1));
        assert_ne!(password(1), password(2));
        assert!(password(1).len() >= 12);
    }
}
