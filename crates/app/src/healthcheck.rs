//! `p-chat healthcheck`: asks the server configured in this environment
//! whether it is ready, for container health checks (the slim image has no
//! curl or wget).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use actix_web::http::StatusCode;

use crate::config::Config;

/// How long the check waits for `/ready`, which itself gives the database
/// two seconds: a container runtime's own timeout should be longer.
pub const TIMEOUT: Duration = Duration::from_secs(4);

/// Why the server is not healthy (the check then exits 1).
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    /// `PORT=0` names no port to ask.
    #[error("PORT is 0 (a random port): there is no known address to check")]
    NoPort,
    /// Nothing answered.
    #[error("no answer from http://{address}/ready: {reason}")]
    Unreachable {
        /// Where it asked.
        address: SocketAddr,
        /// What the client said.
        reason: String,
    },
    /// The server answered, but not ready.
    #[error("http://{address}/ready answered {status}")]
    NotReady {
        /// Where it asked.
        address: SocketAddr,
        /// The status it got.
        status: StatusCode,
    },
}

/// Asks `GET /ready` of the server this configuration describes (on the
/// loopback when it listens on every interface).
pub async fn check(config: &Config) -> Result<(), Unhealthy> {
    if config.port == 0 {
        return Err(Unhealthy::NoPort);
    }
    let address = SocketAddr::new(reachable(config.bind_address), config.port);
    let response = awc::Client::builder()
        .timeout(TIMEOUT)
        .finish()
        .get(format!("http://{address}/ready"))
        .send()
        .await
        .map_err(|error| Unhealthy::Unreachable {
            address,
            reason: error.to_string(),
        })?;
    match response.status() {
        StatusCode::OK => Ok(()),
        status => Err(Unhealthy::NotReady { address, status }),
    }
}

/// The address to reach a server listening on `bind`: the loopback for the
/// unspecified address (which cannot be connected to).
fn reachable(bind: IpAddr) -> IpAddr {
    match bind {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_is_checked_on_the_loopback() {
        assert_eq!(
            reachable("0.0.0.0".parse().unwrap()),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(
            reachable("::".parse().unwrap()),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        );
        let own: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(reachable(own), own);
    }
}
