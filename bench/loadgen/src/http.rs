//! The few REST calls of the p-chat setup, with ureq (blocking, plain
//! HTTP, on tokio's blocking pool): they are not measured, so a small
//! synchronous client is enough (awc would bring actix's single-threaded
//! runtime, reqwest hyper and tower).

use serde_json::Value;
use ureq::Agent;

use crate::error::BenchError;

/// A p-chat API at one `host:port`, answering in its success/error envelope.
#[derive(Debug, Clone)]
pub struct Api {
    authority: String,
    agent: Agent,
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
        // Error statuses are answers too: their envelope says why.
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            authority: authority.to_owned(),
            agent,
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
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.authority))
            .header("Accept", "application/json");
        if body.is_some() {
            request = request.header("Content-Type", "application/json");
        }
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(body.map(Value::to_string).unwrap_or_default())
            .map_err(|error| BenchError::new(format!("{method} {path}: {error}")))?;
        let agent = self.agent.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let mut response = agent.run(request)?;
            response.body_mut().read_json::<Value>()
        })
        .await
        .map_err(|error| BenchError::new(format!("{method} {path}: {error}")))?;
        let envelope =
            answer.map_err(|error| BenchError::new(format!("{method} {path}: {error}")))?;
        match envelope.get("status").and_then(Value::as_str) {
            Some("Success") => Ok(envelope.get("data").cloned().unwrap_or(Value::Null)),
            _ => Err(BenchError::new(format!("{method} {path}: {envelope}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
    use super::*;

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
