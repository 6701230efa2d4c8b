//! The follow-up service against a real nats-server and real databases (SQLite and PostgreSQL),
//! with time moved by a test clock.

mod deadlines;
mod processes;
mod retention;
mod support;
