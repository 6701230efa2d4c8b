//! The notification service against a real nats-server, real databases (SQLite and
//! PostgreSQL) and the test kit's SMTP sink.

mod mail;
mod support;
