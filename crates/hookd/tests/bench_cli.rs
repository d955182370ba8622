//! `hookd bench` end to end, as someone sizing a deployment runs it: a quick
//! pass of S1 (one endpoint) and S5 (30% of attempts fail, retried after a
//! second) against a real server, read back through `--json`. This checks
//! that the bench counts what it should (every delivery arrives once with a
//! valid signature), never how fast anything went.

use std::process::Command;

use serde_json::Value;

/// Runs `hookd bench <args> --json`, which must succeed, and parses its report.
fn bench_json(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("running hookd bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hookd bench failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("bench --json prints JSON");
    report
}

#[test]
fn a_quick_bench_delivers_everything_once_and_reports_the_machine() {
    let report = bench_json(&["--quick", "--scenarios", "s1,s5"]);

    let machine = &report["machine"];
    assert!(machine["cores"].as_u64().unwrap() >= 1, "{machine}");
    for probe in [
        "signatures_per_s_one_core",
        "loopback_round_trip_us",
        "disk_flush_ms",
    ] {
        assert!(machine[probe].as_f64().unwrap() > 0.0, "{probe}: {machine}");
    }

    let scenarios = report["scenarios"].as_array().expect("a list of scenarios");
    let names: Vec<&str> = scenarios
        .iter()
        .map(|s| s["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["S1", "S5"]);
    for s in scenarios {
        let expected = s["expected_deliveries"].as_u64().unwrap();
        assert!(expected > 0, "{s}");
        assert_eq!(s["delivered"].as_u64(), Some(expected), "{s}");
        assert_eq!(s["duplicates"].as_u64(), Some(0), "{s}");
        assert_eq!(s["missing"].as_u64(), Some(0), "{s}");
        assert_eq!(s["bad_signatures"].as_u64(), Some(0), "{s}");
        assert!(s["latency"]["samples"].as_u64().unwrap() >= expected, "{s}");
        assert!(s["server_peak_rss_mib"].as_f64().unwrap() > 0.0, "{s}");
    }
}

/// `--repeat` runs the scenarios pass after pass and sums each one up: its
/// runs, and the median and range of its figures.
#[test]
fn a_repeated_bench_reports_every_run_and_each_scenarios_spread() {
    let report = bench_json(&["--quick", "--scenarios", "s1", "--repeat", "2"]);
    let runs = report["scenarios"].as_array().expect("a list of runs");
    let passes: Vec<u64> = runs.iter().map(|r| r["pass"].as_u64().unwrap()).collect();
    assert_eq!(passes, [1, 2], "{report}");
    let summary = report["summary"].as_array().expect("a summary");
    assert_eq!(summary.len(), 1, "{report}");
    let s1 = &summary[0];
    assert_eq!(s1["scenario"], "S1");
    assert_eq!(s1["runs"], 2);
    let rates: Vec<f64> = runs
        .iter()
        .map(|r| r["deliveries_per_s"].as_f64().unwrap())
        .collect();
    let spread = &s1["deliveries_per_s"];
    let (lo, hi) = (rates[0].min(rates[1]), rates[0].max(rates[1]));
    assert_eq!(spread["min"].as_f64().unwrap(), lo, "{s1}");
    assert_eq!(spread["max"].as_f64().unwrap(), hi, "{s1}");
    assert!(
        (spread["median"].as_f64().unwrap() - (lo + hi) / 2.0).abs() < 1e-9,
        "{s1}"
    );
    assert_eq!(s1["duplicates"], 0);
    assert_eq!(s1["missing"], 0);

    let bad = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["bench", "--repeat", "0"])
        .output()
        .expect("running hookd bench");
    assert!(!bad.status.success(), "--repeat 0 is refused");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--repeat"),
        "the error names the option"
    );
}
