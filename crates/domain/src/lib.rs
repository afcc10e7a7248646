//! # p-chat domain
//!
//! The rules of p-chat, free of any framework: who a user is, how a login
//! session and its tokens behave, and the use cases built on them. Storage,
//! password hashing, token signing and time are reached only through the
//! traits in [`ports`], so any Rust service can reuse these rules with its own
//! adapters, or with the ones in `p-chat-persistence` and `p-chat-auth`.
//!
//! - [`user`], [`session`], [`verification`], [`registration`], [`recovery`],
//!   [`token`], [`room`], [`message`], [`reaction`], [`read`], [`search`],
//!   [`presence`], [`mail`]: the values, parsed on
//!   construction (a value that exists is valid).
//! - [`permissions`]: who may do what in a room.
//! - [`ports`]: what the use cases need from the outside world.
//! - [`services`]: the use cases ([`services::Accounts`], [`services::Sessions`],
//!   [`services::Rooms`], [`services::Messaging`], [`services::Admin`]).
//! - [`error`]: how a use case fails ([`DomainError`]).
//!
//! ## Example: register, verify and log in with in-memory adapters
//!
//! ```
//! use std::sync::Arc;
//!
//! use p_chat_auth::{BcryptHasher, JwtIssuer};
//! use p_chat_domain::ports::SystemClock;
//! use p_chat_domain::services::{Accounts, Credentials, Registration, Sessions};
//! use p_chat_domain::session::{LoginContext, SessionPolicy};
//! use p_chat_domain::user::{Email, PasswordDigest};
//! use p_chat_domain::verification::VerificationPolicy;
//! use p_chat_persistence::memory::{MemoryAccounts, MemoryChat, MemorySessions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryAccounts::new(&MemoryChat::default());
//! let users = Arc::new(store.users());
//! let hasher = Arc::new(BcryptHasher::new(4)?);
//! let issuer = Arc::new(JwtIssuer::new(b"an example secret of 32+ bytes!!"));
//! let sessions = Sessions::new(
//!     users.clone(),
//!     Arc::new(MemorySessions::default()),
//!     hasher.clone(),
//!     issuer,
//!     Arc::new(SystemClock),
//!     SessionPolicy::default(),
//! );
//! let accounts = Accounts::new(
//!     users,
//!     Arc::new(store.verifications()),
//!     hasher,
//!     Arc::new(SystemClock),
//!     sessions.clone(),
//!     VerificationPolicy::default(),
//! );
//!
//! // Clients send the SHA-256 of the password, never the password itself.
//! let credentials = Credentials {
//!     email: Email::parse("  Ada@Example.com ")?,
//!     password: PasswordDigest::parse(
//!         "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
//!     )?,
//! };
//! let registration = Registration {
//!     credentials: credentials.clone(),
//!     invite: None,
//! };
//! // Without a mailer the token comes back to the caller (the seed's behaviour).
//! let verification = accounts
//!     .register(&registration)
//!     .await?
//!     .ok_or("a mailer would have mailed the token")?;
//! let context = LoginContext::default();
//! accounts.verify_email(verification.expose(), &context).await?;
//!
//! let tokens = sessions.authorize(&credentials, &context).await?;
//! let principal = sessions.authenticate(&tokens.access_token).await?;
//! let me = accounts.profile(principal.user_id).await?;
//! assert_eq!(me.email.as_str(), "ada@example.com");
//! # Ok(())
//! # }
//! ```

pub mod error;
pub mod events;
mod id;
pub mod mail;
pub mod message;
pub mod permissions;
pub mod ports;
pub mod position;
pub mod presence;
pub mod reaction;
pub mod read;
pub mod recovery;
pub mod registration;
pub mod room;
pub mod search;
pub mod services;
pub mod session;
pub mod token;
pub mod user;
pub mod verification;

pub use error::DomainError;
