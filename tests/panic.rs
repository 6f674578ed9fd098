//! Defect 6 of issue 9: a panic anywhere in the daemon (say on a backend's
//! event thread) must not leave a mounted tree whose edges have stopped:
//! the process unmounts and exits non-zero, so a supervisor restarts it.
//! The daemon runs in-process (gpiofs::daemon) in a child copy of this
//! test binary, and a thread of it panics.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use gpiofs::daemon;

const CHILD_ENV: &str = "GPIOFS_PANIC_CHILD_MOUNT";
const TEST_NAME: &str = "a_panic_on_any_thread_unmounts_and_ends_the_process";

/// In the child: serve a simulated chip, then panic on another thread.
fn run_daemon_then_panic(mountpoint: PathBuf) -> ! {
    let config = daemon::Config {
        mountpoint: mountpoint.clone(),
        sim: vec!["demo:4".parse().unwrap()],
        consumer: "gpiofs".into(),
        ..Default::default()
    };
    thread::spawn(move || daemon::run(config));
    let deadline = Instant::now() + START_TIMEOUT;
    while !is_mounted(&mountpoint) {
        assert!(Instant::now() < deadline, "the daemon did not mount");
        thread::sleep(Duration::from_millis(5));
    }
    std::fs::write(mountpoint.join("export"), "512").unwrap();
    let _ = thread::spawn(|| panic!("injected panic")).join();
    // Reached only if the panic did not end the process.
    std::process::exit(0);
}

#[test]
fn a_panic_on_any_thread_unmounts_and_ends_the_process() {
    if let Some(mountpoint) = std::env::var_os(CHILD_ENV) {
        run_daemon_then_panic(mountpoint.into());
    }
    assert!(fuse_usable(), "this test needs FUSE and root");
    let dir = TempDir::new();
    let mnt = dir.path().join("mnt");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture"])
        .env(CHILD_ENV, &mnt)
        .spawn()
        .unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(30)).unwrap_or_else(|| {
        let _ = child.kill();
        detach_mounts_under(&mnt);
        panic!("the child kept running after its panic")
    });
    let mounted = is_mounted(Path::new(&mnt));
    detach_mounts_under(&mnt);
    assert!(!status.success(), "exit status after a panic: {status}");
    assert_eq!(status.signal(), Some(libc::SIGABRT), "status {status}");
    assert!(!mounted, "the mount outlived the panicking daemon");
}
