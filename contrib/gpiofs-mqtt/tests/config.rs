//! The command line and the config file: `--check-config`, exit status 2
//! naming the field of a bad config, exit status 1 when the tree is absent.

mod common;

use std::process::{Command, Output};

use common::TempDir;

const GOOD: &str = "node_id = \"shed\"\n[broker]\nurl = \"mqtt://127.0.0.1:1\"\n\
                    [[input]]\nline = 512\nname = \"door\"\n[[output]]\nline = \"GPIO27\"\nname = \"relay\"\ninitial = \"ON\"\n";

fn bridge(dir: &TempDir, config: &str, args: &[&str]) -> Output {
    let file = dir.path().join("c.toml");
    std::fs::write(&file, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_gpiofs-mqtt"))
        .arg("--config")
        .arg(&file)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn check_config_prints_the_topics_and_exits_0() {
    let dir = TempDir::new("check");
    let out = bridge(&dir, GOOD, &["--check-config"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "status gpiofs/shed/status",
        "input door (line 512): gpiofs/shed/door/state gpiofs/shed/door/event",
        "output relay (line GPIO27): gpiofs/shed/relay/state gpiofs/shed/relay/set",
        "discovery homeassistant/+/shed/+/config",
        "queue 10000 events",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

#[test]
fn a_bad_config_exits_2_naming_the_field() {
    let dir = TempDir::new("bad");
    let cases: &[(&str, &str)] = &[
        (&GOOD.replace("url", "uri"), "broker.uri"),
        (&GOOD.replace("mqtt://", "http://"), "broker.url"),
        (
            &GOOD.replace("127.0.0.1:1", "127.0.0.1:99999"),
            "broker.url",
        ),
        (
            &GOOD.replace("name = \"door\"", "name = \"door\"\nbias = \"pullup\""),
            "input[0].bias",
        ),
        (
            &GOOD.replace("name = \"door\"", "name = \"door\"\ndebounce_us = \"soon\""),
            "input[0].debounce_us",
        ),
        (
            &GOOD.replace("initial = \"ON\"", "initial = \"HALF\""),
            "output[0].initial",
        ),
        (
            &GOOD.replace("name = \"relay\"", "name = \"door\""),
            "output[0].name",
        ),
        (
            &GOOD.replace("name = \"door\"", "name = \"front/door\""),
            "input[0].name",
        ),
        (&GOOD.replace("line = 512", "line = -1"), "input[0].line"),
        (
            &GOOD.replace("node_id = \"shed\"", "node_id = \"my shed\""),
            "node_id",
        ),
        (
            &GOOD.replace("node_id = \"shed\"", "prefix = \"a/#\""),
            "prefix",
        ),
        (&GOOD.replace("node_id = \"shed\"", "queue = 0"), "queue"),
        (
            &GOOD.replace("[broker]", "[broker]\nca_file = \"/nonexistent.pem\""),
            "broker.ca_file",
        ),
        (
            &GOOD.replace("[broker]", "[broker]\npassword = \"x\""),
            "broker.password",
        ),
        ("[broker]\nurl = \"mqtt://h\"\n", "input"),
        ("[[input]]\nline = 512\nname = \"door\"\n", "broker"),
        ("[broker\n", "(file)"),
    ];
    for (config, field) in cases {
        let out = bridge(&dir, config, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{config}\n{err}");
        assert!(
            err.contains(&format!(": {field}: ")),
            "{field} not named in {err:?}"
        );
    }
    let missing = Command::new(env!("CARGO_BIN_EXE_gpiofs-mqtt"))
        .args(["--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn a_tree_that_is_not_there_exits_1() {
    let dir = TempDir::new("notree");
    let config = GOOD.replace(
        "node_id",
        &format!("tree = \"{}\"\nnode_id", dir.path().display()),
    );
    let out = bridge(&dir, &config, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no export file"), "{err}");
}

#[test]
fn the_example_config_checks() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/example.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_gpiofs-mqtt"))
        .args(["--config", example, "--check-config"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
