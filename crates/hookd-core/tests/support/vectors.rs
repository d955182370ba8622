//! The shared signature vectors (`<repo>/../shared/spec/vectors.json`), parsed in
//! one place for both the signers' tests (hookd-core) and the verifier's tests
//! (hookd-verify, which includes this file by path).

use serde::Deserialize;
use serde_json::value::RawValue;

/// One vector. Fields a scheme does not use are absent (or null) in the file.
#[derive(Debug, Deserialize)]
pub struct Vector {
    pub id: String,
    pub scheme: String,
    /// `whsec_`/bare base64 (v1), `whsk_` (v1a), a plain string (Stripe, JWT).
    pub secret: String,
    /// A rotated-out key that still signs; its signature follows the current one.
    pub secret_old: Option<String>,
    /// The Ed25519 key of an endpoint that signs with both kinds of key.
    pub secret_v1a: Option<String>,
    pub public_key: Option<String>,
    pub kid: Option<String>,
    pub msg_id: Option<String>,
    pub timestamp: Option<i64>,
    payload: Option<String>,
    payload_repeat: Option<Repeat>,
    /// Kept raw: the vector's JWT was signed over these claims in this key order.
    claims: Option<Box<RawValue>>,
    pub expected_header: String,
    pub expected_body: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Repeat {
    char: String,
    count: usize,
}

impl Vector {
    /// The exact body bytes, expanding `payload_repeat` (the 256 KiB and 1 MiB cases).
    pub fn body(&self) -> Vec<u8> {
        match (&self.payload, &self.payload_repeat) {
            (Some(p), _) => p.as_bytes().to_vec(),
            (None, Some(r)) => r.char.repeat(r.count).into_bytes(),
            (None, None) => panic!("vector {} has neither payload nor payload_repeat", self.id),
        }
    }

    /// The JWT claims as compact JSON in the file's key order (`,` and `:` with no
    /// spaces), which is how the vector's claims segment was produced.
    pub fn claims_json(&self) -> Option<String> {
        self.claims.as_ref().map(|raw| compact_json(raw.get()))
    }
}

/// Drops the whitespace between JSON tokens, leaving string contents alone.
fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// Every vector in the file. Panics with the path if the file is missing: the
/// shared folder always sits beside the repository root in CI.
pub fn load() -> Vec<Vector> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/spec/vectors.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read the signature vectors at {path} ({e}); \
             they live in <repo>/../shared/spec/vectors.json"
        )
    });
    let vectors: Vec<Vector> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not a vector list: {e}"));
    assert!(!vectors.is_empty(), "{path} holds no vectors");
    vectors
}
