//! SPEC §1: the shape of the tree, file modes and the chip attributes.

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};

const REG: u32 = libc::S_IFREG;
const DIR: u32 = libc::S_IFDIR;

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn root_lists_export_unexport_chip_and_sim() {
    let Some(m) = mount(DEMO) else { return };
    assert_eq!(
        m.ls("").unwrap(),
        names(&["chip0", "export", "gpiochip512", "sim", "unexport"])
    );
    assert_mode(&m, "", DIR, 0o755);
}

#[test]
fn export_and_unexport_are_write_only_regular_files() {
    let Some(m) = mount(DEMO) else { return };
    for f in ["export", "unexport"] {
        assert_mode(&m, f, REG, 0o200);
        let st = m.stat(f).unwrap();
        assert_eq!((st.st_uid, st.st_gid), (0, 0), "{f} owner");
    }
}

#[test]
fn gpiochip_directory_and_attributes() {
    let Some(m) = mount(DEMO) else { return };
    assert_mode(&m, "gpiochip512", DIR, 0o755);
    assert_eq!(
        m.ls("gpiochip512").unwrap(),
        names(&[
            "base",
            "device",
            "label",
            "ngpio",
            "power",
            "subsystem",
            "uevent"
        ])
    );
    for f in ["base", "label", "ngpio"] {
        assert_mode(&m, &format!("gpiochip512/{f}"), REG, 0o444);
    }
    assert_mode(&m, "gpiochip512/uevent", REG, 0o644);
    assert_eq!(m.get("gpiochip512/base"), "512\n");
    assert_eq!(m.get("gpiochip512/label"), "demo\n");
    assert_eq!(m.get("gpiochip512/ngpio"), "32\n");
}

#[test]
fn gpiochip_device_power_subsystem_resolve_to_directories() {
    let Some(m) = mount(DEMO) else { return };
    for f in ["device", "power", "subsystem"] {
        let (kind, _) = m.mode(&format!("gpiochip512/{f}"));
        assert_eq!(kind, DIR, "stat(gpiochip512/{f}) must be a directory");
    }
    // As in the kernel: the chip's parent device holds the chip device.
    let (kind, _) = m.mode("gpiochip512/device/gpiochip0");
    assert_eq!(kind, DIR, "gpiochip512/device/gpiochip0");
}

#[test]
fn exported_gpio_directory_has_every_attribute_with_kernel_modes() {
    let Some(m) = mount(DEMO) else { return };
    assert!(!m.exists("gpio517"));
    m.put("export", "517");
    assert_mode(&m, "gpio517", DIR, 0o755);
    assert_eq!(
        m.ls("").unwrap(),
        names(&[
            "chip0",
            "export",
            "gpio517",
            "gpiochip512",
            "sim",
            "unexport"
        ])
    );
    assert_eq!(
        m.ls("gpio517").unwrap(),
        names(&[
            "active_low",
            "bias",
            "debounce_us",
            "device",
            "direction",
            "drive",
            "edge",
            "events",
            "holders",
            "power",
            "subsystem",
            "uevent",
            "value",
        ])
    );
    for f in [
        "direction",
        "value",
        "edge",
        "active_low",
        "uevent",
        "bias",
        "drive",
        "debounce_us",
    ] {
        assert_mode(&m, &format!("gpio517/{f}"), REG, 0o644);
    }
    assert_mode(&m, "gpio517/events", REG, 0o444);
    assert_mode(&m, "gpio517/holders", REG, 0o444);
    for f in ["device", "power", "subsystem"] {
        let (kind, _) = m.mode(&format!("gpio517/{f}"));
        assert_eq!(kind, DIR, "stat(gpio517/{f}) must be a directory");
    }
}

#[test]
fn exported_line_starts_with_kernel_defaults() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    // gpio-sim lines start as inputs pulled down; export changes nothing.
    assert_eq!(m.get("gpio512/direction"), "in\n");
    assert_eq!(m.get("gpio512/value"), "0\n");
    assert_eq!(m.get("gpio512/edge"), "none\n");
    assert_eq!(m.get("gpio512/active_low"), "0\n");
    assert_eq!(m.get("gpio512/bias"), "as-is\n");
    assert_eq!(m.get("gpio512/drive"), "push-pull\n");
    assert_eq!(m.get("gpio512/debounce_us"), "0\n");
}

#[test]
fn gpio_directory_disappears_on_unexport() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "520");
    assert!(m.exists("gpio520"));
    m.put("unexport", "520");
    m.stat("gpio520").want_err(libc::ENOENT);
    m.stat("gpio520/value").want_err(libc::ENOENT);
    assert_eq!(
        m.ls("").unwrap(),
        names(&["chip0", "export", "gpiochip512", "sim", "unexport"])
    );
    // And it can come back.
    m.put("export", "520");
    assert_eq!(m.get("gpio520/direction"), "in\n");
}

#[test]
fn gpio_directory_vanishes_at_once_while_others_walk_through_it() {
    // Line directories may be cached by the kernel; unexport must still
    // drop them before it returns, even with lookups racing it.
    let Some(m) = mount(DEMO) else { return };
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let _ = m.stat("gpio522/value");
                }
            });
        }
        // Stops the walkers also when an assertion below fails.
        let _stop = StopOnDrop(&stop);
        for _ in 0..300 {
            m.put("export", "522");
            assert!(m.exists("gpio522/value"));
            m.put("unexport", "522");
            m.stat("gpio522").want_err(libc::ENOENT);
            m.stat("gpio522/value").want_err(libc::ENOENT);
        }
    });
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_line_re_exported_while_its_old_directory_is_held_works() {
    let Some(m) = mount(DEMO) else { return };
    for _ in 0..20 {
        m.put("export", "521");
        // A process inside the directory keeps the old inode alive.
        let dir = std::fs::File::open(m.path().join("gpio521")).unwrap();
        m.get("gpio521/value");
        m.put("unexport", "521");
        m.stat("gpio521/value").want_err(libc::ENOENT);
        m.put("export", "521");
        assert_eq!(m.get("gpio521/direction"), "in\n");
        m.put("gpio521/direction", "out");
        assert_eq!(m.get("gpio521/value"), "0\n");
        drop(dir);
        m.put("unexport", "521");
    }
}

#[test]
fn two_chips_get_first_fit_bases_from_512() {
    let Some(m) = mount(&["--sim", "a:8,b:4"]) else {
        return;
    };
    assert_eq!(
        m.ls("").unwrap(),
        names(&[
            "chip0",
            "chip1",
            "export",
            "gpiochip512",
            "gpiochip520",
            "sim",
            "unexport"
        ])
    );
    assert_eq!(m.get("gpiochip512/label"), "a\n");
    assert_eq!(m.get("gpiochip512/ngpio"), "8\n");
    assert_eq!(m.get("gpiochip520/base"), "520\n");
    assert_eq!(m.get("gpiochip520/label"), "b\n");
    assert_eq!(m.get("gpiochip520/ngpio"), "4\n");
    assert!(m.exists("gpiochip520/device/gpiochip1"));
    // 520 is line 0 of chip b.
    m.put("export", "520");
    m.put("gpio520/direction", "high");
    assert_eq!(m.get("sim/b/line0/value"), "1\n");
    assert_eq!(m.get("sim/a/line0/value"), "0\n");
    // 523 is b's last line; 524 and 511 belong to no chip.
    m.put("export", "523");
    m.write("export", "524").want_err(libc::EINVAL);
    m.write("export", "511").want_err(libc::EINVAL);
}

#[test]
fn base_option_pins_a_chip() {
    let Some(m) = mount(&["--sim", "a:8,b:4", "--base", "b=100"]) else {
        return;
    };
    assert_eq!(
        m.ls("").unwrap(),
        names(&[
            "chip0",
            "chip1",
            "export",
            "gpiochip100",
            "gpiochip512",
            "sim",
            "unexport"
        ])
    );
    assert_eq!(m.get("gpiochip100/base"), "100\n");
    assert_eq!(m.get("gpiochip100/label"), "b\n");
    assert_eq!(m.get("gpiochip512/label"), "a\n");
    m.put("export", "103");
    m.put("gpio103/direction", "high");
    assert_eq!(m.get("sim/b/line3/value"), "1\n");
    m.write("export", "104").want_err(libc::EINVAL);
    m.write("export", "520").want_err(libc::EINVAL);
}

#[test]
fn base_option_zero_gives_old_numbers_and_others_stay_first_fit() {
    let Some(m) = mount(&["--sim", "a:8,b:4", "--base", "a=0"]) else {
        return;
    };
    assert_eq!(
        m.ls("").unwrap(),
        names(&[
            "chip0",
            "chip1",
            "export",
            "gpiochip0",
            "gpiochip512",
            "sim",
            "unexport"
        ])
    );
    assert_eq!(m.get("gpiochip0/base"), "0\n");
    assert_eq!(m.get("gpiochip0/label"), "a\n");
    assert_eq!(m.get("gpiochip512/label"), "b\n");
    m.put("export", "0");
    assert!(m.exists("gpio0"));
    m.put("export", "7");
    m.write("export", "8").want_err(libc::EINVAL);
}

#[test]
fn sim_control_tree_exists() {
    let Some(m) = mount(&["--sim", "demo:4,other:2"]) else {
        return;
    };
    assert_eq!(m.ls("sim").unwrap(), names(&["demo", "other"]));
    assert_eq!(
        m.ls("sim/demo").unwrap(),
        names(&["line0", "line1", "line2", "line3"])
    );
    assert_eq!(m.ls("sim/other").unwrap(), names(&["line0", "line1"]));
    assert_eq!(
        m.ls("sim/demo/line2").unwrap(),
        names(&["hog", "pull", "value"])
    );
    assert_mode(&m, "sim/demo/line2/pull", REG, 0o644);
    assert_mode(&m, "sim/demo/line2/hog", REG, 0o644);
    assert_mode(&m, "sim/demo/line2/value", REG, 0o444);
}
