//! Which addresses the IdP may fetch a client ID metadata document from: globally routable ones
//! only, plus loopback when allowed (a local client serves its document there). Checked on the
//! addresses a name resolves to, inside the HTTP client's resolver, so the connection goes to the
//! very addresses that were checked: a name cannot answer "public" to the check and "private" to
//! the connection (DNS rebinding). IP literals never reach a resolver; [`AddressPolicy::allows`]
//! checks them before the request is made.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What a document fetch may connect to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AddressPolicy {
    /// Whether loopback addresses (127.0.0.0/8, ::1) are allowed.
    pub(crate) loopback: bool,
}

impl AddressPolicy {
    /// Whether a connection to `ip` is allowed: a global unicast address, or loopback when
    /// allowed. Refused: unspecified, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local
    /// (169.254/16, fe80::/10: cloud metadata services live there), CGNAT (100.64/10), multicast,
    /// broadcast, documentation, benchmarking and reserved ranges, and the IPv6 forms that embed
    /// an IPv4 address (mapped, compatible, NAT64, 6to4) when the embedded address is refused.
    pub(crate) fn allows(self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.allows_v4(v4),
            IpAddr::V6(v6) => self.allows_v6(v6),
        }
    }

    fn allows_v4(self, ip: Ipv4Addr) -> bool {
        if ip.is_loopback() {
            return self.loopback;
        }
        let [a, b, c, _] = ip.octets();
        let refused = a == 0 // "this network", including 0.0.0.0
            || ip.is_private()
            || ip.is_link_local()
            || (a == 100 && (b & 0xc0) == 64) // 100.64.0.0/10, carrier-grade NAT
            || (a == 192 && b == 0 && c == 0) // 192.0.0.0/24, IETF protocol assignments
            || ip.is_documentation()
            || (a == 198 && (b & 0xfe) == 18) // 198.18.0.0/15, benchmarking
            || ip.is_multicast()
            || a >= 240; // 240.0.0.0/4 reserved, and the broadcast address
        !refused
    }

    fn allows_v6(self, ip: Ipv6Addr) -> bool {
        if ip.is_loopback() {
            return self.loopback;
        }
        if let Some(v4) = embedded_v4(ip) {
            return self.allows_v4(v4);
        }
        let segments = ip.segments();
        let first = segments[0];
        let refused = ip.is_unspecified()
            || ip.is_multicast()
            || (first & 0xfe00) == 0xfc00 // fc00::/7, unique local
            || (first & 0xffc0) == 0xfe80 // fe80::/10, link-local
            || (first & 0xffc0) == 0xfec0 // fec0::/10, the old site-local
            || (first == 0x2001 && segments[1] == 0x0db8) // 2001:db8::/32, documentation
            || (first == 0x2001 && segments[1] == 0) // 2001::/32, Teredo: an IPv4 tunnel
            || (first == 0x0100 && segments[1..4] == [0, 0, 0]) // 100::/64, discard
            || (first & 0xe000) != 0x2000; // outside 2000::/3, the global unicast block
        !refused
    }

    /// The resolver the document fetcher's HTTP client uses: it resolves a name and lets the
    /// connection use its addresses only if every one of them is allowed.
    pub(crate) fn resolver(self) -> CheckedResolver {
        CheckedResolver { policy: self }
    }

    /// The addresses a name resolved to, if every one is allowed. A name that resolves to a
    /// public and a private address is refused whole: it is not a client's document host.
    fn screen(self, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Refused> {
        match addrs.iter().find(|addr| !self.allows(addr.ip())) {
            Some(addr) => Err(Refused(Some(addr.ip()))),
            None if addrs.is_empty() => Err(Refused(None)),
            None => Ok(addrs),
        }
    }
}

/// The IPv4 address an IPv6 address carries, for the forms that route to it: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated), NAT64 (`64:ff9b::/96`) and 6to4
/// (`2002:aabb:ccdd::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let [a, b] = [s[6].to_be_bytes(), s[7].to_be_bytes()];
    let tail = Ipv4Addr::new(a[0], a[1], b[0], b[1]);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(tail),
        [0x0064, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail),
        [0x2002, hi, lo, ..] => {
            let [a, b] = hi.to_be_bytes();
            let [c, d] = lo.to_be_bytes();
            Some(Ipv4Addr::new(a, b, c, d))
        }
        _ => None,
    }
}

/// A `reqwest` resolver that applies an [`AddressPolicy`] to what the system resolver answers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckedResolver {
    policy: AddressPolicy,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port (or the scheme's) in its place.
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = policy.screen(addrs)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// A name resolved to an address the policy refuses (or to none).
#[derive(Debug)]
struct Refused(Option<IpAddr>);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => write!(
                f,
                "the name resolves to {ip}, which may not be fetched from"
            ),
            None => f.write_str("the name resolves to no address"),
        }
    }
}

impl std::error::Error for Refused {}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: AddressPolicy = AddressPolicy { loopback: false };
    const LOCAL: AddressPolicy = AddressPolicy { loopback: true };

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_global_addresses_are_allowed_and_loopback_only_when_configured() {
        for allowed in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "2a00:1450::1",
        ] {
            assert!(STRICT.allows(ip(allowed)), "{allowed}");
        }
        for refused in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001:0:4136:e378::1",
            "100::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0101::1",
            "::ffff:127.0.0.1",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
        ] {
            assert!(!STRICT.allows(ip(refused)), "{refused}");
        }
        for loopback in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(LOCAL.allows(ip(loopback)), "{loopback}");
        }
        assert!(!LOCAL.allows(ip("10.0.0.1")), "loopback opens nothing else");
        assert!(
            STRICT.allows(ip("::ffff:1.1.1.1")),
            "a mapped global address"
        );
    }

    #[test]
    fn a_name_is_refused_if_any_of_its_addresses_is() {
        let addr = |text: &str| SocketAddr::new(ip(text), 0);
        assert!(STRICT.screen(vec![addr("1.1.1.1")]).is_ok());
        for addrs in [
            vec![addr("10.0.0.1")],
            vec![addr("1.1.1.1"), addr("169.254.169.254")],
            vec![addr("127.0.0.1")],
            vec![],
        ] {
            assert!(STRICT.screen(addrs.clone()).is_err(), "{addrs:?}");
        }
        assert!(LOCAL.screen(vec![addr("127.0.0.1"), addr("::1")]).is_ok());
    }
}
