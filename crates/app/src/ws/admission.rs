//! Who may hold an open socket (docs/security.md): upgrades are rate limited
//! per client IP, a socket that has not authenticated yet holds one of its
//! IP's few unauthenticated slots, and an authenticated one holds one of its
//! user's connection slots. Slots are RAII: they are given back when the
//! socket authenticates (the unauthenticated one) or its task ends.

use std::sync::Arc;

use p_chat_domain::user::UserId;

use crate::http::client_ip::ClientIp;
use crate::http::error::ApiError;
use crate::limits::{Limits, Slot};

/// Close code for a socket whose user already has the most open
/// connections allowed (`WS_MAX_CONNECTIONS_PER_USER`), when it
/// authenticated with its first `auth` frame (4000 + HTTP's 429).
pub const CLOSE_TOO_MANY_CONNECTIONS: u16 = 4029;

/// The user already has the most open connections allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many open connections for this user")]
pub struct TooManyConnections;

/// The slots one socket holds.
pub struct Admission {
    limits: Arc<Limits>,
    unauthenticated: Option<Slot<ClientIp>>,
    user: Option<Slot<UserId>>,
}

impl Admission {
    /// Admits an upgrade from `ip` past its rate limit, before anything is known of
    /// its user.
    pub fn upgrade(limits: Arc<Limits>, ip: ClientIp) -> Result<Self, ApiError> {
        limits.ws_upgrade_ip.check(&ip)?;
        Ok(Self {
            limits,
            unauthenticated: None,
            user: None,
        })
    }

    /// Holds one of `ip`'s slots for sockets that have not authenticated yet.
    pub fn hold_unauthenticated(&mut self, ip: ClientIp) -> Result<(), ApiError> {
        let slot = self
            .limits
            .ws_unauthenticated
            .try_acquire(&ip)
            .ok_or(ApiError::TooManyConnections)?;
        self.unauthenticated = Some(slot);
        Ok(())
    }

    /// Counts the socket as one of `user`'s connections (a no-op when it
    /// already is) and gives back its unauthenticated slot.
    pub fn admit(&mut self, user: UserId) -> Result<(), TooManyConnections> {
        if self.user.as_ref().is_none_or(|slot| *slot.key() != user) {
            let slot = self
                .limits
                .ws_per_user
                .try_acquire(&user)
                .ok_or(TooManyConnections)?;
            self.user = Some(slot);
        }
        self.unauthenticated = None;
        Ok(())
    }
}
