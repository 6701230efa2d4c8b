//! The API's tests, over real HTTP against a real nats-server and both read-model databases.

mod support;

mod account_poison;
mod accounts;
mod audit;
mod closed_loop;
mod dashboard;
mod examples;
mod limits;
mod markers;
mod matrix;
mod need_to_know;
mod notifications;
mod oidc;
mod openapi;
mod privilege;
mod promises;
mod semantics;
mod sessions;
