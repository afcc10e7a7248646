//! # p-chat persistence
//!
//! Storage adapters implementing the domain's repository ports.
//!
//! - [`memory`]: in-process stores, correct under concurrency, with no
//!   dependency beyond the domain. The server's zero-configuration default,
//!   and a ready fake for any Rust service's tests.

pub mod memory;
