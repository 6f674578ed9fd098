//! Phases with time budgets, SIGINT/SIGTERM, and the undo list that puts
//! the class directory back as it was, however the program ends.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use crate::setup::write_attr;

/// Things to undo at exit, in reverse order.
pub enum Undo {
    Unexport { class: PathBuf, n: u32 },
    Restore { path: PathBuf, text: String },
}

static UNDO: Mutex<Vec<Undo>> = Mutex::new(Vec::new());
static PHASE: Mutex<Option<(String, Instant)>> = Mutex::new(None);

/// A lock that survives a panicked holder (the data are plain values).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn push_undo(u: Undo) {
    lock(&UNDO).push(u);
}

pub fn run_cleanup() {
    let undo: Vec<Undo> = std::mem::take(&mut *lock(&UNDO));
    for u in undo.into_iter().rev() {
        let r = match &u {
            Undo::Unexport { class, n } => write_attr(&class.join("unexport"), &n.to_string()),
            Undo::Restore { path, text } => write_attr(path, text),
        };
        if let Err(e) = r {
            eprintln!("gpiofs-bench: cleanup: {e}");
        }
    }
}

/// Cleans up (bounded: a hung file system must not hang us) and exits.
pub fn cleanup_and_exit(code: i32) -> ! {
    let t = thread::spawn(run_cleanup);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !t.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    std::process::exit(code);
}

/// Starts a phase with a time budget; the watchdog ends the program if the
/// phase overruns it.
pub fn phase(name: &str, budget: Duration) {
    *lock(&PHASE) = Some((name.to_string(), Instant::now() + budget));
}

/// The measurements are over: no more budgets.
pub fn end_phases() {
    *lock(&PHASE) = None;
}

pub fn start_watchdog_and_signals() {
    // SIGINT/SIGTERM go to a dedicated thread (blocked everywhere else:
    // threads spawned later inherit the mask).
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    if let Err(e) = set.thread_block() {
        eprintln!("gpiofs-bench: blocking SIGINT/SIGTERM: {e}");
    }
    crate::sys::interrupt_reads_on_sigusr1();
    thread::spawn(move || {
        let sig = set.wait().map_or(0, |s| s as i32);
        eprintln!("gpiofs-bench: signal {sig}: cleaning up");
        cleanup_and_exit(130);
    });
    thread::spawn(|| {
        loop {
            thread::sleep(Duration::from_millis(100));
            let overdue = lock(&PHASE)
                .as_ref()
                .filter(|(_, deadline)| Instant::now() > *deadline)
                .map(|(name, _)| name.clone());
            if let Some(name) = overdue {
                eprintln!("gpiofs-bench: phase '{name}' did not finish in time; giving up");
                cleanup_and_exit(3);
            }
        }
    });
}
