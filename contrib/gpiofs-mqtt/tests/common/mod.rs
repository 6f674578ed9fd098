//! Harness for the gpiofs-mqtt tests: a real mosquitto on 127.0.0.1 (a
//! free port, optionally TLS with a CA made by openssl and a password
//! file), a gpiofs `--sim` mount, the bridge, and an MQTT subscriber.
//!
//! Needs root, /dev/fuse, `mosquitto`, `mosquitto_passwd` and `openssl`
//! (tests/run-all.sh installs them), and the gpiofs binary of the root
//! package next to this test's target directory (`target/release/gpiofs`
//! for `cargo test --release --workspace`, which builds it), or wherever
//! `GPIOFS_BIN` says. Anything missing fails the test loudly.

// Each test binary uses a part of the harness.
#![allow(dead_code, unused_imports)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

mod broker;
mod subscriber;

pub use broker::*;
pub use subscriber::*;

pub const START: Duration = Duration::from_secs(10);

/// The simulated chip: 32 lines from 512; output 528 drives input 529.
pub const SIM: &[&str] = &["--sim", "demo:32", "--sim-wire", "528:529"];
pub const WIRED_OUTPUT: u32 = 528;
pub const WIRED_INPUT: u32 = 529;
pub const BASE: u32 = 512;

/// A fresh directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "gpiofs-mqtt-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A program the tests need, or a loud failure naming the package.
pub fn need(program: &str, package: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain([
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
    ]) {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!("{program} is missing: apt-get install {package} (tests/run-all.sh does)");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn stop_child(child: &mut Child, signal: i32) {
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    unsafe { libc::kill(child.id() as i32, signal) };
    let deadline = Instant::now() + START;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// target/<profile>/: tests run from its deps/, examples from its examples/.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_owned()
}

/// The bridge binary (cargo names it to tests; examples find it beside).
pub fn bridge_bin() -> PathBuf {
    let bin = option_env!("CARGO_BIN_EXE_gpiofs-mqtt")
        .map_or_else(|| profile_dir().join("gpiofs-mqtt"), PathBuf::from);
    assert!(
        bin.is_file(),
        "{} is missing: cargo build --release --workspace --bins",
        bin.display()
    );
    bin
}

/// The gpiofs binary of the root package.
pub fn gpiofs_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("GPIOFS_BIN") {
        return bin.into();
    }
    let bin = profile_dir().join("gpiofs");
    assert!(
        bin.is_file(),
        "{} is missing: build it (cargo build --release -p gpiofs; cargo test --workspace builds it) or set GPIOFS_BIN",
        bin.display()
    );
    bin
}

/// A gpiofs `--sim` mount, unmounted on drop.
pub struct Mount {
    pub path: PathBuf,
    child: Child,
}

impl Mount {
    pub fn start(dir: &Path) -> Mount {
        assert!(
            Path::new("/dev/fuse").exists(),
            "gpiofs-mqtt tests need /dev/fuse"
        );
        // SAFETY: geteuid(2) has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "gpiofs-mqtt tests need root (FUSE mounts)"
        );
        let path = dir.join("gpio");
        fs::create_dir_all(&path).unwrap();
        let log = fs::File::create(dir.join("gpiofs.log")).unwrap();
        let child = Command::new(gpiofs_bin())
            .args(SIM)
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start gpiofs");
        let deadline = Instant::now() + START;
        while !path.join("export").exists() {
            assert!(
                Instant::now() < deadline,
                "gpiofs did not mount: {}",
                fs::read_to_string(dir.join("gpiofs.log")).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(20));
        }
        Mount { path, child }
    }

    /// Drives simulated input `gpio` high or low (one edge if it changes).
    pub fn pull(&self, gpio: u32, high: bool) {
        let file = pull_file(&self.path, gpio);
        fs::write(&file, if high { "pull-up" } else { "pull-down" })
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }

    /// The level on the simulated wire of `gpio`.
    pub fn wire(&self, gpio: u32) -> String {
        fs::read_to_string(
            self.path
                .join(format!("sim/demo/line{}/value", gpio - BASE)),
        )
        .unwrap()
        .trim()
        .to_string()
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path.join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
            .trim()
            .to_string()
    }

    pub fn write(&self, rel: &str, text: &str) {
        fs::write(self.path.join(rel), text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        stop_child(&mut self.child, libc::SIGTERM);
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .stderr(Stdio::null())
            .status();
    }
}

/// A running gpiofs-mqtt, stopped (SIGTERM) on drop.
pub struct Bridge {
    pub child: Option<Child>,
    log: PathBuf,
}

impl Bridge {
    /// Starts the bridge on `config` (TOML text).
    pub fn start(dir: &Path, config: &str) -> Bridge {
        let file = dir.join("bridge.toml");
        fs::write(&file, config).unwrap();
        let log = dir.join("bridge.log");
        let err = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(bridge_bin())
            .arg("--config")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start gpiofs-mqtt");
        Bridge {
            child: Some(child),
            log,
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has `text`.
    pub fn wait_log(&self, text: &str) {
        let deadline = Instant::now() + START;
        while !self.log().contains(text) {
            assert!(
                Instant::now() < deadline,
                "the bridge never logged {text:?}:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it with `signal`; returns the exit status's code.
    pub fn stop(&mut self, signal: i32) -> Option<i32> {
        let mut child = self.child.take()?;
        stop_child(&mut child, signal);
        child.wait().ok()?.code()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop(libc::SIGTERM);
    }
}

/// A config for `broker` and `mount`; `pins` is TOML for [[input]] and
/// [[output]] tables.
pub fn config(broker: &Broker, mount: &Mount, extra: &str, pins: &str) -> String {
    let mut broker_table = format!("[broker]\nurl = \"{}\"\n", broker.url());
    if let Some(tls) = &broker.tls {
        broker_table += &format!(
            "ca_file = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\n",
            tls.ca.display(),
            tls.user,
            tls.password
        );
    }
    format!(
        "node_id = \"testnode\"\ntree = \"{}\"\n{extra}\n{broker_table}\n{pins}",
        mount.path.display()
    )
}

/// Everything a test needs: a broker, a mount and a directory.
pub struct Rig {
    pub broker: Broker,
    pub mount: Mount,
    pub dir: TempDir,
}

impl Rig {
    pub fn new(tag: &str) -> Rig {
        let dir = TempDir::new(tag);
        Rig {
            broker: Broker::start(dir.path()),
            mount: Mount::start(dir.path()),
            dir,
        }
    }

    pub fn bridge(&self, extra: &str, pins: &str) -> Bridge {
        let b = Bridge::start(
            self.dir.path(),
            &config(&self.broker, &self.mount, extra, pins),
        );
        b.wait_log("connected to");
        b
    }
}

/// The `pull` file that drives simulated input `gpio` of a mount at `path`.
pub fn pull_file(path: &Path, gpio: u32) -> PathBuf {
    path.join(format!("sim/demo/line{}/pull", gpio - BASE))
}

/// Makes `count` edges on `gpio` (starting with a rising one), one every
/// `gap`, on another thread.
pub fn edges_in_background(
    mount: &Mount,
    gpio: u32,
    count: usize,
    gap: Duration,
) -> thread::JoinHandle<()> {
    let file = pull_file(&mount.path, gpio);
    thread::spawn(move || {
        for i in 0..count {
            fs::write(&file, if i % 2 == 0 { "pull-up" } else { "pull-down" }).unwrap();
            thread::sleep(gap);
        }
    })
}

/// Checks that event seqs run 1.. with no gap, allowing re-sent
/// duplicates (MQTT at-least-once across a reconnect); returns the highest
/// seq and how many duplicates came.
#[track_caller]
pub fn check_no_gap(seqs: &[u64], first: u64) -> (u64, usize) {
    let mut max = first - 1;
    let mut duplicates = 0;
    for (i, &seq) in seqs.iter().enumerate() {
        if seq <= max {
            duplicates += 1;
        } else {
            assert_eq!(
                seq,
                max + 1,
                "gap before message {i}: {:?}",
                &seqs[i.saturating_sub(3)..(i + 3).min(seqs.len())]
            );
            max = seq;
        }
    }
    (max, duplicates)
}
