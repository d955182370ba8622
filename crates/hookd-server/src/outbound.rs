//! The one outbound HTTP client. Every webhook request goes through
//! [`WebhookClient`]; nothing else builds a client. Its resolver refuses
//! private, loopback, link-local and reserved addresses (signing spec §6), for
//! literal IPs and DNS answers alike, unless an operator allow-lists a subnet.
//!
//! It is hyper's pooled client with a rustls connector, used directly: a
//! webhook is one POST with no redirects, retries, cookies or proxies, and the
//! general-purpose layers of a client such as reqwest (two URL parses with
//! IDNA per request, a redirect and a retry layer copying every request) were
//! about a tenth of the server's CPU time in the S2 profile.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};
use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use ipnet::IpNet;

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

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolver that drops forbidden answers and fails when none are left. (The
/// connector never asks it about a literal IP; [`WebhookClient::post`] judges
/// those itself.)
#[derive(Clone)]
struct GuardedResolver(Arc<SsrfGuard>);

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
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
            Ok(permitted.into_iter())
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

/// How long to wait for a TCP connection to an endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an unused keep-alive connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

type Connector = HttpsConnector<HttpConnector<GuardedResolver>>;

#[derive(Clone)]
pub struct WebhookClient {
    client: Client<Connector, Full<Bytes>>,
    guard: Arc<SsrfGuard>,
    user_agent: HeaderValue,
}

impl WebhookClient {
    pub fn new(guard: SsrfGuard, user_agent: &str) -> Self {
        let guard = Arc::new(guard);
        let mut http = HttpConnector::new_with_resolver(GuardedResolver(guard.clone()));
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .expect("rustls's ring provider offers its default protocol versions")
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .build(connector);
        let user_agent = HeaderValue::from_str(user_agent).expect("a valid User-Agent");
        Self {
            client,
            guard,
            user_agent,
        }
    }

    /// POSTs `body` to `url`, the whole exchange (connecting, sending and the
    /// response with its body) within `timeout`. Never fails: transport
    /// problems come back as status 0.
    pub async fn post(
        &self,
        url: &str,
        mut headers: HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Response {
        let start = Instant::now();
        let fail = |msg: String| Response {
            status: 0,
            body: msg,
            duration: start.elapsed(),
            retry_after: None,
        };
        let uri = match request_uri(url) {
            Ok(u) => u,
            Err(e) => return fail(format!("invalid URL: {e}")),
        };
        let host = uri.host().unwrap_or_default();
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .parse::<IpAddr>()
            .ok();
        if let Some(ip) = literal.filter(|ip| !self.guard.permits(*ip)) {
            return fail(format!("refused: {ip} is a private or reserved address"));
        }
        headers
            .entry(USER_AGENT)
            .or_insert_with(|| self.user_agent.clone());
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;

        let deadline = tokio::time::Instant::from_std(start) + timeout;
        let resp = match tokio::time::timeout_at(deadline, self.client.request(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return fail(describe(&e)),
            Err(_) => return fail("timed out".into()),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| parse_retry_after(v.to_str().ok()?));
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        while buf.len() < MAX_RESPONSE_BYTES {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        buf.extend_from_slice(&data);
                    }
                }
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

/// The request target of an endpoint's URL. An absolute `http` or `https` URL
/// in plain ASCII is taken as it is; anything else (an internationalised host
/// name, characters to percent-encode) goes through the URL standard's parser
/// first, as the API did when it accepted the URL.
fn request_uri(url: &str) -> Result<Uri, String> {
    let direct = url
        .parse::<Uri>()
        .ok()
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
    if let Some(uri) = direct {
        return Ok(uri);
    }
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme must be http or https, not {}",
            parsed.scheme()
        ));
    }
    parsed.as_str().parse::<Uri>().map_err(|e| e.to_string())
}

/// A transport error as a person would want it in the attempt log: the
/// error and each of its causes.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut msg = e.to_string();
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
    fn request_targets_are_absolute_http_urls_in_ascii() {
        let plain = request_uri("https://hooks.example.com:8443/in?x=1").unwrap();
        assert_eq!(plain.to_string(), "https://hooks.example.com:8443/in?x=1");
        // An internationalised host goes out in its ASCII (punycode) form, and
        // what must be percent-encoded is.
        let idn = request_uri("https://bücher.example/a b").unwrap();
        assert_eq!(idn.host(), Some("xn--bcher-kva.example"));
        assert_eq!(idn.path(), "/a%20b");
        assert_eq!(
            request_uri("http://[::1]:9000/").unwrap().host(),
            Some("[::1]")
        );
        for bad in ["ftp://example.com/", "/relative", "not a url", "http://"] {
            assert!(request_uri(bad).is_err(), "{bad:?} should be refused");
        }
    }

    /// POSTs `{}` to `url` with a 5 s deadline.
    async fn post_to(client: &WebhookClient, url: &str) -> Response {
        let body = Bytes::from_static(b"{}");
        client
            .post(url, HeaderMap::new(), body, Duration::from_secs(5))
            .await
    }

    #[tokio::test]
    async fn transport_failures_come_back_as_status_0_saying_why() {
        let guarded = WebhookClient::new(SsrfGuard::new(vec![]), "hookd-test");
        let refused = post_to(&guarded, "http://127.0.0.1:9/hook").await;
        assert_eq!(refused.status, 0);
        let why = "127.0.0.1 is a private or reserved address";
        assert!(refused.body.contains(why), "{}", refused.body);

        let open = WebhookClient::new(
            SsrfGuard::new(SsrfGuard::parse_allowed("127.0.0.0/8").unwrap()),
            "hookd-test",
        );
        // A port nothing listens on: bound, then closed again.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let closed = post_to(&open, &format!("http://127.0.0.1:{port}/hook")).await;
        assert_eq!(closed.status, 0);
        assert!(
            closed.body.contains("Connection refused"),
            "{}",
            closed.body
        );

        let invalid = post_to(&open, "ftp://127.0.0.1/").await;
        assert_eq!(invalid.status, 0);
        assert!(invalid.body.starts_with("invalid URL"), "{}", invalid.body);
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
