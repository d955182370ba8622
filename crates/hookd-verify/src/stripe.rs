//! Stripe-style verification: `stripe-signature: t=<ts>,v1=<hex>[,v1=<hex>...]`,
//! HMAC-SHA256 of `{t}.{body}` keyed with the secret string's UTF-8 bytes.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::clock::{check_tolerance, now_unix, parse_timestamp, DEFAULT_TOLERANCE};
use crate::headers::require;
use crate::{Headers, VerifyError};

/// The header Stripe-style signatures travel in.
pub const STRIPE_SIGNATURE_HEADER: &str = "stripe-signature";

/// Verifies Stripe-style requests for one secret.
pub struct Stripe {
    secret: Vec<u8>,
    tolerance: Duration,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe")
            .field("secret", &"<redacted>")
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl Stripe {
    /// `secret` is used exactly as written (`whsec_` included, nothing decoded), as
    /// Stripe's own libraries do.
    pub fn new(secret: &str) -> Result<Self, VerifyError> {
        if secret.is_empty() {
            return Err(VerifyError::BadSecret);
        }
        Ok(Self {
            secret: secret.as_bytes().to_vec(),
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// How far `t` may be from now, either way (default 5 minutes).
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Verifies `body` (the exact bytes received) against `stripe-signature`.
    pub fn verify<H: Headers + ?Sized>(&self, headers: &H, body: &[u8]) -> Result<(), VerifyError> {
        self.verify_at(headers, body, now_unix())
    }

    /// [`verify`](Self::verify) with the clock pinned to `now` (Unix seconds).
    pub fn verify_at<H: Headers + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        let header = require(headers, STRIPE_SIGNATURE_HEADER)?;
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for item in header.split(',') {
            let (key, value) = item
                .trim()
                .split_once('=')
                .ok_or(VerifyError::MalformedSignature)?;
            match key {
                "t" if timestamp.is_none() => timestamp = Some(value),
                "v1" => signatures.push(value),
                // Other schemes (e.g. Stripe's test-mode `v0`) are not ours to check.
                _ => {}
            }
        }
        let timestamp = parse_timestamp(timestamp.ok_or(VerifyError::MalformedSignature)?)?;
        check_tolerance(timestamp, now, self.tolerance)?;

        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts keys of any length");
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        let expected = mac.finalize().into_bytes();
        let matched = signatures
            .iter()
            .filter_map(|sig| hex::decode(sig).ok())
            .any(|sig| bool::from(expected.as_slice().ct_eq(&sig)));
        if matched {
            Ok(())
        } else {
            Err(VerifyError::NoMatchingSignature)
        }
    }
}
