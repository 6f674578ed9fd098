//! A mosquitto on 127.0.0.1 for the tests, plain or TLS.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use super::{START, free_port, need, stop_child};

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
