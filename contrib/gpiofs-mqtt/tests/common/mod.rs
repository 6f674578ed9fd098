//! Harness for the gpiofs-mqtt tests: a real mosquitto on 127.0.0.1 (a
//! free port, optionally TLS with a CA made by openssl and a password
//! file), a gpiofs `--sim` mount, the bridge, and an MQTT subscriber.
//!
//! Needs root, /dev/fuse, `mosquitto`, `mosquitto_passwd` and `openssl`
//! (tests/run-all.sh installs them), and the gpiofs binary of the root
//! package next to this test's target directory (`target/release/gpiofs`
//! for `cargo test --release --workspace`, which builds it), or wherever
//! `GPIOFS_BIN` says. Anything missing fails the test loudly.

#![allow(dead_code)]

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};

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

fn stop_child(child: &mut Child, signal: i32) {
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

/// TLS material for a broker on 127.0.0.1.
pub struct Tls {
    pub ca: PathBuf,
    pub user: &'static str,
    pub password: &'static str,
}

/// A mosquitto on 127.0.0.1, stopped on drop.
pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    conf: PathBuf,
    child: Option<Child>,
    pub tls: Option<Tls>,
}

impl Broker {
    /// Plain MQTT, anonymous, with persistence (so that a restart keeps
    /// retained messages and persistent sessions, as a real broker does).
    pub fn start(dir: &Path) -> Broker {
        Broker::launch(dir, false)
    }

    /// mqtts:// with a CA made here, and a password file (no anonymous).
    pub fn start_tls(dir: &Path) -> Broker {
        Broker::launch(dir, true)
    }

    fn launch(dir: &Path, tls: bool) -> Broker {
        need("mosquitto", "mosquitto");
        let dir = dir.join("broker");
        fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        // No limit on what waits for an offline persistent subscriber
        // (mosquitto keeps 1000 by default); stay root to read the files
        // made here (mosquitto would become user mosquitto).
        let mut conf = format!(
            "listener {port} 127.0.0.1\npersistence true\npersistence_location {}/\nmax_queued_messages 0\nuser root\n",
            dir.display()
        );
        let tls = tls.then(|| {
            let (ca, cert, key) = make_certs(&dir);
            let passwd = dir.join("passwd");
            let (user, password) = ("bridge", "s3cret");
            run(Command::new(need("mosquitto_passwd", "mosquitto"))
                .arg("-c")
                .arg("-b")
                .arg(&passwd)
                .args([user, password]));
            conf += &format!(
                "cafile {}\ncertfile {}\nkeyfile {}\npassword_file {}\nallow_anonymous false\n",
                ca.display(),
                cert.display(),
                key.display(),
                passwd.display()
            );
            Tls { ca, user, password }
        });
        if tls.is_none() {
            conf += "allow_anonymous true\n";
        }
        let conf_path = dir.join("mosquitto.conf");
        fs::write(&conf_path, conf).unwrap();
        let mut broker = Broker {
            port,
            dir,
            conf: conf_path,
            child: None,
            tls,
        };
        broker.restart();
        broker
    }

    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("mqtts://127.0.0.1:{}", self.port),
            None => format!("mqtt://127.0.0.1:{}", self.port),
        }
    }

    /// Starts the broker again on the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the broker is running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mosquitto.log"))
            .unwrap();
        let child = Command::new(need("mosquitto", "mosquitto"))
            .arg("-c")
            .arg(&self.conf)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + START;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen: {}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the broker with SIGTERM (it saves its state, as on a reboot).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, libc::SIGTERM);
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with openssl.
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = need("openssl", "openssl");
    let p = |name: &str| dir.join(name);
    run(Command::new(&openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=gpiofs-mqtt test CA",
        ])
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.pem")));
    run(Command::new(&openssl)
        .args([
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr")));
    fs::write(p("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    run(Command::new(&openssl)
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.pem"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-extfile")
        .arg(p("san.ext"))
        .arg("-out")
        .arg(p("server.pem")));
    (p("ca.pem"), p("server.pem"), p("server.key"))
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

/// A message as a subscriber saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
    /// CLOCK_MONOTONIC when it arrived, as in the events' ts_ns.
    pub at_ns: u64,
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// An MQTT subscriber on its own thread; it reconnects by itself.
pub struct Subscriber {
    pub rx: mpsc::Receiver<Seen>,
    client: Client,
}

impl Subscriber {
    /// Subscribes to `filter` (QoS 1) with a persistent session named
    /// `id`, so that nothing is lost while the broker restarts.
    pub fn new(broker: &Broker, id: &str, filter: &str) -> Subscriber {
        let mut options = MqttOptions::new(id, "127.0.0.1", broker.port);
        options
            .set_clean_session(false)
            .set_keep_alive(Duration::from_secs(5));
        if let Some(tls) = &broker.tls {
            options.set_credentials(tls.user, tls.password);
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
                ca: fs::read(&tls.ca).unwrap(),
                alpn: None,
                client_auth: None,
            }));
        }
        let (client, mut connection) = Client::new(options, 64);
        let (tx, rx) = mpsc::channel();
        let sub = client.clone();
        let filter = filter.to_string();
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = sub.try_subscribe(filter.as_str(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let seen = Seen {
                            topic: p.topic.clone(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                            at_ns: now_ns(),
                        };
                        if tx.send(seen).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        ready_rx
            .recv_timeout(START)
            .expect("the subscriber never got its SUBACK");
        Subscriber { rx, client }
    }

    /// The next message on `topic`, within `wait`.
    pub fn next_on(&self, topic: &str, wait: Duration) -> Option<Seen> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.rx.recv_timeout(left) {
                Ok(m) if m.topic == topic => return Some(m),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// The payload of the next message on `topic`, or a panic.
    #[track_caller]
    pub fn expect(&self, topic: &str) -> String {
        self.next_on(topic, START)
            .unwrap_or_else(|| panic!("nothing on {topic}"))
            .payload
    }

    /// Every message that arrives within `quiet` of the previous one.
    pub fn drain(&self, quiet: Duration) -> Vec<Seen> {
        std::iter::from_fn(|| self.rx.recv_timeout(quiet).ok()).collect()
    }

    pub fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .unwrap();
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.client.try_disconnect();
    }
}

/// One `event` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMsg {
    pub seq: u64,
    pub ts_ns: u64,
    pub rising: bool,
    pub value: u8,
}

#[track_caller]
pub fn parse_event(payload: &str) -> EventMsg {
    let v: serde_json::Value =
        serde_json::from_str(payload).unwrap_or_else(|e| panic!("{payload:?}: {e}"));
    let edge = v["edge"].as_str().unwrap();
    assert!(edge == "rising" || edge == "falling", "{payload}");
    EventMsg {
        seq: v["seq"].as_u64().unwrap(),
        ts_ns: v["ts_ns"].as_u64().unwrap(),
        rising: edge == "rising",
        value: v["value"].as_u64().unwrap() as u8,
    }
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
