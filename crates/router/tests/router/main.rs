//! Integration tests of the router and the partner command service against real nats-servers.

mod commands;
mod feed;
mod log;
mod markers;
mod poison;
mod redaction;
mod support;
