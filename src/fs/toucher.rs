//! The inotify helper: FUSE cannot raise inotify events, but the kernel
//! raises IN_MODIFY for any truncate through the mount. So a thread of its
//! own truncates the `value` file of every line that had an event, and
//! `setattr` recognises its requests (by thread id) and changes nothing.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, Weak};
use std::thread::{self, Thread};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::files::OpenFile;
use super::{Shared, sys};
use crate::lock;

/// Lines waiting for an inotify touch: each once, so a burst of edges
/// costs one touch per line, and the helper is woken once per burst.
/// `let_go` holds lines whose kept `value` handle may have to be closed.
/// The helper parks (a futex wait, no spinning) until there is work.
#[derive(Default)]
pub(super) struct Toucher {
    pending: Mutex<Pending>,
    /// The helper thread, once it runs.
    thread: OnceLock<Thread>,
    /// Its thread id, whose truncates `setattr` ignores.
    tid: AtomicU32,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u32>,
    let_go: Vec<u32>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.let_go.is_empty()
    }
}

impl Toucher {
    /// Starts the helper. It holds the filesystem only while it works, and
    /// ends once the filesystem (and with it this `Toucher`) is dropped.
    pub(super) fn spawn(shared: Weak<Shared>) -> std::io::Result<()> {
        thread::Builder::new()
            .name("fs-inotify".into())
            .spawn(move || {
                if let Some(shared) = shared.upgrade() {
                    let tid = nix::unistd::gettid().as_raw() as u32;
                    shared.toucher.tid.store(tid, Ordering::Relaxed);
                    let _ = shared.toucher.thread.set(thread::current());
                }
                run_at_idle_priority();
                touch_values(&shared);
            })?;
        Ok(())
    }

    /// Whether a request comes from the helper.
    pub(super) fn is_helper(&self, tid: u32) -> bool {
        tid == self.tid.load(Ordering::Relaxed)
    }

    /// Asks for an IN_MODIFY on the line's `value`.
    pub(super) fn add(&self, global: u32) {
        self.queue(global, |pending| &mut pending.lines);
    }

    /// The line may have no open files any more (or be gone): a kept
    /// handle of it must not keep the mount busy.
    pub(super) fn let_go(&self, global: u32) {
        self.queue(global, |pending| &mut pending.let_go);
    }

    /// Queues `global` and wakes the helper, unless it is queued already
    /// (then the helper has been woken for it).
    fn queue(&self, global: u32, list: impl FnOnce(&mut Pending) -> &mut Vec<u32>) {
        let mut pending = lock(&self.pending);
        let list = list(&mut pending);
        if list.contains(&global) {
            return;
        }
        list.push(global);
        drop(pending);
        self.wake();
    }

    fn wake(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    /// Swaps what is queued for `work` (emptied; its buffers are reused).
    fn take(&self, work: &mut Pending) {
        std::mem::swap(&mut *lock(&self.pending), work);
    }
}

impl Drop for Toucher {
    /// The helper finds the filesystem gone and ends.
    fn drop(&mut self) {
        self.wake();
    }
}

impl Shared {
    /// Called after an open file left the table: once a line has no open
    /// files, the inotify helper must not keep the mount busy for it.
    pub(super) fn file_closed(&self, file: &OpenFile) {
        if let Some(global) = file.node.line()
            && !self.files().has_line(global)
        {
            self.toucher.let_go(global);
        }
    }
}

/// Lets the inotify helper run only when the pollers woken by the same
/// edge have had the CPUs and the FUSE workers: its truncate is a FUSE
/// request too, and would queue ahead of theirs. The kernel likewise raises
/// IN_MODIFY from a work item after waking pollers. SCHED_IDLE threads
/// still get a small share of a busy CPU, so the events come, later.
fn run_at_idle_priority() {
    if let Err(e) = sys::run_at_idle_priority() {
        log::debug!("inotify helper keeps normal priority: {e}");
    }
}

/// The helper's loop, until the filesystem is dropped.
///
/// While a line has open files (the mount is busy anyway), the helper
/// keeps an O_PATH handle of its `value` and truncates through
/// /proc/self/fd: one SETATTR, without the path walk and the root's
/// GETATTR. O_PATH raises no IN_OPEN or IN_CLOSE and sends no FUSE open.
/// Otherwise it truncates by path and holds nothing, so an idle mount
/// unmounts.
fn touch_values(shared: &Weak<Shared>) {
    let mut kept = HashMap::new();
    let mut work = Pending::default();
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.toucher.take(&mut work);
        if work.is_empty() {
            drop(shared);
            // Woken by `queue`'s unpark, the drop's, or spuriously: the
            // loop rechecks.
            thread::park();
            continue;
        }
        for global in work.let_go.drain(..) {
            let serial = shared.mux.line(global).map(|line| line.serial);
            if !shared.files().has_line(global)
                || kept
                    .get(&global)
                    .is_some_and(|k: &Kept| Some(k.serial) != serial)
            {
                kept.remove(&global);
            }
        }
        for global in work.lines.drain(..) {
            touch_value(&shared, &mut kept, global);
        }
    }
}

/// A kept O_PATH handle of a line's `value`, its /proc/self/fd path, and
/// the export it names.
struct Kept {
    serial: u64,
    /// Kept open while `path` names it.
    _fd: OwnedFd,
    path: PathBuf,
}

fn touch_value(shared: &Shared, kept: &mut HashMap<u32, Kept>, global: u32) {
    let path = || {
        shared
            .options
            .mountpoint
            .join(format!("gpio{global}/value"))
    };
    if !shared.files().has_line(global) {
        kept.remove(&global);
        return truncate(&path(), global);
    }
    if let Some(k) = kept.get(&global) {
        match nix::unistd::truncate(&k.path, 0) {
            Ok(()) => return,
            // A re-export since: the handle names the old inode.
            Err(e) => log::debug!("inotify touch of kept gpio{global}/value: {e}"),
        }
        kept.remove(&global);
    }
    let Some(serial) = shared.mux.line(global).map(|line| line.serial) else {
        return;
    };
    match nix::fcntl::open(&path(), OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => {
            let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            truncate(&path, global);
            kept.insert(
                global,
                Kept {
                    serial,
                    _fd: fd,
                    path,
                },
            );
        }
        Err(e) => log::debug!("inotify handle of gpio{global}/value: {e}"),
    }
}

fn truncate(path: &Path, global: u32) {
    if let Err(e) = nix::unistd::truncate(path, 0) {
        log::debug!("inotify touch of gpio{global}: {e}");
    }
}
