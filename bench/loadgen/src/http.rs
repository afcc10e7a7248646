//! The few REST calls of the p-chat setup, as plain HTTP/1.1 over one TCP
//! connection each (`Connection: close`). They are not measured, so no
//! HTTP client crate (awc would bring actix's single-threaded runtime,
//! reqwest hyper) is worth its build for them.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::BenchError;

/// A p-chat API at one `host:port`, answering in its success/error envelope.
#[derive(Debug, Clone)]
pub struct Api {
    authority: String,
}

impl Api {
    /// The API at `base` (`http://host:port`, no path: TLS is not spoken).
    pub fn new(base: &str) -> Result<Self, BenchError> {
        let authority = base
            .strip_prefix("http://")
            .ok_or_else(|| BenchError::new(format!("not an http:// base URL: {base}")))?
            .trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(BenchError::new(format!("a base URL has no path: {base}")));
        }
        Ok(Self {
            authority: authority.to_owned(),
        })
    }

    /// `host:port`, for the WebSocket URL.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Calls `method path` with an optional JSON body and bearer token;
    /// the envelope's `data` on success, its text as the error otherwise.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<Value, BenchError> {
        let payload = body.map(Value::to_string).unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n",
            self.authority
        );
        if body.is_some() {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                payload.len()
            ));
        }
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(&payload);

        let mut stream = TcpStream::connect(&self.authority).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        let envelope = parse_response(&answer)
            .map_err(|why| BenchError::new(format!("{method} {path}: {why}")))?;
        match envelope.get("status").and_then(Value::as_str) {
            Some("Success") => Ok(envelope.get("data").cloned().unwrap_or(Value::Null)),
            _ => Err(BenchError::new(format!("{method} {path}: {envelope}"))),
        }
    }
}

/// The JSON body of a whole HTTP/1.1 response with a plain (not chunked) body.
fn parse_response(answer: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(answer).map_err(|_| "a response that is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("a response without a blank line after its head")?;
    let chunked = head.lines().any(|line| {
        line.to_ascii_lowercase()
            .replace(' ', "")
            .starts_with("transfer-encoding:chunked")
    });
    if chunked {
        return Err("a chunked response (not spoken by this client)".to_owned());
    }
    serde_json::from_str(body).map_err(|error| format!("{error} in {head}\r\n\r\n{body}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
    use super::*;

    #[test]
    fn a_response_body_is_read_after_its_head() {
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n{\"status\":\"Success\"}";
        assert_eq!(parse_response(answer).unwrap()["status"], "Success");
    }

    #[test]
    fn a_chunked_response_is_refused_rather_than_misread() {
        let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}\r\n0\r\n\r\n";
        assert!(parse_response(answer).unwrap_err().contains("chunked"));
    }

    #[test]
    fn a_base_url_is_http_and_has_no_path() {
        assert_eq!(
            Api::new("http://127.0.0.1:8080/").unwrap().authority(),
            "127.0.0.1:8080"
        );
        assert!(Api::new("https://127.0.0.1:8080").is_err());
        assert!(Api::new("http://127.0.0.1:8080/api").is_err());
    }
}
