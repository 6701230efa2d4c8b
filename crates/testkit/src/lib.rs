//! Real nats-servers for Wasl's tests, never mocks.
//!
//! [`NatsServer`] starts one nats-server with JetStream on free loopback ports and a temporary
//! store; it can be crashed (SIGKILL) and started again on the same store and port to test
//! recovery. [`NatsCluster`] starts a JetStream cluster on loopback (three nodes for R3 streams)
//! whose nodes can be stopped and started one by one. Both kill their processes and remove their
//! temporary directories on `Drop`. [`smtp::SmtpSink`] is an SMTP listener on a free loopback
//! port that records the mail a test's client sends it.
//!
//! The binary is found by [`find_nats_server`] (from `wasl-nats-server`, which `wasl up` uses too): `NATS_SERVER_BIN`, then the project-local
//! `.tools/nats-server-<pinned>/nats-server` that `./scripts/install-nats-server` installs, then
//! `PATH`. Its version must be at least [`MIN_VERSION`] (atomic batch publish); an older one, such
//! as Debian's 2.9, is refused (`wasl_nats_server::Error::TooOld`) rather than used or skipped.
//!
//! The API is synchronous (std only), so it works from plain and async tests alike. Servers are
//! quiet unless `TEST_LOG=1`, which forwards their logs to stderr. Unix only (signals, `PATH`
//! executables). See `docs/testing.md`.
//!
//! ```no_run
//! let server = wasl_testkit::NatsServer::builder().sync_always(true).start()?;
//! println!("connect to {}", server.url());
//! # Ok::<(), wasl_testkit::Error>(())
//! ```

mod cluster;
pub mod db;
mod error;
pub mod files;
mod http;
mod node;
mod server;
pub mod smtp;

pub use cluster::{NatsCluster, NatsClusterBuilder};
pub use error::Error;
pub use http::HttpResponse;
pub use server::{NatsServer, NatsServerBuilder};
pub use wasl_nats_server::{
    MIN_VERSION, NATS_SERVER_BIN, NatsBinary, Version, find_nats_server, installed_binary, pinned_version,
};

/// The environment variable that, set to `1`, forwards the servers' logs to stderr.
pub const TEST_LOG: &str = "TEST_LOG";

/// Shorthand for results whose error is the test kit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
