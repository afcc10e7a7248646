//! The ports: every capability the use cases need from the outside world,
//! as traits. Adapters (in-memory, PostgreSQL, bcrypt, JWT) implement them;
//! the services see nothing else.
//!
//! Each trait's documentation states its contract, including which errors it
//! must return when, and the persistence crate's contract suites check every
//! adapter against it.

mod clock;
mod events;
mod fanout;
mod login_throttle;
mod mailer;
mod memberships;
mod messages;
mod password_hasher;
mod resets;
mod rooms;
mod sessions;
mod token_issuer;
mod users;
mod verifications;

pub use clock::{Clock, ManualClock, SystemClock};
pub use events::EventLog;
pub use fanout::{Delivery, FanOut, FanOutStatus, NoFanOut, Shared, Subscriber, Subscription};
pub use login_throttle::{LoginThrottle, NoLoginThrottle, Throttled};
pub use mailer::{Mailer, NoMailer};
pub use memberships::MembershipRepository;
pub use messages::{MessageRepository, Reacted};
pub use password_hasher::{HashError, PasswordHasher};
pub use resets::PasswordResetStore;
pub use rooms::{DirectPeople, OpenedDirect, RoomDetails, RoomRepository};
pub use sessions::SessionRepository;
pub use token_issuer::{TokenError, TokenIssuer};
pub use users::{Anonymisation, InviteStore, Registered, UserQuery, UserRepository};
pub use verifications::VerificationStore;

#[cfg(test)]
pub use {
    events::MockEventLog, login_throttle::MockLoginThrottle, mailer::MockMailer,
    memberships::MockMembershipRepository, messages::MockMessageRepository,
    password_hasher::MockPasswordHasher, resets::MockPasswordResetStore, rooms::MockRoomRepository,
    sessions::MockSessionRepository, token_issuer::MockTokenIssuer, users::MockInviteStore,
    users::MockUserRepository, verifications::MockVerificationStore,
};

/// How a storage adapter fails. Every repository port returns it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write (the port says which rule).
    #[error("a uniqueness constraint refused the write")]
    Duplicate,
    /// The store cannot be reached or timed out; the write did not happen.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Any other failure (a corrupt row, a broken invariant).
    #[error("the store failed: {0}")]
    Failure(String),
}
