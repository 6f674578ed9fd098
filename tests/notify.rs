//! SPEC §2 "poll / select / epoll on value" and "inotify": the kernfs
//! notification rules, through real poll(2), select(2), epoll(7) and
//! inotify(7) calls on a live mount, from threads and processes.

mod common;
mod notify_common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;
use notify_common::*;

/// Blocks in `wait` while another thread makes one edge after 150 ms;
/// asserts the wait returned after that edge (not before) and in time.
/// Returns what `wait` returned.
#[track_caller]
fn woken_by_edge<T>(pin: &Pin, wait: impl FnOnce() -> T) -> T {
    let trigger = pin.toggle_later(Duration::from_millis(150));
    let start = Instant::now();
    let out = wait();
    let woke = now_ns();
    let edge = trigger.join().expect("trigger thread");
    assert!(
        woke >= edge,
        "the wait returned {} µs before the edge was made",
        (edge - woke) / 1000
    );
    assert!(
        start.elapsed() < SOON,
        "the wait took {:?} (time-out?)",
        start.elapsed()
    );
    println!("woken {} µs after the edge", (woke - edge) / 1000);
    out
}

#[test]
fn poll_value_first_poll_latch_and_rearm() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "both");
    let fd = pin.open("value", libc::O_RDONLY);

    // A new open file has seen event 0; the line is at 1: ready at once.
    let t = Instant::now();
    let r = poll_one(fd.0, ALL_POLL, 2000);
    assert!(t.elapsed() < Duration::from_secs(1), "first poll blocked");
    assert_eq!(
        r,
        DEFAULT_POLLMASK | PRI_ERR,
        "first poll after open: got {}",
        poll_names(r)
    );
    // Not read yet: still ready.
    assert_eq!(poll_one(fd.0, libc::POLLPRI, 0), PRI_ERR);

    // A read at offset 0 re-arms.
    assert_eq!(arm(&fd), "0\n");
    let r = poll_one(fd.0, ALL_POLL, 0);
    assert_eq!(r, DEFAULT_POLLMASK, "after a read: got {}", poll_names(r));
    assert_eq!(poll_one(fd.0, libc::POLLPRI, QUIET.as_millis() as i32), 0);

    // An edge wakes a poller blocked on POLLPRI.
    let r = woken_by_edge(&pin, || poll_one(fd.0, libc::POLLPRI | libc::POLLERR, 3000));
    assert_eq!(r, PRI_ERR, "woken poll: got {}", poll_names(r));
    // Latched until read.
    assert_eq!(poll_one(fd.0, ALL_POLL, 0), DEFAULT_POLLMASK | PRI_ERR);
    assert_eq!(poll_one(fd.0, libc::POLLPRI, 0), PRI_ERR);
    assert_eq!(arm(&fd), "1\n");
    assert_eq!(poll_one(fd.0, libc::POLLPRI, QUIET.as_millis() as i32), 0);
}

#[test]
fn select_exceptfds_wakes_on_edge() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "rising");
    let fd = pin.open("value", libc::O_RDONLY);
    assert!(select_except(fd.0, 0), "first select after open not ready");
    arm(&fd);
    assert!(!select_except(fd.0, QUIET.as_millis() as i64));
    assert!(woken_by_edge(&pin, || select_except(fd.0, 3000)));
    assert!(select_except(fd.0, 0), "event not latched until read");
    arm(&fd);
    assert!(!select_except(fd.0, 0));
}

#[test]
fn epoll_level_triggered_pri() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "both");
    let fd = pin.open("value", libc::O_RDONLY);
    let ep = Epoll::new();
    ep.add(fd.0, libc::EPOLLPRI as u32, 7);

    let first = ep.wait(2000);
    assert_eq!(first.len(), 1, "first epoll_wait after open: {first:?}");
    let (events, data) = first[0];
    assert_eq!(data, 7);
    assert!(events & libc::EPOLLPRI as u32 != 0, "events {events:#x}");
    assert!(events & libc::EPOLLERR as u32 != 0, "events {events:#x}");
    // Level-triggered: ready again until read.
    assert_eq!(ep.wait(0).len(), 1);
    arm(&fd);
    assert!(ep.wait(QUIET.as_millis() as i32).is_empty());

    let woke = woken_by_edge(&pin, || ep.wait(3000));
    assert_eq!(woke.len(), 1, "edge: {woke:?}");
    assert_eq!(
        ep.wait(0).len(),
        1,
        "level-triggered: still ready before read"
    );
    assert_eq!(ep.wait(0).len(), 1);
    arm(&fd);
    assert!(ep.wait(QUIET.as_millis() as i32).is_empty());
}

#[test]
fn epoll_edge_triggered_wakes_exactly_once_per_edge() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "both");
    let fd = pin.open("value", libc::O_RDONLY);
    let ep = Epoll::new();
    ep.add(fd.0, (libc::EPOLLPRI | libc::EPOLLET) as u32, 1);

    // Ready when added (never read): one report, then silence.
    assert_eq!(ep.wait(2000).len(), 1, "first wait after open");
    assert!(
        ep.wait(QUIET.as_millis() as i32).is_empty(),
        "ET reported twice"
    );
    arm(&fd);
    assert!(
        ep.wait(QUIET.as_millis() as i32).is_empty(),
        "wake without edge"
    );

    // Each edge: exactly one wake, even without reading in between.
    for i in 0..3 {
        let woke = woken_by_edge(&pin, || ep.wait(3000));
        assert_eq!(woke.len(), 1, "edge {i}: {woke:?}");
        assert!(woke[0].0 & libc::EPOLLPRI as u32 != 0);
        let again = ep.wait(QUIET.as_millis() as i32);
        assert!(again.is_empty(), "edge {i} woke ET epoll twice: {again:?}");
    }
    // Reading does not make ET report again.
    arm(&fd);
    assert!(ep.wait(QUIET.as_millis() as i32).is_empty());
}

#[test]
fn two_edges_before_a_read_coalesce() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "both");
    let events = pin.open("events", libc::O_RDONLY | libc::O_NONBLOCK);
    let fd = pin.armed_value();
    let ep = Epoll::new();
    ep.add(fd.0, libc::EPOLLPRI as u32, 0);
    assert!(ep.wait(0).is_empty());

    pin.toggle();
    pin.toggle();
    // Both edges have gone through the daemon once the stream has them.
    read_n(&events, 2);
    assert_eq!(poll_one(fd.0, libc::POLLPRI, 0), PRI_ERR);
    assert_eq!(
        poll_one(fd.0, libc::POLLPRI, 0),
        PRI_ERR,
        "ready until read"
    );
    // (The poll wake-up may trail the counter a little, as in kernfs.)
    assert_eq!(ep.wait(2000).len(), 1);
    assert_eq!(ep.wait(0).len(), 1, "level-triggered: ready until read");
    // One read consumes both.
    assert_eq!(arm(&fd), "0\n");
    assert_eq!(poll_one(fd.0, libc::POLLPRI, QUIET.as_millis() as i32), 0);
    assert!(ep.wait(0).is_empty());
}

/// Only a read at offset 0 re-arms: a sequential read at end of file
/// (no lseek) leaves the event pending, as with kernfs's seq_file.
#[test]
fn any_read_of_value_rearms() {
    // `value` is a preallocated sysfs file: kernfs_file_read_iter re-arms
    // on every read, whatever the offset, even one at end of file.
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "both");
    let fd = pin.open("value", libc::O_RDONLY);
    assert_eq!(fd.read(64).unwrap(), b"0\n");
    assert_eq!(poll_one(fd.0, libc::POLLPRI, 0), 0, "read() re-arms");

    woken_by_edge(&pin, || poll_one(fd.0, libc::POLLPRI, 3000));
    assert_eq!(poll_one(fd.0, libc::POLLPRI, 0), PRI_ERR);
    // At end of file: nothing read, but re-armed.
    assert_eq!(fd.read(64).unwrap(), b"");
    assert_eq!(poll_one(fd.0, libc::POLLPRI, 0), 0);

    woken_by_edge(&pin, || poll_one(fd.0, libc::POLLPRI, 3000));
    // A read in the middle shows the value afresh and re-arms.
    fd.seek(1).unwrap();
    assert_eq!(fd.read(64).unwrap(), b"\n");
    assert_eq!(poll_one(fd.0, libc::POLLPRI, 0), 0);

    woken_by_edge(&pin, || poll_one(fd.0, libc::POLLPRI, 3000));
    // 1-byte reads from offset 0 re-arm too.
    fd.seek(0).unwrap();
    assert_eq!(fd.read(1).unwrap(), b"1");
    assert_eq!(poll_one(fd.0, libc::POLLPRI, 0), 0);
}

#[test]
fn open_files_of_one_line_are_independent() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "both");
    let a = pin.armed_value();
    let b = pin.armed_value();
    // A third file, opened but never read, is ready regardless.
    let c = pin.open("value", libc::O_RDONLY);
    assert_eq!(poll_one(a.0, libc::POLLPRI, 0), 0);
    assert_eq!(poll_one(b.0, libc::POLLPRI, 0), 0);
    assert_eq!(poll_one(c.0, libc::POLLPRI, 0), PRI_ERR);

    woken_by_edge(&pin, || poll_one(a.0, libc::POLLPRI, 3000));
    assert_eq!(poll_one(b.0, libc::POLLPRI, 0), PRI_ERR);
    arm(&a);
    assert_eq!(poll_one(a.0, libc::POLLPRI, 0), 0);
    assert_eq!(
        poll_one(b.0, libc::POLLPRI, 0),
        PRI_ERR,
        "reading one open file re-armed another"
    );
    arm(&b);
    assert_eq!(poll_one(b.0, libc::POLLPRI, 0), 0);
    assert_eq!(poll_one(c.0, libc::POLLPRI, 0), PRI_ERR);
}

/// 4 processes × 16 open files, all armed; ONE edge wakes all 64.
#[test]
fn one_edge_wakes_64_files_in_4_processes() {
    const PROCS: usize = 4;
    const FILES: usize = 16;
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "both");
    let path = cstr(&pin.path("value"));
    let mut ready = Pipe::new();
    let mut results = Pipe::new();
    let mut pids = Vec::new();
    for _ in 0..PROCS {
        let (p, rw, resw) = (&path, ready.w.0, results.w.0);
        pids.push(fork_child(&[rw, resw], move || {
            // Plain system calls only (see fork_child).
            let mut fds = [libc::pollfd {
                fd: -1,
                events: libc::POLLPRI | libc::POLLERR,
                revents: 0,
            }; FILES];
            let mut buf = [0u8; 16];
            for f in fds.iter_mut() {
                let fd = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY) };
                if fd < 0 {
                    return 2;
                }
                if unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), 16, 0) } < 0 {
                    return 3;
                }
                f.fd = fd;
            }
            child_write(rw, b"r");
            let start = now_ns();
            let mut woken = 0u8;
            while woken < FILES as u8 && now_ns() - start < 5_000_000_000 {
                let r = unsafe { libc::poll(fds.as_mut_ptr(), FILES as libc::nfds_t, 100) };
                if r < 0 {
                    continue;
                }
                for f in fds.iter_mut() {
                    if f.fd >= 0 && f.revents & libc::POLLPRI != 0 {
                        woken += 1;
                        f.fd = -f.fd - 1; // poll ignores negative fds
                    }
                }
            }
            child_write(resw, &[woken]);
            0
        }));
    }
    ready.close_write();
    results.close_write();
    let got = ready.read_exact_timeout(PROCS, Duration::from_secs(10));
    assert!(got.is_some(), "children did not open and arm their files");
    // Every child has armed its files: exactly one edge from here on.
    thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    pin.toggle();
    let res = results.read_exact_timeout(PROCS, Duration::from_secs(10));
    println!("64 files in 4 processes woken within {:?}", t.elapsed());
    for pid in pids {
        let status = wait_child(pid, Duration::from_secs(5));
        assert_eq!(status, Some(0), "child {pid} status {status:?}");
    }
    let res = res.expect("children did not report");
    assert_eq!(
        res,
        vec![FILES as u8; PROCS],
        "open files woken per process by one edge"
    );
}

/// Which raw edges count, for every `edge` with active_low 0 and 1
/// (rising/falling follow the logical value). The `events` stream is
/// used as a barrier: once it has the edge, the daemon has counted it.
#[test]
fn counted_edges_follow_edge_and_active_low() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "none");
    let events = pin.open("events", libc::O_RDONLY | libc::O_NONBLOCK);
    let fd = pin.open("value", libc::O_RDONLY);
    let mut failures = Vec::new();
    for active_low in [false, true] {
        for edge in ["none", "rising", "falling", "both"] {
            pin.set("edge", "none");
            pin.set("active_low", if active_low { "1" } else { "0" });
            pin.pull(false);
            pin.set("edge", edge);
            drain(&events);
            arm(&fd);
            for raw_up in [true, false] {
                pin.pull(raw_up);
                let ev = read_n(&events, 1)[0];
                let logical_rising = raw_up != active_low;
                assert_eq!(
                    ev.rising, logical_rising,
                    "stream kind, active_low={active_low}"
                );
                let want = match edge {
                    "none" => false,
                    "rising" => logical_rising,
                    "falling" => !logical_rising,
                    _ => true,
                };
                let got = poll_one(fd.0, libc::POLLPRI, 0) == PRI_ERR;
                if got != want {
                    failures.push(format!(
                        "edge={edge} active_low={} raw {}: counted={got}, expected {want}",
                        u8::from(active_low),
                        if raw_up { "rising" } else { "falling" }
                    ));
                }
                arm(&fd);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The same rule as a real wake-up, without any `events` file open (so the
/// line's edge detection comes from `edge` alone).
#[test]
fn rising_with_active_low_wakes_on_pull_down_only() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "rising");
    pin.set("active_low", "1");
    pin.pull(true); // raw high = logical 0; logically a falling edge
    thread::sleep(Duration::from_millis(50));
    let fd = pin.armed_value();
    assert_eq!(arm(&fd), "0\n");
    assert_eq!(poll_one(fd.0, libc::POLLPRI, QUIET.as_millis() as i32), 0);
    // pull-down: raw falling = logical rising: wakes.
    let r = woken_by_edge(&pin, || poll_one(fd.0, libc::POLLPRI, 3000));
    assert!(!pin.is_up());
    assert_eq!(r, PRI_ERR);
    assert_eq!(arm(&fd), "1\n");
    // pull-up: logical falling: no wake.
    pin.pull(true);
    assert_eq!(
        poll_one(fd.0, libc::POLLPRI, QUIET.as_millis() as i32),
        0,
        "edge=rising active_low=1 woke on a raw rising edge"
    );
    assert_eq!(arm(&fd), "0\n");
}

#[test]
fn edge_none_never_wakes() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "none");
    let fd = pin.armed_value();
    let ep = Epoll::new();
    ep.add(fd.0, (libc::EPOLLPRI | libc::EPOLLET) as u32, 0);
    ep.wait(0);
    pin.toggle();
    pin.toggle();
    assert!(ep.wait(QUIET.as_millis() as i32).is_empty());
    assert_eq!(poll_one(fd.0, libc::POLLPRI, 0), 0);
    assert_eq!(arm(&fd), "0\n");
}

#[test]
fn unexport_wakes_pollers_then_pollerr_and_enodev() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "both");
    let fd = pin.armed_value();
    let idle = pin.armed_value();
    let raw = fd.0;
    let poller = thread::spawn(move || {
        let t = Instant::now();
        let r = poll_one(raw, libc::POLLPRI | libc::POLLERR, 5000);
        (r, t.elapsed())
    });
    thread::sleep(Duration::from_millis(200));
    m.put("unexport", &INPUT.to_string());
    let (r, took) = poller.join().unwrap();
    assert!(
        r & PRI_ERR == PRI_ERR,
        "blocked poller after unexport: got {}",
        poll_names(r)
    );
    assert!(took < Duration::from_secs(3), "poller woke after {took:?}");
    let r = poll_one(idle.0, ALL_POLL, 0);
    assert!(
        r & PRI_ERR == PRI_ERR,
        "poll after unexport: got {}",
        poll_names(r)
    );
    // Still after a read attempt.
    fd.pread(64, 0).want_err(libc::ENODEV);
    idle.seek(0).unwrap();
    idle.read(64).want_err(libc::ENODEV);
    assert!(poll_one(fd.0, libc::POLLPRI, 0) & libc::POLLPRI != 0);
    // A later export of the same line gives a fresh, working node; the old
    // open files stay dead.
    m.put("export", &INPUT.to_string());
    fd.pread(64, 0).want_err(libc::ENODEV);
    let fresh = m
        .open(&format!("gpio{INPUT}/value"), libc::O_RDONLY)
        .want_ok();
    assert!(fresh.pread(64, 0).is_ok());
}

/// kernfs gives every attribute the same poll: DEFAULT_POLLMASK, plus
/// PRI|ERR until the first read (event 1 vs 0), and edges never touch
/// anything but `value`.
#[test]
fn other_attributes_poll_like_kernfs() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "both");
    let readable = [
        pin.rel("direction"),
        pin.rel("edge"),
        pin.rel("active_low"),
        "gpiochip512/base".to_string(),
        "gpiochip512/label".to_string(),
        "gpiochip512/ngpio".to_string(),
    ];
    let mut fds = Vec::new();
    for rel in &readable {
        let fd = m.open(rel, libc::O_RDONLY).want_ok();
        let r = poll_one(fd.0, ALL_POLL, 1000);
        assert_eq!(
            r,
            DEFAULT_POLLMASK | PRI_ERR,
            "{rel}: first poll gave {}",
            poll_names(r)
        );
        arm(&fd);
        let r = poll_one(fd.0, ALL_POLL, 0);
        assert_eq!(r, DEFAULT_POLLMASK, "{rel}: after read: {}", poll_names(r));
        fds.push((rel, fd));
    }
    // Write-only files: never read, so PRI|ERR stays.
    for rel in ["export", "unexport"] {
        let fd = m.open(rel, libc::O_WRONLY).want_ok();
        let r = poll_one(fd.0, ALL_POLL, 1000);
        assert_eq!(r, DEFAULT_POLLMASK | PRI_ERR, "{rel}: {}", poll_names(r));
    }
    // Edges only notify `value`.
    let value = pin.armed_value();
    woken_by_edge(&pin, || poll_one(value.0, libc::POLLPRI, 3000));
    for (rel, fd) in &fds {
        let r = poll_one(fd.0, ALL_POLL, 0);
        assert_eq!(
            r,
            DEFAULT_POLLMASK,
            "{rel} after an edge: {}",
            poll_names(r)
        );
    }
}

#[test]
fn inotify_in_modify_on_counted_edges_only() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "rising");
    let ino = Inotify::new();
    let wd_file = ino.watch(&pin.path("value"), libc::IN_MODIFY);
    let wd_dir = ino.watch(&m.p(&format!("gpio{INPUT}")), libc::IN_MODIFY);
    assert!(ino.events(Duration::from_millis(100)).is_empty());

    // A counted edge: IN_MODIFY on the file, and on its directory with the
    // name "value" (kernfs_notify reports both).
    let t = Instant::now();
    pin.pull(true);
    let mut seen = Vec::new();
    let deadline = Instant::now() + SOON;
    while !(seen
        .iter()
        .any(|(wd, _, _): &(i32, u32, String)| *wd == wd_file)
        && seen.iter().any(|(wd, _, n)| *wd == wd_dir && n == "value"))
        && Instant::now() < deadline
    {
        seen.extend(ino.events(Duration::from_millis(100)));
    }
    println!("inotify events within {:?}: {seen:?}", t.elapsed());
    assert!(
        seen.iter()
            .any(|(wd, mask, _)| *wd == wd_file && mask & libc::IN_MODIFY != 0),
        "no IN_MODIFY on value after a counted edge: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(wd, mask, n)| *wd == wd_dir && mask & libc::IN_MODIFY != 0 && n == "value"),
        "no IN_MODIFY \"value\" on the gpio directory: {seen:?}"
    );
    // Drain, then edges that do not count: nothing for `value` (our own
    // writes to `edge` do show up on the directory, as in sysfs).
    let about_value = |evs: Vec<(i32, u32, String)>| -> Vec<(i32, u32, String)> {
        evs.into_iter()
            .filter(|(wd, _, n)| *wd == wd_file || n == "value")
            .collect()
    };
    thread::sleep(Duration::from_millis(100));
    ino.events(Duration::ZERO);
    pin.pull(false); // falling: not counted with edge=rising
    let quiet = about_value(ino.events(QUIET));
    assert!(
        quiet.is_empty(),
        "IN_MODIFY for an uncounted edge: {quiet:?}"
    );
    pin.set("edge", "none");
    ino.events(Duration::from_millis(50));
    pin.pull(true);
    pin.pull(false);
    let quiet = about_value(ino.events(QUIET));
    assert!(quiet.is_empty(), "IN_MODIFY with edge=none: {quiet:?}");
    // And counted again after edge=both.
    pin.set("edge", "both");
    ino.events(Duration::from_millis(50));
    pin.pull(true);
    let deadline = Instant::now() + SOON;
    let mut again = Vec::new();
    while again.is_empty() && Instant::now() < deadline {
        again = about_value(ino.events(Duration::from_millis(100)));
    }
    assert!(
        again.iter().any(|(wd, _, _)| *wd == wd_file),
        "no IN_MODIFY with edge=both: {again:?}"
    );
}
