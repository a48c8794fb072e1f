//! The network side: the listener (admission limits), connections (framing, in-order
//! responses, per-connection bounds), the memory pool they share, request dispatch, and one
//! handler module per group of APIs.

mod connection;
pub(crate) mod decompression;
mod dispatch;
mod handlers;
mod listener;
pub(crate) mod memory;
pub mod versions;
mod wire;

pub(crate) use listener::accept_loop;
