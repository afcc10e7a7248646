//! # p-chat auth
//!
//! The credential adapters behind two domain ports:
//! - [`JwtIssuer`] implements [`TokenIssuer`](p_chat_domain::ports::TokenIssuer):
//!   HS256 JWTs, with access and refresh tokens told apart by header `typ` and
//!   `scope`, each refused where the other is expected.
//! - [`BcryptHasher`] implements [`PasswordHasher`](p_chat_domain::ports::PasswordHasher):
//!   bcrypt on the blocking thread pool, never on an async worker, timed in
//!   [`BCRYPT_SECONDS`].

mod jwt;
mod password;

pub use jwt::JwtIssuer;
pub use password::{BCRYPT_SECONDS, BcryptHasher, InvalidCost, OPERATION};
