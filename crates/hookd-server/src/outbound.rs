//! The one outbound HTTP client. Every webhook request goes through
//! [`WebhookClient`]; nothing else builds a client. Its resolver refuses
//! private, loopback, link-local and reserved addresses (signing spec §6), for
//! literal IPs and DNS answers alike, unless an operator allow-lists a subnet.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;

/// Longest response body kept with an attempt.
pub const MAX_RESPONSE_BYTES: usize = 20 * 1024;

/// Ranges no webhook may reach unless allow-listed.
const FORBIDDEN: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

/// Decides which addresses outbound requests may reach.
#[derive(Debug, Clone)]
pub struct SsrfGuard {
    forbidden: Vec<IpNet>,
    allowed: Vec<IpNet>,
}

impl SsrfGuard {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        let forbidden = FORBIDDEN
            .iter()
            .map(|c| c.parse().expect("valid built-in CIDR"))
            .collect();
        Self { forbidden, allowed }
    }

    /// Parses `HOOKD_ALLOWED_NETWORKS` (comma-separated CIDRs or bare IPs).
    pub fn parse_allowed(spec: &str) -> Result<Vec<IpNet>, String> {
        spec.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{s:?} is not a CIDR network (e.g. 127.0.0.0/8)"))
            })
            .collect()
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        // IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if self.allowed.iter().any(|n| n.contains(&ip)) {
            return true;
        }
        !self.forbidden.iter().any(|n| n.contains(&ip))
    }
}

/// Resolver that drops forbidden answers and fails when none are left.
struct GuardedResolver(Arc<SsrfGuard>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| guard.permits(a.ip()))
                .collect();
            if permitted.is_empty() {
                let shown: Vec<String> = all.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "refused: {host} resolves only to private or reserved addresses ({})",
                    shown.join(", ")
                )
                .into());
            }
            let addrs: Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

/// What came back from one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// HTTP status, or 0 when no response arrived.
    pub status: u16,
    /// Response body (cut at 20 kB), or the transport error's description.
    pub body: String,
    pub duration: Duration,
    /// `Retry-After`, in seconds form or as an HTTP date, when given.
    pub retry_after: Option<Duration>,
}

/// Keep-alive connections kept per host. Many endpoints often share one host
/// (one customer's gateway, or a receiver behind one load balancer), and every
/// connection closed for want of room costs a new handshake on the next
/// request; as many as the default `max_in_flight` can be reused.
const MAX_IDLE_PER_HOST: usize = 4096;

#[derive(Clone)]
pub struct WebhookClient {
    client: reqwest::Client,
    guard: Arc<SsrfGuard>,
}

impl WebhookClient {
    pub fn new(guard: SsrfGuard, user_agent: &str) -> Self {
        let guard = Arc::new(guard);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(user_agent)
            .dns_resolver(Arc::new(GuardedResolver(guard.clone())))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("the outbound HTTP client can be built");
        Self { client, guard }
    }

    /// POSTs `body` to `url`. Never fails: transport problems come back as status 0.
    pub async fn post(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Response {
        let start = Instant::now();
        let fail = |msg: String, start: Instant| Response {
            status: 0,
            body: msg,
            duration: start.elapsed(),
            retry_after: None,
        };
        let parsed = match url::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return fail(format!("invalid URL: {e}"), start),
        };
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal.filter(|ip| !self.guard.permits(*ip)) {
            return fail(
                format!("refused: {ip} is a private or reserved address"),
                start,
            );
        }
        let sent = self
            .client
            .post(parsed)
            .headers(headers)
            .body(body)
            .timeout(timeout)
            .send()
            .await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return fail(describe(&e), start),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| parse_retry_after(v.to_str().ok()?));
        let mut buf = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout.saturating_sub(start.elapsed());
        while buf.len() < MAX_RESPONSE_BYTES {
            match tokio::time::timeout_at(deadline, resp.chunk()).await {
                Ok(Ok(Some(chunk))) => buf.extend_from_slice(&chunk),
                _ => break,
            }
        }
        buf.truncate(MAX_RESPONSE_BYTES);
        Response {
            status,
            body: String::from_utf8_lossy(&buf).into_owned(),
            duration: start.elapsed(),
            retry_after,
        }
    }
}

/// A transport error as a person would want it in the attempt log.
fn describe(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    let delta = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_reserved_addresses_are_refused() {
        let g = SsrfGuard::new(vec![]);
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
            "224.0.0.1",
        ] {
            assert!(!g.permits(ip.parse().unwrap()), "{ip} should be refused");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(g.permits(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn allow_listed_networks_are_permitted() {
        let g = SsrfGuard::new(SsrfGuard::parse_allowed("127.0.0.0/8, 10.0.0.5").unwrap());
        assert!(g.permits("127.0.0.1".parse().unwrap()));
        assert!(g.permits("10.0.0.5".parse().unwrap()));
        assert!(!g.permits("10.0.0.6".parse().unwrap()));
        assert!(SsrfGuard::parse_allowed("nonsense").is_err());
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let future = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let d = parse_retry_after(&future).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
