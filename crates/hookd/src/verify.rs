//! `hookd verify`: check a captured webhook (headers + body) against a secret,
//! the way a receiver would, for someone debugging their endpoint.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use hookd_verify::{BodyHmac, Encoding, JwtHs256, StandardWebhooks, Stripe};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheme {
    /// Standard Webhooks `v1` (HMAC) or `v1a` (Ed25519, with a `whpk_` key), `webhook-*` or `svix-*` headers.
    StandardWebhooks,
    /// `Stripe-Signature: t=...,v1=...`.
    Stripe,
    /// HMAC-SHA256 of the body in a header of your naming (`--header`, `--encoding`).
    HmacSha256,
    /// The body is a JWT (HS256); `--kid` must match its header.
    JwtHs256,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The endpoint secret (`whsec_...`), public key (`whpk_...`) or provider secret.
    #[arg(long, env = "HOOKD_VERIFY_SECRET", hide_env_values = true)]
    pub secret: String,
    /// File with the request headers, one `Name: value` per line (as curl -D or a
    /// proxy log prints them) or a JSON object of name to value.
    #[arg(long)]
    pub headers: Option<PathBuf>,
    /// File with the exact request body bytes.
    #[arg(long)]
    pub body: PathBuf,
    #[arg(long, value_enum, default_value_t = Scheme::StandardWebhooks)]
    pub scheme: Scheme,
    /// Signature header for `hmac-sha256`.
    #[arg(long, default_value = "x-webhook-signature")]
    pub header: String,
    /// Digest encoding for `hmac-sha256`: base64 or hex.
    #[arg(long, default_value = "base64")]
    pub encoding: String,
    /// Expected key id for `jwt-hs256`.
    #[arg(long)]
    pub kid: Option<String>,
    /// Accepted clock difference in seconds (timestamped schemes).
    #[arg(long, default_value_t = 300)]
    pub tolerance: u64,
}

/// Parses `Name: value` lines (a status line or blank lines are skipped) or a JSON object.
pub fn parse_headers(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(trimmed)
            .context("the headers file looks like JSON but is not an object")?;
        return map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                other => bail!("header {k:?} must be a string, not {other}"),
            })
            .collect();
    }
    Ok(text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| !name.trim().is_empty() && !name.contains(' '))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect())
}

/// Runs the check; `Ok` carries what to print on success.
pub fn run(args: &VerifyArgs) -> anyhow::Result<String> {
    let body = std::fs::read(&args.body)
        .with_context(|| format!("reading the body from {}", args.body.display()))?;
    let headers = match &args.headers {
        Some(path) => parse_headers(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading headers from {}", path.display()))?,
        )?,
        None => Vec::new(),
    };
    let tolerance = Duration::from_secs(args.tolerance);
    let fail = |e: hookd_verify::VerifyError| anyhow::anyhow!("signature NOT valid: {e}");
    match args.scheme {
        Scheme::StandardWebhooks => {
            StandardWebhooks::new(&args.secret)
                .map_err(fail)?
                .with_tolerance(tolerance)
                .verify(&headers, &body)
                .map_err(fail)?;
        }
        Scheme::Stripe => {
            Stripe::new(&args.secret)
                .map_err(fail)?
                .with_tolerance(tolerance)
                .verify(&headers, &body)
                .map_err(fail)?;
        }
        Scheme::HmacSha256 => {
            let encoding = match args.encoding.as_str() {
                "base64" => Encoding::Base64,
                "hex" => Encoding::Hex,
                other => bail!("--encoding must be base64 or hex, not {other:?}"),
            };
            BodyHmac::new(&args.secret, &args.header, encoding)
                .map_err(fail)?
                .verify(&headers, &body)
                .map_err(fail)?;
        }
        Scheme::JwtHs256 => {
            let kid = args
                .kid
                .as_deref()
                .context("--kid is required for jwt-hs256")?;
            let claims = JwtHs256::new(&args.secret, kid)
                .map_err(fail)?
                .with_leeway(tolerance)
                .verify(&body)
                .map_err(fail)?;
            return Ok(format!("signature valid; claims: {claims}"));
        }
    }
    Ok("signature valid".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_files_in_curl_style_and_json_both_parse() {
        let curl = "HTTP/1.1 200 OK\r\nwebhook-id: msg_1\r\nwebhook-signature: v1,abc\r\n\r\n";
        let got = parse_headers(curl).unwrap();
        assert_eq!(
            got,
            vec![
                ("webhook-id".to_string(), "msg_1".to_string()),
                ("webhook-signature".to_string(), "v1,abc".to_string())
            ]
        );
        let json = r#"{"webhook-id": "msg_1"}"#;
        assert_eq!(
            parse_headers(json).unwrap(),
            vec![("webhook-id".to_string(), "msg_1".to_string())]
        );
        assert!(parse_headers(r#"{"n": 5}"#).is_err());
    }
}
