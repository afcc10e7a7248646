//! The p-chat side of a run: accounts registered and verified through the
//! API (without SMTP the registration answer carries the verification token,
//! and redeeming it logs the account in), one private room per bench room
//! with its members added by its owner, and one authenticated WebSocket per
//! member. The server must be started with abuse limits far above the
//! bench's (bench/README.md, "The Rust benchmark").

use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Message, http::header::AUTHORIZATION};

use crate::error::BenchError;
use crate::fanout::{DISABLE_NAGLE, WsStream};
use crate::http::Api;
use crate::wire::Delivered;

/// The password every bench account gets: the SHA-256 (hex) of "bench
/// password", as clients send it (the same as bench/common.mjs).
const PASSWORD: &str = "bc2fcca475c6eabf6af10ecaca8ae19656566a83700766704a847f83516cbc06";

/// Setup calls in flight at once (registration is bcrypt on the server).
const SETUP_CONCURRENCY: usize = 16;

/// One bench room on p-chat: its id and its members' access tokens, the
/// owner (the room's sender) first.
#[derive(Debug, Clone)]
pub struct Room {
    /// The room's id, as `send` frames name it.
    pub id: String,
    /// An access token per member; the first is the owner's.
    pub tokens: Vec<String>,
}

/// An account ready to use: its id and an access token.
struct Account {
    id: String,
    token: String,
}

/// Registers `rooms × members` accounts and builds the rooms.
pub async fn set_up(api: &Api, rooms: usize, members: usize) -> Result<Vec<Room>, BenchError> {
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let accounts: Vec<Account> = stream::iter(0..rooms * members)
        .map(|index| new_account(api, format!("bench-{nonce}-{index}@example.com")))
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    let groups: Vec<&[Account]> = accounts.chunks(members.max(1)).collect();
    stream::iter(groups.into_iter().enumerate())
        .map(|(index, group)| new_room(api, format!("bench {nonce} {index}"), group))
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await
}

async fn new_account(api: &Api, email: String) -> Result<Account, BenchError> {
    let registered = api
        .call(
            "POST",
            "/session/register",
            Some(&json!({ "email": email, "password": PASSWORD })),
            None,
        )
        .await?;
    let verify_token = text(&registered, "VerificationToken")?;
    let tokens = api
        .call(
            "GET",
            &format!("/session/emailVerify?verifyToken={verify_token}"),
            None,
            None,
        )
        .await?;
    let token = text(&tokens, "access_token")?;
    let me = api.call("GET", "/users/me", None, Some(&token)).await?;
    Ok(Account {
        id: text(&me, "id")?,
        token,
    })
}

async fn new_room(api: &Api, name: String, members: &[Account]) -> Result<Room, BenchError> {
    let [owner, others @ ..] = members else {
        return Err(BenchError::new("a room needs at least one member"));
    };
    let room = api
        .call(
            "POST",
            "/rooms",
            Some(&json!({ "name": name, "visibility": "private" })),
            Some(&owner.token),
        )
        .await?;
    let id = text(&room, "id")?;
    for member in others {
        api.call(
            "POST",
            &format!("/rooms/{id}/members"),
            Some(&json!({ "user_id": member.id })),
            Some(&owner.token),
        )
        .await?;
    }
    Ok(Room {
        id,
        tokens: members.iter().map(|member| member.token.clone()).collect(),
    })
}

/// The string field `key` of an answer's `data`.
fn text(data: &Value, key: &str) -> Result<String, BenchError> {
    data.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| BenchError::new(format!("no {key} in {data}")))
}

/// A WebSocket authenticated with `token` on the upgrade, once `ready`.
pub async fn connect(authority: &str, token: &str) -> Result<WsStream, BenchError> {
    let mut request = format!("ws://{authority}/ws").into_client_request()?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| BenchError::new("an access token that is no header value"))?;
    request.headers_mut().insert(AUTHORIZATION, bearer);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, None, DISABLE_NAGLE).await?;
    while let Some(frame) = socket.next().await {
        if let Message::Text(text) = frame? {
            let delivered: Delivered<'_> = serde_json::from_str(&text)?;
            if delivered.kind == "ready" {
                return Ok(socket);
            }
        }
    }
    Err(BenchError::new("the connection closed before `ready`"))
}
