//! --value-file: reads/s and writes/s of one file (the FUSE floor), with
//! the same loops and JSON keys as the class-directory throughput table,
//! and with --trigger the latency table on that file.

use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::thread;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::Cli;
use crate::latency::{WAKE_TIMEOUT, latency};
use crate::report::{FORMAT, TOOL, ValueFileReport, to_json, write_json};
use crate::setup::{Setup, guess_label, open, read_attr};
use crate::sys::{kernel_release, raise_fd_limit};
use crate::throughput::{heading, read_rate, write_rate};
use crate::watchdog::{end_phases, phase, start_watchdog_and_signals};

pub fn value_file_mode(cli: &Cli, path: &Path) -> Result<(), String> {
    start_watchdog_and_signals();
    let secs = cli.throughput_secs();
    let dir = path.parent().unwrap_or(Path::new("/"));
    let label = cli.label.clone().unwrap_or_else(|| guess_label(dir));
    let timeout = cli.phase_timeout();
    println!(
        "gpiofs-bench: {label}, value file {}{}{}",
        path.display(),
        cli.trigger
            .as_ref()
            .map_or(String::new(), |t| format!(", trigger {}", t.display())),
        cli.quick_note()
    );
    heading(secs);
    println!("{:<10} {:>14}", "op", "ops/s");
    let mut failed = None;
    let mut rates = [None, None];
    for (i, op) in ["read", "write"].into_iter().enumerate() {
        phase(
            &format!("value {op}s"),
            Duration::from_secs_f64(secs) + timeout,
        );
        let r = if op == "read" {
            read_rate(path, secs)
        } else {
            write_rate(path, secs)
        };
        match &r {
            Ok(v) => println!("{op:<10} {v:>14.0}"),
            Err(e) => {
                println!("{op:<10} {:>14}  ({e})", "n/a");
                failed.get_or_insert_with(|| e.clone());
            }
        }
        rates[i] = r.ok();
    }
    let mut rows = None;
    if let Some(trigger) = &cli.trigger {
        let fd_limit = raise_fd_limit();
        phase("setup", timeout);
        let setup = value_file_setup(cli, path, trigger)?;
        rows = Some(latency(&setup, &cli.poller_counts(), fd_limit));
    }
    end_phases();
    let report = ValueFileReport {
        tool: TOOL,
        format: FORMAT,
        label,
        value_file: path.display().to_string(),
        kernel: kernel_release(),
        cpus: thread::available_parallelism().map_or(1, |n| n.get()),
        quick: cli.quick,
        value_reads_per_s: rates[0],
        value_writes_per_s: rates[1],
        trigger: cli.trigger.as_ref().map(|t| t.display().to_string()),
        latency: rows,
    };
    if let Some(out) = &cli.json {
        write_json(out, &to_json(&report)?)?;
    }
    match failed {
        Some(e) => Err(format!("{}: {e}", path.display())),
        None => Ok(()),
    }
}

/// The latency rows' setup for --value-file: the trigger must make the
/// file report POLLPRI (a floor without an edge source never does).
fn value_file_setup(cli: &Cli, path: &Path, trigger: &Path) -> Result<Setup, String> {
    // A gpio-sim pull file says which way the next edge goes; any other
    // trigger (the floor's) makes an edge on every write.
    let up = read_attr(trigger).is_ok_and(|t| t == "pull-up");
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let setup = Setup::new(cli, dir, 0, path.to_path_buf(), trigger, up)?;
    let file = open(path, false, false)?;
    file.read_at(&mut [0u8; 16], 0)
        .map_err(|e| format!("read {}: {e}", path.display()))?;
    setup.edge()?;
    let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLPRI)];
    let timeout = PollTimeout::try_from(WAKE_TIMEOUT).unwrap_or(PollTimeout::MAX);
    let ready = poll(&mut fds, timeout).is_ok_and(|n| n > 0)
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLPRI));
    if !ready {
        return Err(format!(
            "a write to {} did not make {} report POLLPRI within {WAKE_TIMEOUT:?} \
             (the floor needs --edges CHIP:OFFSET or --trigger)",
            trigger.display(),
            path.display()
        ));
    }
    Ok(setup)
}
