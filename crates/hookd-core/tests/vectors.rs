//! hookd-core's signers reproduce every shared vector byte for byte.

#[path = "support/vectors.rs"]
mod shared_vectors;

use hookd_core::signing::{sign_jwt_hs256, sign_standard, sign_stripe, EndpointSecret};
use shared_vectors::{load, Vector};

fn parse(secret: &str) -> EndpointSecret {
    EndpointSecret::parse(secret)
        .unwrap_or_else(|e| panic!("secret {secret:?} does not parse: {e}"))
}

/// What hookd sends for this vector: the signature header, or for JWT the body.
fn signed(v: &Vector) -> String {
    match v.scheme.as_str() {
        "standard-webhooks-v1" | "standard-webhooks-v1a-ed25519" | "standard-webhooks-mixed" => {
            // Current key first, then a rotated-out key, then (mixed) the Ed25519 key.
            let keys: Vec<EndpointSecret> = std::iter::once(v.secret.as_str())
                .chain(v.secret_old.as_deref())
                .chain(v.secret_v1a.as_deref())
                .map(parse)
                .collect();
            let msg_id = v.msg_id.as_deref().expect("standard vectors carry msg_id");
            sign_standard(
                &keys,
                msg_id,
                v.timestamp.expect("standard vectors carry a timestamp"),
                &v.body(),
            )
        }
        "stripe-v1" => {
            let secrets: Vec<&str> = std::iter::once(v.secret.as_str())
                .chain(v.secret_old.as_deref())
                .collect();
            sign_stripe(
                &secrets,
                v.timestamp.expect("stripe vectors carry a timestamp"),
                &v.body(),
            )
        }
        "fire-jwt-hs256" => {
            let claims = v.claims_json().expect("jwt vectors carry claims");
            sign_jwt_hs256(
                &v.secret,
                v.kid.as_deref().expect("jwt vectors carry a kid"),
                claims.as_bytes(),
            )
        }
        other => panic!(
            "vector {}: unknown scheme {other:?}; teach the signing tests about it",
            v.id
        ),
    }
}

#[test]
fn every_vector_is_reproduced_byte_for_byte() {
    let vectors = load();
    let failures: Vec<String> = vectors
        .iter()
        .filter_map(|v| {
            let got = signed(v);
            let expected = v.expected_body.as_deref().unwrap_or(&v.expected_header);
            (got != expected).then(|| format!("{}:\n  expected {expected}\n  got      {got}", v.id))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} vectors differ:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
}

#[test]
fn vectors_cover_every_scheme_hookd_signs() {
    let vectors = load();
    for scheme in [
        "standard-webhooks-v1",
        "standard-webhooks-v1a-ed25519",
        "standard-webhooks-mixed",
        "stripe-v1",
        "fire-jwt-hs256",
    ] {
        assert!(
            vectors.iter().any(|v| v.scheme == scheme),
            "no vector for {scheme}"
        );
    }
    assert!(vectors
        .iter()
        .any(|v| v.secret_old.is_some() && v.scheme.starts_with("standard")));
    assert!(vectors
        .iter()
        .any(|v| v.secret_old.is_some() && v.scheme == "stripe-v1"));
}

#[test]
fn jwt_vector_body_and_header_fields_agree() {
    for v in load().iter().filter(|v| v.scheme == "fire-jwt-hs256") {
        assert_eq!(
            v.expected_body.as_deref(),
            Some(v.expected_header.as_str()),
            "{}",
            v.id
        );
    }
}

#[test]
fn ed25519_vectors_publish_the_public_key_of_their_secret() {
    let vectors = load();
    let with_keys: Vec<&Vector> = vectors.iter().filter(|v| v.public_key.is_some()).collect();
    assert!(!with_keys.is_empty());
    for v in with_keys {
        let secret = parse(v.secret_v1a.as_deref().unwrap_or(&v.secret));
        assert!(secret.is_ed25519(), "{}", v.id);
        assert_eq!(Some(secret.to_receiver_string()), v.public_key, "{}", v.id);
    }
}
