//! Body-only HMAC verification (FlashFX, Flux style): HMAC-SHA256 of the raw body
//! keyed with the secret string's UTF-8 bytes, in a header the platform names.
//!
//! The signed content has no timestamp or id, so this scheme cannot reject a
//! replayed request; deduplicate on the delivery-id header the platform sends.

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::headers::require;
use crate::{Headers, VerifyError};

/// How the digest is written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Standard base64 (padded), as Node's `digest('base64')`.
    Base64,
    /// Hex, as Node's `digest('hex')`; either case is accepted.
    Hex,
}

/// Verifies body-HMAC requests for one secret and header.
pub struct BodyHmac {
    secret: Vec<u8>,
    header: String,
    encoding: Encoding,
}

impl std::fmt::Debug for BodyHmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyHmac")
            .field("secret", &"<redacted>")
            .field("header", &self.header)
            .field("encoding", &self.encoding)
            .finish()
    }
}

impl BodyHmac {
    /// `secret` is used exactly as written (a `whsec_` prefix included, nothing
    /// decoded); `header` is where the digest arrives, e.g. `flashfx-signature`.
    pub fn new(secret: &str, header: &str, encoding: Encoding) -> Result<Self, VerifyError> {
        if secret.is_empty() {
            return Err(VerifyError::BadSecret);
        }
        Ok(Self {
            secret: secret.as_bytes().to_vec(),
            header: header.to_owned(),
            encoding,
        })
    }

    /// Verifies `body` (the exact bytes received) against the configured header.
    pub fn verify<H: Headers + ?Sized>(&self, headers: &H, body: &[u8]) -> Result<(), VerifyError> {
        let text = require(headers, &self.header)?.trim();
        let signature = match self.encoding {
            Encoding::Base64 => STANDARD
                .decode(text)
                .map_err(|_| VerifyError::MalformedSignature)?,
            Encoding::Hex => hex::decode(text).map_err(|_| VerifyError::MalformedSignature)?,
        };
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts keys of any length");
        mac.update(body);
        mac.verify_slice(&signature)
            .map_err(|_| VerifyError::NoMatchingSignature)
    }
}
