//! Genuine synthetic event histories for Wasl's tests, benchmarks and demo data.
//!
//! [`Generator`] plays a synthetic network of organisations for as long as it takes to make the
//! configured number of referrals: caseworkers open cases and record consent, refer clients to
//! other organisations' services, follow up and close; focal points and partner systems receive,
//! accept, decline (redirecting some), deliver, hold and fail; deadlines pass and escalate;
//! coordinators keep the directory. Every event is decided by the domain's own `decide` on the
//! state its `evolve` built, exactly as the command handler would, so a history holds only what
//! Wasl could have recorded. The same [`HistoryConfig`] always gives byte-identical events.
//!
//! [`publish`] writes a history into the event stream the way the store would have stored it,
//! for loading projections and benchmarks quickly.
//!
//! All values are synthetic: organisations are "Synthetic Partner NN", survivor codes are
//! `SYN-NNNNNN`, and personal data are random bytes shaped like sealed values that no key opens.

mod data;
mod generator;
pub mod outcomes;
pub mod profile;
mod publish;
mod rng;

pub use generator::{Generator, HistoryConfig};
pub use publish::{PublishError, Publisher, publish};
pub use rng::Rng;
