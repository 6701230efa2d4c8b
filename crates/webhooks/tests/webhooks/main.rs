//! Webhooks against a real nats-server and an in-process HTTP receiver on a loopback port.

mod admin;
mod delivery;
mod logs;
mod poison;
mod support;
