//! The results file (JSON, `"format": 1`): what each run writes with
//! --json and what --plot reads back. Numbers keep the format's style:
//! whole numbers without a fraction, others rounded to 3 decimals, and
//! null where there is no value.

use std::path::Path;

use serde::Serialize;
use serde_json::{Number, Value};

use crate::daemon::DaemonReport;
use crate::events::{EventsLatency, EventsRate};
use crate::latency::LatencyRow;
use crate::throughput::Throughput;

pub const TOOL: &str = "gpiofs-bench";
pub const FORMAT: u32 = 1;

/// A class-directory run.
#[derive(Serialize)]
pub struct ClassReport {
    pub tool: &'static str,
    pub format: u32,
    pub label: String,
    pub class_dir: String,
    pub input: u32,
    pub kernel: String,
    pub cpus: usize,
    pub quick: bool,
    #[serde(flatten)]
    pub throughput: Throughput,
    pub latency: Vec<LatencyRow>,
    pub events_latency: Option<EventsLatency>,
    pub events_rate: Option<EventsRate>,
    pub events_rate_paced: Option<EventsRate>,
    pub daemon: Option<DaemonReport>,
}

/// A --value-file run (the FUSE floor); `trigger` and `latency` only with
/// --trigger.
#[derive(Serialize)]
pub struct ValueFileReport {
    pub tool: &'static str,
    pub format: u32,
    pub label: String,
    pub value_file: String,
    pub kernel: String,
    pub cpus: usize,
    pub quick: bool,
    pub value_reads_per_s: Option<f64>,
    pub value_writes_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Vec<LatencyRow>>,
}

/// Summary of samples in microseconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Stats {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(samples: &mut [f64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(|a, b| a.total_cmp(b));
        let n = samples.len();
        let pct = |p: f64| samples[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Some(Stats {
            n,
            min: samples[0],
            median: pct(0.5),
            p99: pct(0.99),
            max: samples[n - 1],
        })
    }
}

/// A report as a JSON document in the format's number style.
pub fn to_json(report: &impl Serialize) -> Result<Value, String> {
    let mut doc = serde_json::to_value(report).map_err(|e| format!("JSON: {e}"))?;
    tidy_numbers(&mut doc);
    Ok(doc)
}

pub fn write_json(path: &Path, doc: &Value) -> Result<(), String> {
    let mut text = serde_json::to_string_pretty(doc).map_err(|e| format!("JSON: {e}"))?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("\nwrote {}", path.display());
    Ok(())
}

/// Whole numbers without ".0", the rest to 3 decimals (µs to the ns).
fn tidy_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(x) = n.as_f64().filter(|_| n.is_f64()) {
                let tidy = if x.fract() == 0.0 && x.abs() < 1e15 {
                    Some(Number::from(x as i64))
                } else {
                    Number::from_f64((x * 1000.0).round() / 1000.0)
                };
                if let Some(t) = tidy {
                    *n = t;
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(tidy_numbers),
        Value::Object(o) => o.values_mut().for_each(tidy_numbers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_the_format_style() {
        let mut v = serde_json::json!({"a": 2000.0, "b": 12.34567, "c": [0.5, 3], "d": f64::NAN});
        tidy_numbers(&mut v);
        assert_eq!(
            v.to_string(),
            r#"{"a":2000,"b":12.346,"c":[0.5,3],"d":null}"#
        );
    }

    #[test]
    fn stats_pick_nearest_rank_percentiles() {
        let mut s: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let st = Stats::of(&mut s).unwrap();
        assert_eq!(
            (st.n, st.min, st.median, st.p99, st.max),
            (100, 1.0, 50.0, 99.0, 100.0)
        );
        assert!(Stats::of(&mut []).is_none());
    }
}
