//! Helpers for the reliability tests and the soak (issue 9), on top of
//! `common` and `notify_common`: daemon memory and process state from
//! /proc, directory listings that keep duplicates, descriptors closed with
//! their result, simulated lines driven by their `pull` file, and a thread
//! that keeps an `events` stream drained.

#![allow(dead_code)]

use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use crate::common::*;
use crate::notify_common::*;

/// Resident set size of `pid` in KiB (VmRSS in /proc/PID/status).
#[track_caller]
pub fn rss_kib(pid: libc::pid_t) -> u64 {
    let status = read_small(&format!("/proc/{pid}/status"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS for pid {pid}: {status:?}"))
}

/// The scheduler state letter of `pid` (S, D, R, ...) from /proc/PID/stat;
/// '?' when the process is gone.
pub fn proc_state(pid: libc::pid_t) -> char {
    let stat = read_small(&format!("/proc/{pid}/stat"));
    stat.rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.chars().next())
        .unwrap_or('?')
}

/// Raises this process's RLIMIT_NOFILE (soft and hard) to at least `n`.
#[track_caller]
pub fn raise_nofile(n: u64) {
    let mut lim = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe { libc::getrlimit64(libc::RLIMIT_NOFILE, &mut lim) };
    if lim.rlim_cur >= n {
        return;
    }
    lim.rlim_cur = n;
    lim.rlim_max = lim.rlim_max.max(n);
    let r = unsafe { libc::setrlimit64(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(r, 0, "setrlimit(RLIMIT_NOFILE, {n}): {:?}", Errno::last());
}

/// Closes `fd` and returns close(2)'s own result (dropping an [`Fd`]
/// ignores it).
pub fn close_checked(fd: Fd) -> Res<()> {
    let raw = fd.0;
    std::mem::forget(fd);
    if unsafe { libc::close(raw) } < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// fstat(2) of an open descriptor.
pub fn fstat_fd(fd: &Fd) -> Res<libc::stat> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.0, &mut st) } < 0 {
        Err(Errno::last())
    } else {
        Ok(st)
    }
}

/// Every name one pass of getdents(2) returns for `dir` (std's read_dir),
/// in order, duplicates kept, without `.` and `..`.
pub fn list_names(dir: &Path) -> Res<Vec<String>> {
    let io = |e: std::io::Error| Errno(e.raw_os_error().unwrap_or(libc::EIO));
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        names.push(
            entry
                .map_err(io)?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    Ok(names)
}

/// What is wrong with one listing: names of `stable` (present for the
/// whole listing) that are missing, and names listed more than once.
pub fn listing_anomalies(listing: &[String], stable: &[String]) -> (Vec<String>, Vec<String>) {
    let mut sorted: Vec<&String> = listing.iter().collect();
    sorted.sort();
    let mut duplicated: Vec<String> = sorted
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0].clone())
        .collect();
    duplicated.dedup();
    let missing = stable
        .iter()
        .filter(|s| sorted.binary_search(s).is_err())
        .cloned()
        .collect();
    (missing, duplicated)
}

/// A line of a simulated chip driven through `sim/<label>/line<N>/pull`
/// (kept open); the line starts pulled down.
pub struct SimLine {
    pull: Fd,
    up: bool,
}

impl SimLine {
    #[track_caller]
    pub fn new(m: &Mount, label: &str, offset: u32) -> SimLine {
        let rel = format!("sim/{label}/line{offset}/pull");
        let pull = m
            .open(&rel, libc::O_WRONLY)
            .unwrap_or_else(|e| panic!("open {rel}: {e:?}"));
        let mut line = SimLine { pull, up: true };
        line.toggle();
        line
    }

    /// Flips the pull: one raw edge on an input.
    #[track_caller]
    pub fn toggle(&mut self) {
        self.up = !self.up;
        pull_raw(self.pull.0, self.up);
    }
}

/// A thread that keeps an `events` stream drained and remembers the
/// highest SEQNO it saw, so that a test knows when its last edge is in.
pub struct Tail {
    seen: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Tail {
    /// Starts draining `path` (opened O_NONBLOCK now, before any edge).
    #[track_caller]
    pub fn start(path: &Path) -> Tail {
        let fd = Fd::open(path, libc::O_RDONLY | libc::O_NONBLOCK)
            .unwrap_or_else(|e| panic!("open {}: {e:?}", path.display()));
        let seen = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                if let Some(e) = drain(&fd).last() {
                    s.store(e.seq, Ordering::Relaxed);
                }
                poll_one(fd.0, libc::POLLIN, 20);
            }
        });
        Tail {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// Waits (up to `SOON`) until SEQNO `seq` was seen.
    #[track_caller]
    pub fn wait_for(&self, seq: u64) {
        assert!(
            wait_until(SOON, || self.seen() >= seq),
            "the draining reader saw events only up to {}, expected {seq}",
            self.seen()
        );
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Checks that `evs` (what one stalled reader read after a burst whose
/// last event is `last`) is the newest part of the stream: contiguous, at
/// least 1024 events, ending at `last`, with a gap before it (its first
/// SEQNO is above `after + 1`, `after` being what the reader had already
/// read, 0 for nothing). Returns a description of what is wrong.
pub fn overflow_problem(evs: &[Event], after: u64, last: u64) -> Option<String> {
    let (Some(first), Some(end)) = (evs.first(), evs.last()) else {
        return Some("read nothing".into());
    };
    let span = format!("{} events, SEQNO {}..={}", evs.len(), first.seq, end.seq);
    if let Some(w) = evs.windows(2).find(|w| w[1].seq != w[0].seq + 1) {
        return Some(format!(
            "{span}: not contiguous ({} then {})",
            w[0].seq, w[1].seq
        ));
    }
    if end.seq != last {
        return Some(format!("{span}: the newest event {last} was not kept"));
    }
    if evs.len() < 1024 {
        return Some(format!("{span}: fewer than 1024 kept"));
    }
    if first.seq <= after + 1 {
        return Some(format!("{span}: no SEQNO gap after {after}"));
    }
    None
}

/// Runs gpiofs with `args` on `mountpoint` (not created here), expecting
/// it to refuse to start within `START_TIMEOUT`. Returns how it ended and
/// its output. One that kept running gets SIGTERM (then SIGKILL), as an
/// operator would stop it; what it may have mounted is the caller's to
/// detach.
pub fn run_expecting_refusal(args: &[&str], mountpoint: &Path, log: &Path) -> (Refusal, String) {
    let mut child = spawn_daemon(args, mountpoint, log);
    let status = wait_timeout(&mut child, START_TIMEOUT);
    let refusal = match status {
        Some(status) => Refusal::Exited(status),
        None => {
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            if wait_timeout(&mut child, START_TIMEOUT).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            Refusal::KeptRunning
        }
    };
    let text = std::fs::read_to_string(log).unwrap_or_default();
    (refusal, text)
}

/// How a daemon that should have refused to start ended.
#[derive(Debug)]
pub enum Refusal {
    Exited(ExitStatus),
    KeptRunning,
}

/// Asserts a refusal: exited non-zero, output containing every one of
/// `needles` (case-insensitive).
#[track_caller]
pub fn assert_refused(what: &str, refusal: &Refusal, text: &str, needles: &[&str]) {
    assert!(
        matches!(refusal, Refusal::Exited(s) if !s.success()),
        "{what}: expected gpiofs to refuse with a non-zero exit, got {refusal:?}; output:\n{text}"
    );
    let lower = text.to_lowercase();
    for needle in needles {
        assert!(
            lower.contains(&needle.to_lowercase()),
            "{what}: the error should mention {needle:?}; output:\n{text}"
        );
    }
}

pub mod readers;

/// The value at quantile `q` of sorted `v`, in microseconds.
pub fn quantile_us(v: &[u64], q: f64) -> u64 {
    v[((v.len() - 1) as f64 * q).round() as usize] / 1000
}

/// Removes the colour sequences (ESC [ digits;... m) the logger itself
/// writes, leaving any other control byte.
pub fn strip_sgr(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\x1b[") {
            let end = bytes[i + 2..]
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b';'));
            if let Some(n) = end.filter(|&n| bytes[i + 2 + n] == b'm') {
                i += 3 + n;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}
