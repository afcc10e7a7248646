//! p-chat's own fan-out benchmark (issue 15): a load generator that sets up
//! rooms and members on a target, sends open-loop at a fixed rate and
//! measures every delivery, and a near-limit reference broadcast server to
//! compare p-chat with on the same machine in the same run.

pub mod error;
pub mod fanout;
pub mod http;
pub mod pchat;
pub mod reference;
pub mod wire;

pub use error::BenchError;
pub use fanout::{FanoutConfig, Report, Target};
