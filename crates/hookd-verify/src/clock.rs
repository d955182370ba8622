//! Time for the replay checks. Every verifier has a `verify_at(.., now)` taking
//! Unix seconds, so tests and replays of recorded traffic can pin the clock; the
//! plain `verify` reads the system clock here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::VerifyError;

/// How far a signed timestamp may be from now, in either direction, by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The system clock in Unix seconds (0 for a clock set before 1970).
pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Parses a Unix-seconds timestamp as sent in a header.
pub(crate) fn parse_timestamp(text: &str) -> Result<i64, VerifyError> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::BadTimestamp);
    }
    text.parse().map_err(|_| VerifyError::BadTimestamp)
}

/// Rejects timestamps more than `tolerance` before or after `now`.
pub(crate) fn check_tolerance(
    timestamp: i64,
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    if now.abs_diff(timestamp) > tolerance.as_secs() {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_applies_in_both_directions_and_is_inclusive() {
        let tol = Duration::from_secs(300);
        assert_eq!(check_tolerance(1000, 1300, tol), Ok(()));
        assert_eq!(check_tolerance(1300, 1000, tol), Ok(()));
        assert_eq!(
            check_tolerance(1000, 1301, tol),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        assert_eq!(
            check_tolerance(1301, 1000, tol),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        assert_eq!(
            check_tolerance(i64::MIN, i64::MAX, tol),
            Err(VerifyError::TimestampOutOfTolerance)
        );
    }

    #[test]
    fn only_plain_digits_are_timestamps() {
        assert_eq!(parse_timestamp("1614265330"), Ok(1_614_265_330));
        for bad in ["", "-5", "+5", "1.5", "1e9", "abc", "99999999999999999999"] {
            assert_eq!(
                parse_timestamp(bad),
                Err(VerifyError::BadTimestamp),
                "{bad:?}"
            );
        }
    }
}
