//! Edge → wake-up latency: P open files of the input's `value`, watched by
//! min(P, 16) threads with epoll, one edge at a time.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use serde::Serialize;

use crate::report::Stats;
use crate::setup::{Setup, open};
use crate::sys::now_ns;
use crate::watchdog::{lock, phase};

/// Wake-up time-out: a poller that saw nothing this long after an edge
/// missed it.
pub const WAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// Threads for the poller sets.
const MAX_POLL_THREADS: usize = 16;
/// epoll_wait's time-out, so that a poller thread sees `stop`.
const EPOLL_TICK_MS: u16 = 100;

/// One row of the latency table.
#[derive(Serialize)]
pub struct LatencyRow {
    pub pollers: usize,
    pub threads: usize,
    pub edges: usize,
    pub edges_measured: usize,
    pub mode: &'static str,
    pub first_us: Option<Stats>,
    pub last_us: Option<Stats>,
    pub missed_edges: usize,
    pub missed_wakes: usize,
    pub late_wakes: usize,
    pub lost_wakes: usize,
    pub late_grace_s: f64,
    pub extra_wakes: usize,
    pub rearm_errors: usize,
    pub error: Option<String>,
}

struct PollShared {
    stop: AtomicBool,
    /// The edge being measured (0: none yet).
    edge: AtomicU64,
    woke_edge: Vec<AtomicU64>,
    wake_ns: Vec<AtomicU64>,
    /// Pollers that woke for `edge` and re-armed.
    done: AtomicUsize,
    /// Wake-ups that were not the first of a poller for an edge.
    extra: AtomicUsize,
    /// Re-arm reads that failed (the file is dropped from its epoll set).
    errors: AtomicUsize,
    signal: (Mutex<()>, Condvar),
}

/// One edge seen by a poller set.
struct EdgeResult {
    /// First and last wake-up, µs after the trigger, among the pollers
    /// that woke within WAKE_TIMEOUT.
    span: Option<(f64, f64)>,
    /// Pollers that did not wake within WAKE_TIMEOUT.
    missed: usize,
    /// Of those, the ones that woke within the grace after it.
    late: usize,
}

/// P open files of `value`, watched by min(P, 16) threads with epoll.
pub struct PollerSet {
    shared: Arc<PollShared>,
    threads: Vec<JoinHandle<()>>,
}

impl PollerSet {
    pub fn new(path: &Path, count: usize) -> Result<PollerSet, String> {
        let mut files = Vec::with_capacity(count);
        let mut buf = [0u8; 16];
        for i in 0..count {
            let file =
                open(path, false, false).map_err(|e| format!("poller {i} of {count}: {e}"))?;
            file.read_at(&mut buf, 0)
                .map_err(|e| format!("arm poller {i}: {e}"))?;
            files.push(file);
        }
        let shared = Arc::new(PollShared {
            stop: AtomicBool::new(false),
            edge: AtomicU64::new(0),
            woke_edge: (0..count).map(|_| AtomicU64::new(0)).collect(),
            wake_ns: (0..count).map(|_| AtomicU64::new(0)).collect(),
            done: AtomicUsize::new(0),
            extra: AtomicUsize::new(0),
            errors: AtomicUsize::new(0),
            signal: (Mutex::new(()), Condvar::new()),
        });
        let files = Arc::new(files);
        let nthreads = count.clamp(1, MAX_POLL_THREADS);
        let mut set = PollerSet {
            shared,
            threads: Vec::new(),
        };
        for k in 0..nthreads {
            let ep = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
                .map_err(|e| format!("epoll_create1: {e}"))?;
            for i in (k..count).step_by(nthreads) {
                ep.add(&files[i], EpollEvent::new(EpollFlags::EPOLLPRI, i as u64))
                    .map_err(|e| format!("epoll_ctl: {e}"))?;
            }
            let (shared, files) = (set.shared.clone(), files.clone());
            set.threads.push(
                thread::Builder::new()
                    .name(format!("poller-{k}"))
                    .spawn(move || poller_thread(&ep, &files, &shared, count))
                    .map_err(|e| format!("spawn poller thread: {e}"))?,
            );
        }
        Ok(set)
    }

    fn len(&self) -> usize {
        self.shared.wake_ns.len()
    }

    /// Makes one edge and waits until every poller woke and re-armed (or
    /// WAKE_TIMEOUT plus `grace`). Returns (first, last) wake in µs after
    /// the trigger among the pollers that woke within WAKE_TIMEOUT, the
    /// number that did not (missed), and how many of those woke later,
    /// within the grace (late: slow, not lost).
    fn measure_edge(&self, setup: &Setup, id: u64, grace: Duration) -> Result<EdgeResult, String> {
        let s = &self.shared;
        let n = self.len();
        s.done.store(0, Ordering::SeqCst);
        s.edge.store(id, Ordering::SeqCst);
        let trigger = setup.edge()?;
        let deadline = Instant::now() + WAKE_TIMEOUT + grace;
        {
            let mut guard = lock(&s.signal.0);
            while s.done.load(Ordering::SeqCst) < n {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                guard = s
                    .signal
                    .1
                    .wait_timeout(guard, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        let limit = trigger + WAKE_TIMEOUT.as_nanos() as u64;
        let mut first = u64::MAX;
        let mut last = 0u64;
        let mut woke = 0;
        let mut late = 0;
        for i in 0..n {
            if s.woke_edge[i].load(Ordering::SeqCst) == id {
                let t = s.wake_ns[i].load(Ordering::SeqCst);
                if t > limit {
                    late += 1;
                    continue;
                }
                first = first.min(t);
                last = last.max(t);
                woke += 1;
            }
        }
        let us = |t: u64| t.saturating_sub(trigger) as f64 / 1000.0;
        Ok(EdgeResult {
            span: (woke > 0).then(|| (us(first), us(last))),
            missed: n - woke,
            late,
        })
    }
}

impl Drop for PollerSet {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn poller_thread(ep: &Epoll, files: &[File], s: &PollShared, total: usize) {
    let mut evs = [EpollEvent::empty(); 64];
    let mut buf = [0u8; 16];
    while !s.stop.load(Ordering::Relaxed) {
        let n = match ep.wait(&mut evs, EPOLL_TICK_MS) {
            Ok(n) if n > 0 => n,
            _ => continue,
        };
        let t = now_ns();
        let edge = s.edge.load(Ordering::SeqCst);
        for ev in &evs[..n] {
            let i = ev.data() as usize;
            let first = s.woke_edge[i].load(Ordering::SeqCst) != edge;
            if first {
                s.wake_ns[i].store(t, Ordering::SeqCst);
                s.woke_edge[i].store(edge, Ordering::SeqCst);
            } else {
                s.extra.fetch_add(1, Ordering::Relaxed);
            }
            if files[i].read_at(&mut buf, 0).is_err() {
                s.errors.fetch_add(1, Ordering::Relaxed);
                let _ = ep.delete(&files[i]);
            }
            if first && s.done.fetch_add(1, Ordering::SeqCst) + 1 >= total {
                let _g = lock(&s.signal.0);
                s.signal.1.notify_all();
            }
        }
    }
}

/// Edges for a row of `p` pollers: --row-edges, or --edges scaled down
/// above 16 pollers (to at least 100, 10 with --quick).
fn edges_for(setup: &Setup, p: usize) -> usize {
    let floor = if setup.quick { 10 } else { 100 };
    let scaled = (setup.edges * MAX_POLL_THREADS / p.max(MAX_POLL_THREADS))
        .max(floor)
        .min(setup.edges.max(1));
    setup
        .row_edges
        .iter()
        .rev()
        .find(|(rp, _)| *rp == p)
        .map_or(scaled, |&(_, n)| n)
}

/// The latency table, one row per poller count.
pub fn latency(setup: &Setup, counts: &[usize], fd_limit: u64) -> Vec<LatencyRow> {
    println!(
        "\n== edge -> wake-up latency (µs from trigger write to poll return, CLOCK_MONOTONIC) =="
    );
    println!(
        "pollers: P open files of value over min(P,{MAX_POLL_THREADS}) threads, each epoll_wait()ing \
         (EPOLLPRI, level-triggered) and re-arming with pread at 0; missed = no wake within {:?} \
         (of which late = woke within {:?} more)",
        WAKE_TIMEOUT, setup.late_grace
    );
    println!(
        "{:>7} {:>7} {:>6} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>6} {:>6} {:>6} {:>6}",
        "pollers",
        "threads",
        "edges",
        "first min",
        "median",
        "p99",
        "last min",
        "median",
        "p99",
        "missed",
        "late",
        "extra",
        "errors"
    );
    let mut rows = Vec::new();
    let mut edge_id = 0u64;
    for &p in counts {
        if p == 0 {
            continue;
        }
        if p as u64 + 64 > fd_limit {
            println!("{p:>7}  n/a (RLIMIT_NOFILE is {fd_limit})");
            continue;
        }
        phase(
            &format!("latency with {p} pollers"),
            setup.phase_timeout + WAKE_TIMEOUT * 20,
        );
        let set = match PollerSet::new(&setup.value, p) {
            Ok(s) => s,
            Err(e) => {
                println!("{p:>7}  n/a ({e})");
                continue;
            }
        };
        rows.push(latency_row(setup, &set, edges_for(setup, p), &mut edge_id));
    }
    rows
}

/// Measures `edges` edges on one poller set and prints the row.
fn latency_row(setup: &Setup, set: &PollerSet, edges: usize, edge_id: &mut u64) -> LatencyRow {
    let p = set.len();
    // Let the threads settle into epoll_wait.
    thread::sleep(Duration::from_millis(if setup.quick { 20 } else { 100 }));
    let mut firsts = Vec::new();
    let mut lasts = Vec::new();
    let mut missed_edges = 0usize;
    let mut missed_wakes = 0usize;
    let mut late_wakes = 0usize;
    let mut error = None;
    let mut measured = 0usize;
    for _ in 0..edges {
        *edge_id += 1;
        measured += 1;
        match set.measure_edge(setup, *edge_id, setup.late_grace) {
            Ok(EdgeResult { span, missed, late }) => {
                late_wakes += late;
                if let Some((f, l)) = span {
                    firsts.push(f);
                    if missed == 0 {
                        lasts.push(l);
                    }
                }
                if missed > 0 {
                    missed_edges += 1;
                    missed_wakes += missed;
                    if missed_edges >= 20 {
                        error = Some("stopped after 20 edges with missed wake-ups".to_string());
                        break;
                    }
                }
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    // Wakes that trail the last edge still count as extra.
    thread::sleep(Duration::from_millis(20));
    let extra = set.shared.extra.load(Ordering::SeqCst);
    let errors = set.shared.errors.load(Ordering::SeqCst);
    let threads = p.clamp(1, MAX_POLL_THREADS);
    let f = Stats::of(&mut firsts);
    let l = Stats::of(&mut lasts);
    let cell = |s: Option<Stats>, k: fn(&Stats) -> f64| {
        s.map_or("n/a".to_string(), |s| format!("{:.1}", k(&s)))
    };
    println!(
        "{:>7} {:>7} {:>6} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>6} {:>6} {:>6} {:>6}{}",
        p,
        threads,
        measured,
        cell(f, |s| s.min),
        cell(f, |s| s.median),
        cell(f, |s| s.p99),
        cell(l, |s| s.min),
        cell(l, |s| s.median),
        cell(l, |s| s.p99),
        missed_wakes,
        late_wakes,
        extra,
        errors,
        error.as_ref().map_or(String::new(), |e| format!("  ({e})"))
    );
    LatencyRow {
        pollers: p,
        threads,
        edges,
        edges_measured: measured,
        mode: "epoll-lt",
        first_us: f,
        last_us: l,
        missed_edges,
        missed_wakes,
        late_wakes,
        lost_wakes: missed_wakes - late_wakes,
        late_grace_s: setup.late_grace.as_secs_f64(),
        extra_wakes: extra,
        rearm_errors: errors,
        error,
    }
}
