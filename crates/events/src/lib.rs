//! Event schemas (placeholder while the crate is written).
