//! Vault errors. None carries key material or plaintext.

/// What went wrong in the vault.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum VaultError {
    /// The master key is malformed (not 64 hex characters) or cannot be read.
    #[error("the master key is unusable: {0}")]
    MasterKey(String),
    /// A wrapped data key does not open with this master key (wrong or rotated master key, or
    /// the wrapped key was altered).
    #[error("the data key of case {case} does not open with master key {master_key_id}")]
    WrongMasterKey {
        case: String,
        /// The master key tried.
        master_key_id: String,
    },
    /// A sealed value does not open: it was altered, or moved from another case, event or field.
    #[error("a sealed value of case {case} does not open in this place (field {field})")]
    Tampered {
        case: String,
        /// The field it was opened as.
        field: &'static str,
    },
    /// The case's personal data was erased; nothing can be sealed for it any more.
    #[error("the personal data of case {0} was erased")]
    Erased(String),
    /// A sealed value exists but its case has no key and no erasure marker: the key bucket was
    /// lost or restored without this key. Nothing can open the value.
    #[error("case {0} has sealed data but no key and no erasure record; check the key bucket")]
    KeyMissing(String),
    /// The operating system's random source failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// The key store cannot be reached or refused the request.
    #[error("the key store is unavailable: {0}")]
    Unavailable(String),
    /// A stored wrapped key cannot be read.
    #[error("the stored key of case {case} is unreadable: {reason}")]
    Corrupt { case: String, reason: String },
}

impl VaultError {
    pub(crate) fn unavailable(err: impl std::fmt::Display) -> Self {
        Self::Unavailable(err.to_string())
    }
}
