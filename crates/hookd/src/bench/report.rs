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
