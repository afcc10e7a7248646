//! Black-box test harness: the real server on a random port, driven by awc.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

pub mod cluster;
pub mod pg_tools;
pub mod process;
pub mod proxy;
pub mod raw;
pub mod resume;
pub mod smtp;
pub mod ws;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use p_chat::config::Config;
use p_chat::startup::Application;
use p_chat::state::AppState;
use p_chat_domain::services::{Credentials, Operator};
use p_chat_domain::user::{Email, InstanceRole, PasswordDigest};
use p_chat_persistence::postgres::PgConfig;
use p_chat_persistence::postgres::testing::TestDatabase;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The JWT secret every test server signs with, so tests can forge tokens.
pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

/// Abuse limits far above what any test does, set for every test server so
/// that only the tests of the limits themselves (tests/limits.rs, which
/// override them) ever meet one. The per-user send budget follows
/// `WS_RATE_*`, so those are raised too (tests of the WebSocket's own frame
/// limit set theirs).
pub const GENEROUS_LIMITS: &[(&str, &str)] = &[
    ("WS_RATE_PER_SECOND", "10000"),
    ("WS_RATE_BURST", "10000"),
    ("RATE_LOGIN_IP", "100000/1s"),
    ("RATE_LOGIN_ACCOUNT", "100000/1s"),
    ("RATE_REGISTER_IP", "100000/1s"),
    ("RATE_REGISTER_EMAIL", "100000/1s"),
    ("RATE_VERIFY_IP", "100000/1s"),
    ("RATE_RECOVERY_IP", "100000/1s"),
    ("RATE_RECOVERY_EMAIL", "100000/1s"),
    ("RATE_WS_UPGRADE_IP", "100000/1s"),
    ("WS_MAX_CONNECTIONS_PER_USER", "100000"),
    ("WS_MAX_UNAUTHENTICATED_PER_IP", "100000"),
];

/// A running server and a client for it.
pub struct TestApp {
    base: String,
    client: awc::Client,
    /// The server's services (`None` for a server in another process).
    state: Option<AppState>,
    /// The throwaway database of a PostgreSQL-backed server, dropped with it.
    database: Option<TestDatabase>,
}

/// The store a test server runs on; tests written once run on both.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Memory,
    Postgres,
}

impl Backend {
    /// A server on this store with `vars` on top of the test settings, or
    /// `None` when PostgreSQL is unavailable here (the skip is reported).
    pub async fn spawn(self, vars: &[(&str, &str)]) -> Option<TestApp> {
        match self {
            Self::Memory => Some(TestApp::spawn_with(vars).await),
            Self::Postgres => {
                let database = TestDatabase::create().await?;
                let owned = postgres_vars(database.config());
                let mut all: Vec<(&str, &str)> = owned
                    .iter()
                    .map(|(key, value)| (*key, value.as_str()))
                    .collect();
                all.extend_from_slice(vars);
                let mut app = TestApp::spawn_with(&all).await;
                app.database = Some(database);
                Some(app)
            }
        }
    }
}

/// The `PSQL_*` variables that point a server at `config`.
pub fn postgres_vars(config: &PgConfig) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("PSQL_HOST", config.host.clone()),
        ("PSQL_PORT", config.port.to_string()),
        ("PSQL_USER", config.user.clone()),
        ("PSQL_DB", config.database.clone()),
    ];
    if let Some(password) = &config.password {
        vars.push(("PSQL_PASSWORD", password.clone()));
    }
    vars
}

/// Instantiates `async fn name(backend: Backend)` test bodies once per store:
/// `memory::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::common::Backend::Memory).await;
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The `error.code` of an error envelope (panics on anything else).
    pub fn error_code(&self) -> &str {
        assert_eq!(
            self.body["status"], "Error",
            "not an error envelope: {:?}",
            self.body
        );
        self.body["error"]["code"].as_str().expect("error.code")
    }

    /// `data` of a success envelope (panics on anything else).
    pub fn data(&self) -> &Value {
        assert_eq!(
            self.body["status"], "Success",
            "not a success envelope: {self:?}"
        );
        &self.body["data"]
    }
}

/// Asserts that `text` (a log, a database dump: `what`) holds none of
/// `secrets` in clear.
pub fn assert_holds_no_secret(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "the {what} holds a secret in clear: {secret}\n{text}"
        );
    }
}

/// The SHA-256 of `password` as lower-case hex: what clients send.
pub fn digest(password: &str) -> String {
    hex(&Sha256::digest(password.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl TestApp {
    /// A server on the in-memory store with test settings (bcrypt cost 4).
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Like [`TestApp::spawn`], with extra or overriding variables.
    pub async fn spawn_with(vars: &[(&str, &str)]) -> Self {
        let mut all: HashMap<String, String> =
            [("PORT", "0"), ("BCRYPT_COST", "4"), ("JWT_SECRET", SECRET)]
                .into_iter()
                .chain(GENEROUS_LIMITS.iter().copied())
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect();
        for (key, value) in vars {
            all.insert((*key).to_owned(), (*value).to_owned());
        }
        let application = Application::build(Config::from_vars(all).expect("config"))
            .await
            .expect("application");
        let base = format!("http://{}", application.address());
        let state = Some(application.state().clone());
        actix_web::rt::spawn(application.run_until_stopped());
        Self {
            base,
            client: awc::Client::default(),
            state,
            database: None,
        }
    }

    /// Creates a verified instance administrator `email` (password `pw`) as
    /// `p-chat admin create-user --admin` does on the console, and logs in.
    pub async fn console_admin(&self, email: &str) -> TestUser {
        let state = self.state.as_ref().expect("an in-process server");
        let credentials = Credentials {
            email: Email::parse(email).expect("email"),
            password: PasswordDigest::of_password("pw"),
        };
        state
            .admin
            .create_user(Operator::Console, &credentials, InstanceRole::Admin)
            .await
            .expect("create an administrator");
        let token = Tokens::from(&self.authorize(email, "pw").await).access;
        let me = self.get("/users/me", Some(&token)).await;
        TestUser {
            id: me.data()["id"].as_str().expect("id").to_owned(),
            email: email.to_owned(),
            token,
        }
    }

    /// Sends a request with the given raw headers and reads the whole response.
    pub async fn send_with_headers(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let mut response = request.send_body(body.into()).await.expect("send");
        let bytes = response.body().limit(1 << 20).await.expect("body");
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body: if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).expect("a JSON body")
            },
        }
    }

    /// `http://host:port` of the server.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The throwaway database behind a PostgreSQL-backed server.
    pub fn database(&self) -> Option<&TestDatabase> {
        self.database.as_ref()
    }

    /// The services of an in-process server, for what no endpoint does
    /// on demand (e.g. the hourly pruning of room events).
    pub fn state(&self) -> &AppState {
        self.state.as_ref().expect("an in-process server")
    }

    /// A client for a server started elsewhere (e.g. a child process).
    pub fn connect(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: awc::Client::default(),
            state: None,
            database: None,
        }
    }

    /// Sends a request and reads the whole response.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        if let Some(content_type) = content_type {
            request = request.insert_header(("Content-Type", content_type));
        }
        let mut response = request.send_body(body.into()).await.expect("send");
        let bytes = response.body().limit(1 << 20).await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "response is not JSON: {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body,
        }
    }

    /// `GET path` for a response that is not JSON (the web client's files).
    pub async fn get_text(&self, path: &str) -> (StatusCode, HeaderMap, String) {
        let mut response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("send");
        let bytes = response.body().limit(1 << 20).await.expect("body");
        let text = String::from_utf8(bytes.to_vec()).expect("UTF-8 body");
        (response.status(), response.headers().clone(), text)
    }

    /// `GET path` with a raw `Authorization` header value.
    pub async fn get_with_authorization(&self, path: &str, authorization: &str) -> Reply {
        let mut response = self
            .client
            .get(format!("{}{path}", self.base))
            .insert_header(("Authorization", authorization))
            .send()
            .await
            .expect("send");
        let bytes = response.body().await.expect("body");
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body: serde_json::from_slice(&bytes).expect("JSON body"),
        }
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(
            "POST",
            path,
            None,
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    /// `GET path`, with a bearer token if given.
    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Reply {
        self.send("GET", path, bearer, None, Vec::new()).await
    }

    /// Registers and returns the verification token.
    pub async fn register(&self, email: &str, password: &str) -> String {
        let reply = self
            .post(
                "/session/register",
                json!({ "email": email, "password": digest(password) }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        reply.data()["VerificationToken"]
            .as_str()
            .expect("VerificationToken")
            .to_owned()
    }

    /// `GET /session/emailVerify` with the token.
    pub async fn verify(&self, token: &str) -> Reply {
        self.get(&format!("/session/emailVerify?verifyToken={token}"), None)
            .await
    }

    /// `POST /session/authorize`.
    pub async fn authorize(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/session/authorize",
            json!({ "email": email, "password": digest(password) }),
        )
        .await
    }

    /// `POST /session/refresh`.
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post(
            "/session/refresh",
            json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    /// Registers, verifies and logs in; returns the login's token set.
    pub async fn logged_in_user(&self, email: &str, password: &str) -> Tokens {
        let token = self.register(email, password).await;
        assert_eq!(self.verify(&token).await.status, StatusCode::OK);
        let reply = self.authorize(email, password).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        Tokens::from(&reply)
    }
}

/// The access and refresh tokens of a token set.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl From<&Reply> for Tokens {
    fn from(reply: &Reply) -> Self {
        let data = reply.data();
        Self {
            access: data["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            refresh: data["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        }
    }
}

/// A registered, verified, logged-in user: what room and message tests act as.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// `GET /users/me` `id`.
    pub id: String,
    /// The email it registered with.
    pub email: String,
    /// A valid access token.
    pub token: String,
}

impl TestApp {
    /// `method path` with `bearer` as the access token and `body` (if any)
    /// as JSON: the one call shape of every endpoint outside `/session/*`.
    pub async fn call(&self, method: &str, path: &str, bearer: &str, body: Option<Value>) -> Reply {
        match body {
            Some(body) => {
                self.send(
                    method,
                    path,
                    Some(bearer),
                    Some("application/json"),
                    body.to_string(),
                )
                .await
            }
            None => {
                self.send(method, path, Some(bearer), None, Vec::new())
                    .await
            }
        }
    }

    /// Registers, verifies and logs in `email` (password `pw`) and reads its id.
    pub async fn user(&self, email: &str) -> TestUser {
        let token = self.logged_in_user(email, "pw").await.access;
        let me = self.get("/users/me", Some(&token)).await;
        assert_eq!(me.status, StatusCode::OK, "{me:?}");
        TestUser {
            id: me.data()["id"].as_str().expect("id").to_owned(),
            email: email.to_owned(),
            token,
        }
    }

    /// `POST /rooms` `body` as `owner`: asserts the 201 and returns the room object.
    pub async fn create_room(&self, owner: &TestUser, body: Value) -> Value {
        let reply = self.call("POST", "/rooms", &owner.token, Some(body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        reply.data().clone()
    }

    /// `POST /rooms/{room}/messages` of `body` as `author`: asserts the 201
    /// and returns the stored message.
    pub async fn post_message(&self, author: &TestUser, room: &str, body: &str) -> Value {
        let reply = self
            .call(
                "POST",
                &format!("/rooms/{room}/messages"),
                &author.token,
                Some(serde_json::json!({ "body": body })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        reply.data().clone()
    }
}
