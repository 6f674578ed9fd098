//! Keeps `gpiofs-bench` from rotting: a `--quick` run against a simulated
//! mount must exit 0, print every table, clean up its exports, and write
//! JSON that `--plot` can draw.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;

/// gpiofs-bench is its own workspace member (contrib/bench/gpiofs-bench),
/// so cargo does not build it for this package's tests: it must sit next
/// to the daemon, built from the current sources.
fn bench_binary() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_gpiofs")).with_file_name("gpiofs-bench");
    let hint = "build it with `cargo build --workspace --bins` (same profile as the tests)";
    let built = mtime(&bin).unwrap_or_else(|e| panic!("{}: {e}; {hint}", bin.display()));
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/bench/gpiofs-bench");
    let newest =
        newest_source(&crate_dir.join("src")).max(mtime(&crate_dir.join("Cargo.toml")).unwrap());
    assert!(
        built >= newest,
        "{} is older than its sources in {}; {hint}",
        bin.display(),
        crate_dir.display()
    );
    bin
}

fn mtime(path: &Path) -> std::io::Result<SystemTime> {
    std::fs::metadata(path)?.modified()
}

/// The latest modification time of the files gpiofs-bench is built from:
/// those under `dir` but not src/bin (the crate's other binaries).
fn newest_source(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            if !path.ends_with("src/bin") {
                newest = newest.max(newest_source(&path));
            }
        } else {
            newest = newest.max(mtime(&path).expect("mtime"));
        }
    }
    newest
}

const HEADINGS: [&str; 5] = [
    "== value read/write throughput",
    "== edge -> wake-up latency",
    "== events stream: edge -> blocking read(2) latency",
    "== events stream: sustained rate",
    "== daemon CPU and memory ==",
];

/// Runs the bench with a time limit; returns (success, stdout, stderr).
fn run_bench(args: &[&str]) -> (bool, String, String) {
    let mut child = Command::new(bench_binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gpiofs-bench");
    let status = wait_timeout(&mut child, Duration::from_secs(60));
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("bench output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("--- gpiofs-bench {args:?} ---\n{stdout}\n{stderr}");
    assert!(status.is_some(), "gpiofs-bench hung (killed after 60 s)");
    (out.status.success(), stdout, stderr)
}

#[test]
fn bench_quick_runs_against_a_sim_mount() {
    let Some(m) = mount(DEMO) else { return };
    let dir = TempDir::new();
    let json = dir.path().join("r.json");
    let svg = dir.path().join("r.svg");
    let plot = dir.path().join("plot.svg");
    let pid = m.pid().to_string();
    let class = m.path().to_string_lossy().into_owned();
    let trigger = m.p("sim/demo/line5/pull").to_string_lossy().into_owned();
    let t = Instant::now();
    let (ok, stdout, stderr) = run_bench(&[
        "--class-dir",
        &class,
        "--input",
        "517",
        "--trigger",
        &trigger,
        "--daemon-pid",
        &pid,
        "--quick",
        "--json",
        json.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    println!("quick run took {:?}", t.elapsed());
    assert!(ok, "gpiofs-bench --quick failed: {stderr}");
    for h in HEADINGS {
        assert!(stdout.contains(h), "missing table heading {h:?}");
    }
    assert!(
        !stdout.contains("n/a"),
        "a quick run against gpiofs left n/a cells"
    );
    // Its exports are gone again.
    assert!(
        !m.exists("gpio517") && !m.exists("gpio518"),
        "bench left exports"
    );
    m.assert_answers("gpiofs-bench");

    let text = std::fs::read_to_string(&json).expect("JSON written");
    for key in [
        "\"label\"",
        "\"latency\"",
        "\"last_us\"",
        "\"median\"",
        "\"daemon\"",
    ] {
        assert!(text.contains(key), "JSON lacks {key}");
    }
    let svg_text = std::fs::read_to_string(&svg).expect("SVG written");
    assert!(svg_text.starts_with("<svg") && svg_text.contains("<polyline"));

    // Plot mode draws several result files on one chart.
    let both = format!("{},{}", json.display(), json.display());
    let (ok, _, stderr) = run_bench(&["--plot", &both, "--svg", plot.to_str().unwrap()]);
    assert!(ok, "--plot failed: {stderr}");
    let plot_text = std::fs::read_to_string(&plot).expect("plot written");
    assert_eq!(
        plot_text.matches("stroke-dasharray").count(),
        2,
        "two series"
    );
}

#[test]
fn bench_rejects_a_wrong_class_dir() {
    let dir = TempDir::new();
    let (ok, _, stderr) = run_bench(&[
        "--class-dir",
        dir.path().to_str().unwrap(),
        "--input",
        "517",
        "--trigger",
        "/nonexistent",
        "--quick",
    ]);
    assert!(!ok, "gpiofs-bench accepted an empty directory");
    assert!(
        stderr.contains("has no 'export'"),
        "unclear error for a wrong class dir: {stderr}"
    );
}
