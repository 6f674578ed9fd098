//! SPEC §2 "Ownership and modes": chown/chmod persist, `--group`, and
//! access by other users under the kernel's own permission checks.

mod common;

use common::*;

#[test]
fn chmod_persists_while_mounted() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.chmod("gpio512/value", 0o666).unwrap();
    m.chmod("export", 0o220).unwrap();
    m.chmod("gpiochip512", 0o700).unwrap();
    m.chmod("gpio512", 0o750).unwrap();
    // Other activity does not reset them.
    m.put("gpio512/direction", "out");
    m.put("gpio512/value", "1");
    m.put("export", "513");
    m.put("unexport", "513");
    assert_mode(&m, "gpio512/value", libc::S_IFREG, 0o666);
    assert_mode(&m, "export", libc::S_IFREG, 0o220);
    assert_mode(&m, "gpiochip512", libc::S_IFDIR, 0o700);
    assert_mode(&m, "gpio512", libc::S_IFDIR, 0o750);
    assert_eq!(m.get("gpio512/value"), "1\n");
    // Seen by a fresh process too.
    assert_eq!(m.sh_ok("stat -c %a gpio512/value export"), "666\n220\n");
}

#[test]
fn chown_persists_while_mounted() {
    let Some(m) = mount(DEMO) else { return };
    m.put("export", "512");
    m.chown("gpio512/value", NOBODY, NOBODY).unwrap();
    m.chown("export", NOBODY, 0).unwrap();
    m.chown("gpiochip512/base", 1, 2).unwrap();
    m.put("gpio512/direction", "out");
    m.put("gpio512/value", "1");
    let st = m.stat("gpio512/value").unwrap();
    assert_eq!((st.st_uid, st.st_gid), (NOBODY, NOBODY));
    assert_eq!(st.st_mode & 0o7777, 0o644, "chown keeps the mode");
    let st = m.stat("export").unwrap();
    assert_eq!((st.st_uid, st.st_gid), (NOBODY, 0));
    let st = m.stat("gpiochip512/base").unwrap();
    assert_eq!((st.st_uid, st.st_gid), (1, 2));
    assert_eq!(
        m.sh_ok("stat -c %u:%g gpio512/value export"),
        format!("{NOBODY}:{NOBODY}\n{NOBODY}:0\n")
    );
}

/// `--group G` does what Raspberry Pi OS's udev rule does
/// (`chgrp -R gpio ... && chmod -R g=u ...`): every node gets group G and
/// group rights equal to the owner's.
#[test]
fn group_option_gives_nodes_the_group_with_owner_rights() {
    if !fuse_usable() {
        return;
    }
    let gid = gid_of("dialout").expect("group dialout exists on Debian");
    let Some(m) = mount(&["--sim", "demo:32", "--group", "dialout"]) else {
        return;
    };
    m.put("export", "512");
    let expect = [
        ("export", 0o220),
        ("unexport", 0o220),
        ("gpiochip512", 0o775),
        ("gpiochip512/base", 0o444),
        ("gpiochip512/label", 0o444),
        ("gpiochip512/ngpio", 0o444),
        ("gpiochip512/uevent", 0o664),
        ("gpio512", 0o775),
        ("gpio512/direction", 0o664),
        ("gpio512/value", 0o664),
        ("gpio512/edge", 0o664),
        ("gpio512/active_low", 0o664),
        ("gpio512/uevent", 0o664),
        ("gpio512/events", 0o444),
        ("gpio512/bias", 0o664),
        ("gpio512/drive", 0o664),
        ("gpio512/debounce_us", 0o664),
    ];
    for (rel, mode) in expect {
        let st = m.stat(rel).unwrap();
        assert_eq!(
            (st.st_uid, st.st_gid, st.st_mode & 0o7777),
            (0, gid, mode),
            "{rel}: want uid 0 gid {gid} mode {mode:04o}, got mode {:04o}",
            st.st_mode & 0o7777
        );
    }
}

#[test]
fn other_users_are_refused_without_allow_other() {
    let Some(m) = mount(DEMO) else { return };
    m.chmod("export", 0o222).unwrap();
    let out = m.sh_as(NOBODY, NOBODY, &[], "ls \"$M\"");
    assert!(
        !out.status.success(),
        "nobody could list a mount without --allow-other"
    );
    let out = m.sh_as(NOBODY, NOBODY, &[], "echo 512 > \"$M/export\"");
    assert!(!out.status.success());
    assert!(!m.exists("gpio512"));
}

#[test]
fn a_non_root_owner_of_export_can_export_with_allow_other() {
    let Some(m) = mount(&["--sim", "demo:32", "--allow-other"]) else {
        return;
    };
    // Root owns export (0200): nobody is refused by the kernel's check.
    let out = m.sh_as(NOBODY, NOBODY, &[], "echo 512 > \"$M/export\"");
    assert!(
        !out.status.success(),
        "nobody wrote a root-owned 0200 export"
    );
    assert!(!m.exists("gpio512"));
    // Everyone may read world-readable attributes.
    let out = m.sh_as(NOBODY, NOBODY, &[], "cat \"$M/gpiochip512/base\"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "512\n");

    m.chown("export", NOBODY, NOBODY).unwrap();
    m.chown("unexport", NOBODY, NOBODY).unwrap();
    let out = m.sh_as(NOBODY, NOBODY, &[], "echo 512 > \"$M/export\"");
    assert!(
        out.status.success(),
        "nobody could not export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(m.exists("gpio512"));
    // New nodes belong to root, as in sysfs: readable, not writable.
    let out = m.sh_as(NOBODY, NOBODY, &[], "cat \"$M/gpio512/value\"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");
    let out = m.sh_as(NOBODY, NOBODY, &[], "echo out > \"$M/gpio512/direction\"");
    assert!(!out.status.success(), "nobody wrote a root-owned 0644 file");
    assert_eq!(m.get("gpio512/direction"), "in\n");
    // After chown, nobody drives the line.
    m.chown("gpio512/direction", NOBODY, NOBODY).unwrap();
    m.chown("gpio512/value", NOBODY, NOBODY).unwrap();
    let out = m.sh_as(
        NOBODY,
        NOBODY,
        &[],
        "echo high > \"$M/gpio512/direction\" && echo 0 > \"$M/gpio512/value\" && cat \"$M/gpio512/value\"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");
    let out = m.sh_as(NOBODY, NOBODY, &[], "echo 512 > \"$M/unexport\"");
    assert!(out.status.success());
    assert!(!m.exists("gpio512"));
}

#[test]
fn group_members_can_use_gpio_with_group_option() {
    if !fuse_usable() {
        return;
    }
    let gid = gid_of("dialout").expect("group dialout exists on Debian");
    let Some(m) = mount(&["--sim", "demo:32", "--allow-other", "--group", "dialout"]) else {
        return;
    };
    let script = "echo 512 > \"$M/export\" && echo high > \"$M/gpio512/direction\" \
                  && cat \"$M/gpio512/value\" && echo 512 > \"$M/unexport\"";
    // Not in the group: refused.
    let out = m.sh_as(NOBODY, NOBODY, &[], script);
    assert!(!out.status.success(), "nobody outside the group exported");
    assert!(!m.exists("gpio512"));
    // In the group (supplementary): allowed, like a Pi user in group gpio.
    let out = m.sh_as(NOBODY, NOBODY, &[gid], script);
    assert!(
        out.status.success(),
        "group member failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n");
    assert!(!m.exists("gpio512"));
}
