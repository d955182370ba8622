//! Why a webhook was rejected. Receivers usually answer any of these with a 4xx;
//! the variants exist so logs and tests can tell a stale retry from a forgery.

/// A failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The request lacks a header the scheme needs (named as the verifier looks it up).
    #[error("missing header {0}")]
    MissingHeader(String),
    /// The timestamp is not an integer number of Unix seconds.
    #[error("the timestamp is not an integer number of Unix seconds")]
    BadTimestamp,
    /// The timestamp is further from now than the tolerance allows (replay or clock skew).
    #[error("the timestamp is outside the allowed tolerance")]
    TimestampOutOfTolerance,
    /// The signature is well formed but none of its entries was made with this key.
    #[error("no signature matches")]
    NoMatchingSignature,
    /// The configured secret or public key cannot be used.
    #[error("the secret or public key is not in a usable form")]
    BadSecret,
    /// The signature header cannot be parsed at all.
    #[error("the signature header is malformed")]
    MalformedSignature,
    /// The JWT is not a compact JWS with JSON header and claims.
    #[error("the JWT is malformed")]
    MalformedToken,
    /// The JWT header asks for an algorithm other than HS256 (including `none`).
    #[error("the JWT algorithm {0:?} is not HS256")]
    UnsupportedAlgorithm(String),
    /// The JWT's `kid` is absent or names a different key.
    #[error("the JWT kid does not name the expected key")]
    KidMismatch,
    /// The JWT's `exp` claim has passed.
    #[error("the JWT has expired")]
    TokenExpired,
    /// The JWT's `nbf` claim is still in the future.
    #[error("the JWT is not valid yet")]
    TokenNotYetValid,
}
