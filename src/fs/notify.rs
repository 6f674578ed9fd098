//! Turns multiplexer notices into what FUSE clients see: poll wake-ups,
//! finished held reads, dropped directory entries, and inotify IN_MODIFY.

use std::collections::BTreeSet;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;

use crossbeam_channel::{Receiver, after, never, select};
use fuser::INodeNo;

use super::node::{GpioEntry, Node};
use super::{Shared, signals};
use crate::mux::{Listener, Notice};

/// Work for the notification thread, run in the order queued.
pub(super) type Task = Box<dyn FnOnce(&Shared) + Send>;

pub(super) fn spawn(
    shared: Arc<Shared>,
    tasks: Receiver<Task>,
    touch: Receiver<u32>,
) -> std::io::Result<()> {
    let toucher = shared.clone();
    if shared.signals.is_some() {
        let watcher = shared.clone();
        thread::Builder::new()
            .name("fs-signals".into())
            .spawn(move || watch_signals(&watcher))?;
    }
    thread::Builder::new()
        .name("fs-notify".into())
        .spawn(move || run_tasks(&shared, &tasks))?;
    thread::Builder::new()
        .name("fs-inotify".into())
        .spawn(move || {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() } as u32;
            toucher.toucher_tid.store(tid, Ordering::Relaxed);
            touch_values(&toucher.options.mountpoint, &touch)
        })?;
    Ok(())
}

/// The notification thread: queued tasks, and while reads are held, a
/// periodic look at their readers' signals.
fn run_tasks(shared: &Shared, tasks: &Receiver<Task>) {
    let period = match shared.signals {
        Some(_) => signals::WATCHED_SCAN,
        None => signals::POLLED_SCAN,
    };
    loop {
        let tick = if shared.scanning.load(Ordering::Acquire) {
            after(period)
        } else {
            never()
        };
        select! {
            recv(tasks) -> task => match task {
                Ok(task) => task(shared),
                Err(_) => return,
            },
            recv(tick) -> _ => shared.scan_held(),
        }
    }
}

/// Asks for a scan of held readers whenever a signal is sent or a task
/// exits (the watch is armed only while reads are held).
fn watch_signals(shared: &Shared) {
    let Some(watch) = &shared.signals else {
        return;
    };
    loop {
        watch.wait();
        if shared.tasks.send(Box::new(Shared::scan_held)).is_err() {
            return;
        }
        thread::sleep(signals::WATCHED_SPACING);
    }
}

impl Listener for Shared {
    fn notice(&self, notice: Notice) {
        match notice {
            // On the event thread, at once: this is the latency that counts.
            Notice::Edge { global, counted } => {
                for file in self.files().of_line(global) {
                    if file.stream.is_some() || (counted && file.is_value()) {
                        file.wake_pollers();
                    }
                }
                self.complete_held(global);
                if counted {
                    let _ = self.touch.send(global);
                }
            }
            // Queued: it comes from an unexport write, and dropping the
            // directory entry waits for the kernel's directory lock, which
            // a lookup waiting for a FUSE worker may hold.
            Notice::LineGone { global } => {
                let _ = self.tasks.send(Box::new(move |shared| {
                    for file in shared.files().of_line(global) {
                        file.wake_pollers();
                    }
                    shared.complete_held(global);
                    forget_line(shared, global);
                }));
            }
        }
    }
}

/// Drops what the kernel and we remember of an unexported line's nodes.
fn forget_line(shared: &Shared, global: u32) {
    shared.forget_meta(global);
    let Some(notifier) = shared.notifier.get() else {
        return;
    };
    let dir = Node::Gpio {
        global,
        entry: GpioEntry::Dir,
    };
    let name = format!("gpio{global}");
    let name = OsStr::from_bytes(name.as_bytes());
    // `delete` also tells inotify watchers of the class directory.
    if notifier
        .delete(INodeNo::ROOT, INodeNo(dir.ino()), name)
        .is_err()
    {
        let _ = notifier.inval_entry(INodeNo::ROOT, name);
    }
}

/// FUSE cannot raise inotify events, but the kernel raises IN_MODIFY for
/// any truncate through the mount. So this thread truncates the value file
/// of every line that had an event, and `setattr` ignores its requests
/// (by thread id). Bursts are coalesced.
fn touch_values(mountpoint: &std::path::Path, touch: &Receiver<u32>) {
    while let Ok(first) = touch.recv() {
        let lines: BTreeSet<u32> = std::iter::once(first).chain(touch.try_iter()).collect();
        for global in lines {
            let path = mountpoint.join(format!("gpio{global}/value"));
            let Ok(path) = CString::new(path.as_os_str().as_bytes()) else {
                continue;
            };
            // SAFETY: a valid NUL-terminated path.
            if unsafe { libc::truncate(path.as_ptr(), 0) } != 0 {
                log::debug!(
                    "inotify touch of gpio{global}: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}
