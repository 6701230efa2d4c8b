//! The nats-server Wasl runs itself, for `wasl up`, and the one lookup of the pinned binary
//! ([`find_nats_server`], version-checked) that `wasl up`, the benchmarks and the test kit share.
//!
//! What it guarantees, because a field office's laptop is killed, restarted and loses power:
//! - **One owner per store.** [`StoreLock`] is an exclusive lock on `<data>/wasl.lock`, held for
//!   the life of `wasl up` *and* inherited by the nats-server it starts, so the directory stays
//!   locked until the last process that can write the store has exited. A second `wasl up` (or
//!   one started while an orphaned server is still shutting down) is refused, naming the
//!   processes that hold it.
//! - **The server dies with its owner.** [`Supervised`] starts nats-server with a parent-death
//!   signal (SIGTERM, so it still shuts down cleanly) from a thread that lives as long as the
//!   supervisor, and restarts it when it dies — never while anything else holds its port.
//! - **"Something answers on the port" is not "my server is ready".** Each start gets a fresh
//!   `server_name`; the supervisor waits for a server that introduces itself with that name.
//! - **Durable by default.** The configuration fsyncs every write before it is acknowledged
//!   (`sync_interval: always`) unless the caller explicitly asks otherwise.

mod binary;
mod config;
mod error;
mod lock;
mod procfs;
mod supervise;

pub use binary::{
    MIN_VERSION, NATS_SERVER_BIN, NatsBinary, Version, find_nats_server, installed_binary, pinned_version,
};
pub use config::{ClusterConfig, NATS_DEFAULT_PORT, NatsConfig, free_ports, info_line, server_name};
pub use error::Error;
pub use lock::StoreLock;
pub use procfs::Holder;
pub use supervise::{ServerConfig, Supervised, log_tail};
