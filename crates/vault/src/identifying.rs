//! The identifying facts of a client profile — survivor code, exact age, vulnerabilities —
//! sealed under the case's data key like the other personal fields, and the survivor code's
//! keyed hash that lets the api find a case by its code.
//!
//! The hash's key is a random 256-bit key of its own, kept in the key bucket under
//! [`LOOKUP_KEY_NAME`] and wrapped by the master key like a case's key (so a master-key rotation
//! rewraps it and lookups keep working). It is never erased: erasing a case destroys the case's
//! key, and the read models drop the case's hash. What stays in the log's copies is the hash
//! alone, which without the lookup key says nothing; with the lookup key, a guessed code can be
//! tested against it (see docs/data-protection.md).

use crate::error::VaultError;
use crate::keys::{DataKey, MasterKey};
use crate::seal::{self, PiiField};
use crate::vault::{KeyState, Vault};
use hmac::{KeyInit as _, Mac as _};
use wasl_domain::client::{
    ClientProfile, Identifying, IdentifyingFacts, IdentifyingField, SealedFacts, SurvivorCode, SurvivorCodeLookup,
};
use wasl_domain::ids::{CaseId, EventId, uuid_v7_from_parts};

/// The bucket entry holding the survivor-code lookup key.
pub const LOOKUP_KEY_NAME: &str = "index.survivor-code";

/// The id the lookup key is wrapped under (the master key binds a wrapped key to an id): a
/// UUIDv7 at the Unix epoch, which no case made by Wasl can have.
pub(crate) fn lookup_key_owner() -> CaseId {
    CaseId::from_uuid(uuid_v7_from_parts(0, [0; 10])).unwrap_or_else(|_| unreachable!("a v7 uuid"))
}

/// The field names bound into the seal of each fact.
pub fn pii_field(field: IdentifyingField) -> PiiField {
    match field {
        IdentifyingField::SurvivorCode => PiiField::SURVIVOR_CODE,
        IdentifyingField::AgeYears => PiiField::AGE_YEARS,
        IdentifyingField::Vulnerabilities => PiiField::VULNERABILITIES,
    }
}

/// HMAC-SHA256 of the code under the lookup key, with a domain-separating prefix.
pub(crate) fn lookup_with(key: &DataKey, code: &SurvivorCode) -> SurvivorCodeLookup {
    let mut mac = <hmac::Hmac<sha2::Sha256>>::new_from_slice(key.bytes()).expect("HMAC takes a key of any length");
    mac.update(b"wasl/survivor-code/v1\0");
    mac.update(code.as_str().as_bytes());
    SurvivorCodeLookup::from_bytes(mac.finalize().into_bytes().into())
}

impl<M: MasterKey> Vault<M> {
    /// The keyed hash a case with survivor code `code` is recorded and found under.
    pub async fn survivor_code_lookup(&self, code: &SurvivorCode) -> Result<SurvivorCodeLookup, VaultError> {
        let key = self.lookup_key().await?;
        Ok(lookup_with(&key, code))
    }

    /// Seals `facts` for event `event` of `case`, with the code's lookup hash.
    pub async fn seal_identifying(
        &self,
        case: CaseId,
        event: EventId,
        facts: &IdentifyingFacts,
    ) -> Result<SealedFacts, VaultError> {
        let key = self.key_for_sealing(case).await?;
        let seal = |field| seal::seal_with(&key, case, event, pii_field(field), &facts.sealed_text(field));
        Ok(SealedFacts {
            survivor_code: seal(IdentifyingField::SurvivorCode)?,
            lookup: self.survivor_code_lookup(&facts.survivor_code).await?,
            age_years: seal(IdentifyingField::AgeYears)?,
            vulnerabilities: seal(IdentifyingField::Vulnerabilities)?,
        })
    }

    /// `profile` with its clear identifying facts sealed for event `event` of `case`, as every
    /// command must carry them; a profile already sealed is returned as it is.
    pub async fn seal_profile(
        &self,
        case: CaseId,
        event: EventId,
        mut profile: ClientProfile,
    ) -> Result<ClientProfile, VaultError> {
        if let Identifying::Clear(facts) = &profile.identifying {
            profile.identifying = Identifying::sealed(self.seal_identifying(case, event, facts).await?);
        }
        Ok(profile)
    }

    /// Opens the facts sealed in event `event` of `case`; `None` once the case was erased.
    pub async fn open_identifying(
        &self,
        case: CaseId,
        event: EventId,
        sealed: &SealedFacts,
    ) -> Result<Option<IdentifyingFacts>, VaultError> {
        // One key fetch for the three values (a list page opens them for every case on it).
        let key = match self.key(case).await? {
            KeyState::Active(key) => key,
            KeyState::Erased => return Ok(None),
            KeyState::Missing => return Err(VaultError::KeyMissing(case.to_string())),
        };
        let open = |field| seal::open_with(&key, case, event, pii_field(field), sealed.get(field));
        IdentifyingFacts::from_sealed_texts(
            &open(IdentifyingField::SurvivorCode)?,
            &open(IdentifyingField::AgeYears)?,
            &open(IdentifyingField::Vulnerabilities)?,
        )
        .map(Some)
        .map_err(|e| VaultError::Corrupt {
            case: case.to_string(),
            reason: format!("a sealed identifying fact does not read back: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_differ_by_code_and_by_key_and_repeat_for_the_same_pair() {
        let a = DataKey::generate().unwrap();
        let b = DataKey::generate().unwrap();
        let code = SurvivorCode::parse("TEST-0001").unwrap();
        let other = SurvivorCode::parse("TEST-0002").unwrap();
        assert_eq!(lookup_with(&a, &code), lookup_with(&a, &code));
        assert_ne!(lookup_with(&a, &code), lookup_with(&a, &other));
        assert_ne!(lookup_with(&a, &code), lookup_with(&b, &code));
    }
}
