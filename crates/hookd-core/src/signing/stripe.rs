//! Stripe-compatible signatures (`Stripe-Signature: t=<ts>,v1=<hex>...`), so a
//! platform moving off Stripe-style webhooks keeps its receivers unchanged.

use super::hmac_sha256;

/// The `Stripe-Signature` header value: `t=<timestamp>` then one `v1=<hex>` per
/// secret, in the order given (current secret first during a roll).
///
/// Unlike Standard Webhooks, Stripe keys the HMAC with the UTF-8 bytes of the whole
/// secret string, `whsec_` prefix included and nothing base64-decoded; that is what
/// Stripe's libraries do, so it is what receivers built on them expect.
pub fn sign_stripe(secrets: &[&str], timestamp: i64, body: &[u8]) -> String {
    let signed_prefix = format!("{timestamp}.");
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        let tag = hmac_sha256(secret.as_bytes(), &[signed_prefix.as_bytes(), body]);
        header.push_str(",v1=");
        header.push_str(&hex::encode(tag));
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolled_secrets_each_add_a_lowercase_hex_v1_in_order() {
        let header = sign_stripe(&["whsec_new", "whsec_old"], 42, b"{}");
        let parts: Vec<&str> = header.split(',').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "t=42");
        assert_eq!(
            parts[1],
            format!(
                "v1={}",
                hex::encode(hmac_sha256(b"whsec_new", &[b"42.{}".as_slice()]))
            )
        );
        assert_eq!(
            parts[2],
            format!(
                "v1={}",
                hex::encode(hmac_sha256(b"whsec_old", &[b"42.{}".as_slice()]))
            )
        );
        assert!(parts[1..].iter().all(|p| p[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))));
    }
}
