//! Issue 9 soak: export/unexport races, readdir loops, pollers on `value`,
//! blocking `events` readers, re-exports with files held open across them
//! and edges from the simulator, all at once for GPIOFS_SOAK_SECS seconds
//! (default 60, at most 90).
//!
//! Checks: no EIO anywhere (ENODEV, EINVAL, EBUSY, ENOENT where the kernel
//! gives them are fine), no missing or repeated names in listings, every
//! close returns 0, the daemon's RSS stays below a bound, and the daemon is
//! alive at the end and unmounts cleanly on SIGTERM. The summary line gives
//! the counts.

mod common;
mod notify_common;
mod reliability_common;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use notify_common::*;
use reliability_common::*;

/// Lines exported all along: edges, pollers, events readers, listings.
const STABLE: Range<u32> = 512..520;
/// Lines re-exported over and over with files held open across.
const REEXPORTED: Range<u32> = 520..524;
/// Lines two threads export and unexport against each other.
const RACED: Range<u32> = 524..556;
/// The daemon's RSS bound (a size check, not a timing one).
const RSS_LIMIT_KIB: u64 = 64 * 1024;

fn soak_duration() -> Duration {
    let secs = match std::env::var("GPIOFS_SOAK_SECS") {
        Ok(v) => v
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("GPIOFS_SOAK_SECS={v:?} is not a number of seconds")),
        Err(_) => 60,
    };
    assert!(
        (1..=90).contains(&secs),
        "GPIOFS_SOAK_SECS must be 1 to 90, got {secs}"
    );
    Duration::from_secs(secs)
}

/// Counters shared by the workers, and what went wrong.
#[derive(Default)]
struct Stats {
    listings: AtomicU64,
    anomalies: AtomicU64,
    exports: AtomicU64,
    reexports: AtomicU64,
    edges: AtomicU64,
    wakeups: AtomicU64,
    events: AtomicU64,
    eio: AtomicU64,
    problems: AtomicU64,
    examples: Mutex<Vec<String>>,
}

impl Stats {
    fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn problem(&self, what: String) {
        self.count(&self.problems);
        // Up to 3 examples of each kind (the text before ':'), 20 in all.
        let kind = |s: &str| s.split(':').next().unwrap_or_default().to_string();
        let mut examples = self.examples.lock().unwrap();
        let same = examples.iter().filter(|e| kind(e) == kind(&what)).count();
        if examples.len() < 20 && same < 3 {
            examples.push(what);
        }
    }

    /// Passes a success through; counts EIO and records any errno not in
    /// `allowed`.
    fn check<T>(&self, what: &str, r: Res<T>, allowed: &[i32]) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                if e.0 == libc::EIO {
                    self.count(&self.eio);
                }
                if !allowed.contains(&e.0) {
                    self.problem(format!("{what}: {e:?}"));
                }
                None
            }
        }
    }

    /// Records a problem unless `r` failed with `errno` (EIO is counted).
    fn must_fail<T: std::fmt::Debug>(&self, what: &str, r: Res<T>, errno: i32) {
        match r {
            Ok(v) => self.problem(format!("{what}: gave {v:?}, expected {:?}", Errno(errno))),
            Err(e) => {
                self.check(what, Err::<(), _>(e), &[errno]);
            }
        }
    }

    fn close(&self, what: &str, fd: Fd) {
        self.check(&format!("close {what}"), close_checked(fd), &[]);
    }

    /// open O_WRONLY, one write, close (checked), like `echo`. True when
    /// the write succeeded.
    fn write_file(&self, path: &Path, text: &str, allowed: &[i32]) -> bool {
        let what = path.display().to_string();
        let Some(fd) = self.check(&what, Fd::open(path, libc::O_WRONLY), &[libc::ENOENT]) else {
            return false;
        };
        let ok = self
            .check(&what, fd.write(text.as_bytes()), allowed)
            .is_some();
        self.close(&what, fd);
        ok
    }

    fn get(&self, counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What every worker gets.
#[derive(Clone)]
struct Ctx {
    root: PathBuf,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
}

impl Ctx {
    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    fn spawn(&self, work: impl FnOnce(Ctx) + Send + 'static) -> thread::JoinHandle<()> {
        let ctx = self.clone();
        thread::spawn(move || work(ctx))
    }
}

/// Exports and unexports the raced lines (another racer does the same),
/// reading `value` while the line may come and go.
fn racer(ctx: Ctx) {
    let s = &ctx.stats;
    while ctx.running() {
        for g in RACED {
            if s.write_file(&ctx.p("export"), &g.to_string(), &[libc::EBUSY]) {
                s.count(&s.exports);
            }
            let value = ctx.p(&format!("gpio{g}/value"));
            if let Some(fd) = s.check(
                "open raced value",
                Fd::open(&value, libc::O_RDONLY),
                &[libc::ENOENT, libc::ENODEV],
            ) {
                s.check("read raced value", fd.pread(8, 0), &[libc::ENODEV]);
                s.close("raced value", fd);
            }
            s.write_file(&ctx.p("unexport"), &g.to_string(), &[libc::EINVAL]);
        }
    }
}

/// Lists the root over and over; the stable lines must be there once.
fn lister(ctx: Ctx) {
    let s = &ctx.stats;
    let mut stable: Vec<String> = ["export", "unexport", "gpiochip512", "sim"]
        .map(String::from)
        .to_vec();
    stable.extend(STABLE.map(|g| format!("gpio{g}")));
    while ctx.running() {
        let Some(listing) = s.check("readdir", list_names(&ctx.root), &[]) else {
            continue;
        };
        s.count(&s.listings);
        let (missing, duplicated) = listing_anomalies(&listing, &stable);
        if !missing.is_empty() || !duplicated.is_empty() {
            s.count(&s.anomalies);
            s.problem(format!(
                "listing: missing {missing:?}, twice {duplicated:?}"
            ));
        }
    }
}

/// Polls the `value` files of `lines` for POLLPRI and re-arms with a
/// pread at 0; reopens them every 2 s.
fn poller(ctx: Ctx, lines: Range<u32>) {
    let s = &ctx.stats;
    while ctx.running() {
        let fds: Vec<Fd> = lines
            .clone()
            .filter_map(|g| {
                let path = ctx.p(&format!("gpio{g}/value"));
                let fd = s.check("open value", Fd::open(&path, libc::O_RDONLY), &[])?;
                s.check("arm value", fd.pread(8, 0), &[]);
                Some(fd)
            })
            .collect();
        let reopen = Instant::now() + Duration::from_secs(2);
        while ctx.running() && Instant::now() < reopen {
            let mut pfds: Vec<libc::pollfd> = fds
                .iter()
                .map(|fd| libc::pollfd {
                    fd: fd.0,
                    events: libc::POLLPRI,
                    revents: 0,
                })
                .collect();
            let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 100) };
            if r < 0 {
                s.check("poll", Err::<(), _>(Errno::last()), &[libc::EINTR]);
                continue;
            }
            for (p, fd) in pfds.iter().zip(&fds) {
                if p.revents & libc::POLLPRI != 0 {
                    s.count(&s.wakeups);
                    s.check("re-arm value", fd.pread(8, 0), &[]);
                }
            }
        }
        for fd in fds {
            s.close("value", fd);
        }
    }
}

/// Reads `gpio<g>/events` with blocking reads until end of file (the line
/// is unexported at the end); SEQNOs must only go up.
fn events_reader(ctx: Ctx, g: u32) {
    let s = &ctx.stats;
    let path = ctx.p(&format!("gpio{g}/events"));
    let Some(fd) = s.check("open events", Fd::open(&path, libc::O_RDONLY), &[]) else {
        return;
    };
    let mut last = 0;
    while let Some(bytes) = s.check("read events", fd.read(4096), &[]) {
        if bytes.is_empty() {
            break;
        }
        for e in parse_events(&bytes) {
            if e.seq <= last {
                s.problem(format!("gpio{g} events: SEQNO {} after {last}", e.seq));
            }
            last = e.seq;
            s.count(&s.events);
        }
    }
    s.close("events", fd);
}

/// Toggles the simulator pulls of the stable and re-exported lines.
fn edge_driver(ctx: Ctx) {
    let s = &ctx.stats;
    let pulls: Vec<Fd> = (STABLE.start..REEXPORTED.end)
        .filter_map(|g| {
            let path = ctx.p(&format!("sim/soak/line{}/pull", g - 512));
            s.check("open pull", Fd::open(&path, libc::O_WRONLY), &[])
        })
        .collect();
    let mut up = false;
    while ctx.running() {
        up = !up;
        let text: &[u8] = if up { b"pull-up" } else { b"pull-down" };
        for fd in &pulls {
            if s.check("write pull", fd.pwrite(text, 0), &[]).is_some() {
                s.count(&s.edges);
            }
        }
        thread::sleep(Duration::from_millis(1));
    }
    for fd in pulls {
        s.close("pull", fd);
    }
}

/// Holds `value` and `events` of a line open across unexport + export,
/// touches the new line (stat, edge setting; the driver makes edges), then
/// checks the old files: value ENODEV, events end of file, fstat and close
/// succeed.
fn reexporter(ctx: Ctx) {
    let s = &ctx.stats;
    while ctx.running() {
        for g in REEXPORTED {
            let name = g.to_string();
            s.write_file(&ctx.p("export"), &name, &[libc::EBUSY]);
            let value = ctx.p(&format!("gpio{g}/value"));
            let events = ctx.p(&format!("gpio{g}/events"));
            let Some(old_value) = s.check("open value", Fd::open(&value, libc::O_RDWR), &[]) else {
                continue;
            };
            let old_events = s.check(
                "open events",
                Fd::open(&events, libc::O_RDONLY | libc::O_NONBLOCK),
                &[],
            );
            s.write_file(&ctx.p("unexport"), &name, &[]);
            s.write_file(&ctx.p("export"), &name, &[]);
            s.check("stat new value", stat_path(&value), &[]);
            s.write_file(&ctx.p(&format!("gpio{g}/edge")), "both", &[]);
            thread::sleep(Duration::from_millis(5));
            s.must_fail("read old value", old_value.pread(8, 0), libc::ENODEV);
            s.must_fail("write old value", old_value.pwrite(b"1", 0), libc::ENODEV);
            s.check("fstat old value", fstat_fd(&old_value), &[]);
            s.close("old value", old_value);
            if let Some(fd) = old_events {
                // Edges queued before the unexport may still come, then EOF.
                if let Some(b) = s.check("read old events", fd.read(4096), &[libc::ENODEV]) {
                    parse_events(&b);
                }
                s.check("fstat old events", fstat_fd(&fd), &[]);
                s.close("old events", fd);
            }
            s.count(&s.reexports);
        }
    }
}

#[test]
fn soak_everything_at_once() {
    if !fuse_usable() {
        return;
    }
    let secs = soak_duration();
    let m = Mount::start_with_watchdog(&["--sim", "soak:64"], true, secs + Duration::from_secs(60));
    for g in STABLE {
        m.put("export", &g.to_string());
        m.put(&format!("gpio{g}/edge"), "both");
    }
    let ctx = Ctx {
        root: m.path().to_path_buf(),
        stats: Arc::new(Stats::default()),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let readers: Vec<_> = STABLE
        .take(4)
        .map(|g| ctx.spawn(move |c| events_reader(c, g)))
        .collect();
    let workers = vec![
        ctx.spawn(racer),
        ctx.spawn(racer),
        ctx.spawn(lister),
        ctx.spawn(|c| poller(c, 512..516)),
        ctx.spawn(|c| poller(c, 516..520)),
        ctx.spawn(edge_driver),
        ctx.spawn(reexporter),
    ];
    let (start, mut max_rss) = (Instant::now(), 0);
    while start.elapsed() < secs && m.alive() {
        max_rss = max_rss.max(rss_kib(m.pid()));
        thread::sleep(Duration::from_millis(250));
    }
    ctx.stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("a soak worker panicked");
    }
    m.assert_answers("the soak");
    // Blocked events readers end with end of file when their line goes.
    for g in STABLE.take(4) {
        m.put("unexport", &g.to_string());
    }
    let readers_ended = wait_until(SOON, || readers.iter().all(|r| r.is_finished()));
    assert!(
        readers_ended,
        "blocked events readers did not get end of file at unexport"
    );
    for r in readers {
        r.join().expect("an events reader panicked");
    }
    let s = &ctx.stats;
    println!(
        "soak {secs:?}: listings {}, anomalies {}, exports {}, re-exports {}, edges {}, \
         poll wake-ups {}, events read {}, EIO {}, problems {}, max RSS {max_rss} KiB",
        s.get(&s.listings),
        s.get(&s.anomalies),
        s.get(&s.exports),
        s.get(&s.reexports),
        s.get(&s.edges),
        s.get(&s.wakeups),
        s.get(&s.events),
        s.get(&s.eio),
        s.get(&s.problems),
    );
    let status = m.signal_and_wait(libc::SIGTERM);
    let examples = s.examples.lock().unwrap().clone();
    assert_eq!(s.get(&s.eio), 0, "EIO seen; first problems: {examples:#?}");
    assert_eq!(s.get(&s.anomalies), 0, "listing anomalies: {examples:#?}");
    assert_eq!(s.get(&s.problems), 0, "problems: {examples:#?}");
    assert!(
        max_rss < RSS_LIMIT_KIB,
        "daemon RSS reached {max_rss} KiB (bound {RSS_LIMIT_KIB} KiB)"
    );
    assert!(
        s.get(&s.listings) > 0 && s.get(&s.reexports) > 0 && s.get(&s.edges) > 0,
        "a worker never got going"
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "gpiofs exit after SIGTERM; log tail:\n{}",
        m.log_text()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!is_mounted(m.path()), "still mounted after SIGTERM");
}
