//! The use cases, grouped by area. Each service holds its ports as
//! `Arc<dyn Port>` and is cheap to clone into every request handler.

mod accounts;
mod sessions;

pub use accounts::Accounts;
pub use sessions::{Credentials, Principal, Sessions};
