//! Webhooks against a real nats-server and an in-process HTTP receiver on a loopback port
//! (allowed explicitly: by default webhooks go to public addresses only).

mod admin;
mod delivery;
mod logs;
mod poison;
mod security;
mod support;
