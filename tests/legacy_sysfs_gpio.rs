//! An unmodified legacy client: the `sysfs_gpio` crate, which hard-codes
//! /sys/class/gpio, runs against gpiofs mounted there inside a private
//! mount namespace (the host's /sys is never touched).
//!
//! The test re-runs this test binary as a child process whose mount
//! namespace is unshared before exec; in the child, the helper test
//! `legacy_client_body_in_private_namespace` does the work (run on its
//! own, without the marker variable, it does nothing).

mod common;

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use sysfs_gpio::{Direction, Edge, Pin};

const MARKER: &str = "GPIOFS_LEGACY_NAMESPACE_CHILD";
const CLASS: &str = "/sys/class/gpio";
const DONE: &str = "legacy sysfs_gpio client: all checks passed";

#[test]
fn sysfs_gpio_crate_works_unmodified() {
    if !fuse_usable() {
        return;
    }
    let host_mounts_before = mount_points();
    let host_had_class_gpio = Path::new(CLASS).exists();
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([
        "legacy_client_body_in_private_namespace",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(MARKER, "1")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // SAFETY: only a system call between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn namespace child");
    let status = wait_timeout(&mut child, Duration::from_secs(40));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = child.wait_with_output().expect("child output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- child stdout ---\n{stdout}\n--- child stderr ---\n{stderr}");
    assert!(status.is_some(), "namespace child hung (killed after 40 s)");
    assert!(
        status.unwrap().success(),
        "namespace child failed: {status:?}"
    );
    assert!(
        stdout.contains(DONE),
        "the child did not run the client body"
    );
    // The host saw nothing.
    assert_eq!(Path::new(CLASS).exists(), host_had_class_gpio);
    let new: Vec<String> = mount_points()
        .into_iter()
        .filter(|m| m.starts_with("/sys/class") && !host_mounts_before.contains(m))
        .collect();
    assert!(new.is_empty(), "host mount namespace changed: {new:?}");
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Stops the daemon when the body ends, even on panic.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
            if wait_timeout(&mut self.0, Duration::from_secs(5)).is_none() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
}

/// The body; does something only in the namespace child.
#[test]
fn legacy_client_body_in_private_namespace() {
    if std::env::var_os(MARKER).is_none() {
        return; // helper of sysfs_gpio_crate_works_unmodified
    }
    // Private propagation, then a tmpfs over /sys/class: the host's /sys
    // is unaffected even by accident.
    unsafe {
        let none = c("none");
        let root = c("/");
        assert_eq!(
            libc::mount(
                none.as_ptr(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null()
            ),
            0,
            "make / private: {:?}",
            Errno::last()
        );
        let tmpfs = c("tmpfs");
        let class = c("/sys/class");
        let opts = c("mode=0755");
        assert_eq!(
            libc::mount(
                tmpfs.as_ptr(),
                class.as_ptr(),
                tmpfs.as_ptr(),
                0,
                opts.as_ptr().cast()
            ),
            0,
            "tmpfs over /sys/class: {:?}",
            Errno::last()
        );
    }
    std::fs::create_dir(CLASS).expect("mkdir /sys/class/gpio");

    let log = std::fs::File::create("/sys/class/gpiofs.log").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gpiofs"));
    cmd.args(["--sim", "demo:32", "--sim-wire", "512:513", CLASS])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: only a system call between fork and exec; gpiofs dies with
    // this process, taking the namespace with it.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let _daemon = Daemon(cmd.spawn().expect("spawn gpiofs"));
    let deadline = Instant::now() + START_TIMEOUT;
    while !is_fuse(Path::new(CLASS)) {
        assert!(
            Instant::now() < deadline,
            "gpiofs did not mount at {CLASS}: {}",
            std::fs::read_to_string("/sys/class/gpiofs.log").unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(5));
    }
    println!("gpiofs mounted at {CLASS} in a private namespace");

    let out = Pin::new(512);
    let inp = Pin::new(513);
    assert!(!out.is_exported());
    out.export().expect("export 512");
    inp.export().expect("export 513");
    assert!(out.is_exported() && inp.is_exported());
    // Exporting again is a no-op for the crate.
    out.export().expect("export 512 again");

    out.set_direction(Direction::Out).expect("512 out");
    inp.set_direction(Direction::In).expect("513 in");
    assert_eq!(out.get_direction().unwrap(), Direction::Out);
    assert_eq!(inp.get_direction().unwrap(), Direction::In);
    inp.set_edge(Edge::BothEdges).expect("edge both");
    assert_eq!(inp.get_edge().unwrap(), Edge::BothEdges);
    assert!(!inp.get_active_low().unwrap());

    // Values written on 512 arrive on 513 through the simulated wire.
    for v in [1u8, 0, 1, 0] {
        out.set_value(v).expect("set 512");
        assert_eq!(out.get_value().unwrap(), v, "512 reads back");
        assert_eq!(inp.get_value().unwrap(), v, "513 follows 512");
    }
    // Direction High/Low set raw levels.
    out.set_direction(Direction::High).unwrap();
    assert_eq!(inp.get_value().unwrap(), 1);
    out.set_direction(Direction::Low).unwrap();
    assert_eq!(inp.get_value().unwrap(), 0);
    println!("values: ok");

    // Interrupts through the crate's epoll (EPOLLPRI|EPOLLET) poller.
    // (Let the edges above finish going through the daemon first.)
    thread::sleep(Duration::from_millis(100));
    let mut poller = inp.get_poller().expect("get_poller");
    assert_eq!(
        poller.poll(200).expect("poll"),
        None,
        "poller reported an interrupt without an edge"
    );
    // Edges made while poll() is blocked wake it. (An edge made before
    // poll() is not reported: the crate's poll() first reads the file,
    // and on sysfs any read of value consumes the pending event.)
    let mut poll_across_edge = |level: u8, timeout_ms: isize| {
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            Pin::new(512).set_value(level)
        });
        let got = poller.poll(timeout_ms).expect("poll");
        t.join().unwrap().expect("set 512 from a thread");
        got
    };
    let mut level = 0u8;
    for _ in 0..12 {
        level ^= 1;
        assert_eq!(
            poll_across_edge(level, 2000),
            Some(level),
            "poller woken by an edge to {level}"
        );
    }
    println!("poller saw 12 of 12 edges");

    // edge=rising: only rising edges interrupt.
    inp.set_edge(Edge::RisingEdge).unwrap();
    assert_eq!(poll_across_edge(1, 2000), Some(1));
    assert_eq!(
        poll_across_edge(0, 300),
        None,
        "falling edge with edge=rising"
    );
    assert_eq!(poll_across_edge(1, 2000), Some(1));
    assert_eq!(poller.poll(200).expect("poll"), None, "spurious interrupt");
    drop(poller);

    // with_exported exports and unexports around a closure.
    let spare = Pin::new(520);
    spare
        .with_exported(|| {
            assert!(spare.is_exported());
            spare.set_direction(Direction::Out)?;
            spare.set_value(1)?;
            assert_eq!(spare.get_value()?, 1);
            Ok(())
        })
        .expect("with_exported");
    assert!(!spare.is_exported());

    inp.unexport().expect("unexport 513");
    out.unexport().expect("unexport 512");
    assert!(!out.is_exported() && !inp.is_exported());
    println!("{DONE}");
}
