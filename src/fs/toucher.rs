//! The inotify helper: FUSE cannot raise inotify events, but the kernel
//! raises IN_MODIFY for any truncate through the mount. So a thread of its
//! own truncates the `value` file of every line that had an event, and
//! `setattr` recognises its requests (by thread id) and changes nothing.
//!
//! The pollers an edge woke come first: the touch waits until each has
//! polled again (its FUSE POLL, the second half of its wake-up), or
//! [`HOLD`] has passed. Its truncate is a FUSE request too, and would
//! otherwise queue ahead of theirs. The kernel likewise raises IN_MODIFY
//! from a work item after waking pollers (kernfs_notify).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, Weak};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::files::OpenFile;
use super::{Shared, sys};
use crate::lock;

/// The longest a touch waits for the pollers of its edge to poll again:
/// an inotify watcher does not wait on a poller that is busy elsewhere.
const HOLD: Duration = Duration::from_millis(1);

/// Lines waiting for an inotify touch: each once, so a burst of edges
/// costs one touch per line, and the helper is woken once per burst.
/// `let_go` holds lines whose kept `value` handle may have to be closed.
/// The helper parks (a futex wait, no spinning) until there is work.
#[derive(Default)]
pub(super) struct Toucher {
    pending: Mutex<Pending>,
    /// Files woken by an edge that have not polled again.
    repolls_due: AtomicUsize,
    /// The helper waits (in [`Toucher::hold`]) for `repolls_due` to reach 0.
    holding: AtomicBool,
    /// The helper thread, once it runs.
    thread: OnceLock<Thread>,
    /// Its thread id, whose truncates `setattr` ignores.
    tid: AtomicU32,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u32>,
    let_go: Vec<u32>,
    /// When the oldest of `lines` was queued.
    since: Option<Instant>,
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
        self.queue(global, |pending| {
            pending.since.get_or_insert_with(Instant::now);
            &mut pending.lines
        });
    }

    /// `file` is being woken by an edge: the touch waits for its re-poll.
    pub(super) fn expect_repoll(&self, file: &OpenFile) {
        // Counted before the flag is set: a re-poll that clears the flag
        // always finds its count.
        self.repolls_due.fetch_add(1, Ordering::SeqCst);
        if file.repoll_due.swap(true, Ordering::SeqCst) {
            self.repolls_due.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// `file` polled again, or closed: the touch need not wait for it.
    pub(super) fn repolled(&self, file: &OpenFile) {
        if file.repoll_due.swap(false, Ordering::SeqCst)
            && self.repolls_due.fetch_sub(1, Ordering::SeqCst) == 1
            && self.holding.swap(false, Ordering::SeqCst)
        {
            self.wake();
        }
    }

    /// How much longer the queued touches wait for woken files to poll
    /// again; None when they may go now.
    fn hold(&self) -> Option<Duration> {
        let since = lock(&self.pending).since?;
        // Set before the count is read: a re-poll that ends the wait
        // after this either is seen in the count or sees `holding`.
        self.holding.store(true, Ordering::SeqCst);
        let wait = (self.repolls_due.load(Ordering::SeqCst) > 0)
            .then(|| HOLD.saturating_sub(since.elapsed()))
            .filter(|wait| !wait.is_zero());
        if wait.is_none() {
            self.holding.store(false, Ordering::SeqCst);
        }
        wait
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
        work.since = None;
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
        self.toucher.repolled(file);
        if let Some(global) = file.node.line()
            && !self.files().has_line(global)
        {
            self.toucher.let_go(global);
        }
    }
}

/// Lets the inotify helper run only when the pollers woken by the same
/// edge have had the CPUs as well: its truncate wakes a FUSE worker.
/// SCHED_IDLE threads still get a small share of a busy CPU, so the events
/// come, later.
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
        if let Some(wait) = shared.toucher.hold() {
            drop(shared);
            // Until the last re-poll's unpark, a queue's, or the time is up.
            thread::park_timeout(wait);
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::node::{GpioEntry, Node};

    fn value_file() -> OpenFile {
        let node = Node::Gpio {
            global: 512,
            entry: GpioEntry::Value,
        };
        OpenFile::new(node, 1, None, None)
    }

    #[test]
    fn a_touch_waits_for_woken_files_to_poll_again() {
        let toucher = Toucher::default();
        let (a, b) = (value_file(), value_file());
        toucher.add(512);
        assert_eq!(toucher.hold(), None, "nobody was woken: no wait");

        toucher.expect_repoll(&a);
        toucher.expect_repoll(&b);
        toucher.expect_repoll(&a); // woken twice, re-polls once
        assert!(toucher.hold().is_some_and(|wait| wait <= HOLD));
        toucher.repolled(&a);
        assert!(toucher.hold().is_some(), "b has not polled again");
        toucher.repolled(&b);
        assert_eq!(toucher.hold(), None);
        toucher.repolled(&b); // a poll that no edge asked for
        assert_eq!(toucher.repolls_due.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_touch_waits_no_longer_than_hold() {
        let toucher = Toucher::default();
        let file = value_file();
        toucher.expect_repoll(&file);
        assert_eq!(toucher.hold(), None, "nothing queued: nothing to hold");
        toucher.add(512);
        assert!(toucher.hold().is_some());
        thread::sleep(HOLD);
        assert_eq!(toucher.hold(), None, "the wait is over after HOLD");
    }
}
