//! The `wasl` binary (placeholder).
fn main() {}
