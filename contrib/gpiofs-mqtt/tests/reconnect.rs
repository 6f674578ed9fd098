//! The broker goes away and comes back; the bridge dies and comes back.

mod common;

use std::time::{Duration, Instant};

use common::*;

const DOOR: u32 = 512;
const EVENTS: &str = "gpiofs/testnode/door/event";
const STATUS: &str = "gpiofs/testnode/status";

fn door(extra: &str) -> String {
    format!("[[input]]\nline = {DOOR}\nname = \"door\"\n{extra}")
}

/// Collects event seqs (and status payloads) until `last` arrived.
fn collect_until(sub: &Subscriber, last: u64, seqs: &mut Vec<u64>, status: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while seqs.last() != Some(&last) {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| {
                panic!("stuck after {} events (last {:?})", seqs.len(), seqs.last())
            });
        match sub.rx.recv_timeout(left) {
            Ok(m) if m.topic == EVENTS => seqs.push(parse_event(&m.payload).seq),
            Ok(m) if m.topic == STATUS => status.push(m.payload),
            _ => {}
        }
    }
}

#[test]
fn a_broker_restart_mid_stream_loses_no_edge() {
    let mut rig = Rig::new("restart");
    let bridge = rig.bridge("", &door(""));
    // A persistent session: what the broker held for it survives the restart.
    let sub = Subscriber::new(&rig.broker, "restart-sub", "gpiofs/testnode/#");
    const TOTAL: usize = 4000;
    let edges = edges_in_background(&rig.mount, DOOR, TOTAL, Duration::from_millis(1));
    let (mut seqs, mut status) = (Vec::new(), Vec::new());
    collect_until(&sub, 300, &mut seqs, &mut status);
    rig.broker.stop();
    bridge.wait_log("lost the broker");
    std::thread::sleep(Duration::from_secs(1));
    rig.broker.restart();
    edges.join().unwrap();
    collect_until(&sub, TOTAL as u64, &mut seqs, &mut status);
    let (max, duplicates) = check_no_gap(&seqs, 1);
    assert_eq!(max, TOTAL as u64);
    let log = bridge.log();
    let queued = log.lines().find_map(|l| {
        l.split("sending ")
            .nth(1)?
            .split(" queued")
            .next()?
            .parse::<usize>()
            .ok()
    });
    println!(
        "broker restart: {TOTAL} edges, {} messages, {duplicates} re-sent duplicates, {queued:?} events queued while the broker was away",
        seqs.len()
    );
    assert!(queued.is_some_and(|n| n > 0), "no edge was queued:\n{log}");
    assert_eq!(
        log.matches("lost the broker").count(),
        1,
        "one log line per state change:\n{log}"
    );
    assert_eq!(log.matches("connected to").count(), 2, "{log}");
    // The broker published the will when it went down, then the bridge came back.
    let offline = status
        .iter()
        .position(|s| s == "offline")
        .unwrap_or_else(|| panic!("no offline: {status:?}"));
    assert!(
        status[offline..].iter().any(|s| s == "online"),
        "no online after offline: {status:?}"
    );
}

#[test]
fn the_queue_bound_keeps_the_newest_edges() {
    let mut rig = Rig::new("bound");
    let bridge = rig.bridge("queue = 50", &door(""));
    let sub = Subscriber::new(&rig.broker, "bound-sub", "gpiofs/testnode/#");
    for i in 0..10 {
        rig.mount.pull(DOOR, i % 2 == 0);
    }
    let (mut seqs, mut status) = (Vec::new(), Vec::new());
    collect_until(&sub, 10, &mut seqs, &mut status);
    rig.broker.stop();
    bridge.wait_log("lost the broker");
    for i in 0..80 {
        rig.mount.pull(DOOR, i % 2 == 0);
    }
    bridge.wait_log("dropping the oldest");
    rig.broker.restart();
    let mut after = Vec::new();
    collect_until(&sub, 90, &mut after, &mut status);
    // Edge 10 may come again: it was in flight (no PUBACK yet) at the stop.
    after.retain(|&seq| seq > 10);
    assert_eq!(
        after,
        (41..=90).collect::<Vec<u64>>(),
        "the newest 50 of the 80 edges, in order"
    );
    bridge.wait_log("events were dropped while the broker was away (queue bound 50)");
    // Events in flight at the drop (not yet acknowledged) waited too.
    let log = bridge.log();
    // The number just before `text` in the log.
    let number_before = |text: &str| -> u64 {
        let line = log.lines().find(|l| l.contains(text)).unwrap();
        let head = line[..line.find(text).unwrap()].trim_end();
        let digits = head.len() - head.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        head[head.len() - digits..].parse().unwrap()
    };
    let in_flight = number_before("events wait for the broker");
    assert!(in_flight <= 10, "{log}");
    assert_eq!(
        number_before("events were dropped"),
        in_flight + 80 - 50,
        "{log}"
    );
}

#[test]
fn a_dead_bridge_goes_offline_by_its_will_and_online_again() {
    let rig = Rig::new("will");
    let mut bridge = rig.bridge("", &door(""));
    let sub = Subscriber::new(&rig.broker, "will-sub", STATUS);
    assert_eq!(sub.expect(STATUS), "online");
    bridge.stop(libc::SIGKILL);
    assert_eq!(
        sub.expect(STATUS),
        "offline",
        "the broker publishes the will"
    );
    let _again = rig.bridge("", &door(""));
    assert_eq!(sub.expect(STATUS), "online");
}

#[test]
fn an_unreachable_broker_is_logged_once_and_edges_wait() {
    let mut rig = Rig::new("down");
    rig.broker.stop();
    let bridge = Bridge::start(
        rig.dir.path(),
        &config(&rig.broker, &rig.mount, "", &door("")),
    );
    bridge.wait_log("cannot reach the broker");
    for i in 0..20 {
        rig.mount.pull(DOOR, i % 2 == 0);
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        bridge.log().matches("cannot reach the broker").count(),
        1,
        "{}",
        bridge.log()
    );
    rig.broker.restart();
    bridge.wait_log("connected to");
    let sub = Subscriber::new(&rig.broker, "down-sub", "gpiofs/testnode/door/state");
    assert_eq!(
        sub.expect("gpiofs/testnode/door/state"),
        "OFF",
        "state after 20 edges"
    );
    bridge.wait_log("sending 20 queued events");
}
