//! Wasl's key vault: personal data is sealed per case, and erased by destroying the case's key.
//!
//! - [`keys`]: a random 256-bit [`DataKey`](keys::DataKey) per case, wrapped by a
//!   [`MasterKey`](keys::MasterKey) (today [`LocalMasterKey`](keys::LocalMasterKey) from a file or
//!   an environment variable; a cloud KMS can implement the same trait). Keys are zeroized on drop.
//! - [`seal`]: XChaCha20-Poly1305 with a random 192-bit nonce; the associated data binds the case,
//!   the event id and the field, so a ciphertext moved to another case, event or field does not
//!   decrypt.
//! - [`Vault`]: wrapped keys in the JetStream KV bucket `WASL_KEYS` (history 1, file storage, the
//!   events' replication); a short-lived in-memory cache; erasure (secure erase of the stored key
//!   plus a purge marker, so the key can never be recreated); master-key rotation.
//! - [`identifying`]: the profile's survivor code, exact age and vulnerabilities, sealed, and the
//!   survivor code's keyed hash for lookups.
//! - [`erase`]: the erasure command path and the retention job.
//!
//! Why a KV bucket and not SQL: [ADR 0004](../../../docs/adr/0004-data-keys-in-a-jetstream-kv-bucket.md).

pub mod erase;
pub mod error;
pub mod identifying;
pub mod keys;
pub mod seal;
mod vault;

pub use error::VaultError;
pub use keys::{DataKey, DerivedKey, LocalMasterKey, MasterKey};
pub use seal::{PiiField, Revealed};
pub use vault::{KeyState, RotationReport, Vault, VaultConfig};
