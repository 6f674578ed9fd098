//! SPEC §1, the per-chip ABI of Linux 6.17+ (drivers/gpio/gpiolib-sysfs.c
//! of 7.3): `chip<X>/` with export/unexport by offset, `chip<X>/gpio<OFFSET>/`
//! for lines exported through either interface, and `--abi` shapes.

mod common;
mod notify_common;

use common::*;
use notify_common::*;

const REG: u32 = libc::S_IFREG;
const DIR: u32 = libc::S_IFDIR;
const LINK: u32 = libc::S_IFLNK;

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

const CHIP_DIR: &[&str] = &[
    "device",
    "export",
    "label",
    "ngpio",
    "power",
    "subsystem",
    "uevent",
    "unexport",
];

#[test]
fn chip_directories_are_numbered_like_dev_gpiochip() {
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
    assert_mode(&m, "chip0", DIR, 0o755);
    assert_eq!(m.ls("chip0").unwrap(), names(CHIP_DIR));
    assert_eq!(m.get("chip0/label"), "a\n");
    assert_eq!(m.get("chip0/ngpio"), "8\n");
    assert_eq!(m.get("chip1/label"), "b\n");
    assert_eq!(m.get("chip1/ngpio"), "4\n");
    assert!(!m.exists("chip2"));
    // Only the canonical spelling names a chip.
    assert!(!m.exists("chip00"));
    assert!(!m.exists("chip+1"));
}

#[test]
fn chip_directory_modes_match_the_kernel() {
    let Some(m) = mount(DEMO) else { return };
    for f in ["export", "unexport"] {
        assert_mode(&m, &format!("chip0/{f}"), REG, 0o200);
    }
    for f in ["label", "ngpio"] {
        assert_mode(&m, &format!("chip0/{f}"), REG, 0o444);
    }
    assert_mode(&m, "chip0/uevent", REG, 0o644);
    assert_mode(&m, "chip0/power", DIR, 0o755);
    let st = m.lstat("chip0/subsystem").unwrap();
    assert_eq!(st.st_mode & libc::S_IFMT, LINK, "subsystem is a symlink");
    // device leads to the chip's parent, which holds the chip device.
    assert_eq!(m.ls("chip0/device").unwrap(), ["gpiochip0"]);
    assert_eq!(m.get("chip0/uevent"), "");
    m.put("chip0/uevent", "change");
    m.write("chip0/uevent", "junk").want_err(libc::EINVAL);
    // sysfs checks the mode bits itself: EACCES even for root.
    m.open("chip0/label", libc::O_WRONLY).want_err(libc::EACCES);
    m.open("chip0/export", libc::O_RDONLY)
        .want_err(libc::EACCES);
    m.rmdir("chip0").want_err(libc::ENOTDIR);
}

#[test]
fn export_by_offset_shows_the_line_in_both_interfaces() {
    let Some(m) = mount(DEMO) else { return };
    m.put("chip0/export", "5");
    assert!(m.exists("gpio517"), "legacy gpio517 after chip0/export 5");
    assert_mode(&m, "chip0/gpio5", DIR, 0o755);
    assert_eq!(m.ls("chip0/gpio5").unwrap(), names(&["direction", "value"]));
    assert_mode(&m, "chip0/gpio5/direction", REG, 0o644);
    assert_mode(&m, "chip0/gpio5/value", REG, 0o644);
    let mut listing = names(CHIP_DIR);
    listing.push("gpio5".into());
    listing.sort();
    assert_eq!(m.ls("chip0").unwrap(), listing);
    assert_eq!(m.get("chip0/gpio5/direction"), "in\n");
    assert_eq!(m.get("chip0/gpio5/value"), "0\n");

    // unexport through the legacy interface removes both
    m.put("unexport", "517");
    assert!(!m.exists("gpio517"));
    assert!(!m.exists("chip0/gpio5"), "chip0/gpio5 after unexport 517");
    assert_eq!(m.ls("chip0").unwrap(), names(CHIP_DIR));

    // and the other way round
    m.put("export", "517");
    assert_eq!(m.ls("chip0/gpio5").unwrap(), names(&["direction", "value"]));
    m.put("chip0/unexport", "5");
    assert!(!m.exists("chip0/gpio5"));
    assert!(!m.exists("gpio517"), "gpio517 after chip0/unexport 5");
}

#[test]
fn both_interfaces_drive_the_same_line() {
    let Some(m) = mount(DEMO) else { return };
    m.put("chip0/export", "3");
    m.put("chip0/gpio3/direction", "high");
    assert_eq!(m.get("gpio515/direction"), "out\n");
    assert_eq!(m.get("gpio515/value"), "1\n");
    assert_eq!(m.get("sim/demo/line3/value"), "1\n");
    m.put("chip0/gpio3/value", "0");
    assert_eq!(m.get("sim/demo/line3/value"), "0\n");
    // active_low (legacy only) applies to the chip's value too
    m.put("gpio515/active_low", "1");
    assert_eq!(m.get("chip0/gpio3/value"), "1\n");
    m.put("gpio515/direction", "in");
    assert_eq!(m.get("chip0/gpio3/direction"), "in\n");
}

#[test]
fn chip_export_errnos_match_the_kernel() {
    let Some(m) = mount(DEMO) else { return };
    // kstrtouint: no sign but '+', base 0, one newline; past u32: ERANGE
    for junk in ["\n", "x", "5x", " 5", "-1", "-0", "++5", "5\n\n", "demo-5"] {
        m.write("chip0/export", junk).want_err(libc::EINVAL);
        m.write("chip0/unexport", junk).want_err(libc::EINVAL);
    }
    m.write("chip0/export", "4294967296").want_err(libc::ERANGE);
    m.write("chip0/unexport", "99999999999999999999")
        .want_err(libc::ERANGE);
    // past the chip's last line (gpio_device_get_desc)
    for n in ["32", "4294967295"] {
        m.write("chip0/export", n).want_err(libc::EINVAL);
        m.write("chip0/unexport", n).want_err(libc::EINVAL);
    }
    // not exported
    m.write("chip0/unexport", "4").want_err(libc::EINVAL);
    m.put("chip0/export", "+4\n");
    m.put("chip0/unexport", "0x4");
    m.put("chip0/export", "010");
    assert!(m.exists("chip0/gpio8"));
    // already exported, through either interface
    m.write("chip0/export", "8").want_err(libc::EBUSY);
    m.write("export", "520").want_err(libc::EBUSY);
    m.put("export", "521");
    m.write("chip0/export", "9").want_err(libc::EBUSY);
}

#[test]
fn chip_line_attribute_errnos_match_the_kernel() {
    let Some(m) = mount(DEMO) else { return };
    m.put("chip0/export", "2");
    m.write("chip0/gpio2/direction", "sideways")
        .want_err(libc::EINVAL);
    m.write("chip0/gpio2/value", "1").want_err(libc::EPERM);
    m.put("chip0/gpio2/direction", "out");
    m.write("chip0/gpio2/value", "junk").want_err(libc::EINVAL);
    m.put("chip0/gpio2/value", "1\n");
    assert_eq!(m.get("chip0/gpio2/value"), "1\n");
    m.mkdir("chip0/gpio2/x").want_err(libc::EPERM);
    m.rmdir("chip0/gpio2").want_err(libc::EPERM);
    // names that are no line of the chip
    for name in ["gpio32", "gpio02", "gpio", "gpio2x"] {
        assert!(!m.exists(&format!("chip0/{name}")), "{name}");
    }
    assert!(!m.exists("chip0/gpio3"), "a line that is not exported");
}

#[test]
fn files_left_open_across_unexport_fail_with_enodev() {
    let Some(m) = mount(DEMO) else { return };
    m.put("chip0/export", "6");
    let fd = m.open("chip0/gpio6/value", libc::O_RDWR).unwrap();
    assert_eq!(fd.pread(10, 0).unwrap(), b"0\n");
    m.put("unexport", "518");
    fd.pread(10, 0).want_err(libc::ENODEV);
    assert_eq!(poll_one(fd.0, libc::POLLPRI, 0), PRI_ERR);
    m.put("export", "518");
    fd.pread(10, 0).want_err(libc::ENODEV);
}

/// Only the legacy `gpio<N>/value` is notified on edges (gpiolib-sysfs.c
/// calls sysfs_notify_dirent on its kernfs node alone): `chip<X>/gpio<N>/
/// value` polls like any attribute, ready once after open and never again.
#[test]
fn chip_value_polls_like_a_plain_attribute() {
    let Some(m) = mount(DEMO) else { return };
    m.put("chip0/export", "5");
    m.put("gpio517/edge", "both");
    let chip_fd = m.open("chip0/gpio5/value", libc::O_RDONLY).unwrap();
    let legacy_fd = m.open("gpio517/value", libc::O_RDONLY).unwrap();
    assert_eq!(poll_one(chip_fd.0, ALL_POLL, 0), DEFAULT_POLLMASK | PRI_ERR);
    assert_eq!(chip_fd.pread(10, 0).unwrap(), b"0\n");
    assert_eq!(legacy_fd.pread(10, 0).unwrap(), b"0\n");
    assert_eq!(poll_one(chip_fd.0, ALL_POLL, 0), DEFAULT_POLLMASK);

    m.put("sim/demo/line5/pull", "pull-up");
    assert_eq!(
        poll_one(legacy_fd.0, libc::POLLPRI, SOON.as_millis() as i32),
        PRI_ERR,
        "the legacy value sees the edge"
    );
    assert_eq!(
        poll_one(chip_fd.0, libc::POLLPRI, QUIET.as_millis() as i32),
        0,
        "chip0/gpio5/value is not notified"
    );
    assert_eq!(chip_fd.pread(10, 0).unwrap(), b"1\n");
}

#[test]
fn abi_legacy_shows_no_chip_directories() {
    let Some(m) = mount(&["--sim", "demo:32", "--abi", "legacy"]) else {
        return;
    };
    assert_eq!(
        m.ls("").unwrap(),
        names(&["export", "gpiochip512", "sim", "unexport"])
    );
    assert!(!m.exists("chip0"));
    m.put("export", "512");
    assert!(m.exists("gpio512/value"));
    assert!(!m.exists("chip0/gpio0"));
}

#[test]
fn abi_chip_shows_only_chip_directories() {
    let Some(m) = mount(&["--sim", "demo:32", "--abi", "chip"]) else {
        return;
    };
    assert_eq!(m.ls("").unwrap(), names(&["chip0", "sim"]));
    for gone in ["export", "unexport", "gpiochip512"] {
        assert!(!m.exists(gone), "{gone} with --abi chip");
    }
    m.put("chip0/export", "1");
    assert_eq!(m.ls("").unwrap(), names(&["chip0", "sim"]));
    assert!(!m.exists("gpio513"));
    m.put("chip0/gpio1/direction", "high");
    assert_eq!(m.get("sim/demo/line1/value"), "1\n");
    m.put("chip0/unexport", "1");
    assert!(!m.exists("chip0/gpio1"));
}

#[test]
fn abi_rejects_unknown_shapes() {
    if !fuse_usable() {
        return;
    }
    let dir = TempDir::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gpiofs"))
        .args(["--sim", "demo:8", "--abi", "new"])
        .arg(dir.path().join("mnt"))
        .output()
        .expect("run gpiofs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("legacy, chip or both"), "{err}");
    assert!(!is_mounted(&dir.path().join("mnt")));
}
