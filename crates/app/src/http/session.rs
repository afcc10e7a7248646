//! `/session/*`: the seed's register, verify, authorize, refresh and logout.
//! Authentication failures here answer `401 {}` (the seed's contract).

use actix_web::http::header::{self, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use p_chat_domain::services::{Credentials, Registration};
use p_chat_domain::session::{LoginContext, TokenSet, UserAgent};
use p_chat_domain::user::{Email, PasswordDigest};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::bearer_token;
use super::client_ip::ClientIp;
use super::envelope;
use super::error::ApiError;
use crate::state::AppState;

/// Body of authorize.
#[derive(Debug, Deserialize)]
pub struct CredentialsBody {
    email: String,
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
#[derive(Debug, Deserialize)]
pub struct RegisterBody {
    #[serde(flatten)]
    credentials: CredentialsBody,
    invite: Option<String>,
}

/// Body of resendVerification and forgotPassword.
#[derive(Debug, Deserialize)]
pub struct EmailBody {
    email: String,
}

/// Body of resetPassword.
#[derive(Debug, Deserialize)]
pub struct ResetBody {
    token: String,
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
/// Limited per client IP and per email.
pub async fn register(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: web::Json<RegisterBody>,
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

/// `GET /session/emailVerify?verifyToken=...`: verifies the email and logs
/// in. Limited per client IP.
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
pub async fn authorize(
    state: web::Data<AppState>,
    request: HttpRequest,
    ip: ClientIp,
    body: web::Json<CredentialsBody>,
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
/// token or, without one, by the `refresh_token` in the body. Neither (no
/// bearer and no body at all) is a failed authentication like any other.
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
        None if request.headers().get(CONTENT_TYPE).is_none() => {
            return Err(ApiError::SessionRejected.into());
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

/// `POST /session/resendVerification` `{email}`: always 200, whether or not
/// the address is registered; mails a new link to an unverified account.
pub async fn resend_verification(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: web::Json<EmailBody>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email)?;
    state.limits.recovery.check(ip, &email)?;
    state.recovery.resend_verification(&email).await?;
    Ok(envelope::ok(json!({
        "message": "If this address has an unverified account, a new verification link was sent",
    })))
}

/// `POST /session/forgotPassword` `{email}`: always 200, whether or not the
/// address is registered; mails a reset link to an enabled account.
pub async fn forgot_password(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: web::Json<EmailBody>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email)?;
    state.limits.recovery.check(ip, &email)?;
    state.recovery.forgot_password(&email).await?;
    Ok(envelope::ok(json!({
        "message": "If this address has an account, a password reset link was sent",
    })))
}

/// `POST /session/resetPassword` `{token, password}`: sets the new password
/// and ends every session of the account.
pub async fn reset_password(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: web::Json<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    state.limits.reset_ip.check(&ip)?;
    let password = PasswordDigest::parse(&body.password)?;
    state
        .recovery
        .reset_password(&body.token, &password)
        .await
        .map_err(ApiError::session)?;
    Ok(envelope::ok(
        json!({ "message": "Password reset; log in with the new password" }),
    ))
}
