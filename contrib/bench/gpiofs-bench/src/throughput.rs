//! Value throughput: pread(2)s and pwrite(2)s at offset 0 of one open
//! file, per second.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::setup::{Setup, claim_line, open, read_attr, set_attr};
use crate::watchdog::phase;

/// Throughput windows: the rate reported is the median of this many
/// equal windows of the measuring time (one noisy window, e.g. a host
/// hiccup under emulation, does not move it).
const RATE_WINDOWS: usize = 3;

/// The throughput part of a class-directory report.
#[derive(Serialize)]
pub struct Throughput {
    pub value_reads_per_s: Option<f64>,
    pub value_writes_per_s: Option<f64>,
    /// The line the writes went to.
    pub output: u32,
}

/// Prints the table's heading.
pub fn heading(secs: f64) {
    println!(
        "\n== value read/write throughput (one open file, pread/pwrite at offset 0; median of {RATE_WINDOWS} windows of {:.1} s) ==",
        secs / RATE_WINDOWS as f64
    );
}

/// The class-directory table: reads of the input's value, writes of the
/// output's (`output`, or the line after the input, set to out).
pub fn throughput(setup: &Setup, output: Option<u32>, secs: f64) -> Throughput {
    heading(secs);
    println!("{:<10} {:>8} {:>14}", "op", "line", "ops/s");
    let budget = Duration::from_secs_f64(secs) + setup.phase_timeout;
    phase("value reads", budget);
    let reads = read_rate(&setup.value, secs);
    match &reads {
        Ok(r) => println!("{:<10} {:>8} {:>14.0}", "read", setup.input, r),
        Err(e) => println!("{:<10} {:>8} {:>14}  ({e})", "read", setup.input, "n/a"),
    }

    phase("value writes", budget);
    let line = output.unwrap_or(setup.input + 1);
    let writes = (|| -> Result<f64, String> {
        let exported = claim_line(&setup.class, line)?;
        let current = read_attr(&setup.gpio(line, "direction"))?;
        if current != "out" {
            set_attr(&setup.class, line, "direction", "out", !exported)?;
        }
        write_rate(&setup.gpio(line, "value"), secs)
    })();
    match &writes {
        Ok(r) => println!("{:<10} {:>8} {:>14.0}", "write", line, r),
        Err(e) => println!("{:<10} {:>8} {:>14}  ({e})", "write", line, "n/a"),
    }
    Throughput {
        value_reads_per_s: reads.ok(),
        value_writes_per_s: writes.ok(),
        output: line,
    }
}

/// Calls `op` for `secs` in RATE_WINDOWS windows; returns the median of
/// the windows' rates (ops/s).
fn rate(secs: f64, mut op: impl FnMut(u64) -> Result<(), String>) -> Result<f64, String> {
    let mut rates = Vec::with_capacity(RATE_WINDOWS);
    let mut n = 0u64;
    for _ in 0..RATE_WINDOWS {
        let t = Instant::now();
        let start = n;
        while t.elapsed().as_secs_f64() < secs / RATE_WINDOWS as f64 {
            op(n)?;
            n += 1;
        }
        rates.push((n - start) as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    Ok(rates[RATE_WINDOWS / 2])
}

/// pread(2)s of `path` at offset 0 per second, for `secs`.
pub fn read_rate(path: &Path, secs: f64) -> Result<f64, String> {
    let file = open(path, false, false)?;
    let mut buf = [0u8; 16];
    rate(secs, |_| {
        file.read_at(&mut buf, 0)
            .map(|_| ())
            .map_err(|e| format!("pread: {e}"))
    })
}

/// pwrite(2)s of "1"/"0" (alternately) to `path` at offset 0 per second.
pub fn write_rate(path: &Path, secs: f64) -> Result<f64, String> {
    let file = open(path, true, false)?;
    rate(secs, |n| {
        let v: &[u8] = if n.is_multiple_of(2) { b"1" } else { b"0" };
        file.write_at(v, 0)
            .map(|_| ())
            .map_err(|e| format!("pwrite: {e}"))
    })
}
