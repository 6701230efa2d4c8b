//! Backup and restore against real nats-servers: a realistic Wasl on server A, backed up, and
//! restored into a fresh server B.

mod cluster;
mod poison;
mod refusals;
mod round_trip;
mod support;
