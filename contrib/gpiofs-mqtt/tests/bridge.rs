//! gpiofs-mqtt against a real mosquitto and a gpiofs `--sim` mount:
//! events, retained state, `/set`, junk commands, discovery, clean stop.

mod common;

use std::time::Duration;

use common::*;

const DOOR: u32 = 512;

fn door_and_relay() -> String {
    format!(
        "[[input]]\nline = {DOOR}\nname = \"door\"\nfriendly_name = \"Front door\"\ndevice_class = \"door\"\n\
         [[input]]\nline = {WIRED_INPUT}\nname = \"loop\"\n\
         [[output]]\nline = \"demo-{}\"\nname = \"relay\"\ninitial = \"OFF\"\n",
        WIRED_OUTPUT - BASE
    )
}

#[test]
fn a_thousand_edges_arrive_as_a_thousand_events_in_order() {
    let rig = Rig::new("order");
    let _bridge = rig.bridge("", &door_and_relay());
    let sub = Subscriber::new(&rig.broker, "order-sub", "gpiofs/testnode/door/event");
    for i in 0..1000 {
        rig.mount.pull(DOOR, i % 2 == 0);
    }
    let events: Vec<EventMsg> = (0..1000)
        .map(|i| {
            parse_event(
                &sub.next_on("gpiofs/testnode/door/event", START)
                    .unwrap_or_else(|| panic!("only {i} events arrived"))
                    .payload,
            )
        })
        .collect();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.seq,
            i as u64 + 1,
            "seq gap or reorder at message {i}: {e:?}"
        );
        assert_eq!(
            (e.rising, e.value),
            (i % 2 == 0, u8::from(i % 2 == 0)),
            "{e:?}"
        );
        if i > 0 {
            assert!(e.ts_ns >= events[i - 1].ts_ns, "timestamps go back at {i}");
        }
    }
    assert!(
        sub.drain(Duration::from_millis(300)).is_empty(),
        "more than 1000 events"
    );
}

#[test]
fn a_late_subscriber_gets_the_retained_state() {
    let rig = Rig::new("late");
    let _bridge = rig.bridge("", &door_and_relay());
    let watch = Subscriber::new(&rig.broker, "late-watch", "gpiofs/testnode/door/event");
    for high in [true, false, true] {
        rig.mount.pull(DOOR, high);
    }
    for _ in 0..3 {
        watch.expect("gpiofs/testnode/door/event");
    }
    let late = Subscriber::new(&rig.broker, "late-sub", "gpiofs/testnode/+/state");
    // Retained messages come in no particular order.
    let retained = late.drain(Duration::from_millis(500));
    let find = |pin: &str| {
        let topic = format!("gpiofs/testnode/{pin}/state");
        let m = retained.iter().find(|m| m.topic == topic);
        m.map(|m| (m.payload.as_str(), m.retain))
    };
    assert_eq!(find("door"), Some(("ON", true)), "{retained:?}");
    assert_eq!(find("relay"), Some(("OFF", true)), "{retained:?}");
    assert_eq!(find("loop"), Some(("OFF", true)), "{retained:?}");
    rig.mount.pull(DOOR, false);
    assert_eq!(late.expect("gpiofs/testnode/door/state"), "OFF");
    let status = Subscriber::new(&rig.broker, "late-status", "gpiofs/testnode/status");
    assert_eq!(status.expect("gpiofs/testnode/status"), "online");
}

/// Polls `value` of `gpio` for POLLPRI (a sysfs edge) for up to `ms`.
fn poll_edge(fd: i32, ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLPRI | libc::POLLERR,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    n == 1 && pfd.revents & libc::POLLPRI != 0
}

#[test]
fn set_drives_the_output_seen_on_the_wire_and_by_a_local_poller() {
    use std::io::Read;
    use std::os::fd::AsRawFd;

    let rig = Rig::new("set");
    let _bridge = rig.bridge("", &door_and_relay());
    let sub = Subscriber::new(&rig.broker, "set-sub", "gpiofs/testnode/#");
    let retained = sub.drain(Duration::from_millis(300));
    assert!(
        retained
            .iter()
            .any(|m| m.topic.ends_with("relay/state") && m.payload == "OFF"),
        "{retained:?}"
    );
    assert_eq!(rig.mount.wire(WIRED_OUTPUT), "0", "initial = OFF");
    // A local program polls the wired input at the same time as the bridge streams it.
    rig.mount.write(&format!("gpio{WIRED_INPUT}/edge"), "both");
    let mut value =
        std::fs::File::open(rig.mount.path.join(format!("gpio{WIRED_INPUT}/value"))).unwrap();
    let mut text = String::new();
    value.read_to_string(&mut text).unwrap();
    assert!(!poll_edge(value.as_raw_fd(), 100), "no edge yet");

    sub.publish("gpiofs/testnode/relay/set", "ON");
    assert_eq!(sub.expect("gpiofs/testnode/relay/state"), "ON");
    assert_eq!(
        rig.mount.wire(WIRED_OUTPUT),
        "1",
        "the output drives the wire"
    );
    assert!(
        poll_edge(value.as_raw_fd(), 5000),
        "the local poller saw no edge"
    );
    assert_eq!(rig.mount.read(&format!("gpio{WIRED_INPUT}/value")), "1");
    let e = parse_event(&sub.expect("gpiofs/testnode/loop/event"));
    assert_eq!((e.rising, e.value), (true, 1));

    for (payload, level) in [
        ("0", "0"),
        ("true", "1"),
        ("false", "0"),
        ("1", "1"),
        ("OFF", "0"),
    ] {
        sub.publish("gpiofs/testnode/relay/set", payload);
        let want = if level == "1" { "ON" } else { "OFF" };
        assert_eq!(
            sub.expect("gpiofs/testnode/relay/state"),
            want,
            "after {payload}"
        );
        assert_eq!(rig.mount.wire(WIRED_OUTPUT), level, "after {payload}");
    }
}

#[test]
fn junk_set_payloads_are_ignored_and_logged() {
    let rig = Rig::new("junk");
    let bridge = rig.bridge("", &door_and_relay());
    let sub = Subscriber::new(&rig.broker, "junk-sub", "gpiofs/testnode/#");
    // The status and states the bridge published at connect.
    sub.drain(Duration::from_millis(300));
    let junk = ["on", "", "2", "ON\n", "toggle", "{\"state\":\"ON\"}"];
    for payload in junk {
        sub.publish("gpiofs/testnode/relay/set", payload);
    }
    let after = sub.drain(Duration::from_millis(500));
    let not_set: Vec<_> = after
        .iter()
        .filter(|m| !m.topic.ends_with("/set"))
        .collect();
    assert!(not_set.is_empty(), "junk changed something: {not_set:?}");
    assert_eq!(rig.mount.wire(WIRED_OUTPUT), "0");
    bridge.wait_log("ignored \"toggle\"");
    assert_eq!(
        bridge.log().matches("relay/set: ignored").count(),
        junk.len(),
        "{}",
        bridge.log()
    );
    // The bridge still listens.
    sub.publish("gpiofs/testnode/relay/set", "ON");
    assert_eq!(sub.expect("gpiofs/testnode/relay/state"), "ON");
}

#[test]
fn discovery_payloads_parse_and_name_the_right_topics() {
    let rig = Rig::new("disc");
    let _bridge = rig.bridge("", &door_and_relay());
    let sub = Subscriber::new(&rig.broker, "disc-sub", "homeassistant/#");
    let mut configs: Vec<Seen> = sub.drain(Duration::from_millis(500));
    configs.sort_by(|a, b| a.topic.cmp(&b.topic));
    let topics: Vec<&str> = configs.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(
        topics,
        [
            "homeassistant/binary_sensor/testnode/door/config",
            "homeassistant/binary_sensor/testnode/loop/config",
            "homeassistant/switch/testnode/relay/config"
        ]
    );
    let json =
        |i: usize| -> serde_json::Value { serde_json::from_str(&configs[i].payload).unwrap() };
    for (i, pin) in [(0, "door"), (1, "loop"), (2, "relay")] {
        let v = json(i);
        assert!(configs[i].retain);
        assert_eq!(v["state_topic"], format!("gpiofs/testnode/{pin}/state"));
        assert_eq!(v["availability_topic"], "gpiofs/testnode/status");
        assert_eq!(v["unique_id"], format!("gpiofs_testnode_{pin}"));
        assert_eq!(v["device"]["identifiers"][0], "gpiofs_testnode");
        assert_eq!(v["device"]["name"], "testnode");
        assert_eq!(
            (v["payload_on"].as_str(), v["payload_off"].as_str()),
            (Some("ON"), Some("OFF"))
        );
    }
    assert_eq!(json(0)["name"], "Front door");
    assert_eq!(json(0)["device_class"], "door");
    assert_eq!(json(1)["name"], "loop");
    assert_eq!(json(2)["command_topic"], "gpiofs/testnode/relay/set");
    assert!(json(0).get("command_topic").is_none());
}

#[test]
fn discovery_can_be_turned_off_and_its_prefix_changed() {
    for (extra, filter, count) in [
        ("[discovery]\nprefix = \"ha\"\n", "ha/#", 3),
        ("[discovery]\nenabled = false\n", "homeassistant/#", 0),
    ] {
        let rig = Rig::new("disc-opts");
        let _bridge = rig.bridge(extra, &door_and_relay());
        let sub = Subscriber::new(&rig.broker, "disc-opts", filter);
        assert_eq!(
            sub.drain(Duration::from_millis(500)).len(),
            count,
            "{extra}"
        );
    }
}

#[test]
fn a_clean_stop_publishes_offline_and_exits_0() {
    let rig = Rig::new("stop");
    let mut bridge = rig.bridge("", &door_and_relay());
    let sub = Subscriber::new(&rig.broker, "stop-sub", "gpiofs/testnode/status");
    assert_eq!(sub.expect("gpiofs/testnode/status"), "online");
    assert_eq!(bridge.stop(libc::SIGTERM), Some(0), "{}", bridge.log());
    let m = sub
        .next_on("gpiofs/testnode/status", START)
        .expect("no offline");
    assert_eq!(m.payload, "offline");
    assert!(
        bridge.log().contains("status offline published"),
        "{}",
        bridge.log()
    );
    let late = Subscriber::new(&rig.broker, "stop-late", "gpiofs/testnode/status");
    assert_eq!(
        late.expect("gpiofs/testnode/status"),
        "offline",
        "offline is retained"
    );
}

#[test]
fn a_line_named_while_already_exported_is_found() {
    let rig = Rig::new("named");
    rig.mount.write("export", &WIRED_OUTPUT.to_string());
    let bridge = rig.bridge("", &door_and_relay());
    bridge.wait_log(&format!("output relay is gpio{WIRED_OUTPUT}"));
    assert!(
        bridge.log().contains("already exported"),
        "{}",
        bridge.log()
    );
    let sub = Subscriber::new(&rig.broker, "named-sub", "gpiofs/testnode/relay/#");
    sub.drain(Duration::from_millis(300));
    sub.publish("gpiofs/testnode/relay/set", "ON");
    assert_eq!(sub.expect("gpiofs/testnode/relay/state"), "ON");
    assert_eq!(rig.mount.wire(WIRED_OUTPUT), "1");
}
