//! SPEC §2 "Parsing", "direction low/high/out" and §4 extensions: how
//! attributes parse, read, write and round-trip.

mod common;

use common::*;

/// Exports with `form`, checks gpio512 appeared, unexports with `unform`.
#[track_caller]
fn export_unexport(m: &Mount, form: &[u8], unform: &[u8]) {
    if let Err(e) = m.write("export", form) {
        panic!("export {:?}: {e:?}", String::from_utf8_lossy(form));
    }
    assert!(
        m.exists("gpio512"),
        "export {:?} did not create gpio512",
        String::from_utf8_lossy(form)
    );
    if let Err(e) = m.write("unexport", unform) {
        panic!("unexport {:?}: {e:?}", String::from_utf8_lossy(unform));
    }
    assert!(
        !m.exists("gpio512"),
        "unexport {:?} left gpio512",
        String::from_utf8_lossy(unform)
    );
}

#[test]
fn export_numbers_parse_like_kstrtol_base_0() {
    let Some(m) = mount(DEMO) else { return };
    let forms: [&[u8]; 9] = [
        b"512", b"512\n", b"0x200", b"0X200\n", b"01000", b"01000\n", b"+512", b"+0x200", b"0x0200",
    ];
    for (i, f) in forms.iter().enumerate() {
        export_unexport(&m, f, forms[(i + 3) % forms.len()]);
    }
    // Octal really is octal: 01001 is 513, 0x201 is 513.
    m.put("export", "01001");
    assert!(m.exists("gpio513"));
    m.put("unexport", "0x201");
    assert!(!m.exists("gpio513"));
}

/// sysfs hands the attribute a NUL-terminated copy of the buffer, and the
/// kernel parsers stop at the first NUL: C programs that write
/// `sizeof("17")` bytes (the terminator included) work, and so does a
/// fixed-size buffer with stale bytes after the terminator.
#[test]
fn writes_are_c_strings_like_sysfs() {
    let Some(m) = mount(DEMO) else { return };
    export_unexport(&m, b"512\0", b"512\n\0");
    export_unexport(&m, b"512\0\0\0\0\0\0\0", b"512\0junk");
    m.put("export", "512");
    m.write("gpio512/direction", b"out\0").want_ok();
    assert_eq!(m.get("gpio512/direction"), "out\n");
    m.write("gpio512/value", b"1\0").want_ok();
    assert_eq!(m.get("gpio512/value"), "1\n");
    m.write("gpio512/direction", b"in\n\0").want_ok();
    m.write("gpio512/edge", b"both\0").want_ok();
    assert_eq!(m.get("gpio512/edge"), "both\n");
    m.write("gpio512/active_low", b"1\0\0").want_ok();
    assert_eq!(m.get("gpio512/active_low"), "1\n");
    // But an empty C string is still junk.
    m.write("export", b"\x00512").want_err(libc::EINVAL);
}

#[test]
fn export_by_line_name() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "demo-5");
    assert!(m.exists("gpio517"), "demo-5 must export gpio517");
    m.put("unexport", "517");
    m.sh_ok("echo demo-17 > export");
    assert!(m.exists("gpio529"));
    assert_eq!(m.get("gpio529/direction"), "in\n");
    for bad in ["nosuch", "demo-32", "demo-", "demo", "Demo-5", "demo-5\n\n"] {
        let r = m.write("export", bad);
        assert_eq!(r.err(), Some(Errno(libc::EINVAL)), "export {bad:?}");
    }
}

#[test]
fn writes_at_any_offset_with_or_without_truncate() {
    let Some(m) = mount(DEMO) else { return };
    // pwrite at offset 100 on a fresh file.
    let fd = m.open("export", libc::O_WRONLY).unwrap();
    assert_eq!(fd.pwrite(b"512", 100).unwrap(), 3);
    drop(fd);
    assert!(m.exists("gpio512"));
    // O_TRUNC.
    assert_eq!(
        m.write_flags("gpio512/direction", b"out\n", libc::O_TRUNC)
            .unwrap(),
        4
    );
    assert_eq!(m.get("gpio512/direction"), "out\n");
    // Several writes through one open file: each is a whole command, at
    // whatever offset the file position has reached.
    let fd = m.open("gpio512/value", libc::O_WRONLY).unwrap();
    for (v, want) in [("1\n", "1\n"), ("0\n", "0\n"), ("1", "1\n"), ("0", "0\n")] {
        assert_eq!(fd.write(v.as_bytes()).unwrap(), v.len());
        assert_eq!(m.get("gpio512/value"), want, "after writing {v:?}");
    }
    assert_eq!(fd.pwrite(b"1", 4096).unwrap(), 1);
    assert_eq!(m.get("gpio512/value"), "1\n");
    assert_eq!(fd.pwrite(b"0\n", 1 << 20).unwrap(), 2);
    assert_eq!(m.get("gpio512/value"), "0\n");
    drop(fd);
    // O_APPEND, as `>>` does.
    m.write_flags("gpio512/value", b"1", libc::O_APPEND)
        .want_ok();
    assert_eq!(m.get("gpio512/value"), "1\n");
    // O_RDWR works on rw attributes.
    let fd = m.open("gpio512/value", libc::O_RDWR).unwrap();
    assert_eq!(fd.read_to_end().unwrap(), "1\n");
    assert_eq!(fd.write(b"0").unwrap(), 1);
    assert_eq!(fd.pread(16, 0).unwrap(), b"0\n");
}

#[test]
fn shell_redirections_work() {
    let Some(m) = mount(DEMO) else { return };
    m.sh_ok("echo 512 > export");
    m.sh_ok("echo out > gpio512/direction");
    m.sh_ok("echo 1 > gpio512/value");
    assert_eq!(m.sh_ok("cat gpio512/value"), "1\n");
    m.sh_ok("echo 0 >> gpio512/value");
    assert_eq!(m.sh_ok("cat gpio512/value"), "0\n");
    m.sh_ok("printf 1 > gpio512/value");
    assert_eq!(m.sh_ok("cat gpio512/direction gpio512/value"), "out\n1\n");
    m.sh_ok("echo 512 > unexport");
    assert!(!m.exists("gpio512"));
}

#[test]
fn a_write_takes_the_whole_buffer() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for (f, v) in [
        ("gpio512/direction", "out\n"),
        ("gpio512/value", "1\n"),
        ("gpio512/active_low", "0\n"),
        ("gpio512/direction", "in\n"),
        ("gpio512/edge", "falling\n"),
        ("gpio512/bias", "pull-up\n"),
        ("gpio512/debounce_us", "100\n"),
        ("gpio512/uevent", "change\n"),
        ("export", "0x201\n"),
    ] {
        let fd = m.open(f, libc::O_WRONLY).unwrap();
        assert_eq!(fd.write(v.as_bytes()), Ok(v.len()), "{f} <- {v:?}");
    }
}

#[test]
fn reads_at_offset_zero_regenerate() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.put("gpio512/direction", "low");
    let reader = m.open("gpio512/value", libc::O_RDONLY).unwrap();
    assert_eq!(reader.read_to_end().unwrap(), "0\n");
    m.put("gpio512/value", "1");
    // lseek(0) + read, as poll()-based sysfs programs do.
    reader.seek(0).unwrap();
    assert_eq!(reader.read(64).unwrap(), b"1\n");
    m.put("gpio512/value", "0");
    // pread at 0.
    assert_eq!(reader.pread(64, 0).unwrap(), b"0\n");
    m.put("gpio512/value", "1");
    assert_eq!(reader.pread(64, 0).unwrap(), b"1\n");
    // Other attributes too.
    let dir = m.open("gpio512/direction", libc::O_RDONLY).unwrap();
    assert_eq!(dir.read_to_end().unwrap(), "out\n");
    m.put("gpio512/direction", "in");
    assert_eq!(dir.pread(64, 0).unwrap(), b"in\n");
}

#[test]
fn one_byte_reads_work() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.put("gpio512/direction", "high");
    let fd = m.open("gpio512/value", libc::O_RDONLY).unwrap();
    assert_eq!(fd.read(1).unwrap(), b"1");
    assert_eq!(fd.read(1).unwrap(), b"\n");
    assert_eq!(fd.read(1).unwrap(), b"");
    let fd = m.open("gpiochip512/label", libc::O_RDONLY).unwrap();
    let mut got = Vec::new();
    loop {
        let b = fd.read(1).unwrap();
        if b.is_empty() {
            break;
        }
        assert_eq!(b.len(), 1);
        got.extend(b);
    }
    assert_eq!(got, b"demo\n");
}

#[test]
fn direction_round_trip() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for (w, dir, val) in [
        ("out", "out\n", "0\n"),
        ("in", "in\n", "0\n"),
        ("high", "out\n", "1\n"),
        ("low", "out\n", "0\n"),
        ("high\n", "out\n", "1\n"),
        ("out\n", "out\n", "0\n"),
        ("in\n", "in\n", "0\n"),
        ("low\n", "out\n", "0\n"),
    ] {
        m.put("gpio512/direction", w);
        assert_eq!(m.get("gpio512/direction"), dir, "after {w:?}");
        assert_eq!(m.get("gpio512/value"), val, "after {w:?}");
    }
}

#[test]
fn value_round_trip_on_an_output() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.put("gpio512/direction", "out");
    for (w, want) in [
        ("1", "1\n"),
        ("0", "0\n"),
        ("1\n", "1\n"),
        ("0\n", "0\n"),
        ("0x1", "1\n"),
        ("00", "0\n"),
        ("2", "1\n"),
        ("+0", "0\n"),
        ("-1", "1\n"),
        ("-0", "0\n"),
        ("017", "1\n"),
    ] {
        m.put("gpio512/value", w);
        assert_eq!(m.get("gpio512/value"), want, "after value {w:?}");
        assert_eq!(
            m.get("sim/demo/line0/value"),
            want,
            "wire after value {w:?}"
        );
    }
}

#[test]
fn edge_round_trip_on_an_input() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for e in [
        "rising", "falling", "both", "none", "both\n", "both", "rising\n", "none\n",
    ] {
        m.put("gpio512/edge", e);
        assert_eq!(m.get("gpio512/edge"), format!("{}\n", e.trim_end()));
    }
}

#[test]
fn active_low_round_trip() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for (w, want) in [
        ("1", "1\n"),
        ("0", "0\n"),
        ("1\n", "1\n"),
        ("0\n", "0\n"),
        ("5", "1\n"),
        ("0x0", "0\n"),
        ("-1", "1\n"),
        ("+0", "0\n"),
    ] {
        m.put("gpio512/active_low", w);
        assert_eq!(m.get("gpio512/active_low"), want, "after {w:?}");
    }
}

#[test]
fn bias_round_trip() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    assert_eq!(m.get("gpio512/bias"), "as-is\n");
    for b in [
        "disabled",
        "pull-up",
        "pull-down",
        "as-is",
        "pull-up\n",
        "disabled\n",
    ] {
        m.put("gpio512/bias", b);
        assert_eq!(m.get("gpio512/bias"), format!("{}\n", b.trim_end()));
    }
    for junk in [
        "up",
        "pullup",
        "Pull-up",
        "pull-up\n\n",
        "\n",
        "none",
        "as is",
    ] {
        let r = m.write("gpio512/bias", junk);
        assert_eq!(r.err(), Some(Errno(libc::EINVAL)), "bias {junk:?}");
    }
    assert_eq!(m.get("gpio512/bias"), "disabled\n");
}

#[test]
fn drive_round_trip_on_an_output() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.put("gpio512/direction", "out");
    assert_eq!(m.get("gpio512/drive"), "push-pull\n");
    for d in [
        "open-drain",
        "open-source",
        "push-pull",
        "open-drain\n",
        "push-pull\n",
    ] {
        m.put("gpio512/drive", d);
        assert_eq!(m.get("gpio512/drive"), format!("{}\n", d.trim_end()));
        assert_eq!(m.get("gpio512/direction"), "out\n");
    }
    for junk in ["opendrain", "open_drain", "push-pull\n\n", "\n", "od"] {
        let r = m.write("gpio512/drive", junk);
        assert_eq!(r.err(), Some(Errno(libc::EINVAL)), "drive {junk:?}");
    }
    assert_eq!(m.get("gpio512/drive"), "push-pull\n");
}

#[test]
fn debounce_us_round_trip_on_an_input() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    assert_eq!(m.get("gpio512/debounce_us"), "0\n");
    for (w, want) in [
        ("1000", "1000\n"),
        ("0", "0\n"),
        ("250\n", "250\n"),
        ("0\n", "0\n"),
    ] {
        m.put("gpio512/debounce_us", w);
        assert_eq!(m.get("gpio512/debounce_us"), want, "after {w:?}");
    }
    for junk in ["abc", "10us", "1000\n\n", "\n", " 5", "1.5"] {
        let r = m.write("gpio512/debounce_us", junk);
        assert_eq!(r.err(), Some(Errno(libc::EINVAL)), "debounce_us {junk:?}");
    }
    assert_eq!(m.get("gpio512/debounce_us"), "0\n");
}

/// `high`/`low`/`out` set RAW levels whatever active_low says (kernel:
/// gpiod_direction_output_raw); value reads and writes are logical.
#[test]
fn direction_high_low_out_are_raw_with_active_low() {
    let Some(m) = mount(&["--sim", "demo:8"]) else {
        return;
    };
    m.put("export", "512");
    m.put("gpio512/active_low", "1");
    m.put("gpio512/direction", "high");
    assert_eq!(
        m.get("gpio512/value"),
        "0\n",
        "high + active_low: logical 0"
    );
    assert_eq!(m.get("sim/demo/line0/value"), "1\n", "high: wire 1");
    m.put("gpio512/direction", "low");
    assert_eq!(m.get("gpio512/value"), "1\n");
    assert_eq!(m.get("sim/demo/line0/value"), "0\n");
    m.put("gpio512/direction", "high");
    m.put("gpio512/direction", "out");
    assert_eq!(m.get("gpio512/value"), "1\n", "out = raw low");
    assert_eq!(m.get("sim/demo/line0/value"), "0\n");
    // Logical writes through value.
    m.put("gpio512/value", "1");
    assert_eq!(m.get("sim/demo/line0/value"), "0\n");
    m.put("gpio512/value", "0");
    assert_eq!(m.get("sim/demo/line0/value"), "1\n");
    assert_eq!(m.get("gpio512/value"), "0\n");
}

/// Changing active_low only changes how the level is reported; the wire
/// keeps its raw level (kernel: gpio_sysfs_set_active_low just flips a
/// flag).
#[test]
fn active_low_on_an_output_keeps_the_wire_level() {
    let Some(m) = mount(&["--sim", "demo:8"]) else {
        return;
    };
    m.put("export", "513");
    m.put("gpio513/direction", "high");
    m.put("gpio513/active_low", "1");
    assert_eq!(m.get("sim/demo/line1/value"), "1\n");
    assert_eq!(m.get("gpio513/value"), "0\n");
    m.put("gpio513/active_low", "0");
    assert_eq!(m.get("sim/demo/line1/value"), "1\n");
    assert_eq!(m.get("gpio513/value"), "1\n");
    assert_eq!(m.get("gpio513/direction"), "out\n");
}

#[test]
fn settings_survive_switching_direction() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.put("gpio512/active_low", "1");
    m.put("gpio512/bias", "pull-up");
    m.put("gpio512/direction", "out");
    m.put("gpio512/direction", "in");
    assert_eq!(m.get("gpio512/active_low"), "1\n");
    assert_eq!(m.get("gpio512/bias"), "pull-up\n");
}

/// Kernel: unexport frees the line (gpiod_free_commit clears ACTIVE_LOW,
/// the bias and drive flags) and frees the edge IRQ, so a re-export starts
/// from the defaults.
#[test]
fn reexport_starts_from_default_settings() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.put("gpio512/active_low", "1");
    m.put("gpio512/edge", "both");
    m.put("gpio512/bias", "pull-up");
    m.put("gpio512/debounce_us", "500");
    m.put("unexport", "512");
    m.put("export", "512");
    assert_eq!(m.get("gpio512/active_low"), "0\n");
    assert_eq!(m.get("gpio512/edge"), "none\n");
    assert_eq!(m.get("gpio512/bias"), "as-is\n");
    assert_eq!(m.get("gpio512/drive"), "push-pull\n");
    assert_eq!(m.get("gpio512/debounce_us"), "0\n");
}

/// kernfs setattr accepts and ignores size changes and takes times:
/// `truncate` and `touch` on attributes succeed and change nothing.
#[test]
fn truncate_and_touch_succeed_and_change_nothing() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.put("gpio512/direction", "high");
    for f in ["gpio512/value", "gpio512/direction", "export"] {
        m.sh_ok(&format!("truncate -s 0 {f} && touch {f}"));
    }
    // touch of a read-only attribute: open fails, utimensat still works.
    m.sh_ok("touch gpiochip512/base");
    assert_eq!(m.get("gpio512/value"), "1\n");
    assert_eq!(m.get("gpio512/direction"), "out\n");
    assert_eq!(m.get("gpiochip512/base"), "512\n");
}

/// kernfs keeps the times set through setattr (__kernfs_setattr stores
/// ia_atime/ia_mtime), so `touch -d` shows in stat while mounted.
#[test]
fn set_times_persist_like_kernfs() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.sh_ok("touch -m -d @1000000000 gpio512/value gpiochip512/base");
    for f in ["gpio512/value", "gpiochip512/base"] {
        let st = m.stat(f).unwrap();
        assert_eq!(st.st_mtime, 1_000_000_000, "{f} mtime after touch -d");
    }
}

/// Waits up to `ms` for `fd` to become readable.
fn readable_within(fd: &Fd, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: fd.0,
        events: libc::POLLIN,
        revents: 0,
    };
    unsafe { libc::poll(&mut p, 1, ms) > 0 && p.revents & libc::POLLIN != 0 }
}

/// Reads the edge kinds queued on a non-blocking `events` file.
fn drain_edges(fd: &Fd) -> Vec<String> {
    let mut kinds = Vec::new();
    while let Ok(chunk) = fd.read(4096) {
        if chunk.is_empty() {
            break;
        }
        for line in String::from_utf8_lossy(&chunk).lines() {
            kinds.push(line.split(' ').nth(2).unwrap_or("?").to_string());
        }
    }
    kinds
}

/// SPEC: direction and settings changes reconfigure the live request and
/// never release it, so an output never glitches. Watched through a wired
/// input's edge stream: only real level changes produce edges.
#[test]
fn output_changes_do_not_glitch_the_wire() {
    let Some(m) = mount(&["--sim", "demo:8", "--sim-wire", "512:513"]) else {
        return;
    };
    m.put("export", "512");
    m.put("export", "513");
    let events = m
        .open("gpio513/events", libc::O_RDONLY | libc::O_NONBLOCK)
        .unwrap();
    m.put("gpio512/direction", "high");
    assert!(readable_within(&events, 2000), "no edge for low->high");
    assert_eq!(drain_edges(&events), ["rising"]);
    // Same level again, polarity, bias, debounce: no edge at all.
    m.put("gpio512/direction", "high");
    m.put("gpio512/active_low", "1");
    m.put("gpio512/value", "0");
    m.put("gpio512/active_low", "0");
    m.put("gpio512/value", "1");
    m.put("gpio512/bias", "pull-down");
    m.put("gpio512/bias", "as-is");
    m.put("gpio512/edge", "none");
    m.put("gpio512/drive", "push-pull");
    assert!(
        !readable_within(&events, 200),
        "glitch: {:?}",
        drain_edges(&events)
    );
    m.put("gpio512/direction", "out");
    assert!(readable_within(&events, 2000), "no edge for high->low");
    assert_eq!(drain_edges(&events), ["falling"]);
    m.put("gpio512/direction", "low");
    assert!(
        !readable_within(&events, 200),
        "glitch: {:?}",
        drain_edges(&events)
    );
}
