//! SPEC §2 "Errors": every errno row, checked against what the kernel's
//! gpiolib-sysfs.c / kernfs / VFS return.

mod common;

use common::*;

/// Asserts that no gpio<N> directory exists.
#[track_caller]
fn assert_nothing_exported(m: &Mount) {
    let l = m.ls("").unwrap();
    assert!(
        !l.iter()
            .any(|n| n.starts_with("gpio") && !n.starts_with("gpiochip")),
        "unexpected export: {l:?}"
    );
}

#[test]
fn export_of_a_number_no_chip_owns_is_einval() {
    let Some(m) = mount(DEMO) else { return };
    for n in ["511", "544", "0", "1", "100000", "2147483647", "4294967295"] {
        m.write("export", n).want_err(libc::EINVAL);
        m.write("unexport", n).want_err(libc::EINVAL);
    }
    assert_nothing_exported(&m);
}

#[test]
fn export_of_a_negative_number_is_einval() {
    let Some(m) = mount(DEMO) else { return };
    for n in ["-1", "-512", "-0x200", "-1\n"] {
        m.write("export", n).want_err(libc::EINVAL);
        m.write("unexport", n).want_err(libc::EINVAL);
    }
    assert_nothing_exported(&m);
}

#[test]
fn export_of_junk_is_einval() {
    let Some(m) = mount(DEMO) else { return };
    for junk in [
        "abc", "512abc", "512\n\n", "\n", " 512", "512 ", "5 12", "0x", "0999", "++512", "+-512",
        "--512", "512.0", "\t512", "512\r\n", "0x200g",
    ] {
        let r = m.write("export", junk);
        assert_eq!(
            r.err(),
            Some(Errno(libc::EINVAL)),
            "export of {junk:?} must be EINVAL"
        );
        m.write("unexport", junk).want_err(libc::EINVAL);
    }
    assert_nothing_exported(&m);
}

/// Kernel: kstrtol() returns -ERANGE on overflow and export_store passes
/// it on unchanged (gpiolib-sysfs.c export_store: `if (status) return
/// status;`), so an overflowing number is ERANGE, not EINVAL.
#[test]
fn export_of_an_overflowing_number_is_erange_like_kstrtol() {
    let Some(m) = mount(DEMO) else { return };
    for n in [
        "99999999999999999999",
        "-99999999999999999999",
        "9223372036854775808",
        "0xfffffffffffffffff",
    ] {
        let r = m.write("export", n);
        assert_eq!(r.err(), Some(Errno(libc::ERANGE)), "export of {n:?}");
        let r = m.write("unexport", n);
        assert_eq!(r.err(), Some(Errno(libc::ERANGE)), "unexport of {n:?}");
    }
    m.assert_answers("overflowing numbers");
}

#[test]
fn unexport_of_a_line_that_is_not_exported_is_einval() {
    let Some(m) = mount(DEMO) else { return };
    m.write("unexport", "512").want_err(libc::EINVAL);
    m.put("export", "512");
    m.put("unexport", "512");
    m.write("unexport", "512").want_err(libc::EINVAL);
    // A hogged (requested elsewhere) line was not exported by us either.
    m.put("sim/demo/line4/hog", "someone\n");
    m.write("unexport", "516").want_err(libc::EINVAL);
    assert_eq!(m.get("sim/demo/line4/hog").trim_end(), "someone");
}

#[test]
fn export_twice_is_ebusy() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.write("export", "512").want_err(libc::EBUSY);
    m.write("export", "0x200").want_err(libc::EBUSY);
    m.write("export", "demo-0").want_err(libc::EBUSY);
    // The existing export is untouched.
    assert_eq!(m.get("gpio512/direction"), "in\n");
}

#[test]
fn export_of_a_line_held_by_another_program_is_ebusy() {
    let Some(m) = mount(DEMO) else { return };
    m.put("sim/demo/line3/hog", "other-program\n");
    m.write("export", "515").want_err(libc::EBUSY);
    m.write("export", "demo-3").want_err(libc::EBUSY);
    assert!(!m.exists("gpio515"));
    m.put("sim/demo/line3/hog", "\n");
    m.put("export", "515");
    assert!(m.exists("gpio515"));
}

#[test]
fn direction_junk_is_einval() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for junk in [
        "inn", "IN", "Out", "in\n\n", " in", "in ", "output", "\n", "hi", "1", "in\r\n", "o",
    ] {
        let r = m.write("gpio512/direction", junk);
        assert_eq!(r.err(), Some(Errno(libc::EINVAL)), "direction {junk:?}");
    }
    assert_eq!(m.get("gpio512/direction"), "in\n");
}

#[test]
fn edge_junk_is_einval() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for junk in [
        "up",
        "Rising",
        "rising\n\n",
        "bothh",
        "\n",
        " none",
        "1",
        "rise",
    ] {
        let r = m.write("gpio512/edge", junk);
        assert_eq!(r.err(), Some(Errno(libc::EINVAL)), "edge {junk:?}");
    }
    assert_eq!(m.get("gpio512/edge"), "none\n");
}

#[test]
fn active_low_junk_is_einval() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for junk in ["yes", "true", "1\n\n", "\n", " 1", "1a", "0x", "one"] {
        let r = m.write("gpio512/active_low", junk);
        assert_eq!(r.err(), Some(Errno(libc::EINVAL)), "active_low {junk:?}");
    }
    assert_eq!(m.get("gpio512/active_low"), "0\n");
    let r = m.write("gpio512/active_low", "99999999999999999999");
    assert_eq!(r.err(), Some(Errno(libc::ERANGE)), "kstrtol overflow");
}

#[test]
fn value_junk_on_an_output_is_einval() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.put("gpio512/direction", "high");
    for junk in ["high", "on", "1\n\n", "\n", " 1", "1 ", "x", "0x"] {
        let r = m.write("gpio512/value", junk);
        assert_eq!(r.err(), Some(Errno(libc::EINVAL)), "value {junk:?}");
    }
    assert_eq!(m.get("gpio512/value"), "1\n");
    let r = m.write("gpio512/value", "99999999999999999999");
    assert_eq!(r.err(), Some(Errno(libc::ERANGE)), "kstrtol overflow");
    assert_eq!(m.get("gpio512/value"), "1\n");
}

#[test]
fn value_write_on_an_input_is_eperm() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for v in ["1", "0", "1\n", "0x1"] {
        let r = m.write("gpio512/value", v);
        assert_eq!(r.err(), Some(Errno(libc::EPERM)), "value {v:?} on an input");
    }
    assert_eq!(m.get("gpio512/value"), "0\n");
    assert_eq!(m.get("gpio512/direction"), "in\n");
}

/// Junk written to an input's value: Linux 6.17+ parses first (kstrtol,
/// then gpiod_set_value_cansleep refuses an input with EPERM), so junk is
/// EINVAL or ERANGE; 6.12 said EPERM whatever the text. gpiofs follows the
/// newer kernel (tests/vm/suite/kernel-differences.txt).
#[test]
fn value_junk_on_an_input_is_a_parse_error_like_linux_6_17() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for (junk, errno) in [
        ("junk", libc::EINVAL),
        ("\n", libc::EINVAL),
        ("1\n\n", libc::EINVAL),
        ("99999999999999999999", libc::ERANGE),
    ] {
        let r = m.write("gpio512/value", junk);
        assert_eq!(r.err(), Some(Errno(errno)), "value {junk:?} on an input");
    }
}

#[test]
fn edge_other_than_none_on_an_output_is_eio() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.put("gpio512/direction", "out");
    for e in ["rising", "falling", "both", "both\n"] {
        let r = m.write("gpio512/edge", e);
        assert_eq!(r.err(), Some(Errno(libc::EIO)), "edge {e:?} on an output");
        assert_eq!(m.get("gpio512/edge"), "none\n");
    }
    m.put("gpio512/edge", "none");
    assert_eq!(m.get("gpio512/edge"), "none\n");
    assert_eq!(m.get("gpio512/direction"), "out\n");
}

/// SPEC says "direction out while edge is set: EIO". The kernel disagrees:
/// direction_store uses gpiod_direction_output_raw(), which (since the raw
/// operations became truly raw, v4.12) goes straight to
/// gpiod_direction_output_raw_commit() without the FLAG_USED_AS_IRQ check
/// that only gpiod_direction_output() has (gpiolib.c 6.12, lines ~2759 and
/// ~2854). So `echo out > direction` succeeds and edge keeps its setting.
#[test]
fn direction_out_while_edge_is_set_succeeds_like_the_kernel() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.put("gpio512/edge", "both");
    m.write("gpio512/direction", "out").want_ok();
    assert_eq!(m.get("gpio512/direction"), "out\n");
    assert_eq!(m.get("gpio512/edge"), "both\n");
    m.put("gpio512/direction", "in");
    m.put("gpio512/edge", "rising");
    m.write("gpio512/direction", "high").want_ok();
    assert_eq!(m.get("gpio512/value"), "1\n");
    assert_eq!(m.get("sim/demo/line0/value"), "1\n");
}

#[test]
fn read_only_attributes_refuse_writing_even_for_root() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for f in [
        "gpiochip512/base",
        "gpiochip512/label",
        "gpiochip512/ngpio",
        "gpio512/events",
        "sim/demo/line0/value",
    ] {
        m.open(f, libc::O_WRONLY).want_err(libc::EACCES);
        m.open(f, libc::O_RDWR).want_err(libc::EACCES);
        m.open(f, libc::O_WRONLY | libc::O_TRUNC)
            .want_err(libc::EACCES);
    }
    let out = m.sh("echo 600 > gpiochip512/base");
    assert!(!out.status.success(), "echo > base must fail");
    assert_eq!(m.get("gpiochip512/base"), "512\n");
}

#[test]
fn write_only_attributes_refuse_reading_even_for_root() {
    let Some(m) = mount(DEMO) else { return };
    for f in ["export", "unexport"] {
        m.open(f, libc::O_RDONLY).want_err(libc::EACCES);
        m.open(f, libc::O_RDWR).want_err(libc::EACCES);
    }
    let out = m.sh("cat export");
    assert!(!out.status.success(), "cat export must fail");
}

/// sysfs checks the mode bits itself on open (kernfs_fop_open with
/// KERNFS_ROOT_EXTRA_OPEN_PERM_CHECK): after chmod, root is refused what
/// the bits no longer allow, and bits cannot add an operation the
/// attribute lacks.
#[test]
fn mode_bits_rule_after_chmod_even_for_root() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.chmod("gpio512/direction", 0o444).unwrap();
    m.open("gpio512/direction", libc::O_WRONLY)
        .want_err(libc::EACCES);
    assert_eq!(m.get("gpio512/direction"), "in\n");
    m.chmod("gpio512/direction", 0o200).unwrap();
    m.open("gpio512/direction", libc::O_RDONLY)
        .want_err(libc::EACCES);
    m.put("gpio512/direction", "out");
    // A store-less attribute stays unwritable whatever its mode says.
    m.chmod("gpiochip512/ngpio", 0o666).unwrap();
    m.open("gpiochip512/ngpio", libc::O_WRONLY)
        .want_err(libc::EACCES);
    // A show-less attribute stays unreadable.
    m.chmod("export", 0o644).unwrap();
    m.open("export", libc::O_RDONLY).want_err(libc::EACCES);
    m.put("export", "513");
}

#[test]
fn unlink_is_eperm() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for f in [
        "export",
        "unexport",
        "gpiochip512/base",
        "gpiochip512/uevent",
        "gpio512/value",
        "gpio512/direction",
    ] {
        let r = m.unlink(f);
        assert_eq!(r.err(), Some(Errno(libc::EPERM)), "unlink {f}");
        assert!(m.exists(f), "{f} still there");
    }
    let out = m.sh("rm -f export");
    assert!(!out.status.success(), "rm -f export must fail");
}

#[test]
fn mkdir_is_eperm_everywhere() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for d in [
        "newdir",
        "gpio999",
        "gpio513",
        "gpiochip512/newdir",
        "gpio512/newdir",
    ] {
        let r = m.mkdir(d);
        assert_eq!(r.err(), Some(Errno(libc::EPERM)), "mkdir {d}");
    }
    assert!(!m.exists("gpio513"), "mkdir must not export");
}

#[test]
fn creating_a_file_is_eacces() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for f in ["newfile", "gpiochip512/newfile", "gpio512/newfile"] {
        m.open(f, libc::O_WRONLY | libc::O_CREAT)
            .want_err(libc::EACCES);
        m.open(f, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL)
            .want_err(libc::EACCES);
        assert!(!m.exists(f));
    }
    // O_CREAT on an existing attribute (what `echo >` does) is fine.
    m.write_flags("gpio512/direction", b"out", libc::O_CREAT | libc::O_TRUNC)
        .want_ok();
}

#[test]
fn rmdir_of_chip_and_gpio_directories_is_enotdir() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    for d in ["gpiochip512", "gpio512"] {
        let r = m.rmdir(d);
        assert_eq!(r.err(), Some(Errno(libc::ENOTDIR)), "rmdir {d}");
        assert!(m.exists(d));
    }
    assert_eq!(m.get("gpio512/direction"), "in\n");
}

#[test]
fn uevent_reads_empty() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    assert_eq!(m.get("gpiochip512/uevent"), "");
    assert_eq!(m.get("gpio512/uevent"), "");
}

const UUID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

#[test]
fn uevent_accepts_kernel_action_syntax() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    let good = [
        "add".to_string(),
        "remove\n".into(),
        "change\n".into(),
        "move".into(),
        "online\n".into(),
        "offline".into(),
        "bind".into(),
        "unbind\n".into(),
        "change\0".into(),
        format!("change {UUID}"),
        format!("change {UUID}\n"),
        format!("add {UUID} FOO=bar"),
        format!("add {UUID} FOO=bar BAZ=1\n"),
    ];
    for f in ["gpiochip512/uevent", "gpio512/uevent"] {
        for g in &good {
            let r = m.write(f, g);
            assert!(r.is_ok(), "{f}: {g:?} gave {r:?}");
        }
    }
    // "remove" only synthesises an event: nothing goes away.
    assert!(m.exists("gpio512/value"));
    assert!(m.exists("gpiochip512/base"));
}

#[test]
fn uevent_rejects_anything_else_with_einval() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    let bad = [
        "junk\n".to_string(),
        "\n".into(),
        "Change".into(),
        "changes".into(),
        "chang".into(),
        "change ".into(),
        "change notauuid".into(),
        "change 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fz".into(),
        format!("change {UUID} FOO"),
        format!("change {UUID} =bar"),
        format!("change {UUID}x"),
        " change".into(),
    ];
    for f in ["gpiochip512/uevent", "gpio512/uevent"] {
        for b in &bad {
            let r = m.write(f, b);
            assert_eq!(r.err(), Some(Errno(libc::EINVAL)), "{f}: {b:?}");
        }
    }
}

/// sysfs_kf_write returns 0 for an empty write without calling the
/// attribute: a zero-length write succeeds and does nothing.
#[test]
fn zero_length_write_does_nothing() {
    let Some(m) = mount(DEMO) else { return };
    let fd = m.open("export", libc::O_WRONLY).unwrap();
    assert_eq!(fd.write(b"").unwrap(), 0);
    drop(fd);
    assert_nothing_exported(&m);
    m.assert_answers("empty write");
}

/// sysfs directories have no link/symlink/mknod operations and kernfs
/// refuses rename without syscall ops: all EPERM (fs/namei.c vfs_link,
/// vfs_symlink, vfs_mknod; kernfs_iop_rename). mknod of a regular file is
/// routed to vfs_create instead, hence EACCES.
#[test]
fn rename_link_symlink_mknod_are_eperm() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    let c = |rel: &str| std::ffi::CString::new(m.p(rel).as_os_str().as_encoded_bytes()).unwrap();
    let errno = |rc: libc::c_int| if rc < 0 { Err(Errno::last()) } else { Ok(()) };
    for (from, to) in [
        ("export", "export2"),
        ("gpio512/value", "gpio512/value2"),
        ("gpio512", "gpio513"),
        ("gpiochip512", "gpiochip0"),
    ] {
        let r = errno(unsafe { libc::rename(c(from).as_ptr(), c(to).as_ptr()) });
        assert_eq!(r.err(), Some(Errno(libc::EPERM)), "rename {from} {to}");
        assert!(m.exists(from));
        let r = errno(unsafe { libc::link(c(from).as_ptr(), c(to).as_ptr()) });
        if from.contains('/') || from == "export" {
            assert_eq!(r.err(), Some(Errno(libc::EPERM)), "link {from} {to}");
        } else {
            // link(2) of a directory is refused by the VFS first.
            assert!(r.is_err(), "link {from} {to}");
        }
    }
    let r = errno(unsafe { libc::symlink(c("export").as_ptr(), c("gpio600").as_ptr()) });
    assert_eq!(r.err(), Some(Errno(libc::EPERM)), "symlink");
    // mknod(S_IFREG) goes through vfs_create: EACCES like any creation.
    let r = errno(unsafe { libc::mknod(c("gpio601").as_ptr(), libc::S_IFREG | 0o644, 0) });
    assert_eq!(r.err(), Some(Errno(libc::EACCES)), "mknod S_IFREG");
    let r = errno(unsafe { libc::mknod(c("gpio512/fifo").as_ptr(), libc::S_IFIFO | 0o644, 0) });
    assert_eq!(r.err(), Some(Errno(libc::EPERM)), "mkfifo");
    assert_eq!(
        m.ls("").unwrap(),
        [
            "chip0",
            "export",
            "gpio512",
            "gpiochip512",
            "sim",
            "unexport"
        ]
    );
}

/// kernfs: once an attribute is removed, every file still open on it fails
/// reads and writes with ENODEV (kernfs_get_active fails), even after the
/// line is exported again (that is a new node).
#[test]
fn files_left_open_across_unexport_fail_with_enodev() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    let value = m.open("gpio512/value", libc::O_RDWR).unwrap();
    let direction = m.open("gpio512/direction", libc::O_RDWR).unwrap();
    assert_eq!(value.pread(16, 0).unwrap(), b"0\n");
    m.put("unexport", "512");
    value.pread(16, 0).want_err(libc::ENODEV);
    direction.write(b"out").want_err(libc::ENODEV);
    m.put("export", "512");
    value.pread(16, 0).want_err(libc::ENODEV);
    value.write(b"1").want_err(libc::ENODEV);
    direction.pread(16, 0).want_err(libc::ENODEV);
    assert_eq!(m.get("gpio512/direction"), "in\n");
    drop(value);
    drop(direction);
    m.assert_answers("closing stale files");
}
