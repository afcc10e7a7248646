//! `/session/*`: the seed's register, verify, authorize, refresh and logout.
//! Authentication failures here answer `401 {}` (the seed's contract).

use actix_web::http::header::{self, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use p_chat_domain::services::{Credentials, Registration};
use p_chat_domain::session::{LoginContext, TokenSet, UserAgent};
use p_chat_domain::user::{Email, PasswordDigest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::bearer_token;
use super::body::Json;
use super::client_ip::ClientIp;
use super::envelope::{self, Notice, Rejected, Success};
use super::error::ApiError;
use crate::state::AppState;

/// Body of authorize.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CredentialsBody {
    /// The account's address.
    #[schema(format = Email)]
    email: String,
    /// The SHA-256 of the password, in hex (the server bcrypts it).
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    password: String,
}

impl CredentialsBody {
    fn parse(&self) -> Result<Credentials, ApiError> {
        Ok(Credentials {
            email: Email::parse(&self.email)?,
            password: PasswordDigest::parse(&self.password)?,
        })
    }
}

/// Body of register: the credentials and, on an invite-only server, the
/// invitation's token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterBody {
    #[serde(flatten)]
    credentials: CredentialsBody,
    /// The invitation's token (`REGISTRATION=invite`).
    invite: Option<String>,
}

/// Body of resendVerification and forgotPassword.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailBody {
    /// The account's address.
    #[schema(format = Email)]
    email: String,
}

/// Body of resetPassword.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetBody {
    /// The token of the mailed reset link.
    token: String,
    /// The SHA-256 of the new password, in hex.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    password: String,
}

/// Where a login comes from: the request's `User-Agent`, for the session list.
pub fn login_context(request: &HttpRequest) -> LoginContext {
    LoginContext {
        user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .and_then(UserAgent::from_header),
    }
}

/// Query of `GET /session/emailVerify`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// The token of the verification link (or of the registration's answer).
    #[serde(rename = "verifyToken")]
    verify_token: String,
}

/// Body of refresh, and of logout without a bearer token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshBody {
    /// The refresh token of the session.
    refresh_token: String,
}

/// The token set as the seed spells it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenSetBody {
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

/// The answer to a registration: the seed's message and, without SMTP, the
/// verification token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// The token to verify the address with; absent when it was mailed.
    #[serde(rename = "VerificationToken", skip_serializing_if = "Option::is_none")]
    verification_token: Option<String>,
    /// `User registered successfully`.
    message: &'static str,
}

/// `POST /session/register`: creates an unverified account. With SMTP
/// configured the verification link is mailed and the response omits
/// `VerificationToken`; without, the response carries it (the seed's shape).
/// Limited per client IP and per email.
#[utoipa::path(post, path = "/session/register", tag = "session",
    responses(
        (status = 200, description = "Registered (unverified)", body = Success<Registered>),
        (status = 400, description = "`invalid_email`, `invalid_password`"),
        (status = 403, description = "`registration_closed`, `invite_invalid`"),
        (status = 409, description = "`email_taken`"),
        (status = 429, description = "`rate_limited`"),
    ))]
pub async fn register(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let registration = Registration {
        credentials: body.credentials.parse()?,
        invite: body.invite.clone(),
    };
    state
        .limits
        .register
        .check(ip, &registration.credentials.email)?;
    let token = state.accounts.register(&registration).await?;
    Ok(envelope::ok(Registered {
        verification_token: token.map(|token| token.expose().to_owned()),
        message: REGISTERED,
    }))
}

/// The seed's `data.message` of a successful registration.
const REGISTERED: &str = "User registered successfully";

/// `GET /session/emailVerify?verifyToken=...`: verifies the email and logs
/// in. Limited per client IP.
#[utoipa::path(get, path = "/session/emailVerify", tag = "session",
    params(VerifyQuery),
    responses(
        (status = 200, description = "Verified and logged in", body = Success<TokenSetBody>),
        (status = 401, description = "Unknown or expired token (the seed's `{}`)", body = Rejected),
        (status = 429, description = "`rate_limited`"),
    ))]
pub async fn verify_email(
    state: web::Data<AppState>,
    request: HttpRequest,
    ip: ClientIp,
    query: web::Query<VerifyQuery>,
) -> Result<HttpResponse, ApiError> {
    state.limits.verify_ip.check(&ip)?;
    let tokens = state
        .accounts
        .verify_email(&query.verify_token, &login_context(&request))
        .await
        .map_err(ApiError::session)?;
    Ok(envelope::ok(TokenSetBody::from(tokens)))
}

/// `POST /session/authorize`: logs in with email and password digest.
/// Limited per client IP here, and per account by the domain's throttle.
#[utoipa::path(post, path = "/session/authorize", tag = "session",
    responses(
        (status = 200, description = "Logged in", body = Success<TokenSetBody>),
        (status = 400, description = "`invalid_email`, `invalid_password`"),
        (status = 401, description = "Wrong credentials, unverified or disabled (the seed's `{}`)", body = Rejected),
        (status = 429, description = "`rate_limited`"),
    ))]
pub async fn authorize(
    state: web::Data<AppState>,
    request: HttpRequest,
    ip: ClientIp,
    body: Json<CredentialsBody>,
) -> Result<HttpResponse, ApiError> {
    state.limits.login_ip.check(&ip)?;
    let tokens = state
        .sessions
        .authorize(&body.parse()?, &login_context(&request))
        .await
        .map_err(ApiError::session)?;
    Ok(envelope::ok(TokenSetBody::from(tokens)))
}

/// `POST /session/refresh`: rotates the refresh token.
#[utoipa::path(post, path = "/session/refresh", tag = "session",
    responses(
        (status = 200, description = "A new token set", body = Success<TokenSetBody>),
        (status = 401, description = "Unknown, used or expired refresh token (the seed's `{}`)", body = Rejected),
    ))]
pub async fn refresh(
    state: web::Data<AppState>,
    body: Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let tokens = state
        .sessions
        .refresh(&body.refresh_token)
        .await
        .map_err(ApiError::session)?;
    Ok(envelope::ok(TokenSetBody::from(tokens)))
}

/// `POST /session/logout`: ends the login session named by the bearer access
/// token or, without one, by the `refresh_token` in the body. Neither (no
/// bearer and no body at all) is a failed authentication like any other; a
/// body sent beside a bearer token must still be a refresh body.
#[utoipa::path(post, path = "/session/logout", tag = "session",
    request_body(content = Option<RefreshBody>, description = "Without a bearer token: the session's refresh token"),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The session ended", body = Success<Notice>),
        (status = 400, description = "`malformed_json`, `invalid_body`"),
        (status = 401, description = "No valid token (the seed's `{}`)", body = Rejected),
        (status = 413, description = "`payload_too_large`"),
        (status = 415, description = "`unsupported_media_type`"),
    ))]
pub async fn logout(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let sessions = &state.sessions;
    let bearer = bearer_token(&request).map_err(|_| ApiError::SessionRejected)?;
    // A body, when one is sent, is read (and must be a refresh body) even
    // beside a bearer token, which then names the session.
    let body = match request.headers().get(CONTENT_TYPE) {
        Some(_) => {
            Some(Json::<RefreshBody>::from_request(&request, &mut payload.into_inner()).await?)
        }
        None => None,
    };
    match (bearer, body) {
        (Some(access_token), _) => {
            let principal = sessions
                .authenticate(&access_token)
                .await
                .map_err(ApiError::session)?;
            sessions
                .end(principal.session_id)
                .await
                .map_err(ApiError::from)?;
        }
        (None, Some(body)) => {
            sessions
                .end_by_refresh_token(&body.refresh_token)
                .await
                .map_err(ApiError::session)?;
        }
        (None, None) => return Err(ApiError::SessionRejected.into()),
    }
    Ok(envelope::ok(Notice::new("Logged out")))
}

/// `POST /session/resendVerification` `{email}`: always 200, whether or not
/// the address is registered; mails a new link to an unverified account.
#[utoipa::path(post, path = "/session/resendVerification", tag = "session",
    responses(
        (status = 200, description = "Sent if there was anyone to send to", body = Success<Notice>),
        (status = 400, description = "`invalid_email`"),
        (status = 429, description = "`rate_limited`"),
    ))]
pub async fn resend_verification(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: Json<EmailBody>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email)?;
    state.limits.recovery.check(ip, &email)?;
    state.recovery.resend_verification(&email).await?;
    Ok(envelope::ok(Notice::new(
        "If this address has an unverified account, a new verification link was sent",
    )))
}

/// `POST /session/forgotPassword` `{email}`: always 200, whether or not the
/// address is registered; mails a reset link to an enabled account.
#[utoipa::path(post, path = "/session/forgotPassword", tag = "session",
    responses(
        (status = 200, description = "Sent if there was anyone to send to", body = Success<Notice>),
        (status = 400, description = "`invalid_email`"),
        (status = 429, description = "`rate_limited`"),
    ))]
pub async fn forgot_password(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: Json<EmailBody>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email)?;
    state.limits.recovery.check(ip, &email)?;
    state.recovery.forgot_password(&email).await?;
    Ok(envelope::ok(Notice::new(
        "If this address has an account, a password reset link was sent",
    )))
}

/// `POST /session/resetPassword` `{token, password}`: sets the new password
/// and ends every session of the account.
#[utoipa::path(post, path = "/session/resetPassword", tag = "session",
    responses(
        (status = 200, description = "The password is changed", body = Success<Notice>),
        (status = 400, description = "`invalid_password`"),
        (status = 401, description = "Unknown, used or expired token (the seed's `{}`)", body = Rejected),
        (status = 429, description = "`rate_limited`"),
    ))]
pub async fn reset_password(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: Json<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    state.limits.reset_ip.check(&ip)?;
    let password = PasswordDigest::parse(&body.password)?;
    state
        .recovery
        .reset_password(&body.token, &password)
        .await
        .map_err(ApiError::session)?;
    Ok(envelope::ok(Notice::new(
        "Password reset; log in with the new password",
    )))
}
