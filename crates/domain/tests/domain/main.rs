//! The domain's rules, told as given / when / then, plus property tests that drive random
//! command sequences through the aggregates and check the invariants.

mod case;
mod directory;
mod properties;
mod referral;
mod support;
mod suppression;
mod transitions;
