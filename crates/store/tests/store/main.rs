//! The event store against real nats-servers started by the test kit.

mod cluster;
mod concurrency;
mod continuity;
mod crash;
mod handler;
mod provision;
mod subscribe;
mod support;
mod undecodable;
