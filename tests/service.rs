//! Running as a service: systemd's readiness protocol and --pi-numbers.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn pi_numbers_give_the_pi_controller_base_0() {
    let args = ["--sim", "expander:16,pinctrl-bcm2711:58", "--pi-numbers"];
    let Some(m) = mount(&args) else { return };
    assert_eq!(m.get("gpiochip0/label"), "pinctrl-bcm2711\n");
    assert_eq!(m.get("gpiochip0/ngpio"), "58\n");
    assert_eq!(m.get("gpiochip512/label"), "expander\n");
    m.put("export", "17");
    m.put("gpio17/direction", "high");
    assert_eq!(m.get("gpio17/value"), "1\n");
    assert!(m.log_text().contains("pinctrl-bcm2711 has base 0"));
}

#[test]
fn pi_numbers_fail_clearly_without_a_pi_controller() {
    if !fuse_usable() {
        return;
    }
    let dir = TempDir::new();
    let mnt = dir.path().join("mnt");
    let log = dir.path().join("log");
    let mut child = spawn_daemon(&["--sim", "demo:8", "--pi-numbers"], &mnt, &log);
    let status = wait_timeout(&mut child, START_TIMEOUT);
    let output = std::fs::read_to_string(&log).unwrap();
    if status.is_none() {
        let _ = child.kill();
        panic!("gpiofs --pi-numbers started without a Pi controller; log:\n{output}");
    }
    assert_eq!(status.unwrap().code(), Some(1), "{output}");
    assert!(output.contains("not a Raspberry Pi"), "{output}");
    assert!(output.contains("pinctrl-bcm2835"), "{output}");
}

#[test]
fn systemd_hears_ready_once_mounted_and_stopping_at_shutdown() {
    if !fuse_usable() {
        return;
    }
    let dir = TempDir::new();
    let mnt = dir.path().join("mnt");
    let socket_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(START_TIMEOUT)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gpiofs"))
        .args(DEMO)
        .arg(&mnt)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let receive = |buf: &mut [u8]| {
        let n = socket.recv(buf).expect("no message from gpiofs");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = receive(&mut buf);
    let mounted = is_fuse(&mnt);
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let stopping = receive(&mut buf);
    let status = wait_timeout(&mut child, Duration::from_secs(5));
    if status.is_none() {
        let _ = child.kill();
    }
    assert!(ready.starts_with("READY=1\n"), "first message: {ready:?}");
    assert!(mounted, "READY=1 came before the tree was mounted");
    assert_eq!(stopping, "STOPPING=1");
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}
