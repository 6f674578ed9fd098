//! mqtts:// with a CA file, a username and a password.

mod common;

use std::time::Duration;

use common::*;

const PINS: &str =
    "[[input]]\nline = 512\nname = \"door\"\n[[output]]\nline = 528\nname = \"relay\"\n";

fn tls_rig(tag: &str) -> (TempDir, Broker, Mount) {
    let dir = TempDir::new(tag);
    let broker = Broker::start_tls(dir.path());
    let mount = Mount::start(dir.path());
    (dir, broker, mount)
}

#[test]
fn events_and_commands_over_tls_with_a_password() {
    let (dir, broker, mount) = tls_rig("tls");
    let bridge = Bridge::start(dir.path(), &config(&broker, &mount, "", PINS));
    bridge.wait_log("connected to mqtts://127.0.0.1");
    let sub = Subscriber::new(&broker, "tls-sub", "gpiofs/testnode/#");
    for i in 0..10 {
        mount.pull(512, i % 2 == 0);
    }
    let seqs: Vec<u64> = (0..10)
        .map(|_| parse_event(&sub.expect("gpiofs/testnode/door/event")).seq)
        .collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    sub.publish("gpiofs/testnode/relay/set", "ON");
    assert_eq!(sub.expect("gpiofs/testnode/relay/state"), "ON");
    assert_eq!(mount.wire(528), "1");
}

#[test]
fn a_wrong_password_keeps_the_bridge_retrying_and_logs_once() {
    let (dir, broker, mount) = tls_rig("tls-pw");
    let config = config(&broker, &mount, "", PINS).replace("s3cret", "wrong");
    let mut bridge = Bridge::start(dir.path(), &config);
    bridge.wait_log("cannot reach the broker");
    std::thread::sleep(Duration::from_secs(2));
    let log = bridge.log();
    assert_eq!(log.matches("cannot reach the broker").count(), 1, "{log}");
    assert!(
        log.contains("NotAuthorized") || log.contains("BadUserNamePassword"),
        "{log}"
    );
    assert!(
        bridge.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the bridge exited"
    );
}
