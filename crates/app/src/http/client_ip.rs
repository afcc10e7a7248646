//! Who is on the other end: the client address every per-IP limit is keyed
//! by, for HTTP requests and WebSocket upgrades alike.
//!
//! `X-Forwarded-For` is believed only when the TCP peer is one of the
//! `TRUSTED_PROXIES`: then the right-most address in it that is not itself a
//! trusted proxy is the client (addresses left of it were written by the
//! client and prove nothing). From anyone else the header is ignored, so a
//! client cannot pick its own rate-limit key.

use std::future::{Ready, ready};
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use actix_web::dev::Payload;
use actix_web::http::header::HeaderName;
use actix_web::{FromRequest, HttpRequest, web};
use p_chat_domain::DomainError;

use super::error::ApiError;
use crate::state::AppState;

/// The header reverse proxies append the address they were connected from to.
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The prefix an IPv6 client is keyed by: one site's /64 is one client, since
/// anyone with a single IPv6 address can usually use its whole /64.
const IPV6_CLIENT_PREFIX: u8 = 64;

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`), or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    network: IpAddr,
    prefix: u8,
}

/// Text that is neither an IP address nor `address/prefix` within the
/// address family's bits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or CIDR network: {0:?}")]
pub struct BadIpNet(String);

impl IpNet {
    /// Whether `ip` lies in this network (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.network, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(ip)), 32, self.prefix) == u128::from(u32::from(network))
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                masked(u128::from(ip), 128, self.prefix) == u128::from(network)
            }
            _ => false,
        }
    }
}

/// `bits` keeping only its first `prefix` of `width` bits.
fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    let host_bits = u32::from(width - prefix.min(width));
    bits.checked_shr(host_bits)
        .and_then(|network| network.checked_shl(host_bits))
        .unwrap_or(0)
}

impl FromStr for IpNet {
    type Err = BadIpNet;

    fn from_str(text: &str) -> Result<Self, BadIpNet> {
        let bad = || BadIpNet(text.to_owned());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let address = address.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let width = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().map_err(|_| bad())?,
            None => width,
        };
        if prefix > width {
            return Err(bad());
        }
        let network = match address {
            IpAddr::V4(ip) => {
                let bits = masked(u128::from(u32::from(ip)), 32, prefix);
                IpAddr::V4(u32::try_from(bits).map_err(|_| bad())?.into())
            }
            IpAddr::V6(ip) => IpAddr::V6(masked(u128::from(ip), 128, prefix).into()),
        };
        Ok(Self { network, prefix })
    }
}

/// `TRUSTED_PROXIES`: the reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and networks (empty: none).
    pub fn parse_list(list: &str) -> Result<Self, BadIpNet> {
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(ip))
    }

    /// The client behind a connection from `peer` that carried the
    /// `X-Forwarded-For` values `forwarded` (in header order).
    pub fn client<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = forwarded.flat_map(|value| value.split(',')).collect();
        for hop in hops.into_iter().rev() {
            // An entry that is no address ends what can be believed: the
            // client is the last hop a trusted proxy vouched for.
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }

    /// Whether `request` came straight from a trusted proxy, whose headers
    /// (such as `X-Request-Id`) are then believed.
    pub fn trusts_peer(&self, request: &HttpRequest) -> bool {
        request
            .peer_addr()
            .is_some_and(|peer| self.trusts(peer.ip().to_canonical()))
    }

    /// The client of `request` (`None` without a TCP peer, which only test
    /// requests lack).
    pub fn client_of(&self, request: &HttpRequest) -> Option<IpAddr> {
        let peer = request.peer_addr()?.ip();
        let forwarded = request
            .headers()
            .get_all(&X_FORWARDED_FOR)
            .filter_map(|value| value.to_str().ok());
        Some(self.client(peer, forwarded))
    }
}

/// The client address of a request, resolved through [`TrustedProxies`] and
/// reduced to the key a per-IP limit counts it under (an IPv4 address, or an
/// IPv6 address's /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The key of the client at `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V6(ip) => Self(IpAddr::V6(Ipv6Addr::from(masked(
                u128::from(ip),
                128,
                IPV6_CLIENT_PREFIX,
            )))),
            v4 => Self(v4),
        }
    }

    /// The client of `request` as seen through the configured proxies.
    pub fn from_http(request: &HttpRequest, trusted: &TrustedProxies) -> Result<Self, ApiError> {
        trusted
            .client_of(request)
            .map(Self::of)
            .ok_or_else(|| DomainError::Internal("the request has no peer address".into()).into())
    }
}

impl FromRequest for ClientIp {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(match request.app_data::<web::Data<AppState>>() {
            Some(state) => Self::from_http(request, &state.trusted_proxies),
            None => Err(DomainError::Internal("application state is not registered".into()).into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn trusted(list: &str) -> TrustedProxies {
        TrustedProxies::parse_list(list).unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.9.9")));
        let single: IpNet = "192.0.2.7".parse().unwrap();
        assert!(single.contains(ip("192.0.2.7")));
        assert!(!single.contains(ip("192.0.2.8")));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.1.2.3")));
        let everything: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(everything.contains(ip("203.0.113.1")));
        let host_bits_set: IpNet = "10.1.2.3/8".parse().unwrap();
        assert!(host_bits_set.contains(ip("10.200.0.1")));
    }

    #[test]
    fn bad_networks_are_refused() {
        for text in ["", "10.0.0", "10.0.0.0/33", "::/129", "10.0.0.0/x", "host"] {
            assert!(text.parse::<IpNet>().is_err(), "{text:?}");
        }
        assert!(TrustedProxies::parse_list("10.0.0.1, nope").is_err());
        assert_eq!(
            TrustedProxies::parse_list(" , ").unwrap(),
            TrustedProxies::default()
        );
    }

    #[test]
    fn forwarded_for_from_an_untrusted_peer_is_ignored() {
        let proxies = trusted("10.0.0.1");
        assert_eq!(
            proxies.client(ip("203.0.113.9"), ["198.51.100.1"].into_iter()),
            ip("203.0.113.9")
        );
        assert_eq!(
            TrustedProxies::default().client(ip("127.0.0.1"), ["198.51.100.1"].into_iter()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let proxies = trusted("10.0.0.0/8");
        // The client claims 1.1.1.1; the outer proxy saw 198.51.100.1.
        let header = ["1.1.1.1, 198.51.100.1, 10.0.0.5"];
        assert_eq!(
            proxies.client(ip("10.0.0.1"), header.into_iter()),
            ip("198.51.100.1")
        );
        // Several headers read as one list, in order.
        assert_eq!(
            proxies.client(ip("10.0.0.1"), ["1.1.1.1", "198.51.100.2"].into_iter()),
            ip("198.51.100.2")
        );
        // Only proxies in the chain: the furthest one.
        assert_eq!(
            proxies.client(ip("10.0.0.1"), ["10.0.0.9"].into_iter()),
            ip("10.0.0.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            proxies.client(ip("10.0.0.1"), std::iter::empty()),
            ip("10.0.0.1")
        );
        // Garbage ends the chain at the last vouched-for hop.
        assert_eq!(
            proxies.client(ip("10.0.0.1"), ["198.51.100.3, junk, 10.0.0.7"].into_iter()),
            ip("10.0.0.7")
        );
    }

    #[test]
    fn an_ipv6_client_is_keyed_by_its_64() {
        assert_eq!(
            ClientIp::of(ip("2001:db8:1:2:aaaa::1")),
            ClientIp::of(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            ClientIp::of(ip("2001:db8:1:2::1")),
            ClientIp::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            ClientIp::of(ip("::ffff:192.0.2.1")),
            ClientIp(ip("192.0.2.1"))
        );
    }
}
