//! Issue 9: one test per defect found by fault, race, load and abuse
//! testing. Each failed before its fix. Measured numbers are printed (run
//! with --nocapture); only sizes and correctness are asserted, never times
//! beyond hang guards.

mod common;
mod notify_common;
mod reliability_common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use notify_common::*;
use reliability_common::*;

/// Defect 1: a `value` file left open across unexport + re-export, then
/// `touch_new` (a stat of the new file, or an edge on the new line).
/// Kernel: read/write ENODEV, fstat and close succeed.
fn open_file_across_reexport(touch_new: impl FnOnce(&Mount)) {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "517");
    let fd = m.open("gpio517/value", libc::O_RDWR).want_ok();
    assert_eq!(fd.pread(16, 0).want_ok(), b"0\n");
    m.put("unexport", "517");
    m.put("export", "517");
    touch_new(&m);
    let read = fd
        .pread(16, 0)
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let write = fd.pwrite(b"1", 0);
    let fstat = fstat_fd(&fd).map(|_| ());
    let close = close_checked(fd);
    assert_eq!(
        (read, write, fstat, close),
        (
            Err(Errno(libc::ENODEV)),
            Err(Errno(libc::ENODEV)),
            Ok(()),
            Ok(())
        ),
        "(read, write, fstat, close) of the old file"
    );
    // The new file works.
    assert!(matches!(m.get("gpio517/value").as_str(), "0\n" | "1\n"));
    m.assert_answers("a file held across re-export");
}

#[test]
fn file_held_across_reexport_then_stat_gives_enodev_and_closes() {
    open_file_across_reexport(|m| {
        m.stat("gpio517/value").want_ok();
    });
}

#[test]
fn file_held_across_reexport_then_an_edge_gives_enodev_and_closes() {
    open_file_across_reexport(|m| {
        m.put("gpio517/edge", "both");
        let mut line = SimLine::new(m, "demo", 5);
        line.toggle();
        // Let the daemon react to the edge (notifications go out async).
        thread::sleep(Duration::from_millis(200));
    });
}

/// Defect 2: while other threads export and unexport lines, every entry
/// present for a whole listing is listed exactly once.
#[test]
fn readdir_lists_stable_entries_exactly_once_during_export_churn() {
    const LINES: u32 = 4096;
    const LISTINGS: usize = 60;
    let Some(m) = mount(&["--sim", "big:4096"]) else {
        return;
    };
    let mut stable: Vec<String> = ["export", "unexport", "gpiochip512", "sim"]
        .map(String::from)
        .to_vec();
    for global in (512..512 + LINES).step_by(8) {
        m.put("export", &global.to_string());
        stable.push(format!("gpio{global}"));
    }
    stable.sort();
    let stop = Arc::new(AtomicBool::new(false));
    let churned = Arc::new(AtomicU64::new(0));
    let churners: Vec<_> = (0..3u32)
        .map(|t| {
            let (stop, churned) = (stop.clone(), churned.clone());
            let (export, unexport) = (m.p("export"), m.p("unexport"));
            thread::spawn(move || {
                // Every line that is not a multiple of 8, in slices per thread.
                let lines: Vec<u32> = (512 + t..512 + LINES)
                    .step_by(3)
                    .filter(|g| (g - 512) % 8 != 0)
                    .collect();
                while !stop.load(Ordering::Relaxed) {
                    for chunk in lines.chunks(64) {
                        for file in [&export, &unexport] {
                            for g in chunk {
                                let _ = std::fs::write(file, g.to_string());
                            }
                        }
                        churned.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    let (mut bad, mut examples) = (0, Vec::new());
    for _ in 0..LISTINGS {
        let listing = list_names(m.path()).want_ok();
        let (missing, duplicated) = listing_anomalies(&listing, &stable);
        if !missing.is_empty() || !duplicated.is_empty() {
            bad += 1;
            if examples.len() < 3 {
                let few = |v: &[String]| v.iter().take(5).cloned().collect::<Vec<_>>();
                examples.push(format!(
                    "{} listed, {} missing (e.g. {:?}), {} twice (e.g. {:?})",
                    listing.len(),
                    missing.len(),
                    few(&missing),
                    duplicated.len(),
                    few(&duplicated)
                ));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in churners {
        c.join().unwrap();
    }
    println!(
        "{LISTINGS} listings during {} export+unexport pairs: {bad} with anomalies",
        churned.load(Ordering::Relaxed)
    );
    assert_eq!(
        bad, 0,
        "listings with missing or repeated entries: {examples:#?}"
    );
    m.assert_answers("readdir during export churn");
}

/// Defect 3: a second gpiofs on a live gpiofs mount refuses with a clear
/// error, and the first mount survives whatever happens to the second.
#[test]
fn second_instance_on_a_live_mount_is_refused_and_first_survives() {
    let Some(m) = mount(&["--sim", "first:4"]) else {
        return;
    };
    m.put("export", "512");
    m.put("gpio512/direction", "high");
    let logs = TempDir::new();
    let (refusal, text) =
        run_expecting_refusal(&["--sim", "second:4"], m.path(), &logs.path().join("log"));
    // The second one is gone (refused, or stopped with SIGTERM): the first
    // must still serve, with its output still driven high.
    let mut problems = Vec::new();
    if !m.alive() {
        problems.push(format!("the first gpiofs died; log:\n{}", m.log_text()));
    }
    if !is_fuse(m.path()) || !m.exists("sim/first") {
        problems.push(format!(
            "the first mount is gone: {:?}",
            list_names(m.path())
        ));
    } else {
        let driven = m.read("sim/first/line0/value");
        if driven.as_deref() != Ok("1\n") {
            problems.push(format!("the exported output is no longer high: {driven:?}"));
        }
    }
    let path = m.path().to_string_lossy().into_owned();
    let refused = matches!(refusal, Refusal::Exited(s) if !s.success()) && text.contains(&path);
    if !refused {
        problems.push(format!(
            "the second gpiofs should refuse naming {path}; it {refusal:?}; output:\n{text}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Defect 4: 10,000 open `events` files cost the daemon < 32 MiB, and
/// closing them gives the memory back (within 2 MiB of the baseline).
#[test]
fn open_events_files_memory_is_bounded_and_returned() {
    const FILES: usize = 10_000;
    const LIMIT_KIB: u64 = 32 * 1024;
    const SLACK_KIB: u64 = 2 * 1024;
    let Some(m) = mount(DEMO) else { return };
    raise_nofile(FILES as u64 + 1024);
    m.put("export", "517");
    let path = m.p("gpio517/events");
    // Warm up the daemon's threads and caches first.
    for _ in 0..200 {
        drop(Fd::open(&path, libc::O_RDONLY | libc::O_NONBLOCK).want_ok());
    }
    thread::sleep(Duration::from_millis(300));
    let baseline = rss_kib(m.pid());
    let fds: Vec<Fd> = (0..FILES)
        .map(|_| Fd::open(&path, libc::O_RDONLY | libc::O_NONBLOCK).want_ok())
        .collect();
    thread::sleep(Duration::from_millis(300));
    let open = rss_kib(m.pid());
    for fd in fds {
        close_checked(fd).want_ok();
    }
    // Releases reach the daemon asynchronously.
    let mut closed = rss_kib(m.pid());
    let deadline = Instant::now() + Duration::from_secs(5);
    while closed > baseline + SLACK_KIB && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        closed = rss_kib(m.pid());
    }
    println!(
        "daemon RSS: baseline {baseline} KiB, {FILES} events files open {open} KiB, \
         after close {closed} KiB"
    );
    assert!(
        open < LIMIT_KIB,
        "RSS with {FILES} open events files: {open} KiB (limit {LIMIT_KIB} KiB)"
    );
    assert!(
        closed <= baseline + SLACK_KIB,
        "RSS after closing them: {closed} KiB, baseline {baseline} KiB (slack {SLACK_KIB} KiB)"
    );
}

/// Defect 5: `umount MOUNT` from outside ends the daemon, every time.
#[test]
fn external_umount_ends_the_daemon() {
    const CYCLES: usize = 50;
    if !fuse_usable() {
        return;
    }
    let (mut left_running, mut bad_exit, mut left_mounted) = (0, Vec::new(), 0);
    for _ in 0..CYCLES {
        let dir = TempDir::new();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let log = dir.path().join("log");
        let mut child = spawn_daemon(&["--sim", "u:4"], &mnt, &log);
        let deadline = Instant::now() + START_TIMEOUT;
        while !is_fuse(&mnt) {
            if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "gpiofs did not mount; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(2));
        }
        let out = Command::new("umount")
            .arg(&mnt)
            .output()
            .expect("run umount");
        assert!(out.status.success(), "umount {}: {out:?}", mnt.display());
        match wait_timeout(&mut child, START_TIMEOUT) {
            Some(status) if status.code() == Some(0) => {}
            Some(status) => bad_exit.push(status),
            None => {
                left_running += 1;
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if is_mounted(&mnt) {
            left_mounted += 1;
        }
    }
    println!("{CYCLES} start/umount cycles: {left_running} daemons left running");
    assert_eq!(
        (left_running, bad_exit, left_mounted),
        (0, vec![], 0),
        "(daemons still running {START_TIMEOUT:?} after umount, bad exits, mounts left)"
    );
}

/// Edges of the usual input (offset 5 of `demo`), made as fast as the
/// simulator's pull file takes them; waits until `tail` saw the last.
fn burst(m: &Mount, tail: &Tail, edges: u64) {
    let mut line = SimLine::new(m, "demo", INPUT_OFFSET);
    for _ in 0..edges {
        line.toggle();
    }
    tail.wait_for(edges);
}

/// Reads a blocking `events` fd in `size`-byte reads while it polls
/// readable.
fn drain_in_pieces(fd: &Fd, size: usize) -> Vec<Event> {
    let mut evs = Vec::new();
    while poll_one(fd.0, libc::POLLIN, 0) != 0 {
        match fd.read(size) {
            Ok(b) if b.is_empty() => break,
            Ok(b) => evs.extend(parse_events(&b)),
            Err(e) if e.0 == libc::EAGAIN => break,
            Err(e) => panic!("read events: {e:?}"),
        }
    }
    evs
}

const BURST: u64 = 4000;

/// Defect 8: readers blocked in read() (with a large and a 64-byte buffer)
/// when a burst comes: after the read the burst woke, each keeps the
/// newest events with a gap.
#[test]
fn overflow_keeps_newest_for_readers_blocked_in_read() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "517");
    let tail = Tail::start(&m.p("gpio517/events"));
    let readers: Vec<_> = [65536usize, 64]
        .into_iter()
        .map(|size| {
            let fd = m.open("gpio517/events", libc::O_RDONLY).want_ok();
            let (tx, rx) = std::sync::mpsc::channel();
            let reader = thread::spawn(move || {
                tx.send(unsafe { libc::gettid() }).unwrap();
                let first = parse_events(&fd.read(size).want_ok());
                (fd, first)
            });
            wait_blocked_in_read(rx.recv().unwrap());
            (size, reader)
        })
        .collect();
    burst(&m, &tail, BURST);
    for (size, reader) in readers {
        let (fd, first) = reader.join().unwrap();
        let after = first.last().map_or(0, |e| e.seq);
        let rest = drain_in_pieces(&fd, size);
        println!(
            "blocked reader ({size}-byte reads): woke with {} events, then {} events from {:?}",
            first.len(),
            rest.len(),
            rest.first().map(|e| e.seq)
        );
        if let Some(problem) = overflow_problem(&rest, after, BURST) {
            panic!("reader blocked in a {size}-byte read: {problem}");
        }
    }
}

/// Defect 8: slow readers that keep reading (blocking reads of 64 KiB and
/// of 64 bytes, 1 ms apart) through the burst: whatever they lose, SEQNOs only go up and
/// the last one read is the line's last edge.
#[test]
fn overflow_keeps_newest_for_readers_reading_through_the_burst() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "517");
    let tail = Tail::start(&m.p("gpio517/events"));
    let readers: Vec<_> = [65536usize, 64]
        .into_iter()
        .map(|size| {
            let fd = m.open("gpio517/events", libc::O_RDONLY).want_ok();
            let reader = thread::spawn(move || {
                let mut evs: Vec<Event> = Vec::new();
                while evs.last().is_none_or(|e| e.seq < BURST) {
                    let bytes = fd.read(size).want_ok();
                    if bytes.is_empty() {
                        break; // unexported: the newest never came
                    }
                    evs.extend(parse_events(&bytes));
                    thread::sleep(Duration::from_millis(1));
                }
                evs
            });
            (size, reader)
        })
        .collect();
    burst(&m, &tail, BURST);
    // A reader that lost the newest events would wait for ever: end it.
    if !wait_until(SOON, || readers.iter().all(|(_, r)| r.is_finished())) {
        m.put("unexport", "517");
    }
    for (size, reader) in readers {
        let evs = reader.join().unwrap();
        let lost = BURST - evs.len() as u64;
        println!(
            "reader of {size}-byte reads through the burst: read {} events, lost {lost}",
            evs.len()
        );
        if let Some(w) = evs.windows(2).find(|w| w[1].seq <= w[0].seq) {
            panic!(
                "{size}-byte reader: SEQNO went back from {} to {}",
                w[0].seq, w[1].seq
            );
        }
        assert_eq!(
            evs.last().map(|e| e.seq),
            Some(BURST),
            "{size}-byte reader did not end with the newest event"
        );
    }
}

fn stalled_readers_keep_newest(readers: usize, piece: usize) {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "517");
    let fds: Vec<Fd> = (0..readers)
        .map(|_| {
            m.open("gpio517/events", libc::O_RDONLY | libc::O_NONBLOCK)
                .want_ok()
        })
        .collect();
    let tail = Tail::start(&m.p("gpio517/events"));
    burst(&m, &tail, BURST);
    for (i, fd) in fds.iter().enumerate() {
        let evs = drain_in_pieces(fd, piece);
        if let Some(problem) = overflow_problem(&evs, 0, BURST) {
            panic!("stalled reader {i} of {readers} ({piece}-byte reads): {problem}");
        }
    }
}

/// Defect 8: one stalled non-blocking reader.
#[test]
fn overflow_keeps_newest_for_1_stalled_reader() {
    stalled_readers_keep_newest(1, 65536);
}

/// Defect 8: 50 stalled non-blocking readers.
#[test]
fn overflow_keeps_newest_for_50_stalled_readers() {
    stalled_readers_keep_newest(50, 65536);
}

/// Defect 8: a stalled reader that then reads in 64-byte pieces.
#[test]
fn overflow_keeps_newest_for_a_reader_using_64_byte_reads() {
    stalled_readers_keep_newest(1, 64);
}

/// Defect 9: labels that are path syntax are refused with a clear error.
#[test]
fn sim_labels_dot_dotdot_and_slash_are_refused() {
    if !fuse_usable() {
        return;
    }
    for spec in ["..:4", ".:4", "a/b:4"] {
        let dir = TempDir::new();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let (refusal, text) =
            run_expecting_refusal(&["--sim", spec], &mnt, &dir.path().join("log"));
        detach_mounts_under(&mnt);
        assert_refused(&format!("--sim {spec}"), &refusal, &text, &["label"]);
    }
}

/// Defect 9: a stale FUSE mount (its daemon was killed) as the mount
/// point: the error tells to umount it.
#[test]
fn stale_fuse_mountpoint_error_says_umount() {
    let Some(stale) = mount(DEMO) else { return };
    assert!(stale.signal_and_wait(libc::SIGKILL).is_some());
    stale.stat("").want_err(libc::ENOTCONN);
    let logs = TempDir::new();
    let (refusal, text) = run_expecting_refusal(DEMO, stale.path(), &logs.path().join("log"));
    assert_refused("stale mount point", &refusal, &text, &["umount"]);
}

/// Defect 9: a regular file as the mount point: "not a directory".
#[test]
fn regular_file_mountpoint_error_says_not_a_directory() {
    if !fuse_usable() {
        return;
    }
    let dir = TempDir::new();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let (refusal, text) = run_expecting_refusal(DEMO, &file, &dir.path().join("log"));
    detach_mounts_under(&file);
    assert_refused(
        "regular file as mount point",
        &refusal,
        &text,
        &["not a directory"],
    );
}

/// Defect 9: `--group` without `--allow-other` gives the group nothing:
/// the daemon warns.
#[test]
fn group_without_allow_other_warns() {
    let Some(m) = mount(&["--sim", "demo:4", "--group", "0"]) else {
        return;
    };
    let log = m.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("--allow-other")),
        "expected a warning naming --allow-other; log:\n{log}"
    );
}

/// Defect 9: a consumer name with control bytes, written to a simulator
/// `hog` file, reaches the log escaped.
#[test]
fn hog_consumer_with_control_bytes_is_logged_escaped() {
    let Some(m) = mount(DEMO) else { return };
    m.write("sim/demo/line3/hog", b"evil\x1b[2J\x07\r\x08name")
        .want_ok();
    // Exporting the hogged line logs who holds it.
    m.write("export", "515").want_err(libc::EBUSY);
    let text = m.log_text();
    let log = text.as_bytes();
    assert!(
        text.contains("evil"),
        "the holder was not logged:\n{text:?}"
    );
    let raw: Vec<u8> = strip_sgr(log)
        .into_iter()
        .filter(|&b| (b < 0x20 && b != b'\n') || b == 0x7f)
        .collect();
    assert!(
        raw.is_empty(),
        "raw control bytes {raw:02x?} in the log:\n{text:?}"
    );
}

/// Defect 7: 100 processes blocked in read() of `events` get EINTR from
/// every round of a handled SIGUSR1, and sleep interruptibly (S, never D)
/// while blocked between rounds.
#[test]
fn interrupted_blocked_readers_get_eintr_and_sleep_interruptibly() {
    const READERS: usize = 100;
    const ROUNDS: u32 = 20;
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "517");
    let readers = readers::BlockedReaders::spawn(&m.p("gpio517/events"), READERS, ROUNDS);
    let (mut latencies, mut not_sleeping, mut failure) = (Vec::new(), Vec::new(), None);
    for round in 0..ROUNDS {
        readers.wait_all_blocked();
        thread::sleep(Duration::from_millis(50));
        not_sleeping.extend(
            readers
                .states()
                .into_iter()
                .filter(|&(_, s)| s != 'S')
                .map(|(pid, s)| format!("round {round}: reader {pid} in state {s}")),
        );
        match readers.interrupt(round, Duration::from_secs(5)) {
            Ok(l) => latencies.extend(l),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let statuses = readers.finish();
    latencies.sort_unstable();
    if !latencies.is_empty() {
        println!(
            "{} interrupted reads of {READERS} readers: kill -> EINTR median {} µs, \
             p99 {} µs, max {} µs; {} samples not in S",
            latencies.len(),
            quantile_us(&latencies, 0.5),
            quantile_us(&latencies, 0.99),
            quantile_us(&latencies, 1.0),
            not_sleeping.len()
        );
    }
    assert_eq!(failure, None, "interrupted reads");
    assert!(
        not_sleeping.is_empty(),
        "blocked readers not in interruptible sleep: {} samples, e.g. {:?}",
        not_sleeping.len(),
        &not_sleeping[..not_sleeping.len().min(5)]
    );
    assert!(
        statuses.iter().all(|s| *s == Some(0)),
        "reader exits: {statuses:?}"
    );
    m.assert_answers("interrupting 100 blocked readers");
}
