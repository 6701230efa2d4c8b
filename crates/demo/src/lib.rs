//! Wasl's demo data: a clearly synthetic referral network in Iraq — a dozen organisations (UN
//! agencies, international and national NGOs, government services) in seven governorates, their
//! services, local logins for every role, and `days` (90 by default) of cases and referrals
//! ending at the first load, with a realistic mix of outcomes.
//!
//! The network and its plan are the demo's own; what it is made of is `wasl-synth`'s, shared
//! with the synthetic histories: the random source (`wasl_synth::Rng`, seeded with the demo's
//! seed), the clients' profiles (`wasl_synth::profile`) and how referrals and cases turn out
//! (`wasl_synth::outcomes`).
//!
//! Everything goes through Wasl's own command path: accounts through
//! [`Accounts`](wasl_api::auth::accounts::Accounts), personal data sealed by the
//! [`Vault`](wasl_vault::Vault) exactly as the API seals it, and every command decided by the
//! domain and appended by [`EventStore::execute`](wasl_store::EventStore::execute) with the
//! time it would have happened at. Every event is genuine.
//!
//! Loading is idempotent: ids and command ids follow from the seed, so a second run is answered
//! from the log and adds nothing; the window stays anchored at the first load. See
//! `docs/demo-data.md`.

mod ids;
mod load;
mod network;
mod plan;
mod report;

pub use load::load;
pub use report::{DemoLogin, DemoReport};

use std::fmt;
use wasl_api::auth::accounts::{AccountError, Accounts};
use wasl_domain::time::Timestamp;
use wasl_store::{CommandError, EventStore, StoreError};
use wasl_vault::{MasterKey, Vault, VaultError};

/// The Wasl components the demo is loaded through.
pub struct DemoParts<'a, M: MasterKey> {
    /// The event store and command handler.
    pub store: &'a EventStore,
    /// The case keys, to seal personal data.
    pub vault: &'a Vault<M>,
    /// Local accounts, for the demo logins.
    pub accounts: &'a Accounts,
}

/// What to load.
#[derive(Clone, PartialEq, Eq)]
pub struct DemoConfig {
    /// Everything (names aside) follows from the seed: ids, profiles, outcomes, the password.
    /// Use the same seed for every run against the same data.
    pub seed: u64,
    /// How many days of cases and referrals, ending at the anchor.
    pub days: u32,
    /// Now. The first load anchors the window here; later loads find that anchor in the log and
    /// keep it, so they add nothing.
    pub now: Timestamp,
    /// The password of every demo login; by default derived from the seed.
    pub password: Option<String>,
}

impl DemoConfig {
    /// The seed `wasl demo-data` and `wasl up --demo` use unless told otherwise.
    pub const DEFAULT_SEED: u64 = 2026;
    /// The default length of the window.
    pub const DEFAULT_DAYS: u32 = 90;

    /// The default seed and 90 days, ending `now`.
    pub fn new(now: Timestamp) -> Self {
        Self {
            seed: Self::DEFAULT_SEED,
            days: Self::DEFAULT_DAYS,
            now,
            password: None,
        }
    }

    /// The password the demo logins get (or have, when made by an earlier run with this seed).
    pub fn password(&self) -> String {
        self.password.clone().unwrap_or_else(|| ids::password(self.seed))
    }
}

/// The password is left out.
impl fmt::Debug for DemoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoConfig")
            .field("seed", &self.seed)
            .field("days", &self.days)
            .field("now", &self.now)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why the demo could not be loaded. Messages name commands and logins, never personal data.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum DemoError {
    /// A demo login name exists for another organisation or role (not made by the demo, or by
    /// a run with another seed).
    #[error("the login {username} already exists for another organisation or role")]
    LoginTaken {
        /// The login name.
        username: String,
    },
    /// The config cannot be planned (no days).
    #[error("invalid demo configuration: {0}")]
    Config(&'static str),
    /// The account store failed.
    #[error("accounts: {0}")]
    Accounts(#[from] AccountError),
    /// The vault failed.
    #[error("vault: {0}")]
    Vault(#[from] VaultError),
    /// The event store failed.
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    /// A command was refused or could not be stored. Refusals mean the log holds data this
    /// plan does not expect (another seed or window on the same data).
    #[error("demo command {label} failed: {source}")]
    Command {
        /// The command's label in the plan (`cmd/referral/12/accept`).
        label: String,
        #[source]
        source: CommandError,
    },
}
