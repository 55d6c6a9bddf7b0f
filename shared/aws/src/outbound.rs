//! Where our own outbound calls may go: the chatbot's callbacks and the properties' staff chat webhooks. Their URLs
//! come from configuration that a customer can write (a property's `staff_webhook_url`), so each call is held to:
//! https only, no redirects, and never an internal address (loopback, private, link-local such as the instance
//! metadata service, shared, unique-local, multicast), neither in the URL nor in any DNS answer for its host.
//! The local stack, whose receivers run on 127.0.0.1 over plain http, opts out with `OUTBOUND_ALLOW_LOCAL=true`.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Which destinations outbound calls may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbound {
    allow_local: bool,
}

impl Outbound {
    /// Public https destinations only (production).
    pub fn public_only() -> Self {
        Self { allow_local: false }
    }

    /// Also plain http and internal addresses: the local stack and tests, whose receivers are on 127.0.0.1.
    pub fn local_stack() -> Self {
        Self { allow_local: true }
    }

    /// `OUTBOUND_ALLOW_LOCAL=true` (set by the local stack only) allows local destinations; anything else does not.
    pub fn from_env() -> Self {
        if std::env::var("OUTBOUND_ALLOW_LOCAL").is_ok_and(|v| v == "true") {
            Self::local_stack()
        } else {
            Self::public_only()
        }
    }

    /// An HTTP client that follows no redirect and connects to no internal address a name resolves to.
    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if self.allow_local {
            builder.build()
        } else {
            builder.dns_resolver(PublicOnly).build()
        }
    }

    /// The URL, if a call may go there: https (or http for the local stack), and a host that is not an internal
    /// address literal. Names are held to the same rule at each DNS answer (see [`Outbound::client`]). The reason
    /// never quotes the URL: a chat webhook's URL is itself a credential.
    pub fn check(&self, url: &str) -> Result<reqwest::Url, &'static str> {
        let parsed = reqwest::Url::parse(url).map_err(|_| "the URL is not a URL")?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_local => {}
            _ => return Err("the URL must be https"),
        }
        if self.allow_local {
            return Ok(parsed);
        }
        let host = parsed.host_str().ok_or("the URL has no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if host == "localhost" || host.ends_with(".localhost") {
            return Err("the URL points at an internal address");
        }
        let literal = host.parse::<IpAddr>().ok();
        if literal.is_some_and(|ip| !is_public(ip)) {
            return Err("the URL points at an internal address");
        }
        Ok(parsed)
    }
}

/// Whether an address is on the public internet (not loopback, private, link-local, shared, documentation,
/// benchmarking, reserved, multicast or unspecified; IPv4 inside IPv6 judged as IPv4).
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
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (18..20).contains(&b))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // IPv4-compatible and NAT64 forms of internal IPv4 are judged by is_public's mapped check; the rest of
        // ::/96 is not routable.
        || ip.segments()[..6] == [0; 6])
}

/// The system resolver, keeping only public addresses: a name that answers with an internal address (a DNS record
/// pointed at 169.254.169.254, or rebinding) cannot be reached.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err("the host resolves only to internal addresses".into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "2001:db8::1",
        ] {
            assert!(!is_public(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn outside_the_local_stack_only_https_to_a_public_host_is_called() {
        let strict = Outbound::public_only();
        assert!(strict.check("https://hooks.slack.com/services/T/B/x").is_ok());
        for (url, why) in [
            ("http://hooks.slack.com/services/T/B/x", "https"),
            ("ftp://example.com/x", "https"),
            ("https://127.0.0.1/hook", "internal"),
            ("https://169.254.169.254/latest/meta-data/", "internal"),
            ("https://[::1]/hook", "internal"),
            ("https://[::ffff:10.0.0.1]/hook", "internal"),
            ("https://localhost/hook", "internal"),
            ("https://a.localhost/hook", "internal"),
            ("not a url", "not a URL"),
        ] {
            let refused = strict.check(url).unwrap_err();
            assert!(refused.contains(why), "{url}: {refused}");
            assert!(!refused.contains("hook"), "the URL is never quoted");
        }
        let local = Outbound::local_stack();
        assert!(local.check("http://127.0.0.1:9000/hook").is_ok());
        assert!(local.check("ftp://127.0.0.1/hook").is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_only_to_internal_addresses_is_not_reached() {
        let client = Outbound::public_only().client(Duration::from_secs(2)).unwrap();
        // `localhost` resolves to loopback on any machine; the resolver refuses it before any connection.
        let err = client.get("https://localhost:9/").send().await.unwrap_err();
        let chain = format!("{:?}", err);
        assert!(chain.contains("internal addresses"), "{chain}");
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        use wiremock::matchers::path;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(path("/hook"))
            .respond_with(ResponseTemplate::new(307).insert_header("location", format!("{}/", server.uri())))
            .mount(&server)
            .await;
        Mock::given(path("/"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let client = Outbound::local_stack().client(Duration::from_secs(2)).unwrap();
        let answer = client.post(format!("{}/hook", server.uri())).send().await.unwrap();
        assert_eq!(
            answer.status().as_u16(),
            307,
            "the redirect is the answer, not followed"
        );
    }
}
