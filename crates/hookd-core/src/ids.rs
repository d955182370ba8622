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
    format!(
        "{}{}",
        kind.prefix(),
        KsuidMs::new(None::<chrono::DateTime<chrono::Utc>>, None)
    )
}

/// The resolution of the time stamped in ids.
const TICK_MS: i64 = 4;

/// The lowest id of `kind` stamped with the clock tick after `at` (ids count
/// time in 4 ms ticks): every id made at `at` or before sorts below it, and
/// every id made 4 ms or more later sorts above it.
pub fn id_bound_after(kind: IdKind, at: chrono::DateTime<chrono::Utc>) -> String {
    let payload = [0u8; 15];
    format!(
        "{}{}",
        kind.prefix(),
        KsuidMs::from_millis(Some(at.timestamp_millis() + TICK_MS), Some(&payload))
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
