//! Body-only HMAC signatures (FlashFX's `flashfx-signature`, Flux's
//! `flux-signature`): HMAC-SHA256 over the raw body, with no id or timestamp in
//! the signed content. The header name is the endpoint's setting, not ours.
//!
//! **Key bytes.** The key is the UTF-8 bytes of the secret string exactly as the
//! receiver is shown it, `whsec_` prefix included and nothing base64-decoded. The
//! seeds decide this: FlashFX documents its receiver as Node's
//! `createHmac('sha256', secret)` with the secret string (`'my-webhook-secret'`),
//! which keys with the string's bytes; Flux passes the secret string to its SDK
//! unchanged. Decoding a `whsec_` secret first would break every receiver written
//! from those documents, and migrated secrets need not be base64 at all. This is
//! the same reading of "the raw secret bytes" as the JWT scheme's, whose vector
//! (`firejwt-hs256-self-1`) keys with the plain string.

use base64::{engine::general_purpose::STANDARD, Engine};

use super::hmac_sha256;

/// How the 32-byte digest is written into the header.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Padded standard base64, as Node's `digest('base64')` (FlashFX).
    #[default]
    Base64,
    /// Lowercase hex, as Node's `digest('hex')`.
    Hex,
}

/// The signature header value for `body`, keyed with `secret`'s UTF-8 bytes (see the module doc).
pub fn sign_body_hmac(secret: &str, body: &[u8], encoding: Encoding) -> String {
    let tag = hmac_sha256(secret.as_bytes(), &[body]);
    match encoding {
        Encoding::Base64 => STANDARD.encode(tag),
        Encoding::Hex => hex::encode(tag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 test case 2: an independent known answer for HMAC-SHA256.
    const RFC4231_2_HEX: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    #[test]
    fn hex_digest_matches_rfc_4231_case_2() {
        assert_eq!(
            sign_body_hmac("Jefe", b"what do ya want for nothing?", Encoding::Hex),
            RFC4231_2_HEX
        );
    }

    #[test]
    fn base64_digest_is_the_same_mac_padded() {
        let b64 = sign_body_hmac("Jefe", b"what do ya want for nothing?", Encoding::Base64);
        assert_eq!(hex::encode(STANDARD.decode(&b64).unwrap()), RFC4231_2_HEX);
        assert!(b64.ends_with('='));
    }

    #[test]
    fn whsec_secret_is_used_as_written_not_decoded() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let decoded = STANDARD.decode(&secret[6..]).unwrap();
        let got = sign_body_hmac(secret, b"{}", Encoding::Hex);
        assert_eq!(
            got,
            hex::encode(hmac_sha256(secret.as_bytes(), &[b"{}".as_slice()]))
        );
        assert_ne!(got, hex::encode(hmac_sha256(&decoded, &[b"{}".as_slice()])));
    }

    #[test]
    fn encoding_names_in_settings_are_lowercase() {
        assert_eq!(serde_json::to_string(&Encoding::Hex).unwrap(), "\"hex\"");
        assert_eq!(
            serde_json::from_str::<Encoding>("\"base64\"").unwrap(),
            Encoding::Base64
        );
    }
}
