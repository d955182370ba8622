//! Prefixed, time-sortable ids (`app_`, `ep_`, `msg_`, ...) followed by a 27-character
//! base62 KSUID with millisecond precision, the format the Svix API uses.

use std::str::FromStr;

use svix_ksuid::{KsuidLike, KsuidMs};

/// The kinds of object that carry a prefixed id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    App,
    Endpoint,
    Message,
    Attempt,
    Destination,
    EventType,
    Task,
    Token,
}

impl IdKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::App => "app_",
            IdKind::Endpoint => "ep_",
            IdKind::Message => "msg_",
            IdKind::Attempt => "atmpt_",
            IdKind::Destination => "msgep_",
            IdKind::EventType => "evtype_",
            IdKind::Task => "qtask_",
            IdKind::Token => "tok_",
        }
    }

    /// True when `s` has this kind's prefix followed by a well-formed KSUID.
    pub fn is_id(self, s: &str) -> bool {
        s.strip_prefix(self.prefix())
            .is_some_and(|rest| rest.len() == 27 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
    }
}

/// A fresh id of the given kind, stamped with the current time.
pub fn new_id(kind: IdKind) -> String {
    // The random part from the thread's CSPRNG: left to itself, `KsuidMs`
    // asks the kernel (a `getrandom` call) for every id.
    let mut payload = [0u8; PAYLOAD_BYTES];
    rand::Rng::fill(&mut rand::thread_rng(), &mut payload);
    prefixed(
        kind,
        KsuidMs::new(None::<chrono::DateTime<chrono::Utc>>, Some(&payload)).bytes(),
    )
}

/// The random bytes of a `KsuidMs`: 20 in all, less 5 of time stamp.
const PAYLOAD_BYTES: usize = 15;

/// KSUID's digits, in the order of their values.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Base62 digits of a 160-bit KSUID, zero-padded (62^27 > 2^160).
const KSUID_CHARS: usize = 27;

/// The kind's prefix followed by the KSUID in base62, written straight into
/// one string. (`KsuidMs`'s `Display` goes through a general big-number
/// encoder and three allocations: 3% of the server's CPU in the S2 bench,
/// which makes two ids per delivery.)
fn prefixed(kind: IdKind, ksuid: &[u8; 20]) -> String {
    // The big-endian number as five 32-bit limbs, most significant first,
    // divided by 62 once per digit, least significant digit first.
    let mut limbs = [0u32; 5];
    for (limb, bytes) in limbs.iter_mut().zip(ksuid.chunks_exact(4)) {
        *limb = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    let mut digits = [b'0'; KSUID_CHARS];
    for digit in digits.iter_mut().rev() {
        let mut rem = 0u64;
        for limb in limbs.iter_mut() {
            let cur = (rem << 32) | u64::from(*limb);
            // cur < 62 * 2^32, so the quotient fits 32 bits.
            *limb = (cur / 62) as u32;
            rem = cur % 62;
        }
        *digit = BASE62[rem as usize];
    }
    let prefix = kind.prefix();
    let mut id = String::with_capacity(prefix.len() + KSUID_CHARS);
    id.push_str(prefix);
    id.extend(digits.iter().map(|&b| char::from(b)));
    id
}

/// The resolution of the time stamped in ids.
const TICK_MS: i64 = 4;

/// The lowest id of `kind` stamped with the clock tick after `at` (ids count
/// time in 4 ms ticks): every id made at `at` or before sorts below it, and
/// every id made 4 ms or more later sorts above it.
pub fn id_bound_after(kind: IdKind, at: chrono::DateTime<chrono::Utc>) -> String {
    let payload = [0u8; PAYLOAD_BYTES];
    prefixed(
        kind,
        KsuidMs::from_millis(Some(at.timestamp_millis() + TICK_MS), Some(&payload)).bytes(),
    )
}

/// The creation time encoded in an id, if it is well formed.
pub fn id_timestamp(kind: IdKind, id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let rest = id.strip_prefix(kind.prefix())?;
    let k = KsuidMs::from_str(rest).ok()?;
    Some(k.timestamp::<chrono::DateTime<chrono::Utc>>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_have_prefix_and_27_base62_chars() {
        let id = new_id(IdKind::App);
        assert!(id.starts_with("app_"));
        assert_eq!(id.len(), 31);
        assert!(IdKind::App.is_id(&id));
        assert!(!IdKind::Endpoint.is_id(&id));
    }

    #[test]
    fn the_bound_after_a_moment_sorts_above_every_id_made_then() {
        let at = chrono::Utc::now();
        let bound = id_bound_after(IdKind::Destination, at);
        assert!(IdKind::Destination.is_id(&bound));
        for _ in 0..200 {
            let made_then = format!(
                "{}{}",
                IdKind::Destination.prefix(),
                KsuidMs::from_millis(Some(at.timestamp_millis()), None)
            );
            assert!(made_then < bound, "{made_then} !< {bound}");
            let made_later = format!(
                "{}{}",
                IdKind::Destination.prefix(),
                KsuidMs::from_millis(Some(at.timestamp_millis() + TICK_MS), None)
            );
            assert!(made_later >= bound, "{made_later} < {bound}");
        }
    }

    #[test]
    fn the_encoding_is_ksuids_own_at_the_extremes() {
        for bytes in [[0u8; 20], [0xff; 20], {
            let mut b = [0u8; 20];
            b[19] = 61;
            b
        }] {
            let theirs = format!("ep_{}", KsuidMs::from_bytes(bytes));
            assert_eq!(prefixed(IdKind::Endpoint, &bytes), theirs);
        }
        assert_eq!(
            prefixed(IdKind::Endpoint, &[0xff; 20]),
            "ep_aWgEPTl1tmebfsQzFP4bxwgy80V"
        );
    }

    proptest! {
        #[test]
        fn the_encoding_is_ksuids_own(bytes in proptest::array::uniform20(any::<u8>())) {
            let theirs = format!("msg_{}", KsuidMs::from_bytes(bytes));
            prop_assert_eq!(prefixed(IdKind::Message, &bytes), theirs);
        }
    }

    #[test]
    fn ids_made_in_the_same_millisecond_differ() {
        let ids: std::collections::HashSet<String> =
            (0..20_000).map(|_| new_id(IdKind::Attempt)).collect();
        assert_eq!(ids.len(), 20_000);
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let a = new_id(IdKind::Message);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = new_id(IdKind::Message);
        assert!(a < b, "{a} should sort before {b}");
    }

    #[test]
    fn id_timestamp_round_trips_to_now() {
        let id = new_id(IdKind::Message);
        let ts = id_timestamp(IdKind::Message, &id).unwrap();
        let skew = (chrono::Utc::now() - ts).num_milliseconds().abs();
        assert!(skew < 2_000, "skew {skew} ms");
    }

    proptest! {
        #[test]
        fn strings_that_are_not_27_alphanumerics_are_not_ids(s in "[a-zA-Z0-9_\\-.]{0,40}") {
            let candidate = format!("ep_{s}");
            let expect = s.len() == 27 && s.bytes().all(|b| b.is_ascii_alphanumeric());
            prop_assert_eq!(IdKind::Endpoint.is_id(&candidate), expect);
        }
    }
}
