//! The filesystem layer in-process, without a mount: dropping it ends its
//! threads and lets go of the multiplexer (issue 13: the library is
//! droppable). One test in this binary, so that the threads it counts are
//! its own.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gpiofs::backend::sim::{SimBackend, SimChipSpec};
use gpiofs::fs::{Abi, FsOptions, GpioFs};
use gpiofs::mux::{Mux, Options};

/// This process's threads called `name`, by thread id.
fn threads_named(name: &str) -> HashSet<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .map(|task| task.file_name().to_string_lossy().into_owned())
        .collect()
}

fn fs_threads() -> HashSet<String> {
    let mut all = threads_named("fs-notify");
    all.extend(threads_named("fs-inotify"));
    all
}

#[test]
fn dropping_the_filesystem_ends_its_threads_and_lets_go_of_the_mux() {
    let spec = SimChipSpec {
        label: "demo".into(),
        num_lines: 4,
    };
    let sim = Arc::new(SimBackend::new(&[spec]).expect("valid chip"));
    let mux = Mux::start(sim.clone(), Options::default()).expect("mux starts");
    let before = fs_threads();
    let options = FsOptions {
        mountpoint: PathBuf::from("/nonexistent"),
        uid: 0,
        gid: 0,
        group: None,
        blocking_value: false,
        abi: Abi::default(),
    };
    let (fs, handle) = GpioFs::new(mux.clone(), None, options).expect("filesystem starts");
    let new_threads = || -> HashSet<String> { fs_threads().difference(&before).cloned().collect() };
    let deadline = Instant::now() + Duration::from_secs(5);
    while new_threads().len() < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    let started = new_threads();
    assert_eq!(started.len(), 2, "fs-notify and fs-inotify: {started:?}");

    // A line with an edge, so that both threads have had work.
    let line = mux.export(512).expect("export 512");
    line.set_edge(gpiofs::backend::EdgeDetection::Both)
        .expect("edge both");
    sim.set_pull("demo", 0, true).expect("pull up");
    mux.unexport(512).expect("unexport 512");

    let weak_mux = Arc::downgrade(&mux);
    drop((fs, handle, line, sim, mux));
    let deadline = Instant::now() + Duration::from_secs(5);
    let left = || -> HashSet<String> { fs_threads().intersection(&started).cloned().collect() };
    while !left().is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    assert!(left().is_empty(), "threads still running: {:?}", left());
    // The simulator's delivery thread lets go of it as it ends.
    while weak_mux.upgrade().is_some() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    assert!(
        weak_mux.upgrade().is_none(),
        "something still holds the mux"
    );
}
