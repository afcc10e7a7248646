//! The composition root: concrete adapters chosen from the configuration and
//! wired into the domain services that every handler shares.

use std::sync::Arc;

use p_chat_auth::{BcryptHasher, InvalidCost, JwtIssuer};
use p_chat_domain::ports::{
    Clock, EventLog, FanOut, InviteStore, MembershipRepository, MessageRepository, PasswordHasher,
    PasswordResetStore, RoomRepository, SessionRepository, StoreError, SystemClock, UserRepository,
    VerificationStore,
};
use p_chat_domain::services::{
    Accounts, Admin, Messaging, People, Recovery, RecoveryPorts, RoomAccess, Rooms, Sessions,
};
use p_chat_fanout::local::Hub;
use p_chat_fanout::redis::{RedisFanOut, RedisSetupError};
use p_chat_persistence::memory::{MemoryAccounts, MemoryChat, MemorySessions};
use p_chat_persistence::postgres::{
    MigrationError, PgConfig, PgEvents, PgInvites, PgMemberships, PgMessages, PgResets, PgRooms,
    PgSessions, PgStore, PgUsers, PgVerifications, PoolSetupError, run_migrations,
};

use tokio::sync::watch;

use crate::config::{Config, JwtSecret, RedisSettings, Storage, WsSettings};
use crate::http::client_ip::TrustedProxies;
use crate::limits::Limits;
use crate::mail::{MailSetupError, Outbox};

/// The services handlers call, cheap to clone (all `Arc`s inside).
#[derive(Clone)]
pub struct AppState {
    /// Registration, verification and the caller's own account.
    pub accounts: Accounts,
    /// Instance administration (accounts, invitations).
    pub admin: Admin,
    /// Verification resend and password reset.
    pub recovery: Recovery,
    /// Login, refresh, logout and request authentication.
    pub sessions: Sessions,
    /// Rooms and membership use cases.
    pub rooms: Rooms,
    /// Messaging use cases.
    pub messaging: Messaging,
    /// Users as other users see them, with their presence.
    pub people: People,
    /// What `GET /ready` checks.
    pub readiness: Readiness,
    /// Delivers room events to WebSocket connections.
    pub fanout: Arc<dyn FanOut>,
    /// The WebSocket gateway's settings.
    pub ws: WsSettings,
    /// Becomes `true` when the server is shutting down.
    pub shutdown: watch::Receiver<bool>,
    /// `TRUSTED_PROXIES`: how a request's client address is found.
    pub trusted_proxies: TrustedProxies,
    /// The abuse limits (rates and connection caps).
    pub limits: Arc<Limits>,
    /// Mail waiting for delivery, drained at shutdown.
    pub outbox: Outbox,
}

/// The dependency whose health decides whether the server is ready.
#[derive(Clone)]
pub enum Readiness {
    /// The in-memory store is always ready.
    InMemory,
    /// Ready while PostgreSQL answers.
    Postgres(PgStore),
}

impl Readiness {
    /// Checks the store now.
    pub async fn check(&self) -> Result<(), StoreError> {
        match self {
            Self::InMemory => Ok(()),
            Self::Postgres(store) => store.ping().await,
        }
    }
}

/// Why the services could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// `BCRYPT_COST` out of range.
    #[error("invalid BCRYPT_COST: {0}")]
    BcryptCost(#[from] InvalidCost),
    /// The schema could not be migrated (the database is unreachable or refused).
    #[error("cannot prepare the PostgreSQL schema: {0}")]
    Migration(#[from] MigrationError),
    /// The PostgreSQL pool could not be built.
    #[error(transparent)]
    Pool(#[from] PoolSetupError),
    /// The SMTP transport could not be set up.
    #[error(transparent)]
    Mail(#[from] MailSetupError),
    /// The Redis client could not be set up.
    #[error(transparent)]
    Redis(#[from] RedisSetupError),
}

/// The storage ports, from whichever store is configured.
struct Stores {
    users: Arc<dyn UserRepository>,
    sessions: Arc<dyn SessionRepository>,
    verifications: Arc<dyn VerificationStore>,
    resets: Arc<dyn PasswordResetStore>,
    invites: Arc<dyn InviteStore>,
    rooms: Arc<dyn RoomRepository>,
    memberships: Arc<dyn MembershipRepository>,
    messages: Arc<dyn MessageRepository>,
    events: Arc<dyn EventLog>,
    readiness: Readiness,
}

impl AppState {
    /// Builds the services on the configured store. On PostgreSQL, the schema
    /// is migrated first, so no request ever meets an old schema.
    pub async fn build(
        config: &Config,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, StateError> {
        let stores = match &config.storage {
            Storage::InMemory => in_memory(&config.jwt_secret),
            Storage::Postgres(pg) => postgres(pg).await?,
        };
        let hasher: Arc<dyn PasswordHasher> = Arc::new(BcryptHasher::new(config.bcrypt_cost)?);
        let fanout = fanout(
            config.redis.as_ref(),
            stores.events.clone(),
            config.presence_grace,
        )?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let limits = Arc::new(Limits::new(&config.limits, &config.ws));
        Limits::spawn_housekeeping(&limits, shutdown.clone());
        let sessions = Sessions::new(
            stores.users.clone(),
            stores.sessions,
            hasher.clone(),
            Arc::new(JwtIssuer::new(config.jwt_secret.bytes())),
            clock.clone(),
            config.session,
        )
        .with_fanout(fanout.clone())
        .with_throttle(limits.login_account.clone());
        let (mailer, outbox) = crate::mail::start(config.mail.as_ref())?;
        let recovery = Recovery::new(RecoveryPorts {
            users: stores.users.clone(),
            verifications: stores.verifications.clone(),
            resets: stores.resets,
            hasher: hasher.clone(),
            clock: clock.clone(),
            mailer: mailer.clone(),
            sessions: sessions.clone(),
            verification: config.verification,
            reset: config.reset,
        });
        let accounts = Accounts::new(
            stores.users.clone(),
            stores.verifications,
            hasher.clone(),
            clock.clone(),
            sessions.clone(),
            config.verification,
        )
        .with_registration(config.registration)
        .with_fanout(fanout.clone())
        .with_mailer(mailer);
        let admin = Admin::new(
            stores.users.clone(),
            stores.invites,
            hasher,
            clock.clone(),
            sessions.clone(),
        );
        let people = People::new(
            stores.users.clone(),
            stores.rooms.clone(),
            stores.memberships.clone(),
            fanout.clone(),
        );
        spawn_presence(people.clone(), shutdown.clone());
        let access = RoomAccess::new(stores.rooms, stores.memberships);
        let messaging = Messaging::new(
            access.clone(),
            stores.messages,
            stores.events,
            clock.clone(),
            fanout.clone(),
        );
        crate::retention::spawn(messaging.clone(), config.event_retention, shutdown.clone());
        Ok(Self {
            accounts,
            admin,
            recovery,
            sessions,
            rooms: Rooms::new(access, stores.users, clock, fanout.clone()),
            messaging,
            people,
            readiness: stores.readiness,
            fanout,
            ws: config.ws.clone(),
            shutdown,
            trusted_proxies: config.trusted_proxies.clone(),
            limits,
            outbox,
        })
    }
}

/// Announces the presence transitions the fan-out decides until shutdown
/// (a node going down announces nobody offline: its users reconnect to
/// another node within the grace period, and its claims expire).
fn spawn_presence(people: People, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.wait_for(|stopping| *stopping) => {}
            () = people.run() => {}
        }
    });
}

/// The fan-out: across nodes through Redis when `REDIS_URL` is set, else
/// within this process; presence outlasts a user's last connection by
/// `grace`.
fn fanout(
    redis: Option<&RedisSettings>,
    events: Arc<dyn EventLog>,
    grace: std::time::Duration,
) -> Result<Arc<dyn FanOut>, StateError> {
    let Some(redis) = redis else {
        return Ok(Arc::new(Hub::with_grace(grace)));
    };
    tracing::info!(url = ?redis.url, prefix = redis.prefix.as_str(), "fan-out across nodes through Redis");
    Ok(Arc::new(RedisFanOut::start(
        &redis.url,
        redis.prefix.clone(),
        events,
        grace,
    )?))
}

fn in_memory(secret: &JwtSecret) -> Stores {
    tracing::warn!(
        "PSQL_HOST is not set: running on the IN-MEMORY store. NOTHING IS PERSISTED: \
         every account, session and message is lost when the server stops."
    );
    match secret {
        JwtSecret::Generated(_) => tracing::warn!(
            "JWT_SECRET is not set: using a random secret for this process; \
             tokens stop working when it restarts"
        ),
        secret if secret.is_weak() => tracing::warn!(
            "JWT_SECRET is the placeholder or shorter than 32 bytes: anyone who guesses it \
             can forge tokens; set a long random value"
        ),
        JwtSecret::Configured(_) => {}
    }
    let chat = MemoryChat::default();
    let accounts = MemoryAccounts::new(&chat);
    Stores {
        users: Arc::new(accounts.users()),
        sessions: Arc::new(MemorySessions::default()),
        verifications: Arc::new(accounts.verifications()),
        resets: Arc::new(accounts.resets()),
        invites: Arc::new(accounts.invites()),
        rooms: Arc::new(chat.rooms()),
        memberships: Arc::new(chat.memberships()),
        messages: Arc::new(chat.messages()),
        events: Arc::new(chat.events()),
        readiness: Readiness::InMemory,
    }
}

async fn postgres(config: &PgConfig) -> Result<Stores, StateError> {
    tracing::info!(host = %config.host, port = config.port, database = %config.database, tls = ?config.tls, "using PostgreSQL");
    let applied = run_migrations(config).await?;
    tracing::info!(applied, "schema is up to date");
    let store = PgStore::new(config)?;
    Ok(Stores {
        users: Arc::new(PgUsers::new(store.clone())),
        sessions: Arc::new(PgSessions::new(store.clone())),
        verifications: Arc::new(PgVerifications::new(store.clone())),
        resets: Arc::new(PgResets::new(store.clone())),
        invites: Arc::new(PgInvites::new(store.clone())),
        rooms: Arc::new(PgRooms::new(store.clone())),
        memberships: Arc::new(PgMemberships::new(store.clone())),
        messages: Arc::new(PgMessages::new(store.clone())),
        events: Arc::new(PgEvents::new(store.clone())),
        readiness: Readiness::Postgres(store),
    })
}
