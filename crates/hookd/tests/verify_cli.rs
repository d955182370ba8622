//! `hookd verify` from the command line, as someone debugging a receiver runs it.

use std::process::Command;

use hookd_core::signing::{sign_standard, sign_stripe, EndpointSecret};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn hookd(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(args)
        .output()
        .expect("running hookd");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_genuine_webhook_verifies_and_a_tampered_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let body = br#"{"type":"invoice.paid","amount":4200}"#;
    let ts = chrono::Utc::now().timestamp();
    let key = EndpointSecret::parse(SECRET).unwrap();
    let sig = sign_standard(&[key], "msg_1", ts, body);
    let headers = dir.path().join("headers.txt");
    std::fs::write(&headers, format!("HTTP/1.1 200 OK\nwebhook-id: msg_1\nwebhook-timestamp: {ts}\nwebhook-signature: {sig}\n")).unwrap();
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, body).unwrap();
    let (h, b) = (headers.to_str().unwrap(), body_file.to_str().unwrap());

    let (ok, text) = hookd(&["verify", "--secret", SECRET, "--headers", h, "--body", b]);
    assert!(ok, "{text}");
    assert!(text.contains("signature valid"), "{text}");

    std::fs::write(&body_file, br#"{"type":"invoice.paid","amount":9999}"#).unwrap();
    let (ok, text) = hookd(&["verify", "--secret", SECRET, "--headers", h, "--body", b]);
    assert!(!ok, "a tampered body must not verify: {text}");
    assert!(text.contains("NOT valid"), "{text}");
}

#[test]
fn stripe_scheme_is_checked_too() {
    let dir = tempfile::tempdir().unwrap();
    let body = br#"{"id":"evt_1"}"#;
    let secret = "whsec_stripe_style_secret_0123456789";
    let sig = sign_stripe(&[secret], chrono::Utc::now().timestamp(), body);
    let headers = dir.path().join("h.json");
    std::fs::write(
        &headers,
        serde_json::json!({"Stripe-Signature": sig}).to_string(),
    )
    .unwrap();
    let body_file = dir.path().join("b");
    std::fs::write(&body_file, body).unwrap();
    let args = [
        "verify",
        "--scheme",
        "stripe",
        "--secret",
        secret,
        "--headers",
        headers.to_str().unwrap(),
        "--body",
        body_file.to_str().unwrap(),
    ];
    let (ok, text) = hookd(&args);
    assert!(ok, "{text}");
    let (ok, _) = hookd(&[
        "verify",
        "--scheme",
        "stripe",
        "--secret",
        "whsec_some_other_secret_00000001",
        "--headers",
        args[6],
        "--body",
        args[8],
    ]);
    assert!(!ok, "a wrong secret must not verify");
}
