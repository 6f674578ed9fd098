//! gpiofs-bench: measures a sysfs-style GPIO class directory — the
//! kernel's /sys/class/gpio, a gpiofs mount, or any other implementation —
//! and prints tables (and optionally JSON and an SVG plot). It asserts
//! nothing.
//!
//! Measurements:
//! - value reads/s and writes/s: one open file, pread/pwrite at offset 0;
//! - edge → wake-up latency for P pollers: P open files of the input's
//!   `value`, spread over min(P, 16) threads; each thread epoll_wait()s
//!   (EPOLLPRI, level-triggered) on its share and re-arms a woken file with
//!   a pread at offset 0 (with P ≤ 16 every thread watches exactly one
//!   file, like a classic one-poll()-per-program client). Per edge: first
//!   and last wake-up relative to the trigger write (CLOCK_MONOTONIC);
//!   min/median/p99 over the edges; missed wake-ups (a poller that saw
//!   nothing within 1 s);
//! - edge → blocking `events` read latency, and the `events` stream's
//!   sustained rate with 4 readers while a writer toggles flat out, and
//!   paced at 10,000 edges/s (where no event should be lost) (gpiofs
//!   extension: n/a where DIR/gpioN/events does not exist);
//! - with --daemon-pid: daemon CPU over idle periods (128 polled value
//!   files; plus 16 blocked `events` readers) and RSS with 1024 open files.
//!
//! `--value-file PATH` measures one file instead of a class directory (the
//! FUSE floor, contrib/bench/fuse_floor.rs): reads/s and writes/s, and with
//! `--trigger` the edge → wake-up latency table on PATH.
//!
//! `--plot a.json,b.json --svg out.svg` draws several runs on one chart.

use std::ffi::CString;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use clap::Parser;

/// Benchmarks a sysfs-style GPIO class directory (kernel sysfs, gpiofs, or
/// another implementation): value throughput, edge → wake-up latency for
/// many pollers, the `events` stream, and the daemon's CPU and memory.
#[derive(Parser, Debug)]
#[command(version, after_help = EXAMPLES)]
struct Cli {
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
    /// MOUNT/value (contrib/bench/fuse_floor.rs); no class directory needed.
    /// With --trigger also the edge → wake-up latency table, the pollers
    /// each opening this file (the floor must run with --edges or
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

/// Wake-up time-out: a poller that saw nothing this long after an edge
/// missed it.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// Threads for the poller sets.
const MAX_POLL_THREADS: usize = 16;

// ---------------------------------------------------------------- basics

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// An owned file descriptor.
struct Fd(libc::c_int);

impl Fd {
    fn open(path: &Path, flags: libc::c_int) -> std::io::Result<Fd> {
        let c = cpath(path);
        // SAFETY: a valid C string.
        let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
        if fd < 0 { Err(errno()) } else { Ok(Fd(fd)) }
    }

    fn pread(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: buf is valid for its length.
        let r = unsafe { libc::pread(self.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if r < 0 { Err(errno()) } else { Ok(r as usize) }
    }

    fn pwrite(&self, data: &[u8]) -> std::io::Result<usize> {
        // SAFETY: data is valid for its length.
        let r = unsafe { libc::pwrite(self.0, data.as_ptr().cast(), data.len(), 0) };
        if r < 0 { Err(errno()) } else { Ok(r as usize) }
    }

    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: buf is valid for its length.
        let r = unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) };
        if r < 0 { Err(errno()) } else { Ok(r as usize) }
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn poll_in(fd: libc::c_int, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, timeout_ms) > 0 }
}

/// Writes an attribute like `echo`: open, one write, close.
fn write_attr(path: &Path, text: &str) -> Result<(), String> {
    let fd = Fd::open(path, libc::O_WRONLY).map_err(|e| format!("open {}: {e}", path.display()))?;
    fd.pwrite(text.as_bytes())
        .map(|_| ())
        .map_err(|e| format!("write {text:?} to {}: {e}", path.display()))
}

fn read_attr(path: &Path) -> Result<String, String> {
    let fd = Fd::open(path, libc::O_RDONLY).map_err(|e| format!("open {}: {e}", path.display()))?;
    let mut buf = [0u8; 256];
    let n = fd
        .pread(&mut buf)
        .map_err(|e| format!("read {}: {e}", path.display()))?;
    Ok(String::from_utf8_lossy(&buf[..n]).trim_end().to_string())
}

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    n: usize,
    min: f64,
    median: f64,
    p99: f64,
    max: f64,
}

/// Summary of samples in microseconds.
fn stats(samples: &mut [f64]) -> Option<Stats> {
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

fn stats_json(s: Option<Stats>) -> Json {
    match s {
        None => Json::Null,
        Some(s) => Json::obj([
            ("n", Json::Num(s.n as f64)),
            ("min", Json::Num(s.min)),
            ("median", Json::Num(s.median)),
            ("p99", Json::Num(s.p99)),
            ("max", Json::Num(s.max)),
        ]),
    }
}

// ----------------------------------------- watchdog, signals and cleanup

/// Things to undo at exit, in reverse order.
enum Undo {
    Unexport { class: PathBuf, n: u32 },
    Restore { path: PathBuf, text: String },
}

static UNDO: Mutex<Vec<Undo>> = Mutex::new(Vec::new());
static PHASE: Mutex<Option<(String, Instant)>> = Mutex::new(None);

fn run_cleanup() {
    let undo: Vec<Undo> = std::mem::take(&mut *lock(&UNDO));
    for u in undo.into_iter().rev() {
        let r = match &u {
            Undo::Unexport { class, n } => write_attr(&class.join("unexport"), &n.to_string()),
            Undo::Restore { path, text } => write_attr(path, text),
        };
        if let Err(e) = r {
            eprintln!("gpiofs-bench: cleanup: {e}");
        }
    }
}

/// Cleans up (bounded: a hung file system must not hang us) and exits.
fn cleanup_and_exit(code: i32) -> ! {
    let t = thread::spawn(run_cleanup);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !t.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    std::process::exit(code);
}

/// Starts a phase with a time budget; the watchdog ends the program if the
/// phase overruns it.
fn phase(name: &str, budget: Duration) {
    *lock(&PHASE) = Some((name.to_string(), Instant::now() + budget));
}

fn start_watchdog_and_signals() {
    // SIGINT/SIGTERM go to a dedicated thread (blocked everywhere else).
    // SAFETY: plain signal-set manipulation.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    // SIGUSR1 interrupts our own blocked readers (no SA_RESTART).
    extern "C" fn nothing(_: libc::c_int) {}
    // SAFETY: installs a handler that does nothing.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = nothing as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: waits on a valid set.
        unsafe { libc::sigwait(&set, &mut sig) };
        eprintln!("gpiofs-bench: signal {sig}: cleaning up");
        cleanup_and_exit(130);
    });
    thread::spawn(|| {
        loop {
            thread::sleep(Duration::from_millis(100));
            let overdue = lock(&PHASE)
                .as_ref()
                .filter(|(_, deadline)| Instant::now() > *deadline)
                .map(|(name, _)| name.clone());
            if let Some(name) = overdue {
                eprintln!("gpiofs-bench: phase '{name}' did not finish in time; giving up");
                cleanup_and_exit(3);
            }
        }
    });
}

fn raise_fd_limit() -> u64 {
    // SAFETY: get/setrlimit on a struct we own.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur = rl.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur
    }
}

// -------------------------------------------------------------- the lines

struct Setup {
    class: PathBuf,
    input: u32,
    /// The file the pollers open: the input's `value`, or --value-file.
    value: PathBuf,
    trigger: Fd,
    trigger_up: AtomicBool,
    quick: bool,
    edges: usize,
    row_edges: Vec<(usize, usize)>,
    late_grace: Duration,
    phase_timeout: Duration,
    daemon_pid: Option<i32>,
}

impl Setup {
    fn gpio(&self, n: u32, attr: &str) -> PathBuf {
        self.class.join(format!("gpio{n}")).join(attr)
    }

    /// The measuring settings of the command line, with edges made by
    /// writes to `trigger`, the first one pull-up unless `up`.
    fn new(
        cli: &Cli,
        class: PathBuf,
        input: u32,
        value: PathBuf,
        trigger: &Path,
        up: bool,
    ) -> Result<Setup, String> {
        let trigger = Fd::open(trigger, libc::O_WRONLY).map_err(|e| {
            format!(
                "--trigger {}: {e} (expected a writable pull file, e.g. MOUNT/sim/<label>/line<off>/pull)",
                trigger.display()
            )
        })?;
        let quick = cli.quick;
        Ok(Setup {
            class,
            input,
            value,
            trigger,
            trigger_up: AtomicBool::new(up),
            quick,
            edges: cli.edges.unwrap_or(if quick { 40 } else { 2000 }).max(1),
            row_edges: cli.row_edges.clone(),
            late_grace: Duration::from_secs_f64(
                cli.late_grace
                    .unwrap_or(if quick { 0.2 } else { 2.0 })
                    .clamp(0.0, 60.0),
            ),
            phase_timeout: Duration::from_secs(cli.phase_timeout.max(1)),
            daemon_pid: cli.daemon_pid,
        })
    }

    fn value_path(&self) -> &Path {
        &self.value
    }

    fn events_path(&self) -> PathBuf {
        self.gpio(self.input, "events")
    }

    /// One edge on the input; returns the CLOCK_MONOTONIC time just before
    /// the trigger write.
    fn edge(&self) -> Result<u64, String> {
        let up = !self.trigger_up.load(Ordering::Relaxed);
        self.trigger_up.store(up, Ordering::Relaxed);
        let text: &[u8] = if up { b"pull-up" } else { b"pull-down" };
        let t = now_ns();
        self.trigger
            .pwrite(text)
            .map_err(|e| format!("trigger write: {e}"))?;
        Ok(t)
    }
}

/// Exports `n` unless it is exported, and registers the undo. Attributes
/// changed later on a line we did not export are restored at exit.
fn claim_line(class: &Path, n: u32) -> Result<bool, String> {
    let dir = class.join(format!("gpio{n}"));
    if dir.exists() {
        return Ok(false);
    }
    write_attr(&class.join("export"), &n.to_string()).map_err(|e| format!("export {n}: {e}"))?;
    lock(&UNDO).push(Undo::Unexport {
        class: class.to_path_buf(),
        n,
    });
    if !dir.exists() {
        return Err(format!("export {n} did not create {}", dir.display()));
    }
    Ok(true)
}

fn set_attr(class: &Path, n: u32, attr: &str, text: &str, restore: bool) -> Result<(), String> {
    let path = class.join(format!("gpio{n}")).join(attr);
    if restore {
        let old = read_attr(&path)?;
        if old == text {
            return Ok(());
        }
        lock(&UNDO).push(Undo::Restore {
            path: path.clone(),
            text: old,
        });
    }
    write_attr(&path, text)
}

fn check_class_dir(class: &Path) -> Result<(), String> {
    let hint = "expected a sysfs-style GPIO class directory (with export, unexport, gpiochip*), \
                e.g. /sys/class/gpio or a gpiofs mount";
    let md = std::fs::metadata(class).map_err(|e| format!("{}: {e}; {hint}", class.display()))?;
    if !md.is_dir() {
        return Err(format!("{} is not a directory; {hint}", class.display()));
    }
    for f in ["export", "unexport"] {
        if !class.join(f).exists() {
            return Err(format!("{} has no '{f}'; {hint}", class.display()));
        }
    }
    let has_chip = std::fs::read_dir(class)
        .map_err(|e| format!("{}: {e}", class.display()))?
        .flatten()
        .any(|e| e.file_name().as_bytes().starts_with(b"gpiochip"));
    if !has_chip {
        return Err(format!(
            "{} has no gpiochip* entry; {hint}",
            class.display()
        ));
    }
    Ok(())
}

/// A name for the implementation: the FUSE source name, or "kernel".
fn guess_label(class: &Path) -> String {
    let c = cpath(class);
    // SAFETY: statfs into a struct we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return "unknown".into();
    }
    match st.f_type as i64 {
        0x6265_6572 => "kernel-sysfs".into(),
        0x6573_5546 => {
            let target = class
                .canonicalize()
                .unwrap_or_else(|_| class.to_path_buf())
                .to_string_lossy()
                .into_owned();
            let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            info.lines()
                .rev()
                .find_map(|l| {
                    let (pre, post) = l.split_once(" - ")?;
                    let mp = pre.split(' ').nth(4)?;
                    let mut rest = post.split(' ');
                    let fstype = rest.next()?;
                    let source = rest.next()?;
                    (mp == target).then(|| {
                        if source.is_empty() || source == "none" {
                            fstype.to_string()
                        } else {
                            source.to_string()
                        }
                    })
                })
                .unwrap_or_else(|| "fuse".into())
        }
        other => format!("fs-{other:x}"),
    }
}

// ------------------------------------------------------------ throughput

fn throughput(setup: &Setup, output: Option<u32>, secs: f64, json: &mut Vec<(String, Json)>) {
    println!(
        "\n== value read/write throughput (one open file, pread/pwrite at offset 0; median of {RATE_WINDOWS} windows of {:.1} s) ==",
        secs / RATE_WINDOWS as f64
    );
    println!("{:<10} {:>8} {:>14}", "op", "line", "ops/s");
    phase(
        "value reads",
        Duration::from_secs_f64(secs) + setup.phase_timeout,
    );
    let reads = read_rate(setup.value_path(), secs);
    match &reads {
        Ok(r) => println!("{:<10} {:>8} {:>14.0}", "read", setup.input, r),
        Err(e) => println!("{:<10} {:>8} {:>14}  ({e})", "read", setup.input, "n/a"),
    }
    json.push((
        "value_reads_per_s".into(),
        reads.map_or(Json::Null, Json::Num),
    ));

    phase(
        "value writes",
        Duration::from_secs_f64(secs) + setup.phase_timeout,
    );
    let line = output.unwrap_or(setup.input + 1);
    let writes = (|| -> Result<f64, String> {
        let exported = claim_line(&setup.class, line)?;
        let dir = setup.gpio(line, "direction");
        let current = read_attr(&dir)?;
        if current != "out" {
            set_attr(&setup.class, line, "direction", "out", !exported)?;
        }
        write_rate(&setup.gpio(line, "value"), secs)
    })();
    match &writes {
        Ok(r) => println!("{:<10} {:>8} {:>14.0}", "write", line, r),
        Err(e) => println!("{:<10} {:>8} {:>14}  ({e})", "write", line, "n/a"),
    }
    json.push((
        "value_writes_per_s".into(),
        writes.map_or(Json::Null, Json::Num),
    ));
    json.push(("output".into(), Json::Num(line as f64)));
}

/// Throughput windows: the rate reported is the median of this many
/// equal windows of the measuring time (one noisy window, e.g. a host
/// hiccup under emulation, does not move it).
const RATE_WINDOWS: usize = 3;

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
fn read_rate(path: &Path, secs: f64) -> Result<f64, String> {
    let fd = Fd::open(path, libc::O_RDONLY).map_err(|e| format!("open {}: {e}", path.display()))?;
    let mut buf = [0u8; 16];
    rate(secs, |_| {
        fd.pread(&mut buf)
            .map(|_| ())
            .map_err(|e| format!("pread: {e}"))
    })
}

/// pwrite(2)s of "1"/"0" (alternately) to `path` at offset 0 per second.
fn write_rate(path: &Path, secs: f64) -> Result<f64, String> {
    let fd = Fd::open(path, libc::O_WRONLY).map_err(|e| format!("open {}: {e}", path.display()))?;
    rate(secs, |n| {
        let v: &[u8] = if n.is_multiple_of(2) { b"1" } else { b"0" };
        fd.pwrite(v).map(|_| ()).map_err(|e| format!("pwrite: {e}"))
    })
}

/// --value-file: reads/s and writes/s of one file (the FUSE floor), with
/// the same loops and JSON keys as the class-directory throughput table.
fn value_file_mode(cli: &Cli, path: &Path) -> Result<(), String> {
    start_watchdog_and_signals();
    let secs = cli
        .throughput_secs
        .unwrap_or(if cli.quick { 0.3 } else { 2.0 });
    let label = cli
        .label
        .clone()
        .unwrap_or_else(|| guess_label(path.parent().unwrap_or(Path::new("/"))));
    let timeout = Duration::from_secs(cli.phase_timeout.max(1));
    println!(
        "gpiofs-bench: {label}, value file {}{}{}",
        path.display(),
        cli.trigger
            .as_ref()
            .map_or(String::new(), |t| format!(", trigger {}", t.display())),
        if cli.quick {
            ", QUICK (numbers are not meaningful)"
        } else {
            ""
        }
    );
    println!(
        "\n== value read/write throughput (one open file, pread/pwrite at offset 0; median of {RATE_WINDOWS} windows of {:.1} s) ==",
        secs / RATE_WINDOWS as f64
    );
    println!("{:<10} {:>14}", "op", "ops/s");
    let mut json: Vec<(String, Json)> = vec![
        ("tool".into(), Json::Str("gpiofs-bench".into())),
        ("format".into(), Json::Num(1.0)),
        ("label".into(), Json::Str(label)),
        ("value_file".into(), Json::Str(path.display().to_string())),
        ("kernel".into(), Json::Str(kernel_release())),
        (
            "cpus".into(),
            Json::Num(thread::available_parallelism().map_or(1, |n| n.get()) as f64),
        ),
        ("quick".into(), Json::Bool(cli.quick)),
    ];
    let mut failed = None;
    for (op, key) in [
        ("read", "value_reads_per_s"),
        ("write", "value_writes_per_s"),
    ] {
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
        json.push((key.into(), r.map_or(Json::Null, Json::Num)));
    }
    if let Some(trigger) = &cli.trigger {
        let fd_limit = raise_fd_limit();
        phase("setup", timeout);
        let setup = value_file_setup(cli, path, trigger)?;
        json.push(("trigger".into(), Json::Str(trigger.display().to_string())));
        let rows = latency(&setup, &poller_counts(cli), fd_limit);
        json.push(("latency".into(), Json::Arr(rows)));
    }
    *lock(&PHASE) = None;
    if let Some(out) = &cli.json {
        std::fs::write(out, Json::Obj(json).to_text())
            .map_err(|e| format!("{}: {e}", out.display()))?;
        println!("\nwrote {}", out.display());
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
    let fd = Fd::open(path, libc::O_RDONLY).map_err(|e| format!("open {}: {e}", path.display()))?;
    fd.pread(&mut [0u8; 16])
        .map_err(|e| format!("read {}: {e}", path.display()))?;
    setup.edge()?;
    let mut p = libc::pollfd {
        fd: fd.0,
        events: libc::POLLPRI,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, WAKE_TIMEOUT.as_millis() as i32) };
    if r <= 0 || p.revents & libc::POLLPRI == 0 {
        return Err(format!(
            "a write to {} did not make {} report POLLPRI within {WAKE_TIMEOUT:?} \
             (the floor needs --edges CHIP:OFFSET or --trigger)",
            trigger.display(),
            path.display()
        ));
    }
    Ok(setup)
}

fn kernel_release() -> String {
    // SAFETY: uname fills a struct we own.
    let mut uname: libc::utsname = unsafe { std::mem::zeroed() };
    unsafe { libc::uname(&mut uname) };
    // SAFETY: uname NUL-terminates the field.
    unsafe { std::ffi::CStr::from_ptr(uname.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

// --------------------------------------------------------------- pollers

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
struct PollerSet {
    shared: Arc<PollShared>,
    threads: Vec<JoinHandle<()>>,
    _fds: Arc<Vec<Fd>>,
}

impl PollerSet {
    fn new(path: &Path, count: usize) -> Result<PollerSet, String> {
        let mut fds = Vec::with_capacity(count);
        let mut buf = [0u8; 16];
        for i in 0..count {
            let fd = Fd::open(path, libc::O_RDONLY)
                .map_err(|e| format!("open poller {i} of {count} ({}): {e}", path.display()))?;
            fd.pread(&mut buf)
                .map_err(|e| format!("arm poller {i}: {e}"))?;
            fds.push(fd);
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
        let fds = Arc::new(fds);
        let nthreads = count.clamp(1, MAX_POLL_THREADS);
        let mut threads = Vec::new();
        for k in 0..nthreads {
            // SAFETY: plain syscall.
            let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if ep < 0 {
                return Err(format!("epoll_create1: {}", errno()));
            }
            let ep = Fd(ep);
            let mine: Vec<usize> = (k..count).step_by(nthreads).collect();
            for &i in &mine {
                let mut ev = libc::epoll_event {
                    events: libc::EPOLLPRI as u32,
                    u64: i as u64,
                };
                // SAFETY: valid epoll fd, file fd and event.
                if unsafe { libc::epoll_ctl(ep.0, libc::EPOLL_CTL_ADD, fds[i].0, &mut ev) } != 0 {
                    return Err(format!("epoll_ctl: {}", errno()));
                }
            }
            let (shared, fds) = (shared.clone(), fds.clone());
            threads.push(
                thread::Builder::new()
                    .name(format!("poller-{k}"))
                    .spawn(move || poller_thread(ep, &fds, &shared, count))
                    .map_err(|e| format!("spawn poller thread: {e}"))?,
            );
        }
        Ok(PollerSet {
            shared,
            threads,
            _fds: fds,
        })
    }

    fn len(&self) -> usize {
        self.shared.wake_ns.len()
    }

    /// Makes one edge and waits until every poller woke and re-armed (or
    /// the time-out). Returns (first, last) wake in µs after the trigger
    /// and the number of pollers that missed it.
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

fn poller_thread(ep: Fd, fds: &[Fd], s: &PollShared, total: usize) {
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
    let mut buf = [0u8; 16];
    while !s.stop.load(Ordering::Relaxed) {
        // SAFETY: valid epoll fd and buffer.
        let r = unsafe { libc::epoll_wait(ep.0, evs.as_mut_ptr(), 64, 100) };
        if r <= 0 {
            continue;
        }
        let t = now_ns();
        let edge = s.edge.load(Ordering::SeqCst);
        for ev in &evs[..r as usize] {
            let i = ev.u64 as usize;
            let first = s.woke_edge[i].load(Ordering::SeqCst) != edge;
            if first {
                s.wake_ns[i].store(t, Ordering::SeqCst);
                s.woke_edge[i].store(edge, Ordering::SeqCst);
            } else {
                s.extra.fetch_add(1, Ordering::Relaxed);
            }
            if fds[i].pread(&mut buf).is_err() {
                s.errors.fetch_add(1, Ordering::Relaxed);
                let mut dummy = libc::epoll_event { events: 0, u64: 0 };
                // SAFETY: removes a registered fd.
                unsafe { libc::epoll_ctl(ep.0, libc::EPOLL_CTL_DEL, fds[i].0, &mut dummy) };
            }
            if first && s.done.fetch_add(1, Ordering::SeqCst) + 1 >= total {
                let _g = lock(&s.signal.0);
                s.signal.1.notify_all();
            }
        }
    }
}

fn latency(setup: &Setup, counts: &[usize], fd_limit: u64) -> Vec<Json> {
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
        let floor = if setup.quick { 10 } else { 100 };
        let scaled = (setup.edges * MAX_POLL_THREADS / p.max(MAX_POLL_THREADS))
            .max(floor)
            .min(setup.edges.max(1));
        let edges = setup
            .row_edges
            .iter()
            .rev()
            .find(|(rp, _)| *rp == p)
            .map_or(scaled, |&(_, n)| n);
        phase(
            &format!("latency with {p} pollers"),
            setup.phase_timeout + WAKE_TIMEOUT * 20,
        );
        let set = match PollerSet::new(setup.value_path(), p) {
            Ok(s) => s,
            Err(e) => {
                println!("{p:>7}  n/a ({e})");
                continue;
            }
        };
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
            edge_id += 1;
            measured += 1;
            match set.measure_edge(setup, edge_id, setup.late_grace) {
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
        drop(set);
        let f = stats(&mut firsts);
        let l = stats(&mut lasts);
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
        rows.push(Json::obj([
            ("pollers", Json::Num(p as f64)),
            ("threads", Json::Num(threads as f64)),
            ("edges", Json::Num(edges as f64)),
            ("edges_measured", Json::Num(measured as f64)),
            ("mode", Json::Str("epoll-lt".into())),
            ("first_us", stats_json(f)),
            ("last_us", stats_json(l)),
            ("missed_edges", Json::Num(missed_edges as f64)),
            ("missed_wakes", Json::Num(missed_wakes as f64)),
            ("late_wakes", Json::Num(late_wakes as f64)),
            ("lost_wakes", Json::Num((missed_wakes - late_wakes) as f64)),
            ("late_grace_s", Json::Num(setup.late_grace.as_secs_f64())),
            ("extra_wakes", Json::Num(extra as f64)),
            ("rearm_errors", Json::Num(errors as f64)),
            ("error", error.map_or(Json::Null, Json::Str)),
        ]));
    }
    rows
}

// ---------------------------------------------------------------- events

/// A thread blocked in read(2) on its own `events` file, until `stop`.
struct BlockedReader {
    handle: JoinHandle<()>,
    tid: Arc<AtomicU64>,
}

fn spawn_reader(
    path: &Path,
    stop: Arc<AtomicBool>,
    tx: Option<mpsc::Sender<(u64, Vec<u8>)>>,
) -> Result<BlockedReader, String> {
    let fd = Fd::open(path, libc::O_RDONLY).map_err(|e| format!("open {}: {e}", path.display()))?;
    let tid = Arc::new(AtomicU64::new(0));
    let tid2 = tid.clone();
    let handle = thread::spawn(move || {
        // SAFETY: plain syscalls.
        let me = unsafe { libc::pthread_self() };
        tid2.store(me as u64, Ordering::SeqCst);
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::SeqCst) {
            match fd.read(&mut buf) {
                Ok(0) => break, // EOF: the line went away
                Ok(n) => {
                    let t = now_ns();
                    if let Some(tx) = &tx
                        && tx.send((t, buf[..n].to_vec())).is_err()
                    {
                        break;
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(_) => break,
            }
        }
    });
    Ok(BlockedReader { handle, tid })
}

/// Ends blocked readers: SIGUSR1 (EINTR), then an edge, then gives up on
/// them (they end with the process).
fn stop_readers(setup: &Setup, stop: &AtomicBool, readers: Vec<BlockedReader>) -> usize {
    stop.store(true, Ordering::SeqCst);
    let kick = |readers: &[BlockedReader]| {
        for r in readers {
            let t = r.tid.load(Ordering::SeqCst);
            if t != 0 && !r.handle.is_finished() {
                // SAFETY: the thread is alive (not finished, not joined).
                unsafe { libc::pthread_kill(t as libc::pthread_t, libc::SIGUSR1) };
            }
        }
    };
    let wait = |readers: &[BlockedReader], d: Duration| {
        let deadline = Instant::now() + d;
        while readers.iter().any(|r| !r.handle.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    };
    kick(&readers);
    wait(&readers, Duration::from_millis(500));
    if readers.iter().any(|r| !r.handle.is_finished()) {
        let _ = setup.edge();
        wait(&readers, Duration::from_millis(500));
    }
    let mut stuck = 0;
    for r in readers {
        if r.handle.is_finished() {
            let _ = r.handle.join();
        } else {
            stuck += 1;
        }
    }
    stuck
}

fn parse_seqs(data: &[u8]) -> Vec<u64> {
    String::from_utf8_lossy(data)
        .lines()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

fn events_latency(setup: &Setup) -> Json {
    println!("\n== events stream: edge -> blocking read(2) latency (µs) ==");
    println!(
        "{:>6} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "edges", "min", "median", "p99", "max", "missed"
    );
    if !setup.events_path().exists() {
        println!(
            "{:>6}  n/a ({} does not exist)",
            "",
            setup.events_path().display()
        );
        return Json::Null;
    }
    phase("events latency", setup.phase_timeout + WAKE_TIMEOUT * 20);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let reader = match spawn_reader(&setup.events_path(), stop.clone(), Some(tx)) {
        Ok(r) => r,
        Err(e) => {
            println!("{:>6}  n/a ({e})", "");
            return Json::Null;
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
    let s = stats(&mut lat);
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
    Json::obj([
        ("edges", Json::Num(n as f64)),
        ("latency_us", stats_json(s)),
        ("missed", Json::Num(missed as f64)),
    ])
}

/// The `events` stream with 4 readers while one writer toggles for `secs`:
/// flat out, or paced at `pace` edges/s (where readers should keep up and
/// lose nothing).
fn events_rate(setup: &Setup, secs: f64, pace: Option<f64>) -> Json {
    const READERS: usize = 4;
    let how = match pace {
        None => "flat out".to_string(),
        Some(r) => format!("paced at {r:.0} edges/s"),
    };
    println!(
        "\n== events stream: sustained rate, {READERS} readers, one writer toggling {how} for {secs:.1} s =="
    );
    println!(
        "{:>6} {:>10} {:>12} {:>8} {:>10}  seqnos",
        "reader", "events", "events/s", "lost", "received%"
    );
    if !setup.events_path().exists() {
        println!(
            "{:>6}  n/a ({} does not exist)",
            "",
            setup.events_path().display()
        );
        return Json::Null;
    }
    phase(
        "events rate",
        Duration::from_secs_f64(secs) + setup.phase_timeout,
    );
    // Each reader: poll (200 ms) + read until quiet after the writer ends.
    let writer_done = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for _ in 0..READERS {
        let fd = match Fd::open(&setup.events_path(), libc::O_RDONLY | libc::O_NONBLOCK) {
            Ok(fd) => fd,
            Err(e) => {
                println!("{:>6}  n/a ({e})", "");
                return Json::Null;
            }
        };
        let done = writer_done.clone();
        handles.push(thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            let (mut events, mut lost, mut prev) = (0u64, 0u64, None::<u64>);
            let mut first = None::<u64>;
            let mut quiet_since: Option<Instant> = None;
            loop {
                if !poll_in(fd.0, 200) {
                    if done.load(Ordering::SeqCst) {
                        let q = *quiet_since.get_or_insert_with(Instant::now);
                        if q.elapsed() > Duration::from_millis(500) {
                            break;
                        }
                    }
                    continue;
                }
                quiet_since = None;
                match fd.read(&mut buf) {
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
                    Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {}
                    Err(_) => break,
                }
            }
            (events, lost, first.zip(prev))
        }));
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
    let mut per = Vec::new();
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
        per.push(Json::obj([
            ("events", Json::Num(events as f64)),
            ("per_s", Json::Num(rate)),
            ("lost", Json::Num(lost as f64)),
            ("numbered", Json::Num(numbered as f64)),
        ]));
    }
    println!(
        "writer: {written} edges in {elapsed:.2} s = {:.0} edges/s{}",
        written as f64 / elapsed,
        error.as_ref().map_or(String::new(), |e| format!(" ({e})"))
    );
    Json::obj([
        ("paced_per_s", pace.map_or(Json::Null, Json::Num)),
        ("readers", Json::Num(READERS as f64)),
        ("seconds", Json::Num(elapsed)),
        ("writer_edges", Json::Num(written as f64)),
        ("writer_per_s", Json::Num(written as f64 / elapsed)),
        ("per_reader", Json::Arr(per)),
    ])
}

// ---------------------------------------------------------------- daemon

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

fn daemon(setup: &Setup, idle_secs: f64, rss: Rss, fd_limit: u64) -> Json {
    println!("\n== daemon CPU and memory ==");
    println!("{:<44} {:>10} {:>12}", "condition", "value", "unit");
    let Some(pid) = setup.daemon_pid else {
        println!("{:<44} {:>10}  (needs --daemon-pid)", "all", "n/a");
        return Json::Null;
    };
    if cpu_ticks(pid).is_none() {
        println!("{:<44} {:>10}  (no /proc/{pid}/stat)", "all", "n/a");
        return Json::Null;
    }
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut out: Vec<(String, Json)> = vec![
        ("pid".into(), Json::Num(pid as f64)),
        ("idle_seconds".into(), Json::Num(idle_secs)),
        ("clk_tck".into(), Json::Num(hz)),
    ];
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
    let mut report = |key: &str, label: &str, r: Option<(u64, f64)>| match r {
        Some((ticks, pct)) => {
            println!("{label:<44} {ticks:>10} {:>12}", "ticks");
            println!("{:<44} {pct:>10.2} {:>12}", "", "% of a core");
            out.push((format!("{key}_ticks"), Json::Num(ticks as f64)));
            out.push((format!("{key}_pct"), Json::Num(pct)));
        }
        None => println!("{label:<44} {:>10}", "n/a"),
    };

    let polled = PollerSet::new(setup.value_path(), 128.min(fd_limit as usize / 2));
    match polled {
        Ok(polled) => {
            thread::sleep(Duration::from_millis(100));
            let r = measure("idle CPU, 128 polled");
            report(
                "cpu_128_polled",
                &format!("idle {idle_secs:.1} s, 128 polled value files"),
                r,
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
                let r = measure("idle CPU, blocked readers");
                report("cpu_128_polled_16_blocked", &label, r);
                let stuck = stop_readers(setup, &stop, readers);
                if stuck > 0 {
                    println!("({stuck} events readers stayed blocked)");
                }
            } else {
                report(
                    "cpu_128_polled_16_blocked",
                    "128 polled + 16 blocked readers (no events)",
                    None,
                );
            }
            drop(polled);
        }
        Err(e) => println!("{:<44} {:>10}  ({e})", "idle CPU", "n/a"),
    }

    let show = |label: &str, v: Option<u64>| match v {
        Some(kb) => println!("{label:<44} {kb:>10} {:>12}", "kB VmRSS"),
        None => println!("{label:<44} {:>10}", "n/a"),
    };
    show("RSS at start of the benchmark", rss.start);
    match &rss.error {
        None => show(
            &format!("RSS with {} open polled value files", rss.files),
            rss.with,
        ),
        Some(e) => println!("{:<44} {:>10}  ({e})", "RSS with open files", "n/a"),
    }
    show("RSS after closing them", rss.after);
    show("RSS at the end", rss_kb(pid));
    let num = |v: Option<u64>| v.map_or(Json::Null, |v| Json::Num(v as f64));
    out.push(("rss_kb_start".into(), num(rss.start)));
    out.push(("rss_files".into(), Json::Num(rss.files as f64)));
    out.push(("rss_kb_with_files".into(), num(rss.with)));
    out.push(("rss_kb_after".into(), num(rss.after)));
    Json::Obj(out)
}

/// Daemon memory, measured first so that earlier phases have not grown
/// its heap yet.
#[derive(Default)]
struct Rss {
    start: Option<u64>,
    files: usize,
    with: Option<u64>,
    after: Option<u64>,
    error: Option<String>,
}

fn measure_rss(setup: &Setup, files: usize, fd_limit: u64) -> Rss {
    let Some(pid) = setup.daemon_pid else {
        return Rss::default();
    };
    phase("RSS", setup.phase_timeout);
    let start = rss_kb(pid);
    let files = files.min(fd_limit.saturating_sub(64) as usize);
    let set = PollerSet::new(setup.value_path(), files);
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

// ------------------------------------------------------------------ JSON

#[derive(Clone, Debug)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn obj<const N: usize>(fields: [(&str, Json); N]) -> Json {
        Json::Obj(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(f) => f.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }

    fn write(&self, out: &mut String, indent: usize) {
        let pad = |n: usize| "  ".repeat(n);
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) if n.is_finite() => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    let _ = write!(out, "{}", *n as i64);
                } else {
                    let _ = write!(out, "{:.3}", n);
                }
            }
            Json::Num(_) => out.push_str("null"),
            Json::Str(s) => {
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        c if (c as u32) < 0x20 => {
                            let _ = write!(out, "\\u{:04x}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            Json::Arr(a) if a.is_empty() => out.push_str("[]"),
            Json::Arr(a) => {
                out.push_str("[\n");
                for (i, v) in a.iter().enumerate() {
                    out.push_str(&pad(indent + 1));
                    v.write(out, indent + 1);
                    out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(indent));
                out.push(']');
            }
            Json::Obj(f) if f.is_empty() => out.push_str("{}"),
            Json::Obj(f) => {
                out.push_str("{\n");
                for (i, (k, v)) in f.iter().enumerate() {
                    out.push_str(&pad(indent + 1));
                    Json::Str(k.clone()).write(out, indent + 1);
                    out.push_str(": ");
                    v.write(out, indent + 1);
                    out.push_str(if i + 1 < f.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(indent));
                out.push('}');
            }
        }
    }

    fn to_text(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, 0);
        s.push('\n');
        s
    }

    fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            b: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.b.len() {
            return Err(format!("trailing data at byte {}", p.i));
        }
        Ok(v)
    }
}

struct JsonParser<'a> {
    b: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        format!("JSON: {what} at byte {}", self.i)
    }

    fn lit(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.b[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("bad literal"))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.b.get(self.i) {
            None => Err(self.err("unexpected end")),
            Some(b'n') => self.lit("null", Json::Null),
            Some(b't') => self.lit("true", Json::Bool(true)),
            Some(b'f') => self.lit("false", Json::Bool(false)),
            Some(b'"') => self.string().map(Json::Str),
            Some(b'[') => {
                self.i += 1;
                let mut v = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(v));
                }
                loop {
                    v.push(self.value()?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(v));
                        }
                        _ => return Err(self.err("expected , or ]")),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut f = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(f));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return Err(self.err("expected :"));
                    }
                    self.i += 1;
                    f.push((k, self.value()?));
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(f));
                        }
                        _ => return Err(self.err("expected , or }")),
                    }
                }
            }
            Some(_) => {
                let start = self.i;
                while self.i < self.b.len() && b"+-0123456789.eE".contains(&self.b[self.i]) {
                    self.i += 1;
                }
                std::str::from_utf8(&self.b[start..self.i])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .map(Json::Num)
                    .ok_or_else(|| self.err("bad number"))
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.b.get(self.i) != Some(&b'"') {
            return Err(self.err("expected string"));
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            self.i += 1;
            match c {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let Some(&e) = self.b.get(self.i) else {
                        return Err(self.err("bad escape"));
                    };
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = self
                                .b
                                .get(self.i..self.i + 4)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or_else(|| self.err("bad \\u escape"))?;
                            self.i += 4;
                            let ch = char::from_u32(hex).unwrap_or('\u{fffd}');
                            let mut tmp = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

// ------------------------------------------------------------------- SVG

/// One implementation's curve: (pollers, last-wake median µs, p99 µs).
struct Series {
    label: String,
    points: Vec<(f64, f64, f64)>,
    /// Rows where some poller missed an edge: (pollers, missed wake-ups,
    /// edges measured).
    missed: Vec<(f64, f64, f64)>,
}

fn series_from_json(j: &Json, fallback: &str) -> Series {
    let label = match j.get("label") {
        Some(Json::Str(s)) => s.clone(),
        _ => fallback.to_string(),
    };
    let mut points = Vec::new();
    let mut missed = Vec::new();
    if let Some(Json::Arr(rows)) = j.get("latency") {
        for r in rows {
            let p = r.get("pollers").and_then(Json::num);
            let m = r.get("missed_wakes").and_then(Json::num).unwrap_or(0.0);
            if let Some(p) = p
                && m > 0.0
            {
                let e = r
                    .get("edges_measured")
                    .or_else(|| r.get("edges"))
                    .and_then(Json::num)
                    .unwrap_or(0.0);
                missed.push((p, m, e));
            }
            let last = r.get("last_us");
            let med = last.and_then(|l| l.get("median")).and_then(Json::num);
            let p99 = last.and_then(|l| l.get("p99")).and_then(Json::num);
            if let (Some(p), Some(med)) = (p, med)
                && p > 0.0
                && med > 0.0
            {
                points.push((p, med, p99.unwrap_or(med).max(med)));
            }
        }
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    Series {
        label,
        points,
        missed,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn svg_plot(series: &[Series], title: &str) -> String {
    const W: f64 = 860.0;
    const H: f64 = 520.0;
    const L: f64 = 90.0;
    const R: f64 = 30.0;
    const T: f64 = 60.0;
    const B: f64 = 70.0;
    const COLORS: [&str; 8] = [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    ];
    let all: Vec<&(f64, f64, f64)> = series.iter().flat_map(|s| &s.points).collect();
    // x positions also for rows that only have missed wake-ups
    let missed_xs = series.iter().flat_map(|s| s.missed.iter().map(|m| m.0));
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    if all.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">no latency data</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return svg;
    }
    // x: log2(pollers); y: log10(µs), whole decades.
    let xs_all: Vec<f64> = all.iter().map(|p| p.0).chain(missed_xs).collect();
    let xmin = xs_all.iter().copied().fold(f64::MAX, f64::min).max(1.0);
    let xmax = xs_all.iter().copied().fold(0.0, f64::max).max(xmin * 2.0);
    let ylo = all.iter().map(|p| p.1).fold(f64::MAX, f64::min).max(0.01);
    let yhi = all.iter().map(|p| p.2).fold(0.0, f64::max).max(ylo * 10.0);
    let (d0, d1) = (ylo.log10().floor(), yhi.log10().ceil());
    let px = |x: f64| L + (x.log2() - xmin.log2()) / (xmax.log2() - xmin.log2()) * (W - L - R);
    let py = |y: f64| T + (d1 - y.max(1e-9).log10()) / (d1 - d0) * (H - T - B);
    // Grid and axes.
    for d in (d0 as i32)..=(d1 as i32) {
        let y = py(10f64.powi(d));
        let _ = writeln!(
            svg,
            r##"<line x1="{L}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            W - R
        );
        let label = if d >= 3 {
            format!("{} ms", 10f64.powi(d - 3))
        } else {
            format!("{} µs", 10f64.powi(d))
        };
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"#,
            L - 8.0,
            y + 4.0
        );
    }
    let mut xs: Vec<f64> = xs_all.clone();
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.dedup();
    for x in xs {
        let gx = px(x);
        let _ = writeln!(
            svg,
            r##"<line x1="{gx:.1}" y1="{T}" x2="{gx:.1}" y2="{:.1}" stroke="#eee"/>"##,
            H - B
        );
        let _ = writeln!(
            svg,
            r#"<text x="{gx:.1}" y="{:.1}" text-anchor="middle">{x}</text>"#,
            H - B + 18.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{L}" y="{T}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
        W - L - R,
        H - T - B
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">pollers (open value files, log scale)</text>"#,
        L + (W - L - R) / 2.0,
        H - 22.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(22,{:.1}) rotate(-90)" text-anchor="middle">edge → last wake-up (log scale)</text>"#,
        T + (H - T - B) / 2.0
    );
    // Curves: median solid with dots, p99 dashed.
    for (i, s) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let line = |k: fn(&(f64, f64, f64)) -> f64| {
            s.points
                .iter()
                .map(|p| format!("{:.1},{:.1}", px(p.0), py(k(p))))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2.5"/>"#,
            line(|p| p.1)
        );
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="1.5" stroke-dasharray="6,4" opacity="0.7"/>"#,
            line(|p| p.2)
        );
        for p in &s.points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{c}"><title>{}: {} pollers, median {:.1} µs, p99 {:.1} µs</title></circle>"#,
                px(p.0),
                py(p.1),
                esc(&s.label),
                p.0,
                p.1,
                p.2
            );
        }
        let ly = T + 18.0 + 20.0 * i as f64;
        let note = if s.missed.is_empty() {
            String::new()
        } else {
            " (✗ N: N wake-ups missed, i.e. not within 1 s)".to_string()
        };
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{c}" stroke-width="2.5"/><text x="{:.1}" y="{:.1}">{}{}</text>"#,
            L + 12.0,
            L + 40.0,
            L + 46.0,
            ly + 4.0,
            esc(&s.label),
            esc(&note)
        );
        // Rows with missed wake-ups: a cross and the count, near the
        // bottom of the plot, one line per series.
        for &(p, m, e) in &s.missed {
            let x = px(p);
            let y = H - B - 10.0 - 16.0 * i as f64;
            let anchor = if x > W - R - 120.0 { "end" } else { "start" };
            let dx = if anchor == "end" { -8.0 } else { 8.0 };
            let _ = writeln!(
                svg,
                r#"<g><title>{}: {p} pollers, {m} wake-ups missed over {e} edges</title><text x="{x:.1}" y="{y:.1}" text-anchor="middle" fill="{c}" font-weight="bold">✗</text><text x="{:.1}" y="{y:.1}" text-anchor="{anchor}" fill="{c}" font-size="11">{m}</text></g>"#,
                esc(&s.label),
                x + dx,
            );
        }
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">solid: median, dashed: p99</text>"##,
        W - R - 8.0,
        T + 18.0
    );
    svg.push_str("</svg>\n");
    svg
}

fn plot_mode(files: &[PathBuf], svg: Option<&Path>) -> Result<(), String> {
    let svg = svg.ok_or("--plot needs --svg FILE")?;
    let mut series = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let j = Json::parse(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        let s = series_from_json(&j, &f.file_stem().unwrap_or_default().to_string_lossy());
        println!("{}: {} points", s.label, s.points.len());
        series.push(s);
    }
    std::fs::write(svg, svg_plot(&series, "GPIO sysfs edge → wake-up latency"))
        .map_err(|e| format!("{}: {e}", svg.display()))?;
    println!("wrote {}", svg.display());
    Ok(())
}

// ------------------------------------------------------------------ main

/// --pollers, or the default poller counts.
fn poller_counts(cli: &Cli) -> Vec<usize> {
    cli.pollers.clone().unwrap_or_else(|| {
        if cli.quick {
            vec![1, 8, 64]
        } else {
            vec![1, 16, 128, 1024]
        }
    })
}

fn run(cli: Cli) -> Result<(), String> {
    if !cli.plot.is_empty() {
        return plot_mode(&cli.plot, cli.svg.as_deref());
    }
    if let Some(path) = cli.value_file.clone() {
        return value_file_mode(&cli, &path);
    }
    let (Some(class), Some(input), Some(trigger)) =
        (cli.class_dir.clone(), cli.input, cli.trigger.clone())
    else {
        return Err("--class-dir, --input and --trigger are required".into());
    };
    check_class_dir(&class)?;
    start_watchdog_and_signals();
    let fd_limit = raise_fd_limit();
    let quick = cli.quick;
    let counts = poller_counts(&cli);
    let label = cli.label.clone().unwrap_or_else(|| guess_label(&class));
    let phase_timeout = Duration::from_secs(cli.phase_timeout.max(1));

    phase("setup", phase_timeout);
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

    let release = kernel_release();
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    println!("gpiofs-bench: {label} at {}", class.display());
    println!(
        "input gpio{input}, trigger {}, kernel {release}, {cpus} CPUs{}",
        trigger.display(),
        if quick {
            ", QUICK (numbers are not meaningful)"
        } else {
            ""
        }
    );

    let mut json: Vec<(String, Json)> = vec![
        ("tool".into(), Json::Str("gpiofs-bench".into())),
        ("format".into(), Json::Num(1.0)),
        ("label".into(), Json::Str(label.clone())),
        ("class_dir".into(), Json::Str(class.display().to_string())),
        ("input".into(), Json::Num(input as f64)),
        ("kernel".into(), Json::Str(release)),
        ("cpus".into(), Json::Num(cpus as f64)),
        ("quick".into(), Json::Bool(quick)),
    ];
    let secs = cli
        .throughput_secs
        .filter(|s| *s > 0.0)
        .unwrap_or(if quick { 0.3 } else { 2.0 });
    let rss_files = if quick { 256 } else { 1024 };
    let rss = measure_rss(&setup, rss_files, fd_limit);
    throughput(&setup, cli.output, secs, &mut json);
    let rows = latency(&setup, &counts, fd_limit);
    json.push(("latency".into(), Json::Arr(rows)));
    json.push(("events_latency".into(), events_latency(&setup)));
    json.push(("events_rate".into(), events_rate(&setup, secs, None)));
    json.push((
        "events_rate_paced".into(),
        events_rate(&setup, secs, Some(10_000.0)),
    ));
    let idle = if quick { 0.5 } else { 10.0 };
    json.push(("daemon".into(), daemon(&setup, idle, rss, fd_limit)));

    phase("cleanup", phase_timeout);
    drop(setup);
    run_cleanup();
    *lock(&PHASE) = None;

    let doc = Json::Obj(json);
    if let Some(path) = &cli.json {
        std::fs::write(path, doc.to_text()).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("\nwrote {}", path.display());
    }
    if let Some(path) = &cli.svg {
        let s = series_from_json(&doc, &label);
        std::fs::write(
            path,
            svg_plot(&[s], &format!("{label}: edge → wake-up latency")),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("gpiofs-bench: {e}");
        cleanup_and_exit(1);
    }
}
