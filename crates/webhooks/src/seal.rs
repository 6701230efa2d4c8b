//! Signing secrets at rest: sealed with XChaCha20-Poly1305 under a key derived from the master
//! key (`LocalMasterKey::derive("webhook-secrets")`, as the audit chain derives its own), so the
//! endpoint bucket — and every backup of it — holds no secret that signs. The master key lives
//! outside NATS; whoever reads the bucket without it learns the URLs, not the secrets.
//!
//! Associated data: `wasl/webhook-secret/v1`, the organisation id, which secret of the endpoint
//! (current or previous) and the master key's id, so a sealed secret copied to another
//! organisation or slot does not open.

use crate::error::WebhookError;
use crate::signature::Secret;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use wasl_domain::ids::OrgId;
use zeroize::Zeroizing;

/// The key that seals signing secrets: derived from the master key, named by its id.
#[derive(Clone, Debug)]
pub struct SecretsKey(wasl_vault::DerivedKey);

impl SecretsKey {
    /// The purpose the key is derived for (see [`wasl_vault::LocalMasterKey::derive`]).
    pub const PURPOSE: &'static str = "webhook-secrets";

    /// The sealing key of `master`.
    pub fn from_master(master: &wasl_vault::LocalMasterKey) -> Self {
        Self(wasl_vault::DerivedKey::from_master(master, Self::PURPOSE))
    }

    /// The id of the master key it was derived from (stored with every secret it seals).
    pub fn id(&self) -> &str {
        self.0.id()
    }

    fn aad(&self, org: OrgId, slot: Slot) -> Vec<u8> {
        let mut aad = b"wasl/webhook-secret/v1\0".to_vec();
        aad.extend_from_slice(org.as_uuid().as_bytes());
        aad.extend_from_slice(slot.name().as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.id().as_bytes());
        aad
    }

    pub(crate) fn seal(&self, org: OrgId, slot: Slot, secret: &Secret) -> Result<SealedSecret, WebhookError> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|_| WebhookError::Random)?;
        let plain = secret.expose();
        let sealed = XChaCha20Poly1305::new(&(*self.0.bytes()).into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: &self.aad(org, slot),
                },
            )
            .map_err(|_| WebhookError::Random)?;
        Ok(SealedSecret {
            master_key_id: self.id().to_owned(),
            nonce: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(sealed),
        })
    }

    /// Opens `stored`; a secret still in plain text (written before sealing, migrated on the
    /// next start) is read as it is.
    pub(crate) fn open(
        &self,
        org: OrgId,
        slot: Slot,
        stored: &StoredSecret,
        bucket: &str,
    ) -> Result<Secret, WebhookError> {
        let corrupt = || WebhookError::Corrupt(bucket.to_owned());
        let sealed = match stored {
            StoredSecret::Plain(text) => return Secret::parse(text).map_err(|_| corrupt()),
            StoredSecret::Sealed(sealed) => sealed,
        };
        if sealed.master_key_id != self.id() {
            return Err(WebhookError::WrongMasterKey {
                sealed_by: sealed.master_key_id.clone(),
                given: self.id().to_owned(),
            });
        }
        let nonce: [u8; 24] = STANDARD
            .decode(&sealed.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(corrupt)?;
        let ciphertext = STANDARD.decode(&sealed.ciphertext).map_err(|_| corrupt())?;
        let opened = Zeroizing::new(
            XChaCha20Poly1305::new(&(*self.0.bytes()).into())
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: &ciphertext,
                        aad: &self.aad(org, slot),
                    },
                )
                .map_err(|_| corrupt())?,
        );
        let text = std::str::from_utf8(&opened).map_err(|_| corrupt())?;
        Secret::parse(text).map_err(|_| corrupt())
    }
}

/// Which secret of an endpoint a value is (part of the associated data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Current,
    Previous,
}

impl Slot {
    fn name(self) -> &'static str {
        match self {
            Self::Current => "secret",
            Self::Previous => "previous_secret",
        }
    }
}

/// A sealed secret as stored: the master key's id, the nonce and the ciphertext with its tag
/// (base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SealedSecret {
    pub master_key_id: String,
    pub nonce: String,
    pub ciphertext: String,
}

/// A secret as the bucket holds it: sealed (an object), or `whsec_…` in plain text as written
/// before secrets were sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum StoredSecret {
    Sealed(SealedSecret),
    Plain(String),
}

impl StoredSecret {
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self, Self::Plain(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> SecretsKey {
        let master = wasl_vault::LocalMasterKey::from_hex(id, &hex_of(byte)).unwrap();
        SecretsKey::from_master(&master)
    }

    fn hex_of(byte: u8) -> String {
        format!("{byte:02x}").repeat(32)
    }

    fn org(n: u128) -> OrgId {
        OrgId::from_uuid(uuid::Uuid::from_u128(0x0190_b2c4_0000_7000_8000_0000_00f0_0000 + n)).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_where_it_was_sealed() {
        let key = key("test-1", 1);
        let secret = Secret::generate().unwrap();
        let sealed = StoredSecret::Sealed(key.seal(org(1), Slot::Current, &secret).unwrap());
        let text = serde_json::to_string(&sealed).unwrap();
        assert!(!text.contains(&secret.expose()[6..]), "no plain text");
        assert!(text.contains("test-1"), "the master key id is recorded");
        assert_eq!(key.open(org(1), Slot::Current, &sealed, "b").unwrap(), secret);
        assert!(matches!(
            key.open(org(2), Slot::Current, &sealed, "b"),
            Err(WebhookError::Corrupt(_))
        ));
        assert!(matches!(
            key.open(org(1), Slot::Previous, &sealed, "b"),
            Err(WebhookError::Corrupt(_))
        ));
        // The same id with other key bytes, and another id.
        assert!(matches!(
            self::key("test-1", 2).open(org(1), Slot::Current, &sealed, "b"),
            Err(WebhookError::Corrupt(_))
        ));
        assert!(matches!(
            self::key("test-2", 1).open(org(1), Slot::Current, &sealed, "b"),
            Err(WebhookError::WrongMasterKey { .. })
        ));
    }

    #[test]
    fn plain_and_sealed_records_both_read() {
        let secret = Secret::generate().unwrap();
        let plain: StoredSecret = serde_json::from_str(&format!("\"{}\"", secret.expose().as_str())).unwrap();
        assert!(plain.is_plain());
        assert_eq!(
            key("test-1", 1).open(org(1), Slot::Current, &plain, "b").unwrap(),
            secret
        );
        let sealed = StoredSecret::Sealed(key("test-1", 1).seal(org(1), Slot::Current, &secret).unwrap());
        let back: StoredSecret = serde_json::from_str(&serde_json::to_string(&sealed).unwrap()).unwrap();
        assert_eq!(back, sealed);
        assert!(!back.is_plain());
    }
}
