//! The generated configuration against a real nats-server: organisations are kept apart, each
//! can still do its own work, the file passes `nats-server -t`, and regenerating keeps every
//! credential.

mod attacks;
mod generate;
mod isolation;
mod own_work;
mod services;
mod support;
