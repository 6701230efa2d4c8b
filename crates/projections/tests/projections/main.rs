//! Integration tests of the read models, each on SQLite and on PostgreSQL.

mod continuity;
mod dashboard;
mod log;
mod projector;
mod queries;
mod support;
mod world;
