//! SPEC §2 "No backend error may take the daemon down": junk of every kind
//! into every writable file, and the mount still answers afterwards.

mod common;

use std::thread;

use common::*;

const WRITABLE: &[&str] = &[
    "export",
    "unexport",
    "gpio512/direction",
    "gpio512/value",
    "gpio512/edge",
    "gpio512/active_low",
    "gpio512/bias",
    "gpio512/drive",
    "gpio512/debounce_us",
    "gpio512/uevent",
    "gpio513/value",
    "gpio513/direction",
    "gpiochip512/uevent",
    "sim/demo/line1/pull",
    "sim/demo/line30/hog",
];

fn payloads() -> Vec<(String, Vec<u8>)> {
    let mut p: Vec<(String, Vec<u8>)> = vec![
        ("binary".into(), vec![0xff, 0xfe, 0x00, 0x80, 0x01]),
        ("nul".into(), vec![0]),
        ("invalid utf-8".into(), vec![0xc3, 0x28, b'\n']),
        ("emoji".into(), "😀\n".as_bytes().to_vec()),
        ("huge".into(), b"99999999999999999999".to_vec()),
        ("huge negative".into(), b"-99999999999999999999\n".to_vec()),
        ("huge hex".into(), b"0x1ffffffffffffffffffffffff".to_vec()),
        ("i64 min".into(), b"-9223372036854775808".to_vec()),
        ("u32 wrap".into(), b"4294967808".to_vec()),
        ("u32 max".into(), b"4294967295".to_vec()),
        ("format".into(), b"%s%s%s%n%x\n".to_vec()),
        ("newlines".into(), b"\n\n\n\n".to_vec()),
        ("many numbers".into(), b"512\n".repeat(1000)),
        ("long name".into(), vec![b'a'; 5000]),
        ("page of digits".into(), vec![b'9'; 4097]),
        ("1 MiB of x".into(), vec![b'x'; 1 << 20]),
        ("1 MiB of 9".into(), vec![b'9'; 1 << 20]),
    ];
    let mut ones = b"1".to_vec();
    ones.resize(1 << 20, 0);
    p.push(("1 then 1 MiB of NUL".into(), ones));
    p.push((
        "all bytes".into(),
        (0u8..=255).collect::<Vec<u8>>().repeat(4),
    ));
    p
}

/// Writes `bytes` in one write(2) at offset 0, result ignored.
fn blast(m: &Mount, rel: &str, bytes: &[u8]) -> Res<usize> {
    m.open(rel, libc::O_WRONLY)?.write(bytes)
}

#[test]
fn junk_writes_never_take_the_daemon_down() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.put("export", "513");
    m.put("gpio513/direction", "out");
    for (name, bytes) in payloads() {
        for rel in WRITABLE {
            let r = blast(&m, rel, &bytes);
            m.assert_answers(&format!("writing {name} to {rel} (got {r:?})"));
            // Put back what a payload may legitimately have changed.
            if !m.exists("gpio512") {
                m.put("export", "512");
            }
            if !m.exists("gpio513") {
                m.put("export", "513");
            }
            let _ = m.write("sim/demo/line30/hog", "\n");
        }
        // None of these is a valid export command.
        // (Except the kernel quirks: a NUL ends the command, so "1\0..." is
        // "1"; and gpio_to_desc() takes an unsigned int, so 2^32+512 is 512.)
        if !name.starts_with("1 then") && name != "u32 wrap" {
            let r = blast(&m, "export", &bytes);
            assert!(r.is_err(), "export of {name} succeeded: {r:?}");
        }
    }
    // Attributes still work afterwards.
    m.put("gpio513/direction", "high");
    assert_eq!(m.get("sim/demo/line1/value"), "1\n");
    assert_eq!(m.get("gpiochip512/base"), "512\n");
}

#[test]
fn junk_at_odd_offsets_and_in_pieces_never_takes_the_daemon_down() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for rel in WRITABLE {
        if let Ok(fd) = m.open(rel, libc::O_WRONLY) {
            let _ = fd.pwrite(b"1", i64::MAX - 1);
            let _ = fd.pwrite(b"junk", 1 << 40);
            for b in [&b"o"[..], b"u", b"t", b"\n"] {
                let _ = fd.write(b);
            }
        }
        m.assert_answers(&format!("odd-offset writes to {rel}"));
        if !m.exists("gpio512") {
            m.put("export", "512");
        }
    }
}

#[test]
fn reading_everything_never_takes_the_daemon_down() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for dir in ["", "gpiochip512", "gpio512", "sim/demo/line0"] {
        for name in m.ls(dir).unwrap() {
            // events blocks until an edge: not a plain attribute.
            if name == "events" {
                continue;
            }
            let rel = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            if let Ok(fd) = m.open(&rel, libc::O_RDONLY | libc::O_NONBLOCK) {
                let _ = fd.read(1);
                let _ = fd.pread(4096, 0);
                let _ = fd.pread(10, 1 << 30);
                let _ = fd.pread(1 << 20, 0);
            }
            let _ = m.ls(&rel);
            m.assert_answers(&format!("reading {rel}"));
        }
    }
}

#[test]
fn concurrent_writers_never_take_the_daemon_down() {
    let Some(m) = mount(DEMO) else { return };
    thread::scope(|s| {
        for t in 0..4u32 {
            let m = &m;
            s.spawn(move || {
                let n = 512 + t;
                for i in 0..50 {
                    let _ = m.write("export", n.to_string());
                    let rel = format!("gpio{n}");
                    let _ = m.write(
                        &format!("{rel}/direction"),
                        if i % 2 == 0 { "high" } else { "in" },
                    );
                    let _ = m.write(&format!("{rel}/value"), "1");
                    let _ = m.write(&format!("{rel}/edge"), "both");
                    let _ = m.read(&format!("{rel}/value"));
                    let _ = m.write("unexport", n.to_string());
                    // Everyone also fights over one shared line.
                    let _ = m.write("export", "530");
                    let _ = m.write("gpio530/direction", "out");
                    let _ = m.write("unexport", "530");
                }
            });
        }
    });
    m.assert_answers("concurrent writers");
    m.put("export", "512");
    assert_eq!(m.get("gpio512/direction"), "in\n");
}
