//! `X-Request-Id`: the id that ties a request's log lines together and that
//! a client or an operator quotes when something went wrong.

use std::fmt;

use actix_web::http::header::{HeaderMap, HeaderName};
use uuid::Uuid;

/// The header a request id arrives in (from a trusted proxy) and is echoed
/// in.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a proxy; longer ones are replaced.
const MAX_LEN: usize = 128;

/// A request's id: printable, header-safe and short, whoever made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// A new random id (a UUID).
    pub fn generate() -> Self {
        Self(Uuid::new_v4().to_string())
    }

    /// The id a proxy sent in `X-Request-Id`, if there is exactly one and it
    /// is 1 to 128 characters of letters, digits and `-_.:`; anything else
    /// (which could forge log lines or flood them) is ignored.
    pub fn from_proxy(headers: &HeaderMap) -> Option<Self> {
        let mut values = headers.get_all(&REQUEST_ID);
        let value = values.next()?.to_str().ok()?;
        let well_formed = (1..=MAX_LEN).contains(&value.len())
            && value
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(&byte));
        (values.next().is_none() && well_formed).then(|| Self(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(REQUEST_ID.clone(), HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn a_well_formed_id_from_a_proxy_is_kept() {
        let id = RequestId::from_proxy(&headers(&["req-7f3a.b:c_d"])).unwrap();
        assert_eq!(id.as_str(), "req-7f3a.b:c_d");
    }

    #[test]
    fn odd_or_repeated_ids_are_ignored() {
        let long = "a".repeat(MAX_LEN + 1);
        for bad in [
            &[""][..],
            &["with space"],
            &["a\"b"],
            &["{x}"],
            &[&long],
            &["a", "b"],
        ] {
            assert_eq!(RequestId::from_proxy(&headers(bad)), None, "{bad:?}");
        }
        assert_eq!(RequestId::from_proxy(&HeaderMap::new()), None);
        assert!(RequestId::from_proxy(&headers(&[&"a".repeat(MAX_LEN)])).is_some());
    }

    #[test]
    fn generated_ids_are_unique_uuids() {
        let (one, two) = (RequestId::generate(), RequestId::generate());
        assert_ne!(one, two);
        assert!(Uuid::parse_str(one.as_str()).is_ok());
    }
}
