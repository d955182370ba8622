//! Standard Webhooks signatures (`v1` HMAC-SHA256, `v1a` Ed25519) over
//! `{msg_id}.{timestamp}.{body}`, sent as `webhook-signature` (or `svix-signature`).

use base64::{engine::general_purpose::STANDARD, Engine};
use ed25519_dalek::Signer;

use super::{hmac_sha256, EndpointSecret};

/// The `webhook-signature` header value: one space-separated entry per key, in the
/// order given (current key first during a rotation, so receivers that stop at the
/// first match do the least work).
pub fn sign_standard(keys: &[EndpointSecret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let prefix = format!("{msg_id}.{timestamp}.");
    let entries: Vec<String> = keys
        .iter()
        .map(|key| match key {
            EndpointSecret::Hmac(k) => {
                format!(
                    "v1,{}",
                    STANDARD.encode(hmac_sha256(k, &[prefix.as_bytes(), body]))
                )
            }
            EndpointSecret::Ed25519(kp) => {
                let sk =
                    ed25519_dalek::SigningKey::from_keypair_bytes(kp).expect("validated at parse");
                let mut content = Vec::with_capacity(prefix.len() + body.len());
                content.extend_from_slice(prefix.as_bytes());
                content.extend_from_slice(body);
                format!("v1a,{}", STANDARD.encode(sk.sign(&content).to_bytes()))
            }
        })
        .collect();
    entries.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn header_has_one_entry_per_key_in_order_and_no_empty_entries(
            hmac_keys in vec(vec(any::<u8>(), 24..=64), 1..4),
            with_ed25519 in any::<bool>(),
            ts in any::<i64>(),
            body in vec(any::<u8>(), 0..256),
        ) {
            let mut keys: Vec<EndpointSecret> =
                hmac_keys.into_iter().map(EndpointSecret::Hmac).collect();
            if with_ed25519 {
                keys.push(EndpointSecret::generate_ed25519());
            }
            let header = sign_standard(&keys, "msg_x", ts, &body);
            let entries: Vec<&str> = header.split(' ').collect();
            prop_assert_eq!(entries.len(), keys.len());
            for (entry, key) in entries.iter().zip(&keys) {
                let want = if key.is_ed25519() { "v1a," } else { "v1," };
                prop_assert!(entry.starts_with(want), "{entry} should start with {want}");
            }
        }
    }
}
