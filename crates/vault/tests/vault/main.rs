//! The vault against a real nats-server: sealing, authorised reads, erasure down to the bytes on
//! disk, tampering, master-key rotation and retention.

mod erasure;
mod poison;
mod retention;
mod rotation;
mod support;
