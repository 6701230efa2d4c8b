//! Data keys, master keys and wrapping.

use crate::error::VaultError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;
use std::path::Path;
use wasl_domain::ids::CaseId;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A case's 256-bit data key. Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl DataKey {
    /// A fresh random key from the operating system.
    pub fn generate() -> Result<Self, VaultError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| VaultError::Random(e.to_string()))?;
        Ok(Self(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A data key sealed by a master key, as stored in the key bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// Which master key sealed it.
    pub master_key_id: String,
    /// The nonce, hex.
    pub nonce: String,
    /// The sealed key with its tag, hex.
    pub ciphertext: String,
}

/// Seals and opens data keys. Implemented locally by [`LocalMasterKey`]; a cloud KMS can
/// implement it by calling its encrypt/decrypt API.
pub trait MasterKey: Send + Sync {
    /// The key's id, stored with every key it wraps (e.g. `local-2026-11`).
    fn id(&self) -> &str;

    /// Seals `key` for `case`.
    fn wrap(&self, case: CaseId, key: &DataKey) -> impl Future<Output = Result<WrappedKey, VaultError>> + Send;

    /// Opens the key of `case`.
    fn unwrap(&self, case: CaseId, wrapped: &WrappedKey) -> impl Future<Output = Result<DataKey, VaultError>> + Send;
}

/// A master key held in memory, read from a file or an environment variable as 64 hex
/// characters (32 bytes). Generate one with `openssl rand -hex 32` or [`LocalMasterKey::generate`].
pub struct LocalMasterKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for LocalMasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalMasterKey({}, <redacted>)", self.id)
    }
}

impl LocalMasterKey {
    /// A key from its hex form; surrounding white space is ignored.
    pub fn from_hex(id: &str, hex_key: &str) -> Result<Self, VaultError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return Err(VaultError::MasterKey(
                "the key id must be letters, digits or -_.".into(),
            ));
        }
        let text = Zeroizing::new(hex_key.trim().to_owned());
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.as_bytes(), key.as_mut())
            .map_err(|_| VaultError::MasterKey("expected 64 hex characters (32 bytes)".into()))?;
        Ok(Self { id: id.to_owned(), key })
    }

    /// A key read from a file holding its hex form.
    pub fn from_file(id: &str, path: &Path) -> Result<Self, VaultError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| VaultError::MasterKey(format!("cannot read the key file: {e}")))?,
        );
        Self::from_hex(id, &text)
    }

    /// A key read from an environment variable holding its hex form.
    pub fn from_env(id: &str, variable: &str) -> Result<Self, VaultError> {
        let text = Zeroizing::new(
            std::env::var(variable).map_err(|_| VaultError::MasterKey(format!("{variable} is not set")))?,
        );
        Self::from_hex(id, &text)
    }

    /// A fresh random key (for tests, and to print one for an operator).
    pub fn generate(id: &str) -> Result<Self, VaultError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|e| VaultError::Random(e.to_string()))?;
        Self::from_hex(id, &hex::encode(key.as_ref()))
    }

    /// A key for another purpose than wrapping data keys (the audit chain's HMAC key),
    /// derived as HMAC-SHA256(master key, "wasl/derived/v1\0" + purpose): it is as secret as
    /// the master key, lives outside NATS with it, and reveals nothing about it.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        use hmac::{KeyInit as _, Mac as _};
        let mut mac =
            <hmac::Hmac<sha2::Sha256>>::new_from_slice(self.key.as_ref()).expect("HMAC takes a key of any length");
        mac.update(b"wasl/derived/v1\0");
        mac.update(purpose.as_bytes());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    fn aad(&self, case: CaseId) -> Vec<u8> {
        let mut aad = b"wasl/data-key/v1\0".to_vec();
        aad.extend_from_slice(case.as_uuid().as_bytes());
        aad.extend_from_slice(self.id.as_bytes());
        aad
    }
}

impl MasterKey for LocalMasterKey {
    fn id(&self) -> &str {
        &self.id
    }

    async fn wrap(&self, case: CaseId, key: &DataKey) -> Result<WrappedKey, VaultError> {
        let cipher = XChaCha20Poly1305::new(&(*self.key).into());
        let nonce = crate::seal::random_nonce()?;
        let aad = self.aad(case);
        let sealed = cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: &key.0, aad: &aad })
            .map_err(|_| VaultError::MasterKey("sealing the data key failed".into()))?;
        Ok(WrappedKey {
            master_key_id: self.id.clone(),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(sealed),
        })
    }

    async fn unwrap(&self, case: CaseId, wrapped: &WrappedKey) -> Result<DataKey, VaultError> {
        let wrong = || VaultError::WrongMasterKey {
            case: case.to_string(),
            master_key_id: self.id.clone(),
        };
        if wrapped.master_key_id != self.id {
            return Err(wrong());
        }
        let mut nonce = [0u8; 24];
        hex::decode_to_slice(&wrapped.nonce, &mut nonce).map_err(|_| wrong())?;
        let sealed = hex::decode(&wrapped.ciphertext).map_err(|_| wrong())?;
        let cipher = XChaCha20Poly1305::new(&(*self.key).into());
        let aad = self.aad(case);
        let opened = Zeroizing::new(
            cipher
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: &sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| wrong())?,
        );
        if opened.len() != 32 {
            return Err(wrong());
        }
        let mut key = DataKey([0u8; 32]);
        key.0.copy_from_slice(&opened);
        Ok(key)
    }
}

/// A key derived from the master key for one purpose ([`LocalMasterKey::derive`]), named by the
/// master key's id so that what it keyed or sealed says which master key to derive it from: the
/// audit chain's HMAC key, the webhook secrets' sealing key. Its bytes never print.
#[derive(Clone)]
pub struct DerivedKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DerivedKey({}, <redacted>)", self.id)
    }
}

impl DerivedKey {
    /// The key of `master` for `purpose`.
    pub fn from_master(master: &LocalMasterKey, purpose: &str) -> Self {
        Self {
            id: master.id().to_owned(),
            key: master.derive(purpose),
        }
    }

    /// The id of the master key it was derived from.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its bytes, for the HMAC or cipher it keys.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.key
    }
}
