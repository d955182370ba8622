//! Retry schedules as a policy object: given how many attempts have failed, the
//! policy says how long to wait before the next one, or that it is time to give up.

use std::time::Duration;

use rand::Rng;

/// Named schedules from the signing spec (delays after the first, immediate attempt).
pub const PRESETS: &[(&str, &[u64])] = &[
    ("standard", &[5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]),
    (
        "standard-webhooks",
        &[5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400],
    ),
    ("flashfx", &[6, 60, 600]),
    ("flux", &[60, 300, 1_800, 7_200]),
    ("fire", &[60, 60, 60, 60]),
    // "keeps retrying for up to 3 days": the standard curve, then every 10 h to 72 h in all.
    (
        "flagright",
        &[
            5, 300, 1_800, 7_200, 18_000, 36_000, 36_000, 36_000, 36_000, 36_000, 36_000, 36_000,
        ],
    ),
];

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    delays: Vec<Duration>,
    /// Fraction of each delay that may be added or removed at random (0.2 = ±20%).
    jitter: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryPolicyError {
    #[error("unknown retry preset {0:?}")]
    UnknownPreset(String),
    #[error("retry delay {0:?} is not a non-negative number of seconds")]
    BadDelay(String),
    #[error("a retry schedule may have at most {max} entries")]
    TooLong { max: usize },
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryDecision {
    RetryAfter(Duration),
    GiveUp,
}

impl RetryPolicy {
    pub const MAX_ENTRIES: usize = 50;

    pub fn new(delays: Vec<Duration>, jitter: f64) -> Result<Self, RetryPolicyError> {
        if delays.len() > Self::MAX_ENTRIES {
            return Err(RetryPolicyError::TooLong {
                max: Self::MAX_ENTRIES,
            });
        }
        Ok(Self {
            delays,
            jitter: jitter.clamp(0.0, 1.0),
        })
    }

    pub fn preset(name: &str) -> Result<Self, RetryPolicyError> {
        let (_, secs) = PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| RetryPolicyError::UnknownPreset(name.to_string()))?;
        Self::new(secs.iter().map(|s| Duration::from_secs(*s)).collect(), 0.2)
    }

    /// Parses `HOOKD_RETRY_SCHEDULE`: comma-separated delays in seconds (fractions allowed).
    pub fn parse_schedule(spec: &str) -> Result<Self, RetryPolicyError> {
        let delays = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| RetryPolicyError::BadDelay(s.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(delays, 0.2)
    }

    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// Number of retries after the first attempt.
    pub fn max_retries(&self) -> usize {
        self.delays.len()
    }

    /// Decision after `failed_attempts` attempts (counting the first) have all failed.
    pub fn decide(&self, failed_attempts: u32, rng: &mut impl Rng) -> RetryDecision {
        let idx = failed_attempts.saturating_sub(1) as usize;
        match self.delays.get(idx) {
            None => RetryDecision::GiveUp,
            Some(base) if self.jitter == 0.0 => RetryDecision::RetryAfter(*base),
            Some(base) => {
                let factor = 1.0 + rng.gen_range(-self.jitter..=self.jitter);
                RetryDecision::RetryAfter(base.mul_f64(factor.max(0.0)))
            }
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::preset("standard").expect("the standard preset exists")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn flashfx_preset_retries_three_times_6_60_600_apart() {
        let p = RetryPolicy::preset("flashfx").unwrap().with_jitter(0.0);
        let mut rng = rand::thread_rng();
        let got: Vec<_> = (1..=4).map(|n| p.decide(n, &mut rng)).collect();
        assert_eq!(
            got,
            vec![
                RetryDecision::RetryAfter(Duration::from_secs(6)),
                RetryDecision::RetryAfter(Duration::from_secs(60)),
                RetryDecision::RetryAfter(Duration::from_secs(600)),
                RetryDecision::GiveUp,
            ]
        );
    }

    #[test]
    fn schedule_string_parses_and_rejects_negatives() {
        let p = RetryPolicy::parse_schedule("1, 2.5,10").unwrap();
        assert_eq!(
            p.delays(),
            &[
                Duration::from_secs(1),
                Duration::from_millis(2500),
                Duration::from_secs(10)
            ]
        );
        assert_eq!(
            RetryPolicy::parse_schedule("1,-2"),
            Err(RetryPolicyError::BadDelay("-2".into()))
        );
        assert!(RetryPolicy::preset("nope").is_err());
    }

    #[test]
    fn every_preset_is_valid() {
        for (name, _) in PRESETS {
            assert!(RetryPolicy::preset(name).is_ok(), "{name}");
        }
    }

    proptest! {
        #[test]
        fn jittered_delay_stays_within_twenty_percent(secs in 1u64..100_000, n in 1u32..8) {
            let p = RetryPolicy::new(vec![Duration::from_secs(secs); 8], 0.2).unwrap();
            match p.decide(n, &mut rand::thread_rng()) {
                RetryDecision::RetryAfter(d) => {
                    let base = secs as f64;
                    prop_assert!(d.as_secs_f64() >= base * 0.8 - 1e-6 && d.as_secs_f64() <= base * 1.2 + 1e-6);
                }
                RetryDecision::GiveUp => prop_assert!(false, "gave up early"),
            }
        }
    }
}
