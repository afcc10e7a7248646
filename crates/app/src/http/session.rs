//! `/session/*`: the seed's register, verify, authorize, refresh and logout.
//! Authentication failures here answer `401 {}` (the seed's contract).

use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use p_chat_domain::services::Credentials;
use p_chat_domain::session::TokenSet;
use p_chat_domain::user::{Email, PasswordDigest};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::bearer_token;
use super::envelope;
use super::error::ApiError;
use crate::state::AppState;

/// Body of register and authorize.
#[derive(Debug, Deserialize)]
pub struct CredentialsBody {
    email: String,
    password: String,
}

impl CredentialsBody {
    fn parse(&self) -> Result<Credentials, ApiError> {
        Ok(Credentials {
            email: Email::parse(&self.email).map_err(p_chat_domain::DomainError::from)?,
            password: PasswordDigest::parse(&self.password)
                .map_err(p_chat_domain::DomainError::from)?,
        })
    }
}

/// Query of `GET /session/emailVerify`.
#[derive(Debug, Deserialize)]
pub struct VerifyQuery {
    #[serde(rename = "verifyToken")]
    verify_token: String,
}

/// Body of refresh, and of logout without a bearer token.
#[derive(Debug, Deserialize)]
pub struct RefreshBody {
    refresh_token: String,
}

/// The token set as the seed spells it.
#[derive(Debug, Serialize)]
struct TokenSetBody {
    access_token: String,
    refresh_token: String,
    access_token_valid_to: DateTime<Utc>,
    refresh_token_valid_to: DateTime<Utc>,
}

impl From<TokenSet> for TokenSetBody {
    fn from(tokens: TokenSet) -> Self {
        Self {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            access_token_valid_to: tokens.access_token_valid_to,
            refresh_token_valid_to: tokens.refresh_token_valid_to,
        }
    }
}

/// `POST /session/register`: creates an unverified account. With SMTP
/// configured the verification link is mailed and the response omits
/// `VerificationToken`; without, the response carries it (the seed's shape).
pub async fn register(
    state: web::Data<AppState>,
    body: web::Json<CredentialsBody>,
) -> Result<HttpResponse, ApiError> {
    let token = state.accounts.register(&body.parse()?).await?;
    Ok(envelope::ok(match token {
        Some(token) => json!({
            "VerificationToken": token.expose(),
            "message": REGISTERED,
        }),
        None => json!({ "message": REGISTERED }),
    }))
}

/// The seed's `data.message` of a successful registration.
const REGISTERED: &str = "User registered successfully";

/// `GET /session/emailVerify?verifyToken=...`: verifies the email and logs in.
pub async fn verify_email(
    state: web::Data<AppState>,
    query: web::Query<VerifyQuery>,
) -> Result<HttpResponse, ApiError> {
    let tokens = state
        .accounts
        .verify_email(&query.verify_token)
        .await
        .map_err(ApiError::session)?;
    Ok(envelope::ok(TokenSetBody::from(tokens)))
}

/// `POST /session/authorize`: logs in with email and password digest.
pub async fn authorize(
    state: web::Data<AppState>,
    body: web::Json<CredentialsBody>,
) -> Result<HttpResponse, ApiError> {
    let tokens = state
        .sessions
        .authorize(&body.parse()?)
        .await
        .map_err(ApiError::session)?;
    Ok(envelope::ok(TokenSetBody::from(tokens)))
}

/// `POST /session/refresh`: rotates the refresh token.
pub async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let tokens = state
        .sessions
        .refresh(&body.refresh_token)
        .await
        .map_err(ApiError::session)?;
    Ok(envelope::ok(TokenSetBody::from(tokens)))
}

/// `POST /session/logout`: ends the login session named by the bearer access
/// token or, without one, by the `refresh_token` in the body.
pub async fn logout(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let sessions = &state.sessions;
    match bearer_token(&request).map_err(|_| ApiError::SessionRejected)? {
        Some(access_token) => {
            let principal = sessions
                .authenticate(&access_token)
                .await
                .map_err(ApiError::session)?;
            sessions
                .end(principal.session_id)
                .await
                .map_err(ApiError::from)?;
        }
        None => {
            let body =
                web::Json::<RefreshBody>::from_request(&request, &mut payload.into_inner()).await?;
            sessions
                .end_by_refresh_token(&body.refresh_token)
                .await
                .map_err(ApiError::session)?;
        }
    }
    Ok(envelope::ok(json!({ "message": "Logged out" })))
}
