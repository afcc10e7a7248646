//! The use cases, grouped by area. Each service holds its ports as
//! `Arc<dyn Port>` and is cheap to clone into every request handler.

mod access;
mod accounts;
mod admin;
#[cfg(test)]
mod fakes;
mod messaging;
mod people;
mod recovery;
mod rooms;
mod sessions;

pub use access::{Access, RoomAccess};
pub use accounts::{Accounts, PasswordChange, Registration};
pub use admin::{Admin, IssuedInvite, Operator};
pub use messaging::Messaging;
pub use people::People;
pub use recovery::{Recovery, RecoveryPorts};
pub use rooms::{NewRoom, RoomChanges, Rooms, UserRef};
pub use sessions::{Credentials, Principal, Sessions};
