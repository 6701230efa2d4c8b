//! Sealing personal values with a case's data key.
//!
//! Cipher: XChaCha20-Poly1305. Nonce: 24 bytes from the operating system's random source. With
//! 192-bit random nonces the chance that any two of n = 10⁷ encryptions share a nonce is about
//! n² / 2¹⁹³ ≈ 10⁻⁴⁴, so repetition is not a practical concern even for a key used for a
//! lifetime; the test suite also checks 10 million nonces for repeats.
//!
//! Associated data: `wasl/pii/v1`, the case id, the event id and the field name. A ciphertext
//! copied into another case, another event or another field fails to open with
//! [`VaultError::Tampered`], never a panic.

use crate::error::VaultError;
use crate::keys::DataKey;
use chacha20poly1305::XNonce;
use chacha20poly1305::aead::{Aead, Payload};
use wasl_domain::ids::{CaseId, EventId};
use wasl_domain::pii::{Cipher, EncryptedPii, KeyId};
use zeroize::Zeroizing;

/// Which personal field a value is: part of the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PiiField(&'static str);

impl PiiField {
    /// The client's name.
    pub const NAME: Self = Self("case.name");
    /// The client's phone number.
    pub const PHONE: Self = Self("case.phone");
    /// The client's address.
    pub const ADDRESS: Self = Self("case.address");
    /// Case notes.
    pub const NOTES: Self = Self("case.notes");
    /// The survivor code (an identifying fact of the profile).
    pub const SURVIVOR_CODE: Self = Self("case.survivor_code");
    /// The exact age in years (an identifying fact of the profile).
    pub const AGE_YEARS: Self = Self("case.age_years");
    /// The vulnerabilities (an identifying fact of the profile).
    pub const VULNERABILITIES: Self = Self("case.vulnerabilities");
    /// A reason's explanatory text.
    pub const REASON_TEXT: Self = Self("reason.text");
    /// Notes sent with a referral.
    pub const REFERRAL_NOTES: Self = Self("referral.notes");
    /// Follow-up notes.
    pub const FOLLOW_UP_NOTE: Self = Self("follow_up.note");

    /// The field's name.
    pub const fn name(self) -> &'static str {
        self.0
    }
}

/// What an authorised read of a sealed value finds.
#[derive(Debug, PartialEq, Eq)]
pub enum Revealed {
    /// The plaintext (zeroized when dropped).
    Plain(Zeroizing<String>),
    /// The case's personal data was erased.
    Erased,
}

impl Revealed {
    /// The text shown to a reader: the plaintext, or `erased`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Plain(text) => text.as_str(),
            Self::Erased => "erased",
        }
    }
}

/// 24 bytes from the operating system's random source.
pub fn random_nonce() -> Result<[u8; 24], VaultError> {
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce).map_err(|e| VaultError::Random(e.to_string()))?;
    Ok(nonce)
}

/// The id under which a case's data key is known in sealed values.
pub fn key_id(case: CaseId) -> KeyId {
    // A UUID is letters, digits and '-': always a valid key id.
    KeyId::parse(&format!("case:{case}")).unwrap_or_else(|_| unreachable!("a case id is a valid key id"))
}

fn aad(case: CaseId, event: EventId, field: PiiField) -> Vec<u8> {
    let mut aad = b"wasl/pii/v1\0".to_vec();
    aad.extend_from_slice(case.as_uuid().as_bytes());
    aad.extend_from_slice(event.as_uuid().as_bytes());
    aad.extend_from_slice(field.0.as_bytes());
    aad
}

/// Seals `plaintext` as `field` of event `event` of `case`.
pub fn seal_with(
    key: &DataKey,
    case: CaseId,
    event: EventId,
    field: PiiField,
    plaintext: &str,
) -> Result<EncryptedPii, VaultError> {
    let nonce = random_nonce()?;
    let aad = aad(case, event, field);
    let sealed = key
        .cipher()
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| VaultError::Tampered {
            case: case.to_string(),
            field: field.0,
        })?;
    EncryptedPii::new(Cipher::XChaCha20Poly1305, key_id(case), nonce.to_vec(), sealed).map_err(|e| {
        VaultError::Corrupt {
            case: case.to_string(),
            reason: e.to_string(),
        }
    })
}

/// Opens a value sealed as `field` of event `event` of `case`.
pub fn open_with(
    key: &DataKey,
    case: CaseId,
    event: EventId,
    field: PiiField,
    sealed: &EncryptedPii,
) -> Result<Zeroizing<String>, VaultError> {
    let tampered = || VaultError::Tampered {
        case: case.to_string(),
        field: field.0,
    };
    if sealed.cipher() != Cipher::XChaCha20Poly1305 || sealed.key_id() != &key_id(case) {
        return Err(tampered());
    }
    let nonce: [u8; 24] = sealed.nonce().try_into().map_err(|_| tampered())?;
    let aad = aad(case, event, field);
    let plain = Zeroizing::new(
        key.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed.ciphertext(),
                    aad: &aad,
                },
            )
            .map_err(|_| tampered())?,
    );
    String::from_utf8(plain.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| tampered())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasl_domain::ids::uuid_v7_from_parts;

    fn case(n: u8) -> CaseId {
        CaseId::from_uuid(uuid_v7_from_parts(1_767_225_600_000, [n; 10])).unwrap()
    }
    fn event(n: u8) -> EventId {
        EventId::from_uuid(uuid_v7_from_parts(1_767_225_600_000, [n; 10])).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_in_its_place_only() {
        let key = DataKey::generate().unwrap();
        let sealed = seal_with(&key, case(1), event(1), PiiField::NAME, "Test Person Alpha").unwrap();
        assert_eq!(
            open_with(&key, case(1), event(1), PiiField::NAME, &sealed)
                .unwrap()
                .as_str(),
            "Test Person Alpha"
        );
        for (c, e, f) in [
            (case(2), event(1), PiiField::NAME),
            (case(1), event(2), PiiField::NAME),
            (case(1), event(1), PiiField::PHONE),
        ] {
            assert!(matches!(
                open_with(&key, c, e, f, &sealed),
                Err(VaultError::Tampered { .. })
            ));
        }
        let other_key = DataKey::generate().unwrap();
        assert!(matches!(
            open_with(&other_key, case(1), event(1), PiiField::NAME, &sealed),
            Err(VaultError::Tampered { .. })
        ));
    }

    #[test]
    fn an_altered_ciphertext_is_refused_not_a_panic() {
        let key = DataKey::generate().unwrap();
        let sealed = seal_with(&key, case(1), event(1), PiiField::NOTES, "note").unwrap();
        let mut bytes = sealed.ciphertext().to_vec();
        bytes[0] ^= 1;
        let altered = EncryptedPii::new(
            Cipher::XChaCha20Poly1305,
            key_id(case(1)),
            sealed.nonce().to_vec(),
            bytes,
        )
        .unwrap();
        assert!(matches!(
            open_with(&key, case(1), event(1), PiiField::NOTES, &altered),
            Err(VaultError::Tampered { .. })
        ));
    }

    #[test]
    fn ten_million_nonces_never_repeat() {
        let mut seen = std::collections::HashSet::with_capacity(10_000_000);
        for _ in 0..10_000_000 {
            assert!(seen.insert(random_nonce().unwrap()), "a nonce repeated");
        }
    }

    #[test]
    fn keys_and_errors_print_no_secrets() {
        let key = DataKey::generate().unwrap();
        assert_eq!(format!("{key:?}"), "DataKey(<redacted>)");
        let err = VaultError::Tampered {
            case: case(1).to_string(),
            field: PiiField::NAME.name(),
        };
        assert!(!err.to_string().contains("Test Person"));
    }
}
