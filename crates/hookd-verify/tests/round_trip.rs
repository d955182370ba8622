//! Whatever hookd-core signs, hookd-verify accepts, and a changed body, id or key
//! is refused: the sender and the receiver agree on every scheme.

use hookd_core::signing::{
    sign_body_hmac, sign_jwt_hs256, sign_standard, sign_stripe, EndpointSecret,
};
use hookd_verify::{BodyHmac, Encoding, JwtHs256, StandardWebhooks, Stripe, VerifyError};
use proptest::prelude::*;

fn hmac_secret() -> impl Strategy<Value = EndpointSecret> {
    proptest::collection::vec(any::<u8>(), 24..=64).prop_map(EndpointSecret::Hmac)
}

fn ed25519_secret() -> impl Strategy<Value = EndpointSecret> {
    any::<[u8; 32]>().prop_map(|seed| {
        EndpointSecret::Ed25519(Box::new(
            ed25519_dalek::SigningKey::from_bytes(&seed).to_keypair_bytes(),
        ))
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..512)
}

const NOW: i64 = 1_700_000_000;

proptest! {
    #[test]
    fn every_standard_key_verifies_its_own_entry_in_a_rotation_header(
        keys in proptest::collection::vec(prop_oneof![hmac_secret(), ed25519_secret()], 1..4),
        msg_id in "msg_[A-Za-z0-9]{1,27}",
        skew in -300i64..=300,
        body in body(),
        svix in any::<bool>(),
    ) {
        let ts = NOW + skew;
        let signature = sign_standard(&keys, &msg_id, ts, &body);
        let family = if svix { "svix" } else { "webhook" };
        let headers = [
            (format!("{family}-id"), msg_id.clone()),
            (format!("{family}-timestamp"), ts.to_string()),
            (format!("{family}-signature"), signature),
        ];
        for key in &keys {
            let verifier = StandardWebhooks::new(&key.to_receiver_string()).unwrap();
            prop_assert_eq!(verifier.verify_at(&headers, &body, NOW), Ok(()));
            let mut tampered = body.clone();
            tampered[0] ^= 0x80;
            let refused = Err(VerifyError::NoMatchingSignature);
            prop_assert_eq!(verifier.verify_at(&headers, &tampered, NOW), refused.clone());
            let mut other_id = headers.clone();
            other_id[0].1.push('x');
            prop_assert_eq!(verifier.verify_at(&other_id, &body, NOW), refused);
        }
    }

    #[test]
    fn every_stripe_secret_verifies_a_rolled_header(
        secrets in proptest::collection::vec("[ -~]{1,40}", 1..4),
        skew in -300i64..=300,
        body in body(),
    ) {
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let header = sign_stripe(&refs, NOW + skew, &body);
        let headers = [("stripe-signature", header.as_str())];
        for secret in &secrets {
            prop_assert_eq!(Stripe::new(secret).unwrap().verify_at(&headers, &body, NOW), Ok(()));
        }
        let stranger = format!("{}!", secrets[0]);
        prop_assume!(!secrets.contains(&stranger));
        prop_assert_eq!(
            Stripe::new(&stranger).unwrap().verify_at(&headers, &body, NOW),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn body_hmac_round_trips_in_both_encodings(
        secret in ".{1,40}",
        body in body(),
        hex in any::<bool>(),
    ) {
        let (core, verify) = if hex {
            (hookd_core::signing::Encoding::Hex, Encoding::Hex)
        } else {
            (hookd_core::signing::Encoding::Base64, Encoding::Base64)
        };
        let signature = sign_body_hmac(&secret, &body, core);
        let verifier = BodyHmac::new(&secret, "x-signature", verify).unwrap();
        prop_assert_eq!(verifier.verify(&[("x-signature", signature.as_str())], &body), Ok(()));
        let mut tampered = body.clone();
        tampered.push(b' ');
        prop_assert_eq!(
            verifier.verify(&[("x-signature", signature.as_str())], &tampered),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn jwt_claims_come_back_as_signed(
        secret in ".{1,40}",
        kid in "[a-f0-9-]{1,36}",
        generation_time in any::<u32>(),
        event_type in "[a-z.]{1,20}",
    ) {
        let claims = serde_json::json!({
            "generationTime": generation_time,
            "events": [{"type": event_type}],
        });
        let token = sign_jwt_hs256(&secret, &kid, &serde_json::to_vec(&claims).unwrap());
        let verifier = JwtHs256::new(&secret, &kid).unwrap();
        prop_assert_eq!(verifier.verify(token.as_bytes()), Ok(claims));
        let other_kid = format!("{kid}0");
        prop_assert_eq!(
            JwtHs256::new(&secret, &other_kid).unwrap().verify(token.as_bytes()),
            Err(VerifyError::KidMismatch)
        );
    }
}

#[test]
fn jwt_exp_and_nbf_are_enforced_with_leeway() {
    let token = sign_jwt_hs256("s3cret", "kid", br#"{"nbf":1000,"exp":2000}"#);
    let verifier = JwtHs256::new("s3cret", "kid").unwrap();
    assert!(verifier.verify_at(token.as_bytes(), 1500).is_ok());
    assert_eq!(
        verifier.verify_at(token.as_bytes(), 2001),
        Err(VerifyError::TokenExpired)
    );
    assert_eq!(
        verifier.verify_at(token.as_bytes(), 999),
        Err(VerifyError::TokenNotYetValid)
    );
    let lenient = verifier.with_leeway(std::time::Duration::from_secs(10));
    assert!(lenient.verify_at(token.as_bytes(), 2010).is_ok());
    assert!(lenient.verify_at(token.as_bytes(), 990).is_ok());
}
