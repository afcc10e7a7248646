//! The bearer-token extractor (RFC 6750): turns `Authorization: Bearer <jwt>`
//! into the authenticated [`Principal`], or a 401 with `WWW-Authenticate`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use p_chat_domain::DomainError;
use p_chat_domain::services::Principal;

use super::error::ApiError;
use crate::state::AppState;

/// The caller of an endpoint that needs an access token.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(pub Principal);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let token = bearer_token(request).and_then(|token| token.ok_or(ApiError::MissingToken));
        let state = request.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token?;
            let state = state.ok_or_else(|| {
                DomainError::Internal("application state is not registered".into())
            })?;
            Ok(Self(state.sessions.authenticate(&token).await?))
        })
    }
}

/// The token of the request's `Authorization: Bearer` header: `Ok(None)`
/// without the header, an error when it is present but malformed.
pub fn bearer_token(request: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::MalformedToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::MalformedToken)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || !is_b64token(token) {
        return Err(ApiError::MalformedToken);
    }
    Ok(Some(token.to_owned()))
}

/// RFC 6750's `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn parse(header_value: &str) -> Result<Option<String>, ApiError> {
        bearer_token(
            &TestRequest::default()
                .insert_header((header::AUTHORIZATION, header_value))
                .to_http_request(),
        )
    }

    #[test]
    fn a_bearer_token_is_extracted_whatever_the_scheme_case() {
        assert_eq!(
            parse("Bearer abc.def-ghi_").unwrap().as_deref(),
            Some("abc.def-ghi_")
        );
        assert_eq!(parse("bearer abc==").unwrap().as_deref(), Some("abc=="));
    }

    #[test]
    fn no_header_is_no_token() {
        assert!(
            bearer_token(&TestRequest::default().to_http_request())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn other_schemes_and_malformed_tokens_are_refused() {
        for value in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer ===",
            "Token abc",
        ] {
            assert!(
                matches!(parse(value), Err(ApiError::MalformedToken)),
                "{value:?}"
            );
        }
    }
}
