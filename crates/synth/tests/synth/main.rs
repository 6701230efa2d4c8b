//! The history generator and the bulk publisher: determinism, genuineness (the domain replays
//! every history to the generator's states), the wire format, and publishing into a real
//! nats-server.

mod history;
mod publish;
