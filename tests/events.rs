//! SPEC §3 "Blocking reads": the `events` stream of an exported line and
//! `--blocking-value`.

mod common;
mod notify_common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;
use notify_common::*;

/// Reads one block from `fd` (read(2), or pread(2) at 0 for a seekable
/// file) in another thread while `pin` makes one edge after 150 ms; asserts
/// the read returned after the edge. Returns the data and the
/// CLOCK_MONOTONIC time of the trigger.
#[track_caller]
fn blocking_read_across_edge(pin: &Pin, fd: &Fd, stream: bool, size: usize) -> (Vec<u8>, u64) {
    let raw = fd.0;
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; size];
        let r = if stream {
            unsafe { libc::read(raw, buf.as_mut_ptr().cast(), size) }
        } else {
            unsafe { libc::pread(raw, buf.as_mut_ptr().cast(), size, 0) }
        };
        let errno = Errno::last();
        let done = now_ns();
        (r, errno, buf, done)
    });
    let trigger = pin.toggle_later(Duration::from_millis(150));
    let edge = trigger.join().unwrap();
    let (r, errno, mut buf, done) = reader.join().unwrap();
    assert!(r >= 0, "blocking read failed: {errno:?}");
    assert!(
        done >= edge,
        "the blocking read returned {} µs before the edge",
        (edge - done) / 1000
    );
    println!(
        "blocking read returned {} µs after the edge",
        (done - edge) / 1000
    );
    buf.truncate(r as usize);
    (buf, edge)
}

#[test]
fn events_lines_have_the_documented_format() {
    let Some(m) = mount(DEMO) else { return };
    // edge=none: the stream has every edge whatever `edge` says.
    let pin = Pin::demo(&m, "none");
    let fd = pin.open("events", libc::O_RDONLY | libc::O_NONBLOCK);
    let before = now_ns();
    for _ in 0..10 {
        pin.toggle();
    }
    let evs = read_n(&fd, 10);
    let after = now_ns();
    // The first edge of a freshly exported line is event 1.
    assert_eq!(evs[0].seq, 1, "{evs:?}");
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e.seq, 1 + i as u64, "SEQNO continuity: {evs:?}");
        assert_eq!(e.rising, i % 2 == 0, "edge kinds alternate: {evs:?}");
        assert!(
            (before..=after).contains(&e.ts),
            "timestamp {} is not CLOCK_MONOTONIC within [{before}, {after}]",
            e.ts
        );
        if i > 0 {
            assert!(e.ts >= evs[i - 1].ts, "timestamps go back: {evs:?}");
        }
    }
    // With active_low the kinds and values are logical.
    pin.set("active_low", "1");
    assert!(drain(&fd).is_empty());
    let up = pin.toggle();
    assert!(up);
    let e = read_n(&fd, 1)[0];
    assert_eq!((e.rising, e.value, e.seq), (false, 0, 11), "{e:?}");
}

#[test]
fn events_read_returns_whole_lines_that_fit() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "none");
    let fd = pin.open("events", libc::O_RDONLY | libc::O_NONBLOCK);
    let barrier = pin.open("events", libc::O_RDONLY | libc::O_NONBLOCK);
    for _ in 0..6 {
        pin.toggle();
    }
    read_n(&barrier, 6);
    // 40 bytes hold one line (about 25 bytes) but not two.
    let one = fd.read(40).want_ok();
    let one = std::str::from_utf8(&one).unwrap();
    assert_eq!(
        one.matches('\n').count(),
        1,
        "40 bytes hold one line: {one:?}"
    );
    assert!(one.ends_with('\n'));
    let first = parse_event(one.trim_end());
    let rest = drain(&fd);
    assert_eq!(rest.len(), 5, "{rest:?}");
    assert_eq!(
        rest[0].seq,
        first.seq + 1,
        "an event was lost between reads"
    );
    for w in rest.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
}

#[test]
fn events_nonblocking_eagain_and_poll_pollin() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "rising");
    let fd = pin.open("events", libc::O_RDONLY | libc::O_NONBLOCK);
    fd.read(4096).want_err(libc::EAGAIN);
    assert_eq!(poll_one(fd.0, libc::POLLIN | libc::POLLPRI, 0), 0);
    assert_eq!(
        poll_one(fd.0, libc::POLLIN, QUIET.as_millis() as i32),
        0,
        "empty events stream polled readable"
    );
    // A blocked poll wakes with the edge.
    let trigger = pin.toggle_later(Duration::from_millis(150));
    let r = poll_one(fd.0, libc::POLLIN | libc::POLLRDNORM, 3000);
    let woke = now_ns();
    let edge = trigger.join().unwrap();
    assert!(woke >= edge, "poll returned before the edge");
    assert_eq!(r, libc::POLLIN | libc::POLLRDNORM, "got {}", poll_names(r));
    // Stays readable until drained; then EAGAIN again.
    assert_eq!(poll_one(fd.0, libc::POLLIN, 0), libc::POLLIN);
    assert_eq!(drain(&fd).len(), 1);
    assert_eq!(poll_one(fd.0, libc::POLLIN, 0), 0);
    fd.read(4096).want_err(libc::EAGAIN);
    // epoll EPOLLIN works too.
    let ep = Epoll::new();
    ep.add(fd.0, libc::EPOLLIN as u32, 3);
    assert!(ep.wait(0).is_empty());
    pin.toggle();
    let w = ep.wait(3000);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].1, 3);
}

#[test]
fn events_blocking_read_returns_after_the_edge() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "none");
    let fd = pin.open("events", libc::O_RDONLY);
    let (data, edge) = blocking_read_across_edge(&pin, &fd, true, 4096);
    let evs = parse_events(&data);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert!(evs[0].rising);
    assert!(evs[0].ts >= edge, "event timestamp before the trigger");
    // And again (falling), from the same open file.
    let (data, _) = blocking_read_across_edge(&pin, &fd, true, 4096);
    let evs2 = parse_events(&data);
    assert_eq!(evs2.len(), 1);
    assert!(!evs2[0].rising);
    assert_eq!(evs2[0].seq, evs[0].seq + 1);
}

/// Each open file has its own queue, starting empty at open.
#[test]
fn events_queues_are_per_open_file() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "none");
    let a = pin.open("events", libc::O_RDONLY | libc::O_NONBLOCK);
    pin.toggle();
    pin.toggle();
    // Once `a` has both, they are history for a file opened now.
    let first = read_n(&a, 2);
    let b = pin.open("events", libc::O_RDONLY | libc::O_NONBLOCK);
    thread::sleep(Duration::from_millis(50));
    assert!(drain(&b).is_empty(), "a new open file saw old events");
    pin.toggle();
    let a3 = read_n(&a, 1);
    let b3 = read_n(&b, 1);
    assert_eq!(a3, b3, "both files see the same event");
    assert_eq!(a3[0].seq, first[1].seq + 1);
}

#[test]
fn events_seqno_continuous_over_many_edges() {
    const N: usize = 600;
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "both");
    let fd = pin.open("events", libc::O_RDONLY | libc::O_NONBLOCK);
    let t = Instant::now();
    let mut got = Vec::new();
    for i in 0..N {
        pin.toggle();
        if i % 50 == 0 {
            got.extend(drain(&fd));
        }
    }
    got.extend(read_n(&fd, N - got.len()));
    println!("{N} edges written and read in {:?}", t.elapsed());
    for (i, w) in got.windows(2).enumerate() {
        assert_eq!(w[1].seq, w[0].seq + 1, "gap at {i}: {:?}", &got[i..i + 2]);
        assert_ne!(w[1].rising, w[0].rising, "order at {i}");
        assert!(w[1].ts >= w[0].ts, "time order at {i}");
    }
    assert_eq!(got[0].seq, 1);
    assert_eq!(got[N - 1].seq, N as u64);
}

/// More than 1024 edges without reading: the queue keeps the newest ones
/// and the reader sees the gap in SEQNO.
#[test]
fn events_overflow_keeps_newest_and_shows_a_gap() {
    const N: u64 = 1500;
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "none");
    let fd = pin.open("events", libc::O_RDONLY | libc::O_NONBLOCK);
    // A second reader that keeps up, to know when the last edge is in.
    let tail = pin.open("events", libc::O_RDONLY | libc::O_NONBLOCK);
    let mut seen = 0u64;
    for i in 0..N {
        pin.toggle();
        if i % 100 == 0 {
            seen = drain(&tail).last().map_or(seen, |e| e.seq);
        }
    }
    assert!(
        wait_until(SOON, || {
            seen = drain(&tail).last().map_or(seen, |e| e.seq);
            seen == N
        }),
        "the keeping-up reader saw only up to {seen}"
    );
    let evs = drain(&fd);
    let n = evs.len() as u64;
    println!(
        "overflowed queue holds {n} events: SEQNO {}..={}",
        evs[0].seq,
        evs[evs.len() - 1].seq
    );
    assert!(n >= 1024, "the queue holds at least 1024 events, got {n}");
    assert!(n < N, "nothing was dropped from a {N}-edge burst");
    assert_eq!(evs[evs.len() - 1].seq, N, "the newest event was dropped");
    assert!(
        evs[0].seq > 1,
        "the oldest events should be the ones dropped"
    );
    for w in evs.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq + 1,
            "the kept events are the newest, in order"
        );
    }
    // The stream goes on normally after the overflow.
    pin.toggle();
    assert_eq!(read_n(&fd, 1)[0].seq, N + 1);
}

#[test]
fn events_eof_and_pollhup_after_unexport() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "none");
    let blocked = pin.open("events", libc::O_RDONLY);
    let later = pin.open("events", libc::O_RDONLY);
    let polled = pin.open("events", libc::O_RDONLY | libc::O_NONBLOCK);
    let raw = blocked.0;
    let reader = thread::spawn(move || {
        let mut buf = [0u8; 256];
        let t = Instant::now();
        let r = unsafe { libc::read(raw, buf.as_mut_ptr().cast(), buf.len()) };
        (r, Errno::last(), t.elapsed())
    });
    let praw = polled.0;
    let poller = thread::spawn(move || poll_one(praw, libc::POLLIN, 5000));
    thread::sleep(Duration::from_millis(200));
    assert!(
        !reader.is_finished(),
        "read of an empty stream did not block"
    );
    m.put("unexport", &INPUT.to_string());
    let (r, errno, took) = reader.join().unwrap();
    assert_eq!(r, 0, "blocked reader after unexport: {r} ({errno:?})");
    println!("blocked reader got EOF {took:?} after it started");
    let r = poller.join().unwrap();
    assert!(
        r & libc::POLLHUP != 0,
        "blocked poll after unexport: {}",
        poll_names(r)
    );
    // Later reads and polls.
    assert_eq!(later.read(256).want_ok(), b"");
    assert_eq!(later.read(256).want_ok(), b"");
    let r = poll_one(later.0, libc::POLLIN, 0);
    assert!(
        r & libc::POLLHUP != 0,
        "poll after unexport: {}",
        poll_names(r)
    );
    assert_eq!(polled.read(256).want_ok(), b"", "O_NONBLOCK read at EOF");
}

#[test]
fn events_eof_after_unmount() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "none");
    let fd = pin.open("events", libc::O_RDONLY);
    let raw = fd.0;
    let reader = thread::spawn(move || {
        let mut buf = [0u8; 256];
        let r = unsafe { libc::read(raw, buf.as_mut_ptr().cast(), buf.len()) };
        (r, Errno::last())
    });
    thread::sleep(Duration::from_millis(200));
    drop(pin);
    let status = m.signal_and_wait(libc::SIGTERM);
    let (r, errno) = reader.join().unwrap();
    assert_eq!(r, 0, "blocked reader at unmount: {r} ({errno:?})");
    assert!(
        status.is_some_and(|s| s.success()),
        "gpiofs exit: {status:?}"
    );
    drop(fd);
}

#[test]
fn blocking_value_waits_for_the_next_counted_edge() {
    let Some(m) = mount(&["--sim", "demo:32", "--blocking-value"]) else {
        return;
    };
    let pin = Pin::demo(&m, "rising");
    let fd = pin.open("value", libc::O_RDONLY);
    // The first read never blocks.
    let t = Instant::now();
    assert_eq!(fd.pread(64, 0).want_ok(), b"0\n");
    assert!(t.elapsed() < Duration::from_secs(1));
    // A read past the end does not block either (cat's second read).
    assert_eq!(fd.pread(64, 2).want_ok(), b"");
    // The next read at 0 waits for a counted edge.
    let (data, _) = blocking_read_across_edge(&pin, &fd, false, 64);
    assert_eq!(data, b"1\n");

    // An uncounted edge (falling, with edge=rising) does not release it.
    let raw = fd.0;
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        let mut buf = [0u8; 64];
        let r = unsafe { libc::pread(raw, buf.as_mut_ptr().cast(), 64, 0) };
        let _ = tx.send(());
        (r, buf)
    });
    thread::sleep(Duration::from_millis(100));
    pin.pull(false);
    assert!(
        rx.recv_timeout(QUIET).is_err(),
        "--blocking-value read returned on an uncounted edge"
    );
    let (_, edge) = {
        let trigger = pin.toggle_later(Duration::from_millis(10));
        ((), trigger.join().unwrap())
    };
    let (r, buf) = reader.join().unwrap();
    let done = now_ns();
    assert_eq!(r, 2);
    assert_eq!(&buf[..2], b"1\n");
    assert!(done >= edge);

    // An edge that came before the read: returns at once.
    pin.toggle(); // falling: not counted
    pin.toggle(); // rising: counted
    let t = Instant::now();
    assert!(wait_until(SOON, || poll_one(fd.0, libc::POLLPRI, 0) != 0));
    assert_eq!(fd.pread(64, 0).want_ok(), b"1\n");
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn blocking_value_nonblock_and_cat() {
    let Some(m) = mount(&["--sim", "demo:32", "--blocking-value"]) else {
        return;
    };
    let pin = Pin::demo(&m, "both");
    let fd = pin.open("value", libc::O_RDONLY | libc::O_NONBLOCK);
    assert_eq!(fd.pread(64, 0).want_ok(), b"0\n");
    fd.pread(64, 0).want_err(libc::EAGAIN);
    fd.seek(0).unwrap();
    fd.read(64).want_err(libc::EAGAIN);
    pin.toggle();
    assert!(wait_until(SOON, || poll_one(fd.0, libc::POLLPRI, 0) != 0));
    assert_eq!(fd.pread(64, 0).want_ok(), b"1\n");
    fd.pread(64, 0).want_err(libc::EAGAIN);
    // `cat value` (open, read, read to EOF, close) never blocks.
    let t = Instant::now();
    let out = m.sh_ok(&format!("cat gpio{INPUT}/value; cat gpio{INPUT}/value"));
    assert_eq!(out, "1\n1\n");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "cat took {:?}",
        t.elapsed()
    );
    // Without the flag, nothing blocks (checked in the other suites); and
    // files other than value never block.
    let dir = pin.open("direction", libc::O_RDONLY);
    assert_eq!(dir.pread(64, 0).want_ok(), b"in\n");
    assert_eq!(dir.pread(64, 0).want_ok(), b"in\n");
}

#[test]
fn value_never_blocks_without_the_flag() {
    let Some(m) = mount(DEMO) else { return };
    let pin = Pin::demo(&m, "both");
    let fd = pin.open("value", libc::O_RDONLY);
    let t = Instant::now();
    for _ in 0..5 {
        assert_eq!(fd.pread(64, 0).want_ok(), b"0\n");
    }
    assert!(t.elapsed() < Duration::from_secs(1));
}
