//! SPEC §1 `gpio<N>/holders`: one line per process with a file of the line
//! open, `PID COMM`, gone when its last file of the line closes.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// A process that opens `files` of `dir` on descriptors 3, 4, ... and then
/// becomes `program` (so its COMM is the program's name), keeping them.
fn holder(dir: &std::path::Path, files: &[&str], program: &[&str]) -> Child {
    let redirections: Vec<String> = files
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{}<{}", i + 3, dir.join(f).display()))
        .collect();
    let script = format!("exec {} && exec \"$@\"", redirections.join(" "));
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script).arg("sh").args(program);
    cmd.stdin(Stdio::null());
    // Dies with the test, whatever happens to it.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn().expect("spawn holder")
}

/// The holders text as (pid, comm) rows: COMM is the rest of the line.
fn rows(m: &Mount, line: u32) -> Vec<(u32, String)> {
    m.get(&format!("gpio{line}/holders"))
        .lines()
        .map(|row| {
            let (pid, comm) = row.split_once(' ').expect("PID COMM");
            (pid.parse().expect("PID"), comm.to_string())
        })
        .collect()
}

/// Waits (bounded) until the holders of `line` are exactly `want`.
#[track_caller]
fn expect_rows(m: &Mount, line: u32, want: &[(u32, &str)]) {
    let want: Vec<(u32, String)> = want
        .iter()
        .map(|(pid, comm)| (*pid, comm.to_string()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = rows(m, line);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "gpio{line}/holders: want {want:?}, got {got:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn holders_lists_each_process_once_until_its_files_close() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "529");
    m.put("export", "530");
    assert_mode(&m, "gpio529/holders", libc::S_IFREG, 0o444);
    m.write("gpio529/holders", "1").want_err(libc::EACCES);
    // Nobody holds a file yet; reading holders is not holding.
    expect_rows(&m, 529, &[]);

    let dir = m.p("gpio529");
    // A command name with a space: COMM is the rest of the line, verbatim.
    let spaced = tempfile::tempdir().unwrap();
    let sleeper = spaced.path().join("gpio sleeper");
    std::fs::copy("/bin/sleep", &sleeper).unwrap();
    let sleeper = sleeper.to_str().unwrap();
    let a = holder(&dir, &["value", "events"], &["sleep", "60"]);
    let b = holder(&dir, &["direction"], &["tail", "-f", "/dev/null"]);
    let c = holder(&dir, &["value", "value", "edge"], &[sleeper, "60"]);
    // The per-chip ABI's files of the line are files of the line too.
    let d = holder(&m.p("chip0/gpio17"), &["value"], &["sleep", "60"]);
    let other = holder(&m.p("gpio530"), &["value"], &["sleep", "60"]);
    let mut all = vec![
        (a.id(), "sleep"),
        (b.id(), "tail"),
        (c.id(), "gpio sleeper"),
        (d.id(), "sleep"),
    ];
    all.sort();
    expect_rows(&m, 529, &all);
    expect_rows(&m, 530, &[(other.id(), "sleep")]);

    // Each drops out when it exits (its files close); the rest stay.
    for child in [b, a, d, c] {
        let pid = child.id();
        stop(child);
        all.retain(|&(p, _)| p != pid);
        expect_rows(&m, 529, &all);
    }
    expect_rows(&m, 529, &[]);
    expect_rows(&m, 530, &[(other.id(), "sleep")]);
    stop(other);
    expect_rows(&m, 530, &[]);
}

#[test]
fn files_opened_by_a_thread_belong_to_its_process() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "529");
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    let comm = comm.trim_end();
    let path = m.p("gpio529/value");
    let (opened, close) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let opener = thread::spawn(move || {
        let fd = Fd::open(&path, libc::O_RDONLY).want_ok();
        opened.0.send(()).unwrap();
        let _ = close.1.recv();
        drop(fd);
    });
    opened.1.recv().unwrap();
    expect_rows(&m, 529, &[(std::process::id(), comm)]);
    // A file closed by the process alone also ends its row.
    close.0.send(()).unwrap();
    opener.join().unwrap();
    expect_rows(&m, 529, &[]);
}

#[test]
fn holders_of_an_unexported_line_is_gone() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "529");
    let fd = m.open("gpio529/holders", libc::O_RDONLY).want_ok();
    assert_eq!(fd.read_to_end().want_ok(), "");
    m.put("unexport", "529");
    fd.pread(4096, 0).want_err(libc::ENODEV);
    assert!(!m.exists("gpio529/holders"));
}
