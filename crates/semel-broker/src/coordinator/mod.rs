//! Coordinators: replayed state machines whose state lives in an internal log.
//!
//! `group` is the classic consumer group coordinator with durable offsets.

pub mod group;
pub(crate) mod internal_log;
pub mod markers;
pub mod txn;
