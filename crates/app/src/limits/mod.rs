//! Abuse limits (issue #10, docs/security.md): the named rate limits and
//! connection caps the HTTP and WebSocket adapters apply, built once from
//! [`LimitSettings`] and shared through the application state.
//!
//! Rates are governor keyed limiters ([`RateLimit`]); counts of open things
//! are [`Cap`]s with RAII [`Slot`]s. The per-account login budget is a domain
//! policy behind the `LoginThrottle` port; [`GovernorLoginThrottle`] is its
//! adapter. Keyed limiters would grow with every key ever seen: a
//! housekeeping task forgets idle keys every [`HOUSEKEEPING_INTERVAL`].
//!
//! A new endpoint gets its limit by adding a field here (an [`IpLimit`] or
//! an [`IpAndEmailLimit`], from a new `RATE_*` variable in config.rs) and one
//! line in its handler: `state.limits.name.check(ip, &email)?;` with `ip`
//! from the [`ClientIp`](crate::http::client_ip::ClientIp) extractor.

mod caps;
mod login;
mod rate;

use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use p_chat_domain::DomainError;
use p_chat_domain::user::{Email, UserId};
use tokio::sync::watch;

pub use self::caps::{Cap, Slot};
pub use self::login::GovernorLoginThrottle;
pub use self::rate::RateLimit;
use crate::config::{LimitSettings, RateSpec, WsSettings};
use crate::http::client_ip::ClientIp;

/// How often idle keys are dropped from the keyed limiters.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);

/// A rate limit per client IP.
pub type IpLimit = RateLimit<ClientIp>;

/// A rate limit per client IP and, independently, per email: for endpoints
/// that act on an email (registration, and later resend and recovery), so
/// that neither many emails from one address nor one email from many
/// addresses gets through.
pub struct IpAndEmailLimit {
    ip: IpLimit,
    email: RateLimit<Email>,
}

impl IpAndEmailLimit {
    /// Limits of `ip` per client IP and `email` per email.
    pub fn new(ip: RateSpec, email: RateSpec) -> Self {
        Self {
            ip: RateLimit::new(ip),
            email: RateLimit::new(email),
        }
    }

    /// Takes one request from both budgets (the IP's first: a refusal by
    /// IP leaves the email's budget alone).
    pub fn check(&self, ip: ClientIp, email: &Email) -> Result<(), DomainError> {
        self.ip.check(&ip)?;
        self.email.check(email)
    }

    fn forget_idle(&self) {
        self.ip.forget_idle();
        self.email.forget_idle();
    }
}

/// Every limit of the server.
pub struct Limits {
    /// `POST /session/authorize` per client IP (`RATE_LOGIN_IP`).
    pub login_ip: IpLimit,
    /// The per-account login budget (`RATE_LOGIN_ACCOUNT`), handed to
    /// `Sessions::with_throttle`.
    pub login_account: Arc<GovernorLoginThrottle>,
    /// `POST /session/register` (`RATE_REGISTER_IP`, `RATE_REGISTER_EMAIL`).
    pub register: IpAndEmailLimit,
    /// `GET /session/emailVerify` per client IP (`RATE_VERIFY_IP`).
    pub verify_ip: IpLimit,
    /// `forgotPassword` and `resendVerification` (`RATE_RECOVERY_IP`,
    /// `RATE_RECOVERY_EMAIL`).
    pub recovery: IpAndEmailLimit,
    /// `resetPassword` per client IP (`RATE_RECOVERY_IP`).
    pub reset_ip: IpLimit,
    /// Message sends per user, REST and WebSocket together
    /// (`WS_RATE_PER_SECOND`, `WS_RATE_BURST`).
    pub sends: RateLimit<UserId>,
    /// `GET /ws` upgrades per client IP (`RATE_WS_UPGRADE_IP`).
    pub ws_upgrade_ip: IpLimit,
    /// Open authenticated sockets per user (`WS_MAX_CONNECTIONS_PER_USER`).
    pub ws_per_user: Cap<UserId>,
    /// Open sockets not yet authenticated per client IP
    /// (`WS_MAX_UNAUTHENTICATED_PER_IP`).
    pub ws_unauthenticated: Cap<ClientIp>,
}

impl Limits {
    /// Builds every limit from the configuration.
    pub fn new(settings: &LimitSettings, ws: &WsSettings) -> Self {
        Self {
            login_ip: RateLimit::new(settings.login_ip),
            login_account: Arc::new(GovernorLoginThrottle::new(RateLimit::new(
                settings.login_account,
            ))),
            register: IpAndEmailLimit::new(settings.register_ip, settings.register_email),
            verify_ip: RateLimit::new(settings.verify_ip),
            recovery: IpAndEmailLimit::new(settings.recovery_ip, settings.recovery_email),
            reset_ip: RateLimit::new(settings.recovery_ip),
            sends: sends_per_user(ws),
            ws_upgrade_ip: RateLimit::new(settings.ws_upgrade_ip),
            ws_per_user: Cap::new(settings.ws_connections_per_user),
            ws_unauthenticated: Cap::new(settings.ws_unauthenticated_per_ip),
        }
    }

    /// Forgets idle keys in every keyed limiter.
    pub fn forget_idle(&self) {
        self.login_ip.forget_idle();
        self.login_account.forget_idle();
        self.register.forget_idle();
        self.verify_ip.forget_idle();
        self.recovery.forget_idle();
        self.reset_ip.forget_idle();
        self.sends.forget_idle();
        self.ws_upgrade_ip.forget_idle();
    }

    /// Runs [`Limits::forget_idle`] every [`HOUSEKEEPING_INTERVAL`] until the
    /// limits are dropped or the server shuts down.
    pub fn spawn_housekeeping(limits: &Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let limits: Weak<Self> = Arc::downgrade(limits);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
            loop {
                tokio::select! {
                    _ = shutdown.wait_for(|stopping| *stopping) => return,
                    _ = tick.tick() => match limits.upgrade() {
                        Some(limits) => limits.forget_idle(),
                        None => return,
                    },
                }
            }
        });
    }
}

/// The WebSocket frame budget as a per-user send rate: `WS_RATE_BURST` at
/// once, refilled at `WS_RATE_PER_SECOND` (both at least 1, config.rs).
fn sends_per_user(ws: &WsSettings) -> RateLimit<UserId> {
    let at_least_one = |value| NonZeroU32::new(value).unwrap_or(NonZeroU32::MIN);
    RateLimit::per_second(
        at_least_one(ws.rate_per_second),
        at_least_one(ws.rate_burst),
    )
}
