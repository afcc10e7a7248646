//! Configuration: environment variables, optionally from a `.env` file, read
//! once at start-up into one typed [`Config`]. A bad value stops start-up with
//! a message naming the variable.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use chrono::TimeDelta;
use lettre::message::Mailbox;
use lettre::transport::smtp::client::TlsParameters;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use p_chat_domain::recovery::ResetPolicy;
use p_chat_domain::registration::RegistrationMode;
use p_chat_domain::session::SessionPolicy;
use p_chat_domain::verification::VerificationPolicy;
use p_chat_fanout::redis::{ChannelPrefix, PREFIX_RULE, RedisUrl};
use p_chat_persistence::postgres::{PgConfig, PgRoots, PgTls, RootCertError};

use crate::http::client_ip::TrustedProxies;
use crate::telemetry::LogFormat;

/// The placeholder `JWT_SECRET` of the seed's `.env.example`; never a real secret.
pub const PLACEHOLDER_SECRET: &str = "your-secret-key-here";

/// The shortest `JWT_SECRET` considered strong (256 bits, HS256's key size).
pub const MIN_SECRET_BYTES: usize = 32;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable holds a value that cannot be used.
    #[error("invalid {var}={value:?}: {expected}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// The value found (never a secret's value).
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The `.env` file exists but cannot be read or parsed.
    #[error("cannot read .env: {0}")]
    DotEnv(String),
    /// The environment could not be collected.
    #[error("cannot read the environment: {0}")]
    Source(#[from] config::ConfigError),
    /// No `JWT_SECRET` is set and the system could not generate one.
    #[error("JWT_SECRET is not set and no random secret could be generated: {0}")]
    NoRandomSecret(String),
    /// A variable that must be set in this mode is not.
    #[error("{var} must be set: {why}")]
    Missing {
        /// The variable's name.
        var: &'static str,
        /// Why it is needed.
        why: &'static str,
    },
    /// Two variables that exclude each other are both set.
    #[error("{var} cannot be combined with {with}: {why}")]
    Conflict {
        /// The variable that must go.
        var: &'static str,
        /// The one it conflicts with.
        with: &'static str,
        /// How to resolve it.
        why: &'static str,
    },
    /// `REDIS_URL` is not a Redis URL. The value is not repeated: it may
    /// hold a password.
    #[error("invalid REDIS_URL (value not shown: it may hold a password): {0}")]
    RedisUrl(String),
    /// `JWT_SECRET` is too weak to protect persistent accounts.
    #[error(
        "JWT_SECRET must be a random value of at least {MIN_SECRET_BYTES} bytes when PSQL_HOST is \
         set (it is missing, the placeholder, or too short); try `openssl rand -hex 32`"
    )]
    WeakSecret,
    /// `PSQL_SSLROOTCERT` names a file that cannot serve as root certificates.
    #[error("invalid PSQL_SSLROOTCERT={path:?}: {reason}")]
    RootCert {
        /// The configured path.
        path: String,
        /// What is wrong with the file.
        reason: RootCertError,
    },
}

/// Where the JWT signing secret comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum JwtSecret {
    /// `JWT_SECRET` as configured.
    Configured(Vec<u8>),
    /// None configured: a random secret for this process only (in-memory mode).
    Generated(Vec<u8>),
}

impl JwtSecret {
    /// The key bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Configured(bytes) | Self::Generated(bytes) => bytes,
        }
    }

    /// Whether the configured secret is the placeholder or shorter than
    /// [`MIN_SECRET_BYTES`].
    pub fn is_weak(&self) -> bool {
        let bytes = self.bytes();
        bytes == PLACEHOLDER_SECRET.as_bytes() || bytes.len() < MIN_SECRET_BYTES
    }
}

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Configured(_) => f.write_str("JwtSecret::Configured(<redacted>)"),
            Self::Generated(_) => f.write_str("JwtSecret::Generated(<redacted>)"),
        }
    }
}

/// Where accounts and sessions are kept.
#[derive(Debug, Clone)]
pub enum Storage {
    /// In process memory: nothing survives a restart (`PSQL_HOST` unset).
    InMemory,
    /// PostgreSQL (`PSQL_HOST` set).
    Postgres(PgConfig),
}

/// The fan-out across nodes (`REDIS_URL`, `REDIS_PREFIX`).
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `REDIS_URL`: the Redis server the nodes share.
    pub url: RedisUrl,
    /// `REDIS_PREFIX`: the prefix of this deployment's channel names
    /// (default `p-chat`).
    pub prefix: ChannelPrefix,
}

/// WebSocket gateway settings (`ALLOWED_ORIGINS`, `WS_*`).
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// `ALLOWED_ORIGINS`: browser origins allowed to connect; `None`: only
    /// the server's own.
    pub allowed_origins: Option<Vec<String>>,
    /// `WS_RATE_PER_SECOND`: sustained client frames per second.
    pub rate_per_second: u32,
    /// `WS_RATE_BURST`: client frames allowed in a burst.
    pub rate_burst: u32,
    /// `WS_QUEUE_CAPACITY`: events queued for a connection before it counts as too slow.
    pub queue_capacity: usize,
    /// `WS_PING_INTERVAL_SECONDS`: how often the server pings.
    pub ping_interval: Duration,
    /// `WS_IDLE_TIMEOUT_SECONDS`: silence after which a connection is closed.
    pub idle_timeout: Duration,
}

/// A rate: `count` requests at once, the budget refilling evenly over `per`
/// (written `count/period` with `s`, `m` or `h`: `10/15m` lets 10 through
/// at once and one more every 90 seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    /// The burst: how many requests fit in a full budget.
    pub count: std::num::NonZeroU32,
    /// How long an empty budget takes to refill completely.
    pub per: Duration,
}

impl FromStr for RateSpec {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (count, period) = text.trim().split_once('/').ok_or(())?;
        let count: u32 = count.trim().parse().map_err(|_| ())?;
        let period = period.trim();
        let unit = match period.chars().last().ok_or(())? {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(()),
        };
        let amount: u64 = period[..period.len() - 1].parse().map_err(|_| ())?;
        let per = Duration::from_secs(amount.checked_mul(unit).ok_or(())?);
        if !(1..=MAX_RATE_COUNT).contains(&count) || per.is_zero() || per > MAX_RATE_PERIOD {
            return Err(());
        }
        Ok(Self {
            count: std::num::NonZeroU32::new(count).ok_or(())?,
            per,
        })
    }
}

/// The largest burst a [`RateSpec`] may allow.
const MAX_RATE_COUNT: u32 = 1_000_000;
/// The longest refill period a [`RateSpec`] may have (a day).
const MAX_RATE_PERIOD: Duration = Duration::from_secs(24 * 3600);
/// What a bad `RATE_*` value is told it should look like.
const RATE_EXPECTED: &str =
    "COUNT/PERIOD with PERIOD in s, m or h (e.g. 10/15m), at most 1000000 per up to 24h";

/// Abuse limits (`RATE_*`, `WS_MAX_*`; docs/security.md). Each rate is per
/// client IP, per account or per email as its name says.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// `RATE_LOGIN_IP`: `POST /session/authorize` per client IP.
    pub login_ip: RateSpec,
    /// `RATE_LOGIN_ACCOUNT`: login budget per email; an attempt costs 1, a
    /// failed one 2.
    pub login_account: RateSpec,
    /// `RATE_REGISTER_IP`: `POST /session/register` per client IP.
    pub register_ip: RateSpec,
    /// `RATE_REGISTER_EMAIL`: `POST /session/register` per email.
    pub register_email: RateSpec,
    /// `RATE_VERIFY_IP`: `GET /session/emailVerify` per client IP.
    pub verify_ip: RateSpec,
    /// `RATE_WS_UPGRADE_IP`: `GET /ws` upgrades per client IP.
    pub ws_upgrade_ip: RateSpec,
    /// `RATE_RECOVERY_IP`: `POST /session/forgotPassword` and
    /// `/session/resendVerification` together per client IP, and
    /// `/session/resetPassword` per client IP.
    pub recovery_ip: RateSpec,
    /// `RATE_RECOVERY_EMAIL`: `forgotPassword` and `resendVerification`
    /// together per email (each may send a mail to that address).
    pub recovery_email: RateSpec,
    /// `WS_MAX_CONNECTIONS_PER_USER`: open authenticated sockets per user.
    pub ws_connections_per_user: u32,
    /// `WS_MAX_UNAUTHENTICATED_PER_IP`: open sockets per client IP that have
    /// not authenticated yet.
    pub ws_unauthenticated_per_ip: u32,
}

/// Every `RATE_*` default, written once (docs/security.md lists them).
pub mod rate_defaults {
    /// `RATE_LOGIN_IP`.
    pub const LOGIN_IP: &str = "30/10m";
    /// `RATE_LOGIN_ACCOUNT`: 5 failures per 15 minutes, then 429.
    pub const LOGIN_ACCOUNT: &str = "10/15m";
    /// `RATE_REGISTER_IP`.
    pub const REGISTER_IP: &str = "10/1h";
    /// `RATE_REGISTER_EMAIL`.
    pub const REGISTER_EMAIL: &str = "3/1h";
    /// `RATE_VERIFY_IP`.
    pub const VERIFY_IP: &str = "30/10m";
    /// `RATE_WS_UPGRADE_IP`.
    pub const WS_UPGRADE_IP: &str = "60/1m";
    /// `RATE_RECOVERY_IP`.
    pub const RECOVERY_IP: &str = "10/1h";
    /// `RATE_RECOVERY_EMAIL`: a few mails per address and hour, no more.
    pub const RECOVERY_EMAIL: &str = "3/1h";
    /// `WS_MAX_CONNECTIONS_PER_USER`.
    pub const WS_CONNECTIONS_PER_USER: u32 = 20;
    /// `WS_MAX_UNAUTHENTICATED_PER_IP`.
    pub const WS_UNAUTHENTICATED_PER_IP: u32 = 10;
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDRESS`: the interface to listen on (default `127.0.0.1`).
    pub bind_address: IpAddr,
    /// `PORT`: the TCP port (default 8080; 0 picks a free one).
    pub port: u16,
    /// `JWT_SECRET`: the HS256 signing key.
    pub jwt_secret: JwtSecret,
    /// `ACCESS_TOKEN_SESSION_MINUTES` and `REFRESH_TOKEN_SESSION_HOURS`.
    pub session: SessionPolicy,
    /// `EMAIL_VERIFICATION_TTL_HOURS`.
    pub verification: VerificationPolicy,
    /// `REGISTRATION`: who may register (default `open`).
    pub registration: RegistrationMode,
    /// `PASSWORD_RESET_TTL_MINUTES`: how long a reset link works (default 30).
    pub reset: ResetPolicy,
    /// `EVENT_RETENTION_DAYS`: how long room events stay replayable
    /// (default 30; messages themselves stay in history).
    pub event_retention: TimeDelta,
    /// `BCRYPT_COST` (default 12; 4 only for tests).
    pub bcrypt_cost: u32,
    /// `PRESENCE_GRACE_MS`: how long after a user's last connection closes
    /// they are announced offline, unless one opens meanwhile (default
    /// 5000).
    pub presence_grace: Duration,
    /// `PSQL_*`: the store.
    pub storage: Storage,
    /// The WebSocket gateway's settings.
    pub ws: WsSettings,
    /// `REDIS_*`: the fan-out across nodes; `None` (no `REDIS_URL`): this
    /// process alone serves every connection.
    pub redis: Option<RedisSettings>,
    /// `TRUSTED_PROXIES`: whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// The abuse limits.
    pub limits: LimitSettings,
    /// `LOG_FORMAT`: `text` (default) or `json`, one object per line.
    pub log_format: LogFormat,
    /// `SMTP_*` and `PUBLIC_URL`: outgoing mail; `None` when neither
    /// `SMTP_URL` nor `SMTP_HOST` is set (registration then returns the
    /// verification token, as the seed does).
    pub mail: Option<MailSettings>,
    /// `METRICS_*`: the Prometheus listener; `None` (no `METRICS_ADDRESS`):
    /// no metrics are kept or served.
    pub metrics: Option<MetricsSettings>,
}

impl Config {
    /// Reads `.env` (if present) into the environment, then the environment.
    pub fn load() -> Result<Self, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(error) if error.not_found() => {}
            Err(error) => return Err(ConfigError::DotEnv(error.to_string())),
        }
        Self::from_source(config::Environment::default())
    }

    /// Reads the configuration from the given variables only (for tests and
    /// embedding), ignoring the process environment.
    pub fn from_vars(vars: HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_source(config::Environment::default().source(Some(vars)))
    }

    fn from_source(source: config::Environment) -> Result<Self, ConfigError> {
        let vars = Vars(config::Config::builder().add_source(source).build()?);
        let storage = match vars.get("PSQL_HOST") {
            Some(host) => Storage::Postgres(postgres(&vars, host)?),
            None => Storage::InMemory,
        };
        let jwt_secret = match vars.get("JWT_SECRET") {
            Some(secret) => JwtSecret::Configured(secret.into_bytes()),
            None => JwtSecret::Generated(random_secret()?),
        };
        // Persistent accounts outlive the process: their tokens need a real key.
        if matches!(storage, Storage::Postgres(_))
            && (jwt_secret.is_weak() || matches!(jwt_secret, JwtSecret::Generated(_)))
        {
            return Err(ConfigError::WeakSecret);
        }
        let redis = redis(&vars)?;
        if redis.is_some() && matches!(storage, Storage::InMemory) {
            return Err(ConfigError::Missing {
                var: "PSQL_HOST",
                why: "REDIS_URL is set: the nodes of a deployment share one PostgreSQL database \
                      (the in-memory store belongs to one process)",
            });
        }
        Ok(Self {
            bind_address: vars.parse("BIND_ADDRESS", "an IP address", "127.0.0.1".parse().ok())?,
            port: vars.parse("PORT", "a TCP port number (0-65535)", Some(8080))?,
            jwt_secret,
            session: SessionPolicy {
                access_ttl: vars.duration(
                    "ACCESS_TOKEN_SESSION_MINUTES",
                    TimeDelta::minutes,
                    15,
                )?,
                refresh_ttl: vars.duration("REFRESH_TOKEN_SESSION_HOURS", TimeDelta::hours, 1)?,
            },
            verification: VerificationPolicy {
                ttl: vars.duration("EMAIL_VERIFICATION_TTL_HOURS", TimeDelta::hours, 24)?,
            },
            registration: registration(&vars)?,
            reset: ResetPolicy {
                ttl: vars.duration("PASSWORD_RESET_TTL_MINUTES", TimeDelta::minutes, 30)?,
            },
            event_retention: vars.duration("EVENT_RETENTION_DAYS", TimeDelta::days, 30)?,
            bcrypt_cost: vars.bounded("BCRYPT_COST", 4..=31, "an integer from 4 to 31", 12)?,
            presence_grace: Duration::from_millis(u64::from(vars.bounded(
                "PRESENCE_GRACE_MS",
                0..=PRESENCE_GRACE_MAX_MS,
                "a whole number of milliseconds from 0 to 600000",
                PRESENCE_GRACE_DEFAULT_MS,
            )?)),
            storage,
            ws: ws(&vars)?,
            redis,
            trusted_proxies: trusted_proxies(&vars)?,
            limits: limits(&vars)?,
            mail: mail(&vars)?,
            log_format: vars.parse("LOG_FORMAT", "text or json", Some(LogFormat::Text))?,
            metrics: metrics(&vars)?,
        })
    }
}

/// `PRESENCE_GRACE_MS` when unset: long enough for a client to reconnect
/// after a network blip or a node restart.
const PRESENCE_GRACE_DEFAULT_MS: u32 = 5_000;
/// The longest `PRESENCE_GRACE_MS` (ten minutes): past that a closed
/// client would be shown online for too long.
const PRESENCE_GRACE_MAX_MS: u32 = 600_000;

/// The collected variables, looked up by their upper-case names.
struct Vars(config::Config);

impl Vars {
    /// The variable's value; empty counts as unset (as in the seed's `PSQL_HOST=`).
    fn get(&self, name: &'static str) -> Option<String> {
        self.0
            .get_string(&name.to_ascii_lowercase())
            .ok()
            .filter(|value| !value.trim().is_empty())
    }

    fn parse<T: FromStr>(
        &self,
        var: &'static str,
        expected: &'static str,
        default: Option<T>,
    ) -> Result<T, ConfigError> {
        let invalid = |value: String| ConfigError::Invalid {
            var,
            value,
            expected,
        };
        match self.get(var) {
            Some(value) => value.trim().parse().map_err(|_| invalid(value)),
            None => default.ok_or_else(|| invalid(String::new())),
        }
    }

    fn bounded(
        &self,
        var: &'static str,
        range: std::ops::RangeInclusive<u32>,
        expected: &'static str,
        default: u32,
    ) -> Result<u32, ConfigError> {
        let value = self.parse(var, expected, Some(default))?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::Invalid {
                var,
                value: value.to_string(),
                expected,
            })
        }
    }

    fn rate(&self, var: &'static str, default: &'static str) -> Result<RateSpec, ConfigError> {
        let value = self.get(var).unwrap_or_else(|| default.to_owned());
        value.parse().map_err(|()| ConfigError::Invalid {
            var,
            value,
            expected: RATE_EXPECTED,
        })
    }

    fn duration(
        &self,
        var: &'static str,
        unit: fn(i64) -> TimeDelta,
        default: u32,
    ) -> Result<TimeDelta, ConfigError> {
        let amount = self.bounded(
            var,
            1..=1_000_000,
            "a whole number from 1 to 1000000",
            default,
        )?;
        Ok(unit(i64::from(amount)))
    }
}

fn registration(vars: &Vars) -> Result<RegistrationMode, ConfigError> {
    match vars.get("REGISTRATION") {
        None => Ok(RegistrationMode::default()),
        Some(value) => RegistrationMode::parse(&value).ok_or(ConfigError::Invalid {
            var: "REGISTRATION",
            value,
            expected: "open, invite or closed",
        }),
    }
}

fn ws(vars: &Vars) -> Result<WsSettings, ConfigError> {
    let seconds = |var, default| -> Result<Duration, ConfigError> {
        let value = vars.bounded(
            var,
            1..=3600,
            "a whole number of seconds from 1 to 3600",
            default,
        )?;
        Ok(Duration::from_secs(u64::from(value)))
    };
    let allowed_origins = vars.get("ALLOWED_ORIGINS").map(|list| {
        list.split(',')
            .map(|origin| origin.trim().trim_end_matches('/').to_owned())
            .filter(|origin| !origin.is_empty())
            .collect()
    });
    Ok(WsSettings {
        allowed_origins,
        rate_per_second: vars.bounded(
            "WS_RATE_PER_SECOND",
            1..=10_000,
            "an integer from 1 to 10000",
            20,
        )?,
        rate_burst: vars.bounded(
            "WS_RATE_BURST",
            1..=10_000,
            "an integer from 1 to 10000",
            60,
        )?,
        queue_capacity: vars.bounded(
            "WS_QUEUE_CAPACITY",
            1..=100_000,
            "an integer from 1 to 100000",
            256,
        )? as usize,
        ping_interval: seconds("WS_PING_INTERVAL_SECONDS", 15)?,
        idle_timeout: seconds("WS_IDLE_TIMEOUT_SECONDS", 45)?,
    })
}

fn redis(vars: &Vars) -> Result<Option<RedisSettings>, ConfigError> {
    let Some(url) = vars.get("REDIS_URL") else {
        return Ok(None);
    };
    let url = RedisUrl::parse(&url).map_err(|error| ConfigError::RedisUrl(error.to_string()))?;
    let prefix = match vars.get("REDIS_PREFIX") {
        Some(prefix) => ChannelPrefix::parse(&prefix).map_err(|_| ConfigError::Invalid {
            var: "REDIS_PREFIX",
            value: prefix,
            expected: PREFIX_RULE,
        })?,
        None => ChannelPrefix::default(),
    };
    Ok(Some(RedisSettings { url, prefix }))
}

fn trusted_proxies(vars: &Vars) -> Result<TrustedProxies, ConfigError> {
    let list = vars.get("TRUSTED_PROXIES").unwrap_or_default();
    TrustedProxies::parse_list(&list).map_err(|_| ConfigError::Invalid {
        var: "TRUSTED_PROXIES",
        value: list,
        expected: "a comma-separated list of IP addresses or CIDR networks",
    })
}

fn limits(vars: &Vars) -> Result<LimitSettings, ConfigError> {
    let count =
        |var, default| vars.bounded(var, 1..=100_000, "an integer from 1 to 100000", default);
    Ok(LimitSettings {
        login_ip: vars.rate("RATE_LOGIN_IP", rate_defaults::LOGIN_IP)?,
        login_account: vars.rate("RATE_LOGIN_ACCOUNT", rate_defaults::LOGIN_ACCOUNT)?,
        register_ip: vars.rate("RATE_REGISTER_IP", rate_defaults::REGISTER_IP)?,
        register_email: vars.rate("RATE_REGISTER_EMAIL", rate_defaults::REGISTER_EMAIL)?,
        verify_ip: vars.rate("RATE_VERIFY_IP", rate_defaults::VERIFY_IP)?,
        ws_upgrade_ip: vars.rate("RATE_WS_UPGRADE_IP", rate_defaults::WS_UPGRADE_IP)?,
        recovery_ip: vars.rate("RATE_RECOVERY_IP", rate_defaults::RECOVERY_IP)?,
        recovery_email: vars.rate("RATE_RECOVERY_EMAIL", rate_defaults::RECOVERY_EMAIL)?,
        ws_connections_per_user: count(
            "WS_MAX_CONNECTIONS_PER_USER",
            rate_defaults::WS_CONNECTIONS_PER_USER,
        )?,
        ws_unauthenticated_per_ip: count(
            "WS_MAX_UNAUTHENTICATED_PER_IP",
            rate_defaults::WS_UNAUTHENTICATED_PER_IP,
        )?,
    })
}

/// The PostgreSQL settings, once `PSQL_HOST` is known to be set.
fn postgres(vars: &Vars, host: String) -> Result<PgConfig, ConfigError> {
    let required = |var: &'static str| {
        vars.get(var).ok_or(ConfigError::Missing {
            var,
            why: "PSQL_HOST is set, so p-chat stores its data in PostgreSQL",
        })
    };
    Ok(PgConfig {
        host,
        port: vars.parse("PSQL_PORT", "a TCP port number (1-65535)", Some(5432))?,
        user: required("PSQL_USER")?,
        password: vars.get("PSQL_PASSWORD"),
        database: required("PSQL_DB")?,
        pool_size: vars.bounded("PSQL_POOL_SIZE", 1..=1000, "an integer from 1 to 1000", 16)?
            as usize,
        timeout: Duration::from_secs(u64::from(vars.bounded(
            "PSQL_TIMEOUT_SECONDS",
            1..=300,
            "a whole number of seconds from 1 to 300",
            5,
        )?)),
        tls: postgres_tls(vars)?,
    })
}

/// What a bad `PSQL_SSLMODE` is told it may be.
const SSLMODE_EXPECTED: &str = "disable, require or verify-full";

/// `PSQL_SSLMODE` (`disable` by default) and `PSQL_SSLROOTCERT`: the roots
/// are read and parsed here, so that a missing or broken file stops
/// start-up instead of failing every connection later. A root file with a
/// mode that would not check it is refused rather than silently ignored.
fn postgres_tls(vars: &Vars) -> Result<PgTls, ConfigError> {
    let root = vars.get("PSQL_SSLROOTCERT");
    let mode = vars.get("PSQL_SSLMODE");
    let unchecked = |mode: &'static str| match root {
        Some(_) => Err(ConfigError::Conflict {
            var: "PSQL_SSLROOTCERT",
            with: mode,
            why: "the root certificate is only checked with PSQL_SSLMODE=verify-full; \
                  set that, or unset PSQL_SSLROOTCERT",
        }),
        None => Ok(()),
    };
    match mode.as_deref().map(str::trim) {
        None | Some("disable") => unchecked("PSQL_SSLMODE=disable").map(|()| PgTls::Disable),
        Some("require") => unchecked("PSQL_SSLMODE=require").map(|()| PgTls::Require),
        Some("verify-full") => Ok(PgTls::VerifyFull(match root {
            None => PgRoots::webpki(),
            Some(path) => PgRoots::from_pem_file(std::path::Path::new(path.trim()))
                .map_err(|reason| ConfigError::RootCert { path, reason })?,
        })),
        Some(_) => Err(ConfigError::Invalid {
            var: "PSQL_SSLMODE",
            value: mode.unwrap_or_default(),
            expected: SSLMODE_EXPECTED,
        }),
    }
}

#[cfg(test)]
mod postgres_tls_tests {
    use super::*;

    fn tls(pairs: &[(&str, &str)]) -> Result<PgTls, ConfigError> {
        let base = [
            ("PSQL_HOST", "db"),
            ("PSQL_USER", "u"),
            ("PSQL_DB", "p"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ];
        let vars = base
            .iter()
            .chain(pairs)
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        match Config::from_vars(vars)?.storage {
            Storage::Postgres(pg) => Ok(pg.tls),
            Storage::InMemory => panic!("PSQL_HOST is set"),
        }
    }

    /// A PEM file holding one freshly made CA certificate, removed on drop.
    struct RootFile(std::path::PathBuf);

    impl RootFile {
        fn new(contents: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("p-chat-root-{}.pem", uuid::Uuid::new_v4()));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for RootFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn ca_pem() -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn tls_is_off_unless_asked_for() {
        assert!(matches!(tls(&[]).unwrap(), PgTls::Disable));
        assert!(matches!(
            tls(&[("PSQL_SSLMODE", "disable")]).unwrap(),
            PgTls::Disable
        ));
        assert!(matches!(
            tls(&[("PSQL_SSLMODE", "require")]).unwrap(),
            PgTls::Require
        ));
    }

    #[test]
    fn verify_full_uses_the_given_roots_or_mozillas() {
        let root = RootFile::new(&ca_pem());
        let given = tls(&[
            ("PSQL_SSLMODE", "verify-full"),
            ("PSQL_SSLROOTCERT", root.path()),
        ]);
        let given = format!("{:?}", given.unwrap());
        assert!(given.contains(root.path()), "{given}");
        let mozilla = format!("{:?}", tls(&[("PSQL_SSLMODE", "verify-full")]).unwrap());
        assert!(mozilla.contains("Mozilla"), "{mozilla}");
    }

    #[test]
    fn a_bad_mode_names_the_variable() {
        for mode in ["verify-ca", "prefer", "on", "REQUIRE!"] {
            let error = tls(&[("PSQL_SSLMODE", mode)]).unwrap_err().to_string();
            assert!(
                error.contains("PSQL_SSLMODE") && error.contains(SSLMODE_EXPECTED),
                "{error}"
            );
        }
    }

    #[test]
    fn an_unreadable_or_invalid_root_file_stops_start_up_naming_it() {
        let not_pem = RootFile::new("this is not a certificate\n");
        let garbage = RootFile::new(
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        );
        for path in ["/nonexistent/root.pem", not_pem.path(), garbage.path()] {
            let error =
                tls(&[("PSQL_SSLMODE", "verify-full"), ("PSQL_SSLROOTCERT", path)]).unwrap_err();
            assert!(matches!(error, ConfigError::RootCert { .. }), "{error}");
            let message = error.to_string();
            assert!(
                message.contains("PSQL_SSLROOTCERT") && message.contains(path),
                "{message}"
            );
        }
    }

    #[test]
    fn a_root_file_without_verify_full_is_refused() {
        let root = RootFile::new(&ca_pem());
        for mode in ["disable", "require"] {
            let error = tls(&[("PSQL_SSLMODE", mode), ("PSQL_SSLROOTCERT", root.path())])
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("PSQL_SSLROOTCERT") && error.contains("verify-full"),
                "{error}"
            );
        }
    }
}

/// Outgoing mail: which SMTP server, as whom, and where links point.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `SMTP_URL`, or `SMTP_HOST` and its companions.
    pub server: SmtpServer,
    /// `SMTP_FROM`: the sender of every mail (`p-chat <noreply@example.org>`).
    pub from: Mailbox,
    /// `PUBLIC_URL`: where users reach this server; the base of mailed links.
    pub public_url: PublicUrl,
}

/// How to reach the SMTP server. Debug output never shows the password.
#[derive(Clone)]
pub enum SmtpServer {
    /// `SMTP_URL` in lettre's form (`smtps://user:pass@host:465`,
    /// `smtp://host:587?tls=required`), checked by lettre at start-up.
    Url(url::Url),
    /// `SMTP_HOST`, `SMTP_PORT`, `SMTP_TLS`, `SMTP_USERNAME`, `SMTP_PASSWORD`.
    Host {
        /// `SMTP_HOST`.
        host: String,
        /// `SMTP_PORT` (default by `SMTP_TLS`: 587, 465 or 25).
        port: u16,
        /// `SMTP_TLS`.
        tls: SmtpTls,
        /// `SMTP_USERNAME` and `SMTP_PASSWORD`, set together or not at all.
        credentials: Option<(String, SmtpPassword)>,
    },
}

impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(url) => f.debug_tuple("Url").field(&redacted(url)).finish(),
            Self::Host {
                host,
                port,
                tls,
                credentials,
            } => f
                .debug_struct("Host")
                .field("host", host)
                .field("port", port)
                .field("tls", tls)
                .field("username", &credentials.as_ref().map(|(user, _)| user))
                .finish_non_exhaustive(),
        }
    }
}

/// `SMTP_PASSWORD`: only [`SmtpPassword::expose`] shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpPassword(String);

impl SmtpPassword {
    /// The password, for the SMTP login.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SmtpPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpPassword(<redacted>)")
    }
}

/// `SMTP_TLS`: how the connection to `SMTP_HOST` is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `starttls` (default): plain connect, then STARTTLS, required.
    StartTls,
    /// `tls`: TLS from the first byte (SMTPS).
    Tls,
    /// `none`: no encryption at all; only for a test server on localhost.
    None,
}

impl SmtpTls {
    /// The usual port of each mode: submission (587), submissions (465), SMTP (25).
    fn default_port(self) -> u16 {
        match self {
            Self::StartTls => 587,
            Self::Tls => 465,
            Self::None => 25,
        }
    }
}

impl FromStr for SmtpTls {
    type Err = ();

    fn from_str(value: &str) -> Result<Self, ()> {
        match value.to_ascii_lowercase().as_str() {
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            "none" => Ok(Self::None),
            _ => Err(()),
        }
    }
}

/// `PUBLIC_URL`: an http(s) URL without query, fragment or credentials,
/// its path ending in `/`, so that `?verifyToken=...` can be put on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(url::Url);

impl PublicUrl {
    /// Parses and normalises (a missing trailing `/` is added).
    pub fn parse(raw: &str) -> Option<Self> {
        let mut url = url::Url::parse(raw.trim()).ok()?;
        let acceptable = matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some_and(|host| !host.is_empty())
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !acceptable {
            return None;
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Some(Self(url))
    }

    /// The server's host name, as this server names itself to the SMTP server.
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }

    /// This URL with one query parameter: a link the web client handles.
    pub fn with_query(&self, name: &str, value: &str) -> url::Url {
        let mut url = self.0.clone();
        url.query_pairs_mut().append_pair(name, value);
        url
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// `url` with its password replaced, for Debug output and error messages.
fn redacted(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("<redacted>"));
    }
    shown.to_string()
}

/// Why mail needs `SMTP_FROM` and `PUBLIC_URL`.
const MAIL_CONFIGURED: &str = "SMTP_URL or SMTP_HOST is set, so p-chat sends mail";

/// The `SMTP_HOST` family, which `SMTP_URL` replaces as a whole.
const SMTP_PARTS: [&str; 5] = [
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_TLS",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
];

/// The mail settings, or `None` when no SMTP server is configured.
fn mail(vars: &Vars) -> Result<Option<MailSettings>, ConfigError> {
    let server = match (vars.get("SMTP_URL"), vars.get("SMTP_HOST")) {
        (None, None) => return Ok(None),
        (Some(raw), _) => {
            if let Some(part) = SMTP_PARTS.into_iter().find(|var| vars.get(var).is_some()) {
                return Err(ConfigError::Conflict {
                    var: part,
                    with: "SMTP_URL",
                    why: "SMTP_URL names the whole server; set one or the other",
                });
            }
            smtp_url(&raw)?
        }
        (None, Some(host)) => smtp_host(vars, host)?,
    };
    let required = |var: &'static str| {
        vars.get(var).ok_or(ConfigError::Missing {
            var,
            why: MAIL_CONFIGURED,
        })
    };
    let from = required("SMTP_FROM")?;
    let from = from.trim().parse().map_err(|_| ConfigError::Invalid {
        var: "SMTP_FROM",
        value: from,
        expected: "a mailbox: noreply@example.org or \"p-chat <noreply@example.org>\"",
    })?;
    let public_url = required("PUBLIC_URL")?;
    let public_url = PublicUrl::parse(&public_url).ok_or(ConfigError::Invalid {
        var: "PUBLIC_URL",
        value: public_url,
        expected: "an http(s) URL without query or credentials, e.g. https://chat.example.org",
    })?;
    Ok(Some(MailSettings {
        server,
        from,
        public_url,
    }))
}

/// `SMTP_URL`, checked by the parser lettre will use. Its value is never
/// echoed whole: it may hold a password.
fn smtp_url(raw: &str) -> Result<SmtpServer, ConfigError> {
    let parsed = url::Url::parse(raw.trim()).ok();
    let invalid = || ConfigError::Invalid {
        var: "SMTP_URL",
        value: parsed.as_ref().map_or_else(
            || "<not shown: it may hold a password>".to_owned(),
            redacted,
        ),
        expected: "lettre's URL form: smtps://user:password@host:465 or \
                   smtp://user:password@host:587?tls=required",
    };
    let url = parsed.clone().ok_or_else(invalid)?;
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str()).map_err(|_| invalid())?;
    Ok(SmtpServer::Url(url))
}

/// `SMTP_HOST` and its companions.
fn smtp_host(vars: &Vars, host: String) -> Result<SmtpServer, ConfigError> {
    let host = host.trim().to_owned();
    let tls: SmtpTls = vars.parse("SMTP_TLS", "starttls, tls or none", Some(SmtpTls::StartTls))?;
    if tls != SmtpTls::None && TlsParameters::new(host.clone()).is_err() {
        return Err(ConfigError::Invalid {
            var: "SMTP_HOST",
            value: host,
            expected: "a host name or IP address the server's TLS certificate can be checked against",
        });
    }
    let port = vars.parse(
        "SMTP_PORT",
        "a TCP port number (1-65535)",
        Some(tls.default_port()),
    )?;
    if port == 0 {
        return Err(ConfigError::Invalid {
            var: "SMTP_PORT",
            value: port.to_string(),
            expected: "a TCP port number (1-65535)",
        });
    }
    let missing = |var| ConfigError::Missing {
        var,
        why: "SMTP_USERNAME and SMTP_PASSWORD go together",
    };
    let credentials = match (vars.get("SMTP_USERNAME"), vars.get("SMTP_PASSWORD")) {
        (Some(user), Some(password)) => Some((user, SmtpPassword(password))),
        (None, None) => None,
        (Some(_), None) => return Err(missing("SMTP_PASSWORD")),
        (None, Some(_)) => return Err(missing("SMTP_USERNAME")),
    };
    Ok(SmtpServer::Host {
        host,
        port,
        tls,
        credentials,
    })
}

fn random_secret() -> Result<Vec<u8>, ConfigError> {
    let mut secret = vec![0_u8; MIN_SECRET_BYTES * 2];
    getrandom::fill(&mut secret).map_err(|error| ConfigError::NoRandomSecret(error.to_string()))?;
    Ok(secret)
}

/// The Prometheus listener (`METRICS_ADDRESS`, `METRICS_PUBLIC`;
/// docs/operations.md#metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSettings {
    /// `METRICS_ADDRESS`: where `GET /metrics` is served, apart from the
    /// API: a loopback address unless `METRICS_PUBLIC=true`.
    pub address: std::net::SocketAddr,
}

/// What `METRICS_ADDRESS` must look like.
const METRICS_ADDRESS_EXPECTED: &str = "an IP address and port, e.g. 127.0.0.1:9464 or [::1]:9464";
/// Why a non-loopback `METRICS_ADDRESS` is refused.
const METRICS_NOT_LOOPBACK: &str = "a loopback address (127.0.0.1:9464, [::1]:9464): metrics are \
     never public by accident; to listen on another interface set METRICS_PUBLIC=true as well";

/// The metrics listener, or `None` when `METRICS_ADDRESS` is unset. A
/// non-loopback address needs `METRICS_PUBLIC=true`: what the metrics
/// reveal (traffic, rooms' activity, the store's health) is for operators.
fn metrics(vars: &Vars) -> Result<Option<MetricsSettings>, ConfigError> {
    let public: bool = vars.parse("METRICS_PUBLIC", "true or false", Some(false))?;
    let Some(raw) = vars.get("METRICS_ADDRESS") else {
        return Ok(None);
    };
    let invalid = |expected| ConfigError::Invalid {
        var: "METRICS_ADDRESS",
        value: raw.clone(),
        expected,
    };
    let address: std::net::SocketAddr = raw
        .trim()
        .parse()
        .map_err(|_| invalid(METRICS_ADDRESS_EXPECTED))?;
    if !address.ip().is_loopback() && !public {
        return Err(invalid(METRICS_NOT_LOOPBACK));
    }
    Ok(Some(MetricsSettings { address }))
}

#[cfg(test)]
mod metrics_tests {
    use super::tests::load;

    #[test]
    fn metrics_are_off_by_default() {
        assert_eq!(load(&[]).unwrap().metrics, None);
        assert_eq!(load(&[("METRICS_PUBLIC", "true")]).unwrap().metrics, None);
    }

    #[test]
    fn a_loopback_address_is_taken() {
        for address in ["127.0.0.1:9464", "[::1]:9464", " 127.0.0.2:0 "] {
            let settings = load(&[("METRICS_ADDRESS", address)])
                .unwrap()
                .metrics
                .unwrap();
            assert_eq!(settings.address, address.trim().parse().unwrap());
        }
    }

    #[test]
    fn another_interface_needs_the_explicit_opt_in() {
        for address in ["0.0.0.0:9464", "[::]:9464", "192.0.2.7:9464"] {
            let error = load(&[("METRICS_ADDRESS", address)]).unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains("METRICS_ADDRESS") && message.contains("METRICS_PUBLIC=true"),
                "{address}: {message}"
            );
            let refused = load(&[("METRICS_ADDRESS", address), ("METRICS_PUBLIC", "false")]);
            assert!(refused.is_err(), "{address}");
            let settings = load(&[("METRICS_ADDRESS", address), ("METRICS_PUBLIC", "true")])
                .unwrap()
                .metrics
                .unwrap();
            assert_eq!(settings.address, address.parse().unwrap());
        }
    }

    #[test]
    fn a_bad_metrics_value_names_its_variable() {
        let cases: [(&str, &[(&str, &str)]); 4] = [
            ("METRICS_ADDRESS", &[("METRICS_ADDRESS", "localhost:9464")]),
            ("METRICS_ADDRESS", &[("METRICS_ADDRESS", "127.0.0.1")]),
            ("METRICS_ADDRESS", &[("METRICS_ADDRESS", "9464")]),
            (
                "METRICS_PUBLIC",
                &[
                    ("METRICS_ADDRESS", "127.0.0.1:9464"),
                    ("METRICS_PUBLIC", "yes"),
                ],
            ),
        ];
        for (var, vars) in cases {
            let message = load(vars).unwrap_err().to_string();
            assert!(message.contains(var), "{vars:?}: {message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration of exactly these variables.
    pub(super) fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(
            pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn defaults_serve_on_localhost_8080_with_the_seed_lifetimes() {
        let config = load(&[]).unwrap();
        assert_eq!(config.bind_address.to_string(), "127.0.0.1");
        assert_eq!(config.port, 8080);
        assert_eq!(config.session.access_ttl, TimeDelta::minutes(15));
        assert_eq!(config.session.refresh_ttl, TimeDelta::hours(1));
        assert_eq!(config.verification.ttl, TimeDelta::hours(24));
        assert_eq!(config.bcrypt_cost, 12);
        assert_eq!(config.registration, RegistrationMode::Open);
        assert_eq!(config.reset.ttl, TimeDelta::minutes(30));
        assert_eq!(config.event_retention, TimeDelta::days(30));
        assert_eq!(config.presence_grace, Duration::from_secs(5));
        assert!(matches!(config.jwt_secret, JwtSecret::Generated(ref key) if key.len() >= 32));
    }

    #[test]
    fn every_variable_is_read() {
        let config = load(&[
            ("BIND_ADDRESS", "0.0.0.0"),
            ("PORT", "9000"),
            ("JWT_SECRET", "s3cret-s3cret-s3cret-s3cret-s3cret"),
            ("ACCESS_TOKEN_SESSION_MINUTES", "5"),
            ("REFRESH_TOKEN_SESSION_HOURS", "48"),
            ("EMAIL_VERIFICATION_TTL_HOURS", "2"),
            ("BCRYPT_COST", "4"),
            ("PSQL_HOST", ""),
            ("REGISTRATION", "invite"),
            ("PASSWORD_RESET_TTL_MINUTES", "10"),
            ("EVENT_RETENTION_DAYS", "90"),
            ("PRESENCE_GRACE_MS", "300"),
        ])
        .unwrap();
        assert_eq!(config.presence_grace, Duration::from_millis(300));
        assert_eq!(config.registration, RegistrationMode::Invite);
        assert_eq!(config.event_retention, TimeDelta::days(90));
        assert_eq!(config.reset.ttl, TimeDelta::minutes(10));
        assert_eq!(config.bind_address.to_string(), "0.0.0.0");
        assert_eq!(config.port, 9000);
        assert_eq!(
            config.jwt_secret.bytes(),
            b"s3cret-s3cret-s3cret-s3cret-s3cret"
        );
        assert!(!config.jwt_secret.is_weak());
        assert_eq!(config.session.access_ttl, TimeDelta::minutes(5));
        assert_eq!(config.session.refresh_ttl, TimeDelta::hours(48));
        assert_eq!(config.verification.ttl, TimeDelta::hours(2));
        assert_eq!(config.bcrypt_cost, 4);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (var, value) in [
            ("PORT", "eighty"),
            ("PORT", "70000"),
            ("BIND_ADDRESS", "localhost:80"),
            ("ACCESS_TOKEN_SESSION_MINUTES", "0"),
            ("ACCESS_TOKEN_SESSION_MINUTES", "-5"),
            ("REFRESH_TOKEN_SESSION_HOURS", "1.5"),
            ("EMAIL_VERIFICATION_TTL_HOURS", "soon"),
            ("BCRYPT_COST", "3"),
            ("BCRYPT_COST", "32"),
            ("REGISTRATION", "sometimes"),
            ("PASSWORD_RESET_TTL_MINUTES", "0"),
            ("EVENT_RETENTION_DAYS", "0"),
            ("EVENT_RETENTION_DAYS", "a month"),
            ("PRESENCE_GRACE_MS", "600001"),
            ("PRESENCE_GRACE_MS", "-1"),
            ("PRESENCE_GRACE_MS", "5s"),
        ] {
            let message = load(&[(var, value)]).unwrap_err().to_string();
            assert!(message.contains(var), "{var}={value}: {message}");
        }
    }

    #[test]
    fn weak_secrets_are_recognised() {
        let placeholder = load(&[("JWT_SECRET", PLACEHOLDER_SECRET)]).unwrap();
        assert!(placeholder.jwt_secret.is_weak());
        let short = load(&[("JWT_SECRET", "short")]).unwrap();
        assert!(short.jwt_secret.is_weak());
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let config = load(&[("JWT_SECRET", "do-not-print-me-do-not-print-me!")]).unwrap();
        assert!(!format!("{config:?}").contains("do-not-print-me"));
    }

    const STRONG: &str = "0123456789abcdef0123456789abcdef";

    fn rate(count: u32, seconds: u64) -> RateSpec {
        RateSpec {
            count: std::num::NonZeroU32::new(count).unwrap(),
            per: Duration::from_secs(seconds),
        }
    }

    #[test]
    fn limits_default_to_the_documented_values() {
        let config = load(&[]).unwrap();
        let limits = &config.limits;
        assert_eq!(limits.login_ip, rate(30, 600));
        assert_eq!(limits.login_account, rate(10, 900));
        assert_eq!(limits.register_ip, rate(10, 3600));
        assert_eq!(limits.register_email, rate(3, 3600));
        assert_eq!(limits.verify_ip, rate(30, 600));
        assert_eq!(limits.ws_upgrade_ip, rate(60, 60));
        assert_eq!(limits.ws_connections_per_user, 20);
        assert_eq!(limits.ws_unauthenticated_per_ip, 10);
        assert_eq!(config.trusted_proxies, TrustedProxies::default());
    }

    #[test]
    fn every_limit_variable_is_read() {
        let config = load(&[
            ("RATE_LOGIN_IP", "1/1s"),
            ("RATE_LOGIN_ACCOUNT", "2/2m"),
            ("RATE_REGISTER_IP", "3/3h"),
            ("RATE_REGISTER_EMAIL", " 4 / 4s "),
            ("RATE_VERIFY_IP", "5/5m"),
            ("RATE_WS_UPGRADE_IP", "6/6h"),
            ("WS_MAX_CONNECTIONS_PER_USER", "7"),
            ("WS_MAX_UNAUTHENTICATED_PER_IP", "8"),
            ("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,fd00::/8"),
        ])
        .unwrap();
        let limits = &config.limits;
        assert_eq!(limits.login_ip, rate(1, 1));
        assert_eq!(limits.login_account, rate(2, 120));
        assert_eq!(limits.register_ip, rate(3, 3 * 3600));
        assert_eq!(limits.register_email, rate(4, 4));
        assert_eq!(limits.verify_ip, rate(5, 300));
        assert_eq!(limits.ws_upgrade_ip, rate(6, 6 * 3600));
        assert_eq!(limits.ws_connections_per_user, 7);
        assert_eq!(limits.ws_unauthenticated_per_ip, 8);
        assert_eq!(
            config.trusted_proxies,
            TrustedProxies::parse_list("127.0.0.1,10.0.0.0/8,fd00::/8").unwrap()
        );
    }

    #[test]
    fn a_bad_limit_names_its_variable() {
        for (var, value) in [
            ("RATE_LOGIN_IP", "10"),
            ("RATE_LOGIN_ACCOUNT", "0/15m"),
            ("RATE_REGISTER_IP", "10/0s"),
            ("RATE_REGISTER_EMAIL", "10/15d"),
            ("RATE_VERIFY_IP", "ten/1m"),
            ("RATE_WS_UPGRADE_IP", "10/25h"),
            ("RATE_WS_UPGRADE_IP", "1000001/1h"),
            ("WS_MAX_CONNECTIONS_PER_USER", "0"),
            ("WS_MAX_UNAUTHENTICATED_PER_IP", "many"),
            ("TRUSTED_PROXIES", "10.0.0.0/33"),
            ("TRUSTED_PROXIES", "proxy.example"),
        ] {
            let message = load(&[(var, value)]).unwrap_err().to_string();
            assert!(message.contains(var), "{var}={value}: {message}");
        }
    }

    #[test]
    fn without_psql_host_the_store_is_in_memory() {
        assert!(matches!(load(&[]).unwrap().storage, Storage::InMemory));
    }

    #[test]
    fn psql_variables_select_postgres() {
        let config = load(&[
            ("PSQL_HOST", "db"),
            ("PSQL_PORT", "6543"),
            ("PSQL_USER", "chat"),
            ("PSQL_PASSWORD", "pw"),
            ("PSQL_DB", "p_chat"),
            ("PSQL_POOL_SIZE", "4"),
            ("PSQL_TIMEOUT_SECONDS", "2"),
            ("JWT_SECRET", STRONG),
        ])
        .unwrap();
        let Storage::Postgres(pg) = config.storage else {
            panic!("expected PostgreSQL");
        };
        assert_eq!(
            (pg.host.as_str(), pg.port, pg.user.as_str()),
            ("db", 6543, "chat")
        );
        assert_eq!(pg.password.as_deref(), Some("pw"));
        assert_eq!((pg.database.as_str(), pg.pool_size), ("p_chat", 4));
        assert_eq!(pg.timeout, Duration::from_secs(2));
    }

    #[test]
    fn postgres_needs_a_user_and_a_database() {
        let base = [("PSQL_HOST", "db"), ("JWT_SECRET", STRONG)];
        let no_user = load(&[base[0], base[1], ("PSQL_DB", "p")]).unwrap_err();
        assert!(no_user.to_string().contains("PSQL_USER"), "{no_user}");
        let no_db = load(&[base[0], base[1], ("PSQL_USER", "u")]).unwrap_err();
        assert!(no_db.to_string().contains("PSQL_DB"), "{no_db}");
        let bad_port = load(&[
            base[0],
            base[1],
            ("PSQL_USER", "u"),
            ("PSQL_DB", "p"),
            ("PSQL_PORT", "x"),
        ]);
        assert!(bad_port.unwrap_err().to_string().contains("PSQL_PORT"));
    }

    #[test]
    fn postgres_refuses_a_missing_placeholder_or_short_secret() {
        let db = [("PSQL_HOST", "db"), ("PSQL_USER", "u"), ("PSQL_DB", "p")];
        for secret in [
            None,
            Some(PLACEHOLDER_SECRET),
            Some("31-bytes-are-one-byte-too-few!!"),
        ] {
            let mut vars = db.to_vec();
            if let Some(secret) = secret {
                vars.push(("JWT_SECRET", secret));
            }
            let error = load(&vars).unwrap_err();
            assert!(matches!(error, ConfigError::WeakSecret), "{secret:?}");
            assert!(error.to_string().contains("JWT_SECRET"));
        }
        let mut vars = db.to_vec();
        vars.push(("JWT_SECRET", STRONG));
        assert!(load(&vars).is_ok());
    }

    /// The variables of a server that mails through `SMTP_HOST`.
    const MAIL: [(&str, &str); 3] = [
        ("SMTP_HOST", "smtp.example.org"),
        ("SMTP_FROM", "p-chat <noreply@example.org>"),
        ("PUBLIC_URL", "https://chat.example.org"),
    ];

    fn with_mail(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars = MAIL.to_vec();
        vars.extend_from_slice(extra);
        vars
    }

    #[test]
    fn without_smtp_no_mail_is_sent() {
        let config = load(&[
            ("SMTP_FROM", "noreply@example.org"),
            ("PUBLIC_URL", "https://chat.example.org"),
        ])
        .unwrap();
        assert!(config.mail.is_none());
    }

    #[test]
    fn smtp_host_defaults_to_starttls_on_the_submission_port() {
        let mail = load(&MAIL).unwrap().mail.unwrap();
        let SmtpServer::Host {
            host,
            port,
            tls,
            credentials,
        } = mail.server
        else {
            panic!("expected SMTP_HOST");
        };
        assert_eq!(
            (host.as_str(), port, tls),
            ("smtp.example.org", 587, SmtpTls::StartTls)
        );
        assert!(credentials.is_none());
        assert_eq!(mail.from.email.to_string(), "noreply@example.org");
        assert_eq!(mail.from.name.as_deref(), Some("p-chat"));
        assert_eq!(mail.public_url.as_str(), "https://chat.example.org/");
    }

    #[test]
    fn every_smtp_variable_is_read() {
        for (tls, expected, default_port) in [
            ("TLS", SmtpTls::Tls, 465),
            ("starttls", SmtpTls::StartTls, 587),
            ("none", SmtpTls::None, 25),
        ] {
            let mail = load(&with_mail(&[("SMTP_TLS", tls)]))
                .unwrap()
                .mail
                .unwrap();
            assert!(
                matches!(mail.server, SmtpServer::Host { tls, port, .. } if tls == expected && port == default_port),
                "{tls}"
            );
        }
        let mail = load(&with_mail(&[
            ("SMTP_PORT", "2525"),
            ("SMTP_USERNAME", "chat"),
            ("SMTP_PASSWORD", "pw"),
        ]))
        .unwrap()
        .mail
        .unwrap();
        let SmtpServer::Host {
            port, credentials, ..
        } = mail.server
        else {
            panic!("expected SMTP_HOST");
        };
        assert_eq!(port, 2525);
        let (user, password) = credentials.unwrap();
        assert_eq!((user.as_str(), password.expose()), ("chat", "pw"));
    }

    #[test]
    fn smtp_url_is_taken_in_lettres_form() {
        for url in [
            "smtps://user:pass@smtp.example.org:465",
            "smtp://smtp.example.org:587?tls=required",
            "smtp://127.0.0.1:2525",
        ] {
            let config = load(&[
                ("SMTP_URL", url),
                ("SMTP_FROM", "noreply@example.org"),
                ("PUBLIC_URL", "http://localhost:8080"),
            ])
            .unwrap();
            assert!(
                matches!(config.mail.unwrap().server, SmtpServer::Url(_)),
                "{url}"
            );
        }
    }

    #[test]
    fn a_bad_mail_value_names_its_variable() {
        for (var, value) in [
            ("SMTP_TLS", "ssl"),
            ("SMTP_PORT", "0"),
            ("SMTP_PORT", "smtp"),
            ("SMTP_FROM", "not a mailbox"),
            (
                "SMTP_FROM",
                "noreply@example.org\r\nBcc: victim@example.org",
            ),
            ("PUBLIC_URL", "chat.example.org"),
            ("PUBLIC_URL", "ftp://chat.example.org"),
            ("PUBLIC_URL", "https://chat.example.org/?x=1"),
            ("PUBLIC_URL", "https://chat.example.org/#top"),
            ("PUBLIC_URL", "https://user:pw@chat.example.org"),
        ] {
            let mut vars = with_mail(&[]);
            vars.retain(|(key, _)| *key != var);
            vars.push((var, value));
            let message = load(&vars).unwrap_err().to_string();
            assert!(message.contains(var), "{var}={value}: {message}");
        }
        for url in ["smtpx://host", "smtp://host?tls=sometimes", "not a url"] {
            let message = load(&[
                ("SMTP_URL", url),
                ("SMTP_FROM", "noreply@example.org"),
                ("PUBLIC_URL", "https://chat.example.org"),
            ])
            .unwrap_err()
            .to_string();
            assert!(message.contains("SMTP_URL"), "{url}: {message}");
        }
    }

    #[test]
    fn mail_needs_a_sender_and_a_public_url() {
        for var in ["SMTP_FROM", "PUBLIC_URL"] {
            let mut vars = with_mail(&[]);
            vars.retain(|(key, _)| *key != var);
            let error = load(&vars).unwrap_err();
            assert!(
                matches!(error, ConfigError::Missing { var: missing, .. } if missing == var),
                "{error}"
            );
        }
    }

    #[test]
    fn smtp_credentials_go_together() {
        let error = load(&with_mail(&[("SMTP_USERNAME", "chat")])).unwrap_err();
        assert!(error.to_string().contains("SMTP_PASSWORD"), "{error}");
        let error = load(&with_mail(&[("SMTP_PASSWORD", "pw")])).unwrap_err();
        assert!(error.to_string().contains("SMTP_USERNAME"), "{error}");
    }

    #[test]
    fn smtp_url_excludes_the_host_variables() {
        let error = load(&with_mail(&[("SMTP_URL", "smtp://127.0.0.1:25")])).unwrap_err();
        assert!(
            matches!(
                error,
                ConfigError::Conflict {
                    var: "SMTP_HOST",
                    with: "SMTP_URL",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn the_smtp_password_never_shows_in_debug_output_or_errors() {
        let password = "do-not-print-the-smtp-password";
        let config = load(&with_mail(&[
            ("SMTP_USERNAME", "chat"),
            ("SMTP_PASSWORD", password),
        ]))
        .unwrap();
        assert!(!format!("{config:?}").contains(password));
        let url = format!("smtps://chat:{password}@smtp.example.org");
        let vars = [
            ("SMTP_URL", url.as_str()),
            ("SMTP_FROM", "noreply@example.org"),
            ("PUBLIC_URL", "https://chat.example.org"),
        ];
        let config = load(&vars).unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains(password) && shown.contains("smtp.example.org"),
            "{shown}"
        );
        // A URL lettre refuses is named, but not echoed with its password.
        let bad = format!("smtp://chat:{password}@smtp.example.org?tls=sometimes");
        let error = load(&[("SMTP_URL", bad.as_str()), vars[1], vars[2]]).unwrap_err();
        assert!(!error.to_string().contains(password), "{error}");
        // Neither does a conflict with SMTP_PASSWORD.
        let error = load(&[vars[0], vars[1], vars[2], ("SMTP_PASSWORD", password)]).unwrap_err();
        assert!(!error.to_string().contains(password), "{error}");
    }

    #[test]
    fn a_public_url_is_normalised_to_end_in_a_slash() {
        let root = PublicUrl::parse("https://chat.example.org").unwrap();
        assert_eq!(
            root.with_query("verifyToken", "abc").as_str(),
            "https://chat.example.org/?verifyToken=abc"
        );
        let prefixed = PublicUrl::parse(" https://example.org/chat ").unwrap();
        assert_eq!(
            prefixed.with_query("resetToken", "abc").as_str(),
            "https://example.org/chat/?resetToken=abc"
        );
        assert_eq!(prefixed.host(), "example.org");
    }
}
