//! The figures a scenario produces, and how they are printed.

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub samples: usize,
}

impl Percentiles {
    /// From samples in microseconds.
    pub fn of(mut us: Vec<u64>) -> Self {
        if us.is_empty() {
            return Self::default();
        }
        us.sort_unstable();
        let at = |q: f64| us[((us.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0;
        Self {
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: at(1.0),
            samples: us.len(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    pub scenario: String,
    /// Which pass over the scenarios (`--repeat`) this run was, from 1.
    pub pass: u32,
    pub description: String,
    pub ingest_msgs_per_s: f64,
    /// Round trip of each `POST /msg` (the 202), as the producer saw it.
    pub ingest_latency: Percentiles,
    pub deliveries_per_s: f64,
    /// From the producer sending the request to the endpoint receiving the webhook.
    pub latency: Percentiles,
    pub expected_deliveries: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub missing: u64,
    pub bad_signatures: u64,
    pub server_cpu_s: Option<f64>,
    pub server_peak_rss_mib: Option<f64>,
    /// Scenario-specific figures (name, value).
    pub notes: Vec<(String, String)>,
}

impl Figures {
    pub fn print(&self) {
        println!("{}  {}", self.scenario, self.description);
        if self.ingest_msgs_per_s > 0.0 {
            println!(
                "    ingest       {:>9.0} msg/s   POST p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                self.ingest_msgs_per_s,
                self.ingest_latency.p50_ms,
                self.ingest_latency.p99_ms,
                self.ingest_latency.max_ms
            );
        }
        if self.deliveries_per_s > 0.0 {
            println!(
                "    deliveries   {:>9.0} /s      latency p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                self.deliveries_per_s, self.latency.p50_ms, self.latency.p90_ms, self.latency.p99_ms, self.latency.max_ms
            );
        }
        println!(
            "    delivered {} of {}   duplicates {}   missing {}   bad signatures {}",
            self.delivered,
            self.expected_deliveries,
            self.duplicates,
            self.missing,
            self.bad_signatures
        );
        let cpu = self
            .server_cpu_s
            .map_or("n/a".into(), |c| format!("{c:.1} s"));
        let rss = self
            .server_peak_rss_mib
            .map_or("n/a".into(), |r| format!("{r:.1} MiB"));
        println!("    server       cpu {cpu}   peak RSS {rss}");
        for (k, v) in &self.notes {
            println!("    {k:<12} {v}");
        }
        println!();
    }
}

/// The median and range of one figure over a scenario's runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        if n == 0 {
            return Self {
                median: 0.0,
                min: 0.0,
                max: 0.0,
            };
        }
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Self {
            median,
            min: values[0],
            max: values[n - 1],
        }
    }
}

/// One scenario over all its runs.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub runs: usize,
    pub deliveries_per_s: Spread,
    pub latency_p99_ms: Spread,
    pub ingest_p99_ms: Spread,
    /// Summed over the runs.
    pub duplicates: u64,
    pub missing: u64,
}

impl Summary {
    /// Per scenario, in the order each first ran.
    pub fn of_runs(runs: &[Figures]) -> Vec<Self> {
        let mut names: Vec<&str> = Vec::new();
        for r in runs {
            if !names.contains(&r.scenario.as_str()) {
                names.push(&r.scenario);
            }
        }
        names
            .into_iter()
            .map(|name| {
                let mine: Vec<&Figures> = runs.iter().filter(|r| r.scenario == name).collect();
                let spread =
                    |f: fn(&Figures) -> f64| Spread::of(mine.iter().map(|r| f(r)).collect());
                Self {
                    scenario: name.to_string(),
                    runs: mine.len(),
                    deliveries_per_s: spread(|r| r.deliveries_per_s),
                    latency_p99_ms: spread(|r| r.latency.p99_ms),
                    ingest_p99_ms: spread(|r| r.ingest_latency.p99_ms),
                    duplicates: mine.iter().map(|r| r.duplicates).sum(),
                    missing: mine.iter().map(|r| r.missing).sum(),
                }
            })
            .collect()
    }

    pub fn print(&self) {
        let rate = |x: &Spread| format!("{:.0} ({:.0}–{:.0})", x.median, x.min, x.max);
        let ms = |x: &Spread| format!("{:.2} ms ({:.2}–{:.2})", x.median, x.min, x.max);
        println!(
            "    {:<4} deliveries/s {}   latency p99 {}   POST p99 {}   duplicates {}   missing {}",
            self.scenario,
            rate(&self.deliveries_per_s),
            ms(&self.latency_p99_ms),
            ms(&self.ingest_p99_ms),
            self.duplicates,
            self.missing
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_is_the_median_and_the_range() {
        assert_eq!(
            Spread::of(vec![3.0, 1.0, 2.0]),
            Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        assert_eq!(
            Spread::of(vec![4.0, 1.0, 2.0, 10.0]),
            Spread {
                median: 3.0,
                min: 1.0,
                max: 10.0
            }
        );
    }

    #[test]
    fn runs_are_summed_up_per_scenario_in_the_order_they_first_ran() {
        let run = |name: &str, rate: f64, dup: u64| Figures {
            scenario: name.into(),
            deliveries_per_s: rate,
            duplicates: dup,
            ..Figures::default()
        };
        let runs = [
            run("S1", 10.0, 0),
            run("S5", 5.0, 1),
            run("S1", 30.0, 2),
            run("S1", 20.0, 0),
        ];
        let summary = Summary::of_runs(&runs);
        let names: Vec<&str> = summary.iter().map(|s| s.scenario.as_str()).collect();
        assert_eq!(names, ["S1", "S5"]);
        assert_eq!(summary[0].runs, 3);
        assert_eq!(
            summary[0].deliveries_per_s,
            Spread {
                median: 20.0,
                min: 10.0,
                max: 30.0
            }
        );
        assert_eq!(summary[0].duplicates, 2);
        assert_eq!(summary[1].runs, 1);
        assert_eq!(summary[1].duplicates, 1);
    }
}
