//! The adapters of the domain's [`FanOut`](p_chat_domain::ports::FanOut)
//! port, which the WebSocket gateway delivers room events through:
//!
//! - [`local::Hub`]: one process serves every connection;
//! - [`redis::RedisFanOut`]: several nodes share a Redis server's pub/sub,
//!   each with a [`local::Hub`] for its own connections, and fill what the
//!   bus loses from the event log.
//!
//! [`metrics`] names what they count. The composition root picks one; the gateway sees only the port.

pub mod local;
pub mod metrics;
pub mod redis;
mod sequencer;
#[cfg(test)]
mod test_support;
#[cfg(feature = "test-support")]
pub mod testing;
