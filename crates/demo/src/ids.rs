//! Deterministic ids and randomness: everything follows from the seed, so a second run asks for
//! the same commands under the same ids, and the store recognises them.

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

/// A small deterministic generator (splitmix64). Not for secrets: it only has to make the same
/// network from the same seed on every machine.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed ^ 0x5741_534c_4445_4d4f)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo + 1).unwrap_or(1);
        lo + i64::try_from(self.below(span)).unwrap_or(0)
    }

    /// True with probability `percent` / 100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// An index into `len` items.
    pub(crate) fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(len as u64)).unwrap_or(0)
    }

    /// One of `items`, with probability proportional to its weight.
    pub(crate) fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut r = self.below(total);
        for (item, w) in items {
            let w = u64::from(*w);
            if r < w {
                return *item;
            }
            r -= w;
        }
        items[items.len() - 1].0
    }
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
