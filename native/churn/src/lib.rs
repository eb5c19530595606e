//! `nettrace bench churn`'s load generator, an addon of its own that only
//! `bench` loads: TCP connections opened and closed by native threads, so the
//! generator costs the same whatever traces it, and JavaScript's own speed
//! never limits the rate being measured.
//!
//! Every connection walks the whole lifecycle: connect, `payload` bytes each
//! way, the server closes first (FIN) and the client closes after seeing it,
//! with RST (SO_LINGER 0) or FIN. The server closing first paces clients to
//! the acceptors (otherwise the accept queue overflows and SYNs wait a second
//! for their retransmit) and leaves no client TIME_WAIT to exhaust ports.

mod errors;
mod histogram;
mod load;
mod run;
mod shared;
mod sockets;
mod threads;
