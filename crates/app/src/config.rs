//! Configuration: environment variables, optionally from a `.env` file, read
//! once at start-up into one typed [`Config`]. A bad value stops start-up with
//! a message naming the variable.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::TimeDelta;
use p_chat_domain::session::SessionPolicy;
use p_chat_domain::verification::VerificationPolicy;

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
    /// `PSQL_HOST` asks for a store this build does not have yet.
    #[error(
        "PSQL_HOST is set, but this build of p-chat has no PostgreSQL store yet; unset PSQL_HOST to run in memory"
    )]
    DatabaseUnsupported,
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
    /// `BCRYPT_COST` (default 12; 4 only for tests).
    pub bcrypt_cost: u32,
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
        if vars.get("PSQL_HOST").is_some() {
            return Err(ConfigError::DatabaseUnsupported);
        }
        let jwt_secret = match vars.get("JWT_SECRET") {
            Some(secret) => JwtSecret::Configured(secret.into_bytes()),
            None => JwtSecret::Generated(random_secret()?),
        };
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
            bcrypt_cost: vars.bounded("BCRYPT_COST", 4..=31, "an integer from 4 to 31", 12)?,
        })
    }
}

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

fn random_secret() -> Result<Vec<u8>, ConfigError> {
    let mut secret = vec![0_u8; MIN_SECRET_BYTES * 2];
    getrandom::fill(&mut secret).map_err(|error| ConfigError::NoRandomSecret(error.to_string()))?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
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
        ])
        .unwrap();
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

    #[test]
    fn psql_host_is_refused_until_postgres_is_supported() {
        assert!(matches!(
            load(&[("PSQL_HOST", "localhost")]),
            Err(ConfigError::DatabaseUnsupported)
        ));
    }
}
