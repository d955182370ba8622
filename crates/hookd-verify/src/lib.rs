//! Verify webhooks sent by hookd, on the receiving side.
//!
//! One verifier per scheme hookd can sign with, each built from the endpoint's
//! secret and checking the exact body bytes received:
//!
//! | scheme | verifier | where the signature is |
//! |---|---|---|
//! | Standard Webhooks `v1` / `v1a` | [`StandardWebhooks`] | `webhook-id`, `webhook-timestamp`, `webhook-signature` (or `svix-*`) |
//! | Stripe | [`Stripe`] | `stripe-signature: t=..,v1=..` |
//! | body HMAC | [`BodyHmac`] | a header you name, base64 or hex |
//! | JWT HS256 | [`JwtHs256`] | the body itself; returns the claims |
//!
//! Comparisons are constant-time, timestamps more than five minutes off in
//! either direction are rejected (configurable), and every `verify` has a
//! `verify_at(.., now)` twin taking Unix seconds so tests can pin the clock.
//!
//! ```
//! use hookd_verify::{StandardWebhooks, VerifyError};
//!
//! let verifier = StandardWebhooks::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! let headers = [
//!     ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
//!     ("webhook-timestamp", "1614265330"),
//!     ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
//! ];
//! let body = br#"{"test": 2432232314}"#;
//!
//! verifier.verify_at(&headers, body, 1614265330)?;
//! assert_eq!(
//!     verifier.verify_at(&headers, b"{\"test\": 1}", 1614265330),
//!     Err(VerifyError::NoMatchingSignature),
//! );
//! // Real receivers use the system clock; this 2021 timestamp is long stale.
//! assert_eq!(verifier.verify(&headers, body), Err(VerifyError::TimestampOutOfTolerance));
//! # Ok::<(), VerifyError>(())
//! ```
//!
//! Any header collection works once it implements [`Headers`]; for a framework's
//! map that is a few lines:
//!
//! ```
//! # use std::collections::HashMap;
//! struct MyHeaders(HashMap<String, Vec<u8>>); // stand-in for e.g. http::HeaderMap
//!
//! impl hookd_verify::Headers for MyHeaders {
//!     fn header(&self, name: &str) -> Option<&str> {
//!         let (_, value) = self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?;
//!         std::str::from_utf8(value).ok()
//!     }
//! }
//! ```

mod body_hmac;
mod clock;
mod error;
mod headers;
mod jwt;
mod standard;
mod stripe;

pub use body_hmac::{BodyHmac, Encoding};
pub use clock::DEFAULT_TOLERANCE;
pub use error::VerifyError;
pub use headers::Headers;
pub use jwt::JwtHs256;
pub use standard::StandardWebhooks;
pub use stripe::{Stripe, STRIPE_SIGNATURE_HEADER};
