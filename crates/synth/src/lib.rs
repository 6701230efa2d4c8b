//! Wasl's synthetic data: genuine event histories for tests and benchmarks, and the one model
//! of synthetic clients and outcomes that the demo network (`wasl-demo`) draws from too.
//!
//! [`Generator`] plays a synthetic network of organisations for as long as it takes to make the
//! configured number of referrals: caseworkers open cases and record consent, refer clients to
//! other organisations' services, hand cases over (the previous caseworker keeps a share until
//! the case closes), follow up and close; focal points and partner systems receive,
//! accept, decline (redirecting some), deliver, hold and fail; deadlines pass and escalate;
//! coordinators keep the directory. Every event is decided by the domain's own `decide` on the
//! state its `evolve` built, exactly as the command handler would, so a history holds only what
//! Wasl could have recorded. The same [`HistoryConfig`] always gives byte-identical events.
//!
//! [`publish`] and [`Publisher`] write a history into the event stream the way the store would
//! have stored it, at once or paced, for loading projections and benchmarks quickly.
//!
//! What both the histories and the demo are made of lives here once: [`Rng`], the one
//! deterministic random source (chances in per mille); [`profile`], who the clients are (a
//! profile plausible for where they live); [`outcomes`], how referrals and cases turn out (what
//! happens next from each status, with weights, and the reasons and follow-ups). The demo plans
//! its own network and loads it through the command path; it takes its randomness and this
//! vocabulary from here.
//!
//! All values are synthetic: the histories' organisations are "Synthetic Partner NN", their
//! survivor codes `SYN-NNNNNN`, and their personal data random bytes shaped like sealed values
//! that no key opens.

mod data;
mod generator;
#[cfg(feature = "testing")]
pub mod network;
pub mod outcomes;
pub mod profile;
mod publish;
mod rng;

pub use generator::{Generator, HistoryConfig, history_with_a_waiting_referral};
pub use publish::{PublishError, Publisher, publish};
pub use rng::Rng;
