//! Signature schemes hookd can produce. Each scheme is a pure function of the
//! secret(s), the message id, the attempt timestamp and the exact body bytes, so
//! the dispatcher can sign and the tests can check the published vectors without
//! any I/O.
//!
//! | scheme | function | header value / body |
//! |---|---|---|
//! | Standard Webhooks `v1`/`v1a` | [`sign_standard`] | `v1,<b64> v1a,<b64>` |
//! | Stripe | [`sign_stripe`] | `t=<ts>,v1=<hex>[,v1=<hex>]` |
//! | body HMAC (FlashFX, Flux) | [`sign_body_hmac`] | base64 or hex digest of the body |
//! | JWT HS256 (fire.com) | [`sign_jwt_hs256`] | the body becomes `header.claims.signature` |

mod body_hmac;
mod jwt;
mod secret;
mod standard;
mod stripe;

pub use body_hmac::{sign_body_hmac, Encoding};
pub use jwt::{sign_jwt_hs256, JWT_CONTENT_TYPE};
pub use secret::{EndpointSecret, SecretError};
pub use standard::sign_standard;
pub use stripe::sign_stripe;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256 over the concatenation of `parts`; taking parts lets a scheme sign
/// `prefix` + body without copying a body that may be megabytes long.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}
