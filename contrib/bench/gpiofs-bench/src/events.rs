//! The `events` stream (a gpiofs extension): edge → blocking read(2)
//! latency, and the sustained rate with several readers.

use std::io::{ErrorKind, Read};
use std::os::fd::AsFd;
use std::os::unix::thread::JoinHandleExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::pthread::pthread_kill;
use nix::sys::signal::Signal;
use serde::Serialize;

use crate::latency::WAKE_TIMEOUT;
use crate::report::Stats;
use crate::setup::{Setup, open};
use crate::sys::now_ns;
use crate::watchdog::phase;

/// Readers of the sustained-rate table.
const RATE_READERS: usize = 4;

#[derive(Serialize)]
pub struct EventsLatency {
    pub edges: usize,
    pub latency_us: Option<Stats>,
    pub missed: usize,
}

#[derive(Serialize)]
pub struct EventsRate {
    pub paced_per_s: Option<f64>,
    pub readers: usize,
    pub seconds: f64,
    pub writer_edges: u64,
    pub writer_per_s: f64,
    pub per_reader: Vec<ReaderRate>,
}

#[derive(Serialize)]
pub struct ReaderRate {
    pub events: u64,
    pub per_s: f64,
    pub lost: u64,
    /// Seqnos from the reader's first to its last event: what reached the
    /// daemon.
    pub numbered: u64,
}

/// A thread blocked in read(2) on its own `events` file, until `stop`.
pub struct BlockedReader(JoinHandle<()>);

pub fn spawn_reader(
    path: &Path,
    stop: Arc<AtomicBool>,
    tx: Option<mpsc::Sender<(u64, Vec<u8>)>>,
) -> Result<BlockedReader, String> {
    let mut file = open(path, false, false)?;
    let handle = thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::SeqCst) {
            match file.read(&mut buf) {
                Ok(0) => break, // EOF: the line went away
                Ok(n) => {
                    let t = now_ns();
                    if let Some(tx) = &tx
                        && tx.send((t, buf[..n].to_vec())).is_err()
                    {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    });
    Ok(BlockedReader(handle))
}

/// Ends blocked readers: SIGUSR1 (EINTR), then an edge, then gives up on
/// them (they end with the process). Returns how many stayed blocked.
pub fn stop_readers(setup: &Setup, stop: &AtomicBool, readers: Vec<BlockedReader>) -> usize {
    stop.store(true, Ordering::SeqCst);
    for r in &readers {
        if !r.0.is_finished() {
            // The thread is alive (not finished, not joined), so its
            // pthread_t is valid.
            let _ = pthread_kill(r.0.as_pthread_t(), Signal::SIGUSR1);
        }
    }
    let wait = |readers: &[BlockedReader], d: Duration| {
        let deadline = Instant::now() + d;
        while readers.iter().any(|r| !r.0.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    };
    wait(&readers, Duration::from_millis(500));
    if readers.iter().any(|r| !r.0.is_finished()) {
        let _ = setup.edge();
        wait(&readers, Duration::from_millis(500));
    }
    let mut stuck = 0;
    for r in readers {
        if r.0.is_finished() {
            let _ = r.0.join();
        } else {
            stuck += 1;
        }
    }
    stuck
}

/// The seqnos (first word of each line) of `events` data.
fn parse_seqs(data: &[u8]) -> Vec<u64> {
    String::from_utf8_lossy(data)
        .lines()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

/// Prints " n/a (PATH does not exist)" and says false when the
/// implementation has no `events` file.
fn has_events(setup: &Setup) -> bool {
    let exists = setup.events_path().exists();
    if !exists {
        println!(
            "{:>6}  n/a ({} does not exist)",
            "",
            setup.events_path().display()
        );
    }
    exists
}

pub fn events_latency(setup: &Setup) -> Option<EventsLatency> {
    println!("\n== events stream: edge -> blocking read(2) latency (µs) ==");
    println!(
        "{:>6} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "edges", "min", "median", "p99", "max", "missed"
    );
    if !has_events(setup) {
        return None;
    }
    phase("events latency", setup.phase_timeout + WAKE_TIMEOUT * 20);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let reader = match spawn_reader(&setup.events_path(), stop.clone(), Some(tx)) {
        Ok(r) => r,
        Err(e) => {
            println!("{:>6}  n/a ({e})", "");
            return None;
        }
    };
    thread::sleep(Duration::from_millis(50));
    let mut lat = Vec::new();
    let mut missed = 0;
    let n = setup.edges;
    for _ in 0..n {
        let Ok(trigger) = setup.edge() else { break };
        match rx.recv_timeout(WAKE_TIMEOUT) {
            Ok((t, _)) => lat.push(t.saturating_sub(trigger) as f64 / 1000.0),
            Err(_) => {
                missed += 1;
                if missed >= 20 {
                    break;
                }
            }
        }
        // Anything else already queued belongs to this edge too.
        while rx.try_recv().is_ok() {}
    }
    let stuck = stop_readers(setup, &stop, vec![reader]);
    let s = Stats::of(&mut lat);
    match s {
        Some(s) => println!(
            "{:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>7}",
            n, s.min, s.median, s.p99, s.max, missed
        ),
        None => println!("{n:>6}  n/a (no read returned)"),
    }
    if stuck > 0 {
        println!("       (a reader stayed blocked after SIGUSR1 and an edge)");
    }
    Some(EventsLatency {
        edges: n,
        latency_us: s,
        missed,
    })
}

/// What one rate reader saw: events, lost (seqno gaps), first and last
/// seqno.
type ReaderCount = (u64, u64, Option<(u64, u64)>);

/// Reads `events` (non-blocking, poll 200 ms) until it has been quiet for
/// 500 ms after the writer is done.
fn rate_reader(file: std::fs::File, writer_done: &AtomicBool) -> ReaderCount {
    let mut buf = vec![0u8; 65536];
    let (mut events, mut lost, mut prev) = (0u64, 0u64, None::<u64>);
    let mut first = None::<u64>;
    let mut quiet_since: Option<Instant> = None;
    loop {
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        if !poll(&mut fds, 200u16).is_ok_and(|n| n > 0) {
            if writer_done.load(Ordering::SeqCst) {
                let q = *quiet_since.get_or_insert_with(Instant::now);
                if q.elapsed() > Duration::from_millis(500) {
                    break;
                }
            }
            continue;
        }
        quiet_since = None;
        match (&file).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                for seq in parse_seqs(&buf[..n]) {
                    if let Some(p) = prev {
                        lost += seq.saturating_sub(p + 1);
                    }
                    first.get_or_insert(seq);
                    prev = Some(seq);
                    events += 1;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    (events, lost, first.zip(prev))
}

/// The `events` stream with 4 readers while one writer toggles for `secs`:
/// flat out, or paced at `pace` edges/s (where readers should keep up and
/// lose nothing).
pub fn events_rate(setup: &Setup, secs: f64, pace: Option<f64>) -> Option<EventsRate> {
    let how = match pace {
        None => "flat out".to_string(),
        Some(r) => format!("paced at {r:.0} edges/s"),
    };
    println!(
        "\n== events stream: sustained rate, {RATE_READERS} readers, one writer toggling {how} for {secs:.1} s =="
    );
    println!(
        "{:>6} {:>10} {:>12} {:>8} {:>10}  seqnos",
        "reader", "events", "events/s", "lost", "received%"
    );
    if !has_events(setup) {
        return None;
    }
    phase(
        "events rate",
        Duration::from_secs_f64(secs) + setup.phase_timeout,
    );
    let writer_done = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for _ in 0..RATE_READERS {
        let file = match open(&setup.events_path(), false, true) {
            Ok(f) => f,
            Err(e) => {
                println!("{:>6}  n/a ({e})", "");
                return None;
            }
        };
        let done = writer_done.clone();
        handles.push(thread::spawn(move || rate_reader(file, &done)));
    }
    thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    let mut written = 0u64;
    let mut error = None;
    while t.elapsed().as_secs_f64() < secs {
        if let Some(rate) = pace {
            let slot = Duration::from_secs_f64(written as f64 / rate);
            if let Some(wait) = slot.checked_sub(t.elapsed()) {
                thread::sleep(wait);
            }
        }
        if let Err(e) = setup.edge() {
            error = Some(e);
            break;
        }
        written += 1;
    }
    let elapsed = t.elapsed().as_secs_f64();
    writer_done.store(true, Ordering::SeqCst);
    let mut per_reader = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        let (events, lost, seqs) = h.join().unwrap_or((0, 0, None));
        let rate = events as f64 / elapsed;
        // The daemon numbers every edge the kernel reports: the span is
        // what reached it (gpio-sim merges toggles that come too fast).
        let numbered = seqs.map_or(0, |(a, b)| b + 1 - a);
        let seqs = seqs.map_or(String::new(), |(a, b)| format!("{a}..{b}"));
        println!(
            "{:>6} {:>10} {:>12.0} {:>8} {:>9.1}%  {seqs}",
            i,
            events,
            rate,
            lost,
            100.0 * events as f64 / written.max(1) as f64
        );
        per_reader.push(ReaderRate {
            events,
            per_s: rate,
            lost,
            numbered,
        });
    }
    println!(
        "writer: {written} edges in {elapsed:.2} s = {:.0} edges/s{}",
        written as f64 / elapsed,
        error.as_ref().map_or(String::new(), |e| format!(" ({e})"))
    );
    Some(EventsRate {
        paced_per_s: pace,
        readers: RATE_READERS,
        seconds: elapsed,
        writer_edges: written,
        writer_per_s: written as f64 / elapsed,
        per_reader,
    })
}
