//! Endpoint secrets: HMAC keys (`whsec_`) and Ed25519 keypairs (`whsk_`/`whpk_`).

use base64::{engine::general_purpose::STANDARD, Engine};
use rand::RngCore;

/// A parsed endpoint secret. Invalid secrets cannot be constructed.
#[derive(Clone, PartialEq, Eq)]
pub enum EndpointSecret {
    /// HMAC key bytes; shown as `whsec_` + base64.
    Hmac(Vec<u8>),
    /// Ed25519 keypair: 32-byte seed then 32-byte public key; shown as `whsk_` + base64.
    Ed25519(Box<[u8; 64]>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret must be base64, optionally prefixed with whsec_ (or whsk_ for Ed25519)")]
    Encoding,
    #[error("secret must decode to between 24 and 64 bytes")]
    Length,
    #[error("an Ed25519 secret (whsk_) must decode to 64 bytes: the seed then its public key")]
    Ed25519Shape,
}

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hmac(_) => f.write_str("EndpointSecret::Hmac(<redacted>)"),
            Self::Ed25519(_) => f.write_str("EndpointSecret::Ed25519(<redacted>)"),
        }
    }
}

impl EndpointSecret {
    pub fn generate_hmac() -> Self {
        let mut key = vec![0u8; 24];
        rand::thread_rng().fill_bytes(&mut key);
        Self::Hmac(key)
    }

    pub fn generate_ed25519() -> Self {
        let sk = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        Self::Ed25519(Box::new(sk.to_keypair_bytes()))
    }

    pub fn parse(s: &str) -> Result<Self, SecretError> {
        if let Some(rest) = s.strip_prefix("whsk_") {
            let bytes = STANDARD.decode(rest).map_err(|_| SecretError::Encoding)?;
            let arr: [u8; 64] = bytes.try_into().map_err(|_| SecretError::Ed25519Shape)?;
            ed25519_dalek::SigningKey::from_keypair_bytes(&arr)
                .map_err(|_| SecretError::Ed25519Shape)?;
            return Ok(Self::Ed25519(Box::new(arr)));
        }
        let rest = s.strip_prefix("whsec_").unwrap_or(s);
        if rest.len() < 32
            || rest.len() > 100
            || !rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            return Err(SecretError::Encoding);
        }
        let bytes = STANDARD.decode(rest).map_err(|_| SecretError::Encoding)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(SecretError::Length);
        }
        Ok(Self::Hmac(bytes))
    }

    pub fn is_ed25519(&self) -> bool {
        matches!(self, Self::Ed25519(_))
    }

    /// The form stored and used for signing (`whsec_...` or `whsk_...`).
    pub fn to_secret_string(&self) -> String {
        match self {
            Self::Hmac(k) => format!("whsec_{}", STANDARD.encode(k)),
            Self::Ed25519(k) => format!("whsk_{}", STANDARD.encode(k.as_slice())),
        }
    }

    /// The form a receiver needs: the HMAC secret itself, or the Ed25519 public key (`whpk_`).
    pub fn to_receiver_string(&self) -> String {
        match self {
            Self::Hmac(_) => self.to_secret_string(),
            Self::Ed25519(k) => format!("whpk_{}", STANDARD.encode(&k[32..])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_hmac_secret_round_trips() {
        let s = EndpointSecret::generate_hmac();
        let text = s.to_secret_string();
        assert!(text.starts_with("whsec_"));
        assert_eq!(EndpointSecret::parse(&text).unwrap(), s);
    }

    #[test]
    fn generated_ed25519_secret_round_trips_and_shows_public_key() {
        let s = EndpointSecret::generate_ed25519();
        assert_eq!(EndpointSecret::parse(&s.to_secret_string()).unwrap(), s);
        assert!(s.to_receiver_string().starts_with("whpk_"));
    }

    #[test]
    fn short_or_garbled_secrets_are_rejected() {
        assert_eq!(
            EndpointSecret::parse("whsec_abc"),
            Err(SecretError::Encoding)
        );
        assert!(EndpointSecret::parse("whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!").is_err());
        assert!(EndpointSecret::parse("whsk_AAAA").is_err());
    }
}
