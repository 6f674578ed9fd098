//! SPEC §4 `--sim`: the simulated chips' control tree (pull, wire level,
//! hog) and `--sim-wire`, modelled on the kernel's gpio-sim.

mod common;

use common::*;

#[test]
fn pull_reads_back_and_defaults_to_pull_down() {
    let Some(m) = mount(DEMO) else { return };
    assert_eq!(m.get("sim/demo/line7/pull"), "pull-down\n");
    assert_eq!(m.get("sim/demo/line7/value"), "0\n");
    m.put("sim/demo/line7/pull", "pull-up");
    assert_eq!(m.get("sim/demo/line7/pull"), "pull-up\n");
    assert_eq!(m.get("sim/demo/line7/value"), "1\n");
    m.put("sim/demo/line7/pull", "pull-down\n");
    assert_eq!(m.get("sim/demo/line7/pull"), "pull-down\n");
    assert_eq!(m.get("sim/demo/line7/value"), "0\n");
    // Other lines are untouched.
    assert_eq!(m.get("sim/demo/line6/pull"), "pull-down\n");
    m.sh_ok("echo pull-up > sim/demo/line6/pull");
    assert_eq!(m.get("sim/demo/line6/value"), "1\n");
}

#[test]
fn pull_junk_is_einval() {
    let Some(m) = mount(DEMO) else { return };
    for junk in ["up", "pull-up\n\n", "Pull-up", "1", "\n", "pull-none"] {
        let r = m.write("sim/demo/line0/pull", junk);
        assert_eq!(r.err(), Some(Errno(libc::EINVAL)), "pull {junk:?}");
    }
    assert_eq!(m.get("sim/demo/line0/pull"), "pull-down\n");
}

#[test]
fn an_input_follows_the_pull() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "517");
    assert_eq!(m.get("gpio517/value"), "0\n");
    m.put("sim/demo/line5/pull", "pull-up");
    assert_eq!(m.get("gpio517/value"), "1\n");
    m.put("sim/demo/line5/pull", "pull-down");
    assert_eq!(m.get("gpio517/value"), "0\n");
    // active_low inverts the logical value, not the wire.
    m.put("gpio517/active_low", "1");
    assert_eq!(m.get("gpio517/value"), "1\n");
    m.put("sim/demo/line5/pull", "pull-up");
    assert_eq!(m.get("gpio517/value"), "0\n");
    assert_eq!(m.get("sim/demo/line5/value"), "1\n");
    // Pull set before export is seen at export.
    m.put("sim/demo/line6/pull", "pull-up");
    m.put("export", "518");
    assert_eq!(m.get("gpio518/value"), "1\n");
}

#[test]
fn an_outputs_level_shows_on_the_wire_and_ignores_the_pull() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "520");
    m.put("gpio520/direction", "high");
    assert_eq!(m.get("sim/demo/line8/value"), "1\n");
    m.put("gpio520/value", "0");
    assert_eq!(m.get("sim/demo/line8/value"), "0\n");
    // gpio-sim: a pull never overrides a line that is actively driven.
    m.put("sim/demo/line8/pull", "pull-up");
    assert_eq!(m.get("sim/demo/line8/value"), "0\n");
    assert_eq!(m.get("gpio520/value"), "0\n");
    m.put("gpio520/value", "1");
    m.put("sim/demo/line8/pull", "pull-down");
    assert_eq!(m.get("sim/demo/line8/value"), "1\n");
    assert_eq!(m.get("gpio520/value"), "1\n");
    // Back to input: the pull shows again.
    m.put("gpio520/direction", "in");
    assert_eq!(m.get("sim/demo/line8/value"), "0\n");
    assert_eq!(m.get("gpio520/value"), "0\n");
}

#[test]
fn sim_wire_connects_an_output_to_an_input() {
    let Some(m) = mount(&["--sim", "demo:8", "--sim-wire", "512:513"]) else {
        return;
    };
    m.put("export", "512");
    m.put("export", "513");
    assert_eq!(m.get("gpio513/direction"), "in\n");
    m.put("gpio512/direction", "high");
    assert_eq!(m.get("gpio513/value"), "1\n");
    assert_eq!(m.get("sim/demo/line1/value"), "1\n");
    m.put("gpio512/value", "0");
    assert_eq!(m.get("gpio513/value"), "0\n");
    assert_eq!(m.get("sim/demo/line1/value"), "0\n");
    m.put("gpio512/value", "1");
    assert_eq!(m.get("gpio513/value"), "1\n");
    // The receiving input's active_low applies on its side only.
    m.put("gpio513/active_low", "1");
    assert_eq!(m.get("gpio513/value"), "0\n");
    // Another line is not wired.
    m.put("export", "514");
    assert_eq!(m.get("gpio514/value"), "0\n");
}

#[test]
fn sim_wire_between_two_chips() {
    let Some(m) = mount(&["--sim", "a:4,b:4", "--sim-wire", "513:518"]) else {
        return;
    };
    m.put("export", "513");
    m.put("export", "518");
    m.put("gpio513/direction", "high");
    assert_eq!(m.get("gpio518/value"), "1\n");
    assert_eq!(m.get("sim/b/line2/value"), "1\n");
    m.put("gpio513/direction", "low");
    assert_eq!(m.get("gpio518/value"), "0\n");
}

#[test]
fn hog_holds_a_line_until_released() {
    let Some(m) = mount(DEMO) else { return };
    assert_eq!(m.get("sim/demo/line3/hog").trim_end(), "");
    m.put("sim/demo/line3/hog", "other-program\n");
    assert_eq!(m.get("sim/demo/line3/hog").trim_end(), "other-program");
    m.write("export", "515").want_err(libc::EBUSY);
    // Other lines are free.
    m.put("export", "516");
    m.put("sim/demo/line3/hog", "\n");
    assert_eq!(m.get("sim/demo/line3/hog").trim_end(), "");
    m.put("export", "515");
    assert!(m.exists("gpio515"));
}

#[test]
fn hog_of_an_exported_line_is_ebusy() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.write("sim/demo/line0/hog", "other\n")
        .want_err(libc::EBUSY);
    assert_eq!(m.get("sim/demo/line0/hog").trim_end(), "");
    m.put("unexport", "512");
    m.put("sim/demo/line0/hog", "other\n");
    assert_eq!(m.get("sim/demo/line0/hog").trim_end(), "other");
}

/// A value file kept open sees every change of the line at each read from
/// offset 0, even when nothing was written through that file (no stale
/// page cache).
#[test]
fn a_value_file_kept_open_sees_changes_made_elsewhere() {
    let Some(m) = mount(&["--sim", "demo:8", "--sim-wire", "512:513"]) else {
        return;
    };
    m.put("export", "512");
    m.put("export", "513");
    m.put("export", "514");
    let wired = m.open("gpio513/value", libc::O_RDONLY).unwrap();
    let pulled = m.open("gpio514/value", libc::O_RDONLY).unwrap();
    for i in 0..6 {
        let level = if i % 2 == 0 { "1\n" } else { "0\n" };
        m.put("gpio512/direction", if i % 2 == 0 { "high" } else { "low" });
        m.put(
            "sim/demo/line2/pull",
            if i % 2 == 0 { "pull-up" } else { "pull-down" },
        );
        assert_eq!(
            wired.pread(16, 0).unwrap(),
            level.as_bytes(),
            "wired, round {i}"
        );
        wired.seek(0).unwrap();
        assert_eq!(wired.read_to_end().unwrap(), level, "wired, round {i}");
        assert_eq!(
            pulled.pread(16, 0).unwrap(),
            level.as_bytes(),
            "pulled, round {i}"
        );
    }
}
