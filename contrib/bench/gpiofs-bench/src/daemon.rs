//! The daemon's cost (with --daemon-pid): CPU over idle periods with
//! polled files and blocked readers, and RSS with many open files.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::Duration;

use serde::Serialize;

use crate::events::{BlockedReader, spawn_reader, stop_readers};
use crate::latency::PollerSet;
use crate::setup::Setup;
use crate::sys::clock_ticks_per_second;
use crate::watchdog::phase;

/// The daemon section of a report; a CPU key is absent where it could
/// not be measured.
#[derive(Serialize)]
pub struct DaemonReport {
    pub pid: i32,
    pub idle_seconds: f64,
    pub clk_tck: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_128_polled_ticks: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_128_polled_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_128_polled_16_blocked_ticks: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_128_polled_16_blocked_pct: Option<f64>,
    pub rss_kb_start: Option<u64>,
    pub rss_files: usize,
    pub rss_kb_with_files: Option<u64>,
    pub rss_kb_after: Option<u64>,
}

/// Daemon memory, measured first so that earlier phases have not grown
/// its heap yet.
#[derive(Default)]
pub struct Rss {
    start: Option<u64>,
    files: usize,
    with: Option<u64>,
    after: Option<u64>,
    error: Option<String>,
}

fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn rss_kb(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

pub fn measure_rss(setup: &Setup, files: usize, fd_limit: u64) -> Rss {
    let Some(pid) = setup.daemon_pid else {
        return Rss::default();
    };
    phase("RSS", setup.phase_timeout);
    let start = rss_kb(pid);
    let files = files.min(fd_limit.saturating_sub(64) as usize);
    let set = PollerSet::new(&setup.value, files);
    thread::sleep(Duration::from_millis(200));
    let with = rss_kb(pid);
    let error = set.as_ref().err().cloned();
    drop(set);
    thread::sleep(Duration::from_millis(100));
    Rss {
        start,
        files,
        with,
        after: rss_kb(pid),
        error,
    }
}

/// Prints one CPU row (ticks and % of a core) and hands it back.
fn show_cpu(label: &str, r: Option<(u64, f64)>) -> Option<(u64, f64)> {
    match r {
        Some((ticks, pct)) => {
            println!("{label:<44} {ticks:>10} {:>12}", "ticks");
            println!("{:<44} {pct:>10.2} {:>12}", "", "% of a core");
        }
        None => println!("{label:<44} {:>10}", "n/a"),
    }
    r
}

fn show_rss(label: &str, v: Option<u64>) {
    match v {
        Some(kb) => println!("{label:<44} {kb:>10} {:>12}", "kB VmRSS"),
        None => println!("{label:<44} {:>10}", "n/a"),
    }
}

pub fn daemon(setup: &Setup, idle_secs: f64, rss: Rss, fd_limit: u64) -> Option<DaemonReport> {
    println!("\n== daemon CPU and memory ==");
    println!("{:<44} {:>10} {:>12}", "condition", "value", "unit");
    let Some(pid) = setup.daemon_pid else {
        println!("{:<44} {:>10}  (needs --daemon-pid)", "all", "n/a");
        return None;
    };
    if cpu_ticks(pid).is_none() {
        println!("{:<44} {:>10}  (no /proc/{pid}/stat)", "all", "n/a");
        return None;
    }
    let hz = clock_ticks_per_second();
    let measure = |name: &str| -> Option<(u64, f64)> {
        phase(
            name,
            Duration::from_secs_f64(idle_secs) + setup.phase_timeout,
        );
        let a = cpu_ticks(pid)?;
        thread::sleep(Duration::from_secs_f64(idle_secs));
        let b = cpu_ticks(pid)?;
        let ticks = b.saturating_sub(a);
        Some((ticks, 100.0 * ticks as f64 / hz / idle_secs))
    };

    let (mut polled_cpu, mut blocked_cpu) = (None, None);
    match PollerSet::new(&setup.value, 128.min(fd_limit as usize / 2)) {
        Ok(polled) => {
            thread::sleep(Duration::from_millis(100));
            polled_cpu = show_cpu(
                &format!("idle {idle_secs:.1} s, 128 polled value files"),
                measure("idle CPU, 128 polled"),
            );
            if setup.events_path().exists() {
                let stop = Arc::new(AtomicBool::new(false));
                let readers: Vec<BlockedReader> = (0..16)
                    .filter_map(|_| spawn_reader(&setup.events_path(), stop.clone(), None).ok())
                    .collect();
                thread::sleep(Duration::from_millis(100));
                let label = format!(
                    "idle {idle_secs:.1} s, 128 polled + {} blocked readers",
                    readers.len()
                );
                blocked_cpu = show_cpu(&label, measure("idle CPU, blocked readers"));
                let stuck = stop_readers(setup, &stop, readers);
                if stuck > 0 {
                    println!("({stuck} events readers stayed blocked)");
                }
            } else {
                show_cpu("128 polled + 16 blocked readers (no events)", None);
            }
            drop(polled);
        }
        Err(e) => println!("{:<44} {:>10}  ({e})", "idle CPU", "n/a"),
    }

    show_rss("RSS at start of the benchmark", rss.start);
    match &rss.error {
        None => show_rss(
            &format!("RSS with {} open polled value files", rss.files),
            rss.with,
        ),
        Some(e) => println!("{:<44} {:>10}  ({e})", "RSS with open files", "n/a"),
    }
    show_rss("RSS after closing them", rss.after);
    show_rss("RSS at the end", rss_kb(pid));
    Some(DaemonReport {
        pid,
        idle_seconds: idle_secs,
        clk_tck: hz,
        cpu_128_polled_ticks: polled_cpu.map(|c| c.0),
        cpu_128_polled_pct: polled_cpu.map(|c| c.1),
        cpu_128_polled_16_blocked_ticks: blocked_cpu.map(|c| c.0),
        cpu_128_polled_16_blocked_pct: blocked_cpu.map(|c| c.1),
        rss_kb_start: rss.start,
        rss_files: rss.files,
        rss_kb_with_files: rss.with,
        rss_kb_after: rss.after,
    })
}
