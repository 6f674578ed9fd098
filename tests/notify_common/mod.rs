//! Helpers for the notification tests (poll, select, epoll, inotify, the
//! `events` stream, blocking reads and signals), on top of `common`.
//!
//! Everything is raw libc so that errnos and poll masks are exact. Child
//! processes are made with [`fork_child`]: the child runs a closure that
//! must only make plain system calls (no locks, no printing, no panics);
//! it reports through a [`Pipe`] and its exit code.

#![allow(dead_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

/// The input line most tests watch (demo-5 on the `--sim demo:32` chip)
/// and its offset, for the simulator's `pull` control file.
pub const INPUT: u32 = 517;
pub const INPUT_OFFSET: u32 = 5;

/// How long a negative check ("no wake-up") waits.
pub const QUIET: Duration = Duration::from_millis(300);
/// Upper bound for anything that should happen "at once".
pub const SOON: Duration = Duration::from_secs(3);

/// What kernfs always reports for an attribute file.
pub const DEFAULT_POLLMASK: i16 =
    libc::POLLIN | libc::POLLOUT | libc::POLLRDNORM | libc::POLLWRNORM;
/// What kernfs adds while an event is unread.
pub const PRI_ERR: i16 = libc::POLLPRI | libc::POLLERR;
/// Every event bit worth asking poll(2) for.
pub const ALL_POLL: i16 = libc::POLLIN
    | libc::POLLOUT
    | libc::POLLPRI
    | libc::POLLRDNORM
    | libc::POLLWRNORM
    | libc::POLLRDBAND
    | libc::POLLWRBAND;

pub fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path with NUL")
}

/// CLOCK_MONOTONIC in nanoseconds (the clock of event timestamps).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Polls `cond` every few milliseconds until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// poll(2) on one fd; returns revents (0 on time-out). EINTR is retried.
#[track_caller]
pub fn poll_one(fd: libc::c_int, events: i16, timeout_ms: i32) -> i16 {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if r < 0 && Errno::last().0 == libc::EINTR {
            continue;
        }
        assert!(r >= 0, "poll: {:?}", Errno::last());
        return if r == 0 { 0 } else { p.revents };
    }
}

/// Names of the bits in a poll mask, for messages.
pub fn poll_names(mask: i16) -> String {
    let names = [
        (libc::POLLIN, "IN"),
        (libc::POLLPRI, "PRI"),
        (libc::POLLOUT, "OUT"),
        (libc::POLLERR, "ERR"),
        (libc::POLLHUP, "HUP"),
        (libc::POLLNVAL, "NVAL"),
        (libc::POLLRDNORM, "RDNORM"),
        (libc::POLLRDBAND, "RDBAND"),
        (libc::POLLWRNORM, "WRNORM"),
        (libc::POLLWRBAND, "WRBAND"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| mask & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "0 (timeout)".into()
    } else {
        v.join("|")
    }
}

/// select(2) with `fd` in the exception set only; true when it is set.
pub fn select_except(fd: libc::c_int, timeout_ms: i64) -> bool {
    unsafe {
        let mut x: libc::fd_set = std::mem::zeroed();
        libc::FD_ZERO(&mut x);
        libc::FD_SET(fd, &mut x);
        let mut tv = libc::timeval {
            tv_sec: (timeout_ms / 1000) as libc::time_t,
            tv_usec: ((timeout_ms % 1000) * 1000) as libc::suseconds_t,
        };
        let r = libc::select(
            fd + 1,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut x,
            &mut tv,
        );
        assert!(r >= 0, "select: {:?}", Errno::last());
        r > 0 && libc::FD_ISSET(fd, &x)
    }
}

/// An epoll instance.
pub struct Epoll(pub Fd);

impl Epoll {
    pub fn new() -> Epoll {
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(fd >= 0, "epoll_create1: {:?}", Errno::last());
        Epoll(Fd(fd))
    }

    #[track_caller]
    pub fn add(&self, fd: libc::c_int, events: u32, data: u64) {
        let mut ev = libc::epoll_event { events, u64: data };
        let r = unsafe { libc::epoll_ctl(self.0.0, libc::EPOLL_CTL_ADD, fd, &mut ev) };
        assert_eq!(r, 0, "epoll_ctl ADD: {:?}", Errno::last());
    }

    /// One epoll_wait; returns (events, data) pairs (empty on time-out).
    #[track_caller]
    pub fn wait(&self, timeout_ms: i32) -> Vec<(u32, u64)> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
        loop {
            let r = unsafe { libc::epoll_wait(self.0.0, evs.as_mut_ptr(), 64, timeout_ms) };
            if r < 0 && Errno::last().0 == libc::EINTR {
                continue;
            }
            assert!(r >= 0, "epoll_wait: {:?}", Errno::last());
            return evs[..r as usize]
                .iter()
                .map(|e| (e.events, e.u64))
                .collect();
        }
    }
}

impl Default for Epoll {
    fn default() -> Self {
        Self::new()
    }
}

/// A pipe; both ends close on drop.
pub struct Pipe {
    pub r: Fd,
    pub w: Fd,
}

impl Pipe {
    pub fn new() -> Pipe {
        let mut fds = [0; 2];
        let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(r, 0, "pipe2: {:?}", Errno::last());
        Pipe {
            r: Fd(fds[0]),
            w: Fd(fds[1]),
        }
    }

    /// Closes the write end (after forking the writers), so that reads
    /// see end of file once every child is gone.
    pub fn close_write(&mut self) {
        drop(std::mem::replace(&mut self.w, Fd(-1)));
    }

    /// Reads exactly `n` bytes, waiting at most `timeout` in total.
    pub fn read_exact_timeout(&self, n: usize, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || poll_one(self.r.0, libc::POLLIN, left.as_millis() as i32 + 1) == 0
            {
                return None;
            }
            let chunk = self.r.read(n - out.len()).ok()?;
            if chunk.is_empty() {
                return None; // every writer closed
            }
            out.extend_from_slice(&chunk);
        }
        Some(out)
    }
}

impl Default for Pipe {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes raw bytes from a forked child (no allocation, no panics).
pub fn child_write(fd: libc::c_int, bytes: &[u8]) {
    unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
}

/// Forks; the child closes every descriptor except stdio and `keep`, runs
/// `body` and exits with its return value. `body` may only make plain
/// system calls: the test process has other threads whose locks may be
/// held at the moment of the fork.
pub fn fork_child(keep: &[libc::c_int], body: impl FnOnce() -> i32) -> libc::pid_t {
    let mut keep: Vec<u32> = keep.iter().map(|&fd| fd as u32).collect();
    keep.sort_unstable();
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {:?}", Errno::last());
    if pid == 0 {
        // Drop inherited descriptors (other tests' files and pipes) so
        // that this child keeps nothing of theirs alive.
        let mut lo = 3u32;
        for &fd in &keep {
            if fd > lo {
                unsafe { libc::syscall(libc::SYS_close_range, lo, fd - 1, 0) };
            }
            lo = lo.max(fd + 1);
        }
        unsafe { libc::syscall(libc::SYS_close_range, lo, u32::MAX, 0) };
        let code = body();
        unsafe { libc::_exit(code) };
    }
    pid
}

/// waitpid with a time-out; on time-out the child is killed and reaped and
/// None is returned. Returns the raw wait status.
pub fn wait_child(pid: libc::pid_t, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Some(status);
        }
        if r < 0 {
            return None;
        }
        if Instant::now() >= deadline {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Reads a small file outside the mount (e.g. under /proc).
pub fn read_small(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// True while `pid` (a thread id works too) sleeps inside read(2) or
/// pread(2).
pub fn blocked_in_read(pid: libc::pid_t) -> bool {
    let sys = read_small(&format!("/proc/{pid}/syscall"));
    let stat = read_small(&format!("/proc/{pid}/stat"));
    // The state is the field after the parenthesised command name.
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    let nr = sys
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<libc::c_long>().ok());
    matches!(nr, Some(n) if n == libc::SYS_read || n == libc::SYS_pread64)
        && matches!(state, Some("S" | "D"))
}

/// Waits until `pid` is asleep in read(2), then a little longer so the
/// daemon surely holds the request.
#[track_caller]
pub fn wait_blocked_in_read(pid: libc::pid_t) {
    assert!(
        wait_until(SOON, || blocked_in_read(pid)),
        "process {pid} never blocked in read(2): syscall={:?}",
        read_small(&format!("/proc/{pid}/syscall"))
    );
    thread::sleep(Duration::from_millis(50));
}

/// An exported input line of a simulated chip, driven through the
/// simulator's `pull` file (kept open).
pub struct Pin<'a> {
    pub m: &'a Mount,
    pub global: u32,
    pull: Fd,
    up: std::cell::Cell<bool>,
}

impl<'a> Pin<'a> {
    /// Exports `global` (offset `offset` of chip `demo`) as an input with a
    /// pull-down, and sets `edge`.
    #[track_caller]
    pub fn input(m: &'a Mount, global: u32, offset: u32, edge: &str) -> Pin<'a> {
        m.put("export", &global.to_string());
        let pull = m
            .open(&format!("sim/demo/line{offset}/pull"), libc::O_WRONLY)
            .unwrap_or_else(|e| panic!("open sim pull of line {offset}: {e:?}"));
        let pin = Pin {
            m,
            global,
            pull,
            up: std::cell::Cell::new(false),
        };
        pin.set("direction", "in");
        pin.pull(false);
        pin.set("edge", edge);
        pin
    }

    /// The usual input: gpio517 with `edge`.
    #[track_caller]
    pub fn demo(m: &'a Mount, edge: &str) -> Pin<'a> {
        Pin::input(m, INPUT, INPUT_OFFSET, edge)
    }

    pub fn rel(&self, attr: &str) -> String {
        format!("gpio{}/{attr}", self.global)
    }

    pub fn path(&self, attr: &str) -> std::path::PathBuf {
        self.m.p(&self.rel(attr))
    }

    #[track_caller]
    pub fn set(&self, attr: &str, value: &str) {
        self.m.put(&self.rel(attr), value);
    }

    #[track_caller]
    pub fn get(&self, attr: &str) -> String {
        self.m.get(&self.rel(attr))
    }

    #[track_caller]
    pub fn open(&self, attr: &str, flags: libc::c_int) -> Fd {
        self.m
            .open(&self.rel(attr), flags)
            .unwrap_or_else(|e| panic!("open {}: {e:?}", self.rel(attr)))
    }

    /// Opens `value` read-only and reads it once (arms it).
    #[track_caller]
    pub fn armed_value(&self) -> Fd {
        let fd = self.open("value", libc::O_RDONLY);
        arm(&fd);
        fd
    }

    /// Sets the simulator's pull: up drives the input high, down low.
    #[track_caller]
    pub fn pull(&self, up: bool) {
        let text: &[u8] = if up { b"pull-up" } else { b"pull-down" };
        let n = self
            .pull
            .pwrite(text, 0)
            .unwrap_or_else(|e| panic!("write sim pull of gpio{}: {e:?}", self.global));
        assert_eq!(n, text.len());
        self.up.set(up);
    }

    /// One raw edge: flips the pull. Returns true for a raw rising edge.
    #[track_caller]
    pub fn toggle(&self) -> bool {
        let up = !self.up.get();
        self.pull(up);
        up
    }

    /// Flips the pull from another thread after `delay`; the thread
    /// returns the CLOCK_MONOTONIC time just before its write. Join it
    /// before the pin is dropped.
    pub fn toggle_later(&self, delay: Duration) -> thread::JoinHandle<u64> {
        let up = !self.up.get();
        self.up.set(up);
        let fd = self.pull.0;
        thread::spawn(move || {
            thread::sleep(delay);
            let t = now_ns();
            pull_raw(fd, up);
            t
        })
    }

    pub fn is_up(&self) -> bool {
        self.up.get()
    }

    /// The raw fd of the pull file, for threads that trigger edges.
    pub fn pull_fd(&self) -> libc::c_int {
        self.pull.0
    }
}

/// Reads `fd` at offset 0, as a poller does to re-arm; returns the text.
#[track_caller]
pub fn arm(fd: &Fd) -> String {
    let text = fd
        .pread(64, 0)
        .unwrap_or_else(|e| panic!("pread value at 0: {e:?}"));
    String::from_utf8_lossy(&text).into_owned()
}

/// Writes pull-up/pull-down to a pull file by raw fd (for other threads).
pub fn pull_raw(fd: libc::c_int, up: bool) {
    let text: &[u8] = if up { b"pull-up" } else { b"pull-down" };
    let r = unsafe { libc::pwrite(fd, text.as_ptr().cast(), text.len(), 0) };
    assert_eq!(r, text.len() as isize, "pull write: {:?}", Errno::last());
}

/// One parsed line of an `events` stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    pub ts: u64,
    pub rising: bool,
    pub value: u8,
}

/// Parses `SEQNO TIMESTAMP_NS rising|falling VALUE` strictly: decimal
/// numbers without signs or leading zeros, single spaces, and VALUE
/// matching the direction (1 after rising, 0 after falling).
#[track_caller]
pub fn parse_event(line: &str) -> Event {
    let fields: Vec<&str> = line.split(' ').collect();
    let bad = |why: &str| -> ! { panic!("bad event line {line:?}: {why}") };
    if fields.len() != 4 {
        bad("expected 4 fields separated by single spaces");
    }
    let number = |s: &str, what: &str| -> u64 {
        if s.is_empty()
            || !s.bytes().all(|b| b.is_ascii_digit())
            || (s.len() > 1 && s.starts_with('0'))
        {
            bad(&format!("{what} is not a plain decimal number"));
        }
        s.parse()
            .unwrap_or_else(|_| bad(&format!("{what} overflows")))
    };
    let seq = number(fields[0], "SEQNO");
    let ts = number(fields[1], "TIMESTAMP_NS");
    let rising = match fields[2] {
        "rising" => true,
        "falling" => false,
        _ => bad("kind is not rising|falling"),
    };
    let value = match fields[3] {
        "0" => 0,
        "1" => 1,
        _ => bad("VALUE is not 0|1"),
    };
    if seq == 0 {
        bad("SEQNO counts from 1");
    }
    if rising != (value == 1) {
        bad("VALUE does not match the edge");
    }
    Event {
        seq,
        ts,
        rising,
        value,
    }
}

/// Splits stream bytes into events; every line must be complete.
#[track_caller]
pub fn parse_events(bytes: &[u8]) -> Vec<Event> {
    let text = std::str::from_utf8(bytes).expect("events stream is not UTF-8");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a read returned a partial line: {text:?}"
    );
    text.lines().map(parse_event).collect()
}

/// Reads an O_NONBLOCK `events` fd until it says EAGAIN.
#[track_caller]
pub fn drain(fd: &Fd) -> Vec<Event> {
    let mut all = Vec::new();
    loop {
        match fd.read(65536) {
            Ok(b) if b.is_empty() => return all,
            Ok(b) => all.extend(parse_events(&b)),
            Err(e) if e.0 == libc::EAGAIN => return all,
            Err(e) => panic!("read events: {e:?}"),
        }
    }
}

/// Reads an O_NONBLOCK `events` fd until `n` events arrived (or `SOON`).
#[track_caller]
pub fn read_n(fd: &Fd, n: usize) -> Vec<Event> {
    let mut all = Vec::new();
    let deadline = Instant::now() + SOON;
    while all.len() < n && Instant::now() < deadline {
        let got = drain(fd);
        if got.is_empty() {
            poll_one(fd.0, libc::POLLIN, 20);
        }
        all.extend(got);
    }
    assert_eq!(all.len(), n, "expected {n} events, got {all:?}");
    all
}

/// An inotify instance.
pub struct Inotify(pub Fd);

impl Inotify {
    pub fn new() -> Inotify {
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify_init1: {:?}", Errno::last());
        Inotify(Fd(fd))
    }

    #[track_caller]
    pub fn watch(&self, path: &Path, mask: u32) -> i32 {
        let c = cstr(path);
        let wd = unsafe { libc::inotify_add_watch(self.0.0, c.as_ptr(), mask) };
        assert!(
            wd >= 0,
            "inotify_add_watch {}: {:?}",
            path.display(),
            Errno::last()
        );
        wd
    }

    /// Events (wd, mask, name) that arrive within `timeout`; returns as
    /// soon as at least one did.
    pub fn events(&self, timeout: Duration) -> Vec<(i32, u32, String)> {
        if poll_one(self.0.0, libc::POLLIN, timeout.as_millis() as i32) == 0 {
            return Vec::new();
        }
        let mut out = Vec::new();
        let Ok(buf) = self.0.read(8192) else {
            return out;
        };
        let mut i = 0;
        let head = std::mem::size_of::<libc::inotify_event>();
        while i + head <= buf.len() {
            let ev: libc::inotify_event =
                unsafe { std::ptr::read_unaligned(buf[i..].as_ptr().cast()) };
            let name_bytes = &buf[i + head..i + head + ev.len as usize];
            let name = String::from_utf8_lossy(name_bytes)
                .trim_end_matches('\0')
                .to_string();
            out.push((ev.wd, ev.mask, name));
            i += head + ev.len as usize;
        }
        out
    }
}

impl Default for Inotify {
    fn default() -> Self {
        Self::new()
    }
}
