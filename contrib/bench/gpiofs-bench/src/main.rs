//! gpiofs-bench: measures a sysfs-style GPIO class directory — the
//! kernel's /sys/class/gpio, a gpiofs mount, or any other implementation —
//! and prints tables (and optionally JSON and an SVG plot). It asserts
//! nothing.
//!
//! Measurements:
//! - value reads/s and writes/s: one open file, pread/pwrite at offset 0
//!   (throughput.rs);
//! - edge → wake-up latency for P pollers: P open files of the input's
//!   `value`, spread over min(P, 16) threads; each thread epoll_wait()s
//!   (EPOLLPRI, level-triggered) on its share and re-arms a woken file with
//!   a pread at offset 0 (with P ≤ 16 every thread watches exactly one
//!   file, like a classic one-poll()-per-program client). Per edge: first
//!   and last wake-up relative to the trigger write (CLOCK_MONOTONIC);
//!   min/median/p99 over the edges; missed wake-ups (a poller that saw
//!   nothing within 1 s) (latency.rs);
//! - edge → blocking `events` read latency, and the `events` stream's
//!   sustained rate with 4 readers while a writer toggles flat out, and
//!   paced at 10,000 edges/s (where no event should be lost) (gpiofs
//!   extension: n/a where DIR/gpioN/events does not exist) (events.rs);
//! - with --daemon-pid: daemon CPU over idle periods (128 polled value
//!   files; plus 16 blocked `events` readers) and RSS with 1024 open files
//!   (daemon.rs).
//!
//! `--value-file PATH` measures one file instead of a class directory (the
//! FUSE floor, src/bin/fuse_floor.rs): reads/s and writes/s, and with
//! `--trigger` the edge → wake-up latency table on PATH (value_file.rs).
//!
//! `--plot a.json,b.json --svg out.svg` draws several runs on one chart
//! (plot.rs).

#![deny(unsafe_code)]

mod daemon;
mod events;
mod latency;
mod plot;
mod report;
mod setup;
mod sys;
mod throughput;
mod value_file;
mod watchdog;

use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use clap::Parser;

use crate::report::{ClassReport, write_json};
use crate::setup::{Setup, check_class_dir, claim_line, guess_label, read_attr, set_attr};
use crate::watchdog::{end_phases, phase, run_cleanup};

/// Benchmarks a sysfs-style GPIO class directory (kernel sysfs, gpiofs, or
/// another implementation): value throughput, edge → wake-up latency for
/// many pollers, the `events` stream, and the daemon's CPU and memory.
#[derive(Parser, Debug)]
#[command(version, after_help = EXAMPLES)]
pub struct Cli {
    /// The class directory, e.g. /sys/class/gpio or a gpiofs mount.
    #[arg(long, value_name = "DIR", required_unless_present_any = ["plot", "value_file"])]
    class_dir: Option<PathBuf>,

    /// Global number of an INPUT line to watch (exported if needed; set to
    /// direction in, edge both).
    #[arg(long, value_name = "N", required_unless_present_any = ["plot", "value_file"])]
    input: Option<u32>,

    /// A file where writing pull-up / pull-down alternately makes an edge
    /// on the input (gpiofs: MOUNT/sim/<label>/line<off>/pull; kernel
    /// gpio-sim: /sys/devices/platform/<dev>/<chip>/sim_gpio<off>/pull;
    /// the FUSE floor started with --trigger: MOUNT/trigger). Optional with
    /// --value-file: it adds the latency table there.
    #[arg(long, value_name = "PATH", required_unless_present_any = ["plot", "value_file"])]
    trigger: Option<PathBuf>,

    /// Value-file mode: measure reads/s and writes/s (pread/pwrite of
    /// "0"/"1" at offset 0) on this one file, e.g. the FUSE floor's
    /// MOUNT/value (fuse_floor, built with this crate); no class directory
    /// needed. With --trigger also the edge → wake-up latency table, the
    /// pollers each opening this file (the floor must run with --edges or
    /// --trigger); nothing else.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["class_dir", "plot", "input", "output", "daemon_pid"])]
    value_file: Option<PathBuf>,

    /// An output line for the write benchmark [default: the line after
    /// --input, exported and set to out by the benchmark].
    #[arg(long, value_name = "N")]
    output: Option<u32>,

    /// PID of the daemon serving DIR, for its CPU time and RSS.
    #[arg(long, value_name = "PID")]
    daemon_pid: Option<i32>,

    /// Poller counts for the latency table [default: 1,16,128,1024;
    /// --quick: 1,8,64].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pollers: Option<Vec<usize>>,

    /// Edges per latency row (rows with more than 16 pollers use
    /// proportionally fewer, at least 100, unless --row-edges says
    /// otherwise) [default: 2000; --quick: 40].
    #[arg(long, value_name = "N")]
    edges: Option<usize>,

    /// Exact edge counts for some latency rows, POLLERS=EDGES
    /// (comma-separated), overriding --edges and its scaling for those
    /// rows. Example: --row-edges 16=2000,128=2000,1024=500
    #[arg(long, value_name = "P=N,...", value_delimiter = ',', value_parser = parse_row_edges)]
    row_edges: Vec<(usize, usize)>,

    /// After a poller missed the 1 s wake-up deadline, wait this much
    /// longer before the next edge, to tell late wake-ups (slow) from lost
    /// ones [default: 2; --quick: 0.2].
    #[arg(long, value_name = "SECONDS")]
    late_grace: Option<f64>,

    /// Seconds for each throughput measurement (value reads, value writes,
    /// events rate) [default: 2; --quick: 0.3].
    #[arg(long, value_name = "SECONDS")]
    throughput_secs: Option<f64>,

    /// Name of the implementation in JSON and plots [default: guessed
    /// from the file system of DIR].
    #[arg(long, value_name = "NAME")]
    label: Option<String>,

    /// Write machine-readable results here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Draw last-wake latency (median, p99) against pollers as SVG.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,

    /// Plot mode: draw these JSON results (comma-separated) on one chart
    /// (needs --svg); measures nothing.
    #[arg(long, value_name = "A.json,B.json", value_delimiter = ',')]
    plot: Vec<PathBuf>,

    /// Shrink every measurement (a smoke test, not a benchmark).
    #[arg(long)]
    quick: bool,

    /// Give up (clean up and exit 3) if any phase takes longer than this
    /// many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    phase_timeout: u64,
}

impl Cli {
    /// --pollers, or the default poller counts.
    fn poller_counts(&self) -> Vec<usize> {
        self.pollers.clone().unwrap_or_else(|| {
            if self.quick {
                vec![1, 8, 64]
            } else {
                vec![1, 16, 128, 1024]
            }
        })
    }

    fn phase_timeout(&self) -> Duration {
        Duration::from_secs(self.phase_timeout.max(1))
    }

    /// Seconds per throughput measurement.
    fn throughput_secs(&self) -> f64 {
        self.throughput_secs
            .filter(|s| *s > 0.0)
            .unwrap_or(if self.quick { 0.3 } else { 2.0 })
    }

    fn quick_note(&self) -> &'static str {
        if self.quick {
            ", QUICK (numbers are not meaningful)"
        } else {
            ""
        }
    }
}

fn parse_row_edges(s: &str) -> Result<(usize, usize), String> {
    let (p, n) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}': expected POLLERS=EDGES, e.g. 1024=500"))?;
    let num = |t: &str| {
        t.trim()
            .parse::<usize>()
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("'{s}': '{t}' is not a positive number"))
    };
    Ok((num(p)?, num(n)?))
}

const EXAMPLES: &str = "Examples:
  gpiofs --sim demo:32 /tmp/g &
  gpiofs-bench --class-dir /tmp/g --input 517 --trigger /tmp/g/sim/demo/line5/pull \\
      --daemon-pid $(pgrep -n gpiofs) --json gpiofs.json --svg gpiofs.svg
  gpiofs-bench --class-dir /sys/class/gpio --input 600 \\
      --trigger /sys/devices/platform/gpio-sim.0/gpiochip1/sim_gpio5/pull --json kernel.json
  gpiofs-bench --plot kernel.json,gpiofs.json,other.json --svg all.svg
  gpiofs-bench --value-file /tmp/floor/value --label fuse-floor --json floor.json
  fuse_floor /tmp/floor --trigger &
  gpiofs-bench --value-file /tmp/floor/value --trigger /tmp/floor/trigger --json floor.json";

/// Class-directory mode: every table, then JSON and SVG.
fn run(cli: Cli) -> Result<(), String> {
    if !cli.plot.is_empty() {
        return plot::plot_mode(&cli.plot, cli.svg.as_deref());
    }
    if let Some(path) = cli.value_file.clone() {
        return value_file::value_file_mode(&cli, &path);
    }
    let (Some(class), Some(input), Some(trigger)) =
        (cli.class_dir.clone(), cli.input, cli.trigger.clone())
    else {
        return Err("--class-dir, --input and --trigger are required".into());
    };
    check_class_dir(&class)?;
    watchdog::start_watchdog_and_signals();
    let fd_limit = sys::raise_fd_limit();
    let quick = cli.quick;
    let label = cli.label.clone().unwrap_or_else(|| guess_label(&class));

    phase("setup", cli.phase_timeout());
    let exported = claim_line(&class, input)?;
    let gpio = class.join(format!("gpio{input}"));
    set_attr(&class, input, "direction", "in", !exported)
        .map_err(|e| format!("--input {input} must be a line that can be an input: {e}"))?;
    set_attr(&class, input, "active_low", "0", !exported)?;
    set_attr(&class, input, "edge", "both", !exported)?;
    let level = read_attr(&gpio.join("value"))?;
    let setup = Setup::new(
        &cli,
        class.clone(),
        input,
        gpio.join("value"),
        &trigger,
        level == "1",
    )?;
    // The trigger must really make edges on the input.
    let before = read_attr(&gpio.join("value"))?;
    setup.edge()?;
    let moved = (0..100).any(|_| {
        thread::sleep(Duration::from_millis(5));
        read_attr(&gpio.join("value")).is_ok_and(|v| v != before)
    });
    if !moved {
        return Err(format!(
            "writing pull-up/pull-down to {} does not change gpio{input}/value",
            trigger.display()
        ));
    }

    let release = sys::kernel_release();
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    println!("gpiofs-bench: {label} at {}", class.display());
    println!(
        "input gpio{input}, trigger {}, kernel {release}, {cpus} CPUs{}",
        trigger.display(),
        cli.quick_note()
    );

    let secs = cli.throughput_secs();
    let rss = daemon::measure_rss(&setup, if quick { 256 } else { 1024 }, fd_limit);
    let throughput = throughput::throughput(&setup, cli.output, secs);
    let latency = latency::latency(&setup, &cli.poller_counts(), fd_limit);
    let events_latency = events::events_latency(&setup);
    let events_rate = events::events_rate(&setup, secs, None);
    let events_rate_paced = events::events_rate(&setup, secs, Some(10_000.0));
    let idle = if quick { 0.5 } else { 10.0 };
    let daemon = daemon::daemon(&setup, idle, rss, fd_limit);

    phase("cleanup", cli.phase_timeout());
    drop(setup);
    run_cleanup();
    end_phases();

    let report = ClassReport {
        tool: report::TOOL,
        format: report::FORMAT,
        label: label.clone(),
        class_dir: class.display().to_string(),
        input,
        kernel: release,
        cpus,
        quick,
        throughput,
        latency,
        events_latency,
        events_rate,
        events_rate_paced,
        daemon,
    };
    let doc = report::to_json(&report)?;
    if let Some(path) = &cli.json {
        write_json(path, &doc)?;
    }
    if let Some(path) = &cli.svg {
        let series = plot::Series::from_json(doc, &label)?;
        plot::write_svg(path, &[series], &format!("{label}: edge → wake-up latency"))?;
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("gpiofs-bench: {e}");
        watchdog::cleanup_and_exit(1);
    }
}
