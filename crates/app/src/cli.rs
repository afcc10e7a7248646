//! The command line: `p-chat` serves; `p-chat admin ...` administers the
//! configured store from the server's console (the way the first
//! administrator is made); `p-chat healthcheck` asks a running server
//! whether it is ready. Passwords are read from standard input, never
//! from arguments (which other users of the machine can see).

use std::io::{BufRead, Write};
use std::time::Duration;

use clap::{Parser, Subcommand};
use p_chat_domain::DomainError;
use p_chat_domain::ports::UserQuery;
use p_chat_domain::services::{Credentials, Operator, UserRef};
use p_chat_domain::user::{Email, InstanceRole, PasswordDigest, User, UserSearch};
use tokio::sync::watch;

use crate::config::{Config, Storage};
use crate::state::AppState;

/// `p-chat [COMMAND]`.
#[derive(Debug, Parser)]
#[command(
    name = "p-chat",
    version,
    about = "A self-hosted real-time chat server"
)]
pub struct Cli {
    /// What to do; without one, the server runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands besides serving.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Administer accounts on the configured store (PostgreSQL).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Exit 0 when the server configured here answers `GET /ready` with
    /// 200, else 1 (for container health checks).
    Healthcheck,
}

/// `p-chat admin ...`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a verified account; its password is read from standard input.
    CreateUser {
        /// The account's email.
        email: String,
        /// Make it an instance administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Make an account an instance administrator.
    MakeAdmin {
        /// The account's email.
        email: String,
    },
    /// Make an administrator an ordinary member again.
    UnmakeAdmin {
        /// The account's email.
        email: String,
    },
    /// Set a new password (read from standard input) and end every session.
    ResetPassword {
        /// The account's email.
        email: String,
    },
    /// Disable an account: no login, refresh or connection.
    Disable {
        /// The account's email.
        email: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// The account's email.
        email: String,
    },
    /// List accounts (email, role, state), optionally those matching a text.
    List {
        /// Part of an email or display name.
        search: Option<String>,
    },
}

/// Why an admin command failed, in words for the console.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration is not usable.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The store could not be opened.
    #[error("{0}")]
    State(#[from] crate::state::StateError),
    /// The command is refused or failed.
    #[error("{0}")]
    Domain(#[from] DomainError),
    /// An argument is not valid.
    #[error("{0}")]
    Invalid(#[from] p_chat_domain::error::ValidationError),
    /// Standard input or output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The in-memory store lives inside a server process: nothing to administer.
    #[error(
        "PSQL_HOST is not set: p-chat admin works on the configured PostgreSQL store \
         (the in-memory store lives only inside a running server)"
    )]
    NoStore,
    /// No password on standard input.
    #[error("no password on standard input (pipe it in, one line)")]
    NoPassword,
}

/// The most accounts `p-chat admin list` prints.
const LIST_LIMIT: usize = 100;
/// How long the console waits for what it published (ended sessions) to
/// reach the running servers through Redis before it exits anyway.
const PUBLISH_WAIT: Duration = Duration::from_secs(5);

/// Runs one admin command against the configured store, writing its result
/// to standard output.
pub async fn run_admin(config: Config, command: AdminCommand) -> Result<(), CliError> {
    if matches!(config.storage, Storage::InMemory) {
        return Err(CliError::NoStore);
    }
    let (_shutdown, stopping) = watch::channel(false);
    let state = AppState::build(&config, stopping).await?;
    let admin = &state.admin;
    let console = Operator::Console;
    let by_email = |email: &str| Email::parse(email).map(UserRef::Email);
    let user = match command {
        AdminCommand::CreateUser {
            email,
            admin: make_admin,
        } => {
            let credentials = Credentials {
                email: Email::parse(&email)?,
                password: read_password()?,
            };
            let role = if make_admin {
                InstanceRole::Admin
            } else {
                InstanceRole::Member
            };
            admin.create_user(console, &credentials, role).await?
        }
        AdminCommand::MakeAdmin { email } => {
            admin
                .set_role(console, &by_email(&email)?, InstanceRole::Admin)
                .await?
        }
        AdminCommand::UnmakeAdmin { email } => {
            admin
                .set_role(console, &by_email(&email)?, InstanceRole::Member)
                .await?
        }
        AdminCommand::ResetPassword { email } => {
            let password = read_password()?;
            admin
                .reset_password(console, &by_email(&email)?, &password)
                .await?
        }
        AdminCommand::Disable { email } => admin.disable(console, &by_email(&email)?).await?,
        AdminCommand::Enable { email } => admin.enable(console, &by_email(&email)?).await?,
        AdminCommand::List { search } => {
            let query = UserQuery {
                contains: search
                    .as_deref()
                    .map(UserSearch::parse)
                    .transpose()?
                    .flatten(),
                after: None,
                limit: LIST_LIMIT,
            };
            let mut out = std::io::stdout().lock();
            for user in admin.users(console, &query).await? {
                writeln!(out, "{}", describe(&user))?;
            }
            return Ok(());
        }
    };
    writeln!(std::io::stdout().lock(), "{}", describe(&user))?;
    // Sessions it ended close their sockets on every running node.
    if tokio::time::timeout(PUBLISH_WAIT, state.fanout.flush())
        .await
        .is_err()
    {
        writeln!(
            std::io::stderr().lock(),
            "warning: Redis did not take the ended sessions within {} s: sockets already \
             open on running servers close when their access tokens expire",
            PUBLISH_WAIT.as_secs()
        )?;
    }
    Ok(())
}

/// One line per account: email, id, role and state.
fn describe(user: &User) -> String {
    let state = if user.deleted_at.is_some() {
        "deleted"
    } else if user.disabled_at.is_some() {
        "disabled"
    } else if user.is_verified() {
        "active"
    } else {
        "unverified"
    };
    format!("{} {} {} {state}", user.email, user.id, user.role.as_str())
}

/// The first line of standard input, as the digest a client would send.
fn read_password() -> Result<PasswordDigest, CliError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(CliError::NoPassword);
    }
    Ok(PasswordDigest::of_password(password))
}
