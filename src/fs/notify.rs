//! Turns multiplexer notices into what FUSE clients see: poll wake-ups,
//! finished held reads, dropped directory entries, and inotify IN_MODIFY.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Weak;
use std::thread;

use crossbeam_channel::Receiver;
use fuser::{INodeNo, PollNotifier};

use super::Shared;
use super::files::notify_poller;
use super::node::{ChipEntry, GpioEntry, Node};
use super::tree::device_number;
use crate::mux::{Listener, Notice};

/// Work for the notification thread, run in the order queued.
pub(super) type Task = Box<dyn FnOnce(&Shared) + Send>;

/// Starts the notification thread. It holds the filesystem only while it
/// runs a task, and ends when the filesystem is dropped (which closes the
/// queue).
pub(super) fn spawn(shared: Weak<Shared>, tasks: Receiver<Task>) -> std::io::Result<()> {
    thread::Builder::new()
        .name("fs-notify".into())
        .spawn(move || run_tasks(&shared, &tasks))?;
    Ok(())
}

/// The notification thread: queued tasks, in order.
fn run_tasks(shared: &Weak<Shared>, tasks: &Receiver<Task>) {
    for task in tasks {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        task(&shared);
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
                    self.toucher.add(global);
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
                    shared.toucher.let_go(global);
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
