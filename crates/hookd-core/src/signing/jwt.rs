//! JWT HS256 bodies (fire.com style): the whole request body is a compact JWS
//! `base64url(header).base64url(claims).base64url(HMAC-SHA256)`, sent as
//! `application/jwt`.
//!
//! The header is exactly `{"kid":"<kid>","alg":"HS256"}` (kid first, no `typ`),
//! as the `firejwt-hs256-self-1` vector requires. General JWT libraries order the
//! header fields their own way and add `typ`, so the JWS is assembled here from
//! base64url and the shared HMAC helper; there is no other cryptography.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::Serialize;

use super::hmac_sha256;

/// The `content-type` of a JWT body.
pub const JWT_CONTENT_TYPE: &str = "application/jwt";

/// Field order here is the wire order.
#[derive(Serialize)]
struct Header<'a> {
    kid: &'a str,
    alg: &'static str,
}

/// The request body: a compact JWS over `claims_json`, which is used byte for byte
/// (callers serialise the claims, e.g. `{"generationTime":<ms>,"events":[...]}`, so
/// the producer's payload text is not reordered). The HMAC key is the UTF-8 bytes of
/// `secret` as written, the endpoint's private token; `kid` names its public token.
pub fn sign_jwt_hs256(secret: &str, kid: &str, claims_json: &[u8]) -> String {
    let header =
        serde_json::to_vec(&Header { kid, alg: "HS256" }).expect("two strings always serialise");
    let mut jws = URL_SAFE_NO_PAD.encode(header);
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(claims_json, &mut jws);
    let tag = hmac_sha256(secret.as_bytes(), &[jws.as_bytes()]);
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut jws);
    jws
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kid_is_json_escaped_in_the_header() {
        let jws = sign_jwt_hs256("s", "a\"b", b"{}");
        let header = URL_SAFE_NO_PAD
            .decode(jws.split('.').next().unwrap())
            .unwrap();
        assert_eq!(header, br#"{"kid":"a\"b","alg":"HS256"}"#);
    }

    proptest! {
        #[test]
        fn segments_carry_header_claims_and_the_mac_of_the_first_two(
            secret in ".{0,40}",
            kid in ".{0,40}",
            claims in "\\{\"n\":[0-9]{1,9}\\}",
        ) {
            let jws = sign_jwt_hs256(&secret, &kid, claims.as_bytes());
            let parts: Vec<&str> = jws.split('.').collect();
            prop_assert_eq!(parts.len(), 3);
            let header_json = URL_SAFE_NO_PAD.decode(parts[0]).unwrap();
            let header: serde_json::Value = serde_json::from_slice(&header_json).unwrap();
            prop_assert_eq!(&header["kid"], kid.as_str());
            prop_assert_eq!(&header["alg"], "HS256");
            prop_assert_eq!(URL_SAFE_NO_PAD.decode(parts[1]).unwrap(), claims.as_bytes());
            let signed = format!("{}.{}", parts[0], parts[1]);
            prop_assert_eq!(
                URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
                hmac_sha256(secret.as_bytes(), &[signed.as_bytes()]).to_vec()
            );
        }
    }
}
