//! Where webhooks may be sent: `http(s)://` URLs whose host resolves only to public addresses,
//! unless the operator allows private ones (`webhooks_allow_private`). Checked when an endpoint is
//! saved and again at every delivery, by the HTTP client's own resolver, so a name that later
//! resolves to an internal address (DNS rebinding) is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a URL cannot be a webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an absolute `http(s)://` URL with a host.
    #[error("{0}")]
    Invalid(&'static str),
    /// The host is, or resolves to, a private, loopback or link-local address.
    #[error("the URL's host {0} is a private, loopback or link-local address")]
    Private(String),
    /// The host does not resolve.
    #[error("the URL's host {0} does not resolve")]
    Unresolvable(String),
}

/// Whether `ip` is on the public internet: not loopback, private, link-local, shared (CGNAT),
/// unspecified, multicast, broadcast or documentation space.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || o[0] >= 240)
}

/// The IPv4 address an IPv6 one carries where a network may route it there (found by review):
/// IPv4-compatible `::a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d`, and 6to4 `2002:AABB:CCDD::`.
fn embedded_v4(s: [u16; 8]) -> Option<Ipv4Addr> {
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..6] == [0; 6] || s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return Some(v4(s[6], s[7]));
    }
    (s[0] == 0x2002).then(|| v4(s[1], s[2]))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = embedded_v4(s).filter(|_| !ip.is_loopback() && !ip.is_unspecified()) {
        return is_public_v4(v4);
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        // Teredo tunnels to any IPv4 address.
        || (s[0] == 0x2001 && s[1] == 0)
        // The discard-only prefix.
        || s[..4] == [0x100, 0, 0, 0]
        || (s[0] == 0x64 && s[1] == 0xff9b))
}

/// Parses and checks an endpoint URL, resolving its host: every address must be public unless
/// `allow_private`.
pub async fn check(url: &str, allow_private: bool) -> Result<Url, TargetError> {
    let u = Url::parse(url).map_err(|_| TargetError::Invalid("must be an absolute http:// or https:// URL"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(TargetError::Invalid("must be an http:// or https:// URL"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(TargetError::Invalid("must not carry a user name or password"));
    }
    if u.port() == Some(0) {
        return Err(TargetError::Invalid("must not name port 0"));
    }
    let host = u.host_str().ok_or(TargetError::Invalid("must name a host"))?.to_string();
    // An address written in the URL is checked as it is (IPv6 literals come in brackets).
    if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return literal(&u, ip, allow_private);
    }
    let port = u.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| TargetError::Unresolvable(host.clone()))?
        .collect();
    if addrs.is_empty() {
        return Err(TargetError::Unresolvable(host));
    }
    if !allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(TargetError::Private(host));
    }
    Ok(u)
}

fn literal(u: &Url, ip: IpAddr, allow_private: bool) -> Result<Url, TargetError> {
    if allow_private || is_public(ip) { Ok(u.clone()) } else { Err(TargetError::Private(ip.to_string())) }
}

/// The delivery client's resolver: the system's, refusing names that resolve to any address that
/// is not public (unless private addresses are allowed).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow && addrs.iter().any(|a| !is_public(a.ip())) {
                return Err(Box::new(TargetError::Private(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            let out: Addrs = Box::new(addrs.into_iter());
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip} is not public");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "2002:5db8:d822::1", "::5db8:d822"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip} is public");
        }
    }

    /// Found by review: IPv6 forms that carry a private IPv4 address, tunnels and special ranges
    /// were accepted.
    #[test]
    fn ipv6_forms_of_private_addresses_and_special_ranges_are_not_public() {
        for ip in [
            "::127.0.0.1",
            "::a9fe:a9fe",
            "::ffff:0:a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::",
            "2002:a00:1::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "100::1",
            "198.18.0.1",
            "198.19.255.1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip} is not public");
        }
    }

    #[tokio::test]
    async fn urls_are_checked() {
        assert!(matches!(check("ftp://example.com/", false).await, Err(TargetError::Invalid(_))));
        assert!(matches!(check("not a url", false).await, Err(TargetError::Invalid(_))));
        assert!(matches!(check("http://u:p@1.1.1.1/", false).await, Err(TargetError::Invalid(_))));
        assert!(matches!(check("http://127.0.0.1:9/", false).await, Err(TargetError::Private(_))));
        assert!(matches!(check("http://[::1]:9/", false).await, Err(TargetError::Private(_))));
        assert!(matches!(check("http://localhost:9/", false).await, Err(TargetError::Private(_))));
        assert!(check("http://127.0.0.1:9/", true).await.is_ok());
        assert!(check("https://1.1.1.1/hook", false).await.is_ok());
        assert!(matches!(check("https://1.1.1.1:0/hook", false).await, Err(TargetError::Invalid(_))));
        assert!(matches!(check("http://[::127.0.0.1]/", false).await, Err(TargetError::Private(_))));
    }
}
