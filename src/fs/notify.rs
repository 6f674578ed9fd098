//! Turns multiplexer notices into what FUSE clients see: poll wake-ups,
//! finished held reads, dropped directory entries, and inotify IN_MODIFY.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};

use crossbeam_channel::Receiver;
use fuser::{INodeNo, PollNotifier};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::files::{OpenFile, notify_poller};
use super::node::{ChipEntry, GpioEntry, Node};
use super::tree::device_number;
use super::{Shared, sys};
use crate::lock;
use crate::mux::{Listener, Notice};

/// Work for the notification thread, run in the order queued.
pub(super) type Task = Box<dyn FnOnce(&Shared) + Send>;

pub(super) fn spawn(shared: Arc<Shared>, tasks: Receiver<Task>) -> std::io::Result<()> {
    let toucher = shared.clone();
    thread::Builder::new()
        .name("fs-notify".into())
        .spawn(move || run_tasks(&shared, &tasks))?;
    thread::Builder::new()
        .name("fs-inotify".into())
        .spawn(move || {
            let tid = nix::unistd::gettid().as_raw() as u32;
            toucher.toucher_tid.store(tid, Ordering::Relaxed);
            let _ = toucher.touches.toucher.set(thread::current());
            run_at_idle_priority();
            touch_values(&toucher)
        })?;
    Ok(())
}

/// The notification thread: queued tasks, in order.
fn run_tasks(shared: &Shared, tasks: &Receiver<Task>) {
    for task in tasks {
        task(shared);
    }
}

impl Listener for Shared {
    fn notice(&self, notice: Notice) {
        match notice {
            // On the event thread, at once: this is the latency that counts.
            Notice::Edges { global, counted } => {
                self.wake_edge_pollers(global, counted);
                self.complete_held(global);
                if counted {
                    self.touches.add(global);
                }
            }
            // Queued: it comes from an unexport write, and dropping the
            // directory entry waits for the kernel's directory lock, which
            // a lookup waiting for a FUSE worker may hold.
            Notice::LineGone { global, serial } => {
                let _ = self.tasks.send(Box::new(move |shared| {
                    for file in shared.files().of_line(global) {
                        file.wake_pollers();
                    }
                    shared.complete_held(global);
                    shared.touches.let_go(global);
                    forget_line(shared, global, serial);
                }));
            }
        }
    }
}

thread_local! {
    /// The poll handles one edge wakes, reused from edge to edge: an event
    /// thread allocates nothing per edge.
    static POLL_HANDLES: RefCell<Vec<PollNotifier>> = const { RefCell::new(Vec::new()) };
}

impl Shared {
    /// Wakes the pollers of the line's `events` files, and of its `value`
    /// files if the edges were counted. The handles are copied out first:
    /// no lock is held while the kernel is told, so the pollers' own poll
    /// and read requests never wait for this loop.
    fn wake_edge_pollers(&self, global: u32, counted: bool) {
        POLL_HANDLES.with_borrow_mut(|handles| {
            self.files().poll_handles_of_line(
                global,
                |file| file.stream.is_some() || (counted && file.is_value()),
                handles,
            );
            let woken = handles.len();
            handles.drain(..).for_each(notify_poller);
            // A crowd that has gone gives its slots back.
            if handles.capacity() > 64 && woken * 4 < handles.capacity() {
                handles.shrink_to(woken);
            }
        });
    }
}

/// Drops what the kernel and we remember of an unexported line's nodes.
fn forget_line(shared: &Shared, global: u32, serial: u64) {
    shared.meta.forget_export(serial);
    let Some(notifier) = shared.notifier.get() else {
        return;
    };
    let dir = Node::Gpio {
        global,
        entry: GpioEntry::Dir,
    };
    forget_entry(notifier, Node::Root, dir, serial, &format!("gpio{global}"));
    // and `chip<X>/gpio<OFFSET>`, while its chip is there
    if let Some((chip, offset)) = shared.mux.locate(global)
        && device_number(&chip).is_some()
    {
        let parent = Node::PerChip {
            id: chip.id,
            entry: ChipEntry::Dir,
        };
        let dir = Node::PerChipLine {
            global,
            entry: GpioEntry::Dir,
        };
        forget_entry(notifier, parent, dir, serial, &format!("gpio{offset}"));
    }
}

/// Makes the kernel drop the entry `name` of `parent` (a line's directory
/// of export `serial`); `delete` also tells inotify watchers of the parent.
fn forget_entry(notifier: &fuser::Notifier, parent: Node, child: Node, serial: u64, name: &str) {
    let name = OsStr::from_bytes(name.as_bytes());
    let parent = INodeNo(parent.ino(0));
    if notifier
        .delete(parent, INodeNo(child.ino(serial)), name)
        .is_err()
    {
        let _ = notifier.inval_entry(parent, name);
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

/// Lines waiting for an inotify touch: each once, so a burst of edges
/// costs one touch per line, and the helper is woken once per burst.
/// `let_go` holds lines whose kept `value` handle may have to be closed.
/// The helper parks (a futex wait, no spinning) until there is work.
#[derive(Default)]
pub(super) struct Touches {
    pending: Mutex<Pending>,
    /// The inotify helper, once it runs.
    toucher: OnceLock<Thread>,
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

impl Touches {
    fn add(&self, global: u32) {
        self.queue(global, |pending| &mut pending.lines);
    }

    fn let_go(&self, global: u32) {
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
        if let Some(toucher) = self.toucher.get() {
            toucher.unpark();
        }
    }

    /// Swaps what is queued for `work` (emptied; its buffers are reused).
    fn take(&self, work: &mut Pending) {
        std::mem::swap(&mut *lock(&self.pending), work);
    }
}

impl Shared {
    /// Called after an open file left the table: once a line has no open
    /// files, the inotify helper must not keep the mount busy for it.
    pub(super) fn file_closed(&self, file: &OpenFile) {
        if let Some(global) = file.node.line()
            && !self.files().has_line(global)
        {
            self.touches.let_go(global);
        }
    }
}

/// FUSE cannot raise inotify events, but the kernel raises IN_MODIFY for
/// any truncate through the mount. So this thread truncates the value file
/// of every line that had an event, and `setattr` ignores its requests
/// (by thread id).
///
/// While a line has open files (the mount is busy anyway), the thread
/// keeps an O_PATH handle of its `value` and truncates through
/// /proc/self/fd: one SETATTR, without the path walk and the root's
/// GETATTR. O_PATH raises no IN_OPEN or IN_CLOSE and sends no FUSE open.
/// Otherwise it truncates by path and holds nothing, so an idle mount
/// unmounts.
fn touch_values(shared: &Shared) {
    let mut kept = HashMap::new();
    let mut work = Pending::default();
    loop {
        shared.touches.take(&mut work);
        if work.is_empty() {
            // Woken by `queue`'s unpark (or spuriously: the loop rechecks).
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
            touch_value(shared, &mut kept, global);
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
