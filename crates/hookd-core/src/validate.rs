//! Input rules shared by every entry point. Each check returns the message the API
//! puts in its 422 body, so the wording is chosen for a person reading it.

/// Uids, event ids, event-type names: 1..=256 of `[a-zA-Z0-9\-_.]`.
pub fn identifier(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() || s.len() > max {
        return Err(format!("must be between 1 and {max} characters long"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("may only contain letters, digits, '-', '_' and '.'".into());
    }
    Ok(())
}

/// A uid must be a valid identifier and must not look like an id of its kind.
pub fn uid(s: &str, id_prefix: &str) -> Result<(), String> {
    identifier(s, 256)?;
    if s.starts_with(id_prefix) {
        return Err(
            "Uids are not allowed to have the same prefix as the ID. Prefix with _?".into(),
        );
    }
    Ok(())
}

pub fn event_type_name(s: &str) -> Result<(), String> {
    identifier(s, 256)
}

pub fn channel(s: &str) -> Result<(), String> {
    identifier(s, 128)
}

/// Endpoint URLs: absolute http(s) with a host. `https_only` rejects `http://`.
pub fn endpoint_url(s: &str, https_only: bool) -> Result<url::Url, String> {
    let u = url::Url::parse(s).map_err(|e| format!("invalid URL: {e}"))?;
    match u.scheme() {
        "https" => {}
        "http" if !https_only => {}
        "http" => return Err("only https:// URLs are allowed on this server".into()),
        other => return Err(format!("URL scheme must be http or https, not {other:?}")),
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("URL must have a host".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("URL must not contain credentials".into());
    }
    Ok(u)
}

/// Header values whose contents are never shown back after being set.
pub const SENSITIVE_HEADERS: &[&str] = &[
    "x-auth-token",
    "x-api-key",
    "www-authenticate",
    "authorization",
    "proxy-authenticate",
    "proxy-authorization",
];

const FORBIDDEN_HEADERS: &[&str] = &[
    "user-agent",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "age",
    "cache-control",
    "clear-site-data",
    "expires",
    "pragma",
    "warning",
    "content-length",
    "content-type",
    "content-encoding",
    "content-language",
    "content-location",
    "host",
    "connection",
];

const FORBIDDEN_PREFIXES: &[&str] = &[
    "x-amz-", "x-amzn-", "x-google", "x-goog-", "x-gfe", "x-azure-", "x-fd-", "x-svix-", "svix-",
    "webhook-",
];

pub fn is_sensitive_header(name: &str) -> bool {
    SENSITIVE_HEADERS.contains(&name.to_ascii_lowercase().as_str())
}

/// A custom endpoint header: a valid HTTP token that hookd does not own.
pub fn custom_header(name: &str, value: &str) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return Err(format!("{name:?} is not a valid header name"));
    }
    if FORBIDDEN_HEADERS.contains(&lower.as_str())
        || FORBIDDEN_PREFIXES.iter().any(|p| lower.starts_with(p))
    {
        return Err(format!("the header {name:?} is reserved and cannot be set"));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(format!(
            "the value of header {name:?} contains a control character"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_rules() {
        assert!(uid("my-app_1.x", "app_").is_ok());
        assert!(uid("app_123", "app_").unwrap_err().contains("same prefix"));
        assert!(uid("", "app_").is_err());
        assert!(uid("has space", "app_").is_err());
        assert!(uid(&"a".repeat(257), "app_").is_err());
    }

    #[test]
    fn url_rules() {
        assert!(endpoint_url("https://example.com/hook", true).is_ok());
        assert!(endpoint_url("http://example.com/hook", false).is_ok());
        assert!(endpoint_url("http://example.com/hook", true).is_err());
        assert!(endpoint_url("ftp://example.com", false).is_err());
        assert!(endpoint_url("not a url", false).is_err());
        assert!(endpoint_url("https://user:pw@example.com", false).is_err());
    }

    #[test]
    fn header_rules() {
        assert!(custom_header("X-Custom", "v").is_ok());
        assert!(custom_header("svix-id", "v").is_err());
        assert!(custom_header("webhook-signature", "v").is_err());
        assert!(custom_header("Content-Type", "v").is_err());
        assert!(custom_header("bad header", "v").is_err());
        assert!(custom_header("x-ok", "a\r\nb").is_err());
        assert!(is_sensitive_header("Authorization"));
    }
}
