//! JSON Web Tokens for access and refresh.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use p_chat_domain::ports::{TokenError, TokenIssuer};
use p_chat_domain::session::{SessionId, TokenClaims, TokenKind};
use p_chat_domain::user::UserId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `iss` and `aud` of every token this server mints.
const ISSUER: &str = "p-chat";

/// Header `typ` and `scope` claim of each kind. Both are checked on verify.
fn markers(kind: TokenKind) -> (&'static str, &'static str) {
    match kind {
        // RFC 9068's media type for JWT access tokens.
        TokenKind::Access => ("at+jwt", "chat"),
        TokenKind::Refresh => ("refresh+jwt", "refresh"),
    }
}

/// The JWT payload.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    sid: Uuid,
    jti: Uuid,
    iss: String,
    aud: String,
    scope: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// Signs and verifies HS256 JWTs with one shared secret.
///
/// Verification pins the algorithm to HS256 (so `none`, HS512 or asymmetric
/// algorithms are refused), requires every registered claim, checks issuer,
/// audience, header `typ` and `scope` against the expected kind, refuses
/// any `crit` header, and leaves time (`exp`, `nbf`, the lifetime) to the
/// domain's clock and session policy.
pub struct JwtIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtIssuer {
    /// An issuer signing with `secret` (`JWT_SECRET`).
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "sub", "iss", "aud", "jti"]);
        // Expiry is a domain rule, checked against the injected clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }
}

fn timestamp(seconds: i64) -> Result<DateTime<Utc>, TokenError> {
    DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| TokenError::Rejected(format!("time claim out of range: {seconds}")))
}

impl TokenIssuer for JwtIssuer {
    fn sign(&self, claims: &TokenClaims) -> Result<String, TokenError> {
        let (typ, scope) = markers(claims.kind);
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(typ.to_owned());
        let payload = Claims {
            sub: claims.user_id.as_uuid(),
            sid: claims.session_id.as_uuid(),
            jti: claims.token_id,
            iss: ISSUER.to_owned(),
            aud: ISSUER.to_owned(),
            scope: scope.to_owned(),
            iat: claims.issued_at.timestamp(),
            nbf: claims.not_before.timestamp(),
            exp: claims.expires_at.timestamp(),
        };
        encode(&header, &payload, &self.encoding)
            .map_err(|error| TokenError::Signing(error.to_string()))
    }

    fn verify(&self, expected: TokenKind, token: &str) -> Result<TokenClaims, TokenError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| TokenError::Rejected(error.to_string()))?;
        let (typ, scope) = markers(expected);
        if data.header.typ.as_deref() != Some(typ) || data.claims.scope != scope {
            return Err(TokenError::Rejected(format!("not a {expected:?} token")));
        }
        // RFC 7515 4.1.11: extensions named in `crit` must be understood,
        // and this server understands none.
        if data.header.crit.is_some() {
            return Err(TokenError::Rejected("critical header extension".to_owned()));
        }
        let claims = data.claims;
        Ok(TokenClaims {
            kind: expected,
            user_id: UserId::from_uuid(claims.sub),
            session_id: SessionId::from_uuid(claims.sid),
            token_id: claims.jti,
            issued_at: timestamp(claims.iat)?,
            not_before: timestamp(claims.nbf)?,
            expires_at: timestamp(claims.exp)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use jsonwebtoken::{Header, encode};
    use serde_json::json;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims(kind: TokenKind) -> TokenClaims {
        TokenClaims::mint(
            kind,
            UserId::new(),
            SessionId::new(),
            Utc::now(),
            TimeDelta::minutes(15),
        )
    }

    fn payload(original: &TokenClaims, scope: &str) -> serde_json::Value {
        json!({
            "sub": original.user_id.as_uuid(), "sid": original.session_id.as_uuid(),
            "jti": original.token_id, "iss": "p-chat", "aud": "p-chat", "scope": scope,
            "iat": original.issued_at.timestamp(), "nbf": original.issued_at.timestamp(),
            "exp": original.expires_at.timestamp(),
        })
    }

    #[test]
    fn a_signed_token_verifies_to_the_same_claims() {
        let issuer = JwtIssuer::new(SECRET);
        for kind in [TokenKind::Access, TokenKind::Refresh] {
            let original = claims(kind);
            let token = issuer.sign(&original).unwrap();
            assert_eq!(issuer.verify(kind, &token).unwrap(), original);
        }
    }

    #[test]
    fn the_token_carries_every_claim_the_contract_names() {
        let issuer = JwtIssuer::new(SECRET);
        let token = issuer.sign(&claims(TokenKind::Access)).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let payload: serde_json::Value = jsonwebtoken::dangerous::insecure_decode(&token)
            .map(|data| data.claims)
            .unwrap();
        for claim in [
            "sub", "exp", "iat", "nbf", "jti", "iss", "aud", "scope", "sid",
        ] {
            assert!(payload.get(claim).is_some(), "missing {claim}");
        }
    }

    #[test]
    fn each_kind_is_refused_where_the_other_is_expected() {
        let issuer = JwtIssuer::new(SECRET);
        let access = issuer.sign(&claims(TokenKind::Access)).unwrap();
        let refresh = issuer.sign(&claims(TokenKind::Refresh)).unwrap();
        assert!(issuer.verify(TokenKind::Refresh, &access).is_err());
        assert!(issuer.verify(TokenKind::Access, &refresh).is_err());
    }

    #[test]
    fn a_matching_typ_with_the_other_scope_is_refused() {
        let original = claims(TokenKind::Access);
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        let token = encode(
            &header,
            &payload(&original, "refresh"),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(
            JwtIssuer::new(SECRET)
                .verify(TokenKind::Access, &token)
                .is_err()
        );
    }

    #[test]
    fn another_key_or_another_algorithm_is_refused() {
        let original = claims(TokenKind::Access);
        let other_key = JwtIssuer::new(b"another secret, also 32 bytes!!!")
            .sign(&original)
            .unwrap();
        assert!(
            JwtIssuer::new(SECRET)
                .verify(TokenKind::Access, &other_key)
                .is_err()
        );

        let mut header = Header::new(Algorithm::HS512);
        header.typ = Some("at+jwt".into());
        let hs512 = encode(
            &header,
            &payload(&original, "chat"),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(
            JwtIssuer::new(SECRET)
                .verify(TokenKind::Access, &hs512)
                .is_err()
        );
    }

    #[test]
    fn tampered_and_unsigned_tokens_are_refused() {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let issuer = JwtIssuer::new(SECRET);
        let original = claims(TokenKind::Access);
        let token = issuer.sign(&original).unwrap();
        let parts: Vec<&str> = token.split('.').collect();

        let mut forged = payload(&original, "chat");
        forged["sub"] = json!(UserId::new().as_uuid());
        let forged = engine.encode(forged.to_string());
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert!(issuer.verify(TokenKind::Access, &tampered).is_err());

        let none_header = engine.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert!(issuer.verify(TokenKind::Access, &unsigned).is_err());

        for garbage in ["", "abc", "a.b.c", "..", &format!("{token}x")] {
            assert!(
                issuer.verify(TokenKind::Access, garbage).is_err(),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn nbf_is_handed_to_the_domain_as_it_is() {
        let mut original = claims(TokenKind::Access);
        original.not_before = original.issued_at + TimeDelta::seconds(30);
        let issuer = JwtIssuer::new(SECRET);
        let token = issuer.sign(&original).unwrap();
        let verified = issuer.verify(TokenKind::Access, &token).unwrap();
        assert_eq!(verified.not_before, original.not_before);
        assert!(verified.is_expired_at(original.issued_at + TimeDelta::seconds(29)));
    }

    #[test]
    fn a_critical_header_extension_is_refused() {
        let original = claims(TokenKind::Access);
        for crit in [vec!["exp".to_owned()], vec!["b64".to_owned()], Vec::new()] {
            let mut header = Header::new(Algorithm::HS256);
            header.typ = Some("at+jwt".into());
            header.crit = Some(crit.clone());
            let token = encode(
                &header,
                &payload(&original, "chat"),
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap();
            assert!(
                JwtIssuer::new(SECRET)
                    .verify(TokenKind::Access, &token)
                    .is_err(),
                "crit {crit:?}"
            );
        }
    }

    #[test]
    fn a_token_missing_a_claim_is_refused() {
        let original = claims(TokenKind::Access);
        let mut body = payload(&original, "chat");
        body.as_object_mut().unwrap().remove("jti");
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        let token = encode(&header, &body, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(
            JwtIssuer::new(SECRET)
                .verify(TokenKind::Access, &token)
                .is_err()
        );
    }
}
