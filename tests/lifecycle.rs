//! Starting and stopping the daemon: signals, the mount point, CLI errors.

mod common;

use std::process::ExitStatus;

use common::*;

#[track_caller]
fn assert_clean_exit(m: &Mount, sig: libc::c_int, status: Option<ExitStatus>) {
    let status = status.unwrap_or_else(|| {
        panic!(
            "gpiofs did not exit within {START_TIMEOUT:?} of signal {sig}; log:\n{}",
            m.log_text()
        )
    });
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after signal {sig}: {status}; log:\n{}",
        m.log_text()
    );
    assert!(
        !is_mounted(m.path()),
        "{} still mounted after gpiofs exited",
        m.path().display()
    );
}

#[test]
fn sigterm_unmounts_and_exits_0() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.put("gpio512/direction", "high");
    let status = m.signal_and_wait(libc::SIGTERM);
    assert_clean_exit(&m, libc::SIGTERM, status);
}

#[test]
fn sigint_unmounts_and_exits_0() {
    let Some(m) = mount(DEMO) else { return };
    let status = m.signal_and_wait(libc::SIGINT);
    assert_clean_exit(&m, libc::SIGINT, status);
}

#[test]
fn sigterm_with_an_open_file_still_exits() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    let fd = m.open("gpio512/value", libc::O_RDONLY).unwrap();
    assert_eq!(fd.read_to_end().unwrap(), "0\n");
    let status = m.signal_and_wait(libc::SIGTERM);
    // The mount is gone even though a file was still open (lazy unmount
    // or equivalent); the fd now fails instead of hanging.
    assert_clean_exit(&m, libc::SIGTERM, status);
    drop(fd);
}

#[test]
fn missing_mountpoint_is_created() {
    if !fuse_usable() {
        return;
    }
    let m = Mount::start(DEMO, false);
    let (kind, _) = m.mode("");
    assert_eq!(kind, libc::S_IFDIR);
    assert_eq!(m.get("gpiochip512/base"), "512\n");
    let status = m.signal_and_wait(libc::SIGTERM);
    assert_clean_exit(&m, libc::SIGTERM, status);
}

/// Runs gpiofs with `args`, expecting it to refuse to start. Returns its
/// output. Cleans up if it mounted anyway.
fn expect_startup_failure(args: &[&str]) -> String {
    let dir = TempDir::new();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let log = dir.path().join("log");
    let mut child = spawn_daemon(args, &mnt, &log);
    let status = wait_timeout(&mut child, START_TIMEOUT);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        detach_mounts_under(&mnt);
        panic!("gpiofs {args:?} kept running; expected a startup error. Output:\n{text}");
    };
    let mounted = is_mounted(&mnt);
    detach_mounts_under(&mnt);
    assert!(!mounted, "gpiofs {args:?} left a mount behind");
    assert!(
        !status.success(),
        "gpiofs {args:?} exited successfully; expected failure. Output:\n{text}"
    );
    text
}

/// A boot-time service may start before the GPIO driver probes: with no
/// chip, gpiofs still mounts, says it waits (and how to try without
/// hardware), and serves an empty class directory.
#[test]
fn without_gpio_chips_it_mounts_and_waits() {
    let has_chips = std::fs::read_dir("/dev")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("gpiochip"))
        })
        .unwrap_or(false);
    assert!(
        !has_chips,
        "this test needs a host without GPIO chips (the VM suite covers chips appearing later)"
    );
    let m = mount(&[]).expect("FUSE must be usable");
    let text = m.log_text();
    assert!(
        text.contains("no GPIO chips yet") && text.contains("--sim"),
        "the log should say it waits for chips and point at --sim; it was:\n{text}"
    );
    let mut names: Vec<String> = std::fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["export", "unexport"]);
    let status = m.signal_and_wait(libc::SIGTERM);
    assert_clean_exit(&m, libc::SIGTERM, status);
}

#[test]
fn bad_sim_specs_are_refused() {
    if !fuse_usable() {
        return;
    }
    for args in [
        &["--sim", "demo"][..],
        &["--sim", "demo:0"],
        &["--sim", "demo:x"],
        &["--sim", "demo:4,demo:4"],
        &["--sim", "demo:4", "--sim-wire", "512"],
        &["--sim", "demo:4", "--sim-wire", "512:999"],
        &["--sim", "demo:4", "--no-such-option"],
    ] {
        let text = expect_startup_failure(args);
        assert!(!text.trim().is_empty(), "{args:?} failed silently");
    }
}

#[test]
fn verbosity_and_consumer_options_are_accepted() {
    for args in [
        &["--sim", "demo:4", "-v"][..],
        &["--sim", "demo:4", "-q"],
        &["--sim", "demo:4", "--consumer", "my-gpiofs"],
    ] {
        let Some(m) = mount(args) else { return };
        m.put("export", "512");
        assert_eq!(m.get("gpio512/direction"), "in\n");
        let status = m.signal_and_wait(libc::SIGTERM);
        assert_clean_exit(&m, libc::SIGTERM, status);
    }
}

/// `--auto-unmount`: the mount must go away even when the daemon cannot
/// clean up (SIGKILL).
#[test]
fn auto_unmount_removes_the_mount_after_sigkill() {
    let Some(m) = mount(&["--sim", "demo:4", "--auto-unmount"]) else {
        return;
    };
    m.put("export", "512");
    assert_eq!(m.get("gpio512/direction"), "in\n");
    let status = m.signal_and_wait(libc::SIGKILL);
    assert!(status.is_some(), "gpiofs survived SIGKILL");
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    while is_mounted(m.path()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        !is_mounted(m.path()),
        "{} still mounted {START_TIMEOUT:?} after gpiofs was killed",
        m.path().display()
    );
}
