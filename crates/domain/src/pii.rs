//! Personal data never appears in plain form in the domain: names, phone numbers, addresses and
//! every free-text field travel as [`EncryptedPii`], encrypted under the case's data key before
//! the command reaches the domain. Destroying that key erases them from every copy of the log.

use crate::codes::code_enum;
use crate::error::ValidationError;
use std::fmt;

code_enum!(
    /// The AEAD cipher a value was sealed with.
    Cipher, "cipher" {
        /// XChaCha20-Poly1305, 24-byte nonce.
        XChaCha20Poly1305 => "xchacha20poly1305",
        /// AES-256-GCM, 12-byte nonce.
        Aes256Gcm => "aes256gcm",
    }
);

impl Cipher {
    /// The nonce length in bytes.
    pub const fn nonce_len(self) -> usize {
        match self {
            Self::XChaCha20Poly1305 => 24,
            Self::Aes256Gcm => 12,
        }
    }
}

/// Names which data key sealed a value, e.g. `case:<case id>:1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// 1 to 128 characters of letters, digits and `.:_-`.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let ok =
            (1..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b));
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(ValidationError::new(
                "key_id",
                "must be 1 to 128 letters, digits or '.:_-'",
            ))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A personal value sealed with an AEAD cipher under a case's data key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EncryptedPii {
    cipher: Cipher,
    key_id: KeyId,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// The authentication tag every AEAD ciphertext here carries.
const TAG_LEN: usize = 16;

impl EncryptedPii {
    /// A sealed value; the nonce must fit the cipher and the ciphertext hold at least the tag.
    pub fn new(cipher: Cipher, key_id: KeyId, nonce: Vec<u8>, ciphertext: Vec<u8>) -> Result<Self, ValidationError> {
        if nonce.len() != cipher.nonce_len() {
            return Err(ValidationError::new("nonce", "has the wrong length for the cipher"));
        }
        if ciphertext.len() < TAG_LEN {
            return Err(ValidationError::new(
                "ciphertext",
                "is shorter than an authentication tag",
            ));
        }
        Ok(Self {
            cipher,
            key_id,
            nonce,
            ciphertext,
        })
    }

    /// Whether the sealed plaintext is empty (only the tag is present).
    pub fn is_empty(&self) -> bool {
        self.ciphertext.len() == TAG_LEN
    }

    /// The cipher.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// The key that sealed it.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The nonce.
    pub fn nonce(&self) -> &[u8] {
        &self.nonce
    }

    /// The ciphertext with its tag.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }
}

/// Shows only the key and the length, so debug output stays small and says nothing useful.
impl fmt::Debug for EncryptedPii {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EncryptedPii({}, {}, {} bytes)",
            self.cipher,
            self.key_id.as_str(),
            self.ciphertext.len()
        )
    }
}

/// The personal fields a case may hold; each is sealed on its own so that the field name can be
/// bound in as associated data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonalData {
    /// Full name.
    pub name: Option<EncryptedPii>,
    /// Phone number.
    pub phone: Option<EncryptedPii>,
    /// Address or whereabouts.
    pub address: Option<EncryptedPii>,
    /// Free-text case notes.
    pub notes: Option<EncryptedPii>,
}

impl PersonalData {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.phone.is_none() && self.address.is_none() && self.notes.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyId {
        KeyId::parse("case:0190c1a0-0000-7000-8000-000000000001:1").unwrap()
    }

    #[test]
    fn the_nonce_must_fit_the_cipher() {
        assert!(EncryptedPii::new(Cipher::XChaCha20Poly1305, key(), vec![0; 24], vec![0; 20]).is_ok());
        let err = EncryptedPii::new(Cipher::Aes256Gcm, key(), vec![0; 24], vec![0; 20]).unwrap_err();
        assert_eq!(err.field, "nonce");
    }

    #[test]
    fn a_ciphertext_shorter_than_the_tag_is_refused() {
        let err = EncryptedPii::new(Cipher::Aes256Gcm, key(), vec![0; 12], vec![0; 15]).unwrap_err();
        assert_eq!(err.field, "ciphertext");
    }

    #[test]
    fn debug_output_shows_no_bytes() {
        let pii = EncryptedPii::new(Cipher::Aes256Gcm, key(), vec![0; 12], vec![0xAB; 40]).unwrap();
        let shown = format!("{pii:?}");
        assert!(shown.contains("40 bytes"));
        assert!(!shown.to_lowercase().contains("ab, ") && !shown.contains("171"));
    }

    #[test]
    fn key_ids_are_validated() {
        assert!(KeyId::parse("").is_err());
        assert!(KeyId::parse("has space").is_err());
    }
}
