//! Fixtures for tests; never in production builds (feature `testing`, turned on only by
//! `[dev-dependencies]`).
//!
//! One obviously synthetic world for every crate's tests: ids, people, the time, a client
//! profile. A test that needs a variant says what differs, by a parameter or by struct update
//! (`ClientProfile { location: mosul(), ..profile("TEST-0001") }`), rather than copying the
//! fixture. Nothing here is personal data: survivor codes are `TEST-…`-like, people are ids.

use crate::case::{ConsentScope, Scope};
use crate::client::{
    AgeGroup, ClientProfile, Identifying, IdentifyingFacts, IdentifyingField, Language, Nationality, PopulationGroup,
    SealedFacts, Sex, SurvivorCode, SurvivorCodeLookup,
};
use crate::geo::{District, Governorate, Location};
use crate::ids::{OrgId, UserId, uuid_v7_from_parts};
use crate::pii::{Cipher, EncryptedPii, KeyId};
use crate::time::Timestamp;
use crate::{Actor, Context, Role};
use std::fmt::Debug;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// 2026-01-01T00:00:00Z, the start of every test's world.
pub const T0: Timestamp = Timestamp::from_unix_millis(1_767_225_600_000);

/// A new UUIDv7 id, unique in this test process and, almost surely, among processes.
///
/// Ids made in one process sort in the order they were made: the timestamp is [`T0`] plus a
/// counter, so they neither depend on the wall clock nor collide within a process. The random
/// part carries a per-process tag (tests run as separate processes under nextest).
pub fn fresh<T: TryFrom<uuid::Uuid>>() -> T
where
    T::Error: Debug,
{
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut random = [0u8; 10];
    random[..2].copy_from_slice(process_tag());
    random[2..].copy_from_slice(&n.to_be_bytes());
    T::try_from(uuid_v7_from_parts(T0.unix_millis() as u64 + n, random)).expect("a v7 uuid")
}

/// Two bytes that differ between processes: std seeds each process's hasher keys from the OS.
fn process_tag() -> &'static [u8; 2] {
    static TAG: OnceLock<[u8; 2]> = OnceLock::new();
    TAG.get_or_init(|| {
        use std::hash::BuildHasher;
        let seed = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        let bytes = seed.to_be_bytes();
        [bytes[0], bytes[1]]
    })
}

/// A fixed UUIDv7 id at [`T0`]; `n` keeps them apart, and the same `n` is always the same id.
pub fn id<T: TryFrom<uuid::Uuid>>(n: u8) -> T
where
    T::Error: Debug,
{
    T::try_from(uuid_v7_from_parts(T0.unix_millis() as u64, [n; 10])).expect("a v7 uuid")
}

/// `user` of `org`, acting as `role`. Several roles: `Actor { roles: vec![…], ..actor(…) }`.
pub fn actor(user: UserId, org: OrgId, role: Role) -> Actor {
    Actor {
        user,
        org,
        roles: vec![role],
    }
}

/// `user` of `org` acting as `role`, an hour after [`T0`].
pub fn ctx(user: UserId, org: OrgId, role: Role) -> Context {
    Context {
        now: T0.plus_hours(1),
        actor: actor(user, org, role),
    }
}

/// The same context, `hours` after [`T0`].
pub fn at(ctx: Context, hours: i64) -> Context {
    Context {
        now: T0.plus_hours(hours),
        ..ctx
    }
}

/// The district of Mosul in Ninawa, for tests where a district must travel.
pub fn mosul() -> Location {
    Location::new(Governorate::Ninawa, Some(District::parse("mosul").expect("district"))).expect("location")
}

/// A synthetic client: survivor code `code`, a woman aged 25 to 59, a returnee of Iraqi
/// nationality living in Ninawa, speaking Arabic. The identifying facts (the code, age 30, no
/// vulnerabilities) are "sealed" by [`sealed_facts`]: stand-ins of the right shape, for tests
/// that never open them.
pub fn profile(code: &str) -> ClientProfile {
    ClientProfile {
        sex: Sex::Female,
        age_group: AgeGroup::Age25To59,
        population_group: PopulationGroup::Returnee,
        nationality: Nationality::parse("IQ").expect("nationality"),
        location: Location::governorate_only(Governorate::Ninawa),
        language: Language::parse("ar").expect("language"),
        identifying: Identifying::sealed(sealed_facts(&IdentifyingFacts {
            survivor_code: SurvivorCode::parse(code).expect("a survivor code"),
            age_years: Some(30),
            vulnerabilities: vec![],
        })),
    }
}

/// Stand-ins for sealed facts: each value's length is that of its real ciphertext, the
/// "ciphertext" is its padded text (never secret: test data only) and the lookup hash is the
/// code's bytes, so that different codes differ. Nothing can open them.
pub fn sealed_facts(facts: &IdentifyingFacts) -> SealedFacts {
    let stand_in = |field| {
        let mut bytes = facts.sealed_text(field).into_bytes();
        bytes.extend_from_slice(&[0u8; 16]);
        EncryptedPii::new(
            Cipher::XChaCha20Poly1305,
            KeyId::parse("case:test").expect("key id"),
            vec![0u8; 24],
            bytes,
        )
        .expect("a sealed value")
    };
    let mut lookup = [0u8; 32];
    for (slot, byte) in lookup.iter_mut().zip(facts.survivor_code.as_str().bytes()) {
        *slot = byte;
    }
    SealedFacts {
        survivor_code: stand_in(IdentifyingField::SurvivorCode),
        lookup: SurvivorCodeLookup::from_bytes(lookup),
        age_years: stand_in(IdentifyingField::AgeYears),
        vulnerabilities: stand_in(IdentifyingField::Vulnerabilities),
    }
}

/// Consent to any service of any organisation, without expiry.
pub fn any_consent() -> ConsentScope {
    ConsentScope {
        categories: Scope::Any,
        organisations: Scope::Any,
        expires_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CaseId;

    #[test]
    fn fresh_ids_are_distinct_and_sort_in_the_order_they_were_made() {
        let a: CaseId = fresh();
        let b: CaseId = fresh();
        assert!(a < b);
    }

    #[test]
    fn fixed_ids_are_the_same_for_the_same_number() {
        assert_eq!(id::<CaseId>(7), id::<CaseId>(7));
        assert_ne!(id::<CaseId>(7), id::<CaseId>(8));
    }
}
