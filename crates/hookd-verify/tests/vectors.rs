//! Every shared vector verifies, and each kind of tampering fails with the
//! error a receiver would want to log.

#[path = "../../hookd-core/tests/support/vectors.rs"]
mod shared_vectors;

use std::time::Duration;

use hookd_verify::{BodyHmac, Encoding, JwtHs256, StandardWebhooks, Stripe, VerifyError};
use serde_json::Value;
use shared_vectors::{load, Vector};

fn vectors_of(scheme_prefix: &str) -> Vec<Vector> {
    let found: Vec<Vector> = load()
        .into_iter()
        .filter(|v| v.scheme.starts_with(scheme_prefix))
        .collect();
    assert!(!found.is_empty(), "no vectors for {scheme_prefix}");
    found
}

fn standard_headers(family: &str, v: &Vector) -> Vec<(String, String)> {
    vec![
        (
            format!("{family}-id"),
            v.msg_id.clone().expect("standard vectors carry msg_id"),
        ),
        (
            format!("{family}-timestamp"),
            v.timestamp
                .expect("standard vectors carry a timestamp")
                .to_string(),
        ),
        (format!("{family}-signature"), v.expected_header.clone()),
    ]
}

/// The keys a receiver of this vector might hold: every HMAC secret and the
/// Ed25519 public key (never the `whsk_` signing key, which stays with hookd).
fn receiver_keys(v: &Vector) -> Vec<&str> {
    let secrets = [
        Some(v.secret.as_str()),
        v.secret_old.as_deref(),
        v.secret_v1a.as_deref(),
    ];
    let hmac = secrets
        .into_iter()
        .flatten()
        .filter(|s| !s.starts_with("whsk_"));
    hmac.chain(v.public_key.as_deref()).collect()
}

#[test]
fn standard_vectors_verify_with_every_key_under_both_header_families() {
    for v in vectors_of("standard-webhooks") {
        let keys = receiver_keys(&v);
        assert!(!keys.is_empty(), "{}", v.id);
        for key in keys {
            let verifier =
                StandardWebhooks::new(key).unwrap_or_else(|e| panic!("{}: {key}: {e}", v.id));
            for family in ["webhook", "svix"] {
                let result = verifier.verify_at(
                    &standard_headers(family, &v),
                    &v.body(),
                    v.timestamp.unwrap(),
                );
                assert_eq!(result, Ok(()), "{} with {key} under {family}-*", v.id);
            }
        }
    }
}

#[test]
fn stripe_vectors_verify_with_current_and_rolled_secrets() {
    for v in vectors_of("stripe") {
        let headers = [("Stripe-Signature", v.expected_header.as_str())];
        for secret in std::iter::once(v.secret.as_str()).chain(v.secret_old.as_deref()) {
            let result =
                Stripe::new(secret)
                    .unwrap()
                    .verify_at(&headers, &v.body(), v.timestamp.unwrap());
            assert_eq!(result, Ok(()), "{} with {secret}", v.id);
        }
    }
}

#[test]
fn jwt_vector_verifies_and_returns_its_claims() {
    for v in vectors_of("fire-jwt") {
        let verifier = JwtHs256::new(&v.secret, v.kid.as_deref().unwrap()).unwrap();
        let claims = verifier
            .verify(v.expected_body.as_deref().unwrap().as_bytes())
            .unwrap();
        let expected: Value = serde_json::from_str(&v.claims_json().unwrap()).unwrap();
        assert_eq!(claims, expected, "{}", v.id);
    }
}

#[test]
fn every_vector_is_checked_by_some_verifier_test() {
    for v in load() {
        assert!(
            ["standard-webhooks", "stripe", "fire-jwt"]
                .iter()
                .any(|p| v.scheme.starts_with(p)),
            "vector {} has scheme {:?}, which no verifier test covers",
            v.id,
            v.scheme
        );
    }
}

fn first(scheme_prefix: &str) -> Vector {
    vectors_of(scheme_prefix).remove(0)
}

#[test]
fn tampered_bodies_match_no_signature() {
    for v in vectors_of("standard-webhooks") {
        let mut body = v.body();
        body[0] ^= 1;
        let key = receiver_keys(&v)[0];
        let result = StandardWebhooks::new(key).unwrap().verify_at(
            &standard_headers("webhook", &v),
            &body,
            v.timestamp.unwrap(),
        );
        assert_eq!(result, Err(VerifyError::NoMatchingSignature), "{}", v.id);
    }
    let v = first("stripe");
    let headers = [("stripe-signature", v.expected_header.as_str())];
    let result = Stripe::new(&v.secret)
        .unwrap()
        .verify_at(&headers, b"{}", v.timestamp.unwrap());
    assert_eq!(result, Err(VerifyError::NoMatchingSignature));

    let v = first("fire-jwt");
    let token = v.expected_body.unwrap();
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[1] = "eyJldmVudHMiOltdfQ"; // {"events":[]}
    let result = JwtHs256::new(&v.secret, v.kid.as_deref().unwrap())
        .unwrap()
        .verify(parts.join(".").as_bytes());
    assert_eq!(result, Err(VerifyError::NoMatchingSignature));
}

#[test]
fn wrong_secrets_match_no_signature() {
    let v = first("standard-webhooks-v1");
    let result = StandardWebhooks::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .unwrap()
        .verify_at(
            &standard_headers("webhook", &v),
            &v.body(),
            v.timestamp.unwrap(),
        );
    assert_eq!(result, Err(VerifyError::NoMatchingSignature));

    // An Ed25519 public key never accepts the v1 (HMAC) entries, and the reverse.
    let mixed = first("standard-webhooks-mixed");
    let mut headers = standard_headers("webhook", &mixed);
    headers[2].1 = mixed.expected_header.split(' ').next().unwrap().to_owned();
    let result = StandardWebhooks::new(mixed.public_key.as_deref().unwrap())
        .unwrap()
        .verify_at(&headers, &mixed.body(), mixed.timestamp.unwrap());
    assert_eq!(result, Err(VerifyError::NoMatchingSignature));

    let other_public = first("standard-webhooks-v1a").public_key.unwrap();
    let v1a = vectors_of("standard-webhooks-v1a")
        .into_iter()
        .find(|v| v.public_key.as_ref() != Some(&other_public))
        .unwrap();
    let result = StandardWebhooks::new(&other_public).unwrap().verify_at(
        &standard_headers("webhook", &v1a),
        &v1a.body(),
        v1a.timestamp.unwrap(),
    );
    assert_eq!(result, Err(VerifyError::NoMatchingSignature));

    let v = first("stripe");
    let headers = [("stripe-signature", v.expected_header.as_str())];
    let result =
        Stripe::new("whsec_not_it")
            .unwrap()
            .verify_at(&headers, &v.body(), v.timestamp.unwrap());
    assert_eq!(result, Err(VerifyError::NoMatchingSignature));

    let v = first("fire-jwt");
    let result = JwtHs256::new("not-the-token", v.kid.as_deref().unwrap())
        .unwrap()
        .verify(v.expected_body.as_deref().unwrap().as_bytes());
    assert_eq!(result, Err(VerifyError::NoMatchingSignature));
}

#[test]
fn stale_and_future_timestamps_are_out_of_tolerance() {
    let v = first("standard-webhooks-v1");
    let verifier = StandardWebhooks::new(&v.secret).unwrap();
    let ts = v.timestamp.unwrap();
    let headers = standard_headers("webhook", &v);
    assert_eq!(verifier.verify_at(&headers, &v.body(), ts + 300), Ok(()));
    assert_eq!(verifier.verify_at(&headers, &v.body(), ts - 300), Ok(()));
    for now in [ts + 301, ts - 301] {
        assert_eq!(
            verifier.verify_at(&headers, &v.body(), now),
            Err(VerifyError::TimestampOutOfTolerance)
        );
    }
    let wide = StandardWebhooks::new(&v.secret)
        .unwrap()
        .with_tolerance(Duration::from_secs(3600));
    assert_eq!(wide.verify_at(&headers, &v.body(), ts + 3600), Ok(()));

    let v = first("stripe");
    let headers = [("stripe-signature", v.expected_header.as_str())];
    let verifier = Stripe::new(&v.secret).unwrap();
    let ts = v.timestamp.unwrap();
    for now in [ts + 301, ts - 301] {
        assert_eq!(
            verifier.verify_at(&headers, &v.body(), now),
            Err(VerifyError::TimestampOutOfTolerance)
        );
    }
    let wide = Stripe::new(&v.secret)
        .unwrap()
        .with_tolerance(Duration::from_secs(600));
    assert_eq!(wide.verify_at(&headers, &v.body(), ts + 600), Ok(()));
}

#[test]
fn jwt_naming_another_kid_is_rejected() {
    let v = first("fire-jwt");
    let result = JwtHs256::new(&v.secret, "another-public-token")
        .unwrap()
        .verify(v.expected_body.unwrap().as_bytes());
    assert_eq!(result, Err(VerifyError::KidMismatch));
}

#[test]
fn jwt_with_alg_none_or_garbage_is_rejected() {
    let v = first("fire-jwt");
    let verifier = JwtHs256::new(&v.secret, v.kid.as_deref().unwrap()).unwrap();
    let token = v.expected_body.unwrap();
    let claims = token.split('.').nth(1).unwrap();
    // {"kid":"003e97ee-ac38-40bc-b097-3f07454258dd","alg":"none"}
    let none_header =
        "eyJraWQiOiIwMDNlOTdlZS1hYzM4LTQwYmMtYjA5Ny0zZjA3NDU0MjU4ZGQiLCJhbGciOiJub25lIn0";
    assert_eq!(
        verifier.verify(format!("{none_header}.{claims}.").as_bytes()),
        Err(VerifyError::UnsupportedAlgorithm("none".into()))
    );
    for garbage in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
        assert_eq!(
            verifier.verify(garbage.as_bytes()),
            Err(VerifyError::MalformedToken),
            "{garbage:?}"
        );
    }
}

#[test]
fn missing_or_malformed_standard_headers_are_named() {
    let v = first("standard-webhooks-v1");
    let verifier = StandardWebhooks::new(&v.secret).unwrap();
    let ts = v.timestamp.unwrap();
    let full = standard_headers("webhook", &v);

    let without_sig = &full[..2];
    assert_eq!(
        verifier.verify_at(without_sig, &v.body(), ts),
        Err(VerifyError::MissingHeader("webhook-signature".into()))
    );
    let none: [(&str, &str); 0] = [];
    assert_eq!(
        verifier.verify_at(&none, &v.body(), ts),
        Err(VerifyError::MissingHeader("webhook-id".into()))
    );

    let mut bad_ts = full.clone();
    bad_ts[1].1 = "yesterday".into();
    assert_eq!(
        verifier.verify_at(&bad_ts, &v.body(), ts),
        Err(VerifyError::BadTimestamp)
    );

    let mut bad_sig = full.clone();
    bad_sig[2].1 = "garbage".into();
    assert_eq!(
        verifier.verify_at(&bad_sig, &v.body(), ts),
        Err(VerifyError::MalformedSignature)
    );

    // Unknown versions and undecodable entries are skipped; a valid entry still passes.
    let mut noisy = full.clone();
    noisy[2].1 = format!("v2,abc v1,%%% {}", v.expected_header);
    assert_eq!(verifier.verify_at(&noisy, &v.body(), ts), Ok(()));

    let shouting: Vec<(String, String)> = full
        .iter()
        .map(|(k, val)| (k.to_uppercase(), val.clone()))
        .collect();
    assert_eq!(verifier.verify_at(&shouting, &v.body(), ts), Ok(()));
}

#[test]
fn unusable_keys_are_bad_secrets() {
    for key in ["whsec_not base64!", "whpk_AAAA", "", "whsec_"] {
        assert_eq!(
            StandardWebhooks::new(key).unwrap_err(),
            VerifyError::BadSecret,
            "{key:?}"
        );
    }
    assert_eq!(Stripe::new("").unwrap_err(), VerifyError::BadSecret);
    assert_eq!(
        JwtHs256::new("", "kid").unwrap_err(),
        VerifyError::BadSecret
    );
    assert_eq!(
        BodyHmac::new("", "x-sig", Encoding::Hex).unwrap_err(),
        VerifyError::BadSecret
    );
}

#[test]
fn stripe_header_without_a_timestamp_is_malformed() {
    let v = first("stripe");
    let verifier = Stripe::new(&v.secret).unwrap();
    let ts = v.timestamp.unwrap();
    let only_sigs = v.expected_header.split_once(',').unwrap().1;
    assert_eq!(
        verifier.verify_at(&[("stripe-signature", only_sigs)], &v.body(), ts),
        Err(VerifyError::MalformedSignature)
    );
    assert_eq!(
        verifier.verify_at(&[("stripe-signature", "t=abc,v1=00")], &v.body(), ts),
        Err(VerifyError::BadTimestamp)
    );
    let none: [(&str, &str); 0] = [];
    assert_eq!(
        verifier.verify_at(&none, &v.body(), ts),
        Err(VerifyError::MissingHeader("stripe-signature".into()))
    );
}

// RFC 4231 test case 2 as a FlashFX/Flux-style body signature.
const RFC4231_KEY: &str = "Jefe";
const RFC4231_DATA: &[u8] = b"what do ya want for nothing?";
const RFC4231_HEX: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
const RFC4231_BASE64: &str = "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=";

#[test]
fn body_hmac_accepts_known_digests_in_the_configured_header() {
    let hex = BodyHmac::new(RFC4231_KEY, "flux-signature", Encoding::Hex).unwrap();
    assert_eq!(
        hex.verify(&[("Flux-Signature", RFC4231_HEX)], RFC4231_DATA),
        Ok(())
    );
    assert_eq!(
        hex.verify(
            &[("flux-signature", RFC4231_HEX.to_uppercase().as_str())],
            RFC4231_DATA
        ),
        Ok(())
    );
    let b64 = BodyHmac::new(RFC4231_KEY, "flashfx-signature", Encoding::Base64).unwrap();
    assert_eq!(
        b64.verify(&[("flashfx-signature", RFC4231_BASE64)], RFC4231_DATA),
        Ok(())
    );
}

#[test]
fn body_hmac_rejects_tampering_wrong_secrets_and_missing_headers() {
    let b64 = BodyHmac::new(RFC4231_KEY, "flashfx-signature", Encoding::Base64).unwrap();
    let headers = [("flashfx-signature", RFC4231_BASE64)];
    assert_eq!(
        b64.verify(&headers, b"what do ya want for something?"),
        Err(VerifyError::NoMatchingSignature)
    );
    let wrong = BodyHmac::new("Jeff", "flashfx-signature", Encoding::Base64).unwrap();
    assert_eq!(
        wrong.verify(&headers, RFC4231_DATA),
        Err(VerifyError::NoMatchingSignature)
    );
    assert_eq!(
        b64.verify(&[("flux-signature", RFC4231_BASE64)], RFC4231_DATA),
        Err(VerifyError::MissingHeader("flashfx-signature".into()))
    );
    let hex = BodyHmac::new(RFC4231_KEY, "flashfx-signature", Encoding::Hex).unwrap();
    assert_eq!(
        hex.verify(&headers, RFC4231_DATA),
        Err(VerifyError::MalformedSignature)
    );
}

#[test]
fn debug_output_never_shows_secrets() {
    let v = first("standard-webhooks-v1");
    let shown = format!(
        "{:?} {:?} {:?} {:?}",
        StandardWebhooks::new(&v.secret).unwrap(),
        Stripe::new("whsec_test_secret").unwrap(),
        BodyHmac::new("my-webhook-secret", "x", Encoding::Hex).unwrap(),
        JwtHs256::new("private-token", "kid").unwrap(),
    );
    for secret in [
        "MfKQ9r8",
        "test_secret",
        "my-webhook-secret",
        "private-token",
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }
}
