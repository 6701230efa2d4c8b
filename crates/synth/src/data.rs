//! Synthetic values: names, places, sealed personal data, reasons, and the histories' client
//! profiles (by way of [`crate::profile`]). Every name says "Synthetic", every survivor code
//! starts with `SYN-`, and every sealed value is random bytes of the right shape that no key
//! opens.

use crate::rng::Rng;
use wasl_domain::case::{ConsentScope, Scope};
use wasl_domain::catalogue::{Reason, ReasonCode, ServiceCategory};
use wasl_domain::client::{
    ClientProfile, Identifying, IdentifyingFacts, IdentifyingField, Language, SealedFacts, Sex, SurvivorCode,
    SurvivorCodeLookup, Vulnerability,
};
use wasl_domain::directory::{DisplayName, Eligibility, ServiceSpec};
use wasl_domain::geo::{District, Governorate, Location};
use wasl_domain::ids::OrgId;
use wasl_domain::pii::{Cipher, EncryptedPii, KeyId, PersonalData};
use wasl_domain::time::Timestamp;

/// BCP 47 tags of the languages services work in, Arabic first. (Which language a client
/// prefers is [`crate::profile`]'s business.)
const SERVICE_LANGUAGES: &[&str] = &["ar", "kmr", "ckb", "en", "tr", "fa"];

/// Values parsed once: the languages services work in.
#[derive(Debug, Clone)]
pub(crate) struct Vocabulary {
    languages: Vec<Language>,
}

impl Vocabulary {
    pub(crate) fn new() -> Self {
        Self {
            languages: SERVICE_LANGUAGES
                .iter()
                .filter_map(|tag| Language::parse(tag).ok())
                .collect(),
        }
    }

    /// A service's languages: Arabic, which every service works in, and up to two more.
    fn service_languages(&self, rng: &mut Rng) -> Vec<Language> {
        let mut languages = vec![self.languages[0].clone()];
        for _ in 0..rng.below(3) {
            languages.push(self.languages[rng.index(self.languages.len())].clone());
        }
        languages
    }
}

/// A display name; the texts here are always valid.
pub(crate) fn name(text: &str) -> DisplayName {
    DisplayName::parse(text).unwrap_or_else(|_| unreachable!("synthetic names are 1 to 200 printable characters"))
}

/// A location in `governorate`: the whole governorate or, with `district_per_mille`, one of its
/// districts.
pub(crate) fn location_in(rng: &mut Rng, governorate: Governorate, district_per_mille: u64) -> Location {
    let districts: Vec<District> = District::of(governorate).collect();
    if !districts.is_empty() && rng.chance_per_mille(district_per_mille) {
        let district = *rng.pick(&districts);
        Location::new(governorate, Some(district)).unwrap_or(Location::governorate_only(governorate))
    } else {
        Location::governorate_only(governorate)
    }
}

/// `n` distinct governorates.
pub(crate) fn governorates(rng: &mut Rng, n: usize) -> Vec<Governorate> {
    let mut all = Governorate::ALL.to_vec();
    let mut out = Vec::with_capacity(n);
    while out.len() < n && !all.is_empty() {
        out.push(all.swap_remove(rng.index(all.len())));
    }
    out
}

/// What a new service is: its category, where it works (in the organisation's governorates),
/// its languages and who it is for.
pub(crate) fn service_spec(
    rng: &mut Rng,
    vocabulary: &Vocabulary,
    category: ServiceCategory,
    org_number: usize,
    version: u32,
    home: &[Governorate],
) -> ServiceSpec {
    let mut areas: Vec<Location> = (0..rng.between(1, 3))
        .map(|_| {
            let governorate = *rng.pick(home);
            location_in(rng, governorate, 300)
        })
        .collect();
    areas.sort();
    areas.dedup();
    let eligibility = if category == ServiceCategory::ChildProtection {
        Eligibility {
            sexes: Scope::Any,
            min_age: 0,
            max_age: 17,
        }
    } else {
        match rng.below(100) {
            0..80 => Eligibility::everyone(),
            80..88 => Eligibility {
                sexes: Scope::Only([Sex::Female].into_iter().collect()),
                min_age: 0,
                max_age: 120,
            },
            88..94 => Eligibility {
                sexes: Scope::Any,
                min_age: 0,
                max_age: 17,
            },
            _ => Eligibility {
                sexes: Scope::Any,
                min_age: 18,
                max_age: 120,
            },
        }
    };
    let suffix = if version == 0 {
        String::new()
    } else {
        format!(", revision {version}")
    };
    ServiceSpec {
        name: name(&format!(
            "Synthetic {} service of partner {org_number:02}{suffix}",
            category.code().replace('_', " ")
        )),
        category,
        areas,
        languages: vocabulary.service_languages(rng),
        eligibility,
    }
}

/// A client's profile: survivor code `SYN-<number>`, living where services work (`places`)
/// mostly, else anywhere in Iraq; the rest is [`crate::profile`]'s model. Its identifying facts
/// are sealed under `key` ([`sealed_facts`]).
pub(crate) fn profile(rng: &mut Rng, number: u64, places: &[Governorate], key: &KeyId) -> ClientProfile {
    let survivor_code = SurvivorCode::parse(&format!("SYN-{number:06}"))
        .unwrap_or_else(|_| unreachable!("SYN- and six or more digits is a valid survivor code"));
    let governorate = if places.is_empty() || rng.chance_per_mille(250) {
        *rng.pick(Governorate::ALL)
    } else {
        *rng.pick(places)
    };
    let home = location_in(rng, governorate, 600);
    let profile = crate::profile::client_profile(rng, survivor_code, home);
    stand_in_seals(rng, key, profile)
}

/// `profile` with its clear identifying facts replaced by [`sealed_facts`] under `key`.
pub(crate) fn stand_in_seals(rng: &mut Rng, key: &KeyId, mut profile: ClientProfile) -> ClientProfile {
    if let Identifying::Clear(facts) = &profile.identifying {
        profile.identifying = Identifying::sealed(sealed_facts(rng, key, facts));
    }
    profile
}

/// Identifying facts "sealed" the way the vault seals them — each value as long as its real
/// ciphertext, a random nonce, a 32-byte lookup hash — with random bytes that are never opened.
pub(crate) fn sealed_facts(rng: &mut Rng, key: &KeyId, facts: &IdentifyingFacts) -> SealedFacts {
    // The vault's cipher, for every fact.
    let mut seal = |field| sealed_with(rng, Cipher::XChaCha20Poly1305, key, facts.sealed_text(field).len());
    let survivor_code = seal(IdentifyingField::SurvivorCode);
    let age_years = seal(IdentifyingField::AgeYears);
    let vulnerabilities = seal(IdentifyingField::Vulnerabilities);
    let lookup: [u8; 32] = rng
        .bytes(32)
        .try_into()
        .unwrap_or_else(|_| unreachable!("32 bytes were asked for"));
    SealedFacts {
        survivor_code,
        lookup: SurvivorCodeLookup::from_bytes(lookup),
        age_years,
        vulnerabilities,
    }
}

/// The same profile with one thing changed: a move, the language, or the identifying facts
/// (a corrected age, a new vulnerability) sealed anew.
pub(crate) fn changed_profile(
    rng: &mut Rng,
    profile: &ClientProfile,
    places: &[Governorate],
    key: &KeyId,
) -> ClientProfile {
    let mut profile = profile.clone();
    match rng.below(3) {
        0 => {
            let governorate = if places.is_empty() {
                *rng.pick(Governorate::ALL)
            } else {
                *rng.pick(places)
            };
            profile.location = location_in(rng, governorate, 600);
        }
        1 => {
            // Sealed texts have one length per field, so a stand-in code gives the shape; the
            // client keeps their code, and so its lookup hash.
            let stand_in = SurvivorCode::parse("SYN-000000")
                .unwrap_or_else(|_| unreachable!("SYN- and six digits is a valid survivor code"));
            let age = crate::profile::corrected_age(rng);
            let facts = IdentifyingFacts {
                survivor_code: stand_in,
                age_years: age.exact_years(),
                vulnerabilities: vec![*rng.pick(Vulnerability::ALL)],
            };
            let mut sealed = sealed_facts(rng, key, &facts);
            if let Identifying::Sealed(old) = &profile.identifying {
                sealed.lookup = old.lookup;
            }
            profile.age_group = age.group();
            profile.identifying = Identifying::sealed(sealed);
        }
        _ => profile.language = crate::profile::language(rng, profile.location, profile.nationality),
    }
    profile
}

/// The key id under which a case's values are sealed.
pub(crate) fn case_key(case: impl std::fmt::Display) -> KeyId {
    KeyId::parse(&format!("case:{case}:1"))
        .unwrap_or_else(|_| unreachable!("a case key id is letters, digits, '-' and ':'"))
}

/// A sealed value of `len` plaintext bytes: a random nonce of the cipher's length and random
/// ciphertext plus tag. It stands for personal data and is never opened.
pub(crate) fn sealed(rng: &mut Rng, key: &KeyId, len: usize) -> EncryptedPii {
    let cipher = if rng.chance_per_mille(850) {
        Cipher::XChaCha20Poly1305
    } else {
        Cipher::Aes256Gcm
    };
    sealed_with(rng, cipher, key, len)
}

/// A sealed value of `len` plaintext bytes under `cipher`.
fn sealed_with(rng: &mut Rng, cipher: Cipher, key: &KeyId, len: usize) -> EncryptedPii {
    let nonce = rng.bytes(cipher.nonce_len());
    let ciphertext = rng.bytes(len + 16);
    EncryptedPii::new(cipher, key.clone(), nonce, ciphertext)
        .unwrap_or_else(|_| unreachable!("the nonce fits the cipher and the ciphertext holds a tag"))
}

/// A sealed free text of 8 to 160 bytes.
pub(crate) fn text(rng: &mut Rng, key: &KeyId) -> EncryptedPii {
    let len = rng.between(8, 160) as usize;
    sealed(rng, key, len)
}

/// Personal data with some fields set, each sealed on its own.
pub(crate) fn personal_data(rng: &mut Rng, key: &KeyId) -> PersonalData {
    let mut field = |per_mille: u64, lo: u64, hi: u64| {
        rng.chance_per_mille(per_mille).then(|| {
            let len = rng.between(lo, hi) as usize;
            sealed(rng, key, len)
        })
    };
    PersonalData {
        name: field(700, 6, 40),
        phone: field(600, 10, 16),
        address: field(350, 12, 80),
        notes: field(300, 20, 400),
    }
}

/// A coded reason from `codes`; `other` always comes with a sealed text, the others sometimes.
pub(crate) fn reason<C: ReasonCode>(rng: &mut Rng, codes: &[(C, u32)], key: &KeyId) -> Reason<C> {
    let code = *rng.weighted(codes);
    coded(rng, code, key)
}

/// `code` as a reason: with a sealed text for `other`, sometimes for the others.
pub(crate) fn coded<C: ReasonCode>(rng: &mut Rng, code: C, key: &KeyId) -> Reason<C> {
    let text = (code.needs_text() || rng.chance_per_mille(120)).then(|| self::text(rng, key));
    Reason { code, text }
}

/// A consent scope: mostly anything in the pathway; sometimes only some categories or some
/// organisations; sometimes with an expiry.
pub(crate) fn consent_scope(rng: &mut Rng, orgs: &[OrgId], now: Timestamp) -> ConsentScope {
    let categories = if rng.chance_per_mille(150) {
        let picked = (0..rng.between(3, 6)).map(|_| *rng.pick(ServiceCategory::ALL));
        Scope::Only(picked.collect())
    } else {
        Scope::Any
    };
    let organisations = if rng.chance_per_mille(100) && orgs.len() > 2 {
        let picked = (0..rng.between(3, 8)).map(|_| *rng.pick(orgs));
        Scope::Only(picked.collect())
    } else {
        Scope::Any
    };
    let expires_at = rng
        .chance_per_mille(80)
        .then(|| now.plus_hours(24 * rng.between(20, 180) as i64));
    ConsentScope {
        categories,
        organisations,
        expires_at,
    }
}

/// A strictly narrower scope than `scope`, if one can be made: fewer categories, fewer
/// organisations, or an earlier expiry.
pub(crate) fn narrower(rng: &mut Rng, scope: &ConsentScope, orgs: &[OrgId], now: Timestamp) -> Option<ConsentScope> {
    let mut options = Vec::new();
    match &scope.categories {
        Scope::Any => options.push(0),
        Scope::Only(set) if set.len() > 1 => options.push(0),
        Scope::Only(_) => {}
    }
    match &scope.organisations {
        Scope::Any if orgs.len() > 2 => options.push(1),
        Scope::Only(set) if set.len() > 1 => options.push(1),
        _ => {}
    }
    let soon = now.plus_hours(48);
    if scope.expires_at.is_none_or(|exp| exp > soon.plus_hours(24)) {
        options.push(2);
    }
    if options.is_empty() {
        return None;
    }
    let mut narrow = scope.clone();
    match *rng.pick(&options) {
        0 => {
            narrow.categories = match &scope.categories {
                Scope::Any => Scope::Only(
                    (0..rng.between(2, 5))
                        .map(|_| *rng.pick(ServiceCategory::ALL))
                        .collect(),
                ),
                Scope::Only(set) => {
                    let mut set = set.clone();
                    let drop = *set.iter().nth(rng.index(set.len()))?;
                    set.remove(&drop);
                    Scope::Only(set)
                }
            }
        }
        1 => {
            narrow.organisations = match &scope.organisations {
                Scope::Any => Scope::Only((0..rng.between(2, 6)).map(|_| *rng.pick(orgs)).collect()),
                Scope::Only(set) => {
                    let mut set = set.clone();
                    let drop = *set.iter().nth(rng.index(set.len()))?;
                    set.remove(&drop);
                    Scope::Only(set)
                }
            }
        }
        _ => {
            let latest = scope.expires_at.unwrap_or(now.plus_hours(24 * 365));
            let span = (latest.unix_millis() - soon.unix_millis()).max(1) as u64;
            narrow.expires_at = Some(soon.plus_millis(rng.below(span) as i64));
        }
    }
    Some(narrow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_sealed_with_stand_ins_of_the_real_lengths() {
        let mut rng = Rng::new(3);
        let profile = profile(&mut rng, 123, &[Governorate::Ninawa], &case_key("test"));
        let Identifying::Sealed(sealed) = &profile.identifying else {
            panic!("a profile in the clear");
        };
        let facts = IdentifyingFacts {
            survivor_code: SurvivorCode::parse("SYN-000123").expect("code"),
            age_years: None,
            vulnerabilities: vec![],
        };
        for field in [
            IdentifyingField::SurvivorCode,
            IdentifyingField::AgeYears,
            IdentifyingField::Vulnerabilities,
        ] {
            assert_eq!(
                sealed.get(field).ciphertext().len(),
                facts.sealed_text(field).len() + 16
            );
        }
    }

    #[test]
    fn narrowing_always_gives_a_strictly_narrower_valid_scope() {
        let mut rng = Rng::new(4);
        let orgs: Vec<OrgId> = (0..6u8)
            .map(|n| OrgId::from_uuid(wasl_domain::ids::uuid_v7_from_parts(1_767_225_600_000, [n; 10])).expect("v7"))
            .collect();
        let now = Timestamp::from_unix_millis(1_767_225_600_000);
        for _ in 0..2_000 {
            let scope = consent_scope(&mut rng, &orgs, now);
            if let Some(narrow) = narrower(&mut rng, &scope, &orgs, now) {
                assert!(narrow.is_within(&scope));
                assert_ne!(narrow, scope);
                assert!(narrow.expires_at.is_none_or(|exp| exp > now));
            }
        }
    }
}
